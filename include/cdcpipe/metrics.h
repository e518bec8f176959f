/*
 * metrics — the one home for what an operator can read about a run: the counters of the
 * --once summary, the periodic `progress:` log line and the final `stopped:` line, and every
 * series /metrics exports (metrics_http.h) in the Prometheus text format (prom_text.h).
 *
 * Threads. One metrics instance is shared by every thread of the process: the consumer, the
 * partition workers, the ClickHouse inserts, the lag monitor (lag.h) and the HTTP server that
 * renders it. Every update is a relaxed atomic operation (C11 <stdatomic.h>) on a value of its
 * own; nothing an update does waits for a scrape, and a scrape waits for nothing.
 *   - The summary counters below are plain _Atomic fields: `m->consumed++` is an atomic
 *     increment; metrics_add does the same with relaxed ordering (cheaper on weak memory).
 *   - Labelled series (by topic, table, stage, partition, ...) live in a registry: per family an
 *     append-only, singly linked list whose head is an atomic pointer. Finding an existing series
 *     is a walk with acquire loads and string compares, no lock; creating one (a topic, table or
 *     partition seen for the first time) takes the registry's mutex for the time of a malloc and
 *     a push, and only writers that create series take it: a scrape never does. Series are
 *     freed by metrics_free only. A series that no longer applies (a revoked partition, an old
 *     build_info) is hidden from the scrape, not removed.
 *   - Gauges that several workers each own a part of (rows waiting per table) keep one slot per
 *     worker (worker index < METRICS_MAX_WORKERS); the scrape shows their sum.
 *   - A histogram keeps one counter per bucket, not cumulated: the scrape cumulates, and its
 *     _count is the sum of the buckets, so _count always equals the +Inf bucket.
 * Values read by a scrape are each exact; values of different series may be from instants a
 * few microseconds apart (Prometheus' own clients make the same trade).
 *
 * @locality: any thread, for every function unless it says otherwise.
 * @locks: the registry mutex, only while a new series is created; metrics_render takes none.
 */
#ifndef CDCPIPE_METRICS_H
#define CDCPIPE_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdcpipe/clickhouse.h"
#include "cdcpipe/strbuf.h"

/* Worker slots of the per-worker gauges (metrics_set_waiting). */
#define METRICS_MAX_WORKERS 64

typedef struct metrics_registry metrics_registry;

typedef struct {
    _Atomic uint64_t consumed;        /* Kafka records handed to the pipeline (the summary's
                                       * figure: records handed back by a rebalance are taken
                                       * off again, see metrics_handed_back) */
    _Atomic uint64_t tombstones;      /* null values, skipped */
    _Atomic uint64_t filtered;        /* transform returned nothing and emitted nothing */
    _Atomic uint64_t dead_lettered;   /* bad events: decode, Lua or ClickHouse-rejected (logged) */
    _Atomic uint64_t events_inserted; /* events whose rows are all acknowledged by ClickHouse */
    _Atomic uint64_t rows_inserted;
    _Atomic uint64_t retries;         /* insert attempts repeated after a transient failure */
    _Atomic uint64_t unknown_columns; /* row keys the target table has no column for */
    _Atomic uint64_t ddl;             /* cdc.ddl statements run */
    _Atomic uint64_t skipped; /* events of a replayed range whose rows were all in ClickHouse
                               * already (the insert ledger, ledger.h): not inserted again */
    metrics_registry *reg;    /* labelled series, gauges, histograms; NULL: only the fields above
                               * count (every function below is then a no-op) */
} metrics;

/* Zeroes m and creates its registry. started_unix_ms: when the process started (for
 * process_start_time_seconds), 0 for now. @locality: the main thread, before other threads use m.
 */
void metrics_init(metrics *m);
/* Frees the registry. @locality: the main thread, after every other thread stopped using m. */
void metrics_free(metrics *m);
/* Zeroes the summary fields above (a new run); the registry and its series stay. */
void metrics_reset(metrics *m);

static inline void metrics_add(_Atomic uint64_t *counter, uint64_t n)
{
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

/* One line: "consumed=… tombstones=… filtered=… dead_lettered=… events_inserted=…
 * rows_inserted=… retries=… [ddl=…] [unknown_columns=…] [skipped=…] seconds=…" (the bracketed ones
 * when not zero). consumed = tombstones + filtered + dead_lettered + events_inserted + skipped once
 * everything is flushed. */
void metrics_format_summary(const metrics *m, double seconds, char *out, size_t outlen);

/* Logs `progress: <summary>` (info) when interval_s > 0 and interval_s seconds have passed since
 * *last_ms (clock_ms(); updated); started_ms is when the run began. */
void metrics_log_progress(const metrics *m, long interval_s, int64_t started_ms, int64_t *last_ms);

/* ---- events (the consumer / worker that handles them) ---- */

/* A record of `topic` handed to the pipeline: consumed + 1, cdcpipe_events_consumed_total. */
void metrics_consumed(metrics *m, const char *topic);
/* n events handed back uncommitted by a rebalance: consumed − n (the summary counts them where
 * they are handled again), cdcpipe_events_handed_back_total + n. */
void metrics_handed_back(metrics *m, uint64_t n);
/* An event dead-lettered at `stage` ("decode", "lua", "clickhouse"): dead_lettered + 1 and
 * cdcpipe_events_dead_lettered_total{stage}. */
void metrics_dead_lettered(metrics *m, const char *stage);

/* Which per-event limit of the script an event ran into (script_last_limit). */
typedef enum {
    METRICS_LIMIT_NONE,
    METRICS_LIMIT_INSTRUCTIONS, /* --lua-instructions */
    METRICS_LIMIT_TIME,         /* --lua-timeout */
    METRICS_LIMIT_MEMORY,       /* --lua-memory-mb */
} metrics_limit;
void metrics_lua_limit(metrics *m, metrics_limit limit);

/* ---- inserts (the thread that owns the batch and the ClickHouse client) ---- */

/* A statement other than an INSERT of rows (the insert ledger's, cdc.ddl's) got answer st: a
 * transient failure makes /readyz say ClickHouse is unreachable, as a failed insert does. */
void metrics_clickhouse_answered(metrics *m, ch_status st);

/* One INSERT request of `rows` rows and `bytes` body bytes into table took duration_ms and
 * ended with st: cdcpipe_inserts_total{outcome} (ok, retried: transient, rejected, failed:
 * permanent), bytes sent, the duration and rows-per-insert histograms, the time of the last
 * successful insert, and the readiness's "last ClickHouse contact" (any answer but a transient
 * failure is a contact). */
void metrics_insert_attempt(metrics *m, const char *table, size_t rows, size_t bytes, ch_status st,
                            int64_t duration_ms);
/* rows of table acknowledged: rows_inserted and cdcpipe_rows_inserted_total{table}. */
void metrics_rows_inserted(metrics *m, const char *table, uint64_t rows);

typedef enum {
    METRICS_RETRY_TRANSIENT,  /* an insert repeated after ClickHouse was unreachable, overloaded
                               * or timed out (the summary's `retries`) */
    METRICS_RETRY_DEPLOYMENT, /* a ddl() statement repeated while ClickHouse was unreachable
                               * (start-up, reload) */
    METRICS_RETRY_DATA,       /* an insert of part of a rejected batch (narrowing it down to the
                               * bad rows) */
} metrics_retry_class;
void metrics_retry(metrics *m, metrics_retry_class c);

/* The latency histograms of one table: metrics_latency_for once per table and insert, then
 * metrics_latency_observe once per acknowledged row. */
typedef struct {
    struct series *e2e, *kafka; /* NULL: not counted */
} metrics_latency;
metrics_latency metrics_latency_for(metrics *m, const char *table);
/* ack_ms: wall-clock (unix ms) of ClickHouse's acknowledgement; origin_ms: the source commit
 * (Debezium source.ts_ms), else the Kafka timestamp, else -1 (not counted); kafka_ms: the
 * record's Kafka timestamp or -1. A negative difference (clocks apart) counts as 0. */
void metrics_latency_observe(const metrics_latency *lat, int64_t ack_ms, int64_t origin_ms,
                             int64_t kafka_ms);
/* Wall-clock now in unix milliseconds (for ack_ms). */
int64_t metrics_unix_ms(void);

/* Rows and bytes waiting in `worker`'s batches for table (a snapshot: set, not added). */
void metrics_set_waiting(metrics *m, unsigned worker, const char *table, uint64_t rows,
                         uint64_t bytes);

/* ---- Kafka (the consumer thread; metrics_commit: the worker that commits) ---- */

/* A partition assigned (true) or revoked (false): counters, the assigned gauge, and the set of
 * partitions whose lag the lag monitor follows. */
void metrics_partition_assigned(metrics *m, const char *topic, int32_t partition, bool assigned);
/* A commit of offsets finished: cdcpipe_commits_total{outcome}, last commit time when ok. */
void metrics_commit(metrics *m, bool ok);
/* How many workers have their partitions paused now (each while it retries an insert):
 * cdcpipe_paused. @locality: the consumer thread (it pauses and resumes on the workers' behalf). */
void metrics_set_paused(metrics *m, unsigned workers);

/* The partitions currently assigned, for the lag monitor: calls fn for each. */
void metrics_each_assigned(metrics *m, void (*fn)(void *ud, const char *topic, int32_t partition),
                           void *ud);
/* The lag monitor's findings for one partition (committed < 0: the group has none). */
void metrics_set_lag(metrics *m, const char *topic, int32_t partition, int64_t committed,
                     int64_t high, int64_t lag);

/* ---- the run ---- */

typedef enum {
    METRICS_STARTING, /* ClickHouse, ddl(), joining the group */
    METRICS_RUNNING,
    METRICS_STOPPING, /* a stop was requested, or the run ended */
    METRICS_FAILED,   /* a fatal error: nothing more is committed */
} metrics_phase;
void metrics_set_phase(metrics *m, metrics_phase phase);
/* Liveness (/healthz) is watched per thread: the consumer thread (METRICS_CONSUMER) and each
 * worker (its index). A thread is alive while it beats (a turn of its loop, a poll, a ClickHouse
 * request making progress) at least every stall_ms, or while it waits on purpose for another
 * watched thread (metrics_thread_waiting: the consumer during a revoke, a reload or the final
 * join; a worker parked during a reload, or ended): then the one it waits for answers for both.
 * @locality: each thread for its own slot. */
#define METRICS_CONSUMER METRICS_MAX_WORKERS
void metrics_heartbeat(metrics *m, unsigned thread);
void metrics_thread_waiting(metrics *m, unsigned thread, bool waiting);
/* A turn of worker's loop: its heartbeat; at most every 500 ms the waiting gauges from its two
 * flights' batches (batch.h's batch_set, passed as void * to keep this header light: the one
 * filling and the one being inserted, which its insert thread only reads); both NULL: the worker
 * ended, its gauges go to 0 now. @locality: that worker's thread. */
void metrics_tick(metrics *m, unsigned worker, const void *filling, const void *flying);
/* The number of workers running (cdcpipe_workers); their heartbeats start now.
 * @locality: the consumer thread, once the workers are started. */
void metrics_set_workers(metrics *m, unsigned workers);
/* cdcpipe_build_info{version,script_sha256,format} 1: script_path is hashed (SHA-256). */
void metrics_set_build_info(metrics *m, const char *version, const char *script_path,
                            const char *format);
/* A SIGHUP reload: script_path of the script now running, NULL when the reload failed. */
void metrics_reload(metrics *m, const char *script_path);

/* /healthz: true while every watched thread is alive (metrics_heartbeat); else false and
 * *stalled the thread that is not (METRICS_CONSUMER or a worker index). */
bool metrics_healthy(const metrics *m, int64_t stall_ms, unsigned *stalled);
/* /readyz: true when partitions are assigned, the last ClickHouse contact succeeded and the run
 * is neither starting nor over; otherwise false and *reason a one-line static text. */
bool metrics_ready(const metrics *m, const char **reason);

/* Appends the whole /metrics page (Prometheus text format 0.0.4), process_* metrics included.
 * @locks: none. */
void metrics_render(metrics *m, strbuf *out);

#endif
