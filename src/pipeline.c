/*
 * pipeline — the consumer thread: consume, hand each record to its partition's worker
 * (see include/cdcpipe/pipeline.h and worker.h).
 *
 * This thread owns the Kafka consumer: it polls, runs the rebalance callbacks, applies the start
 * position, pauses and rewinds partitions on its workers' behalf, runs ddl() (at start and on
 * SIGHUP) and decides when the run is over. The workers decode, transform, batch, insert and
 * commit. The thread never waits for ClickHouse, so the group is served while inserts are
 * retried; it waits for a worker only during a revoke (the worker flushes and commits the
 * partitions first), a reload, or while a worker's queue is full.
 *
 * Metrics: one shared instance (metrics.h, atomic) that every worker, kafka.c and the inserters
 * update; this thread sets the phase (readiness), the workers gauge and the paused gauge, and
 * beats the consumer's heartbeat (/healthz) each turn of its loop.
 */
#define _GNU_SOURCE /* sched_getaffinity */
#include "cdcpipe/pipeline.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdcpipe/clickhouse.h"
#include "cdcpipe/clock.h"
#include "cdcpipe/commands.h"
#include "cdcpipe/dead_letter.h"
#include "cdcpipe/inserter.h"
#include "cdcpipe/kafka.h"
#include "cdcpipe/ledger.h"
#include "cdcpipe/log.h"
#include "cdcpipe/partitions.h"
#include "cdcpipe/signals.h"
#include "cdcpipe/start_position.h"
#include "cdcpipe/worker.h"
#include "cdcpipe/xalloc.h"

#define DDL_RETRY_MS 30000
#define POLL_MS      100
#define MAX_WORKERS  64

typedef struct {
    const config *cfg;
    script *script; /* ddl() at start and on reload; each worker loads its own copy */
    ch_client *ch;  /* the DDL's connection; NULL in a dry run */
    inserter ddl;
    kafka_consumer *kafka;
    dl_sink *dead_letters;
    metrics *n; /* shared with the workers, kafka.c and the endpoint (atomic) */
    partition_table parts;
    worker **workers;
    unsigned nworkers;
    bool *paused;    /* per worker: its partitions are paused while it retries an insert */
    size_t *load;    /* per worker: partitions assigned to it now */
    bool failed;     /* a worker or the consumer failed: stop, exit 1 */
    int64_t stop_ms; /* clock_ms() of the stop request, -1 before */
} pipeline;

/* The DDL's ClickHouse requests are abandoned --shutdown-timeout seconds after a stop request. */
static bool ddl_deadline_passed(void *ud)
{
    pipeline *p = ud;
    metrics_heartbeat(p->n, METRICS_CONSUMER); /* a DDL request making progress (/healthz) */
    if (!signals_stop_requested) return false;
    if (p->stop_ms < 0) p->stop_ms = clock_ms();
    return clock_ms() - p->stop_ms >= p->cfg->shutdown_timeout * 1000;
}

/* Workers to start: --workers, or as many as the CPUs this process may run on. */
static unsigned worker_count(const config *cfg)
{
    if (cfg->dry_run) return 1; /* rows printed in order */
    long n = cfg->workers;
    if (n <= 0) {
        cpu_set_t set;
        n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    }
    return n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (unsigned)n;
}

/* kafka hook: new partitions go to the worker with the fewest (a partition keeps its worker for
 * the whole run, so its records are handled in order even across rebalances). */
static void on_assigned(void *ud, partition_state **ps, size_t n)
{
    pipeline *p = ud;
    for (size_t i = 0; i < n; i++) {
        if (!ps[i]->has_worker) {
            unsigned best = 0;
            for (unsigned w = 1; w < p->nworkers; w++)
                if (p->load[w] < p->load[best]) best = w;
            ps[i]->worker = best;
            ps[i]->has_worker = true;
        }
        p->load[ps[i]->worker]++;
        worker_assign(p->workers[ps[i]->worker], ps[i]);
        if (p->paused[ps[i]->worker]) ps[i]->paused = true; /* kafka.c pauses it once assigned */
    }
}

/* kafka hook: each worker losing partitions flushes and commits them first. */
static void on_revoking(void *ud, partition_state **ps, size_t n)
{
    pipeline *p = ud;
    partition_state **mine = xcalloc(n + 1, sizeof *mine);
    metrics_thread_waiting(p->n, METRICS_CONSUMER, true); /* the workers answer for /healthz */
    for (unsigned w = 0; w < p->nworkers; w++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (ps[i]->assigned && ps[i]->has_worker && ps[i]->worker == w) mine[k++] = ps[i];
        if (k == 0) continue;
        worker_revoke(p->workers[w], mine, k);
        p->load[w] -= k;
    }
    metrics_thread_waiting(p->n, METRICS_CONSUMER, false);
    free(mine);
}

/* The assigned partitions of worker w (the caller frees the array). */
static partition_state **partitions_of(pipeline *p, unsigned w, size_t *n)
{
    partition_state **ps = xcalloc(p->parts.count + 1, sizeof *ps);
    *n = 0;
    for (size_t i = 0; i < p->parts.count; i++) {
        partition_state *s = p->parts.items[i];
        if (s->assigned && s->has_worker && s->worker == w) ps[(*n)++] = s;
    }
    return ps;
}

/* Pauses the partitions of workers retrying an insert, resumes them once it went through. */
static void apply_pauses(pipeline *p)
{
    bool changed = false;
    for (unsigned w = 0; w < p->nworkers; w++) {
        bool want = worker_retrying(p->workers[w]);
        if (want == p->paused[w]) continue;
        size_t n;
        partition_state **ps = partitions_of(p, w, &n);
        kafka_pause(p->kafka, ps, n, want);
        log_debug("worker %u: its %zu partitions %s", w, n, want ? "paused" : "resumed");
        free(ps);
        p->paused[w] = want;
        changed = true;
    }
    if (!changed) return;
    unsigned paused = 0;
    for (unsigned w = 0; w < p->nworkers; w++)
        paused += p->paused[w];
    metrics_set_paused(p->n, paused);
}

/* Rewinds the partitions whose events a worker gave up (hand_back in worker.c). */
static void serve_rewinds(pipeline *p)
{
    for (unsigned w = 0; w < p->nworkers; w++) {
        partition_state *ps;
        int64_t offset;
        while (worker_next_rewind(p->workers[w], &ps, &offset)) {
            if (!ps->assigned) continue; /* revoked meanwhile: its new owner starts over */
            if (kafka_rewind(p->kafka, ps, offset) != 0) p->failed = true; /* could skip events */
            ps->dispatched = offset;
            worker_rewound(p->workers[w], ps);
        }
    }
}

/* Waits a little when a worker that is not retrying has a full queue. true: it waited. */
static bool wait_for_room(pipeline *p)
{
    for (unsigned w = 0; w < p->nworkers; w++) {
        if (p->paused[w] || !worker_full(p->workers[w])) continue;
        worker_wait_room(p->workers[w], POLL_MS);
        return true;
    }
    return false;
}

/* Hands a record to its partition's worker. */
static void dispatch(pipeline *p, rd_kafka_message_t *m)
{
    partition_state *ps =
        partitions_find(&p->parts, rd_kafka_topic_name(m->rkt), m->partition, false);
    if (!ps || !ps->assigned || !ps->has_worker) { /* not ours (librdkafka should not do that) */
        rd_kafka_message_destroy(m);
        return;
    }
    ps->dispatched = m->offset + 1;
    worker_push(p->workers[ps->worker], ps, m);
}

/* SIGHUP: every worker flushes (rows of the old version first) and waits; the new
 * pipeline.lua is loaded and checked (it loads, defines transform, its ddl() runs once); then
 * every worker loads it too. If anything fails the running version stays. Settings from the new
 * script's `config` need a restart. */
static void reload(pipeline *p)
{
    char err[1024];
    bool flushed = true;
    metrics_thread_waiting(p->n, METRICS_CONSUMER, true); /* the workers flush meanwhile */
    for (unsigned w = 0; w < p->nworkers; w++)
        if (!worker_reload_begin(p->workers[w])) flushed = false;
    metrics_thread_waiting(p->n, METRICS_CONSUMER, false);
    bool ok = false;
    const char *path = script_path(p->script);
    if (!flushed) {
        log_error("reload: the batches of the previous version could not be inserted; still "
                  "running it");
    } else {
        script *fresh = script_open(path, (size_t)p->cfg->lua_memory_mb << 20, err, sizeof err);
        if (!fresh) {
            log_error("reload: %s; still running the previous version", err);
        } else {
            script_apply_config(fresh, p->cfg);
            if (p->ch && inserter_run_ddl(&p->ddl, fresh, DDL_RETRY_MS) != 0) {
                log_error("reload: ddl() of the new %s failed; still running the previous version",
                          path);
                script_close(fresh);
            } else {
                script_close(p->script);
                p->script = fresh;
                ok = true;
            }
        }
    }
    for (unsigned w = 0; w < p->nworkers; w++)
        worker_reload_end(p->workers[w], ok);
    if (ok) log_info("reloaded %s", script_path(p->script));
    metrics_reload(p->n, ok ? script_path(p->script) : NULL);
}

/* Polls the consumer for up to timeout_ms. A fatal consumer error is logged and fails the run;
 * then, as on a timeout, NULL. */
static rd_kafka_message_t *poll_kafka(pipeline *p, int timeout_ms)
{
    char err[1024];
    bool fatal;
    metrics_heartbeat(p->n, METRICS_CONSUMER);
    rd_kafka_message_t *m = kafka_poll(p->kafka, timeout_ms, &fatal, err, sizeof err);
    if (fatal) {
        log_error("%s", err);
        p->failed = true;
    }
    return m;
}

/* --show: the last rows of every table this run inserted into. */
static void show_tables(pipeline *p)
{
    size_t cap = 0, ntables = 0;
    for (unsigned w = 0; w < 2 * p->nworkers; w++)
        cap += worker_batches(p->workers[w / 2], w % 2)->count;
    const char **tables = xcalloc(cap + 1, sizeof *tables);
    for (unsigned w = 0; w < 2 * p->nworkers; w++) {
        const batch_set *b = worker_batches(p->workers[w / 2], w % 2);
        for (size_t i = 0; i < b->count; i++) { /* a table may have several batches */
            size_t k = 0;
            while (k < ntables && strcmp(tables[k], b->items[i].table) != 0)
                k++;
            if (k == ntables) tables[ntables++] = b->items[i].table;
        }
    }
    command_show(p->ch, p->cfg->database, p->cfg->show, tables, ntables);
    free(tables);
}

/* Opens ClickHouse for the DDL, says what is unsafe about the settings, runs ddl(). 0, 1 (ddl()
 * failed) or 2 (configuration). */
static int prepare_clickhouse(pipeline *p)
{
    char err[1024];
    p->ch = ch_connect(p->cfg, err, sizeof err);
    if (!p->ch) {
        log_error("%s", err);
        return 2;
    }
    ch_set_interrupt(p->ch, ddl_deadline_passed, p);
    if (strcmp(p->cfg->clickhouse_compression, "none") != 0) { /* refused: a setting to fix */
        ch_status st = ch_check_compression(p->ch, err, sizeof err);
        if (st == CH_REJECTED) {
            log_error("%s", err);
            return 2;
        }
        if (st != CH_OK)
            log_warn("%s; --clickhouse-compression is checked again before the first insert", err);
    }
    if (p->cfg->clickhouse_insecure)
        log_warn("--clickhouse-insecure: the ClickHouse server's certificate is not verified");
    if (ch_credentials_in_clear(p->ch))
        log_warn("the ClickHouse password goes unencrypted over http:// to %s, which is not "
                 "this machine: anyone on the network path can read it; use an https:// URL "
                 "(--clickhouse)",
                 ch_url_printable(p->ch));
    p->ddl = (inserter){p->ch, {0}, p->n, NULL, 0};
    if (inserter_run_ddl(&p->ddl, p->script, DDL_RETRY_MS) != 0) return 1;
    /* after ddl(), which may create the database */
    if (ledger_enabled(p->cfg) && ledger_create(p->ch, p->cfg, DDL_RETRY_MS) != 0) return 1;
    return 0;
}

int pipeline_run(const config *cfg, script **s, metrics *counters)
{
    char err[1024];
    pipeline p;
    memset(&p, 0, sizeof p);
    metrics_reset(counters);
    metrics_set_phase(counters, METRICS_STARTING);
    metrics_heartbeat(counters, METRICS_CONSUMER);
    p.n = counters;
    p.cfg = cfg;
    p.script = *s;
    p.stop_ms = -1;
    int64_t started = clock_ms(), last_stats = started;
    int rc = 0;
    bool commit_failed = false;

    start_position from;
    if (start_position_parse(cfg->from, &from, err, sizeof err) != 0) {
        log_error("%s", err);
        return 2;
    }
    if (!cfg->dry_run && (rc = prepare_clickhouse(&p)) != 0) goto done;
    p.dead_letters = dl_open(cfg, err, sizeof err);
    if (!p.dead_letters) {
        log_error("%s", err);
        rc = 2;
        goto done;
    }
    p.kafka = kafka_open(cfg, &from, cfg->once, &p.parts,
                         (kafka_rebalance_hooks){on_assigned, on_revoking, &p}, err, sizeof err);
    if (!p.kafka) {
        log_error("%s", err);
        rc = 2;
        goto done;
    }
    kafka_set_metrics(p.kafka, counters); /* before the workers start: they commit */
    unsigned want = worker_count(cfg);
    p.workers = xcalloc(want, sizeof *p.workers);
    p.paused = xcalloc(want, sizeof *p.paused);
    p.load = xcalloc(want, sizeof *p.load);
    for (; p.nworkers < want; p.nworkers++) {
        p.workers[p.nworkers] = worker_start(p.nworkers, cfg, script_path(p.script), p.kafka,
                                             p.dead_letters, counters, err, sizeof err);
        if (!p.workers[p.nworkers]) {
            log_error("%s", err);
            rc = 2;
            goto stop;
        }
    }
    metrics_set_workers(counters, p.nworkers);
    metrics_set_phase(counters, METRICS_RUNNING);
    log_info("consuming %s from %s as group %s with %u worker%s%s", cfg->topics, cfg->brokers,
             cfg->group, p.nworkers, p.nworkers == 1 ? "" : "s",
             cfg->dry_run ? " (dry run: nothing is inserted or committed)" : "");

    while (!signals_stop_requested && !p.failed) {
        metrics_heartbeat(counters, METRICS_CONSUMER);
        bool stopped = false;
        for (unsigned w = 0; w < p.nworkers; w++) {
            if (worker_failed(p.workers[w])) p.failed = true;
            if (worker_stopped(p.workers[w])) stopped = true;
        }
        if (p.failed || stopped) break;
        apply_pauses(&p);
        serve_rewinds(&p);
        if (!wait_for_room(&p)) {
            rd_kafka_message_t *m = poll_kafka(&p, POLL_MS);
            if (m) dispatch(&p, m);
        }
        if (signals_reload_requested) {
            signals_reload_requested = 0;
            reload(&p);
        }
        if (cfg->once && partitions_caught_up(&p.parts)) break;
        metrics_log_progress(counters, cfg->stats_interval, started, &last_stats);
    }
stop:
    metrics_set_phase(counters, p.failed || rc != 0 ? METRICS_FAILED : METRICS_STOPPING);
    metrics_thread_waiting(counters, METRICS_CONSUMER, true); /* the workers flush and stop */
    for (unsigned w = 0; w < p.nworkers; w++) /* all at once: their last flushes run together */
        worker_stop(p.workers[w]);
    for (unsigned w = 0; w < p.nworkers; w++) {
        bool failed_commit = false;
        worker_join(p.workers[w], &failed_commit);
        if (worker_failed(p.workers[w])) p.failed = true;
        if (failed_commit) commit_failed = true;
    }
    metrics_thread_waiting(counters, METRICS_CONSUMER, false);
    if (p.failed) metrics_set_phase(counters, METRICS_FAILED);
    kafka_close(p.kafka); /* the revoke on leaving finds every worker stopped */
    p.kafka = NULL;
    if (rc != 0) goto done;
    if (p.failed) {
        rc = 1;
    } else if (commit_failed) {
        log_error("the last offsets could not be committed; everything was inserted, but the "
                  "events since the previous commit will be consumed (and inserted) again");
        rc = 1;
    }

    fflush(stdout); /* dry-run rows before the summary */
    double seconds = (double)(clock_ms() - started) / 1000.0;
    char summary[512];
    metrics_format_summary(counters, seconds, summary, sizeof summary);
    if (cfg->once)
        fprintf(stderr, "cdcpipe: %s\n", summary);
    else
        log_info("stopped: %s", summary);
    if (rc == 0 && p.ch && cfg->show > 0) show_tables(&p);

done:
    if (rc != 0) metrics_set_phase(counters, METRICS_FAILED);
    *s = p.script; /* a reload may have replaced it */
    kafka_close(p.kafka);
    for (unsigned w = 0; w < p.nworkers; w++)
        worker_free(p.workers[w]);
    free(p.workers);
    free(p.paused);
    free(p.load);
    dl_close(p.dead_letters);
    ch_close(p.ch);
    partitions_free(&p.parts);
    return rc;
}
