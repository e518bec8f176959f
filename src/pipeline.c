/*
 * pipeline — consume → decode → transform → batch → insert → commit
 * (see include/cdcpipe/pipeline.h).
 *
 * Delivery rule, in one place (flush): offsets are committed only after every batch has been
 * acknowledged by ClickHouse. Since a flush inserts all batches, everything consumed before it
 * is safe once it succeeds, whatever partition or table it came from.
 *
 * While ClickHouse is unreachable the flush retries with every partition paused and keeps
 * polling, so the consumer group can still rebalance. If partitions are taken away meanwhile,
 * nothing is committed and every batch is dropped: the events since the last commit are handed
 * back (hand_back) and consumed again, by the new owner or by us.
 */
#include "cdcpipe/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cdcpipe/batch.h"
#include "cdcpipe/clickhouse.h"
#include "cdcpipe/clock.h"
#include "cdcpipe/dead_letter.h"
#include "cdcpipe/kafka.h"
#include "cdcpipe/log.h"
#include "cdcpipe/partitions.h"
#include "cdcpipe/record_fetch.h"
#include "cdcpipe/row_set.h"
#include "cdcpipe/row_json.h"
#include "cdcpipe/start_position.h"

#define RETRY_FIRST_MS 200
#define RETRY_MAX_MS   10000
#define DDL_RETRY_MS   30000
#define POLL_MS        100

volatile sig_atomic_t pipeline_stop_requested = 0;
volatile sig_atomic_t pipeline_reload_requested = 0;

static void on_hangup(int sig)
{
    (void)sig;
    pipeline_reload_requested = 1;
}

static void on_signal(int sig)
{
    (void)sig;
    if (pipeline_stop_requested) _exit(130); /* second signal: leave now, commit nothing more */
    pipeline_stop_requested = 1;
}

void pipeline_install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_hangup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* An event whose rows wait in the batches: where it came from, so that an event whose row
 * ClickHouse rejects can be read again and dead-lettered with its original key, value and
 * headers (the record itself is not kept: see record_fetch.h). */
typedef struct {
    uint32_t partition_index; /* into parts.items */
    int64_t offset;
    bool dead_lettered;
} held_event;

typedef enum {
    INSERT_OK,
    INSERT_FAILED,      /* deployment error, or unreachable until the shutdown deadline */
    INSERT_HANDED_BACK, /* a rebalance came while ClickHouse was unreachable */
} insert_result;

typedef struct {
    const config *cfg;
    script *script; /* the running pipeline.lua; replaced by a reload */
    ch_client *ch;  /* NULL in a dry run */
    kafka_consumer *kafka;
    dl_sink *dead_letters;
    record_fetcher *fetcher;
    partition_table parts;
    batch_set batches;
    pipeline_counters *n;
    held_event *held; /* events with rows in the batches, numbered as the rows record */
    size_t nheld, held_cap;
    bool offsets_moved; /* events handled since the last commit */
    int64_t last_flush_ms;
    int64_t stop_deadline_ms;   /* after SIGINT/SIGTERM: when to give up retrying; -1 before */
    bool failed;                /* a flush failed: nothing more may be committed */
    bool commit_failed;         /* the last commit failed (the next flush commits again) */
    bool flushing;              /* flush runs (a revoke arriving now cannot flush again) */
    bool in_revoke;             /* flush runs inside the rebalance callback: no polling */
    int64_t revoke_deadline_ms; /* in_revoke: when to stop waiting for ClickHouse */
    bool handed_back;           /* batches must be dropped and partitions rewound (hand_back) */
    /* messages polled while paused (librdkafka should return none): a queue, [head, n) */
    rd_kafka_message_t **stash;
    size_t stash_head, nstash, stash_cap;
    strbuf dry_rows; /* dry run: the current event's rows, printed when it succeeds */
} pipeline;

/* Sleeps up to ms. Wakes early when a stop is requested during the sleep. */
static void pause_ms(int ms)
{
    sig_atomic_t stopped = pipeline_stop_requested;
    while (ms > 0 && pipeline_stop_requested == stopped) {
        int step = ms < 100 ? ms : 100;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

static int next_backoff(int backoff)
{
    int doubled = backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2;
    return doubled / 2 + rand() % (doubled / 2 + 1); /* jitter: [half, full] */
}

/* After a stop request, transient failures are retried for --shutdown-timeout seconds more. */
static bool shutdown_expired(pipeline *p)
{
    if (!pipeline_stop_requested) return false;
    if (p->stop_deadline_ms < 0) p->stop_deadline_ms = clock_ms() + p->cfg->shutdown_timeout * 1000;
    return clock_ms() >= p->stop_deadline_ms;
}

/* libcurl asks during every ClickHouse request: a request still running when the stop or revoke
 * deadline passes is abandoned (it then fails as transient, and the caller gives up). */
static bool request_deadline_passed(void *ud)
{
    pipeline *p = ud;
    return shutdown_expired(p) || (p->in_revoke && clock_ms() >= p->revoke_deadline_ms);
}

/* Dead-letters an event; a sink failure fails the flush (nothing may be committed). */
static void dead_letter_event(pipeline *p, const rd_kafka_message_t *m, dl_stage stage,
                              const char *reason, int clickhouse_code)
{
    char err[512];
    dead_letter d = {
        .msg = m, .stage = stage, .reason = reason, .clickhouse_code = clickhouse_code};
    p->n->dead_lettered++;
    if (dl_send(p->dead_letters, &d, err, sizeof err) != 0) {
        log_error("%s; stopping without committing", err);
        p->failed = true;
    }
}

/* Keeps a message polled while paused, to be handled after the flush (or dropped by hand_back,
 * which rewinds its partition to it). */
static void stash(pipeline *p, rd_kafka_message_t *m)
{
    if (p->stash_head == p->nstash) p->stash_head = p->nstash = 0;
    if (p->nstash == p->stash_cap) {
        p->stash_cap = p->stash_cap ? p->stash_cap * 2 : 16;
        p->stash = realloc(p->stash, p->stash_cap * sizeof *p->stash);
        if (!p->stash) abort();
    }
    p->stash[p->nstash++] = m;
}

/* Polls the consumer for up to timeout_ms. A fatal consumer error is logged and fails the
 * pipeline (p->failed: nothing more is committed); then, as on a timeout, NULL. */
static rd_kafka_message_t *poll_kafka(pipeline *p, int timeout_ms)
{
    char err[1024];
    bool fatal;
    rd_kafka_message_t *m = kafka_poll(p->kafka, timeout_ms, &fatal, err, sizeof err);
    if (fatal) {
        log_error("%s", err);
        p->failed = true;
    }
    return m;
}

/* Waits ms before an insert is tried again. Outside a rebalance callback the consumer keeps
 * polling with its partitions paused, so the group can rebalance meanwhile. Returns 0, or -1
 * when partitions were taken away (p->handed_back) or Kafka failed (p->failed). */
static int wait_before_retry(pipeline *p, int ms)
{
    if (p->in_revoke || !p->kafka) {
        pause_ms(ms);
        return 0;
    }
    kafka_pause(p->kafka);
    int64_t until = clock_ms() + ms;
    sig_atomic_t stopped = pipeline_stop_requested;
    for (int64_t now = clock_ms(); now < until && pipeline_stop_requested == stopped;
         now = clock_ms()) {
        rd_kafka_message_t *m = poll_kafka(p, until - now < POLL_MS ? (int)(until - now) : POLL_MS);
        if (m) stash(p, m);
        if (p->failed || p->handed_back) return -1;
    }
    return 0;
}

/* Requests made for one slice of a batch (up to --batch-rows rows) once ClickHouse rejected it,
 * to find its bad rows. A bad row costs 2 of them when ClickHouse names its row number, and about
 * 2·log2(rows) (at most 40 for the largest slice) when it does not; each insert that succeeds
 * adds a part to the table. Past the budget, every piece still waiting is tried once more as a
 * whole and, if rejected, dead-lettered whole: bad input can neither multiply inserts (nor
 * parts: TOO_MANY_PARTS) nor keep a batch from finishing. */
#define NARROW_BUDGET 64

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* An INSERT of a row set: its column list and body pieces. */
typedef struct {
    batch *b;
    char **columns; /* room for 2 * b->ncolumns */
    size_t ncolumns;
    ch_span *spans;
} insert_request;

static void insert_request_prepare(insert_request *q, batch *b, const row_set *s)
{
    size_t room = b->ncolumns ? 2 * b->ncolumns : 1;
    q->b = b;
    q->columns = malloc(room * sizeof *q->columns);
    q->spans = malloc((s->count ? s->count : 1) * sizeof *q->spans);
    if (!q->columns || !q->spans) abort();
    q->ncolumns = 0;
    for (size_t i = 0; i < s->count; i++) {
        size_t from = batch_row_start(b, s->ranges[i].from),
               to = batch_row_start(b, s->ranges[i].to);
        q->spans[i] = (ch_span){b->rows.data + from, to - from};
        /* The union of the ranges' columns (a column no row of the set has stays out, so its
         * DEFAULT applies on every server version). */
        q->ncolumns +=
            batch_columns_of(b, s->ranges[i].from, s->ranges[i].to, q->columns + q->ncolumns);
        if (s->count > 1) {
            qsort(q->columns, q->ncolumns, sizeof *q->columns, compare_names);
            size_t n = 0;
            for (size_t k = 0; k < q->ncolumns; k++)
                if (n == 0 || strcmp(q->columns[n - 1], q->columns[k]) != 0)
                    q->columns[n++] = q->columns[k];
            q->ncolumns = n;
        }
    }
}

static void insert_request_free(insert_request *q)
{
    free(q->columns);
    free(q->spans);
}

typedef struct {
    insert_request *insert; /* NULL: the probe (SELECT 1) */
    size_t nspans;
} request;

static ch_status send_request(pipeline *p, request *r, ch_failure *fail, char *err, size_t errlen)
{
    if (!r->insert) return ch_exec(p->ch, "SELECT 1", NULL, fail, err, errlen);
    insert_request *q = r->insert;
    return ch_insert(p->ch, q->b->table, q->columns, q->ncolumns, q->spans, r->nspans, fail, err,
                     errlen);
}

/* Sends r until it is not a transient failure: retried with backoff until it succeeds, the
 * shutdown timeout passes or a rebalance takes partitions away. Returns INSERT_OK with *st
 * CH_OK or CH_REJECTED (fail and err describe the rejection); INSERT_FAILED after a permanent
 * failure (logged) or at shutdown; INSERT_HANDED_BACK. */
static insert_result send_retrying(pipeline *p, request *r, ch_status *st, ch_failure *fail,
                                   char *err, size_t errlen)
{
    int backoff = RETRY_FIRST_MS;
    while ((*st = send_request(p, r, fail, err, errlen)) == CH_TRANSIENT) {
        if (shutdown_expired(p)) {
            log_error("%s; giving up at shutdown, offsets not committed (the events will be "
                      "consumed again)",
                      err);
            return INSERT_FAILED;
        }
        if (p->in_revoke && clock_ms() >= p->revoke_deadline_ms) {
            log_warn("%s; still failing %ld s after partitions were revoked: handing them over "
                     "uncommitted (their events will be consumed again)",
                     err, p->cfg->shutdown_timeout);
            return INSERT_HANDED_BACK;
        }
        p->n->retries++;
        log_warn("%s; retrying in %d ms", err, backoff);
        if (wait_before_retry(p, backoff) != 0)
            return p->failed ? INSERT_FAILED : INSERT_HANDED_BACK;
        backoff = next_backoff(backoff);
    }
    if (*st == CH_PERMANENT) {
        log_error("%s", err);
        log_error("stopping without committing: fix the ClickHouse deployment or pipeline.lua and "
                  "restart; the events will be consumed again");
        return INSERT_FAILED;
    }
    return INSERT_OK;
}

/* Inserts the rows of s (see send_retrying); *rejected tells whether ClickHouse refused them. */
static insert_result send_rows(pipeline *p, batch *b, const row_set *s, bool *rejected,
                               ch_failure *fail, char *err, size_t errlen)
{
    insert_request q;
    insert_request_prepare(&q, b, s);
    request r = {&q, s->count};
    ch_status st;
    insert_result res = send_retrying(p, &r, &st, fail, err, errlen);
    insert_request_free(&q);
    *rejected = res == INSERT_OK && st == CH_REJECTED;
    if (res == INSERT_OK && st == CH_OK) p->n->rows_inserted += s->rows;
    return res;
}

/* Dead-letters the event a held row came from (once), with its original record read again; a
 * record that cannot be read again is dead-lettered with what is known of it. */
static void dead_letter_held(pipeline *p, held_event *h, const char *reason, int clickhouse_code)
{
    if (h->dead_lettered) return;
    h->dead_lettered = true;
    const partition_state *ps = &p->parts.items[h->partition_index];
    char fetch_err[512];
    rd_kafka_message_t *m =
        record_fetch(p->fetcher, ps->topic, ps->partition, h->offset, fetch_err, sizeof fetch_err);
    if (m) {
        dead_letter_event(p, m, DL_CLICKHOUSE, reason, clickhouse_code);
        rd_kafka_message_destroy(m);
        return;
    }
    char why[2048];
    snprintf(why, sizeof why,
             "%s (the record itself could not be read again: %s; this dead letter has no key, "
             "value or original headers)",
             reason, fetch_err);
    char err[512];
    dead_letter d = {.msg = NULL,
                     .stage = DL_CLICKHOUSE,
                     .reason = why,
                     .clickhouse_code = clickhouse_code,
                     .topic = ps->topic,
                     .partition = ps->partition,
                     .offset = h->offset};
    p->n->dead_lettered++;
    if (dl_send(p->dead_letters, &d, err, sizeof err) != 0) {
        log_error("%s; stopping without committing", err);
        p->failed = true;
    }
}

/* A row ClickHouse rejects alone. Without a ClickHouse error (a code-less 400/413/414) the
 * server or a proxy may refuse every request: a probe tells the row's fault from the
 * deployment's. */
static insert_result reject_row(pipeline *p, batch *b, size_t row, const ch_failure *fail,
                                const char *reason)
{
    if (!fail->code) {
        char err[1024];
        ch_failure probe_fail;
        ch_status st;
        request probe = {NULL, 0};
        insert_result r = send_retrying(p, &probe, &st, &probe_fail, err, sizeof err);
        if (r != INSERT_OK) return r;
        if (st != CH_OK) {
            log_error("%s", reason);
            log_error("even a plain SELECT 1 is refused (%s): the ClickHouse URL or a proxy before "
                      "it is wrong, not the rows; stopping without committing",
                      err);
            return INSERT_FAILED;
        }
    }
    dead_letter_held(p, &p->held[b->row_event[row]], reason, fail->code);
    return p->failed ? INSERT_FAILED : INSERT_OK;
}

/* Inserts the rows of s, narrowing a rejection down to the bad rows, which are dead-lettered:
 * the row ClickHouse names ("at row N"; only while `numbered`) is tried alone — rejected, it is
 * dead-lettered; accepted, ClickHouse's numbers are not used for s again — and the rest is
 * inserted without it; with no usable row number s is split in halves. Every request counts
 * against *budget (NARROW_BUDGET); once it is spent, a piece that is rejected is dead-lettered
 * whole. Frees s. */
static insert_result insert_set(pipeline *p, batch *b, row_set *s, bool numbered, int *budget)
{
    char err[1024];
    ch_failure fail;
    insert_result r = INSERT_OK;
    for (;;) {
        bool rejected;
        (*budget)--;
        r = send_rows(p, b, s, &rejected, &fail, err, sizeof err);
        if (r != INSERT_OK || !rejected) break;
        if (s->rows == 1) {
            r = reject_row(p, b, s->ranges[0].from, &fail, err);
            break;
        }
        if (*budget <= 0) {
            char reason[1400];
            snprintf(reason, sizeof reason,
                     "rejected together with the other %zu rows of its group; cdcpipe stopped "
                     "narrowing this batch down after %d inserts: %s",
                     s->rows - 1, NARROW_BUDGET, err);
            log_warn("%zu rows of a batch for %s dead-lettered as a group: %s", s->rows, b->table,
                     reason);
            for (size_t i = 0; i < s->count && !p->failed; i++)
                for (size_t row = s->ranges[i].from; row < s->ranges[i].to && !p->failed; row++)
                    dead_letter_held(p, &p->held[b->row_event[row]], reason, fail.code);
            r = p->failed ? INSERT_FAILED : INSERT_OK;
            break;
        }
        if (numbered && fail.row >= 1 && (size_t)fail.row <= s->rows) {
            size_t row = row_set_at(s, (size_t)fail.row - 1);
            row_set one = {0};
            row_set_add(&one, row, row + 1);
            char one_err[1024];
            ch_failure one_fail;
            (*budget)--;
            r = send_rows(p, b, &one, &rejected, &one_fail, one_err, sizeof one_err);
            row_set_free(&one);
            if (r != INSERT_OK) break;
            if (rejected) {
                log_debug("%s; row %ld of %zu is the bad one", err, fail.row, s->rows);
                r = reject_row(p, b, row, &one_fail, one_err);
                if (r != INSERT_OK) break;
            } else {
                log_debug("%s; but row %ld alone was accepted: splitting instead", err, fail.row);
                numbered = false;
            }
            row_set_remove(s, row);
            continue;
        }
        log_debug("%s; splitting %zu rows", err, s->rows);
        row_set first, second;
        row_set_split(s, s->rows / 2, &first, &second);
        r = insert_set(p, b, &first, numbered, budget);
        if (r == INSERT_OK)
            r = insert_set(p, b, &second, numbered, budget);
        else
            row_set_free(&second);
        break;
    }
    row_set_free(s);
    return r;
}

/* Inserts rows [first, end) of b: transient failures are retried until they succeed, the
 * shutdown timeout passes or a rebalance takes partitions away; rejected data is narrowed down
 * to the bad rows (insert_set), whose events are dead-lettered. */
static insert_result insert_rows(pipeline *p, batch *b, size_t first, size_t end)
{
    row_set all = {0};
    row_set_add(&all, first, end);
    int budget = NARROW_BUDGET + 1; /* the first insert is not narrowing anything down */
    insert_result r = insert_set(p, b, &all, true, &budget);
    record_fetch_release(p->fetcher);
    return r;
}

/* Partitions were taken away while the batches waited for ClickHouse: nothing since the last
 * commit is committed. Every batch is dropped and the partitions still assigned are rewound to
 * their first event since the last flush, so each of those events is consumed again (by their
 * new owner or by us). Events dead-lettered meanwhile may be dead-lettered twice. */
static void drop_pending(pipeline *p)
{
    size_t events = 0;
    for (size_t i = 0; i < p->nheld; i++)
        if (!p->held[i].dead_lettered) events++;
    for (size_t i = 0; i < p->batches.count; i++)
        batch_clear(&p->batches.items[i]);
    p->n->consumed -= events; /* not handled here after all */
    p->nheld = 0;
    for (size_t i = p->stash_head; i < p->nstash; i++) {
        rd_kafka_message_t *m = p->stash[i];
        partition_state *ps =
            partitions_find(&p->parts, rd_kafka_topic_name(m->rkt), m->partition, false);
        if (ps && ps->assigned && (ps->pending_from < 0 || m->offset < ps->pending_from))
            ps->pending_from = m->offset;
        rd_kafka_message_destroy(m);
    }
    p->stash_head = p->nstash = 0;
    p->handed_back = false;
    log_warn("a rebalance took partitions away while ClickHouse was unreachable: %zu events with "
             "rows waiting were handed back uncommitted",
             events);
}

static void hand_back(pipeline *p)
{
    drop_pending(p);
    if (kafka_rewind(p->kafka) != 0) p->failed = true; /* events could be skipped: stop */
}

/* Inserts every batch, dead letters are acknowledged, then offsets are committed: the one place
 * offsets become committable. */
static int flush(pipeline *p)
{
    char err[1024];
    if (p->failed) return -1;
    insert_result r = INSERT_OK;
    p->flushing = true;
    for (size_t i = 0; i < p->batches.count && p->ch && r == INSERT_OK; i++) {
        batch *b = &p->batches.items[i];
        for (size_t first = 0; first < b->nrows && r == INSERT_OK;
             first += (size_t)p->cfg->batch_rows) {
            size_t end = first + (size_t)p->cfg->batch_rows;
            r = insert_rows(p, b, first, end < b->nrows ? end : b->nrows);
        }
        if (r != INSERT_OK) break;
        log_debug("inserted %zu rows into %s", b->nrows, b->table);
        batch_clear(b);
    }
    p->flushing = false;
    if (r == INSERT_FAILED) {
        p->failed = true;
        return -1;
    }
    if (r == INSERT_HANDED_BACK) {
        p->handed_back = true;
        if (!p->in_revoke) hand_back(p); /* else once the rebalance is over: the main loop */
        return 0;
    }
    if (p->kafka) kafka_resume(p->kafka);
    for (size_t i = 0; i < p->nheld; i++)
        if (!p->held[i].dead_lettered) p->n->events_inserted++;
    p->nheld = 0;
    for (size_t i = 0; i < p->parts.count; i++)
        p->parts.items[i].pending_from = -1;
    if (dl_flush(p->dead_letters, err, sizeof err) != 0) {
        log_error("%s; stopping without committing", err);
        p->failed = true;
        return -1;
    }
    p->commit_failed = kafka_commit(p->kafka) != 0;
    p->offsets_moved = false;
    p->last_flush_ms = clock_ms();
    return 0;
}

/* Before partitions are revoked: flush and commit while we own them. When the main loop's flush
 * is the one waiting for ClickHouse (the revoke came from polling while paused), its events are
 * handed back instead; a flush started here waits at most --shutdown-timeout. */
static void flush_before_revoke(void *ud)
{
    pipeline *p = ud;
    if (p->flushing) {
        p->handed_back = true;
        return;
    }
    p->in_revoke = true;
    p->revoke_deadline_ms = clock_ms() + p->cfg->shutdown_timeout * 1000;
    flush(p);
    p->in_revoke = false;
}

static bool flush_due(const pipeline *p)
{
    if (batch_set_rows(&p->batches) >= (size_t)p->cfg->batch_rows ||
        batch_set_bytes(&p->batches) >= (size_t)p->cfg->batch_bytes)
        return true;
    int64_t now = clock_ms(), oldest = batch_set_oldest_ms(&p->batches);
    if (oldest >= 0 && now - oldest >= p->cfg->batch_ms) return true;
    return p->offsets_moved && now - p->last_flush_ms >= p->cfg->batch_ms;
}

/* script row callback: rows go to the batches, tagged with the event's future held index. */
static int batch_row(void *ud, const char *table, lua_State *L, int idx, char *err, size_t errlen)
{
    pipeline *p = ud;
    return batch_set_add_row(&p->batches, table, L, idx, (uint32_t)p->nheld, err, errlen);
}

/* Runs one Kafka record through decode → transform → batch. Destroys m. */
static void handle_message(pipeline *p, rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    rd_kafka_timestamp_type_t ts_type;
    int64_t ts = rd_kafka_message_timestamp(m, &ts_type);
    script_event ev = {topic,      m->partition, m->offset, ts,  m->key,
                       m->key_len, m->payload,   m->len,    NULL};
    (void)rd_kafka_message_headers(m, &ev.headers); /* meta.headers; none: stays NULL */
    partition_state *ps = partitions_find(&p->parts, topic, m->partition, true);
    char err[2048];
    size_t rows = 0;
    script_result r;
    p->n->consumed++;
    batch_set_mark(&p->batches);
    strbuf_reset(&p->dry_rows);
    if (m->payload && m->len > (size_t)p->cfg->max_event_bytes) {
        snprintf(err, sizeof err, "event of %zu bytes is larger than --max-event-bytes %ld", m->len,
                 p->cfg->max_event_bytes);
        r = SCRIPT_DECODE_ERROR;
    } else if (m->payload && m->len == 0) {
        snprintf(err, sizeof err, "empty value (zero bytes, not a tombstone)");
        r = SCRIPT_DECODE_ERROR;
    } else {
        r = script_process(p->script, &ev, p->cfg->table, p->ch ? batch_row : row_json_append_line,
                           p->ch ? (void *)p : (void *)&p->dry_rows, &rows, err, sizeof err);
    }
    switch (r) {
    case SCRIPT_ROWS:
        if (p->ch) {
            if (p->nheld == p->held_cap) {
                p->held_cap = p->held_cap ? p->held_cap * 2 : 1024;
                p->held = realloc(p->held, p->held_cap * sizeof *p->held);
                if (!p->held) abort();
            }
            p->held[p->nheld++] = (held_event){(uint32_t)(ps - p->parts.items), ev.offset, false};
        } else {
            fwrite(p->dry_rows.data, 1, p->dry_rows.len, stdout);
            p->n->events_inserted++;
            p->n->rows_inserted += rows;
        }
        break;
    case SCRIPT_FILTERED:
        p->n->filtered++;
        break;
    case SCRIPT_TOMBSTONE:
        p->n->tombstones++;
        break;
    case SCRIPT_DECODE_ERROR:
    case SCRIPT_LUA_ERROR:
        batch_set_rollback(&p->batches);
        dead_letter_event(p, m, r == SCRIPT_DECODE_ERROR ? DL_DECODE : DL_LUA, err, 0);
        break;
    }
    if (ps->assigned) {
        if (ps->pending_from < 0) ps->pending_from = ev.offset;
        ps->next = ev.offset + 1;
    }
    p->offsets_moved = true;
    rd_kafka_message_destroy(m);
}

/* Runs ddl() statements, retrying while ClickHouse is not reachable yet (up to 30 s). */
static int run_ddl(pipeline *p, script *s)
{
    char **stmts, err[1024];
    if (script_ddl(s, &stmts, err, sizeof err) != 0) {
        log_error("%s", err);
        script_free_ddl(stmts);
        return -1;
    }
    int rc = 0;
    for (char **sql = stmts; *sql && rc == 0; sql++) {
        int64_t deadline = clock_ms() + DDL_RETRY_MS;
        int backoff = RETRY_FIRST_MS;
        ch_status st;
        while ((st = ch_exec(p->ch, *sql, NULL, NULL, err, sizeof err)) == CH_TRANSIENT &&
               clock_ms() < deadline && !pipeline_stop_requested) {
            log_warn("%s; retrying in %d ms", err, backoff);
            pause_ms(backoff);
            backoff = next_backoff(backoff);
        }
        if (st != CH_OK) {
            log_error("ddl() in %s: %s", script_path(s), err);
            rc = -1;
        }
    }
    script_free_ddl(stmts);
    return rc;
}

/* --show N: the last N rows (in the table's sort order) of every table written to. */
static void show_tables(pipeline *p)
{
    char err[1024];
    for (size_t i = 0; i < p->batches.count; i++) {
        const char *table = p->batches.items[i].table;
        strbuf sql = {0}, out = {0};
        strbuf_puts(&sql, "SELECT count() FROM ");
        ch_quote_table(&sql, p->cfg->database, table);
        if (ch_exec(p->ch, sql.data, &out, NULL, err, sizeof err) == CH_OK) {
            long long total = atoll(out.data ? out.data : "0");
            long long skip = total > p->cfg->show ? total - p->cfg->show : 0;
            strbuf_reset(&sql);
            strbuf_reset(&out);
            strbuf_puts(&sql, "SELECT * FROM ");
            ch_quote_table(&sql, p->cfg->database, table);
            strbuf_printf(&sql, " LIMIT %lld, %ld FORMAT PrettyCompactNoEscapes", skip,
                          p->cfg->show);
        }
        if (ch_exec(p->ch, sql.data, &out, NULL, err, sizeof err) == CH_OK) {
            /* rows hold event data: control bytes escaped, not sent to the terminal (every
             * Pretty format passes them through; PrettyCompact adds the server's own ANSI) */
            strbuf shown = {0};
            log_escape(&shown, out.data ? out.data : "", out.len, true);
            printf("%s (last %ld rows):\n%s", table, p->cfg->show, shown.data ? shown.data : "");
            fflush(stdout);
            strbuf_free(&shown);
        } else {
            log_error("--show: %s", err);
        }
        strbuf_free(&sql);
        strbuf_free(&out);
    }
}

void pipeline_format_summary(const pipeline_counters *c, double seconds, char *out, size_t outlen)
{
    snprintf(out, outlen,
             "consumed=%llu tombstones=%llu filtered=%llu dead_lettered=%llu "
             "events_inserted=%llu rows_inserted=%llu retries=%llu seconds=%.2f",
             (unsigned long long)c->consumed, (unsigned long long)c->tombstones,
             (unsigned long long)c->filtered, (unsigned long long)c->dead_lettered,
             (unsigned long long)c->events_inserted, (unsigned long long)c->rows_inserted,
             (unsigned long long)c->retries, seconds);
}

/* SIGHUP: at a batch boundary, load pipeline.lua again, check it (it loads, defines transform,
 * its ddl() runs) and swap it in; if anything fails the running version stays. Settings from the
 * new script's `config` need a restart. */
static void reload(pipeline *p)
{
    char err[1024];
    if (flush(p) != 0) return; /* rows of the old version first */
    const char *path = script_path(p->script);
    script *fresh = script_open(path, (size_t)p->cfg->lua_memory_mb << 20, err, sizeof err);
    if (!fresh) {
        log_error("reload: %s; still running the previous version", err);
        return;
    }
    script_apply_config(fresh, p->cfg);
    if (p->ch && run_ddl(p, fresh) != 0) {
        log_error("reload: ddl() of the new %s failed; still running the previous version", path);
        script_close(fresh);
        return;
    }
    script_close(p->script);
    p->script = fresh;
    log_info("reloaded %s", script_path(fresh));
}

int pipeline_run(const config *cfg, script **s, pipeline_counters *counters)
{
    char err[1024];
    pipeline p;
    memset(&p, 0, sizeof p);
    memset(counters, 0, sizeof *counters);
    p.cfg = cfg;
    p.script = *s;
    p.n = counters;
    p.last_flush_ms = clock_ms();
    p.stop_deadline_ms = -1;
    int64_t started = clock_ms(), last_stats = started;
    int rc = 0;

    start_position from;
    if (start_position_parse(cfg->from, &from, err, sizeof err) != 0) {
        log_error("%s", err);
        return 2;
    }
    if (!cfg->dry_run) {
        p.ch = ch_open(cfg->clickhouse_url, cfg->clickhouse_user, cfg->clickhouse_password,
                       cfg->database, err, sizeof err);
        if (!p.ch) {
            log_error("%s", err);
            return 2;
        }
        if (ch_set_tls(p.ch, cfg->clickhouse_ca, cfg->clickhouse_insecure, err, sizeof err) != 0) {
            log_error("%s", err);
            rc = 2;
            goto done;
        }
        ch_set_timeout(p.ch, cfg->clickhouse_timeout * 1000);
        ch_set_interrupt(p.ch, request_deadline_passed, &p);
        if (cfg->clickhouse_insecure)
            log_warn("--clickhouse-insecure: the ClickHouse server's certificate is not verified");
        if (ch_credentials_in_clear(p.ch))
            log_warn("the ClickHouse password goes unencrypted over http:// to %s, which is not "
                     "this machine: anyone on the network path can read it; use an https:// URL "
                     "(--clickhouse)",
                     ch_url_printable(p.ch));
        if (run_ddl(&p, p.script) != 0) {
            rc = 1;
            goto done;
        }
    }
    p.fetcher = record_fetcher_new(cfg);
    p.dead_letters = dl_open(cfg, err, sizeof err);
    if (!p.dead_letters) {
        log_error("%s", err);
        rc = 2;
        goto done;
    }
    p.kafka = kafka_open(cfg, &from, cfg->once, &p.parts, flush_before_revoke, &p, err, sizeof err);
    if (!p.kafka) {
        log_error("%s", err);
        rc = 2;
        goto done;
    }
    log_info("consuming %s from %s as group %s%s", cfg->topics, cfg->brokers, cfg->group,
             cfg->dry_run ? " (dry run: nothing is inserted or committed)" : "");

    while (!pipeline_stop_requested && !p.failed) {
        rd_kafka_message_t *m =
            p.stash_head < p.nstash ? p.stash[p.stash_head++] : poll_kafka(&p, POLL_MS);
        if (p.failed) { /* a fatal consumer error (or a failed flush in a revoke) */
            if (m) rd_kafka_message_destroy(m);
            break;
        }
        if (p.handed_back) { /* the revoke came while a flush in it waited for ClickHouse */
            if (m) stash(&p, m);
            hand_back(&p);
            continue;
        }
        if (m) handle_message(&p, m);
        if (flush_due(&p)) flush(&p);
        if (pipeline_reload_requested) {
            pipeline_reload_requested = 0;
            reload(&p);
        }
        if (cfg->once && partitions_caught_up(&p.parts)) break;
        if (cfg->stats_interval > 0 && clock_ms() - last_stats >= cfg->stats_interval * 1000) {
            char line[512];
            last_stats = clock_ms();
            pipeline_format_summary(counters, (double)(last_stats - started) / 1000.0, line,
                                    sizeof line);
            log_info("progress: %s", line);
        }
    }
    flush(&p);
    kafka_close(p.kafka);                /* the revoke on leaving flushes and commits once more */
    if (p.handed_back) drop_pending(&p); /* that flush could not finish: nothing committed */
    if (p.failed) {
        rc = 1;
    } else if (p.commit_failed) {
        log_error("the last offsets could not be committed; everything was inserted, but the "
                  "events since the previous commit will be consumed (and inserted) again");
        rc = 1;
    }

    fflush(stdout); /* dry-run rows before the summary */
    double seconds = (double)(clock_ms() - started) / 1000.0;
    char summary[512];
    pipeline_format_summary(counters, seconds, summary, sizeof summary);
    if (cfg->once)
        fprintf(stderr, "cdcpipe: %s\n", summary);
    else
        log_info("stopped: %s", summary);
    if (rc == 0 && p.ch && cfg->show > 0) show_tables(&p);

done:
    *s = p.script; /* a reload may have replaced it */
    free(p.held);
    for (size_t i = p.stash_head; i < p.nstash; i++)
        rd_kafka_message_destroy(p.stash[i]);
    free(p.stash);
    dl_close(p.dead_letters);
    record_fetcher_free(p.fetcher);
    ch_close(p.ch);
    batch_set_free(&p.batches);
    partitions_free(&p.parts);
    strbuf_free(&p.dry_rows);
    return rc;
}
