/*
 * clickhouse — the ClickHouse HTTP interface (see include/cdcpipe/clickhouse.h).
 *
 * One CURL easy handle is kept for the life of the client so the connection is reused
 * (keep-alive). Every request is a POST to the base URL with parameters:
 *   ?database=<db>[&query=<INSERT ...>][&input_format_skip_unknown_fields=1]
 */
#include "cdcpipe/clickhouse.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

struct ch_client {
    CURL *curl;
    char *base_url; /* without trailing '?...' handling: we add our own parameters */
    char *redacted_url;
    char *database;
    bool has_query; /* base_url already contains '?' */
    strbuf url;     /* reused per request */
    strbuf body;    /* response body, reused */
    struct curl_slist *headers;
};

void ch_redact_url(const char *url, char *out, size_t outlen)
{
    const char *scheme = strstr(url, "://");
    const char *host_start = scheme ? scheme + 3 : url;
    const char *at = NULL;
    for (const char *p = host_start; *p && *p != '/' && *p != '?' && *p != '#'; p++)
        if (*p == '@') at = p;
    if (!at) {
        snprintf(out, outlen, "%s", url);
        return;
    }
    const char *colon = memchr(host_start, ':', (size_t)(at - host_start));
    const char *user_end = colon ? colon : at;
    snprintf(out, outlen, "%.*s%s@%s", (int)(user_end - url), url, colon ? ":***" : "", at + 1);
}

static size_t collect_body(char *data, size_t size, size_t nmemb, void *ud)
{
    strbuf_append(ud, data, size * nmemb);
    return size * nmemb;
}

ch_client *ch_open(const char *url, const char *user, const char *password, const char *database,
                   char *err, size_t errlen)
{
    char redacted[1024];
    ch_redact_url(url, redacted, sizeof redacted);
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        snprintf(err, errlen,
                 "ClickHouse URL \"%s\" must start with http:// or https:// "
                 "(set --clickhouse or CDCPIPE_CLICKHOUSE_URL)",
                 redacted);
        return NULL;
    }
    ch_client *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->curl = curl_easy_init();
    c->base_url = strdup(url);
    c->redacted_url = strdup(redacted);
    c->database = strdup(database);
    if (!c->curl || !c->base_url || !c->redacted_url || !c->database) abort();
    c->has_query = strchr(url, '?') != NULL;
    c->headers = curl_slist_append(NULL, "Content-Type: text/plain; charset=utf-8");
    c->headers = curl_slist_append(c->headers, "Expect:");
    curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &c->body);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    /* A stalled server (no byte for 60 s) is a timeout, whatever the size of the batch. */
    curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_TCP_KEEPALIVE, 1L);
    if (user && *user) {
        curl_easy_setopt(c->curl, CURLOPT_USERNAME, user);
        curl_easy_setopt(c->curl, CURLOPT_PASSWORD, password ? password : "");
    }
    return c;
}

void ch_set_tls(ch_client *c, const char *ca_file, bool insecure)
{
    if (ca_file && *ca_file) curl_easy_setopt(c->curl, CURLOPT_CAINFO, ca_file);
    curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, insecure ? 0L : 1L);
    curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, insecure ? 0L : 2L);
}

void ch_close(ch_client *c)
{
    if (!c) return;
    curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->headers);
    strbuf_free(&c->url);
    strbuf_free(&c->body);
    free(c->base_url);
    free(c->redacted_url);
    free(c->database);
    free(c);
}

static void append_param(ch_client *c, const char *name, const char *value)
{
    char *escaped = curl_easy_escape(c->curl, value, 0);
    if (!escaped) abort();
    strbuf_printf(&c->url, "&%s=%s", name, escaped);
    curl_free(escaped);
}

/* Codes worth retrying: the server is overloaded or a network hop failed, the data is fine. */
static bool code_is_transient(int code)
{
    switch (code) {
    case 159: /* TIMEOUT_EXCEEDED */
    case 164: /* READONLY (replica temporarily read-only) */
    case 202: /* TOO_MANY_SIMULTANEOUS_QUERIES */
    case 203: /* NO_FREE_CONNECTION */
    case 209: /* SOCKET_TIMEOUT */
    case 210: /* NETWORK_ERROR */
    case 241: /* MEMORY_LIMIT_EXCEEDED */
    case 242: /* TABLE_IS_READ_ONLY */
    case 252: /* TOO_MANY_PARTS */
    case 319: /* UNKNOWN_STATUS_OF_INSERT */
    case 425: /* SYSTEM_ERROR */
    case 999: /* KEEPER_EXCEPTION */
        return true;
    default:
        return false;
    }
}

/* Codes that no change to the rows can fix: credentials, rights, missing table or database. */
static bool code_is_deployment(int code)
{
    switch (code) {
    case 60:  /* UNKNOWN_TABLE */
    case 81:  /* UNKNOWN_DATABASE */
    case 192: /* UNKNOWN_USER */
    case 193: /* WRONG_PASSWORD */
    case 194: /* REQUIRED_PASSWORD */
    case 195: /* IP_ADDRESS_NOT_ALLOWED */
    case 291: /* DATABASE_ACCESS_DENIED */
    case 497: /* ACCESS_DENIED */
    case 516: /* AUTHENTICATION_FAILED */
        return true;
    default:
        return false;
    }
}

/* Sends the prepared URL with body; classifies the outcome. what names the request in errors. */
static ch_status perform(ch_client *c, const char *what, const char *body, size_t len, strbuf *out,
                         ch_failure *fail, char *err, size_t errlen)
{
    ch_failure none = {0, 0};
    if (!fail) fail = &none;
    fail->http_status = 0;
    fail->code = 0;
    strbuf_reset(&c->body);
    curl_easy_setopt(c->curl, CURLOPT_URL, c->url.data);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    CURLcode rc = curl_easy_perform(c->curl);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s: cannot reach ClickHouse at %s: %s", what, c->redacted_url,
                 curl_easy_strerror(rc));
        return CH_TRANSIENT;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &fail->http_status);
    if (fail->http_status == 200) {
        if (out && c->body.len) strbuf_append(out, c->body.data, c->body.len);
        return CH_OK;
    }
    const char *msg = c->body.len ? c->body.data : "";
    const char *code = strstr(msg, "Code: ");
    if (code) fail->code = atoi(code + 6);
    /* One line of the server's message is enough to act on; bodies can be long. */
    int snippet = (int)strcspn(msg, "\n");
    if (snippet > 600) snippet = 600;
    snprintf(err, errlen, "%s: ClickHouse answered HTTP %ld: %.*s", what, fail->http_status,
             snippet, msg);
    if (fail->code
            ? code_is_transient(fail->code)
            : (fail->http_status == 502 || fail->http_status == 503 || fail->http_status == 504))
        return CH_TRANSIENT;
    if (fail->http_status == 401 || fail->http_status == 403 || fail->code == 516 ||
        fail->code == 192 || fail->code == 193 || fail->code == 194)
        snprintf(err + strlen(err), errlen - strlen(err),
                 " (check the ClickHouse user and password: CDCPIPE_CLICKHOUSE_USER/_PASSWORD or "
                 "the URL)");
    return code_is_deployment(fail->code) || fail->http_status == 401 || fail->http_status == 403 ||
                   !fail->code
               ? CH_PERMANENT
               : CH_REJECTED;
}

static void start_url(ch_client *c)
{
    strbuf_reset(&c->url);
    strbuf_puts(&c->url, c->base_url);
    /* append_param writes "&name=value"; a leading "&" right after "?" is harmless only to
     * some servers, so start with a real first parameter. */
    strbuf_puts(&c->url, c->has_query ? "&" : "?");
    strbuf_puts(&c->url, "database=");
    char *escaped = curl_easy_escape(c->curl, c->database, 0);
    if (!escaped) abort();
    strbuf_puts(&c->url, escaped);
    curl_free(escaped);
}

ch_status ch_exec(ch_client *c, const char *sql, strbuf *out, ch_failure *fail, char *err,
                  size_t errlen)
{
    start_url(c);
    char what[160];
    snprintf(what, sizeof what, "statement \"%.100s%s\"", sql, strlen(sql) > 100 ? "..." : "");
    for (char *p = what; *p; p++)
        if (*p == '\n' || *p == '\t') *p = ' ';
    return perform(c, what, sql, strlen(sql), out, fail, err, errlen);
}

/* Appends s[0..len) back-quoted, with backquotes and backslashes escaped. */
static void quote_ident(strbuf *sql, const char *s, size_t len)
{
    strbuf_putc(sql, '`');
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '`' || s[i] == '\\') strbuf_putc(sql, '\\');
        strbuf_putc(sql, s[i]);
    }
    strbuf_putc(sql, '`');
}

void ch_quote_table(strbuf *sql, const char *database, const char *table)
{
    const char *dot = strchr(table, '.');
    if (dot) {
        quote_ident(sql, table, (size_t)(dot - table));
        table = dot + 1;
    } else {
        quote_ident(sql, database, strlen(database));
    }
    strbuf_putc(sql, '.');
    quote_ident(sql, table, strlen(table));
}

ch_status ch_insert(ch_client *c, const char *table, char *const *columns, size_t ncolumns,
                    const char *rows, size_t len, ch_failure *fail, char *err, size_t errlen)
{
    strbuf sql = {0};
    strbuf_puts(&sql, "INSERT INTO ");
    ch_quote_table(&sql, c->database, table);
    strbuf_puts(&sql, " (");
    for (size_t i = 0; i < ncolumns; i++) {
        if (i) strbuf_puts(&sql, ", ");
        quote_ident(&sql, columns[i], strlen(columns[i]));
    }
    strbuf_puts(&sql, ") FORMAT JSONEachRow");
    start_url(c);
    append_param(c, "input_format_skip_unknown_fields", "1");
    append_param(c, "query", sql.data);
    strbuf_free(&sql);
    char what[300];
    snprintf(what, sizeof what, "insert into %s", table);
    return perform(c, what, rows, len, NULL, fail, err, errlen);
}
