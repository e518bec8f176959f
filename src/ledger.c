/*
 * ledger — the insert ledger (see include/cdcpipe/ledger.h).
 */
#include "cdcpipe/ledger.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cdcpipe/clock.h"
#include "cdcpipe/crash_point.h"
#include "cdcpipe/ledger_answer.h"
#include "cdcpipe/log.h"
#include "cdcpipe/query_log.h"
#include "cdcpipe/signals.h"
#include "cdcpipe/xalloc.h"

#define RETRY_FIRST_MS 200
#define RETRY_MAX_MS   5000
/* An insert still running at recovery: how long to wait for it to end before assuming it did
 * not land (its rows may then be doubled, said in a warning). */
#define RUNNING_WAIT_MS 60000

/* The columns cdcpipe writes (time takes its DEFAULT now()). */
#define LEDGER_COLUMNS                                                                             \
    "consumer_group, topic, partition, first_offset, last_offset, state, insert_id, instance, "    \
    "worker, inserted, filtered, dead_lettered, tombstones, skipped, tables, rows"

/* A range of a partition whose rows for some tables are in ClickHouse already. */
typedef struct {
    int64_t first, last;
    char **tables; /* the tables that landed for it */
    size_t ntables;
} landed_range;

/* Events of a partition handled since the last flush, one ledger row each: a new segment starts
 * where events go from inside a replayed range (rows of some tables skipped) to outside it or
 * back, so that a row's range never claims offsets whose rows for a table it did not insert. */
typedef struct {
    int64_t first, last;
    bool covered; /* inside a range whose rows (for some tables) are in ClickHouse already */
    /* events without rows in the batches */
    uint64_t filtered, tombstones, dead_lettered, skipped;
    /* this flush: events with rows, of those dead-lettered, rows per INSERT k */
    uint64_t with_rows, rows_dead_lettered;
    uint64_t *rows;
} segment;

typedef struct {
    const partition_state *ps;
    bool recover; /* recovery is due before the next record */
    segment *segs;
    size_t nsegs;
    /* recovery: ranges whose rows (for some tables) are in ClickHouse */
    landed_range *ranges;
    size_t nranges;
    int64_t ranges_end; /* the last offset any range covers */
} part_entry;

/* One partition's segments in a sealed flush. */
typedef struct {
    const partition_state *ps;
    segment *segs;
    size_t nsegs;
} flush_part;

struct ledger_flush {
    char insert_id[128];
    flush_part *parts;
    size_t nparts;
    /* its INSERTs: batch, query id */
    const batch **kbatch;
    char **kid;
    size_t nk;
};

struct ledger {
    const config *cfg;
    unsigned worker;
    strbuf name; /* `db`.`table` */
    uint64_t seq;
    part_entry *parts;
    size_t nparts, parts_cap;
    /* the event being handled */
    part_entry *cur;
    int64_t cur_offset;
    const landed_range **covering;
    size_t ncovering, covering_cap;
    size_t ev_skipped, ev_kept;
    int ev_kind;         /* ledger_count's kind for the current event, -1 none */
    atomic_bool created; /* this worker ran the CREATE TABLE IF NOT EXISTS (either thread) */
    bool warned_no_log;
};

/* ---- text ---- */

void ledger_sql_string(strbuf *sql, const char *s)
{
    strbuf_putc(sql, '\'');
    for (; *s; s++) {
        if (*s == '\'' || *s == '\\') strbuf_putc(sql, '\\');
        strbuf_putc(sql, *s);
    }
    strbuf_putc(sql, '\'');
}

static void json_string(strbuf *out, const char *s)
{
    strbuf_putc(out, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            strbuf_printf(out, "\\%c", c);
        else if (c < 0x20)
            strbuf_printf(out, "\\u%04x", c);
        else
            strbuf_putc(out, (char)c);
    }
    strbuf_putc(out, '"');
}

/* Runs a statement of the ledger through `in` (retried under its hooks); a refusal is logged and
 * fails the worker. */
static insert_result ledger_exec(ledger *l, inserter *in, const char *sql, strbuf *out)
{
    char err[1024];
    if (!atomic_load(&l->created)) { /* the consumer thread may have found ClickHouse down */
        strbuf create = {0};
        ledger_create_sql(l->cfg, &create);
        atomic_store(&l->created, true);
        insert_result r = ledger_exec(l, in, create.data, NULL);
        strbuf_free(&create);
        if (r != INSERT_OK) {
            atomic_store(&l->created, false);
            return r;
        }
    }
    ch_status st;
    ch_failure fail;
    insert_result r = inserter_exec(in, sql, out, &st, &fail, err, sizeof err);
    if (r == INSERT_OK && st != CH_OK) {
        log_error("insert ledger: %s; stopping without committing", err);
        return INSERT_FAILED;
    }
    return r;
}

/* ---- the table ---- */

bool ledger_enabled(const config *cfg)
{
    return !cfg->dry_run && cfg->ledger && cfg->ledger[0] && strcmp(cfg->ledger, "none") != 0;
}

void ledger_create_sql(const config *cfg, strbuf *sql)
{
    strbuf_puts(sql, "CREATE TABLE IF NOT EXISTS ");
    ch_quote_table(sql, cfg->database, cfg->ledger);
    strbuf_puts(sql, " (time DateTime DEFAULT now(), consumer_group String, topic String, "
                     "partition Int32, first_offset Int64, last_offset Int64, state String, "
                     "insert_id String, instance String, worker UInt16, inserted UInt64, "
                     "filtered UInt64, dead_lettered UInt64, tombstones UInt64, skipped UInt64, "
                     "tables Array(String), rows Array(UInt64)) ENGINE = MergeTree() "
                     "ORDER BY (consumer_group, topic, partition, first_offset)");
}

int ledger_create(ch_client *ch, const config *cfg, int retry_ms)
{
    (void)retry_ms;
    strbuf sql = {0};
    ledger_create_sql(cfg, &sql);
    char err[1024];
    ch_status st = ch_exec(ch, sql.data, NULL, NULL, err, sizeof err);
    strbuf_free(&sql);
    if (st == CH_TRANSIENT) { /* start in any order: each worker creates it before its first use */
        log_info("the insert ledger %s is created once ClickHouse answers (%s)", cfg->ledger, err);
        return 0;
    }
    if (st != CH_OK) {
        log_error("cannot create the insert ledger %s (--ledger; none: run without one, "
                  "at-least-once): %s",
                  cfg->ledger, err);
        return -1;
    }
    return 0;
}
static pthread_once_t instance_once = PTHREAD_ONCE_INIT;
static char instance[128];

static void make_instance(void)
{
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++) /* query ids and LIKE-free matching: [A-Za-z0-9.-] */
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            *p = '-';
    struct timeval tv;
    gettimeofday(&tv, NULL);
    snprintf(instance, sizeof instance, "%.60s-%ld-%lld", host, (long)getpid(),
             (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000);
}

const char *ledger_instance(void)
{
    pthread_once(&instance_once, make_instance);
    return instance;
}

/* ---- partitions ---- */

ledger *ledger_new(const config *cfg, unsigned worker)
{
    if (!ledger_enabled(cfg)) return NULL;
    ledger *l = xcalloc(1, sizeof *l);
    l->cfg = cfg;
    l->worker = worker;
    ch_quote_table(&l->name, cfg->database, cfg->ledger);
    return l;
}

static void clear_ranges(part_entry *e)
{
    for (size_t i = 0; i < e->nranges; i++) {
        for (size_t t = 0; t < e->ranges[i].ntables; t++)
            free(e->ranges[i].tables[t]);
        free(e->ranges[i].tables);
    }
    free(e->ranges);
    e->ranges = NULL;
    e->nranges = 0;
    e->ranges_end = -1;
}

static void free_segments(segment *segs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(segs[i].rows);
    free(segs);
}

static void clear_segments(part_entry *e)
{
    free_segments(e->segs, e->nsegs);
    e->segs = NULL;
    e->nsegs = 0;
}

void ledger_free(ledger *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->nparts; i++) {
        clear_segments(&l->parts[i]);
        clear_ranges(&l->parts[i]);
    }
    free(l->parts);
    free(l->covering);
    strbuf_free(&l->name);
    free(l);
}

static part_entry *entry(ledger *l, const partition_state *ps, bool create)
{
    for (size_t i = 0; i < l->nparts; i++)
        if (l->parts[i].ps == ps) return &l->parts[i];
    if (!create) return NULL;
    if (l->nparts == l->parts_cap) {
        l->parts_cap = l->parts_cap ? l->parts_cap * 2 : 8;
        l->parts = xrealloc(l->parts, l->parts_cap, sizeof *l->parts);
    }
    part_entry *e = &l->parts[l->nparts++];
    memset(e, 0, sizeof *e);
    e->ps = ps;
    e->ranges_end = -1;
    return e;
}

void ledger_assigned(ledger *l, const partition_state *ps)
{
    if (!l) return;
    part_entry *e = entry(l, ps, true);
    e->recover = true;
}

void ledger_forget(ledger *l, const partition_state *ps)
{
    if (!l) return;
    for (size_t i = 0; i < l->nparts; i++) {
        if (l->parts[i].ps != ps) continue;
        clear_ranges(&l->parts[i]);
        clear_segments(&l->parts[i]);
        if (l->cur == &l->parts[i]) l->cur = NULL;
        l->parts[i] = l->parts[--l->nparts];
        l->cur = NULL; /* entries moved */
        return;
    }
}

void ledger_handed_back(ledger *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->nparts; i++) {
        clear_segments(&l->parts[i]);
        l->parts[i].recover = true;
    }
}

/* ---- recovery ---- */

static void add_range(part_entry *e, int64_t first, int64_t last, char **tables, size_t ntables)
{
    e->ranges = xrealloc(e->ranges, e->nranges + 1, sizeof *e->ranges);
    e->ranges[e->nranges++] = (landed_range){first, last, tables, ntables};
    if (last > e->ranges_end) e->ranges_end = last;
}

/* Appends one ledger row as JSONEachRow to body. */
static void row_json(ledger *l, strbuf *body, const partition_state *ps, int64_t first,
                     int64_t last, const char *state, const char *insert_id, uint64_t inserted,
                     uint64_t filtered, uint64_t dead_lettered, uint64_t tombstones,
                     uint64_t skipped, char *const *tables, const uint64_t *rows, size_t n)
{
    strbuf_puts(body, "{\"consumer_group\":");
    json_string(body, l->cfg->group);
    strbuf_puts(body, ",\"topic\":");
    json_string(body, ps->topic);
    strbuf_printf(body, ",\"partition\":%d,\"first_offset\":%lld,\"last_offset\":%lld,\"state\":",
                  (int)ps->partition, (long long)first, (long long)last);
    json_string(body, state);
    strbuf_puts(body, ",\"insert_id\":");
    json_string(body, insert_id);
    strbuf_puts(body, ",\"instance\":");
    json_string(body, ledger_instance());
    strbuf_printf(body,
                  ",\"worker\":%u,\"inserted\":%llu,\"filtered\":%llu,\"dead_lettered\":%llu,"
                  "\"tombstones\":%llu,\"skipped\":%llu,\"tables\":[",
                  l->worker, (unsigned long long)inserted, (unsigned long long)filtered,
                  (unsigned long long)dead_lettered, (unsigned long long)tombstones,
                  (unsigned long long)skipped);
    for (size_t i = 0; i < n; i++) {
        if (i) strbuf_putc(body, ',');
        json_string(body, tables[i]);
    }
    strbuf_puts(body, "],\"rows\":[");
    for (size_t i = 0; i < n; i++)
        strbuf_printf(body, "%s%llu", i ? "," : "", (unsigned long long)rows[i]);
    strbuf_puts(body, "]}\n");
}

static void insert_head(ledger *l, strbuf *sql)
{
    strbuf_puts(sql, "INSERT INTO ");
    strbuf_append(sql, l->name.data, l->name.len);
    strbuf_puts(sql, " (" LEDGER_COLUMNS ") FORMAT JSONEachRow\n");
}

/* Resolves an intent without 'done' through system.query_log: the tables all of whose INSERTs
 * (with rows of this partition) finished. *known = false when the log cannot tell. */
static insert_result resolve_intent(ledger *l, inserter *in, const insert_group *g, char ***landed,
                                    size_t *nlanded, bool *known)
{
    char err[1024];
    ql_result r;
    ql_status st;
    int64_t waited_from = clock_ms();
    int backoff = RETRY_FIRST_MS;
    *landed = NULL;
    *nlanded = 0;
    *known = false;
    while ((st = query_log_lookup(in->ch, g->id, g->since, &r, err, sizeof err)) != QL_OK) {
        if (st == QL_UNAVAILABLE) {
            if (!l->warned_no_log)
                log_warn("cannot read system.query_log (%s): the inserts of an interrupted flush "
                         "cannot be told apart, so their ranges are inserted again "
                         "(at-least-once: rows may be doubled); enable the query log and grant "
                         "SYSTEM FLUSH LOGS for exactly-once",
                         err);
            l->warned_no_log = true;
            return INSERT_OK;
        }
        if (st == QL_RUNNING) {
            if (clock_ms() - waited_from > RUNNING_WAIT_MS) {
                log_warn("insert %s still runs in ClickHouse after %d s: assuming it does not "
                         "land; if it does, its rows are doubled",
                         g->id, RUNNING_WAIT_MS / 1000);
                return INSERT_OK;
            }
            snprintf(err, sizeof err, "insert %s still runs in ClickHouse", g->id);
        }
        insert_result stop = inserter_pause(in, backoff, err);
        if (stop != INSERT_OK) return stop;
        backoff = backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2;
    }
    *known = true;
    char qid[200];
    for (size_t k = 0; k < g->nk; k++) {
        const char *table = g->ktable[k];
        if (g->krows[k] == 0 || ledger_names_have(*landed, *nlanded, table)) continue;
        bool all = true, partial = false;
        for (size_t j = 0; j < g->nk; j++) { /* every INSERT of that table with our rows */
            if (g->krows[j] == 0 || strcmp(g->ktable[j], table) != 0) continue;
            snprintf(qid, sizeof qid, "%s.%zu", g->id, j);
            if (query_log_finished(&r, qid))
                partial = true;
            else {
                all = false;
                if (query_log_some_below_finished(&r, qid)) partial = true;
            }
        }
        if (all) {
            *landed = xrealloc(*landed, *nlanded + 1, sizeof **landed);
            (*landed)[(*nlanded)++] = xstrdup(table);
        } else if (partial) {
            log_warn("%s [%d] offsets %lld-%lld: only part of the rows for %s of insert %s "
                     "reached ClickHouse before cdcpipe stopped (a rejected batch was being "
                     "narrowed down, or the table had several INSERTs); they are inserted again, "
                     "so the part that landed is doubled",
                     l->cur ? l->cur->ps->topic : "?", l->cur ? (int)l->cur->ps->partition : -1,
                     (long long)g->first, (long long)g->last, table, g->id);
        }
    }
    query_log_result_free(&r);
    return INSERT_OK;
}

/* Reads the ledger rows of e's partition ending at or after `from` and works out, per range,
 * the tables whose rows are in ClickHouse. */
static insert_result recover(ledger *l, inserter *in, part_entry *e, int64_t from)
{
    const partition_state *ps = e->ps;
    clear_ranges(e);
    strbuf sql = {0}, answer = {0};
    strbuf_puts(&sql, "SELECT insert_id, state, first_offset, last_offset, toUnixTimestamp(time), "
                      "k, t, r FROM ");
    strbuf_append(&sql, l->name.data, l->name.len);
    strbuf_puts(&sql, " LEFT ARRAY JOIN tables AS t, rows AS r, arrayEnumerate(tables) AS k WHERE "
                      "consumer_group = ");
    ledger_sql_string(&sql, l->cfg->group);
    strbuf_puts(&sql, " AND topic = ");
    ledger_sql_string(&sql, ps->topic);
    strbuf_printf(&sql,
                  " AND partition = %d AND last_offset >= %lld AND state IN ('intent', 'done', "
                  "'recovered') ORDER BY first_offset, insert_id FORMAT TabSeparated",
                  (int)ps->partition, (long long)from);
    insert_result r = ledger_exec(l, in, sql.data, &answer);
    strbuf_free(&sql);
    if (r != INSERT_OK) {
        strbuf_free(&answer);
        return r;
    }
    insert_group *groups;
    size_t ngroups;
    ledger_parse_groups(answer.data, &groups, &ngroups);
    strbuf_free(&answer);
    strbuf body = {0};
    size_t skipped_ranges = 0;
    for (size_t i = 0; i < ngroups && r == INSERT_OK; i++) {
        insert_group *g = &groups[i];
        char **landed = NULL;
        size_t nlanded = 0;
        if (g->done) { /* every table with our rows */
            for (size_t k = 0; k < g->nk; k++)
                if (g->ktable[k] && g->krows[k] > 0 &&
                    !ledger_names_have(landed, nlanded, g->ktable[k])) {
                    landed = xrealloc(landed, nlanded + 1, sizeof *landed);
                    landed[nlanded++] = xstrdup(g->ktable[k]);
                }
        } else if (g->recovered) {
            landed = xcalloc(g->nr + 1, sizeof *landed);
            for (size_t k = 0; k < g->nr; k++)
                landed[nlanded++] = xstrdup(g->rtables[k]);
        } else if (g->intent) {
            for (size_t k = 0; k < g->nk; k++)
                if (!g->ktable[k]) g->ktable[k] = xstrdup("");
            bool known;
            r = resolve_intent(l, in, g, &landed, &nlanded, &known);
            if (r == INSERT_OK && known) {
                uint64_t *rows = xcalloc(nlanded + 1, sizeof *rows);
                for (size_t t = 0; t < nlanded; t++)
                    for (size_t k = 0; k < g->nk; k++)
                        if (strcmp(g->ktable[k], landed[t]) == 0) rows[t] += g->krows[k];
                row_json(l, &body, ps, g->first, g->last, "recovered", g->id, 0, 0, 0, 0, 0, landed,
                         rows, nlanded);
                free(rows);
                log_info("%s [%d] offsets %lld-%lld: insert %s was interrupted; tables whose "
                         "rows had landed: %zu (their rows are not inserted again)",
                         ps->topic, (int)ps->partition, (long long)g->first, (long long)g->last,
                         g->id, nlanded);
            }
        }
        if (nlanded > 0) {
            add_range(e, g->first, g->last, landed, nlanded);
            skipped_ranges++;
        } else {
            free(landed);
        }
    }
    if (r == INSERT_OK && body.len > 0) {
        strbuf sqlb = {0};
        insert_head(l, &sqlb);
        strbuf_append(&sqlb, body.data, body.len);
        r = ledger_exec(l, in, sqlb.data, NULL);
        strbuf_free(&sqlb);
    }
    strbuf_free(&body);
    for (size_t i = 0; i < ngroups; i++)
        insert_group_free(&groups[i]);
    free(groups);
    if (r != INSERT_OK) {
        clear_ranges(e);
        return r;
    }
    if (skipped_ranges > 0)
        log_info("%s [%d]: %zu ranges from offset %lld on are in ClickHouse already (ledger): "
                 "their rows are not inserted again",
                 ps->topic, (int)ps->partition, skipped_ranges, (long long)from);
    e->recover = false;
    return INSERT_OK;
}

/* ---- events ---- */

insert_result ledger_event_begin(ledger *l, inserter *in, const partition_state *ps, int64_t offset)
{
    l->ev_skipped = l->ev_kept = 0;
    l->ncovering = 0;
    l->cur = entry(l, ps, true);
    l->cur_offset = offset;
    part_entry *e = l->cur;
    if (e->recover) {
        insert_result r = recover(l, in, e, offset);
        l->cur = entry(l, ps, true);
        if (r != INSERT_OK) return r;
        e = l->cur;
    }
    if (e->nranges > 0 && offset > e->ranges_end) /* past every range: the replay is over */
        clear_ranges(e);
    for (size_t i = 0; i < e->nranges; i++) {
        const landed_range *rg = &e->ranges[i];
        if (offset < rg->first || offset > rg->last) continue;
        if (l->ncovering == l->covering_cap) {
            l->covering_cap = l->covering_cap ? l->covering_cap * 2 : 4;
            l->covering = xrealloc(l->covering, l->covering_cap, sizeof *l->covering);
        }
        l->covering[l->ncovering++] = rg;
    }
    l->ev_kind = -1;
    return INSERT_OK;
}

void ledger_event_end(ledger *l)
{
    part_entry *e = l->cur;
    if (!e) return;
    int64_t offset = l->cur_offset;
    bool covered = l->ncovering > 0;
    segment *sg = e->nsegs ? &e->segs[e->nsegs - 1] : NULL;
    if (sg && sg->covered == covered && offset > sg->last) {
        sg->last = offset;
    } else {
        e->segs = xrealloc(e->segs, e->nsegs + 1, sizeof *e->segs);
        sg = &e->segs[e->nsegs++];
        memset(sg, 0, sizeof *sg);
        sg->first = sg->last = offset;
        sg->covered = covered;
    }
    switch (l->ev_kind) {
    case LEDGER_FILTERED:
        sg->filtered++;
        break;
    case LEDGER_TOMBSTONE:
        sg->tombstones++;
        break;
    case LEDGER_DEAD_LETTERED:
        sg->dead_lettered++;
        break;
    case LEDGER_SKIPPED:
        sg->skipped++;
        break;
    default:
        break;
    }
    l->ev_kind = -1;
}

bool ledger_skip_row(ledger *l, const char *table)
{
    for (size_t i = 0; i < l->ncovering; i++)
        if (ledger_names_have(l->covering[i]->tables, l->covering[i]->ntables, table)) {
            l->ev_skipped++;
            return true;
        }
    l->ev_kept++;
    return false;
}

size_t ledger_event_skipped(const ledger *l)
{
    return l->ev_skipped;
}

size_t ledger_event_kept(const ledger *l)
{
    return l->ev_kept;
}

void ledger_count(ledger *l, const partition_state *ps, ledger_kind kind)
{
    (void)ps;
    l->ev_kind = (int)kind;
}

/* ---- flushes ---- */

ledger_flush *ledger_seal(ledger *l)
{
    size_t n = 0;
    for (size_t i = 0; l && i < l->nparts; i++)
        if (l->parts[i].nsegs > 0) n++;
    if (n == 0) return NULL;
    ledger_flush *f = xcalloc(1, sizeof *f);
    snprintf(f->insert_id, sizeof f->insert_id, "%s-w%u-%llu", ledger_instance(), l->worker,
             (unsigned long long)++l->seq);
    f->parts = xcalloc(n, sizeof *f->parts);
    for (size_t i = 0; i < l->nparts; i++) {
        part_entry *e = &l->parts[i];
        if (e->nsegs == 0) continue;
        f->parts[f->nparts++] = (flush_part){e->ps, e->segs, e->nsegs};
        e->segs = NULL;
        e->nsegs = 0;
    }
    return f;
}

void ledger_flush_free(ledger_flush *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->nparts; i++)
        free_segments(f->parts[i].segs, f->parts[i].nsegs);
    free(f->parts);
    for (size_t k = 0; k < f->nk; k++)
        free(f->kid[k]);
    free(f->kid);
    free(f->kbatch);
    free(f);
}

/* The segment of the flush that holds (ps, offset), or NULL. */
static segment *flush_segment(const ledger_flush *f, const partition_state *ps, int64_t offset)
{
    for (size_t i = 0; i < f->nparts; i++) {
        if (f->parts[i].ps != ps) continue;
        for (size_t j = f->parts[i].nsegs; j-- > 0;) {
            segment *g = &f->parts[i].segs[j];
            if (offset >= g->first && offset <= g->last) return g;
        }
    }
    return NULL;
}

/* The ledger rows in `state` for every partition in the flush. */
static insert_result write_rows(ledger *l, const ledger_flush *f, inserter *in, const char *state)
{
    strbuf sql = {0};
    insert_head(l, &sql);
    size_t n = 0;
    char **tables = xcalloc(f->nk + 1, sizeof *tables);
    for (size_t k = 0; k < f->nk; k++)
        tables[k] = f->kbatch[k]->table;
    uint64_t zero = 0;
    for (size_t i = 0; i < f->nparts; i++) {
        const flush_part *p = &f->parts[i];
        for (size_t j = 0; j < p->nsegs; j++) {
            segment *g = &p->segs[j];
            row_json(l, &sql, p->ps, g->first, g->last, state, f->insert_id,
                     g->with_rows - g->rows_dead_lettered, g->filtered,
                     g->dead_lettered + g->rows_dead_lettered, g->tombstones, g->skipped, tables,
                     g->rows ? g->rows : &zero, f->nk);
            n++;
        }
    }
    free(tables);
    insert_result r = n ? ledger_exec(l, in, sql.data, NULL) : INSERT_OK;
    strbuf_free(&sql);
    return r;
}

insert_result ledger_flush_intent(ledger *l, ledger_flush *f, inserter *in,
                                  const batch_set *batches, uint32_t nevents,
                                  ledger_event_info info, void *ud)
{
    f->kbatch = xcalloc(batches->count + 1, sizeof *f->kbatch);
    f->kid = xcalloc(batches->count + 1, sizeof *f->kid);
    for (size_t i = 0; i < batches->count; i++) {
        const batch *b = &batches->items[i];
        if (b->nrows == 0) continue;
        char id[200];
        snprintf(id, sizeof id, "%s.%zu", f->insert_id, f->nk);
        f->kbatch[f->nk] = b;
        f->kid[f->nk++] = xstrdup(id);
    }
    for (size_t i = 0; i < f->nparts; i++)
        for (size_t j = 0; j < f->parts[i].nsegs; j++)
            f->parts[i].segs[j].rows = xcalloc(f->nk + 1, sizeof(uint64_t));
    for (uint32_t ev = 0; ev < nevents; ev++) {
        bool dl;
        int64_t offset;
        const partition_state *ps = info(ud, ev, &offset, &dl);
        segment *g = flush_segment(f, ps, offset);
        if (g) g->with_rows++;
    }
    for (size_t k = 0; k < f->nk; k++) {
        const batch *b = f->kbatch[k];
        for (size_t row = 0; row < b->nrows; row++) {
            bool dl;
            int64_t offset;
            const partition_state *ps = info(ud, b->row_event[row], &offset, &dl);
            segment *g = flush_segment(f, ps, offset);
            if (g) g->rows[k]++;
        }
    }
    if (f->nk == 0) return INSERT_OK; /* nothing to insert: the 'done' rows say it all */
    insert_result r = write_rows(l, f, in, "intent");
    if (r == INSERT_OK) crash_point("after_intent");
    return r;
}

const char *ledger_query_id(const ledger_flush *f, const batch *b)
{
    for (size_t k = 0; f && k < f->nk; k++)
        if (f->kbatch[k] == b) return f->kid[k];
    return NULL;
}

insert_result ledger_flush_done(ledger *l, ledger_flush *f, inserter *in, uint32_t nevents,
                                ledger_event_info info, void *ud)
{
    for (uint32_t ev = 0; ev < nevents; ev++) {
        bool dl;
        int64_t offset;
        const partition_state *ps = info(ud, ev, &offset, &dl);
        segment *g = flush_segment(f, ps, offset);
        if (g && dl) g->rows_dead_lettered++;
    }
    insert_result r = write_rows(l, f, in, "done");
    if (r == INSERT_OK) crash_point("after_done");
    return r;
}
