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

#include "cdcpipe/batch.h"
#include "cdcpipe/clickhouse.h"
#include "cdcpipe/clock.h"
#include "cdcpipe/commands.h"
#include "cdcpipe/dead_letter.h"
#include "cdcpipe/inserter.h"
#include "cdcpipe/kafka.h"
#include "cdcpipe/log.h"
#include "cdcpipe/partitions.h"
#include "cdcpipe/record_fetch.h"
#include "cdcpipe/row_set.h"
#include "cdcpipe/row_json.h"
#include "cdcpipe/signals.h"
#include "cdcpipe/start_position.h"
#include "cdcpipe/target_tables.h"
#include "cdcpipe/xalloc.h"

#define DDL_RETRY_MS 30000
/* A DESCRIBE TABLE (RowBinary layouts) waits at most this long: a table whose columns cannot be
 * read goes as JSONEachRow instead, so events never wait longer for it. */
#define DESCRIBE_TIMEOUT_MS 10000
#define POLL_MS             100

/* An event whose rows wait in the batches: where it came from, so that an event whose row
 * ClickHouse rejects can be read again and dead-lettered with its original key, value and
 * headers (the record itself is not kept: see record_fetch.h). */
typedef struct {
    uint32_t partition_index; /* into parts.items */
    int64_t offset;
    bool dead_lettered;
    int64_t origin_ms; /* source.ts_ms (script_source_ts_ms), -1: none (metrics: latency) */
    int64_t kafka_ms;  /* the record's Kafka timestamp, -1: none */
} held_event;

typedef struct {
    const config *cfg;
    script *script;    /* the running pipeline.lua; replaced by a reload */
    ch_client *ch;     /* NULL in a dry run */
    inserter inserter; /* over ch, with the hooks below */
    kafka_consumer *kafka;
    dl_sink *dead_letters;
    record_fetcher *fetcher;
    partition_table parts;
    batch_set batches;
    target_tables *targets; /* --format auto/rowbinary: per table RowBinary or JSONEachRow */
    metrics *n;
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

/* After a stop request, transient failures are retried for --shutdown-timeout seconds more. */
static bool shutdown_expired(pipeline *p)
{
    if (!signals_stop_requested) return false;
    if (p->stop_deadline_ms < 0) p->stop_deadline_ms = clock_ms() + p->cfg->shutdown_timeout * 1000;
    return clock_ms() >= p->stop_deadline_ms;
}

/* libcurl asks during every ClickHouse request: a request still running when the stop or revoke
 * deadline passes is abandoned (it then fails as transient, and the caller gives up). */
static bool request_deadline_passed(void *ud)
{
    pipeline *p = ud;
    metrics_heartbeat(p->n); /* a request in progress is the loop turning (/healthz) */
    return shutdown_expired(p) || (p->in_revoke && clock_ms() >= p->revoke_deadline_ms);
}

/* Dead-letters an event; a sink failure fails the flush (nothing may be committed). */
static void dead_letter_event(pipeline *p, const rd_kafka_message_t *m, dl_stage stage,
                              const char *reason, int clickhouse_code)
{
    char err[512];
    dead_letter d = {
        .msg = m, .stage = stage, .reason = reason, .clickhouse_code = clickhouse_code};
    metrics_dead_lettered(p->n, dl_stage_name(stage));
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
        p->stash = xrealloc(p->stash, p->stash_cap, sizeof *p->stash);
    }
    p->stash[p->nstash++] = m;
}

/* Polls the consumer for up to timeout_ms. A fatal consumer error is logged and fails the
 * pipeline (p->failed: nothing more is committed); then, as on a timeout, NULL. */
static rd_kafka_message_t *poll_kafka(pipeline *p, int timeout_ms)
{
    char err[1024];
    bool fatal;
    metrics_heartbeat(p->n);
    rd_kafka_message_t *m = kafka_poll(p->kafka, timeout_ms, &fatal, err, sizeof err);
    if (fatal) {
        log_error("%s", err);
        p->failed = true;
    }
    return m;
}

/* inserter hook: waits ms before an insert is tried again. Outside a rebalance callback the
 * consumer keeps polling with its partitions paused, so the group can rebalance meanwhile.
 * INSERT_HANDED_BACK when partitions were taken away, INSERT_FAILED when Kafka failed. */
static insert_result wait_before_retry(void *ud, int ms)
{
    pipeline *p = ud;
    if (p->in_revoke || !p->kafka) {
        inserter_sleep(ms);
        return INSERT_OK;
    }
    kafka_pause(p->kafka);
    int64_t until = clock_ms() + ms;
    sig_atomic_t stopped = signals_stop_requested;
    for (int64_t now = clock_ms(); now < until && signals_stop_requested == stopped;
         now = clock_ms()) {
        rd_kafka_message_t *m = poll_kafka(p, until - now < POLL_MS ? (int)(until - now) : POLL_MS);
        if (m) stash(p, m);
        if (p->failed) return INSERT_FAILED;
        if (p->handed_back) return INSERT_HANDED_BACK;
    }
    return INSERT_OK;
}

/* inserter hook: whether to stop retrying. After SIGINT/SIGTERM, for --shutdown-timeout seconds
 * more; inside a revoke, until the revoke's deadline (then the partitions go uncommitted). */
static insert_result give_up_retrying(void *ud, const char *err)
{
    pipeline *p = ud;
    if (shutdown_expired(p)) {
        log_error("%s; giving up at shutdown, offsets not committed (the events will be consumed "
                  "again)",
                  err);
        return INSERT_FAILED;
    }
    if (p->in_revoke && clock_ms() >= p->revoke_deadline_ms) {
        log_warn("%s; still failing %ld s after partitions were revoked: handing them over "
                 "uncommitted (their events will be consumed again)",
                 err, p->cfg->shutdown_timeout);
        return INSERT_HANDED_BACK;
    }
    return INSERT_OK;
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
    metrics_dead_lettered(p->n, dl_stage_name(DL_CLICKHOUSE));
    if (dl_send(p->dead_letters, &d, err, sizeof err) != 0) {
        log_error("%s; stopping without committing", err);
        p->failed = true;
    }
}

/* inserter hook: a rejected row's event goes to the dead letters (once per event). */
static int reject_event(void *ud, uint32_t event, const char *reason, int clickhouse_code)
{
    pipeline *p = ud;
    dead_letter_held(p, &p->held[event], reason, clickhouse_code);
    return p->failed ? -1 : 0;
}

/* inserter hook: rows of b were acknowledged: each row's end-to-end latency, from its event's
 * source commit (or Kafka timestamp) to now. */
static void rows_acked(void *ud, const batch *b, const row_set *s)
{
    pipeline *p = ud;
    metrics_latency lat = metrics_latency_for(p->n, b->table);
    int64_t now = metrics_unix_ms();
    for (size_t i = 0; i < s->count; i++)
        for (size_t row = s->ranges[i].from; row < s->ranges[i].to; row++) {
            const held_event *h = &p->held[b->row_event[row]];
            metrics_latency_observe(&lat, now, h->origin_ms, h->kafka_ms);
        }
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
    metrics_handed_back(p->n, events); /* not handled here after all */
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
            r = inserter_insert(&p->inserter, b, first, end < b->nrows ? end : b->nrows);
            record_fetch_release(p->fetcher);
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
    const batch_layout *layout = NULL;
    if (p->targets && target_tables_known(p->targets, table)) {
        layout = target_tables_layout(p->targets, table);
    } else if (p->targets) { /* asking ClickHouse is not the event's time (--lua-timeout) */
        script_pause_timeout(p->script);
        layout = target_tables_layout(p->targets, table);
        script_resume_timeout(p->script);
    }
    if (layout)
        return batch_set_add_rowbinary(&p->batches, layout, L, idx, (uint32_t)p->nheld, err,
                                       errlen);
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
    metrics_consumed(p->n, topic);
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
    if (r == SCRIPT_LUA_ERROR) metrics_lua_limit(p->n, (metrics_limit)script_last_limit(p->script));
    switch (r) {
    case SCRIPT_ROWS:
        if (p->ch) {
            if (p->nheld == p->held_cap) {
                p->held_cap = p->held_cap ? p->held_cap * 2 : 1024;
                p->held = xrealloc(p->held, p->held_cap, sizeof *p->held);
            }
            p->held[p->nheld++] = (held_event){(uint32_t)(ps - p->parts.items), ev.offset, false,
                                               script_source_ts_ms(p->script), ts};
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

/* SIGHUP: at a batch boundary, load pipeline.lua again, check it (it loads, defines transform,
 * its ddl() runs) and swap it in; if anything fails the running version stays. Settings from the
 * new script's `config` need a restart. */
static void reload(pipeline *p)
{
    char err[1024];
    if (flush(p) != 0) { /* rows of the old version first */
        metrics_reload(p->n, NULL);
        return;
    }
    if (p->targets) { /* the new ddl() may change tables: their columns are read again */
        batch_set_free(&p->batches);
        target_tables_reset(p->targets);
    }
    const char *path = script_path(p->script);
    script *fresh = script_open(path, (size_t)p->cfg->lua_memory_mb << 20, err, sizeof err);
    if (!fresh) {
        log_error("reload: %s; still running the previous version", err);
        metrics_reload(p->n, NULL);
        return;
    }
    script_apply_config(fresh, p->cfg);
    if (p->ch && inserter_run_ddl(&p->inserter, fresh, DDL_RETRY_MS) != 0) {
        log_error("reload: ddl() of the new %s failed; still running the previous version", path);
        script_close(fresh);
        metrics_reload(p->n, NULL);
        return;
    }
    script_close(p->script);
    p->script = fresh;
    log_info("reloaded %s", script_path(fresh));
    metrics_reload(p->n, script_path(fresh));
}

int pipeline_run(const config *cfg, script **s, metrics *counters)
{
    char err[1024];
    pipeline p;
    memset(&p, 0, sizeof p);
    metrics_reset(counters);
    metrics_set_workers(counters, 1);
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
        p.inserter = (inserter){
            p.ch, {wait_before_retry, give_up_retrying, reject_event, &p, rows_acked}, counters};
        if (inserter_run_ddl(&p.inserter, p.script, DDL_RETRY_MS) != 0) {
            rc = 1;
            goto done;
        }
        if (strcmp(cfg->format, "json") != 0)
            p.targets = target_tables_new(
                p.ch, cfg->database, strcmp(cfg->format, "rowbinary") == 0, DESCRIBE_TIMEOUT_MS);
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
    kafka_set_metrics(p.kafka, counters);
    metrics_set_phase(counters, METRICS_RUNNING);
    log_info("consuming %s from %s as group %s%s", cfg->topics, cfg->brokers, cfg->group,
             cfg->dry_run ? " (dry run: nothing is inserted or committed)" : "");

    while (!signals_stop_requested && !p.failed) {
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
        if (signals_reload_requested) {
            signals_reload_requested = 0;
            reload(&p);
        }
        if (cfg->once && partitions_caught_up(&p.parts)) break;
        metrics_log_progress(counters, cfg->stats_interval, started, &last_stats);
        metrics_tick(counters, 0, &p.batches);
    }
    metrics_set_phase(counters, p.failed ? METRICS_FAILED : METRICS_STOPPING);
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
    metrics_format_summary(counters, seconds, summary, sizeof summary);
    if (cfg->once)
        fprintf(stderr, "cdcpipe: %s\n", summary);
    else
        log_info("stopped: %s", summary);
    if (rc == 0 && p.ch && cfg->show > 0) {
        const char **tables = xcalloc(p.batches.count, sizeof *tables);
        size_t ntables = 0;
        for (size_t i = 0; i < p.batches.count; i++) { /* a table may have several batches */
            size_t k = 0;
            while (k < ntables && strcmp(tables[k], p.batches.items[i].table) != 0)
                k++;
            if (k == ntables) tables[ntables++] = p.batches.items[i].table;
        }
        command_show(p.ch, cfg->database, cfg->show, tables, ntables);
        free(tables);
    }

done:
    if (rc != 0) metrics_set_phase(counters, METRICS_FAILED);
    *s = p.script; /* a reload may have replaced it */
    free(p.held);
    for (size_t i = p.stash_head; i < p.nstash; i++)
        rd_kafka_message_destroy(p.stash[i]);
    free(p.stash);
    dl_close(p.dead_letters);
    record_fetcher_free(p.fetcher);
    ch_close(p.ch);
    batch_set_free(&p.batches);
    target_tables_free(p.targets); /* after the batches, which use its layouts */
    partitions_free(&p.parts);
    strbuf_free(&p.dry_rows);
    return rc;
}
