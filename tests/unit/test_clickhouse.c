/*
 * test_clickhouse — the ClickHouse client's decisions that need no server
 * (include/cdcpipe/clickhouse.h): what of a URL may be printed, which URLs are refused at start,
 * when credentials travel in the clear, the CA file check, and how each answer or transport
 * error is classified (retry, narrow down to the bad rows, or stop) with the row ClickHouse
 * names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <curl/curl.h>

#include "cdcpipe/clickhouse.h"

#include "support.h"

static void expect_redacted(const char *url, int want_rc, const char *want)
{
    char out[512];
    int rc = ch_redact_url(url, out, sizeof out);
    if (rc != want_rc || strcmp(out, want) != 0)
        fail_msg("ch_redact_url(\"%s\") = %d \"%s\", expected %d \"%s\"", url, rc, out, want_rc,
                 want);
}

static void redact_prints_scheme_host_port_path_only(void **state)
{
    (void)state;
    expect_redacted("http://localhost:8123", 0, "http://localhost:8123/");
    expect_redacted("https://ch.example.com", 0, "https://ch.example.com:443/");
    expect_redacted("http://u:pa%2Fss@h:8123/ch/?password=s3cret&x=1", 0, "http://h:8123/ch/");
    expect_redacted("http://user:p%40ss%3Aw%23rd@10.1.2.3:8123", 0, "http://10.1.2.3:8123/");
    expect_redacted("http://[::1]:8123/", 0, "http://[::1]:8123/");
    /* a '/' in the password ends the authority: no longer parses (and is never printed) */
    expect_redacted("http://u:pa/ss@h", -1, "(a URL that does not parse)");
    expect_redacted("not a url", -1, "(a URL that does not parse)");
}

/* ch_open must refuse url with an error containing want and none of the secrets. */
static void expect_refused(const char *url, const char *want, const char *secret)
{
    char err[1024] = "";
    ch_client *c = ch_open(url, NULL, NULL, "default", err, sizeof err);
    if (c) {
        ch_close(c);
        fail_msg("ch_open(\"%s\") accepted the URL", url);
    }
    if (!strstr(err, want)) fail_msg("ch_open(\"%s\"): \"%s\" lacks \"%s\"", url, err, want);
    if (!strstr(err, "CDCPIPE_CLICKHOUSE_URL"))
        fail_msg("ch_open(\"%s\"): \"%s\" does not name the setting", url, err);
    if (secret && strstr(err, secret))
        fail_msg("ch_open(\"%s\"): \"%s\" shows the secret \"%s\"", url, err, secret);
}

static void open_refuses_urls_it_cannot_use_safely(void **state)
{
    (void)state;
    expect_refused("http://u:pa/ss@h", "does not parse", "ss@h");
    expect_refused("http://u:pa/ss@h", "%2F", "pa/ss");
    expect_refused("http://h:8123/?password=s3cret#part", "#fragment", "s3cret");
    expect_refused("ftp://h/", "must start with http:// or https://", NULL);
    expect_refused("localhost:8123", "", NULL);
    expect_refused("http://h:8123/?query=SELECT%201", "`query` parameter", NULL);
    expect_refused("http://h:8123/?qu%65ry=SELECT%201", "`query` parameter", NULL);
    expect_refused("http://h:notaport/", "does not parse", NULL);
}

static void open_keeps_settings_in_the_query_but_never_prints_them(void **state)
{
    (void)state;
    char err[256];
    ch_client *c = ch_open("http://h:8123/?password=s3cret&async_insert=1", NULL, NULL, "default",
                           err, sizeof err);
    assert_non_null(c);
    assert_string_equal(ch_url_printable(c), "http://h:8123/");
    ch_close(c);
}

static bool in_clear(const char *url, const char *user, const char *password)
{
    char err[256];
    ch_client *c = ch_open(url, user, password, "default", err, sizeof err);
    if (!c) fail_msg("ch_open(\"%s\"): %s", url, err);
    bool clear = ch_credentials_in_clear(c);
    ch_close(c);
    return clear;
}

static void credentials_in_clear_only_over_http_to_another_host(void **state)
{
    (void)state;
    assert_true(in_clear("http://u:p@10.0.0.1:8123", NULL, NULL));
    assert_true(in_clear("http://ch.example.com:8123", "u", "p"));
    assert_true(in_clear("http://ch.example.com:8123", NULL, "p")); /* user default */
    assert_true(in_clear("http://ch.example.com:8123/?user=u&password=p", NULL, NULL));
    assert_true(in_clear("http://127.example.com:8123", "u", "p"));
    assert_false(in_clear("http://ch.example.com:8123", "u", NULL)); /* no password */
    assert_false(in_clear("http://ch.example.com:8123", NULL, NULL));
    assert_false(in_clear("https://u:p@ch.example.com", NULL, NULL));
    assert_false(in_clear("http://u:p@127.0.0.1:8123", NULL, NULL));
    assert_false(in_clear("http://u:p@127.10.0.2:8123", NULL, NULL));
    assert_false(in_clear("http://u:p@localhost:8123", NULL, NULL));
    assert_false(in_clear("http://u:p@LOCALHOST:8123", NULL, NULL));
    assert_false(in_clear("http://u:p@[::1]:8123", NULL, NULL));
    assert_false(in_clear("http://u:p@[::ffff:127.0.0.1]:8123", NULL, NULL));
}

static void tls_ca_file_is_checked_at_start(void **state)
{
    (void)state;
    char dir[512], path[600], err[512];
    assert_int_equal(tmpdir_create(dir, sizeof dir), 0);
    ch_client *c = ch_open("https://h:8443", NULL, NULL, "default", err, sizeof err);
    assert_non_null(c);

    snprintf(path, sizeof path, "%s/missing.pem", dir);
    assert_int_equal(ch_set_tls(c, path, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot read the ClickHouse CA file"));
    assert_non_null(strstr(err, "--clickhouse-ca"));
    assert_non_null(strstr(err, "No such file"));

    assert_int_equal(ch_set_tls(c, dir, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a regular file"));

    snprintf(path, sizeof path, "%s/der.crt", dir);
    write_file(path, "0\x82\x01\x0a binary, not PEM");
    assert_int_equal(ch_set_tls(c, path, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "holds no PEM certificate"));

    snprintf(path, sizeof path, "%s/ca.pem", dir);
    write_file(path, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    assert_int_equal(ch_set_tls(c, path, false, err, sizeof err), 0);
    assert_int_equal(ch_set_tls(c, NULL, false, err, sizeof err), 0);
    assert_int_equal(ch_set_tls(c, "", true, err, sizeof err), 0);
    ch_close(c);
    tmpdir_remove(dir);
}

static void expect_answer(long status, const char *body, ch_status want, int want_code,
                          long want_row)
{
    ch_failure f;
    ch_status st = ch_classify_answer(status, body, &f);
    if (st != want || f.code != want_code || f.row != want_row || f.http_status != status)
        fail_msg("HTTP %ld \"%.60s\": status %d code %d row %ld, expected %d %d %ld", status, body,
                 (int)st, f.code, f.row, (int)want, want_code, want_row);
}

static void answers_are_classified(void **state)
{
    (void)state;
    expect_answer(200, "", CH_OK, 0, 0);
    /* rejected data, with the row ClickHouse names (18.16's and current wording) */
    expect_answer(500,
                  "Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected \" "
                  "before: x\"}\\n: (while read the value of key id): (at row 2)\n, e.what() = "
                  "DB::Exception\n",
                  CH_REJECTED, 27, 2);
    expect_answer(400,
                  "Code: 27. DB::Exception: Cannot parse input: expected '\"' before: 'x\"}': "
                  "(while reading the value of key id): (at row 1417)\n: While executing "
                  "ParallelParsingBlockInputFormat. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)",
                  CH_REJECTED, 27, 1417);
    expect_answer(500, "Code: 469. DB::Exception: Constraint `c` for table t is violated at row 4",
                  CH_REJECTED, 469, 4);
    /* event data quoted in the message cannot choose the row: the last mention wins */
    expect_answer(500,
                  "Code: 27. Cannot parse input: before: '(at row 9)\"}': (at row 3)\n: While "
                  "executing JSONEachRowRowInputFormat",
                  CH_REJECTED, 27, 3);
    expect_answer(500, "Code: 16, e.displayText() = DB::Exception: No such column bogus",
                  CH_REJECTED, 16, 0);
    expect_answer(400, "Code: 62, Syntax error: Max query size exceeded", CH_REJECTED, 62, 0);
    /* no ClickHouse error: a proxy or the HTTP layer refused the request itself */
    expect_answer(400, "", CH_REJECTED, 0, 0);
    expect_answer(413, "<html><body>413 Request Entity Too Large</body></html>", CH_REJECTED, 0, 0);
    expect_answer(414, "", CH_REJECTED, 0, 0);
    /* transient */
    expect_answer(500, "Code: 252, Too many parts (300)", CH_TRANSIENT, 252, 0);
    expect_answer(500,
                  "Code: 252, e.displayText() = DB::Exception: Too many parts (300). Merges are "
                  "processing significantly slower than inserts",
                  CH_TRANSIENT, 252, 0);
    /* the same code for an INSERT whose rows span too many partitions: waiting never helps,
     * smaller inserts do */
    expect_answer(
        500,
        "Code: 252. DB::Exception: Too many partitions for single INSERT block (more "
        "than 100). The limit is controlled by 'max_partitions_per_insert_block' setting.",
        CH_REJECTED, 252, 0);
    expect_answer(500, "Code: 241. DB::Exception: Memory limit exceeded", CH_TRANSIENT, 241, 0);
    expect_answer(502, "Bad Gateway", CH_TRANSIENT, 0, 0);
    expect_answer(503, "", CH_TRANSIENT, 0, 0);
    expect_answer(504, "", CH_TRANSIENT, 0, 0);
    expect_answer(429, "", CH_TRANSIENT, 0, 0);
    /* the deployment */
    expect_answer(404, "Code: 60, e.displayText() = DB::Exception: Table x.y doesn't exist",
                  CH_PERMANENT, 60, 0);
    expect_answer(500, "Code: 516. DB::Exception: tester: Authentication failed", CH_PERMANENT, 516,
                  0);
    expect_answer(401, "", CH_PERMANENT, 0, 0);
    expect_answer(403, "Code: 999999, forbidden", CH_PERMANENT, 999999, 0);
    expect_answer(404, "Not found", CH_PERMANENT, 0, 0);
    expect_answer(500, "Internal Server Error", CH_PERMANENT, 0, 0);
}

static void transport_errors_are_classified(void **state)
{
    (void)state;
    /* the client's own configuration: stop */
    assert_int_equal(ch_classify_transport(CURLE_URL_MALFORMAT), CH_PERMANENT);
    assert_int_equal(ch_classify_transport(CURLE_UNSUPPORTED_PROTOCOL), CH_PERMANENT);
    assert_int_equal(ch_classify_transport(CURLE_SSL_CACERT_BADFILE), CH_PERMANENT);
    assert_int_equal(ch_classify_transport(CURLE_SSL_CERTPROBLEM), CH_PERMANENT);
    assert_int_equal(ch_classify_transport(CURLE_PEER_FAILED_VERIFICATION), CH_PERMANENT);
    /* the network or the server: retry */
    assert_int_equal(ch_classify_transport(CURLE_COULDNT_CONNECT), CH_TRANSIENT);
    assert_int_equal(ch_classify_transport(CURLE_COULDNT_RESOLVE_HOST), CH_TRANSIENT);
    assert_int_equal(ch_classify_transport(CURLE_OPERATION_TIMEDOUT), CH_TRANSIENT);
    assert_int_equal(ch_classify_transport(CURLE_ABORTED_BY_CALLBACK), CH_TRANSIENT);
    assert_int_equal(ch_classify_transport(CURLE_RECV_ERROR), CH_TRANSIENT);
    assert_int_equal(ch_classify_transport(CURLE_GOT_NOTHING), CH_TRANSIENT);
    assert_int_equal(ch_classify_transport(CURLE_OK), CH_OK);
}

/* An INSERT names async_insert=0 only where the server knows the setting (21.11 and later):
 * 18.16 refuses a setting it does not know, 26.3 turned async_insert on by default. */
static void insert_settings_follow_the_server_version(void **state)
{
    (void)state;
    assert_string_equal(ch_insert_settings(18, 16), "input_format_skip_unknown_fields=1");
    assert_string_equal(ch_insert_settings(21, 10), "input_format_skip_unknown_fields=1");
    assert_string_equal(ch_insert_settings(21, 11),
                        "input_format_skip_unknown_fields=1&async_insert=0");
    assert_string_equal(ch_insert_settings(24, 8),
                        "input_format_skip_unknown_fields=1&async_insert=0");
    assert_string_equal(ch_insert_settings(26, 3),
                        "input_format_skip_unknown_fields=1&async_insert=0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(redact_prints_scheme_host_port_path_only),
        cmocka_unit_test(open_refuses_urls_it_cannot_use_safely),
        cmocka_unit_test(open_keeps_settings_in_the_query_but_never_prints_them),
        cmocka_unit_test(credentials_in_clear_only_over_http_to_another_host),
        cmocka_unit_test(tls_ca_file_is_checked_at_start),
        cmocka_unit_test(answers_are_classified),
        cmocka_unit_test(transport_errors_are_classified),
        cmocka_unit_test(insert_settings_follow_the_server_version),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
