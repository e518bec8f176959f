/*
 * clickhouse — the ClickHouse HTTP interface over one keep-alive libcurl handle.
 *
 * Every statement travels in the POST body; an INSERT as `INSERT INTO t (cols) FORMAT
 * JSONEachRow\n` (or RowBinary) followed by the rows (what ClickHouse's HTTP interface documents
 * for a query with its data; 18.16 to current), so the URL stays small whatever the column list
 * (the statement itself is bounded by the server's max_query_size, 256 KiB by default: past it the
 * server answers Code 62, rejected data like any other). A failure is classified by ClickHouse's
 * `Code: N` (not the HTTP status: 18.16 answers a data error with HTTP 500) so the caller can
 * decide: retry later (transient: no connection, timeouts, overload), isolate bad rows (rejected
 * data), or stop (the deployment is wrong).
 * Every request has an overall deadline (ch_set_timeout) and can be interrupted from outside
 * (ch_set_interrupt); at most CH_MAX_ANSWER bytes of an answer are kept, the rest is discarded.
 * An INSERT's body may go compressed (ch_set_compression: gzip, zstd or lz4 as the HTTP
 * Content-Encoding, which ClickHouse decodes whatever enable_http_compression says: that setting
 * is about answers).
 * Credentials come from the URL's user info or from user/password; they never appear in a log
 * line or an error message: only scheme://host:port/path of the URL is ever printed
 * (ch_redact_url), never its user info or query string.
 */
#ifndef CDCPIPE_CLICKHOUSE_H
#define CDCPIPE_CLICKHOUSE_H

#include <stdbool.h>
#include <stddef.h>

#include "cdcpipe/compress.h"
#include "cdcpipe/config.h"
#include "cdcpipe/strbuf.h"

/* At most this much of an answer is kept (an error message, a --show table); the rest is read
 * and discarded, so a server cannot make cdcpipe buffer without limit. */
#define CH_MAX_ANSWER (1024 * 1024)

typedef struct ch_client ch_client;

typedef enum {
    CH_OK = 0,
    CH_TRANSIENT = 1, /* worth retrying: server unreachable, timeout, overload */
    CH_PERMANENT = 2, /* the deployment is wrong (credentials, rights, missing table, a client
                       * setting such as the CA file): stop */
    CH_REJECTED = 3,  /* ClickHouse (or a proxy before it) refused the data itself (parse, type,
                       * overflow, a request too large): some rows are bad; smaller inserts can
                       * tell which */
} ch_status;

typedef struct {
    long http_status; /* 0 when no HTTP answer arrived */
    int code;         /* ClickHouse "Code: N", or 0 */
    long row;         /* the row the server's message names ("at row N", counted from 1 in the
                       * request's rows), or 0. A hint only: parallel parsing can misnumber. */
} ch_failure;

/* A piece of a request body. */
typedef struct {
    const char *data;
    size_t len;
} ch_span;

/* Opens a client for url (http:// or https://, parsed with libcurl's URL parser). user/password
 * may be NULL or "" (then the URL's user info, if any; a password without a user is sent for
 * ClickHouse's user `default`). database names the default database for statements. Returns
 * NULL with err filled when the URL does not parse, is not http(s), or has a #fragment or a
 * `query` parameter; err never shows the URL's user info or query. */
ch_client *ch_open(const char *url, const char *user, const char *password, const char *database,
                   char *err, size_t errlen);
void ch_close(ch_client *c);

/* ch_open with cfg's ClickHouse settings (URL, user, password, database, TLS, timeout): one
 * client per thread that talks to ClickHouse. */
ch_client *ch_connect(const config *cfg, char *err, size_t errlen);

/* https:// only: verify the server against the CA certificates in ca_file (PEM; NULL or "": the
 * system's), or not at all when insecure (for tests; logged as a warning by the caller).
 * Certificate verification is on by default. Returns 0, or -1 with err when ca_file cannot be
 * read. */
int ch_set_tls(ch_client *c, const char *ca_file, bool insecure, char *err, size_t errlen);

/* Overall deadline of one request, connection and answer included (default 120 s). A request
 * past it fails as CH_TRANSIENT. */
void ch_set_timeout(ch_client *c, long timeout_ms);
long ch_get_timeout(const ch_client *c);

/* interrupt(ud) is asked about once a second (and on every progress) during a request; when it
 * returns true the request is abandoned and fails as CH_TRANSIENT. NULL: never. */
void ch_set_interrupt(ch_client *c, bool (*interrupt)(void *ud), void *ud);

/* True when a password (user info, user/password, or a `password` URL parameter) would travel
 * unencrypted: an http:// URL whose host is not a loopback address. */
bool ch_credentials_in_clear(const ch_client *c);

/* scheme://host:port/path of the client's URL: safe to print. */
const char *ch_url_printable(const ch_client *c);

/* Runs one statement given as the POST body; the answer body (if any, at most CH_MAX_ANSWER
 * bytes) is appended to out (may be NULL). On failure err holds the server's message snippet
 * with its code. */
ch_status ch_exec(ch_client *c, const char *sql, strbuf *out, ch_failure *fail, char *err,
                  size_t errlen);

/* The server's version text ("18.16.1", "24.8.4.13"), asked once (SELECT version()); NULL when
 * it cannot be asked now (asked again on the next call). */
const char *ch_server_version(ch_client *c);

/* INSERT bodies from now on go compressed with `method` (Content-Encoding; COMPRESS_NONE: as
 * they are, the default). Statements (ch_exec) always go uncompressed. */
void ch_set_compression(ch_client *c, compress_method method);

/* Whether the server takes a body in the client's compression method: asks its version once
 * and sends `SELECT 1` compressed. CH_OK: it does (or the method is none); CH_REJECTED: it
 * refuses the Content-Encoding (err names the option, the method and the server's version); any
 * other status: the request failed for another reason (err says why) and the check is made
 * again before the first insert, which then fails as CH_PERMANENT on a refusal. */
ch_status ch_check_compression(ch_client *c, char *err, size_t errlen);

/* The format of an INSERT's rows. */
typedef enum {
    CH_JSON_EACH_ROW, /* one JSON object per line */
    CH_ROW_BINARY,    /* RowBinary (rowbinary.h): the columns' values, row after row */
} ch_format;

/* INSERT INTO table (columns...) FORMAT JSONEachRow|RowBinary with the rows (the concatenation
 * of rows[0..nrows), whole rows in that format) as the body, and the settings of ch_insert_settings
 * for the server's version (asked once, before the first insert). table may be "t" or "db.t"; a
 * bare name goes to the client's database. Identifiers are back-quoted. */
ch_status ch_insert(ch_client *c, const char *table, char *const *columns, size_t ncolumns,
                    ch_format format, const ch_span *rows, size_t nrows, ch_failure *fail,
                    char *err, size_t errlen);

/* The INSERTs from now on carry query_id=id and log_queries=1, so that whether one finished can be
 * looked up afterwards in system.query_log (query_log.h); NULL or "": none. Characters other than
 * [A-Za-z0-9._-] become '_'. */
void ch_set_query_id(ch_client *c, const char *id);

/* The URL parameters every INSERT sets, for a server of version major.minor: what cdcpipe relies
 * on, set explicitly so a server's defaults cannot change it (async_insert=0 where the server
 * knows the setting; 26.3 turned it on by default). */
const char *ch_insert_settings(int major, int minor);

/* Writes scheme://host:port/path of url into out: no user info, query or fragment. Returns 0,
 * or -1 (out then says the URL does not parse) when libcurl cannot parse url. */
int ch_redact_url(const char *url, char *out, size_t outlen);

/* Appends `name` (or `db`.`name` for "db.name") back-quoted and escaped to sql. */
void ch_quote_table(strbuf *sql, const char *database, const char *table);

/* The classification behind every request, for tests: the outcome of an HTTP answer with
 * http_status and body (fail filled: status, code, row), and of a libcurl transport error
 * (CURLcode) that prevented an answer. */
ch_status ch_classify_answer(long http_status, const char *body, ch_failure *fail);
ch_status ch_classify_transport(int curl_code);

#endif
