/*
 * metrics_http — /metrics, /healthz and /readyz over libmicrohttpd (see
 * include/cdcpipe/metrics_http.h).
 */
#include "cdcpipe/metrics_http.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cdcpipe/errbuf.h"
#include "cdcpipe/log.h"
#include "cdcpipe/prom_text.h"
#include "cdcpipe/xalloc.h"

struct metrics_server {
    struct MHD_Daemon *daemon;
    metrics *m;
    int port;
};

int metrics_http_parse_listen(const char *listen, char *host, size_t hostlen, char *port,
                              size_t portlen, char *err, size_t errlen)
{
    const char *colon = strrchr(listen, ':');
    const char *h = listen;
    size_t hlen = colon ? (size_t)(colon - listen) : 0;
    if (colon && h[0] == '[') { /* [IPv6]:PORT */
        if (hlen < 2 || h[hlen - 1] != ']') colon = NULL;
        h++;
        hlen -= 2;
    } else if (colon && memchr(h, ':', hlen)) {
        colon = NULL; /* an IPv6 address without brackets: ambiguous */
    }
    const char *p = colon ? colon + 1 : "";
    bool digits = *p && strspn(p, "0123456789") == strlen(p) && strlen(p) <= 5 && atol(p) <= 65535;
    if (!colon || !digits || hlen >= hostlen || strlen(p) >= portlen) {
        errbuf_set(err, errlen,
                   "--metrics \"%s\": expected HOST:PORT, [IPv6]:PORT or :PORT (every address), "
                   "e.g. 127.0.0.1:9187",
                   listen);
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    snprintf(port, portlen, "%s", p);
    return 0;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *type,
                              char *body, size_t len, bool owned)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        if (owned) free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, "Allow", "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result text(struct MHD_Connection *c, unsigned status, const char *line)
{
    char *body = xmalloc(strlen(line) + 2);
    size_t len = (size_t)sprintf(body, "%s\n", line);
    return answer(c, status, "text/plain; charset=utf-8", body, len, true);
}

/* @locality: libmicrohttpd's thread. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    metrics_server *s = cls;
    (void)version;
    (void)upload_data;
    (void)con_cls;
    bool known =
        strcmp(url, "/metrics") == 0 || strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0;
    if (!known) return text(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics, /healthz or /readyz");
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        *upload_data_size = 0; /* a body is not read */
        return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: use GET");
    }
    if (strcmp(url, "/metrics") == 0) {
        strbuf page = {0};
        metrics_render(s->m, &page);
        if (!page.data) strbuf_puts(&page, "");
        return answer(c, MHD_HTTP_OK, PROM_TEXT_CONTENT_TYPE, page.data, page.len, true);
    }
    if (strcmp(url, "/healthz") == 0) {
        unsigned stalled = 0;
        if (metrics_healthy(s->m, METRICS_HTTP_STALL_MS, &stalled))
            return text(c, MHD_HTTP_OK, "ok");
        char line[160];
        if (stalled == METRICS_CONSUMER)
            snprintf(line, sizeof line, "stalled: the consumer thread has not turned for %d s",
                     METRICS_HTTP_STALL_MS / 1000);
        else
            snprintf(line, sizeof line, "stalled: worker %u has not turned for %d s", stalled,
                     METRICS_HTTP_STALL_MS / 1000);
        return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, line);
    }
    const char *reason;
    bool ready = metrics_ready(s->m, &reason);
    return text(c, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, reason);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    (void)cls;
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    log_debug("metrics endpoint: %s", line);
}

metrics_server *metrics_server_start(metrics *m, const char *listen, char *err, size_t errlen)
{
    char host[256], port[8];
    if (metrics_http_parse_listen(listen, host, sizeof host, port, sizeof port, err, errlen) != 0)
        return NULL;
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int e = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (e != 0) {
        errbuf_set(err, errlen, "--metrics %s: %s is not an address of this machine (%s)", listen,
                   host, gai_strerror(e));
        return NULL;
    }
    metrics_server *s = xcalloc(1, sizeof *s);
    s->m = m;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->daemon =
        MHD_start_daemon(flags, 0, NULL, NULL, handle, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                         MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)METRICS_HTTP_MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                         (unsigned)METRICS_HTTP_MAX_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned)METRICS_HTTP_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                         (size_t)METRICS_HTTP_MEMORY, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->daemon) {
        errbuf_set(err, errlen,
                   "--metrics %s: cannot listen there (the port is in use, or the address is not "
                   "one of this machine's)",
                   listen);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : atoi(port);
    log_info("metrics: serving /metrics, /healthz and /readyz on %s%s%s:%d",
             strchr(host, ':') ? "[" : "", host[0] ? host : "0.0.0.0", strchr(host, ':') ? "]" : "",
             s->port);
    return s;
}

int metrics_server_port(const metrics_server *s)
{
    return s->port;
}

void metrics_server_stop(metrics_server *s)
{
    if (!s) return;
    MHD_stop_daemon(s->daemon);
    free(s);
}
