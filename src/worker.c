/*
 * worker — one partition worker on its own thread (see include/cdcpipe/worker.h).
 *
 * Delivery rule, in one place (flush): a worker commits its partitions' offsets only after every
 * one of its batches has been acknowledged by ClickHouse. Since a flush inserts all the worker's
 * batches, everything it handled before is safe once the flush succeeds, whatever partition or
 * table it came from.
 *
 * While ClickHouse is unreachable the flush retries and the worker asks the consumer thread to
 * pause its partitions; the consumer keeps polling, so the group can still rebalance. If
 * partitions are taken away meanwhile, the worker commits nothing and drops every batch: the
 * events since its last commit are handed back (hand_back) and consumed again, by the new owner
 * or by us after a rewind.
 */
#include "cdcpipe/worker.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cdcpipe/clickhouse.h"
#include "cdcpipe/clock.h"
#include "cdcpipe/crash_point.h"
#include "cdcpipe/inserter.h"
#include "cdcpipe/ledger.h"
#include "cdcpipe/log.h"
#include "cdcpipe/record_fetch.h"
#include "cdcpipe/row_json.h"
#include "cdcpipe/signals.h"
#include "cdcpipe/strbuf.h"
#include "cdcpipe/target_tables.h"
#include "cdcpipe/xalloc.h"

/* A DESCRIBE TABLE (RowBinary layouts) waits at most this long: a table whose columns cannot be
 * read goes as JSONEachRow instead, so events never wait longer for it. */
#define DESCRIBE_TIMEOUT_MS 10000
#define WAIT_SLICE_MS       100
/* The queue between the consumer thread and a worker: the consumer stops polling while a worker
 * has this much queued (records already taken from librdkafka's prefetch queue). Small: it only
 * needs to cover the consumer's turn. */
#define QUEUE_MAX_RECORDS 1024
#define QUEUE_MAX_BYTES   (1u << 20)
/* records taken from the queue per lock */
#define TAKE_MAX 64

/* An event whose rows wait in the batches: where it came from, so that an event whose row
 * ClickHouse rejects can be read again and dead-lettered with its original key, value and
 * headers (the record itself is not kept: see record_fetch.h). */
typedef struct {
    partition_state *ps;
    int64_t offset;
    bool dead_lettered;
    int64_t origin_ms; /* source.ts_ms (script_source_ts_ms), -1: none (metrics: latency) */
    int64_t kafka_ms;  /* the record's Kafka timestamp, -1: none */
} held_event;

typedef enum { ITEM_RECORD, ITEM_ASSIGN, ITEM_REWOUND } item_kind;

typedef struct {
    item_kind kind;
    partition_state *ps;
    rd_kafka_message_t *m; /* ITEM_RECORD */
} item;

typedef struct {
    partition_state *ps;
    int64_t offset;
} rewind_request;

struct worker {
    unsigned index;
    const config *cfg;
    kafka_consumer *kafka; /* commits only */
    dl_sink *dead_letters; /* shared with the other workers */
    metrics *n;            /* shared with every thread (metrics.h: atomic) */
    pthread_t thread;

    /* ---- @locality: the worker thread (after worker_start) ---- */
    script *script;    /* its own Lua state; replaced by a reload */
    ch_client *ch;     /* NULL in a dry run */
    inserter inserter; /* over ch, with the hooks below */
    ledger *ledger;    /* the insert ledger (ledger.h), NULL with --ledger none */
    bool recovering;   /* the ledger reads a partition's past (a revoke may interrupt it) */
    record_fetcher *fetcher;
    batch_set batches;
    target_tables *targets; /* --format auto/rowbinary: per table RowBinary or JSONEachRow */
    held_event *held;       /* events with rows in the batches, numbered as the rows record */
    size_t nheld, held_cap;
    partition_state **owned; /* partitions it was assigned and not revoked since */
    size_t nowned, owned_cap;
    bool offsets_moved; /* events handled since the last commit */
    int64_t last_flush_ms;
    int64_t stop_deadline_ms;   /* after SIGINT/SIGTERM: when to give up retrying; -1 before */
    bool commit_failed;         /* the last commit failed (the next flush commits again) */
    bool flushing;              /* flush runs (a revoke arriving now makes it hand back) */
    bool in_revoke;             /* flush runs for a revoke */
    int64_t revoke_deadline_ms; /* in_revoke: when to stop waiting for ClickHouse */
    strbuf dry_rows;            /* dry run: the current event's rows, printed when it succeeds */
    script_host host;           /* cdc.ddl, cdc.columns (ddl.c-like hooks below) */
    size_t handbacks;           /* hand_back calls so far */

    /* ---- shared with the consumer thread, under lock ---- */
    pthread_mutex_t lock;
    pthread_cond_t wake; /* the worker waits for items or requests */
    pthread_cond_t done; /* the consumer waits for an answer, or for room in the queue */
    item *queue;         /* ring: [head, head + count) modulo cap */
    size_t head, count, cap;
    size_t queued_bytes;
    bool waiting;             /* the worker sleeps on wake */
    partition_state **revoke; /* revoke request: the partitions, NULL when none */
    size_t nrevoke;           /* (worker_revoke waits until revoke is NULL again) */
    int reload;               /* 0 none, 1 begin asked, 2 parked, 3/4 end: keep/reload */
    bool reload_ok;           /* the flush before the reload succeeded */
    bool stop;                /* worker_stop */
    rewind_request *rewinds;  /* asked of the consumer */
    size_t nrewinds, rewinds_cap;
    /* read without the lock */
    atomic_bool attention; /* a request (revoke, reload, stop) waits */
    atomic_bool retrying;  /* an insert is being retried: pause my partitions */
    atomic_bool failed;    /* nothing more may be committed */
    atomic_bool stopped;
};

/* The queue holds QUEUE_MAX_* already. @locks: the caller holds w->lock. */
static bool queue_full(const worker *w)
{
    return w->count >= QUEUE_MAX_RECORDS || w->queued_bytes >= QUEUE_MAX_BYTES;
}

/* ---- the worker side ---- */

static void fail(worker *w)
{
    atomic_store(&w->failed, true);
}

static bool failed(worker *w)
{
    return atomic_load_explicit(&w->failed, memory_order_relaxed);
}

static bool revoke_asked(worker *w)
{
    if (!atomic_load_explicit(&w->attention, memory_order_acquire)) return false;
    pthread_mutex_lock(&w->lock);
    bool asked = w->revoke != NULL;
    pthread_mutex_unlock(&w->lock);
    return asked;
}

/* After a stop request, transient failures are retried for --shutdown-timeout seconds more. */
static bool shutdown_expired(worker *w)
{
    if (!signals_stop_requested) return false;
    if (w->stop_deadline_ms < 0) w->stop_deadline_ms = clock_ms() + w->cfg->shutdown_timeout * 1000;
    return clock_ms() >= w->stop_deadline_ms;
}

/* libcurl asks during every ClickHouse request: a request still running when the stop or revoke
 * deadline passes is abandoned (it then fails as transient, and the caller gives up). */
static bool request_deadline_passed(void *ud)
{
    worker *w = ud;
    metrics_heartbeat(w->n, w->index); /* a request making progress (/healthz) */
    return shutdown_expired(w) || (w->in_revoke && clock_ms() >= w->revoke_deadline_ms);
}

/* Dead-letters an event; a sink failure fails the worker (nothing more may be committed). */
static void send_dead_letter(worker *w, const dead_letter *d)
{
    char err[512];
    metrics_dead_lettered(w->n, dl_stage_name(d->stage));
    if (dl_send(w->dead_letters, d, err, sizeof err) != 0) {
        log_error("%s; stopping without committing", err);
        fail(w);
    }
}

static void dead_letter_event(worker *w, const rd_kafka_message_t *m, dl_stage stage,
                              const char *reason, int clickhouse_code)
{
    dead_letter d = {
        .msg = m, .stage = stage, .reason = reason, .clickhouse_code = clickhouse_code};
    send_dead_letter(w, &d);
}

/* inserter hook: waits ms before an insert is tried again, with the worker's partitions paused
 * (the consumer thread keeps polling, so the group can rebalance meanwhile). INSERT_HANDED_BACK
 * when partitions are being taken away. */
static insert_result wait_before_retry(void *ud, int ms)
{
    worker *w = ud;
    if (w->in_revoke || !(w->flushing || w->recovering)) { /* a revoke's own flush, the DDL */
        inserter_sleep(ms);
        return INSERT_OK;
    }
    if (!atomic_exchange(&w->retrying, true))
        log_info("worker %u: consumption paused until ClickHouse takes the batch", w->index);
    int64_t until = clock_ms() + ms;
    sig_atomic_t stopped = signals_stop_requested;
    for (int64_t now = clock_ms(); now < until && signals_stop_requested == stopped;
         now = clock_ms()) {
        if (revoke_asked(w)) return INSERT_HANDED_BACK;
        metrics_heartbeat(w->n, w->index);
        inserter_sleep(until - now < WAIT_SLICE_MS ? (int)(until - now) : WAIT_SLICE_MS);
    }
    return INSERT_OK;
}

/* inserter hook: whether to stop retrying. After SIGINT/SIGTERM, for --shutdown-timeout seconds
 * more; inside a revoke, until the revoke's deadline (then the partitions go uncommitted). */
static insert_result give_up_retrying(void *ud, const char *err)
{
    worker *w = ud;
    if (shutdown_expired(w)) {
        log_error("%s; giving up at shutdown, offsets not committed (the events will be consumed "
                  "again)",
                  err);
        return INSERT_FAILED;
    }
    if (w->in_revoke && clock_ms() >= w->revoke_deadline_ms) {
        log_warn("%s; still failing %ld s after partitions were revoked: handing them over "
                 "uncommitted (their events will be consumed again)",
                 err, w->cfg->shutdown_timeout);
        return INSERT_HANDED_BACK;
    }
    return INSERT_OK;
}

/* Dead-letters the event a held row came from (once), with its original record read again; a
 * record that cannot be read again is dead-lettered with what is known of it. */
static void dead_letter_held_event(worker *w, held_event *h, const char *reason,
                                   int clickhouse_code);

/* The held event's dead letter, logged with that event as the context (log.h). */
static void dead_letter_held(worker *w, held_event *h, const char *reason, int clickhouse_code)
{
    log_context outer = log_get_context();
    log_context_event(h->ps->topic, h->ps->partition, h->offset);
    dead_letter_held_event(w, h, reason, clickhouse_code);
    log_set_context(outer);
}

static void dead_letter_held_event(worker *w, held_event *h, const char *reason,
                                   int clickhouse_code)
{
    if (h->dead_lettered) return;
    h->dead_lettered = true;
    const partition_state *ps = h->ps;
    char fetch_err[512];
    rd_kafka_message_t *m =
        record_fetch(w->fetcher, ps->topic, ps->partition, h->offset, fetch_err, sizeof fetch_err);
    if (m) {
        dead_letter_event(w, m, DL_CLICKHOUSE, reason, clickhouse_code);
        rd_kafka_message_destroy(m);
        return;
    }
    char why[2048];
    snprintf(why, sizeof why,
             "%s (the record itself could not be read again: %s; this dead letter has no key, "
             "value or original headers)",
             reason, fetch_err);
    dead_letter d = {.msg = NULL,
                     .stage = DL_CLICKHOUSE,
                     .reason = why,
                     .clickhouse_code = clickhouse_code,
                     .topic = ps->topic,
                     .partition = ps->partition,
                     .offset = h->offset};
    send_dead_letter(w, &d);
}

/* inserter hook: a rejected row's event goes to the dead letters (once per event). */
static int reject_event(void *ud, uint32_t event, const char *reason, int clickhouse_code)
{
    worker *w = ud;
    dead_letter_held(w, &w->held[event], reason, clickhouse_code);
    return failed(w) ? -1 : 0;
}

/* inserter hook: rows of b were acknowledged: each row's end-to-end latency, from its event's
 * source commit (or Kafka timestamp) to now. */
static void rows_acked(void *ud, const batch *b, const row_set *s)
{
    worker *w = ud;
    metrics_latency lat = metrics_latency_for(w->n, b->table);
    int64_t now = metrics_unix_ms();
    for (size_t i = 0; i < s->count; i++)
        for (size_t row = s->ranges[i].from; row < s->ranges[i].to; row++) {
            const held_event *h = &w->held[b->row_event[row]];
            metrics_latency_observe(&lat, now, h->origin_ms, h->kafka_ms);
        }
}

/* Asks the consumer thread to rewind ps to offset; its records are dropped until it is done. */
static void ask_rewind(worker *w, partition_state *ps, int64_t offset)
{
    ps->rewinding = true;
    ps->next = offset;
    atomic_store_explicit(&ps->handled, offset, memory_order_release);
    pthread_mutex_lock(&w->lock);
    if (w->nrewinds == w->rewinds_cap) {
        w->rewinds_cap = w->rewinds_cap ? w->rewinds_cap * 2 : 8;
        w->rewinds = xrealloc(w->rewinds, w->rewinds_cap, sizeof *w->rewinds);
    }
    w->rewinds[w->nrewinds++] = (rewind_request){ps, offset};
    pthread_mutex_unlock(&w->lock);
}

/* Partitions were taken away while the batches waited for ClickHouse: nothing since the last
 * commit is committed. Every batch is dropped and the partitions still owned are rewound to
 * their first event since the last flush, so each of those events is consumed again (by their
 * new owner or by us). Events dead-lettered meanwhile may be dead-lettered twice. */
static void hand_back(worker *w)
{
    size_t events = 0;
    for (size_t i = 0; i < w->nheld; i++)
        if (!w->held[i].dead_lettered) events++;
    for (size_t i = 0; i < w->batches.count; i++)
        batch_clear(&w->batches.items[i]);
    metrics_handed_back(w->n, events); /* not handled here after all */
    w->nheld = 0;
    for (size_t i = 0; i < w->nowned; i++) {
        partition_state *ps = w->owned[i];
        if (ps->pending_from >= 0) ask_rewind(w, ps, ps->pending_from);
        ps->pending_from = -1;
    }
    ledger_handed_back(w->ledger);
    w->handbacks++;
    atomic_store(&w->retrying, false);
    log_warn("a rebalance took partitions away while ClickHouse was unreachable: %zu events with "
             "rows waiting were handed back uncommitted",
             events);
}

/* ledger hook: the partition of held event number `event`, and whether it was dead-lettered. */
static const partition_state *held_info(void *ud, uint32_t event, int64_t *offset,
                                        bool *dead_lettered)
{
    worker *w = ud;
    if (event >= w->nheld) { /* the event in progress (a flush inside cdc.ddl): not yet held */
        *offset = -1;
        *dead_lettered = false;
        return NULL;
    }
    *offset = w->held[event].offset;
    *dead_lettered = w->held[event].dead_lettered;
    return w->held[event].ps;
}

/* Whether a partition of the worker has events since the last flush (the ledger records them). */
static bool events_pending(const worker *w)
{
    for (size_t i = 0; i < w->nowned; i++)
        if (w->owned[i]->pending_from >= 0) return true;
    return false;
}

/* Inserts every batch, dead letters are acknowledged, then offsets are committed: the one place
 * offsets become committable. With a ledger the inserts sit between its 'intent' and 'done'
 * rows (ledger.h), and a table's batch goes as one INSERT. */
static int flush(worker *w)
{
    char err[1024];
    if (failed(w)) return -1;
    insert_result r = INSERT_OK;
    w->flushing = true;
    bool ledgered = w->ledger && w->ch && events_pending(w);
    if (ledgered)
        r = ledger_flush_intent(w->ledger, &w->inserter, w->owned, w->nowned, &w->batches,
                                (uint32_t)w->nheld, held_info, w);
    for (size_t i = 0; i < w->batches.count && w->ch && r == INSERT_OK; i++) {
        batch *b = &w->batches.items[i];
        size_t step = ledgered ? b->nrows : (size_t)w->cfg->batch_rows;
        w->inserter.query_id = ledgered ? ledger_query_id(w->ledger, b) : NULL;
        for (size_t first = 0; first < b->nrows && r == INSERT_OK; first += step) {
            size_t end = first + step;
            r = inserter_insert(&w->inserter, b, first, end < b->nrows ? end : b->nrows);
            record_fetch_release(w->fetcher);
        }
        w->inserter.query_id = NULL;
        if (r != INSERT_OK) break;
        log_debug("inserted %zu rows into %s", b->nrows, b->table);
        if (b->nrows > 0) {
            crash_point("after_insert");
            if (w->in_revoke) crash_point("in_revoke");
        }
        batch_clear(b);
    }
    if (ledgered && r == INSERT_OK)
        r = ledger_flush_done(w->ledger, &w->inserter, (uint32_t)w->nheld, held_info, w);
    w->flushing = false;
    if (r == INSERT_FAILED) {
        fail(w);
        return -1;
    }
    if (r == INSERT_HANDED_BACK) {
        hand_back(w);
        return 0;
    }
    if (atomic_exchange(&w->retrying, false)) log_info("worker %u: consumption resumed", w->index);
    for (size_t i = 0; i < w->nheld; i++)
        if (!w->held[i].dead_lettered) metrics_add(&w->n->events_inserted, 1);
    w->nheld = 0;
    for (size_t i = 0; i < w->nowned; i++)
        w->owned[i]->pending_from = -1;
    if (dl_flush(w->dead_letters, err, sizeof err) != 0) {
        log_error("%s; stopping without committing", err);
        fail(w);
        return -1;
    }
    w->commit_failed = kafka_commit(w->kafka, w->owned, w->nowned) != 0;
    if (!w->commit_failed && w->ledger) crash_point("after_commit");
    w->offsets_moved = false;
    w->last_flush_ms = clock_ms();
    return 0;
}

static bool flush_due(const worker *w)
{
    if (batch_set_rows(&w->batches) >= (size_t)w->cfg->batch_rows ||
        batch_set_bytes(&w->batches) >= (size_t)w->cfg->batch_bytes)
        return true;
    int64_t now = clock_ms(), oldest = batch_set_oldest_ms(&w->batches);
    if (oldest >= 0 && now - oldest >= w->cfg->batch_ms) return true;
    return w->offsets_moved && now - w->last_flush_ms >= w->cfg->batch_ms;
}

/* How long the worker may sleep waiting for records before its next flush is due. */
static int ms_until_flush(const worker *w)
{
    int64_t now = clock_ms(), due = -1, oldest = batch_set_oldest_ms(&w->batches);
    if (oldest >= 0) due = oldest + w->cfg->batch_ms;
    if (w->offsets_moved && (due < 0 || w->last_flush_ms + w->cfg->batch_ms < due))
        due = w->last_flush_ms + w->cfg->batch_ms;
    if (due < 0 || due - now > WAIT_SLICE_MS) return WAIT_SLICE_MS;
    return due <= now ? 0 : (int)(due - now);
}

/* script row callback: rows go to the batches, tagged with the event's future held index. */
static int batch_row(void *ud, const char *table, lua_State *L, int idx, char *err, size_t errlen)
{
    worker *w = ud;
    const batch_layout *layout = NULL;
    if (w->ledger && ledger_skip_row(w->ledger, table)) return 0; /* in ClickHouse already */
    if (w->targets && target_tables_known(w->targets, table)) {
        layout = target_tables_layout(w->targets, table);
    } else if (w->targets) { /* asking ClickHouse is not the event's time (--lua-timeout) */
        script_pause_timeout(w->script);
        layout = target_tables_layout(w->targets, table);
        script_resume_timeout(w->script);
    }
    if (layout)
        return batch_set_add_rowbinary(&w->batches, layout, L, idx, (uint32_t)w->nheld, err,
                                       errlen);
    if (w->targets) w->n->unknown_columns += target_tables_check_row(w->targets, table, L, idx);
    return batch_set_add_row(&w->batches, table, L, idx, (uint32_t)w->nheld, err, errlen);
}

/* ---- cdc.ddl and cdc.columns (script_host): statements at the event's place in the stream ---- */

/* The batches are empty (just flushed): every table's columns are read again on next use. */
static void forget_tables(worker *w)
{
    batch_set_free(&w->batches);
    target_tables_reset(w->targets);
    batch_set_mark(&w->batches);
}

/* Sends one statement with the insert's retry rules (partitions paused while ClickHouse is
 * unreachable; a revoke meanwhile hands everything back). */
static script_host_result host_exec(worker *w, const char *sql, strbuf *out, ch_status *st,
                                    ch_failure *why, char *err, size_t errlen)
{
    w->flushing = true;
    insert_result r = inserter_exec(&w->inserter, sql, out, st, why, err, errlen);
    w->flushing = false;
    if (r == INSERT_HANDED_BACK) hand_back(w);
    if (r == INSERT_FAILED) fail(w);
    if (r != INSERT_OK) return SCRIPT_HOST_ABORT;
    if (atomic_exchange(&w->retrying, false)) log_info("worker %u: consumption resumed", w->index);
    return SCRIPT_HOST_OK;
}

/* cdc.ddl: everything handled before is inserted first (a flush), then the statement runs. A
 * statement ClickHouse rejects fails the event (a Lua error: dead-lettered unless caught); a
 * permanent failure (credentials, unknown database or table) stops the worker as it would an
 * insert. */
static script_host_result host_ddl(void *ud, const char *sql, char *err, size_t errlen)
{
    worker *w = ud;
    size_t handbacks = w->handbacks;
    if (flush(w) != 0 || w->handbacks != handbacks) return SCRIPT_HOST_ABORT;
    ch_status st;
    ch_failure failure;
    char why[1024];
    script_host_result r = host_exec(w, sql, NULL, &st, &failure, why, sizeof why);
    if (r != SCRIPT_HOST_OK) return r;
    if (st == CH_PERMANENT) {
        log_error("cdc.ddl: %s: %s", sql, why);
        log_error("stopping without committing: fix the ClickHouse deployment or pipeline.lua and "
                  "restart; the events will be consumed again");
        fail(w);
        return SCRIPT_HOST_ABORT;
    }
    forget_tables(w); /* even a rejected statement may have changed something */
    if (st == CH_REJECTED) {
        snprintf(err, errlen, "ClickHouse refused \"%.300s\": %s", sql, why);
        return SCRIPT_HOST_REJECTED;
    }
    w->n->ddl++;
    log_info("cdc.ddl: %s", sql);
    return SCRIPT_HOST_OK;
}

/* cdc.columns: the target table's columns, from what is known or a DESCRIBE TABLE. */
static script_host_result host_columns(void *ud, const char *table, lua_State *L, char *err,
                                       size_t errlen)
{
    worker *w = ud;
    const target_column *cols;
    size_t ncols;
    target_state known = target_tables_columns(w->targets, table, &cols, &ncols);
    if (known == TARGET_UNKNOWN) {
        strbuf sql = {0}, out = {0};
        strbuf_puts(&sql, "DESCRIBE TABLE ");
        ch_quote_table(&sql, w->cfg->database, table);
        strbuf_puts(&sql, " FORMAT TabSeparated");
        ch_status st;
        ch_failure fail;
        char why[1024];
        script_host_result r = host_exec(w, sql.data, &out, &st, &fail, why, sizeof why);
        if (r == SCRIPT_HOST_OK && st != CH_OK && fail.code != 60) {
            snprintf(err, errlen, "DESCRIBE TABLE %s: %s", table, why);
            r = SCRIPT_HOST_REJECTED;
        }
        if (r == SCRIPT_HOST_OK &&
            target_tables_learn(w->targets, table, st == CH_OK ? (out.data ? out.data : "") : NULL,
                                out.len, err, errlen) != 0)
            r = SCRIPT_HOST_REJECTED;
        strbuf_free(&sql);
        strbuf_free(&out);
        if (r != SCRIPT_HOST_OK) return r;
        known = target_tables_columns(w->targets, table, &cols, &ncols);
    }
    if (known != TARGET_COLUMNS) {
        lua_pushnil(L);
        return SCRIPT_HOST_OK;
    }
    lua_createtable(L, 0, (int)ncols);
    for (size_t i = 0; i < ncols; i++) {
        lua_pushstring(L, cols[i].type);
        lua_setfield(L, -2, cols[i].name);
    }
    return SCRIPT_HOST_OK;
}

/* cdc.query: everything handled before is inserted first (a flush), then the SELECT runs with
 * an insert's retry rules and its answer comes back as JSONEachRow. Anything ClickHouse answers
 * but rows fails the event (a Lua error: dead-lettered unless caught), with its message.
 * @locality the worker's thread (transform) */
static script_host_result host_query(void *ud, const char *sql, strbuf *out, char *err,
                                     size_t errlen)
{
    worker *w = ud;
    size_t handbacks = w->handbacks;
    if (flush(w) != 0 || w->handbacks != handbacks) return SCRIPT_HOST_ABORT;
    batch_set_mark(&w->batches);
    strbuf q = {0};
    strbuf_puts(&q, sql);
    strbuf_puts(&q, "\nFORMAT JSONEachRow");
    ch_status st;
    ch_failure failure;
    char why[1024];
    script_host_result r = host_exec(w, q.data, out, &st, &failure, why, sizeof why);
    strbuf_free(&q);
    if (r == SCRIPT_HOST_OK && st != CH_OK) {
        snprintf(err, errlen, "ClickHouse refused \"%.300s\": %s", sql, why);
        r = SCRIPT_HOST_REJECTED;
    }
    return r;
}

static const char *host_clickhouse_version(void *ud)
{
    worker *w = ud;
    return ch_server_version(w->ch);
}

/* Runs one Kafka record through decode → transform → batch. Destroys m. */
static void handle_record(worker *w, partition_state *ps, rd_kafka_message_t *m)
{
    if (!ps->owned || ps->rewinding) { /* revoked, or to be consumed again after a rewind */
        rd_kafka_message_destroy(m);
        return;
    }
    const char *topic = ps->topic;
    rd_kafka_timestamp_type_t ts_type;
    int64_t ts = rd_kafka_message_timestamp(m, &ts_type);
    script_event ev = {topic,      m->partition, m->offset, ts,  m->key,
                       m->key_len, m->payload,   m->len,    NULL};
    (void)rd_kafka_message_headers(m, &ev.headers); /* meta.headers; none: stays NULL */
    if (w->ledger) { /* the partition's past first (recovery), then what to skip of this event */
        w->recovering = true;
        insert_result lr = ledger_event_begin(w->ledger, &w->inserter, ps, m->offset);
        w->recovering = false;
        if (lr != INSERT_OK) {
            if (lr == INSERT_FAILED)
                fail(w);
            else /* handed back: consumed again once the ledger can be read */
                ask_rewind(w, ps, m->offset);
            rd_kafka_message_destroy(m);
            return;
        }
    }
    char err[2048];
    size_t rows = 0;
    script_result r;
    metrics_consumed(w->n, topic);
    batch_set_mark(&w->batches);
    strbuf_reset(&w->dry_rows);
    if (m->payload && m->len > (size_t)w->cfg->max_event_bytes) {
        snprintf(err, sizeof err, "event of %zu bytes is larger than --max-event-bytes %ld", m->len,
                 w->cfg->max_event_bytes);
        r = SCRIPT_DECODE_ERROR;
    } else if (m->payload && m->len == 0) {
        snprintf(err, sizeof err, "empty value (zero bytes, not a tombstone)");
        r = SCRIPT_DECODE_ERROR;
    } else {
        r = script_process(w->script, &ev, w->cfg->table, w->ch ? batch_row : row_json_append_line,
                           w->ch ? (void *)w : (void *)&w->dry_rows, &rows, err, sizeof err);
    }
    if (r == SCRIPT_LUA_ERROR) metrics_lua_limit(w->n, (metrics_limit)script_last_limit(w->script));
    switch (r) {
    case SCRIPT_ROWS:
        if (w->ledger && ledger_event_kept(w->ledger) == 0) { /* every row already inserted */
            metrics_add(&w->n->skipped, 1);
            ledger_count(w->ledger, ps, LEDGER_SKIPPED);
        } else if (w->ch) {
            if (w->nheld == w->held_cap) {
                w->held_cap = w->held_cap ? w->held_cap * 2 : 1024;
                w->held = xrealloc(w->held, w->held_cap, sizeof *w->held);
            }
            w->held[w->nheld++] =
                (held_event){ps, ev.offset, false, script_source_ts_ms(w->script), ts};
        } else {
            fwrite(w->dry_rows.data, 1, w->dry_rows.len, stdout);
            metrics_add(&w->n->events_inserted, 1);
            metrics_add(&w->n->rows_inserted, rows);
        }
        break;
    case SCRIPT_FILTERED:
        metrics_add(&w->n->filtered, 1);
        if (w->ledger) ledger_count(w->ledger, ps, LEDGER_FILTERED);
        break;
    case SCRIPT_TOMBSTONE:
        metrics_add(&w->n->tombstones, 1);
        if (w->ledger) ledger_count(w->ledger, ps, LEDGER_TOMBSTONE);
        break;
    case SCRIPT_DECODE_ERROR:
    case SCRIPT_LUA_ERROR:
        if (w->ledger) ledger_count(w->ledger, ps, LEDGER_DEAD_LETTERED);
        batch_set_rollback(&w->batches);
        dead_letter_event(w, m, r == SCRIPT_DECODE_ERROR ? DL_DECODE : DL_LUA, err, 0);
        break;
    case SCRIPT_ABORTED: /* cdc.ddl gave it up: not handled; consumed again (or we stop) */
        batch_set_rollback(&w->batches);
        metrics_handed_back(w->n, 1);
        if (!failed(w) && ps->owned && !ps->rewinding) ask_rewind(w, ps, ev.offset);
        rd_kafka_message_destroy(m);
        return;
    }
    if (w->ledger) ledger_event_end(w->ledger);
    if (ps->pending_from < 0) ps->pending_from = ev.offset;
    ps->next = ev.offset + 1;
    atomic_store_explicit(&ps->handled, ps->next, memory_order_release);
    w->offsets_moved = true;
    rd_kafka_message_destroy(m);
}

static void take_ownership(worker *w, partition_state *ps)
{
    ps->owned = true;
    ps->rewinding = false;
    ps->next = ps->pending_from = ps->committed = -1;
    ledger_assigned(w->ledger, ps);
    for (size_t i = 0; i < w->nowned; i++)
        if (w->owned[i] == ps) return;
    if (w->nowned == w->owned_cap) {
        w->owned_cap = w->owned_cap ? w->owned_cap * 2 : 8;
        w->owned = xrealloc(w->owned, w->owned_cap, sizeof *w->owned);
    }
    w->owned[w->nowned++] = ps;
}

static void give_up_ownership(worker *w, partition_state *ps)
{
    ps->owned = false;
    ps->rewinding = false;
    ps->pending_from = -1;
    ledger_forget(w->ledger, ps);
    /* A rewind asked for before the revoke (hand_back) must not reach the consumer thread: the
     * partition's next owner starts from its committed offset, and if it is assigned to us again
     * in the same poll, seeking it before its fetch has started fails ("Erroneous state"). */
    pthread_mutex_lock(&w->lock);
    size_t kept = 0;
    for (size_t i = 0; i < w->nrewinds; i++)
        if (w->rewinds[i].ps != ps) w->rewinds[kept++] = w->rewinds[i];
    w->nrewinds = kept;
    pthread_mutex_unlock(&w->lock);
    for (size_t i = 0; i < w->nowned; i++)
        if (w->owned[i] == ps) {
            w->owned[i] = w->owned[--w->nowned];
            return;
        }
}

/* A revoke request: flush and commit while the partitions are ours (waiting at most
 * --shutdown-timeout for ClickHouse), or hand everything back when that fails; then the
 * partitions are no longer ours. */
static void serve_revoke(worker *w, partition_state **ps, size_t n)
{
    w->in_revoke = true;
    w->revoke_deadline_ms = clock_ms() + w->cfg->shutdown_timeout * 1000;
    flush(w);
    w->in_revoke = false;
    for (size_t i = 0; i < n; i++)
        give_up_ownership(w, ps[i]);
}

/* SIGHUP, between worker_reload_begin and worker_reload_end: load pipeline.lua again into a
 * state of our own (the consumer thread has run the new ddl() once) and swap it in; if it fails
 * to load the running version stays. */
static void reload_script(worker *w)
{
    char err[1024];
    const char *path = script_path(w->script);
    script *fresh = script_open(path, (size_t)w->cfg->lua_memory_mb << 20, err, sizeof err);
    if (!fresh) {
        log_error("reload: %s; worker %u still runs the previous version", err, w->index);
        return;
    }
    script_apply_config(fresh, w->cfg);
    if (w->ch) script_set_host(fresh, &w->host);
    script_close(w->script);
    w->script = fresh;
    if (w->targets) { /* the new ddl() may have changed tables: their columns are read again */
        batch_set_free(&w->batches);
        target_tables_reset(w->targets);
    }
}

/* Serves the consumer's requests. Returns true when the worker must stop. */
static bool serve_requests(worker *w)
{
    pthread_mutex_lock(&w->lock);
    atomic_store(&w->attention, false);
    partition_state **revoke = w->revoke;
    size_t nrevoke = w->nrevoke;
    int reload = w->reload;
    bool stop = w->stop;
    pthread_mutex_unlock(&w->lock);

    if (revoke) {
        serve_revoke(w, revoke, nrevoke);
        pthread_mutex_lock(&w->lock);
        w->revoke = NULL;
        pthread_cond_broadcast(&w->done);
        pthread_mutex_unlock(&w->lock);
    }
    if (reload == 1) {
        bool ok = flush(w) == 0;
        pthread_mutex_lock(&w->lock);
        w->reload_ok = ok;
        w->reload = 2;
        pthread_cond_broadcast(&w->done);
        metrics_thread_waiting(w->n, w->index, true); /* the consumer runs the new ddl() */
        while (w->reload == 2 && !w->stop)
            pthread_cond_wait(&w->wake, &w->lock);
        metrics_thread_waiting(w->n, w->index, false);
        reload = w->reload;
        w->reload = 0;
        stop = w->stop;
        pthread_mutex_unlock(&w->lock);
        if (reload == 4) reload_script(w);
    }
    return stop;
}

/* Takes up to max items, waiting up to wait_ms when there are none and no request. */
static size_t take(worker *w, item *out, size_t max, int wait_ms)
{
    pthread_mutex_lock(&w->lock);
    if (w->count == 0 && wait_ms > 0 && !atomic_load(&w->attention)) {
        struct timespec until = clock_deadline(wait_ms);
        w->waiting = true;
        pthread_cond_timedwait(&w->wake, &w->lock, &until);
        w->waiting = false;
    }
    size_t n = 0;
    bool was_full = queue_full(w);
    while (n < max && w->count > 0) {
        item it = w->queue[w->head];
        w->head = (w->head + 1) % w->cap;
        w->count--;
        if (it.m) w->queued_bytes -= it.m->len + it.m->key_len;
        out[n++] = it;
    }
    if (was_full && n > 0) pthread_cond_broadcast(&w->done); /* room for the consumer */
    pthread_mutex_unlock(&w->lock);
    return n;
}

static void serve_item(worker *w, item *it)
{
    switch (it->kind) {
    case ITEM_RECORD: /* --log-format json: the lines logged meanwhile name the event */
        log_context_event(it->ps->topic, it->m->partition, it->m->offset);
        handle_record(w, it->ps, it->m);
        log_context_event(NULL, 0, 0);
        break;
    case ITEM_ASSIGN:
        take_ownership(w, it->ps);
        break;
    case ITEM_REWOUND:
        it->ps->rewinding = false;
        break;
    }
}

/* The worker thread. */
static void *worker_main(void *arg)
{
    worker *w = arg;
    /* SIGINT/SIGTERM/SIGHUP go to the consumer thread (signals.c's handlers only set flags) */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    item items[TAKE_MAX];
    while (!failed(w) && !signals_stop_requested) {
        if (atomic_load_explicit(&w->attention, memory_order_acquire) && serve_requests(w)) break;
        size_t n = take(w, items, TAKE_MAX, flush_due(w) ? 0 : ms_until_flush(w));
        for (size_t i = 0; i < n; i++)
            serve_item(w, &items[i]);
        if (flush_due(w)) flush(w);
        metrics_tick(w->n, w->index, &w->batches); /* heartbeat, rows waiting */
    }
    flush(w);
    metrics_tick(w->n, w->index, NULL);           /* nothing waits in its batches any more */
    metrics_thread_waiting(w->n, w->index, true); /* ended: no longer watched (/healthz) */
    /* what is still queued was never handled: consumed again after the next start */
    pthread_mutex_lock(&w->lock);
    while (w->count > 0) {
        item it = w->queue[w->head];
        w->head = (w->head + 1) % w->cap;
        w->count--;
        if (it.m) rd_kafka_message_destroy(it.m);
    }
    w->queued_bytes = 0;
    atomic_store(&w->stopped, true);
    pthread_cond_broadcast(&w->done);
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* ---- the consumer side ---- */

worker *worker_start(unsigned index, const config *cfg, const char *script_path,
                     kafka_consumer *kafka, dl_sink *dead_letters, metrics *counters, char *err,
                     size_t errlen)
{
    worker *w = xcalloc(1, sizeof *w);
    w->n = counters;
    w->index = index;
    w->cfg = cfg;
    w->kafka = kafka;
    w->dead_letters = dead_letters;
    w->stop_deadline_ms = -1;
    w->last_flush_ms = clock_ms();
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->done, NULL);
    w->script = script_open(script_path, (size_t)cfg->lua_memory_mb << 20, err, errlen);
    if (!w->script) goto fail;
    script_apply_config(w->script, cfg);
    if (!cfg->dry_run) {
        w->ch = ch_connect(cfg, err, errlen);
        if (!w->ch) goto fail;
        ch_set_interrupt(w->ch, request_deadline_passed, w);
        w->inserter = (inserter){w->ch,
                                 {wait_before_retry, give_up_retrying, reject_event, w, rows_acked},
                                 w->n,
                                 NULL,
                                 0};
        w->ledger = ledger_new(cfg, index);
        w->targets = target_tables_new(w->ch, cfg->database, strcmp(cfg->format, "rowbinary") == 0,
                                       DESCRIBE_TIMEOUT_MS);
        if (strcmp(cfg->format, "json") == 0) target_tables_json_only(w->targets);
        w->host = (script_host){host_ddl, host_columns, host_clickhouse_version, host_query, w};
        script_set_host(w->script, &w->host);
    }
    w->fetcher = record_fetcher_new(cfg);
    int e = pthread_create(&w->thread, NULL, worker_main, w);
    if (e != 0) {
        snprintf(err, errlen, "cannot start worker thread %u: %s", index, strerror(e));
        goto fail;
    }
    return w;
fail:
    worker_free(w);
    return NULL;
}

static void push(worker *w, item it)
{
    pthread_mutex_lock(&w->lock);
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        item *q = xcalloc(cap, sizeof *q);
        for (size_t i = 0; i < w->count; i++)
            q[i] = w->queue[(w->head + i) % w->cap];
        free(w->queue);
        w->queue = q;
        w->head = 0;
        w->cap = cap;
    }
    w->queue[(w->head + w->count) % w->cap] = it;
    w->count++;
    if (it.m) w->queued_bytes += it.m->len + it.m->key_len;
    if (w->waiting) pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

void worker_assign(worker *w, partition_state *ps)
{
    push(w, (item){ITEM_ASSIGN, ps, NULL});
}

void worker_push(worker *w, partition_state *ps, rd_kafka_message_t *m)
{
    push(w, (item){ITEM_RECORD, ps, m});
}

void worker_rewound(worker *w, partition_state *ps)
{
    push(w, (item){ITEM_REWOUND, ps, NULL});
}

/* Posts a request (under lock) and wakes the worker. */
static void ask(worker *w)
{
    atomic_store_explicit(&w->attention, true, memory_order_release);
    pthread_cond_broadcast(&w->wake);
}

void worker_revoke(worker *w, partition_state *const *ps, size_t n)
{
    partition_state **copy = xcalloc(n + 1, sizeof *copy);
    memcpy(copy, ps, n * sizeof *copy);
    pthread_mutex_lock(&w->lock);
    w->revoke = copy;
    w->nrevoke = n;
    ask(w);
    while (w->revoke && !atomic_load(&w->stopped))
        pthread_cond_wait(&w->done, &w->lock);
    w->revoke = NULL;
    pthread_mutex_unlock(&w->lock);
    free(copy);
}

bool worker_retrying(worker *w)
{
    return atomic_load_explicit(&w->retrying, memory_order_relaxed);
}

bool worker_next_rewind(worker *w, partition_state **ps, int64_t *offset)
{
    bool found = false;
    pthread_mutex_lock(&w->lock);
    if (w->nrewinds > 0) {
        *ps = w->rewinds[0].ps;
        *offset = w->rewinds[0].offset;
        memmove(w->rewinds, w->rewinds + 1, --w->nrewinds * sizeof *w->rewinds);
        found = true;
    }
    pthread_mutex_unlock(&w->lock);
    return found;
}

void worker_wait_room(worker *w, int ms)
{
    pthread_mutex_lock(&w->lock);
    if (queue_full(w) && !atomic_load(&w->stopped)) {
        struct timespec until = clock_deadline(ms);
        pthread_cond_timedwait(&w->done, &w->lock, &until);
    }
    pthread_mutex_unlock(&w->lock);
}

bool worker_full(worker *w)
{
    pthread_mutex_lock(&w->lock);
    bool full = queue_full(w);
    pthread_mutex_unlock(&w->lock);
    return full;
}

bool worker_reload_begin(worker *w)
{
    pthread_mutex_lock(&w->lock);
    w->reload = 1;
    ask(w);
    while (w->reload == 1 && !atomic_load(&w->stopped))
        pthread_cond_wait(&w->done, &w->lock);
    bool ok = w->reload == 2 && w->reload_ok;
    pthread_mutex_unlock(&w->lock);
    return ok;
}

void worker_reload_end(worker *w, bool reload)
{
    pthread_mutex_lock(&w->lock);
    if (w->reload == 2) w->reload = reload ? 4 : 3;
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

bool worker_stopped(worker *w)
{
    return atomic_load(&w->stopped);
}

bool worker_failed(worker *w)
{
    return atomic_load(&w->failed);
}

void worker_stop(worker *w)
{
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    ask(w);
    pthread_mutex_unlock(&w->lock);
}

void worker_join(worker *w, bool *commit_failed)
{
    worker_stop(w); /* if the caller has not */
    pthread_join(w->thread, NULL);
    *commit_failed = w->commit_failed;
}

const batch_set *worker_batches(const worker *w)
{
    return &w->batches;
}

void worker_free(worker *w)
{
    if (!w) return;
    ledger_free(w->ledger);
    free(w->held);
    free(w->owned);
    free(w->rewinds);
    free(w->queue);
    record_fetcher_free(w->fetcher);
    ch_close(w->ch);
    batch_set_free(&w->batches);
    target_tables_free(w->targets); /* after the batches, which use its layouts */
    script_close(w->script);
    strbuf_free(&w->dry_rows);
    pthread_cond_destroy(&w->done);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
