/*
 * pipeline — consume → decode → transform → batch → insert → commit
 * (see include/cdcpipe/pipeline.h).
 *
 * Delivery rule, in one place (flush): offsets are committed only after every batch has been
 * acknowledged by ClickHouse. Since a flush inserts all batches, everything consumed before it
 * is safe once it succeeds, whatever partition or table it came from.
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
#include "cdcpipe/kafka.h"
#include "cdcpipe/log.h"
#include "cdcpipe/partitions.h"
#include "cdcpipe/row_json.h"
#include "cdcpipe/start_position.h"

#define RETRY_FIRST_MS 200
#define RETRY_MAX_MS   10000
#define DDL_RETRY_MS   30000
#define POLL_MS        100

volatile sig_atomic_t pipeline_stop_requested = 0;

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
    signal(SIGPIPE, SIG_IGN);
}

typedef struct {
    const config *cfg;
    script *script;
    ch_client *ch; /* NULL in a dry run */
    kafka_consumer *kafka;
    partition_table parts;
    batch_set batches;
    pipeline_counters *n;
    uint64_t pending_events; /* events with rows in the batches */
    uint64_t pending_rows;
    bool offsets_moved; /* events handled since the last commit */
    int64_t last_flush_ms;
    bool failed;        /* a flush failed: nothing more may be committed */
    bool commit_failed; /* the last commit failed (the next flush commits again) */
    strbuf dry_rows;    /* dry run: the current event's rows, printed when it succeeds */
} pipeline;

/* Sleeps up to ms, waking early when a stop is requested. */
static void pause_ms(int ms)
{
    while (ms > 0 && !pipeline_stop_requested) {
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

/* Inserts rows[0..len) into table, retrying transient failures until they succeed or a stop is
 * requested. Returns 0, or -1 after logging the reason. */
static int insert_with_retry(pipeline *p, batch *b, const char *rows, size_t len)
{
    char err[1024];
    int backoff = RETRY_FIRST_MS;
    for (;;) {
        ch_failure fail;
        ch_status st =
            ch_insert(p->ch, b->table, b->columns, b->ncolumns, rows, len, &fail, err, sizeof err);
        if (st == CH_OK) return 0;
        if (st == CH_PERMANENT) {
            log_error("%s", err);
            log_error("stopping without committing: fix the target table or pipeline.lua and "
                      "restart; the events will be consumed again");
            return -1;
        }
        if (pipeline_stop_requested) {
            log_error("%s; giving up at shutdown, offsets not committed (the events will be "
                      "consumed again)",
                      err);
            return -1;
        }
        p->n->retries++;
        log_warn("%s; retrying in %d ms", err, backoff);
        pause_ms(backoff);
        backoff = next_backoff(backoff);
    }
}

/* Inserts one batch in pieces of at most batch_rows rows. */
static int insert_batch(pipeline *p, batch *b)
{
    const char *start = b->rows.data, *end = b->rows.data + b->rows.len;
    while (start < end) {
        const char *cut = start;
        for (long rows = 0; cut < end && rows < p->cfg->batch_rows; rows++)
            cut = (const char *)memchr(cut, '\n', (size_t)(end - cut)) + 1;
        if (insert_with_retry(p, b, start, (size_t)(cut - start)) != 0) return -1;
        start = cut;
    }
    log_debug("inserted %zu rows into %s", b->nrows, b->table);
    return 0;
}

/* Inserts every batch, then commits. The one place offsets become committable. */
static int flush(pipeline *p)
{
    if (p->failed) return -1;
    if (p->ch) {
        for (size_t i = 0; i < p->batches.count; i++) {
            batch *b = &p->batches.items[i];
            if (b->nrows == 0) continue;
            if (insert_batch(p, b) != 0) {
                p->failed = true;
                return -1;
            }
        }
        for (size_t i = 0; i < p->batches.count; i++)
            batch_clear(&p->batches.items[i]);
        p->n->events_inserted += p->pending_events;
        p->n->rows_inserted += p->pending_rows;
        p->pending_events = p->pending_rows = 0;
    }
    p->commit_failed = kafka_commit(p->kafka) != 0;
    p->offsets_moved = false;
    p->last_flush_ms = clock_ms();
    return 0;
}

static void flush_before_revoke(void *ud)
{
    flush(ud);
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

/* script row callbacks */
static int batch_row(void *ud, const char *table, lua_State *L, int idx, char *err, size_t errlen)
{
    pipeline *p = ud;
    return batch_set_add_row(&p->batches, table, L, idx, err, errlen);
}

static void handle_message(pipeline *p, const rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    rd_kafka_timestamp_type_t ts_type;
    int64_t ts = rd_kafka_message_timestamp(m, &ts_type);
    script_event ev = {topic, m->partition, m->offset, ts, m->key, m->key_len, m->payload, m->len};
    char err[2048];
    size_t rows;
    p->n->consumed++;
    batch_set_mark(&p->batches);
    strbuf_reset(&p->dry_rows);
    script_result r =
        script_process(p->script, &ev, p->cfg->table, p->ch ? batch_row : row_json_append_line,
                       p->ch ? (void *)p : (void *)&p->dry_rows, &rows, err, sizeof err);
    switch (r) {
    case SCRIPT_ROWS:
        if (p->ch) {
            p->pending_events++;
            p->pending_rows += rows;
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
        p->n->dead_lettered++;
        log_error("%s [%d] offset %lld: %s error: %s (event skipped)", topic, (int)m->partition,
                  (long long)m->offset, r == SCRIPT_DECODE_ERROR ? "decode" : "lua", err);
        break;
    }
    partition_state *ps = partitions_find(&p->parts, topic, m->partition, false);
    if (ps && ps->assigned) ps->next = m->offset + 1;
    p->offsets_moved = true;
}

/* Runs ddl() statements, retrying while ClickHouse is not reachable yet (up to 30 s). */
static int run_ddl(pipeline *p)
{
    char **stmts, err[1024];
    if (script_ddl(p->script, &stmts, err, sizeof err) != 0) {
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
            log_error("ddl() in %s: %s", script_path(p->script), err);
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
            printf("%s (last %ld rows):\n%s", table, p->cfg->show, out.data ? out.data : "");
            fflush(stdout);
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

int pipeline_run(const config *cfg, script *s, pipeline_counters *counters)
{
    char err[1024];
    pipeline p;
    memset(&p, 0, sizeof p);
    memset(counters, 0, sizeof *counters);
    p.cfg = cfg;
    p.script = s;
    p.n = counters;
    p.last_flush_ms = clock_ms();
    int64_t started = clock_ms();
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
        if (run_ddl(&p) != 0) {
            ch_close(p.ch);
            return 1;
        }
    }
    p.kafka = kafka_open(cfg, &from, cfg->once, &p.parts, flush_before_revoke, &p, err, sizeof err);
    if (!p.kafka) {
        log_error("%s", err);
        ch_close(p.ch);
        partitions_free(&p.parts);
        return 2;
    }
    log_info("consuming %s from %s as group %s%s", cfg->topics, cfg->brokers, cfg->group,
             cfg->dry_run ? " (dry run: nothing is inserted or committed)" : "");

    while (!pipeline_stop_requested && !p.failed) {
        bool fatal;
        rd_kafka_message_t *m = kafka_poll(p.kafka, POLL_MS, &fatal, err, sizeof err);
        if (fatal) {
            log_error("%s", err);
            p.failed = true; /* commit nothing more */
            rc = 1;
            break;
        }
        if (m) {
            handle_message(&p, m);
            rd_kafka_message_destroy(m);
        }
        if (flush_due(&p)) flush(&p);
        if (cfg->once && partitions_caught_up(&p.parts)) break;
    }
    if (rc == 0 && flush(&p) != 0) rc = 1;
    if (p.failed) rc = 1;
    kafka_close(p.kafka); /* the revoke on leaving flushes and commits once more */
    if (rc == 0 && p.commit_failed) {
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

    ch_close(p.ch);
    batch_set_free(&p.batches);
    partitions_free(&p.parts);
    strbuf_free(&p.dry_rows);
    return rc;
}
