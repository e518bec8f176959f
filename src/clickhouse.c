/*
 * clickhouse — the ClickHouse HTTP interface (see include/cdcpipe/clickhouse.h).
 *
 * One CURL easy handle is kept for the life of the client so the connection is reused
 * (keep-alive). Every request is a POST to the base URL (the configured one without user info
 * or fragment) with the parameters ?[the URL's own&]database=<db>[&the insert settings for the
 * server's version: ch_insert_settings]; the statement, and an INSERT's rows after it, are the
 * body, sent from the caller's buffers by a read callback (nothing is copied).
 */
#include "cdcpipe/clickhouse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctype.h>

#include <curl/curl.h>

#include "cdcpipe/errbuf.h"
#include "cdcpipe/xalloc.h"

/* ClickHouse's UNKNOWN_COMPRESSION_METHOD: "Unknown Content-Encoding of HTTP request: zstd". */
#define CODE_UNKNOWN_COMPRESSION 89

#define DEFAULT_TIMEOUT_MS 120000L

/* The request body being sent: spans[i] from byte off. */
typedef struct {
    const ch_span *spans;
    size_t count, i, off;
} body_reader;

struct ch_client {
    CURL *curl;
    char *base_url;  /* without user info and fragment; may carry the URL's own query */
    char *printable; /* scheme://host:port/path */
    char *database;
    bool has_query;       /* base_url already contains '?' */
    bool password_inside; /* a password (user info, setting or `password` parameter) is sent */
    bool loopback;        /* the host is this machine */
    bool https;
    long timeout_ms;
    bool (*interrupt)(void *ud);
    void *interrupt_ud;
    strbuf url;  /* reused per request */
    strbuf body; /* response body (at most CH_MAX_ANSWER bytes), reused */
    bool body_cut;
    strbuf sql; /* an INSERT's statement, reused */
    int server_major,
        server_minor;        /* SELECT version(), asked before the first insert; 0: not yet */
    char server_version[32]; /* its text, for messages */
    compress_method compression;
    bool compression_checked;    /* the server took a body in that encoding */
    strbuf zbody;                /* an INSERT's body compressed, reused */
    struct curl_slist *zheaders; /* headers plus Content-Encoding */
    ch_span *spans;
    size_t spans_cap;
    body_reader reader;
    struct curl_slist *headers;
    char curl_error[CURL_ERROR_SIZE];
    char query_id[128]; /* ch_set_query_id: the next INSERTs' query_id, "" none */
};

/* ---- URLs ---- */

static char *url_part(CURLU *u, CURLUPart part, unsigned flags)
{
    char *s = NULL;
    if (curl_url_get(u, part, &s, flags) != CURLUE_OK) return NULL;
    return s;
}

/* scheme://host:port/path of a parsed URL. */
static void printable_url(CURLU *u, char *out, size_t outlen)
{
    char *scheme = url_part(u, CURLUPART_SCHEME, 0), *host = url_part(u, CURLUPART_HOST, 0);
    char *port = url_part(u, CURLUPART_PORT, CURLU_DEFAULT_PORT);
    char *path = url_part(u, CURLUPART_PATH, 0);
    snprintf(out, outlen, "%s://%s%s%s%s", scheme ? scheme : "", host ? host : "", port ? ":" : "",
             port ? port : "", path ? path : "");
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
}

static CURLU *parse_url(const char *url, CURLUcode *uc)
{
    CURLU *u = curl_url();
    if (!u) abort();
    *uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (*uc != CURLUE_OK) {
        curl_url_cleanup(u);
        return NULL;
    }
    return u;
}

int ch_redact_url(const char *url, char *out, size_t outlen)
{
    CURLUcode uc;
    CURLU *u = parse_url(url, &uc);
    if (!u) {
        snprintf(out, outlen, "(a URL that does not parse)");
        return -1;
    }
    printable_url(u, out, outlen);
    curl_url_cleanup(u);
    return 0;
}

/* Whether the URL's query string has parameter `name` (names compared URL-decoded). */
static bool query_has(const char *query, const char *name)
{
    size_t want = strlen(name);
    for (const char *p = query; p && *p;) {
        size_t len = strcspn(p, "&");
        size_t nlen = strcspn(p, "&=");
        int decoded_len = 0;
        char *decoded = curl_easy_unescape(NULL, p, (int)nlen, &decoded_len);
        bool hit = decoded && (size_t)decoded_len == want && memcmp(decoded, name, want) == 0;
        curl_free(decoded);
        if (hit) return true;
        p += len;
        if (*p == '&') p++;
    }
    return false;
}

static bool is_loopback(const char *host)
{
    if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0) return true;
    size_t len = strlen(host);
    if (len > 10 && strcasecmp(host + len - 10, ".localhost") == 0) return true;
    struct in_addr v4;
    if (inet_pton(AF_INET, host, &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    char bare[64];
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']' && len - 2 < sizeof bare) {
        memcpy(bare, host + 1, len - 2);
        bare[len - 2] = '\0';
        char *zone = strchr(bare, '%');
        if (zone) *zone = '\0';
        struct in6_addr v6;
        if (inet_pton(AF_INET6, bare, &v6) == 1)
            return IN6_IS_ADDR_LOOPBACK(&v6) ||
                   (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
    }
    return false;
}

#define URL_SETTING "--clickhouse, CDCPIPE_CLICKHOUSE_URL or clickhouse.url"

/* Parses url into c (base URL, printable form, credentials from the user info). */
static int setup_url(ch_client *c, const char *url, const char *user, const char *password,
                     char *err, size_t errlen)
{
    CURLUcode uc;
    CURLU *u = parse_url(url, &uc);
    if (!u) {
        errbuf_set(err, errlen,
                   "the ClickHouse URL (%s) does not parse: %s; write it as "
                   "http[s]://[user[:password]@]host[:port][/path], with any '/', '?', '#', '@' "
                   "or ':' in the user or password percent-encoded (%%2F, %%3F, %%23, %%40, %%3A)",
                   URL_SETTING, curl_url_strerror(uc));
        return -1;
    }
    char printable[1024];
    printable_url(u, printable, sizeof printable);
    char *scheme = url_part(u, CURLUPART_SCHEME, 0), *host = url_part(u, CURLUPART_HOST, 0);
    char *fragment = url_part(u, CURLUPART_FRAGMENT, 0), *query = url_part(u, CURLUPART_QUERY, 0);
    char *url_user = url_part(u, CURLUPART_USER, CURLU_URLDECODE);
    char *url_password = url_part(u, CURLUPART_PASSWORD, CURLU_URLDECODE);
    int rc = -1;
    if (!scheme || (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
        errbuf_set(err, errlen, "the ClickHouse URL %s (%s) must start with http:// or https://",
                   printable, URL_SETTING);
    } else if (!host || !*host) {
        errbuf_set(err, errlen, "the ClickHouse URL %s (%s) has no host", printable, URL_SETTING);
    } else if (fragment) {
        errbuf_set(err, errlen,
                   "the ClickHouse URL %s (%s) has a #fragment: everything after '#' would be "
                   "dropped, the parameters cdcpipe adds with it; remove it (a '#' in a password "
                   "is written %%23)",
                   printable, URL_SETTING);
    } else if (query && query_has(query, "query")) {
        errbuf_set(err, errlen,
                   "the ClickHouse URL %s (%s) has a `query` parameter: cdcpipe sends its own "
                   "statements; remove it",
                   printable, URL_SETTING);
    } else {
        rc = 0;
    }
    if (rc == 0) {
        const char *u_name = user && *user ? user : url_user;
        const char *u_pass = password && *password ? password : url_password;
        /* ClickHouse takes a request without a user as user `default`; a password alone is
         * meant for that user, not dropped. */
        if (u_pass && *u_pass && !(u_name && *u_name)) u_name = "default";
        if (u_name && *u_name) {
            curl_easy_setopt(c->curl, CURLOPT_USERNAME, u_name);
            curl_easy_setopt(c->curl, CURLOPT_PASSWORD, u_pass ? u_pass : "");
        }
        c->password_inside = (u_pass && *u_pass) || (query && query_has(query, "password"));
        c->loopback = is_loopback(host);
        c->https = strcasecmp(scheme, "https") == 0;
        c->has_query = query != NULL;
        curl_url_set(u, CURLUPART_USER, NULL, 0);
        curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
        c->base_url = url_part(u, CURLUPART_URL, 0);
        c->printable = strdup(printable);
        if (!c->base_url || !c->printable) abort();
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(fragment);
    curl_free(query);
    curl_free(url_user);
    curl_free(url_password);
    curl_url_cleanup(u);
    return rc;
}

/* ---- the handle ---- */

static size_t collect_body(char *data, size_t size, size_t nmemb, void *ud)
{
    ch_client *c = ud;
    size_t n = size * nmemb, keep = n;
    if (c->body.len + keep > CH_MAX_ANSWER) {
        keep = CH_MAX_ANSWER - c->body.len;
        c->body_cut = true;
    }
    if (keep) strbuf_append(&c->body, data, keep);
    return n; /* the rest is read and dropped: the connection stays usable */
}

static size_t read_body(char *buf, size_t size, size_t nitems, void *ud)
{
    body_reader *r = ud;
    size_t room = size * nitems, done = 0;
    while (done < room && r->i < r->count) {
        const ch_span *s = &r->spans[r->i];
        size_t n = s->len - r->off;
        if (n > room - done) n = room - done;
        memcpy(buf + done, s->data + r->off, n);
        done += n;
        r->off += n;
        if (r->off == s->len) {
            r->i++;
            r->off = 0;
        }
    }
    return done;
}

/* libcurl rewinds when it must send the body again (a reused connection that was closed). */
static int seek_body(void *ud, curl_off_t offset, int origin)
{
    body_reader *r = ud;
    if (origin != SEEK_SET || offset < 0) return CURL_SEEKFUNC_CANTSEEK;
    size_t left = (size_t)offset;
    r->i = 0;
    r->off = 0;
    while (r->i < r->count && left >= r->spans[r->i].len) {
        left -= r->spans[r->i].len;
        r->i++;
    }
    if (r->i == r->count && left) return CURL_SEEKFUNC_FAIL;
    r->off = left;
    return CURL_SEEKFUNC_OK;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    ch_client *c = ud;
    return c->interrupt && c->interrupt(c->interrupt_ud) ? 1 : 0;
}

ch_client *ch_open(const char *url, const char *user, const char *password, const char *database,
                   char *err, size_t errlen)
{
    ch_client *c = xcalloc(1, sizeof *c);
    c->curl = curl_easy_init();
    c->database = xstrdup(database);
    if (!c->curl) abort();
    if (setup_url(c, url, user, password, err, errlen) != 0) {
        ch_close(c);
        return NULL;
    }
    c->timeout_ms = DEFAULT_TIMEOUT_MS;
    c->headers = curl_slist_append(NULL, "Content-Type: text/plain; charset=utf-8");
    c->headers = curl_slist_append(c->headers, "Expect:");
    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->curl, CURLOPT_READFUNCTION, read_body);
    curl_easy_setopt(c->curl, CURLOPT_READDATA, &c->reader);
    curl_easy_setopt(c->curl, CURLOPT_SEEKFUNCTION, seek_body);
    curl_easy_setopt(c->curl, CURLOPT_SEEKDATA, &c->reader);
    curl_easy_setopt(c->curl, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->curl_error);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    /* A stalled server (no byte for 60 s) is a timeout, whatever the size of the batch. */
    curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_TCP_KEEPALIVE, 1L);
    return c;
}

int ch_set_tls(ch_client *c, const char *ca_file, bool insecure, char *err, size_t errlen)
{
    if (ca_file && *ca_file) {
        /* Read it now: an unreadable CA file is a setting to fix, not a network error to retry
         * at every insert. */
        int fd = open(ca_file, O_RDONLY | O_CLOEXEC);
        struct stat st;
        char head[65536];
        ssize_t n = -1;
        int e = errno;
        if (fd >= 0) {
            if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
                e = EISDIR;
            } else {
                n = read(fd, head, sizeof head - 1);
                e = errno;
            }
            close(fd);
        }
        if (n < 0) {
            errbuf_set(err, errlen,
                       "cannot read the ClickHouse CA file %s (--clickhouse-ca, "
                       "CDCPIPE_CLICKHOUSE_CA or clickhouse.ca): %s",
                       ca_file, e == EISDIR ? "not a regular file" : strerror(e));
            return -1;
        }
        head[n] = '\0';
        if (!strstr(head, "-----BEGIN CERTIFICATE-----")) {
            errbuf_set(err, errlen,
                       "the ClickHouse CA file %s (--clickhouse-ca, CDCPIPE_CLICKHOUSE_CA or "
                       "clickhouse.ca) holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")",
                       ca_file);
            return -1;
        }
        curl_easy_setopt(c->curl, CURLOPT_CAINFO, ca_file);
    }
    curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, insecure ? 0L : 1L);
    curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, insecure ? 0L : 2L);
    return 0;
}

long ch_get_timeout(const ch_client *c)
{
    return c->timeout_ms;
}

void ch_set_timeout(ch_client *c, long timeout_ms)
{
    c->timeout_ms = timeout_ms;
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
}

void ch_set_interrupt(ch_client *c, bool (*interrupt)(void *ud), void *ud)
{
    c->interrupt = interrupt;
    c->interrupt_ud = ud;
}

bool ch_credentials_in_clear(const ch_client *c)
{
    return c->password_inside && !c->https && !c->loopback;
}

const char *ch_url_printable(const ch_client *c)
{
    return c->printable;
}

ch_client *ch_connect(const config *cfg, char *err, size_t errlen)
{
    ch_client *c = ch_open(cfg->clickhouse_url, cfg->clickhouse_user, cfg->clickhouse_password,
                           cfg->database, err, errlen);
    if (!c) return NULL;
    if (ch_set_tls(c, cfg->clickhouse_ca, cfg->clickhouse_insecure, err, errlen) != 0) {
        ch_close(c);
        return NULL;
    }
    ch_set_timeout(c, cfg->clickhouse_timeout * 1000);
    compress_method compression = COMPRESS_NONE;
    const int known = compress_parse(cfg->clickhouse_compression, &compression);
    CDC_ASSERT(known == 0); /* config checked the choice */
    ch_set_compression(c, compression);
    return c;
}

void ch_close(ch_client *c)
{
    if (!c) return;
    curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->headers);
    curl_slist_free_all(c->zheaders);
    strbuf_free(&c->zbody);
    strbuf_free(&c->url);
    strbuf_free(&c->body);
    strbuf_free(&c->sql);
    free(c->spans);
    curl_free(c->base_url);
    free(c->printable);
    free(c->database);
    free(c);
}

/* ---- classification ---- */

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
    case 216: /* QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING (an insert retried while it still runs) */
    case 241: /* MEMORY_LIMIT_EXCEEDED */
    case 242: /* TABLE_IS_READ_ONLY */
    case 252: /* TOO_MANY_PARTS ("Too many parts"; not "Too many partitions": see below) */
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

/* The row a message names: the last "at row N" (parse errors end with "(at row N)", constraint
 * violations say "violated at row N"; the last one, since event data quoted earlier in the
 * message could spell the words too). 0: none. */
static long row_named(const char *msg)
{
    long row = 0;
    for (const char *p = msg; (p = strstr(p, "at row ")) != NULL; p += 7) {
        const char *d = p + 7;
        if (*d < '1' || *d > '9') continue;
        char *end;
        errno = 0;
        long v = strtol(d, &end, 10);
        if (errno == 0 && v > 0) row = v;
    }
    return row;
}

ch_status ch_classify_answer(long http_status, const char *body, ch_failure *fail)
{
    fail->http_status = http_status;
    fail->code = 0;
    fail->row = 0;
    if (http_status == 200) return CH_OK;
    const char *code = strstr(body, "Code: ");
    if (code) fail->code = atoi(code + 6);
    if (fail->code < 0) fail->code = 0;
    fail->row = row_named(body);
    if (fail->code) {
        /* 252 is also "Too many partitions for single INSERT block (more than N)": the rows of
         * one INSERT span more partitions than max_partitions_per_insert_block allows. Waiting
         * never helps, smaller inserts do (each spans fewer partitions): rejected data, narrowed
         * down like any other rejection. "Too many parts" (merges behind) stays transient. */
        if (fail->code == 252 && strstr(body, "Too many partitions")) return CH_REJECTED;
        if (code_is_transient(fail->code)) return CH_TRANSIENT;
        if (code_is_deployment(fail->code) || http_status == 401 || http_status == 403)
            return CH_PERMANENT;
        return CH_REJECTED;
    }
    /* No ClickHouse error: a proxy or the HTTP layer answered. */
    switch (http_status) {
    case 408: /* Request Timeout */
    case 429: /* Too Many Requests */
    case 502:
    case 503:
    case 504:
        return CH_TRANSIENT;
    case 400: /* Bad Request: e.g. a request line or header the server will not take */
    case 413: /* Content Too Large */
    case 414: /* URI Too Long */
        return CH_REJECTED; /* something in this request: smaller ones can tell which rows */
    default:
        return CH_PERMANENT;
    }
}

ch_status ch_classify_transport(int curl_code)
{
    switch ((CURLcode)curl_code) {
    case CURLE_OK:
        return CH_OK;
    /* The client's own settings: retrying cannot help. */
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_FUNCTION_NOT_FOUND:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    /* The server's certificate does not verify against the configured CAs: the CA setting or
     * the server's certificate must change. */
    case CURLE_PEER_FAILED_VERIFICATION:
        return CH_PERMANENT;
    default:
        return CH_TRANSIENT;
    }
}

/* ---- requests ---- */

/* Sends the prepared URL with the body spans[0..count); classifies the outcome. what names the
 * request in errors. */
static ch_status perform(ch_client *c, const char *what, const ch_span *spans, size_t count,
                         strbuf *out, ch_failure *fail, char *err, size_t errlen)
{
    ch_failure none;
    if (!fail) fail = &none;
    fail->http_status = 0;
    fail->code = 0;
    fail->row = 0;
    strbuf_reset(&c->body);
    c->body_cut = false;
    c->curl_error[0] = '\0';
    curl_off_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += (curl_off_t)spans[i].len;
    c->reader = (body_reader){spans, count, 0, 0};
    curl_easy_setopt(c->curl, CURLOPT_URL, c->url.data);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, total);
    CURLcode rc = curl_easy_perform(c->curl);
    c->reader = (body_reader){0};
    if (rc != CURLE_OK) {
        const char *detail = c->curl_error[0] ? c->curl_error : curl_easy_strerror(rc);
        ch_status st = ch_classify_transport((int)rc);
        /* libcurl says "Operation timed out after N milliseconds ..." for CURLOPT_TIMEOUT_MS
         * (its connect and low-speed timeouts say otherwise) */
        if (rc == CURLE_OPERATION_TIMEDOUT && strncmp(detail, "Operation timed out", 19) == 0)
            errbuf_set(err, errlen,
                       "%s: no complete answer from ClickHouse at %s within %ld s "
                       "(--clickhouse-timeout): %s",
                       what, c->printable, c->timeout_ms / 1000, detail);
        else if (rc == CURLE_ABORTED_BY_CALLBACK)
            errbuf_set(err, errlen,
                       "%s: request to ClickHouse at %s abandoned: cdcpipe is stopping or handing "
                       "partitions over, and --shutdown-timeout has passed",
                       what, c->printable);
        else if (st == CH_PERMANENT)
            errbuf_set(err, errlen,
                       "%s: cannot use ClickHouse at %s: %s (check the URL --clickhouse and, for "
                       "https://, the CA file --clickhouse-ca)",
                       what, c->printable, detail);
        else
            errbuf_set(err, errlen, "%s: cannot reach ClickHouse at %s: %s", what, c->printable,
                       detail);
        return st;
    }
    long http_status = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &http_status);
    const char *msg = c->body.len ? c->body.data : "";
    ch_status st = ch_classify_answer(http_status, msg, fail);
    if (st == CH_OK) {
        if (out && c->body.len) strbuf_append(out, c->body.data, c->body.len);
        return CH_OK;
    }
    /* One line of the server's message is enough to act on; bodies can be long. */
    int snippet = (int)strcspn(msg, "\n");
    if (snippet > 600) snippet = 600;
    errbuf_set(err, errlen, "%s: ClickHouse answered HTTP %ld: %.*s", what, http_status, snippet,
               msg);
    size_t used = strlen(err);
    if (http_status == 401 || http_status == 403 || fail->code == 516 || fail->code == 192 ||
        fail->code == 193 || fail->code == 194)
        errbuf_set(err + used, errlen - used,
                   " (check the ClickHouse user and password: CDCPIPE_CLICKHOUSE_USER/_PASSWORD or "
                   "the URL)");
    else if (st == CH_REJECTED && !fail->code)
        errbuf_set(err + used, errlen - used,
                   " (no ClickHouse error: the server or a proxy before it refused the request "
                   "itself, e.g. as too large)");
    return st;
}

static void start_url(ch_client *c)
{
    strbuf_reset(&c->url);
    strbuf_puts(&c->url, c->base_url);
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
    ch_span body = {sql, strlen(sql)};
    return perform(c, what, &body, 1, out, fail, err, errlen);
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

const char *ch_insert_settings(int major, int minor)
{
    /* async_insert (21.11+, on by default since 26.3) would acknowledge rows before they are
     * written: cdcpipe commits offsets on the acknowledgement, so it must be off. 18.16 refuses
     * settings it does not know, so it gets only what it has. */
    if (major > 21 || (major == 21 && minor >= 11))
        return "input_format_skip_unknown_fields=1&async_insert=0";
    return "input_format_skip_unknown_fields=1";
}

/* Asks the server's version once (the settings an INSERT may name depend on it). */
static ch_status learn_version(ch_client *c, ch_failure *fail, char *err, size_t errlen)
{
    if (c->server_major) return CH_OK;
    strbuf out = {0};
    ch_status st = ch_exec(c, "SELECT version()", &out, fail, err, errlen);
    if (st == CH_OK &&
        (!out.data || sscanf(out.data, "%d.%d", &c->server_major, &c->server_minor) != 2 ||
         c->server_major <= 0)) {
        errbuf_set(err, errlen,
                   "ClickHouse answered SELECT version() with \"%.40s\", not a version",
                   out.data ? out.data : "");
        c->server_major = 0;
        st = CH_PERMANENT;
    }
    if (st == CH_OK) {
        snprintf(c->server_version, sizeof c->server_version, "%.*s",
                 (int)strcspn(out.data, " \r\n\t"), out.data);
    }
    strbuf_free(&out);
    return st;
}

void ch_set_query_id(ch_client *c, const char *id)
{
    snprintf(c->query_id, sizeof c->query_id, "%s", id ? id : "");
    for (char *p = c->query_id; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_') *p = '_';
}

const char *ch_server_version(ch_client *c)
{
    char err[512];
    ch_failure fail;
    if (!c->server_major && learn_version(c, &fail, err, sizeof err) != CH_OK) return NULL;
    return c->server_version;
}

void ch_set_compression(ch_client *c, compress_method method)
{
    c->compression = method;
    c->compression_checked = method == COMPRESS_NONE;
    curl_slist_free_all(c->zheaders);
    c->zheaders = NULL;
    if (method == COMPRESS_NONE) return;
    for (const struct curl_slist *h = c->headers; h; h = h->next)
        c->zheaders = curl_slist_append(c->zheaders, h->data);
    char line[64];
    snprintf(line, sizeof line, "Content-Encoding: %s", compress_name(method));
    c->zheaders = curl_slist_append(c->zheaders, line);
    if (!c->zheaders) abort();
}

/* Sends spans[0..count) compressed with the client's method (Content-Encoding set for this
 * request only). */
static ch_status perform_compressed(ch_client *c, const char *what, const ch_span *spans,
                                    size_t count, strbuf *out, ch_failure *fail, char *err,
                                    size_t errlen)
{
    compress_stream z;
    char why[200];
    int rc = compress_begin(&z, c->compression, &c->zbody, why, sizeof why);
    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = compress_add(&z, spans[i].data, spans[i].len, why, sizeof why);
    char why_end[200];
    if (compress_end(&z, why_end, sizeof why_end) != 0 && rc == 0) {
        memcpy(why, why_end, sizeof why);
        rc = -1;
    }
    if (rc != 0) {
        if (fail) *fail = (ch_failure){0, 0, 0};
        errbuf_set(err, errlen, "%s: cannot compress the request body (%s): %s", what,
                   compress_name(c->compression), why);
        return CH_PERMANENT;
    }
    const ch_span body = {c->zbody.data, c->zbody.len};
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->zheaders);
    ch_status st = perform(c, what, &body, 1, out, fail, err, errlen);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
    return st;
}

ch_status ch_check_compression(ch_client *c, char *err, size_t errlen)
{
    if (c->compression_checked) return CH_OK;
    ch_failure fail;
    ch_status st = learn_version(c, &fail, err, errlen);
    if (st != CH_OK) return st;
    static const char probe[] = "SELECT 1";
    const ch_span body = {probe, sizeof probe - 1};
    char what[96], why[700];
    snprintf(what, sizeof what, "a %s-compressed request (--clickhouse-compression)",
             compress_name(c->compression));
    start_url(c);
    st = perform_compressed(c, what, &body, 1, NULL, &fail, why, sizeof why);
    if (st == CH_OK) {
        c->compression_checked = true;
        return CH_OK;
    }
    if (fail.code == CODE_UNKNOWN_COMPRESSION || (fail.http_status && strstr(why, "Encoding"))) {
        errbuf_set(err, errlen,
                   "--clickhouse-compression %s: ClickHouse %s at %s does not take a "
                   "%s-compressed request body (gzip works with every version, zstd needs 21.1 "
                   "or newer, lz4 a newer server still): choose another method or none. The "
                   "server answered: %s",
                   compress_name(c->compression), c->server_version, c->printable,
                   compress_name(c->compression), why);
        return CH_REJECTED;
    }
    errbuf_set(err, errlen, "%s", why);
    return st;
}

ch_status ch_insert(ch_client *c, const char *table, char *const *columns, size_t ncolumns,
                    ch_format format, const ch_span *rows, size_t nrows, ch_failure *fail,
                    char *err, size_t errlen)
{
    ch_status st = learn_version(c, fail, err, errlen);
    if (st != CH_OK) return st;
    if (!c->compression_checked) {
        st = ch_check_compression(c, err, errlen);
        if (st == CH_REJECTED) st = CH_PERMANENT; /* no row can fix it: the setting must change */
        if (st != CH_OK) return st;
    }
    strbuf *sql = &c->sql;
    strbuf_reset(sql);
    strbuf_puts(sql, "INSERT INTO ");
    ch_quote_table(sql, c->database, table);
    strbuf_puts(sql, " (");
    for (size_t i = 0; i < ncolumns; i++) {
        if (i) strbuf_puts(sql, ", ");
        quote_ident(sql, columns[i], strlen(columns[i]));
    }
    /* The data starts after the line break that ends the statement (exactly one: the server
     * skips spaces and one line break, so a RowBinary body may start with any byte). */
    strbuf_puts(sql, format == CH_ROW_BINARY ? ") FORMAT RowBinary\n" : ") FORMAT JSONEachRow\n");
    if (c->spans_cap < nrows + 1) {
        c->spans_cap = nrows + 1;
        c->spans = xrealloc(c->spans, c->spans_cap, sizeof *c->spans);
    }
    c->spans[0] = (ch_span){sql->data, sql->len};
    memcpy(c->spans + 1, rows, nrows * sizeof *rows);
    start_url(c);
    strbuf_putc(&c->url, '&');
    strbuf_puts(&c->url, ch_insert_settings(c->server_major, c->server_minor));
    if (c->query_id[0]) { /* [a-zA-Z0-9._-] only (ch_set_query_id): no escaping needed */
        strbuf_puts(&c->url, "&log_queries=1&query_id=");
        strbuf_puts(&c->url, c->query_id);
    }
    char what[300];
    snprintf(what, sizeof what, "insert into %s", table);
    if (c->compression != COMPRESS_NONE)
        return perform_compressed(c, what, c->spans, nrows + 1, NULL, fail, err, errlen);
    return perform(c, what, c->spans, nrows + 1, NULL, fail, err, errlen);
}
