/*
 * metrics — counters, gauges and histograms shared by every thread, the summary, the progress
 * line and the /metrics page (see include/cdcpipe/metrics.h for the threading rules).
 */
#include "cdcpipe/metrics.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cdcpipe/batch.h"
#include "cdcpipe/clock.h"
#include "cdcpipe/log.h"
#include "cdcpipe/prom_text.h"
#include "cdcpipe/sha256.h"
#include "cdcpipe/xalloc.h"

typedef enum { K_COUNTER, K_GAUGE, K_HISTOGRAM } kind;

/* Every family /metrics exports, in page order. */
typedef enum {
    F_CONSUMED,
    F_HANDED_BACK,
    F_TOMBSTONES,
    F_FILTERED,
    F_DEAD_LETTERED,
    F_EVENTS_INSERTED,
    F_ROWS_INSERTED,
    F_BYTES_SENT,
    F_INSERTS,
    F_RETRIES,
    F_COMMITS,
    F_ASSIGNED_TOTAL,
    F_REVOKED_TOTAL,
    F_RELOADS,
    F_LUA_LIMITS,
    F_LAG,
    F_COMMITTED_OFFSET,
    F_HIGH_WATERMARK,
    F_ASSIGNED,
    F_PAUSED,
    F_ROWS_WAITING,
    F_BYTES_WAITING,
    F_LAST_INSERT,
    F_LAST_COMMIT,
    F_WORKERS,
    F_READY,
    F_BUILD_INFO,
    F_INSERT_DURATION,
    F_INSERT_ROWS,
    F_E2E,
    F_KAFKA_TO_ACK,
    F_PARTITIONS, /* internal, not exported: 1 while (topic, partition) is assigned */
    NFAMILIES
} family_id;

#define MAX_LABELS  3
#define MAX_BUCKETS 24

/* latencies are observed in milliseconds, exported in seconds */
static const double latency_ms[] = {5,     10,     25,     50,     100,     250,
                                    500,   1000,   2500,   5000,   10000,   30000,
                                    60000, 120000, 300000, 600000, 1800000, 3600000};
static const double insert_ms[] = {1,   2.5,  5,    10,   25,    50,    100,   250,
                                   500, 1000, 2500, 5000, 10000, 30000, 60000, 120000};
static const double rows_per_insert[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
#define NB(a) (int)(sizeof a / sizeof a[0])

typedef struct {
    const char *name;
    kind k;
    const char *help;
    int nlabels;
    const char *labels[MAX_LABELS];
    double scale;         /* exported = stored / scale (1 when 0) */
    int slots;            /* values per series: worker slots summed (gauges), else 1 */
    const double *bounds; /* histograms: upper bounds, in stored units */
    int nbounds;
    long field; /* offsetof a summary field of `metrics` holding the value, or -1 */
} family_def;

#define NOFIELD  -1
#define FIELD(f) (long)offsetof(metrics, f)

static const family_def families[NFAMILIES] = {
    [F_CONSUMED] = {"cdcpipe_events_consumed_total",
                    K_COUNTER,
                    "Kafka records handed to the pipeline, by topic (records handed back by a "
                    "rebalance and consumed again count twice)",
                    1,
                    {"topic"},
                    0,
                    1,
                    NULL,
                    0,
                    NOFIELD},
    [F_HANDED_BACK] = {"cdcpipe_events_handed_back_total",
                       K_COUNTER,
                       "Events handed back uncommitted because a rebalance took their partition "
                       "while ClickHouse was unreachable (they are consumed again)",
                       0,
                       {NULL},
                       0,
                       1,
                       NULL,
                       0,
                       NOFIELD},
    [F_TOMBSTONES] = {"cdcpipe_tombstones_total",
                      K_COUNTER,
                      "Records with a null value, skipped (no tombstone() in the script)",
                      0,
                      {NULL},
                      0,
                      1,
                      NULL,
                      0,
                      FIELD(tombstones)},
    [F_FILTERED] = {"cdcpipe_events_filtered_total",
                    K_COUNTER,
                    "Events for which transform returned and emitted nothing",
                    0,
                    {NULL},
                    0,
                    1,
                    NULL,
                    0,
                    FIELD(filtered)},
    [F_DEAD_LETTERED] = {"cdcpipe_events_dead_lettered_total",
                         K_COUNTER,
                         "Events sent to the dead letters, by the stage that refused them "
                         "(decode, lua, clickhouse)",
                         1,
                         {"stage"},
                         0,
                         1,
                         NULL,
                         0,
                         NOFIELD},
    [F_EVENTS_INSERTED] = {"cdcpipe_events_inserted_total",
                           K_COUNTER,
                           "Events whose rows were all acknowledged by ClickHouse",
                           0,
                           {NULL},
                           0,
                           1,
                           NULL,
                           0,
                           FIELD(events_inserted)},
    [F_ROWS_INSERTED] = {"cdcpipe_rows_inserted_total",
                         K_COUNTER,
                         "Rows acknowledged by ClickHouse, by table",
                         1,
                         {"table"},
                         0,
                         1,
                         NULL,
                         0,
                         NOFIELD},
    [F_BYTES_SENT] = {"cdcpipe_insert_bytes_total",
                      K_COUNTER,
                      "Bytes of INSERT bodies sent to ClickHouse, every attempt, by table",
                      1,
                      {"table"},
                      0,
                      1,
                      NULL,
                      0,
                      NOFIELD},
    [F_INSERTS] = {"cdcpipe_inserts_total",
                   K_COUNTER,
                   "INSERT requests by outcome: ok, retried (transient failure, tried again), "
                   "rejected (bad rows, narrowed down), failed (the deployment is wrong)",
                   1,
                   {"outcome"},
                   0,
                   1,
                   NULL,
                   0,
                   NOFIELD},
    [F_RETRIES] = {"cdcpipe_retries_total",
                   K_COUNTER,
                   "Requests repeated, by class: transient (ClickHouse unreachable or "
                   "overloaded), deployment (a ddl() statement while ClickHouse was "
                   "unreachable), data (part of a rejected batch)",
                   1,
                   {"class"},
                   0,
                   1,
                   NULL,
                   0,
                   NOFIELD},
    [F_COMMITS] = {"cdcpipe_commits_total",
                   K_COUNTER,
                   "Offset commits by outcome (ok, failed)",
                   1,
                   {"outcome"},
                   0,
                   1,
                   NULL,
                   0,
                   NOFIELD},
    [F_ASSIGNED_TOTAL] = {"cdcpipe_partitions_assigned_total",
                          K_COUNTER,
                          "Partitions assigned to this member by rebalances",
                          0,
                          {NULL},
                          0,
                          1,
                          NULL,
                          0,
                          NOFIELD},
    [F_REVOKED_TOTAL] = {"cdcpipe_partitions_revoked_total",
                         K_COUNTER,
                         "Partitions taken from this member by rebalances",
                         0,
                         {NULL},
                         0,
                         1,
                         NULL,
                         0,
                         NOFIELD},
    [F_RELOADS] = {"cdcpipe_script_reloads_total",
                   K_COUNTER,
                   "SIGHUP reloads of pipeline.lua by outcome (ok, failed: the previous version "
                   "keeps running)",
                   1,
                   {"outcome"},
                   0,
                   1,
                   NULL,
                   0,
                   NOFIELD},
    [F_LUA_LIMITS] = {"cdcpipe_lua_limit_hits_total",
                      K_COUNTER,
                      "Events stopped by a per-event limit of the script: instructions "
                      "(--lua-instructions), time (--lua-timeout), memory (--lua-memory-mb)",
                      1,
                      {"limit"},
                      0,
                      1,
                      NULL,
                      0,
                      NOFIELD},
    [F_LAG] = {"cdcpipe_consumer_lag",
               K_GAUGE,
               "Records behind: the partition's high watermark minus the group's committed "
               "offset, for the partitions assigned to this member",
               2,
               {"topic", "partition"},
               0,
               1,
               NULL,
               0,
               NOFIELD},
    [F_COMMITTED_OFFSET] = {"cdcpipe_committed_offset",
                            K_GAUGE,
                            "The group's committed offset (-1: none yet), assigned partitions",
                            2,
                            {"topic", "partition"},
                            0,
                            1,
                            NULL,
                            0,
                            NOFIELD},
    [F_HIGH_WATERMARK] = {"cdcpipe_high_watermark",
                          K_GAUGE,
                          "The partition's high watermark (offset of the next record written), "
                          "assigned partitions",
                          2,
                          {"topic", "partition"},
                          0,
                          1,
                          NULL,
                          0,
                          NOFIELD},
    [F_ASSIGNED] = {"cdcpipe_partitions_assigned",
                    K_GAUGE,
                    "Partitions assigned to this member now",
                    0,
                    {NULL},
                    0,
                    1,
                    NULL,
                    0,
                    NOFIELD},
    [F_PAUSED] = {"cdcpipe_paused",
                  K_GAUGE,
                  "Workers whose partitions are paused until ClickHouse takes their waiting batch "
                  "(0: none)",
                  0,
                  {NULL},
                  0,
                  1,
                  NULL,
                  0,
                  NOFIELD},
    [F_ROWS_WAITING] = {"cdcpipe_rows_waiting",
                        K_GAUGE,
                        "Rows in the batches, not yet acknowledged by ClickHouse, by table",
                        1,
                        {"table"},
                        0,
                        METRICS_MAX_WORKERS,
                        NULL,
                        0,
                        NOFIELD},
    [F_BYTES_WAITING] = {"cdcpipe_bytes_waiting",
                         K_GAUGE,
                         "Bytes of rows in the batches, not yet acknowledged, by table",
                         1,
                         {"table"},
                         0,
                         METRICS_MAX_WORKERS,
                         NULL,
                         0,
                         NOFIELD},
    [F_LAST_INSERT] = {"cdcpipe_last_insert_timestamp_seconds",
                       K_GAUGE,
                       "Unix time of the last INSERT ClickHouse acknowledged (0: none yet)",
                       0,
                       {NULL},
                       1000,
                       1,
                       NULL,
                       0,
                       NOFIELD},
    [F_LAST_COMMIT] = {"cdcpipe_last_commit_timestamp_seconds",
                       K_GAUGE,
                       "Unix time of the last successful offset commit (0: none yet)",
                       0,
                       {NULL},
                       1000,
                       1,
                       NULL,
                       0,
                       NOFIELD},
    [F_WORKERS] = {"cdcpipe_workers",
                   K_GAUGE,
                   "Partition workers inserting in parallel",
                   0,
                   {NULL},
                   0,
                   1,
                   NULL,
                   0,
                   NOFIELD},
    [F_READY] =
        {"cdcpipe_ready", K_GAUGE, "1 when /readyz answers 200", 0, {NULL}, 0, 1, NULL, 0, NOFIELD},
    [F_BUILD_INFO] = {"cdcpipe_build_info",
                      K_GAUGE,
                      "Always 1: the version, the SHA-256 of the pipeline.lua running and the "
                      "insert format",
                      3,
                      {"version", "script_sha256", "format"},
                      0,
                      1,
                      NULL,
                      0,
                      NOFIELD},
    [F_INSERT_DURATION] = {"cdcpipe_insert_duration_seconds",
                           K_HISTOGRAM,
                           "Duration of one INSERT request, by table",
                           1,
                           {"table"},
                           1000,
                           1,
                           insert_ms,
                           NB(insert_ms),
                           NOFIELD},
    [F_INSERT_ROWS] = {"cdcpipe_insert_rows",
                       K_HISTOGRAM,
                       "Rows per acknowledged INSERT request",
                       0,
                       {NULL},
                       0,
                       1,
                       rows_per_insert,
                       NB(rows_per_insert),
                       NOFIELD},
    [F_E2E] = {"cdcpipe_end_to_end_latency_seconds",
               K_HISTOGRAM,
               "From the source commit (Debezium source.ts_ms; the Kafka timestamp when the event "
               "has none) to ClickHouse's acknowledgement of the row, by table",
               1,
               {"table"},
               1000,
               1,
               latency_ms,
               NB(latency_ms),
               NOFIELD},
    [F_KAFKA_TO_ACK] = {"cdcpipe_kafka_to_ack_latency_seconds",
                        K_HISTOGRAM,
                        "From the record's Kafka timestamp to ClickHouse's acknowledgement of the "
                        "row, by table",
                        1,
                        {"table"},
                        1000,
                        1,
                        latency_ms,
                        NB(latency_ms),
                        NOFIELD},
    [F_PARTITIONS] = {NULL, K_GAUGE, NULL, 2, {"topic", "partition"}, 0, 1, NULL, 0, NOFIELD},
};

typedef struct series {
    struct series *_Atomic next;
    atomic_bool hidden;
    char *values[MAX_LABELS];
    _Atomic uint64_t v[]; /* slots; histograms: buckets (+Inf last), then the sum */
} series;

struct metrics_registry {
    series *_Atomic heads[NFAMILIES];
    pthread_mutex_t create;    /* creating a series; never taken by a reader */
    series *single[NFAMILIES]; /* the series of each label-less family */
    /* per watched thread (workers, then METRICS_CONSUMER): clock_ms() of its last beat, and
     * whether it waits on purpose for another (metrics_thread_waiting) */
    _Atomic int64_t heartbeat_ms[METRICS_MAX_WORKERS + 1];
    atomic_bool waiting[METRICS_MAX_WORKERS + 1];
    _Atomic unsigned nworkers; /* watched workers: [0, nworkers) */
    _Atomic int phase;
    atomic_bool clickhouse_ok;
    _Atomic int64_t last_tick_ms[METRICS_MAX_WORKERS];
    _Atomic uint64_t build_generation;
};

struct metrics_latency {
    series *e2e, *kafka;
};

static size_t nvalues(const family_def *f)
{
    return f->k == K_HISTOGRAM ? (size_t)f->nbounds + 2 : (size_t)f->slots;
}

static bool labels_match(const series *s, int n, const char *const *values)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s->values[i], values[i]) != 0) return false;
    return true;
}

/* The series of family f with these label values, created (visible) on first use. No lock
 * unless it is new. */
static series *series_get(metrics *m, family_id f, const char *const *values)
{
    metrics_registry *r = m->reg;
    const family_def *d = &families[f];
    if (d->nlabels == 0) return r->single[f];
    for (series *s = atomic_load_explicit(&r->heads[f], memory_order_acquire); s;
         s = atomic_load_explicit(&s->next, memory_order_acquire))
        if (labels_match(s, d->nlabels, values)) return s;
    pthread_mutex_lock(&r->create);
    series *s = atomic_load_explicit(&r->heads[f], memory_order_acquire);
    for (; s; s = atomic_load_explicit(&s->next, memory_order_acquire))
        if (labels_match(s, d->nlabels, values)) break;
    if (!s) {
        s = xcalloc(1, sizeof *s + nvalues(d) * sizeof s->v[0]);
        for (int i = 0; i < d->nlabels; i++)
            s->values[i] = xstrdup(values[i]);
        atomic_store_explicit(&s->next, atomic_load_explicit(&r->heads[f], memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&r->heads[f], s, memory_order_release);
    }
    pthread_mutex_unlock(&r->create);
    return s;
}

static series *series1(metrics *m, family_id f, const char *value)
{
    return series_get(m, f, &value);
}

static void inc(series *s, uint64_t n)
{
    atomic_fetch_add_explicit(&s->v[0], n, memory_order_relaxed);
}

static void set(series *s, int64_t v)
{
    atomic_store_explicit(&s->v[0], (uint64_t)v, memory_order_relaxed);
}

static void observe(series *s, const family_def *d, double v)
{
    int i = 0;
    while (i < d->nbounds && v > d->bounds[i])
        i++;
    atomic_fetch_add_explicit(&s->v[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->v[d->nbounds + 1], (uint64_t)(v < 0 ? 0 : v),
                              memory_order_relaxed);
}

int64_t metrics_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void metrics_init(metrics *m)
{
    memset(m, 0, sizeof *m);
    metrics_registry *r = xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->create, NULL);
    for (int f = 0; f < NFAMILIES; f++) {
        if (families[f].nlabels) continue;
        series *s = xcalloc(1, sizeof *s + nvalues(&families[f]) * sizeof s->v[0]);
        r->single[f] = s;
        atomic_store(&r->heads[f], s);
    }
    for (unsigned t = 0; t <= METRICS_MAX_WORKERS; t++)
        atomic_store(&r->heartbeat_ms[t], clock_ms());
    atomic_store(&r->phase, METRICS_STARTING);
    atomic_store(&r->clickhouse_ok, true);
    m->reg = r;
    set(r->single[F_WORKERS], 1);
    /* the outcomes exist from the start: rate() and absent() need no first event */
    static const char *const outcomes[] = {"ok", "retried", "rejected", "failed"};
    for (size_t i = 0; i < 4; i++)
        series1(m, F_INSERTS, outcomes[i]);
    static const char *const classes[] = {"transient", "deployment", "data"};
    for (size_t i = 0; i < 3; i++)
        series1(m, F_RETRIES, classes[i]);
    static const char *const stages[] = {"decode", "lua", "clickhouse"};
    for (size_t i = 0; i < 3; i++)
        series1(m, F_DEAD_LETTERED, stages[i]);
    series1(m, F_COMMITS, "ok");
    series1(m, F_COMMITS, "failed");
    series1(m, F_RELOADS, "ok");
    series1(m, F_RELOADS, "failed");
    static const char *const limits[] = {"instructions", "time", "memory"};
    for (size_t i = 0; i < 3; i++)
        series1(m, F_LUA_LIMITS, limits[i]);
}

void metrics_free(metrics *m)
{
    metrics_registry *r = m->reg;
    if (!r) return;
    for (int f = 0; f < NFAMILIES; f++) {
        series *s = atomic_load(&r->heads[f]);
        while (s) {
            series *next = atomic_load(&s->next);
            for (int i = 0; i < MAX_LABELS; i++)
                free(s->values[i]);
            free(s);
            s = next;
        }
    }
    pthread_mutex_destroy(&r->create);
    free(r);
    m->reg = NULL;
}

void metrics_reset(metrics *m)
{
    metrics_registry *r = m->reg;
    memset(m, 0, sizeof *m);
    m->reg = r;
}

void metrics_format_summary(const metrics *m, double seconds, char *out, size_t outlen)
{
    char extra[160] = "";
    if (m->ddl) snprintf(extra, sizeof extra, " ddl=%llu", (unsigned long long)m->ddl);
    if (m->unknown_columns)
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " unknown_columns=%llu",
                 (unsigned long long)m->unknown_columns);
    if (m->skipped) /* only after a replay (the insert ledger) */
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " skipped=%llu",
                 (unsigned long long)m->skipped);
    snprintf(out, outlen,
             "consumed=%llu tombstones=%llu filtered=%llu dead_lettered=%llu "
             "events_inserted=%llu rows_inserted=%llu retries=%llu%s seconds=%.2f",
             (unsigned long long)m->consumed, (unsigned long long)m->tombstones,
             (unsigned long long)m->filtered, (unsigned long long)m->dead_lettered,
             (unsigned long long)m->events_inserted, (unsigned long long)m->rows_inserted,
             (unsigned long long)m->retries, extra, seconds);
}

void metrics_log_progress(const metrics *m, long interval_s, int64_t started_ms, int64_t *last_ms)
{
    int64_t now = clock_ms();
    if (interval_s <= 0 || now - *last_ms < interval_s * 1000) return;
    char line[512];
    *last_ms = now;
    metrics_format_summary(m, (double)(now - started_ms) / 1000.0, line, sizeof line);
    log_info("progress: %s", line);
}

/* ---- events ---- */

void metrics_consumed(metrics *m, const char *topic)
{
    metrics_add(&m->consumed, 1);
    if (m->reg) inc(series1(m, F_CONSUMED, topic), 1);
}

void metrics_handed_back(metrics *m, uint64_t n)
{
    atomic_fetch_sub_explicit(&m->consumed, n, memory_order_relaxed);
    if (m->reg) inc(m->reg->single[F_HANDED_BACK], n);
}

void metrics_dead_lettered(metrics *m, const char *stage)
{
    metrics_add(&m->dead_lettered, 1);
    if (m->reg) inc(series1(m, F_DEAD_LETTERED, stage), 1);
}

void metrics_lua_limit(metrics *m, metrics_limit limit)
{
    static const char *const names[] = {NULL, "instructions", "time", "memory"};
    if (!m->reg || limit == METRICS_LIMIT_NONE) return;
    inc(series1(m, F_LUA_LIMITS, names[limit]), 1);
}

/* ---- inserts ---- */

void metrics_clickhouse_answered(metrics *m, ch_status st)
{
    metrics_registry *r = m ? m->reg : NULL;
    if (r) atomic_store_explicit(&r->clickhouse_ok, st != CH_TRANSIENT, memory_order_relaxed);
}

void metrics_insert_attempt(metrics *m, const char *table, size_t rows, size_t bytes, ch_status st,
                            int64_t duration_ms)
{
    metrics_registry *r = m->reg;
    if (!r) return;
    static const char *const outcome[] = {[CH_OK] = "ok",
                                          [CH_TRANSIENT] = "retried",
                                          [CH_PERMANENT] = "failed",
                                          [CH_REJECTED] = "rejected"};
    inc(series1(m, F_INSERTS, outcome[st]), 1);
    inc(series1(m, F_BYTES_SENT, table), bytes);
    observe(series1(m, F_INSERT_DURATION, table), &families[F_INSERT_DURATION],
            (double)duration_ms);
    atomic_store_explicit(&r->clickhouse_ok, st != CH_TRANSIENT, memory_order_relaxed);
    if (st != CH_OK) return;
    observe(r->single[F_INSERT_ROWS], &families[F_INSERT_ROWS], (double)rows);
    set(r->single[F_LAST_INSERT], metrics_unix_ms());
}

void metrics_rows_inserted(metrics *m, const char *table, uint64_t rows)
{
    metrics_add(&m->rows_inserted, rows);
    if (m->reg) inc(series1(m, F_ROWS_INSERTED, table), rows);
}

void metrics_retry(metrics *m, metrics_retry_class c)
{
    static const char *const names[] = {"transient", "deployment", "data"};
    if (c == METRICS_RETRY_TRANSIENT) metrics_add(&m->retries, 1);
    if (m->reg) inc(series1(m, F_RETRIES, names[c]), 1);
}

metrics_latency metrics_latency_for(metrics *m, const char *table)
{
    metrics_latency lat = {NULL, NULL};
    if (!m->reg) return lat;
    lat.e2e = series1(m, F_E2E, table);
    lat.kafka = series1(m, F_KAFKA_TO_ACK, table);
    return lat;
}

void metrics_latency_observe(const metrics_latency *lat, int64_t ack_ms, int64_t origin_ms,
                             int64_t kafka_ms)
{
    if (!lat->e2e) return;
    if (origin_ms < 0) origin_ms = kafka_ms;
    if (origin_ms >= 0)
        observe(lat->e2e, &families[F_E2E], ack_ms > origin_ms ? (double)(ack_ms - origin_ms) : 0);
    if (kafka_ms >= 0)
        observe(lat->kafka, &families[F_KAFKA_TO_ACK],
                ack_ms > kafka_ms ? (double)(ack_ms - kafka_ms) : 0);
}

void metrics_set_waiting(metrics *m, unsigned worker, const char *table, uint64_t rows,
                         uint64_t bytes)
{
    if (!m->reg || worker >= METRICS_MAX_WORKERS) return;
    atomic_store_explicit(&series1(m, F_ROWS_WAITING, table)->v[worker], rows,
                          memory_order_relaxed);
    atomic_store_explicit(&series1(m, F_BYTES_WAITING, table)->v[worker], bytes,
                          memory_order_relaxed);
}

/* ---- Kafka ---- */

void metrics_partition_assigned(metrics *m, const char *topic, int32_t partition, bool assigned)
{
    metrics_registry *r = m ? m->reg : NULL;
    if (!r) return;
    char part[16];
    snprintf(part, sizeof part, "%d", (int)partition);
    const char *values[] = {topic, part};
    inc(r->single[assigned ? F_ASSIGNED_TOTAL : F_REVOKED_TOTAL], 1);
    atomic_fetch_add_explicit(&r->single[F_ASSIGNED]->v[0], assigned ? 1 : (uint64_t)-1,
                              memory_order_relaxed);
    set(series_get(m, F_PARTITIONS, values), assigned);
    /* the lag monitor shows them again once it knows their offsets (metrics_set_lag) */
    family_id offsets[] = {F_LAG, F_COMMITTED_OFFSET, F_HIGH_WATERMARK};
    for (int i = 0; i < 3; i++)
        atomic_store(&series_get(m, offsets[i], values)->hidden, true);
}

void metrics_commit(metrics *m, bool ok)
{
    if (!m || !m->reg) return;
    inc(series1(m, F_COMMITS, ok ? "ok" : "failed"), 1);
    if (ok) set(m->reg->single[F_LAST_COMMIT], metrics_unix_ms());
}

void metrics_set_paused(metrics *m, unsigned workers)
{
    if (m && m->reg) set(m->reg->single[F_PAUSED], workers);
}

void metrics_each_assigned(metrics *m, void (*fn)(void *ud, const char *topic, int32_t partition),
                           void *ud)
{
    if (!m->reg) return;
    for (series *s = atomic_load_explicit(&m->reg->heads[F_PARTITIONS], memory_order_acquire); s;
         s = atomic_load_explicit(&s->next, memory_order_acquire))
        if (atomic_load_explicit(&s->v[0], memory_order_relaxed))
            fn(ud, s->values[0], (int32_t)atol(s->values[1]));
}

void metrics_set_lag(metrics *m, const char *topic, int32_t partition, int64_t committed,
                     int64_t high, int64_t lag)
{
    if (!m->reg) return;
    char part[16];
    snprintf(part, sizeof part, "%d", (int)partition);
    const char *values[] = {topic, part};
    bool assigned = atomic_load(&series_get(m, F_PARTITIONS, values)->v[0]) != 0;
    family_id fam[] = {F_COMMITTED_OFFSET, F_HIGH_WATERMARK, F_LAG};
    int64_t v[] = {committed, high, lag};
    for (int i = 0; i < 3; i++) {
        series *s = series_get(m, fam[i], values);
        set(s, v[i]);
        atomic_store(&s->hidden, !assigned); /* revoked meanwhile: stays hidden */
    }
}

/* ---- the run ---- */

void metrics_set_phase(metrics *m, metrics_phase phase)
{
    if (m->reg) atomic_store(&m->reg->phase, (int)phase);
}

void metrics_heartbeat(metrics *m, unsigned thread)
{
    if (m->reg && thread <= METRICS_CONSUMER)
        atomic_store_explicit(&m->reg->heartbeat_ms[thread], clock_ms(), memory_order_relaxed);
}

void metrics_thread_waiting(metrics *m, unsigned thread, bool waiting)
{
    if (!m->reg || thread > METRICS_CONSUMER) return;
    /* the beat first: the wait's end counts as one, so a long wait is not a stall afterwards */
    atomic_store_explicit(&m->reg->heartbeat_ms[thread], clock_ms(), memory_order_relaxed);
    atomic_store_explicit(&m->reg->waiting[thread], waiting, memory_order_relaxed);
}

#define TICK_MS 500

/* Rows and bytes of table in set (NULL: none). */
static void waiting_in(const batch_set *set, const char *table, uint64_t *rows, uint64_t *bytes)
{
    for (size_t i = 0; set && i < set->count; i++)
        if (strcmp(set->items[i].table, table) == 0) {
            *rows += set->items[i].nrows;
            *bytes += set->items[i].rows.len;
        }
}

void metrics_tick(metrics *m, unsigned worker, const void *filling, const void *flying)
{
    metrics_registry *r = m->reg;
    if (!r || worker >= METRICS_MAX_WORKERS) return;
    int64_t now = clock_ms();
    atomic_store_explicit(&r->heartbeat_ms[worker], now, memory_order_relaxed);
    if ((filling || flying) &&
        now - atomic_load_explicit(&r->last_tick_ms[worker], memory_order_relaxed) < TICK_MS)
        return;
    atomic_store_explicit(&r->last_tick_ms[worker], now, memory_order_relaxed);
    const batch_set *sets[2] = {filling, flying};
    /* every table this worker showed before and has no batch for now goes to 0 */
    for (series *s = atomic_load_explicit(&r->heads[F_ROWS_WAITING], memory_order_acquire); s;
         s = atomic_load_explicit(&s->next, memory_order_acquire)) {
        uint64_t rows = 0, bytes = 0;
        waiting_in(sets[0], s->values[0], &rows, &bytes);
        waiting_in(sets[1], s->values[0], &rows, &bytes);
        metrics_set_waiting(m, worker, s->values[0], rows, bytes);
    }
    /* and tables seen for the first time get their series */
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; sets[k] && i < sets[k]->count; i++)
            if (sets[k]->items[i].nrows) series1(m, F_ROWS_WAITING, sets[k]->items[i].table);
}

void metrics_set_workers(metrics *m, unsigned workers)
{
    metrics_registry *r = m->reg;
    if (!r) return;
    if (workers > METRICS_MAX_WORKERS) workers = METRICS_MAX_WORKERS;
    for (unsigned t = 0; t < workers; t++) {
        atomic_store(&r->heartbeat_ms[t], clock_ms());
        atomic_store(&r->waiting[t], false);
    }
    atomic_store(&r->nworkers, workers);
    set(r->single[F_WORKERS], workers);
}

void metrics_set_build_info(metrics *m, const char *version, const char *script_path,
                            const char *format)
{
    if (!m->reg) return;
    char sha[SHA256_HEX_LEN + 1];
    if (sha256_file_hex(script_path, sha) != 0) snprintf(sha, sizeof sha, "unknown");
    const char *values[] = {version, sha, format};
    series *now = series_get(m, F_BUILD_INFO, values);
    set(now, 1);
    atomic_store(&now->hidden, false);
    for (series *s = atomic_load_explicit(&m->reg->heads[F_BUILD_INFO], memory_order_acquire); s;
         s = atomic_load_explicit(&s->next, memory_order_acquire))
        if (s != now) atomic_store(&s->hidden, true);
}

void metrics_reload(metrics *m, const char *script_path)
{
    if (!m->reg) return;
    inc(series1(m, F_RELOADS, script_path ? "ok" : "failed"), 1);
    if (!script_path) return;
    /* the same version and format, the new script's digest */
    for (series *s = atomic_load_explicit(&m->reg->heads[F_BUILD_INFO], memory_order_acquire); s;
         s = atomic_load_explicit(&s->next, memory_order_acquire))
        if (!atomic_load(&s->hidden)) {
            char *version = s->values[0], *format = s->values[2];
            metrics_set_build_info(m, version, script_path, format);
            return;
        }
}

/* thread's beat is recent, or it waits on purpose for another watched thread */
static bool alive(metrics_registry *r, unsigned thread, int64_t now, int64_t stall_ms)
{
    return atomic_load_explicit(&r->waiting[thread], memory_order_relaxed) ||
           now - atomic_load_explicit(&r->heartbeat_ms[thread], memory_order_relaxed) <= stall_ms;
}

bool metrics_healthy(const metrics *m, int64_t stall_ms, unsigned *stalled)
{
    metrics_registry *r = m->reg;
    if (!r) return true;
    int64_t now = clock_ms();
    unsigned n = atomic_load(&r->nworkers);
    for (unsigned t = 0; t < n; t++)
        if (!alive(r, t, now, stall_ms)) {
            *stalled = t;
            return false;
        }
    if (!alive(r, METRICS_CONSUMER, now, stall_ms)) {
        *stalled = METRICS_CONSUMER;
        return false;
    }
    return true;
}

bool metrics_ready(const metrics *m, const char **reason)
{
    metrics_registry *r = m->reg;
    *reason = "ready";
    if (!r) return true;
    switch ((metrics_phase)atomic_load(&r->phase)) {
    case METRICS_STARTING:
        *reason = "starting: connecting to ClickHouse, running ddl(), joining the consumer group";
        return false;
    case METRICS_STOPPING:
        *reason = "stopping";
        return false;
    case METRICS_FAILED:
        *reason = "stopped after a fatal error (see the log)";
        return false;
    case METRICS_RUNNING:
        break;
    }
    if ((int64_t)atomic_load(&r->single[F_ASSIGNED]->v[0]) <= 0) {
        *reason = "no partitions assigned (the group is rebalancing, or has more members than "
                  "partitions)";
        return false;
    }
    if (!atomic_load(&r->clickhouse_ok)) {
        *reason = "ClickHouse unreachable: the last request failed and is being retried";
        return false;
    }
    return true;
}

/* ---- the page ---- */

static double stored(const family_def *d, uint64_t raw)
{
    double v = d->k == K_GAUGE ? (double)(int64_t)raw : (double)raw;
    return d->scale ? v / d->scale : v;
}

static void render_series(strbuf *out, metrics *m, const family_def *d, const series *s)
{
    const char *const *values = (const char *const *)s->values;
    if (d->field != NOFIELD) {
        const _Atomic uint64_t *field = (const _Atomic uint64_t *)((const char *)m + d->field);
        prom_sample(out, d->name, NULL, NULL, NULL, 0, NULL, (double)atomic_load(field));
        return;
    }
    if (d->k != K_HISTOGRAM) {
        uint64_t sum = 0;
        for (int i = 0; i < d->slots; i++)
            sum += atomic_load_explicit(&s->v[i], memory_order_relaxed);
        prom_sample(out, d->name, NULL, d->labels, values, (size_t)d->nlabels, NULL,
                    stored(d, sum));
        return;
    }
    uint64_t cumulative = 0;
    for (int i = 0; i <= d->nbounds; i++) {
        char le[32];
        cumulative += atomic_load_explicit(&s->v[i], memory_order_relaxed);
        if (i < d->nbounds) {
            strbuf text = {0};
            prom_value(&text, d->bounds[i] / (d->scale ? d->scale : 1));
            snprintf(le, sizeof le, "%s", text.data);
            strbuf_free(&text);
        } else {
            snprintf(le, sizeof le, "+Inf");
        }
        prom_sample(out, d->name, "_bucket", d->labels, values, (size_t)d->nlabels, le,
                    (double)cumulative);
    }
    prom_sample(out, d->name, "_sum", d->labels, values, (size_t)d->nlabels, NULL,
                stored(d, atomic_load_explicit(&s->v[d->nbounds + 1], memory_order_relaxed)));
    prom_sample(out, d->name, "_count", d->labels, values, (size_t)d->nlabels, NULL,
                (double)cumulative);
}

/* process_* from /proc/self (Linux): CPU seconds, memory, file descriptors, start time. */
static void render_process(strbuf *out)
{
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = '\0';
    /* the fields after the command name (in parentheses, which may hold spaces) */
    char *p = strrchr(buf, ')');
    unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
    long long rss = 0;
    if (p &&
        sscanf(p + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
               "%llu %llu %lld",
               &utime, &stime, &start, &vsize, &rss) == 5 &&
        ticks > 0) {
        prom_header(out, "process_cpu_seconds_total", "counter",
                    "Total user and system CPU time spent in seconds.");
        prom_sample(out, "process_cpu_seconds_total", NULL, NULL, NULL, 0, NULL,
                    (double)(utime + stime) / (double)ticks);
        prom_header(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        prom_sample(out, "process_virtual_memory_bytes", NULL, NULL, NULL, 0, NULL, (double)vsize);
        prom_header(out, "process_resident_memory_bytes", "gauge",
                    "Resident memory size in bytes.");
        prom_sample(out, "process_resident_memory_bytes", NULL, NULL, NULL, 0, NULL,
                    (double)rss * (double)page);
        unsigned long long btime = 0;
        FILE *st = fopen("/proc/stat", "r");
        char line[256];
        while (st && fgets(line, sizeof line, st))
            if (sscanf(line, "btime %llu", &btime) == 1) break;
        if (st) fclose(st);
        if (btime) {
            prom_header(out, "process_start_time_seconds", "gauge",
                        "Start time of the process since unix epoch in seconds.");
            prom_sample(out, "process_start_time_seconds", NULL, NULL, NULL, 0, NULL,
                        (double)btime + (double)start / (double)ticks);
        }
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long fds = -1; /* the directory's own descriptor */
        while (readdir(d))
            fds++;
        closedir(d);
        prom_header(out, "process_open_fds", "gauge", "Number of open file descriptors.");
        prom_sample(out, "process_open_fds", NULL, NULL, NULL, 0, NULL, (double)(fds - 2));
    }
    long max = sysconf(_SC_OPEN_MAX);
    if (max > 0) {
        prom_header(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        prom_sample(out, "process_max_fds", NULL, NULL, NULL, 0, NULL, (double)max);
    }
}

void metrics_render(metrics *m, strbuf *out)
{
    metrics_registry *r = m->reg;
    if (!r) return;
    const char *reason;
    set(r->single[F_READY], metrics_ready(m, &reason));
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    for (int f = 0; f < NFAMILIES; f++) {
        const family_def *d = &families[f];
        if (!d->name) continue;
        prom_header(out, d->name, type_names[d->k], d->help);
        for (series *s = atomic_load_explicit(&r->heads[f], memory_order_acquire); s;
             s = atomic_load_explicit(&s->next, memory_order_acquire))
            if (!atomic_load(&s->hidden)) render_series(out, m, d, s);
    }
    render_process(out);
}
