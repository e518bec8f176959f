/*
 * flusher — a partition worker's insert thread (see include/cdcpipe/flusher.h).
 */
#include "cdcpipe/flusher.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdcpipe/clickhouse.h"
#include "cdcpipe/clock.h"
#include "cdcpipe/crash_point.h"
#include "cdcpipe/log.h"
#include "cdcpipe/record_fetch.h"
#include "cdcpipe/signals.h"
#include "cdcpipe/xalloc.h"

struct flusher {
    const config *cfg;
    unsigned index;
    kafka_consumer *kafka;
    dl_sink *dead_letters; /* shared with every worker (its own mutex) */
    metrics *n;            /* shared, atomic */
    ledger *ledger;        /* the worker's; only its sealed flushes are written here */
    flusher_hooks hooks;
    pthread_t thread;
    bool started;

    /* ---- @locality: the insert thread ---- */
    ch_client *ch; /* NULL in a dry run */
    inserter inserter;
    record_fetcher *fetcher;
    flight *running; /* the flight being landed (the hooks below read it) */

    /* ---- @locality: the worker thread ---- */
    bool flying; /* launched and not yet returned by flusher_landed */

    /* ---- shared, under lock ---- */
    pthread_mutex_t lock;
    pthread_cond_t wake; /* the insert thread waits for a flight or the end */
    pthread_cond_t done; /* the worker waits for a landing */
    flight *queued;      /* launched, not yet taken by the insert thread */
    flight *landed;      /* landed, not yet returned to the worker */
    bool quit;
    /* read without the lock */
    atomic_bool retrying;
    atomic_bool failed;
    atomic_bool commit_failed;
};

/* ---- flights ---- */

void flight_hold(flight *f, held_event h)
{
    if (f->nheld == f->held_cap) {
        f->held_cap = f->held_cap ? f->held_cap * 2 : 1024;
        f->held = xrealloc(f->held, f->held_cap, sizeof *f->held);
    }
    f->held[f->nheld++] = h;
}

void flight_commit(flight *f, partition_state *ps, int64_t next, int64_t from)
{
    if (f->ncommits == f->commits_cap) {
        f->commits_cap = f->commits_cap ? f->commits_cap * 2 : 8;
        f->commits = xrealloc(f->commits, f->commits_cap, sizeof *f->commits);
        f->commit_from = xrealloc(f->commit_from, f->commits_cap, sizeof *f->commit_from);
    }
    f->commits[f->ncommits] = (kafka_commit_point){ps, next};
    f->commit_from[f->ncommits++] = from;
}

void flight_clear(flight *f)
{
    for (size_t i = 0; i < f->batches.count; i++)
        batch_clear(&f->batches.items[i]);
    f->nheld = 0;
    f->ncommits = 0;
    ledger_flush_free(f->ledger);
    f->ledger = NULL;
    f->in_revoke = false;
    f->result = INSERT_OK;
}

void flight_free(flight *f)
{
    batch_set_free(&f->batches);
    free(f->held);
    free(f->commits);
    free(f->commit_from);
    ledger_flush_free(f->ledger);
    memset(f, 0, sizeof *f);
}

/* ---- the inserter's hooks, for the flight being landed ---- */

/* Waits ms before an insert is tried again. Outside a revoke the worker's partitions are paused
 * meanwhile (flusher_retrying), and a revoke request gives the flight up (INSERT_HANDED_BACK). */
static insert_result wait_before_retry(void *ud, int ms)
{
    flusher *fl = ud;
    if (fl->running->in_revoke) {
        inserter_sleep(ms);
        return INSERT_OK;
    }
    if (!atomic_exchange(&fl->retrying, true))
        log_info("worker %u: consumption paused until ClickHouse takes the batch", fl->index);
    return inserter_wait_paused(ms, fl->hooks.revoke_asked, fl->hooks.ud, fl->n, fl->index);
}

/* Whether to stop retrying: after SIGINT/SIGTERM, once --shutdown-timeout has passed; inside a
 * revoke, at the revoke's deadline (then the partitions go uncommitted). */
static insert_result give_up_retrying(void *ud, const char *err)
{
    flusher *fl = ud;
    if (inserter_give_up_at_shutdown(fl->cfg->shutdown_timeout, err) != INSERT_OK)
        return INSERT_FAILED;
    if (fl->running->in_revoke && clock_ms() >= fl->running->revoke_deadline_ms) {
        log_warn("%s; still failing %ld s after partitions were revoked: handing them over "
                 "uncommitted (their events will be consumed again)",
                 err, fl->cfg->shutdown_timeout);
        return INSERT_HANDED_BACK;
    }
    return INSERT_OK;
}

/* libcurl asks during every ClickHouse request: a request still running when the stop or revoke
 * deadline passes is abandoned (it then fails as transient, and the caller gives up). */
static bool request_deadline_passed(void *ud)
{
    flusher *fl = ud;
    metrics_heartbeat(fl->n, fl->index); /* a request making progress (/healthz) */
    const flight *f = fl->running;
    return signals_grace_expired(fl->cfg->shutdown_timeout) ||
           (f && f->in_revoke && clock_ms() >= f->revoke_deadline_ms);
}

static void dead_letter_held_event(flusher *fl, held_event *h, const char *reason,
                                   int clickhouse_code)
{
    const partition_state *ps = h->ps;
    char fetch_err[512];
    rd_kafka_message_t *m =
        record_fetch(fl->fetcher, ps->topic, ps->partition, h->offset, fetch_err, sizeof fetch_err);
    dead_letter d = {
        .msg = m, .stage = DL_CLICKHOUSE, .reason = reason, .clickhouse_code = clickhouse_code};
    char why[2048];
    if (!m) { /* dead-lettered with what is known of it */
        snprintf(why, sizeof why,
                 "%s (the record itself could not be read again: %s; this dead letter has no "
                 "key, value or original headers)",
                 reason, fetch_err);
        d.reason = why;
        d.topic = ps->topic;
        d.partition = ps->partition;
        d.offset = h->offset;
    }
    if (dl_deliver(fl->dead_letters, fl->n, &d) != 0) atomic_store(&fl->failed, true);
    if (m) rd_kafka_message_destroy(m);
}

/* A rejected row's event goes to the dead letters (once per event), with its original record
 * read again, logged with that event as the context (log.h). */
static int reject_event(void *ud, uint32_t event, const char *reason, int clickhouse_code)
{
    flusher *fl = ud;
    held_event *h = &fl->running->held[event];
    if (!h->dead_lettered) {
        h->dead_lettered = true;
        log_context outer = log_get_context();
        log_context_event(h->ps->topic, h->ps->partition, h->offset);
        dead_letter_held_event(fl, h, reason, clickhouse_code);
        log_set_context(outer);
    }
    return atomic_load(&fl->failed) ? -1 : 0;
}

/* Rows of b were acknowledged: each row's end-to-end latency, from its event's source commit
 * (or Kafka timestamp) to now. */
static void rows_acked(void *ud, const batch *b, const row_set *s)
{
    flusher *fl = ud;
    metrics_latency lat = metrics_latency_for(fl->n, b->table);
    int64_t now = metrics_unix_ms();
    for (size_t i = 0; i < s->count; i++)
        for (size_t row = s->ranges[i].from; row < s->ranges[i].to; row++) {
            const held_event *h = &fl->running->held[b->row_event[row]];
            metrics_latency_observe(&lat, now, h->origin_ms, h->kafka_ms);
        }
}

/* ledger hook: the partition of held event number `event`, and whether it was dead-lettered. */
static const partition_state *held_info(void *ud, uint32_t event, int64_t *offset,
                                        bool *dead_lettered)
{
    flusher *fl = ud;
    const held_event *h = &fl->running->held[event];
    *offset = h->offset;
    *dead_lettered = h->dead_lettered;
    return h->ps;
}

/* ---- landing ---- */

/* Inserts every batch of f, waits for the dead letters, then commits f's offsets: the one place
 * offsets become committable. With a ledger the inserts sit between its 'intent' and 'done' rows,
 * and a table's batch goes as one INSERT. */
static insert_result land(flusher *fl, flight *f)
{
    char err[1024];
    if (atomic_load(&fl->failed)) return INSERT_FAILED;
    insert_result r = INSERT_OK;
    bool ledgered = f->ledger && fl->ch;
    if (ledgered)
        r = ledger_flush_intent(fl->ledger, f->ledger, &fl->inserter, &f->batches,
                                (uint32_t)f->nheld, held_info, fl);
    for (size_t i = 0; i < f->batches.count && fl->ch && r == INSERT_OK; i++) {
        batch *b = &f->batches.items[i];
        if (b->nrows == 0) continue;
        size_t step = ledgered ? b->nrows : (size_t)fl->cfg->batch_rows;
        fl->inserter.query_id = ledgered ? ledger_query_id(f->ledger, b) : NULL;
        for (size_t first = 0; first < b->nrows && r == INSERT_OK; first += step) {
            size_t end = first + step;
            r = inserter_insert(&fl->inserter, b, first, end < b->nrows ? end : b->nrows);
            record_fetch_release(fl->fetcher);
        }
        fl->inserter.query_id = NULL;
        if (r != INSERT_OK) break;
        log_debug("inserted %zu rows into %s", b->nrows, b->table);
        crash_point("after_insert");
        if (f->in_revoke) crash_point("in_revoke");
    }
    if (ledgered && r == INSERT_OK)
        r = ledger_flush_done(fl->ledger, f->ledger, &fl->inserter, (uint32_t)f->nheld, held_info,
                              fl);
    bool was_retrying = atomic_exchange(&fl->retrying, false);
    if (r == INSERT_FAILED) atomic_store(&fl->failed, true);
    if (r != INSERT_OK) return r;
    if (was_retrying) log_info("worker %u: consumption resumed", fl->index);
    for (size_t i = 0; i < f->nheld; i++)
        if (!f->held[i].dead_lettered) metrics_add(&fl->n->events_inserted, 1);
    if (dl_flush(fl->dead_letters, err, sizeof err) != 0) {
        log_error("%s; stopping without committing", err);
        atomic_store(&fl->failed, true);
        return INSERT_FAILED;
    }
    bool commit_failed = kafka_commit(fl->kafka, f->commits, f->ncommits) != 0;
    atomic_store(&fl->commit_failed, commit_failed);
    if (!commit_failed && fl->ledger) crash_point("after_commit");
    return INSERT_OK;
}

/* The insert thread. */
static void *flusher_main(void *arg)
{
    flusher *fl = arg;
    signals_block();
    pthread_mutex_lock(&fl->lock);
    for (;;) {
        while (!fl->queued && !fl->quit)
            pthread_cond_wait(&fl->wake, &fl->lock);
        flight *f = fl->queued;
        if (!f) break;
        fl->queued = NULL;
        pthread_mutex_unlock(&fl->lock);
        fl->running = f;
        f->result = land(fl, f);
        fl->running = NULL;
        pthread_mutex_lock(&fl->lock);
        fl->landed = f;
        pthread_cond_broadcast(&fl->done);
        pthread_mutex_unlock(&fl->lock);
        fl->hooks.landed(fl->hooks.ud);
        pthread_mutex_lock(&fl->lock);
    }
    pthread_mutex_unlock(&fl->lock);
    return NULL;
}

/* ---- the worker side ---- */

flusher *flusher_start(const config *cfg, unsigned index, kafka_consumer *kafka,
                       dl_sink *dead_letters, metrics *counters, ledger *worker_ledger,
                       flusher_hooks hooks, char *err, size_t errlen)
{
    flusher *fl = xcalloc(1, sizeof *fl);
    fl->cfg = cfg;
    fl->index = index;
    fl->kafka = kafka;
    fl->dead_letters = dead_letters;
    fl->n = counters;
    fl->ledger = worker_ledger;
    fl->hooks = hooks;
    pthread_mutex_init(&fl->lock, NULL);
    pthread_cond_init(&fl->wake, NULL);
    pthread_cond_init(&fl->done, NULL);
    if (!cfg->dry_run) {
        fl->ch = ch_connect(cfg, err, errlen);
        if (!fl->ch) goto fail;
        ch_set_interrupt(fl->ch, request_deadline_passed, fl);
        fl->inserter =
            (inserter){fl->ch,
                       {wait_before_retry, give_up_retrying, reject_event, fl, rows_acked},
                       counters,
                       NULL,
                       0};
    }
    fl->fetcher = record_fetcher_new(cfg);
    int e = pthread_create(&fl->thread, NULL, flusher_main, fl);
    if (e != 0) {
        snprintf(err, errlen, "cannot start the insert thread of worker %u: %s", index,
                 strerror(e));
        goto fail;
    }
    fl->started = true;
    return fl;
fail:
    flusher_free(fl);
    return NULL;
}

void flusher_launch(flusher *fl, flight *f)
{
    CDC_ASSERT(!fl->flying);
    fl->flying = true;
    pthread_mutex_lock(&fl->lock);
    fl->queued = f;
    pthread_cond_signal(&fl->wake);
    pthread_mutex_unlock(&fl->lock);
}

flight *flusher_landed(flusher *fl, int wait_ms)
{
    if (!fl->flying) return NULL;
    pthread_mutex_lock(&fl->lock);
    if (!fl->landed && wait_ms > 0) {
        struct timespec until = clock_deadline(wait_ms);
        pthread_cond_timedwait(&fl->done, &fl->lock, &until);
    }
    flight *f = fl->landed;
    fl->landed = NULL;
    pthread_mutex_unlock(&fl->lock);
    if (f) fl->flying = false;
    return f;
}

bool flusher_flying(const flusher *fl)
{
    return fl->flying;
}

bool flusher_retrying(const flusher *fl)
{
    return atomic_load_explicit(&fl->retrying, memory_order_relaxed);
}

bool flusher_failed(const flusher *fl)
{
    return atomic_load_explicit(&fl->failed, memory_order_relaxed);
}

bool flusher_commit_failed(const flusher *fl)
{
    return atomic_load(&fl->commit_failed);
}

void flusher_free(flusher *fl)
{
    if (!fl) return;
    if (fl->started) {
        CDC_ASSERT(!fl->flying);
        pthread_mutex_lock(&fl->lock);
        fl->quit = true;
        pthread_cond_signal(&fl->wake);
        pthread_mutex_unlock(&fl->lock);
        pthread_join(fl->thread, NULL);
    }
    record_fetcher_free(fl->fetcher);
    ch_close(fl->ch);
    pthread_cond_destroy(&fl->done);
    pthread_cond_destroy(&fl->wake);
    pthread_mutex_destroy(&fl->lock);
    free(fl);
}
