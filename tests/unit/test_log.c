/*
 * test_log — tests for src/log.c (include/cdcpipe/log.h): what reaches stderr. Event data gets
 * into log lines (decode errors, Lua errors, ClickHouse's messages), so a log line must never
 * carry a control character to the terminal (an escape sequence can rewrite the screen or the
 * window title) nor be split into two lines; valid UTF-8 stays readable.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cdcpipe/log.h"
#include "cdcpipe/strbuf.h"

typedef struct {
    const char *in;
    size_t len; /* 0: strlen(in) */
    const char *want;
    const char *want_keeping_newlines; /* NULL: the same as want */
} escape_case;

static const escape_case cases[] = {
    {"plain text, 100% ascii", 0, "plain text, 100% ascii", NULL},
    {"two\nlines\r\n", 0, "two\\nlines\\r\\n", "two\nlines\\r\n"},
    {"tab\there", 0, "tab\\there", NULL},
    {"\x1b[31mred\x1b[0m \x1b]0;title\x07", 0, "\\x1b[31mred\\x1b[0m \\x1b]0;title\\x07", NULL},
    {"nul\0byte", 8, "nul\\x00byte", NULL},
    {"del\x7f", 0, "del\\x7f", NULL},
    {"Zo\xc3\xab caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x94\x82", 0,
     "Zo\xc3\xab caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x94\x82", NULL}, /* kept */
    {"c1 \xc2\x9b"
     "31m \xc2\x85",
     0, "c1 \\u009b31m \\u0085", NULL}, /* CSI, NEL */
    {"bad \x9b \xff \xc3\x28 \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80", 0,
     "bad \\x9b \\xff \\xc3( \\xc0\\xaf \\xed\\xa0\\x80 \\xf4\\x90\\x80\\x80", NULL},
    {"cut \xe2\x82", 0, "cut \\xe2\\x82", NULL}, /* a sequence cut at the end */
    {"back\\slash \\x1b", 0, "back\\slash \\x1b", NULL},
};

static void test_escape(void **state)
{
    (void)state;
    strbuf out = {0};
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int keep = 0; keep <= 1; keep++) {
            const char *want = keep && cases[i].want_keeping_newlines
                                   ? cases[i].want_keeping_newlines
                                   : cases[i].want;
            strbuf_reset(&out);
            strbuf_puts(&out, "");
            log_escape(&out, cases[i].in, cases[i].len ? cases[i].len : strlen(cases[i].in), keep);
            if (strcmp(out.data, want) != 0) {
                print_error("case %zu (keep_newlines %d): got \"%s\" want \"%s\"\n", i, keep,
                            out.data, want);
                failures++;
            }
        }
    }
    strbuf_free(&out);
    assert_int_equal(failures, 0);
}

/* Sends stderr to a new temporary file until stderr_end, which returns it rewound for reading. */
typedef struct {
    char path[64];
    int fd, saved;
} captured;

static void stderr_begin(captured *c)
{
    snprintf(c->path, sizeof c->path, "/tmp/cdcpipe-test-log-XXXXXX");
    c->fd = mkstemp(c->path);
    assert_true(c->fd >= 0);
    fflush(stderr);
    c->saved = dup(2);
    assert_int_equal(dup2(c->fd, 2), 2);
}

static FILE *stderr_end(captured *c)
{
    fflush(stderr);
    assert_int_equal(dup2(c->saved, 2), 2);
    close(c->saved);
    FILE *f = fdopen(c->fd, "r");
    assert_non_null(f);
    rewind(f);
    unlink(c->path);
    return f;
}

/* log_msg through a real stderr: one line, escaped, after the timestamp and level. */
static void test_log_line(void **state)
{
    (void)state;
    captured c;
    stderr_begin(&c);
    log_set_level(LOG_INFO);
    log_error("offset %d: invalid JSON near \"%s\"", 7,
              "\x1b[2J\nFAKE 2099-01-01T00:00:00Z info ok");
    log_debug("not shown at info");
    log_info("a long one: %s", "");
    char big[6000];
    memset(big, '\x1b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_warn("%s", big);
    FILE *f = stderr_end(&c);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    assert_true(n > 0);
    const char *msg = strstr(line, "Z error ");
    assert_non_null(msg);
    assert_string_equal(msg, "Z error offset 7: invalid JSON near "
                             "\"\\x1b[2J\\nFAKE 2099-01-01T00:00:00Z info ok\"\n");
    n = getline(&line, &cap, f);
    assert_non_null(strstr(line, "Z info  a long one: \n"));
    n = getline(&line, &cap, f); /* 4095 ESC bytes, escaped and cut at a whole escape */
    assert_true(n > 4000 && n < 8192);
    assert_null(strchr(line, '\x1b'));
    assert_string_equal(line + n - 5, "\\x1b\n");
    assert_int_equal(getline(&line, &cap, f), -1); /* three lines, no more */
    free(line);
    fclose(f);
}

/* --log-format json: the thread's context (event, table, ClickHouse code) as fields of their own,
 * escaped, after the message; none once cleared. */
static void test_json_context(void **state)
{
    (void)state;
    captured c;
    stderr_begin(&c);
    log_set_level(LOG_INFO);
    log_set_json(true);
    log_context_event("to\"pic\x01", 3, 42);
    log_context_table("t");
    log_context_code(241);
    log_warn("retrying");
    log_context outer = log_get_context();
    log_context_event(NULL, 0, 0);
    log_context_table(NULL);
    log_context_code(0);
    log_info("plain");
    log_set_context(outer);
    char big[6000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_error("%s", big); /* a long message keeps the context */
    log_set_json(false);
    log_set_context((log_context){0});
    FILE *f = stderr_end(&c);
    char *line = NULL;
    size_t cap = 0;
    assert_true(getline(&line, &cap, f) > 0);
    assert_non_null(strstr(line, "\"message\":\"retrying\",\"topic\":\"to\\\"pic\\u0001\","
                                 "\"partition\":3,\"offset\":42,\"table\":\"t\",\"code\":241}\n"));
    assert_true(getline(&line, &cap, f) > 0);
    assert_non_null(strstr(line, "\"message\":\"plain\"}\n"));
    ssize_t n = getline(&line, &cap, f);
    assert_true(n > 4000 && n < 8192);
    assert_non_null(strstr(line, "\",\"topic\":\"to\\\"pic\\u0001\",\"partition\":3"));
    assert_string_equal(line + n - 12, "\"code\":241}\n");
    assert_int_equal(getline(&line, &cap, f), -1);
    free(line);
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_log_line),
        cmocka_unit_test(test_json_context),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
