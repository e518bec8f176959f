/*
 * worker — one partition worker on its own thread (see include/cdcpipe/worker.h).
 *
 * The worker fills a flight (batches, the events they hold); when it is due the worker seals it
 * and its insert thread (flusher.h) lands it — inserts, then commits — while the worker fills the
 * next. Delivery rule: a flight's offsets are committed only after all of its batches were
 * acknowledged, and a flight carries everything handled since the one before, whatever partition
 * or table it came from.
 *
 * While ClickHouse is unreachable the flight retries and the worker asks the consumer thread to
 * pause its partitions; the consumer keeps polling, so the group can still rebalance. If
 * partitions are taken away meanwhile, the worker commits nothing and drops both flights: the
 * events since its last commit are handed back (hand_back) and consumed again, by the new owner
 * or by us after a rewind.
 */
#include "cdcpipe/worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cdcpipe/clickhouse.h"
#include "cdcpipe/clock.h"
#include "cdcpipe/flusher.h"
#include "cdcpipe/inserter.h"
#include "cdcpipe/ledger.h"
#include "cdcpipe/log.h"
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
    dl_sink *dead_letters; /* shared with the other workers */
    metrics *n;            /* shared with every thread (metrics.h: atomic) */
    pthread_t thread;

    /* ---- @locality: the worker thread (after worker_start) ---- */
    script *script;    /* its own Lua state; replaced by a reload */
    ch_client *ch;     /* NULL in a dry run; the insert thread has its own */
    inserter inserter; /* over ch (ledger recovery, cdc.ddl/query), with the hooks below */
    ledger *ledger;    /* the insert ledger (ledger.h), NULL with --ledger none */
    flusher *flusher;  /* the insert thread */
    flight flights[2]; /* one filling, the other in the air or empty */
    flight *fill;
    target_tables *targets;  /* --format auto/rowbinary: per table RowBinary or JSONEachRow */
    partition_state **owned; /* partitions it was assigned and not revoked since */
    size_t nowned, owned_cap;
    bool offsets_moved; /* events handled since the last launch */
    int64_t last_flush_ms;
    strbuf dry_rows;  /* dry run: the current event's rows, printed when it succeeds */
    script_host host; /* cdc.ddl, cdc.columns (ddl.c-like hooks below) */
    size_t handbacks; /* hand_back calls so far */

    /* ---- shared with the consumer thread, under lock ---- */
    pthread_mutex_t lock;
    pthread_cond_t wake; /* the worker waits for items or requests */
    pthread_cond_t done; /* the consumer waits for an answer, or for room in the queue */
    item *queue;         /* ring: [head, head + count) modulo cap */
    size_t head, count, cap;
    size_t queued_bytes;
    bool waiting;             /* the worker sleeps on wake */
    bool landed;              /* a flight landed since the worker last looked (flusher hook) */
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
    return atomic_load_explicit(&w->failed, memory_order_relaxed) ||
           (w->flusher && flusher_failed(w->flusher));
}

/* Whether the consumer asks to take partitions away. @locality: the worker thread, or its insert
 * thread (flusher hook). @locks: w->lock. */
static bool revoke_asked(void *ud)
{
    worker *w = ud; /* not w->attention: the worker clears it when it starts serving the revoke */
    pthread_mutex_lock(&w->lock);
    bool asked = w->revoke != NULL;
    pthread_mutex_unlock(&w->lock);
    return asked;
}

/* flusher hook: a flight landed; wakes the worker if it waits for records.
 * @locality: the insert thread. @locks: w->lock. */
static void flight_landed(void *ud)
{
    worker *w = ud;
    pthread_mutex_lock(&w->lock);
    w->landed = true;
    if (w->waiting) pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

/* libcurl asks during every ClickHouse request of the worker's own connection: a request still
 * running when the stop grace ends is abandoned (it then fails as transient). */
static bool request_deadline_passed(void *ud)
{
    worker *w = ud;
    metrics_heartbeat(w->n, w->index); /* a request making progress (/healthz) */
    return signals_grace_expired(w->cfg->shutdown_timeout);
}

/* Dead-letters an event; a sink failure fails the worker (nothing more may be committed). */
static void dead_letter_event(worker *w, const rd_kafka_message_t *m, dl_stage stage,
                              const char *reason)
{
    dead_letter d = {.msg = m, .stage = stage, .reason = reason};
    if (dl_deliver(w->dead_letters, w->n, &d) != 0) fail(w);
}

/* inserter hook of the worker's own statements (ledger recovery, cdc.ddl, cdc.query, DESCRIBE):
 * waits ms before one is tried again, with the worker's partitions paused (the consumer thread
 * keeps polling, so the group can rebalance meanwhile). INSERT_HANDED_BACK when partitions are
 * being taken away. */
static insert_result wait_before_retry(void *ud, int ms)
{
    worker *w = ud;
    if (!atomic_exchange(&w->retrying, true))
        log_info("worker %u: consumption paused until ClickHouse answers", w->index);
    return inserter_wait_paused(ms, revoke_asked, w, w->n, w->index);
}

/* One of the worker's own statements went through: its partitions may be fetched again (unless
 * its insert thread is retrying too: worker_retrying). */
static void resume(worker *w)
{
    if (atomic_exchange(&w->retrying, false)) log_info("worker %u: consumption resumed", w->index);
}

/* inserter hook: after SIGINT/SIGTERM, retrying stops once --shutdown-timeout has passed. */
static insert_result give_up_retrying(void *ud, const char *err)
{
    worker *w = ud;
    return inserter_give_up_at_shutdown(w->cfg->shutdown_timeout, err);
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

static size_t events_held(const flight *f)
{
    size_t events = 0;
    for (size_t i = 0; f && i < f->nheld; i++)
        if (!f->held[i].dead_lettered) events++;
    return events;
}

/* Partitions were taken away while ClickHouse was unreachable: nothing since the last commit is
 * committed. `given_up` is the flight that gave up (NULL: one of the worker's own statements
 * did); no flight is in the air. Both flights are dropped and the partitions
 * still owned are rewound to their first event since the last commit, so each of those events is
 * consumed again (by their new owner or by us). Events dead-lettered meanwhile may be
 * dead-lettered twice. */
static void hand_back(worker *w, flight *given_up)
{
    CDC_ASSERT(!flusher_flying(w->flusher));
    size_t events = events_held(given_up) + events_held(w->fill);
    metrics_handed_back(w->n, events); /* not handled here after all */
    for (size_t i = 0; i < w->nowned; i++) {
        partition_state *ps = w->owned[i];
        int64_t from = ps->pending_from;
        for (size_t c = 0; given_up && c < given_up->ncommits; c++)
            if (given_up->commits[c].ps == ps && given_up->commit_from[c] >= 0)
                from = given_up->commit_from[c];
        if (from >= 0) ask_rewind(w, ps, from);
        ps->pending_from = -1;
    }
    if (given_up) flight_clear(given_up);
    flight_clear(w->fill);
    ledger_handed_back(w->ledger);
    w->handbacks++;
    atomic_store(&w->retrying, false);
    log_warn("a rebalance took partitions away while ClickHouse was unreachable: %zu events with "
             "rows waiting were handed back uncommitted",
             events);
}

/* The flight in the air, if it landed (waiting up to wait_ms): emptied for refilling, or handed
 * back when it gave up. */
static void collect(worker *w, int wait_ms)
{
    flight *f = flusher_landed(w->flusher, wait_ms);
    if (!f) return;
    if (f->result == INSERT_HANDED_BACK)
        hand_back(w, f);
    else
        flight_clear(f);
}

/* Waits until no flight is in the air. */
static void settle(worker *w)
{
    while (flusher_flying(w->flusher)) {
        metrics_heartbeat(w->n, w->index);
        collect(w, WAIT_SLICE_MS);
    }
}

/* Seals the filling flight — every owned partition's offset to commit, the ledger's rows — and
 * launches it; the other flight (empty: none is in the air) becomes the filling one. */
static void launch(worker *w, bool in_revoke)
{
    flight *f = w->fill;
    CDC_ASSERT(!flusher_flying(w->flusher));
    for (size_t i = 0; i < w->nowned; i++) {
        partition_state *ps = w->owned[i];
        if (ps->next >= 0) flight_commit(f, ps, ps->next, ps->pending_from);
        ps->pending_from = -1;
    }
    f->ledger = ledger_seal(w->ledger);
    f->in_revoke = in_revoke;
    f->revoke_deadline_ms = clock_ms() + w->cfg->shutdown_timeout * 1000;
    w->fill = f == &w->flights[0] ? &w->flights[1] : &w->flights[0];
    w->offsets_moved = false;
    w->last_flush_ms = clock_ms();
    flusher_launch(w->flusher, f);
}

/* Everything handled so far is inserted and committed before it returns (in_revoke: waiting for
 * ClickHouse only until the revoke's deadline): 0, or -1 when the worker failed. A hand-back
 * meanwhile (w->handbacks moves) ends it early: nothing is left to insert. */
static int flush(worker *w, bool in_revoke)
{
    size_t handbacks = w->handbacks;
    settle(w);
    if (failed(w)) return -1;
    if (w->handbacks != handbacks) return 0;
    launch(w, in_revoke);
    settle(w);
    return failed(w) ? -1 : 0;
}

/* The filling flight reached --batch-rows or --batch-bytes. */
static bool fill_full(const worker *w)
{
    return batch_set_rows(&w->fill->batches) >= (size_t)w->cfg->batch_rows ||
           batch_set_bytes(&w->fill->batches) >= (size_t)w->cfg->batch_bytes;
}

static bool flush_due(const worker *w)
{
    if (fill_full(w)) return true;
    int64_t now = clock_ms(), oldest = batch_set_oldest_ms(&w->fill->batches);
    if (oldest >= 0 && now - oldest >= w->cfg->batch_ms) return true;
    return w->offsets_moved && now - w->last_flush_ms >= w->cfg->batch_ms;
}

/* How long the worker may sleep waiting for records before its next flush is due. */
static int ms_until_flush(const worker *w)
{
    int64_t now = clock_ms(), due = -1, oldest = batch_set_oldest_ms(&w->fill->batches);
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
        return batch_set_add_rowbinary(&w->fill->batches, layout, L, idx, (uint32_t)w->fill->nheld,
                                       err, errlen);
    if (w->targets) w->n->unknown_columns += target_tables_check_row(w->targets, table, L, idx);
    return batch_set_add_row(&w->fill->batches, table, L, idx, (uint32_t)w->fill->nheld, err,
                             errlen);
}

/* ---- cdc.ddl and cdc.columns (script_host): statements at the event's place in the stream ---- */

/* Both flights are empty (just flushed): every table's columns are read again on next use. */
static void forget_tables(worker *w)
{
    batch_set_free(&w->flights[0].batches);
    batch_set_free(&w->flights[1].batches);
    target_tables_reset(w->targets);
    batch_set_mark(&w->fill->batches);
}

/* Sends one statement with the insert's retry rules (partitions paused while ClickHouse is
 * unreachable; a revoke meanwhile hands everything back). */
static script_host_result host_exec(worker *w, const char *sql, strbuf *out, ch_status *st,
                                    ch_failure *why, char *err, size_t errlen)
{
    insert_result r = inserter_exec(&w->inserter, sql, out, st, why, err, errlen);
    if (r == INSERT_HANDED_BACK) { /* the flight in the air, if any, lands (or gives up) first */
        size_t handbacks = w->handbacks;
        settle(w);
        if (w->handbacks == handbacks) hand_back(w, NULL);
    }
    if (r == INSERT_FAILED) fail(w);
    if (r != INSERT_OK) return SCRIPT_HOST_ABORT;
    resume(w);
    return SCRIPT_HOST_OK;
}

/* A statement of the script failed for a reason no event can fix (credentials, grants, a
 * missing database): the worker stops as it would for an insert. */
static script_host_result stop_for_deployment(worker *w, const char *fn, const char *sql,
                                              const char *why)
{
    log_error("%s: %s: %s", fn, sql, why);
    log_error("stopping without committing: fix the ClickHouse deployment or pipeline.lua and "
              "restart; the events will be consumed again");
    fail(w);
    return SCRIPT_HOST_ABORT;
}

/* cdc.ddl: everything handled before is inserted first (a flush), then the statement runs. A
 * statement ClickHouse rejects fails the event (a Lua error: dead-lettered unless caught); a
 * permanent failure (credentials, unknown database or table) stops the worker as it would an
 * insert. */
static script_host_result host_ddl(void *ud, const char *sql, char *err, size_t errlen)
{
    worker *w = ud;
    size_t handbacks = w->handbacks;
    if (flush(w, false) != 0 || w->handbacks != handbacks) return SCRIPT_HOST_ABORT;
    ch_status st;
    ch_failure failure;
    char why[1024];
    script_host_result r = host_exec(w, sql, NULL, &st, &failure, why, sizeof why);
    if (r != SCRIPT_HOST_OK) return r;
    if (st == CH_PERMANENT) return stop_for_deployment(w, "cdc.ddl", sql, why);
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
    if (flush(w, false) != 0 || w->handbacks != handbacks) return SCRIPT_HOST_ABORT;
    batch_set_mark(&w->fill->batches);
    strbuf q = {0};
    strbuf_puts(&q, sql);
    strbuf_puts(&q, "\nFORMAT JSONEachRow");
    ch_status st;
    ch_failure failure;
    char why[1024];
    script_host_result r = host_exec(w, q.data, out, &st, &failure, why, sizeof why);
    strbuf_free(&q);
    /* credentials, grants, a server that refuses the setting: not this event's fault. An unknown
     * table (60) or database (81) is the statement's: a Lua error, like a syntax error */
    if (r == SCRIPT_HOST_OK && st == CH_PERMANENT && failure.code != 60 && failure.code != 81)
        return stop_for_deployment(w, "cdc.query", sql, why);
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
        insert_result lr = ledger_event_begin(w->ledger, &w->inserter, ps, m->offset);
        if (lr != INSERT_OK) {
            if (lr == INSERT_FAILED)
                fail(w);
            else /* handed back: consumed again once the ledger can be read */
                ask_rewind(w, ps, m->offset);
            rd_kafka_message_destroy(m);
            return;
        }
        resume(w);
    }
    char err[2048];
    size_t rows = 0;
    script_result r;
    metrics_consumed(w->n, topic);
    batch_set_mark(&w->fill->batches);
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
            flight_hold(w->fill,
                        (held_event){ps, ev.offset, false, script_source_ts_ms(w->script), ts});
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
        batch_set_rollback(&w->fill->batches);
        dead_letter_event(w, m, r == SCRIPT_DECODE_ERROR ? DL_DECODE : DL_LUA, err);
        break;
    case SCRIPT_ABORTED: /* cdc.ddl gave it up: not handled; consumed again (or we stop) */
        batch_set_rollback(&w->fill->batches);
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
    flush(w, true);
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
        batch_set_free(&w->flights[0].batches);
        batch_set_free(&w->flights[1].batches);
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
        bool ok = flush(w, false) == 0;
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
    if (w->count == 0 && wait_ms > 0 && !atomic_load(&w->attention) && !w->landed) {
        struct timespec until = clock_deadline(wait_ms);
        w->waiting = true;
        pthread_cond_timedwait(&w->wake, &w->lock, &until);
        w->waiting = false;
    }
    w->landed = false;
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
    signals_block();
    item items[TAKE_MAX];
    while (!failed(w) && !signals_stop_requested) {
        collect(w, 0);
        if (atomic_load_explicit(&w->attention, memory_order_acquire) && serve_requests(w)) break;
        if (flush_due(w)) { /* one flight in the air and one filling, no more */
            if (flusher_flying(w->flusher) && fill_full(w)) settle(w);
            if (!flusher_flying(w->flusher) && !failed(w)) launch(w, false);
        }
        /* still due: a flight is in the air; wait for records or its landing */
        int wait_ms = flush_due(w) ? WAIT_SLICE_MS : ms_until_flush(w);
        size_t n = take(w, items, TAKE_MAX, wait_ms);
        for (size_t i = 0; i < n; i++)
            serve_item(w, &items[i]);
        metrics_tick(w->n, w->index, &w->flights[0].batches, &w->flights[1].batches);
    }
    flush(w, false);
    metrics_tick(w->n, w->index, NULL, NULL);     /* nothing waits in its batches any more */
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
    w->dead_letters = dead_letters;
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
        w->inserter =
            (inserter){w->ch, {wait_before_retry, give_up_retrying, NULL, w, NULL}, w->n, NULL, 0};
        w->ledger = ledger_new(cfg, index);
        w->targets = target_tables_new(w->ch, cfg->database, strcmp(cfg->format, "rowbinary") == 0,
                                       DESCRIBE_TIMEOUT_MS);
        if (strcmp(cfg->format, "json") == 0) target_tables_json_only(w->targets);
        w->host = (script_host){host_ddl, host_columns, host_clickhouse_version, host_query, w};
        script_set_host(w->script, &w->host);
    }
    w->fill = &w->flights[0];
    w->flusher = flusher_start(cfg, index, kafka, dead_letters, counters, w->ledger,
                               (flusher_hooks){revoke_asked, flight_landed, w}, err, errlen);
    if (!w->flusher) goto fail;
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
    return atomic_load_explicit(&w->retrying, memory_order_relaxed) || flusher_retrying(w->flusher);
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
    return failed(w);
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
    *commit_failed = flusher_commit_failed(w->flusher);
}

const batch_set *worker_batches(const worker *w, unsigned i)
{
    CDC_ASSERT(i < 2);
    return &w->flights[i].batches;
}

void worker_free(worker *w)
{
    if (!w) return;
    flusher_free(w->flusher); /* its thread ends (no flight is in the air after a join) */
    ledger_free(w->ledger);
    free(w->owned);
    free(w->rewinds);
    free(w->queue);
    ch_close(w->ch);
    flight_free(&w->flights[0]);
    flight_free(&w->flights[1]);
    target_tables_free(w->targets); /* after the batches, which use its layouts */
    script_close(w->script);
    strbuf_free(&w->dry_rows);
    pthread_cond_destroy(&w->done);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
