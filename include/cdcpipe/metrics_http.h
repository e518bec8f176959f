/*
 * metrics_http — the --metrics ADDR:PORT endpoint (libmicrohttpd), in a thread of its own:
 *   GET /metrics  the metrics in the Prometheus text format 0.0.4 (metrics_render)
 *   GET /healthz  200 "ok" while the consumer thread and every worker turned within
 *                 METRICS_HTTP_STALL_MS (or wait for one that did: metrics_healthy), else 503
 *                 naming the thread
 *   GET /readyz   200 "ready", or 503 with a one-line reason (metrics_ready)
 * HEAD works wherever GET does; other methods get 405 (with Allow), other paths 404.
 *
 * A slow or hostile client cannot stall the pipeline: the server thread only reads the shared
 * metrics (no lock the pipeline takes), and it bounds what a client may hold: at most
 * METRICS_HTTP_MAX_CONNECTIONS connections (METRICS_HTTP_MAX_PER_IP from one address), each
 * closed after METRICS_HTTP_TIMEOUT_S seconds without progress (one that never sends its request
 * or never reads the answer), request headers within METRICS_HTTP_MEMORY bytes (a longer request
 * line or header gets 414/431 and is closed).
 *
 * @locality: metrics_server_start/stop from the main thread; the handlers run on libmicrohttpd's
 * thread. @locks: none of cdcpipe's.
 */
#ifndef CDCPIPE_METRICS_HTTP_H
#define CDCPIPE_METRICS_HTTP_H

#include <stddef.h>

#include "cdcpipe/metrics.h"

#define METRICS_HTTP_MAX_CONNECTIONS 32
#define METRICS_HTTP_MAX_PER_IP      8
#define METRICS_HTTP_TIMEOUT_S       5
#define METRICS_HTTP_MEMORY          (32 * 1024)
/* /healthz: how long the main loop may go without a turn. Every poll (10 per second), every
 * ClickHouse request in progress (libcurl asks about once a second) and every event turn it;
 * only a thread stuck for this long fails it. */
#define METRICS_HTTP_STALL_MS 30000

typedef struct metrics_server metrics_server;

/* Parses "HOST:PORT", "[IPv6]:PORT" or ":PORT" (every address) into what getaddrinfo takes.
 * Returns 0, or -1 with err naming the text and the expected form. Pure; for tests. */
int metrics_http_parse_listen(const char *listen, char *host, size_t hostlen, char *port,
                              size_t portlen, char *err, size_t errlen);

/* Starts serving m on `listen` (PORT 0: a free port, see metrics_server_port). Returns NULL
 * with err (the address, and why: in use, not an address of this machine) when it cannot. */
metrics_server *metrics_server_start(metrics *m, const char *listen, char *err, size_t errlen);
/* The port it listens on. */
int metrics_server_port(const metrics_server *s);
/* Stops the server thread and closes every connection. NULL: nothing. */
void metrics_server_stop(metrics_server *s);

#endif
