/*
 * inserter — the insert stage (see include/cdcpipe/inserter.h).
 */
#include "cdcpipe/inserter.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cdcpipe/clock.h"
#include "cdcpipe/crash_point.h"
#include "cdcpipe/log.h"
#include "cdcpipe/query_log.h"
#include "cdcpipe/row_set.h"
#include "cdcpipe/signals.h"
#include "cdcpipe/xalloc.h"

#define RETRY_FIRST_MS 200
#define RETRY_MAX_MS   10000

insert_result inserter_give_up_at_shutdown(long timeout_s, const char *err)
{
    if (!signals_grace_expired(timeout_s)) return INSERT_OK;
    log_error("%s; giving up at shutdown, offsets not committed (the events will be consumed "
              "again)",
              err);
    return INSERT_FAILED;
}

insert_result inserter_wait_paused(int ms, bool (*revoked)(void *ud), void *ud, metrics *counters,
                                   unsigned thread)
{
    enum { SLICE_MS = 100 };
    int64_t until = clock_ms() + ms;
    sig_atomic_t stopped = signals_stop_requested;
    for (int64_t now = clock_ms(); now < until && signals_stop_requested == stopped;
         now = clock_ms()) {
        if (revoked(ud)) return INSERT_HANDED_BACK;
        metrics_heartbeat(counters, thread);
        inserter_sleep(until - now < SLICE_MS ? (int)(until - now) : SLICE_MS);
    }
    return INSERT_OK;
}

void inserter_sleep(int ms)
{
    sig_atomic_t stopped = signals_stop_requested;
    while (ms > 0 && signals_stop_requested == stopped) {
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
    q->columns = xrealloc(NULL, room, sizeof *q->columns);
    q->spans = xrealloc(NULL, s->count, sizeof *q->spans);
    q->ncolumns = 0;
    for (size_t i = 0; i < s->count; i++) {
        size_t from = batch_row_start(b, s->ranges[i].from),
               to = batch_row_start(b, s->ranges[i].to);
        q->spans[i] = (ch_span){b->rows.data + from, to - from};
        /* RowBinary: every row has the batch's columns, in its order (the body's order) */
        if (b->rowbinary) {
            if (i == 0)
                q->ncolumns = batch_columns_of(b, s->ranges[i].from, s->ranges[i].to, q->columns);
            continue;
        }
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
    insert_request *insert; /* NULL: a statement, sql */
    size_t nspans;
    const char *sql;    /* NULL: the probe (SELECT 1) */
    strbuf *out;        /* a statement's answer (may be NULL) */
    bool returns;       /* a permanent failure is returned (INSERT_OK), not a stop */
    size_t rows;        /* an INSERT's rows (metrics) */
    char query_id[160]; /* an insert's query_id (ledger), "" none */
} request;

static ch_status send_request(inserter *in, request *r, ch_failure *fail, char *err, size_t errlen)
{
    if (!r->insert) {
        if (r->out) strbuf_reset(r->out);
        ch_status st = ch_exec(in->ch, r->sql ? r->sql : "SELECT 1", r->out, fail, err, errlen);
        metrics_clickhouse_answered(in->counters, st);
        return st;
    }
    insert_request *q = r->insert;
    int64_t started = clock_ms();
    ch_set_query_id(in->ch, r->query_id);
    ch_status st = ch_insert(in->ch, q->b->table, q->columns, q->ncolumns,
                             q->b->rowbinary ? CH_ROW_BINARY : CH_JSON_EACH_ROW, q->spans,
                             r->nspans, fail, err, errlen);
    size_t bytes = 0;
    for (size_t i = 0; i < r->nspans; i++)
        bytes += q->spans[i].len;
    ch_set_query_id(in->ch, NULL);
    metrics_insert_attempt(in->counters, q->b->table, r->rows, bytes, st, clock_ms() - started);
    return st;
}

/* An insert with a query_id failed transiently: did it land anyway (the answer was lost)? Asks
 * system.query_log, waiting while the insert still runs or ClickHouse is unreachable. INSERT_OK
 * with *landed; otherwise why to stop. Without a query log it cannot know: *landed = false
 * (sent again: at-least-once), with a warning once per process. */
static insert_result landed_after_all(inserter *in, const char *id, bool *landed)
{
    static _Atomic int warned;
    char err[1024];
    int backoff = RETRY_FIRST_MS;
    *landed = false;
    for (;;) {
        ql_result r;
        ql_status st =
            query_log_lookup(in->ch, id, (int64_t)time(NULL) - 3600, &r, err, sizeof err);
        if (st == QL_OK) {
            *landed = query_log_finished(&r, id);
            query_log_result_free(&r);
            if (*landed)
                log_info("insert %s had landed before its answer was lost: not sent again", id);
            return INSERT_OK;
        }
        if (st == QL_UNAVAILABLE) {
            if (!warned++)
                log_warn("cannot read system.query_log (%s): an insert whose answer is lost is "
                         "sent again, which may duplicate its rows (at-least-once); enable the "
                         "query log and SYSTEM FLUSH LOGS for cdcpipe's user for exactly-once",
                         err);
            return INSERT_OK;
        }
        insert_result stop = in->hooks.give_up(in->hooks.ud, err);
        if (stop != INSERT_OK) return stop;
        stop = in->hooks.wait(in->hooks.ud, backoff);
        if (stop != INSERT_OK) return stop;
        backoff = next_backoff(backoff);
    }
}

/* Sends r until it is not a transient failure: retried with backoff until it succeeds or the
 * hooks give up (shutdown, revoke, partitions taken away). Returns INSERT_OK with *st CH_OK or
 * CH_REJECTED (fail and err describe the rejection); INSERT_FAILED after a permanent failure
 * (logged) or when the hooks say so; INSERT_HANDED_BACK. */
static insert_result send_retrying_coded(inserter *in, request *r, ch_status *st, ch_failure *fail,
                                         char *err, size_t errlen);

static insert_result send_retrying(inserter *in, request *r, ch_status *st, ch_failure *fail,
                                   char *err, size_t errlen)
{
    insert_result result = send_retrying_coded(in, r, st, fail, err, errlen);
    log_context_code(0);
    return result;
}

/* send_retrying's loop; ClickHouse's error code is the log context's while it logs (log.h). */
static insert_result send_retrying_coded(inserter *in, request *r, ch_status *st, ch_failure *fail,
                                         char *err, size_t errlen)
{
    int backoff = RETRY_FIRST_MS;
    while ((*st = send_request(in, r, fail, err, errlen)) == CH_TRANSIENT) {
        log_context_code(fail->code);
        insert_result stop = in->hooks.give_up(in->hooks.ud, err);
        if (stop != INSERT_OK) return stop;
        metrics_retry(in->counters, METRICS_RETRY_TRANSIENT);
        log_warn("%s; retrying in %d ms", err, backoff);
        stop = in->hooks.wait(in->hooks.ud, backoff);
        if (stop != INSERT_OK) return stop;
        backoff = next_backoff(backoff);
        if (r->insert && r->query_id[0]) {
            bool landed;
            stop = landed_after_all(in, r->query_id, &landed);
            if (stop != INSERT_OK) return stop;
            if (landed) {
                *st = CH_OK;
                return INSERT_OK;
            }
        }
    }
    if (*st != CH_OK) log_context_code(fail->code);
    if (*st == CH_PERMANENT && !r->returns) {
        log_error("%s", err);
        log_error("stopping without committing: fix the ClickHouse deployment or pipeline.lua and "
                  "restart; the events will be consumed again");
        return INSERT_FAILED;
    }
    return INSERT_OK;
}

/* Inserts the rows of s (see send_retrying); *rejected tells whether ClickHouse refused them. */
static insert_result send_rows(inserter *in, batch *b, const row_set *s, bool *rejected,
                               ch_failure *fail, char *err, size_t errlen)
{
    insert_request q;
    insert_request_prepare(&q, b, s);
    request r = {&q, s->count, NULL, NULL, false, s->rows, ""};
    if (in->query_id) {
        unsigned k = in->next_slice++;
        if (k == 0)
            snprintf(r.query_id, sizeof r.query_id, "%s", in->query_id);
        else
            snprintf(r.query_id, sizeof r.query_id, "%s.%u", in->query_id, k);
    }
    ch_status st;
    insert_result res = send_retrying(in, &r, &st, fail, err, errlen);
    insert_request_free(&q);
    *rejected = res == INSERT_OK && st == CH_REJECTED;
    if (res == INSERT_OK && st == CH_OK) metrics_rows_inserted(in->counters, b->table, s->rows);
    if (res == INSERT_OK && st == CH_OK && in->hooks.acked) in->hooks.acked(in->hooks.ud, b, s);
    return res;
}

/* A row ClickHouse rejects alone. Without a ClickHouse error (a code-less 400/413/414) the
 * server or a proxy may refuse every request: a probe tells the row's fault from the
 * deployment's. */
static insert_result reject_row(inserter *in, batch *b, size_t row, const ch_failure *fail,
                                const char *reason)
{
    if (!fail->code) {
        char err[1024];
        ch_failure probe_fail;
        ch_status st;
        request probe = {NULL, 0, NULL, NULL, false, 0, ""};
        insert_result r = send_retrying(in, &probe, &st, &probe_fail, err, sizeof err);
        if (r != INSERT_OK) return r;
        if (st != CH_OK) {
            log_error("%s", reason);
            log_error("even a plain SELECT 1 is refused (%s): the ClickHouse URL or a proxy before "
                      "it is wrong, not the rows; stopping without committing",
                      err);
            return INSERT_FAILED;
        }
    }
    return in->hooks.reject(in->hooks.ud, b->row_event[row], reason, fail->code) == 0
               ? INSERT_OK
               : INSERT_FAILED;
}

/* Inserts the rows of s, narrowing a rejection down to the bad rows, which are dead-lettered:
 * the row ClickHouse names ("at row N"; only while `numbered`) is tried alone — rejected, it is
 * dead-lettered; accepted, ClickHouse's numbers are not used for s again — and the rest is
 * inserted without it; with no usable row number s is split in halves. Every request counts
 * against *budget (INSERTER_NARROW_BUDGET); once it is spent, a piece that is rejected is
 * dead-lettered whole. Frees s. */
static insert_result insert_set(inserter *in, batch *b, row_set *s, bool numbered, int *budget)
{
    char err[1024];
    ch_failure fail;
    insert_result r = INSERT_OK;
    for (;;) {
        bool rejected;
        (*budget)--;
        if (*budget < INSERTER_NARROW_BUDGET) metrics_retry(in->counters, METRICS_RETRY_DATA);
        r = send_rows(in, b, s, &rejected, &fail, err, sizeof err);
        if (r != INSERT_OK || !rejected) break;
        if (s->rows == 1) {
            r = reject_row(in, b, s->ranges[0].from, &fail, err);
            break;
        }
        if (*budget <= 0) {
            char reason[1400];
            snprintf(reason, sizeof reason,
                     "rejected together with the other %zu rows of its group; cdcpipe stopped "
                     "narrowing this batch down after %d inserts: %s",
                     s->rows - 1, INSERTER_NARROW_BUDGET, err);
            log_warn("%zu rows of a batch for %s dead-lettered as a group: %s", s->rows, b->table,
                     reason);
            for (size_t i = 0; i < s->count && r == INSERT_OK; i++)
                for (size_t row = s->ranges[i].from; row < s->ranges[i].to && r == INSERT_OK; row++)
                    if (in->hooks.reject(in->hooks.ud, b->row_event[row], reason, fail.code) != 0)
                        r = INSERT_FAILED;
            break;
        }
        if (numbered && fail.row >= 1 && (size_t)fail.row <= s->rows) {
            size_t row = row_set_at(s, (size_t)fail.row - 1);
            row_set one = {0};
            row_set_add(&one, row, row + 1);
            char one_err[1024];
            ch_failure one_fail;
            (*budget)--;
            metrics_retry(in->counters, METRICS_RETRY_DATA);
            r = send_rows(in, b, &one, &rejected, &one_fail, one_err, sizeof one_err);
            row_set_free(&one);
            if (r != INSERT_OK) break;
            if (rejected) {
                log_debug("%s; row %ld of %zu is the bad one", err, fail.row, s->rows);
                r = reject_row(in, b, row, &one_fail, one_err);
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
        r = insert_set(in, b, &first, numbered, budget);
        if (r == INSERT_OK)
            r = insert_set(in, b, &second, numbered, budget);
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
insert_result inserter_insert(inserter *in, batch *b, size_t first, size_t end)
{
    row_set all = {0};
    row_set_add(&all, first, end);
    int budget = INSERTER_NARROW_BUDGET + 1; /* the first insert is not narrowing anything down */
    in->next_slice = 0;
    log_context outer = log_get_context(); /* --log-format json: lines name the table */
    log_context_table(b->table);
    insert_result r = insert_set(in, b, &all, true, &budget);
    log_set_context(outer);
    return r;
}

insert_result inserter_exec(inserter *in, const char *sql, strbuf *out, ch_status *st,
                            ch_failure *fail, char *err, size_t errlen)
{
    request r = {NULL, 0, sql, out, true, 0, ""};
    return send_retrying(in, &r, st, fail, err, errlen);
}

insert_result inserter_pause(inserter *in, int ms, const char *why)
{
    insert_result stop = in->hooks.give_up(in->hooks.ud, why);
    return stop != INSERT_OK ? stop : in->hooks.wait(in->hooks.ud, ms);
}

int inserter_run_ddl(inserter *in, script *s, int retry_ms)
{
    char **stmts, err[1024];
    if (script_ddl(s, &stmts, err, sizeof err) != 0) {
        log_error("%s", err);
        script_free_ddl(stmts);
        return -1;
    }
    int rc = 0;
    for (char **sql = stmts; *sql && rc == 0; sql++) {
        int64_t deadline_ms = clock_ms() + retry_ms;
        int backoff = RETRY_FIRST_MS;
        ch_status st;
        while ((st = ch_exec(in->ch, *sql, NULL, NULL, err, sizeof err)) == CH_TRANSIENT &&
               clock_ms() < deadline_ms && !signals_stop_requested) {
            log_warn("%s; retrying in %d ms", err, backoff);
            metrics_retry(in->counters, METRICS_RETRY_DEPLOYMENT);
            inserter_sleep(backoff);
            backoff = next_backoff(backoff);
        }
        if (st != CH_OK) {
            log_error("ddl() in %s: %s", script_path(s), err);
            rc = -1;
        }
        crash_point("in_ddl");
    }
    script_free_ddl(stmts);
    return rc;
}
