/*
 * target_tables — RowBinary layouts of the target tables (see include/cdcpipe/target_tables.h).
 */
#include "cdcpipe/target_tables.h"
#include "cdcpipe/tsv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdcpipe/ch_type.h"
#include "cdcpipe/errbuf.h"
#include "cdcpipe/log.h"
#include "cdcpipe/rowbinary.h"
#include "cdcpipe/xalloc.h"

/* Unknown columns warned about per worker, at most (a row of a thousand stray keys must not
 * flood the log). */
#define TARGET_MAX_WARNINGS 20

typedef struct {
    char *table;
    batch_layout *layout; /* NULL: JSONEachRow */
    target_state state;
    target_column *columns; /* TARGET_COLUMNS: the insertable columns */
    size_t ncolumns;
} target;

struct target_tables {
    ch_client *ch;
    char *database;
    bool warn_fallback;
    bool json_only; /* --format json: columns only, no layouts */
    char **warned;  /* "table\ncolumn" of every unknown column reported (kept across resets) */
    size_t nwarned;
    long timeout_ms;
    char *server_timezone; /* NULL until asked successfully */
    target *items;
    size_t count, cap;
    size_t last; /* the entry found last (rows of one table come in runs) */
};

target_tables *target_tables_new(ch_client *ch, const char *database, bool warn_fallback,
                                 long timeout_ms)
{
    target_tables *t = xcalloc(1, sizeof *t);
    t->ch = ch;
    t->database = xstrdup(database);
    t->warn_fallback = warn_fallback;
    t->timeout_ms = timeout_ms;
    return t;
}

void target_tables_json_only(target_tables *t)
{
    t->json_only = true;
}

void target_tables_reset(target_tables *t)
{
    for (size_t i = 0; i < t->count; i++) {
        free(t->items[i].table);
        batch_layout_free(t->items[i].layout);
        target_columns_free(t->items[i].columns, t->items[i].ncolumns);
    }
    t->count = 0;
    t->last = 0;
}

void target_tables_free(target_tables *t)
{
    if (!t) return;
    target_tables_reset(t);
    for (size_t i = 0; i < t->nwarned; i++)
        free(t->warned[i]);
    free(t->warned);
    free(t->items);
    free(t->server_timezone);
    free(t->database);
    free(t);
}

void target_columns_free(target_column *columns, size_t ncolumns)
{
    for (size_t i = 0; i < ncolumns; i++) {
        free(columns[i].name);
        free(columns[i].type);
    }
    free(columns);
}

int target_parse_describe(const char *tsv, size_t len, target_column **columns, size_t *ncolumns,
                          char *err, size_t errlen)
{
    char *copy = xmalloc(len + 1);
    memcpy(copy, tsv, len);
    copy[len] = '\0';
    target_column *cols = NULL;
    size_t n = 0, cap = 0, line_no = 0;
    int rc = 0;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        char *field[3] = {line, NULL, NULL};
        for (int f = 1; f < 3; f++) {
            char *tab = field[f - 1] ? strchr(field[f - 1], '\t') : NULL;
            if (!tab) break;
            *tab = '\0';
            field[f] = tab + 1;
        }
        if (field[2]) {
            char *tab = strchr(field[2], '\t');
            if (tab) *tab = '\0';
        }
        if (!field[1]) {
            errbuf_set(err, errlen, "line %zu of the DESCRIBE TABLE answer has no type: \"%.80s\"",
                       line_no, line);
            rc = -1;
            break;
        }
        if (field[2] && (strcmp(field[2], "MATERIALIZED") == 0 || strcmp(field[2], "ALIAS") == 0))
            continue; /* computed by the server: an INSERT cannot name it */
        tsv_unescape(field[0]);
        tsv_unescape(field[1]);
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            cols = xrealloc(cols, cap, sizeof *cols);
        }
        cols[n].name = xstrdup(field[0]);
        cols[n].type = xstrdup(field[1]);
        n++;
    }
    free(copy);
    if (rc != 0) {
        target_columns_free(cols, n);
        cols = NULL;
        n = 0;
    }
    *columns = cols;
    *ncolumns = n;
    return rc;
}

/* The server's time zone, asked once. Returns 0, or -1 with err. */
static int learn_timezone(target_tables *t, char *err, size_t errlen)
{
    if (t->server_timezone) return 0;
    strbuf out = {0};
    ch_status st =
        ch_exec(t->ch, "SELECT timezone() FORMAT TabSeparatedRaw", &out, NULL, err, errlen);
    if (st == CH_OK) {
        size_t n = out.len;
        while (n && (out.data[n - 1] == '\n' || out.data[n - 1] == '\r'))
            n--;
        if (n == 0 || memchr(out.data, '\n', n)) {
            errbuf_set(err, errlen, "SELECT timezone() answered \"%.60s\", not a time zone",
                       out.data ? out.data : "");
        } else {
            t->server_timezone = xmalloc(n + 1);
            memcpy(t->server_timezone, out.data, n);
            t->server_timezone[n] = '\0';
        }
    }
    strbuf_free(&out);
    return t->server_timezone ? 0 : -1;
}

/* The RowBinary layout of a table whose columns are cols, or NULL after logging why it goes as
 * JSONEachRow. */
static batch_layout *build_layout(target_tables *t, const char *table, const target_column *cols,
                                  size_t ncols)
{
    char err[1024];
    if (t->json_only) return NULL;
    if (learn_timezone(t, err, sizeof err) != 0) {
        log_warn("could not read the server's time zone (%s): table %s goes as JSONEachRow until "
                 "the next reload (SIGHUP)",
                 err, table);
        return NULL;
    }
    if (ncols == 0) {
        log_warn("DESCRIBE TABLE %s lists no insertable column: its rows go as JSONEachRow", table);
        return NULL;
    }
    batch_layout *layout = NULL;
    ch_type **types = xcalloc(ncols, sizeof *types);
    const char **names = xcalloc(ncols, sizeof *names);
    size_t parsed = 0;
    for (; parsed < ncols; parsed++) {
        names[parsed] = cols[parsed].name;
        const char *type = cols[parsed].type;
        if (ch_type_parse(type, strlen(type), &types[parsed], err, sizeof err) != CH_TYPE_OK ||
            rowbinary_check_column(cols[parsed].name, types[parsed], t->server_timezone, err,
                                   sizeof err) != 0) {
            log_msg(t->warn_fallback ? LOG_WARN : LOG_INFO,
                    "table %s goes as JSONEachRow, not RowBinary: column %s of type %s: %s", table,
                    cols[parsed].name, type, err);
            break;
        }
    }
    if (parsed == ncols) {
        layout = batch_layout_new(table, names, types, ncols, t->server_timezone);
        log_info("table %s goes as RowBinary (%zu columns)", table, ncols);
    } else {
        for (size_t i = 0; i <= parsed && i < ncols; i++)
            ch_type_free(types[i]);
    }
    free(types);
    free(names);
    return layout;
}

/* A new entry for table (the caller fills it). */
static target *add_entry(target_tables *t, const char *table)
{
    if (t->count == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->items = xrealloc(t->items, t->cap, sizeof *t->items);
    }
    t->items[t->count] = (target){xstrdup(table), NULL, TARGET_UNKNOWN, NULL, 0};
    t->last = t->count++;
    return &t->items[t->last];
}

/* Fills e from a DESCRIBE TABLE answer; 0, or -1 with err when it does not parse. */
static int fill(target_tables *t, target *e, const char *tsv, size_t len, char *err, size_t errlen)
{
    if (target_parse_describe(tsv, len, &e->columns, &e->ncolumns, err, errlen) != 0) return -1;
    e->state = TARGET_COLUMNS;
    e->layout = build_layout(t, e->table, e->columns, e->ncolumns);
    return 0;
}

/* Asks the server for the columns of e's table (once). A table that does not exist, or whose
 * columns cannot be read, goes as JSONEachRow (logged). */
static void describe(target_tables *t, target *e)
{
    char err[1024];
    strbuf sql = {0}, out = {0};
    ch_failure fail = {0};
    strbuf_puts(&sql, "DESCRIBE TABLE ");
    ch_quote_table(&sql, t->database, e->table);
    strbuf_puts(&sql, " FORMAT TabSeparated");
    ch_status st = ch_exec(t->ch, sql.data, &out, &fail, err, sizeof err);
    if (st == CH_OK) {
        if (fill(t, e, out.data ? out.data : "", out.len, err, sizeof err) != 0)
            log_warn("could not read the columns of table %s (%s): its rows go as JSONEachRow "
                     "until the next reload (SIGHUP)",
                     e->table, err);
    } else {
        if (fail.code == 60) e->state = TARGET_MISSING;
        log_warn("could not read the columns of table %s (%s): its rows go as JSONEachRow until "
                 "the next reload (SIGHUP)",
                 e->table, err);
    }
    strbuf_free(&sql);
    strbuf_free(&out);
}

/* Whether table is known; then t->last is its entry. */
static bool find(target_tables *t, const char *table)
{
    if (t->last < t->count && strcmp(t->items[t->last].table, table) == 0) return true;
    for (size_t i = 0; i < t->count; i++)
        if (strcmp(t->items[i].table, table) == 0) {
            t->last = i;
            return true;
        }
    return false;
}

bool target_tables_known(target_tables *t, const char *table)
{
    return find(t, table);
}

const batch_layout *target_tables_layout(target_tables *t, const char *table)
{
    if (find(t, table)) return t->items[t->last].layout;
    long client_timeout = ch_get_timeout(t->ch);
    if (t->timeout_ms < client_timeout) ch_set_timeout(t->ch, t->timeout_ms);
    target *e = add_entry(t, table);
    describe(t, e);
    ch_set_timeout(t->ch, client_timeout);
    return e->layout;
}

target_state target_tables_columns(target_tables *t, const char *table,
                                   const target_column **columns, size_t *ncolumns)
{
    *columns = NULL;
    *ncolumns = 0;
    if (!find(t, table)) return TARGET_UNKNOWN;
    const target *e = &t->items[t->last];
    *columns = e->columns;
    *ncolumns = e->ncolumns;
    return e->state;
}

int target_tables_learn(target_tables *t, const char *table, const char *tsv, size_t len, char *err,
                        size_t errlen)
{
    if (find(t, table)) { /* replaced: no batch may use the old layout (see the header) */
        target *e = &t->items[t->last];
        batch_layout_free(e->layout);
        target_columns_free(e->columns, e->ncolumns);
        free(e->table);
        *e = t->items[--t->count];
        t->last = 0;
    }
    target *e = add_entry(t, table);
    if (!tsv) {
        e->state = TARGET_MISSING;
        return 0;
    }
    return fill(t, e, tsv, len, err, errlen);
}

/* Whether e has a column named key[0..klen). */
static bool has_column(const target *e, const char *key, size_t klen)
{
    for (size_t i = 0; i < e->ncolumns; i++)
        if (strncmp(e->columns[i].name, key, klen) == 0 && e->columns[i].name[klen] == '\0')
            return true;
    return false;
}

/* Logs the unknown column once per table and column. */
static void warn_unknown(target_tables *t, const char *table, const char *key, size_t klen)
{
    size_t tlen = strlen(table);
    char *id = xmalloc(tlen + klen + 2);
    memcpy(id, table, tlen);
    id[tlen] = '\n';
    memcpy(id + tlen + 1, key, klen);
    id[tlen + 1 + klen] = '\0';
    for (size_t i = 0; i < t->nwarned; i++)
        if (strcmp(t->warned[i], id) == 0) {
            free(id);
            return;
        }
    t->warned = xrealloc(t->warned, t->nwarned + 1, sizeof *t->warned);
    t->warned[t->nwarned++] = id;
    log_warn("table %s has no column %.*s: ClickHouse drops its values "
             "(input_format_skip_unknown_fields) or, before 19.x, refuses the row; add the column "
             "to the table or leave the key out of the row (counted as unknown_columns; said once "
             "per table and column%s)",
             table, (int)(klen > 200 ? 200 : klen), key,
             t->nwarned == TARGET_MAX_WARNINGS ? "; no more such warnings in this run" : "");
}

size_t target_tables_check_row(target_tables *t, const char *table, lua_State *L, int idx)
{
    if (!find(t, table)) return 0;
    const target *e = &t->items[t->last];
    if (e->state != TARGET_COLUMNS) return 0;
    idx = lua_absindex(L, idx);
    size_t unknown = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        size_t klen;
        if (lua_type(L, -1) != LUA_TSTRING) continue; /* batch.c refuses it */
        const char *key = lua_tolstring(L, -1, &klen);
        if (has_column(e, key, klen)) continue;
        unknown++;
        if (t->nwarned < TARGET_MAX_WARNINGS) warn_unknown(t, table, key, klen);
    }
    return unknown;
}
