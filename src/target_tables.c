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

typedef struct {
    char *table;
    batch_layout *layout; /* NULL: JSONEachRow */
} target;

struct target_tables {
    ch_client *ch;
    char *database;
    bool warn_fallback;
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

void target_tables_reset(target_tables *t)
{
    for (size_t i = 0; i < t->count; i++) {
        free(t->items[i].table);
        batch_layout_free(t->items[i].layout);
    }
    t->count = 0;
    t->last = 0;
}

void target_tables_free(target_tables *t)
{
    if (!t) return;
    target_tables_reset(t);
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

/* Asks the server for table's columns: a layout, or NULL after logging why the table goes as
 * JSONEachRow. */
static batch_layout *describe(target_tables *t, const char *table)
{
    char err[1024];
    strbuf sql = {0}, out = {0};
    batch_layout *layout = NULL;
    target_column *cols = NULL;
    size_t ncols = 0;
    strbuf_puts(&sql, "DESCRIBE TABLE ");
    ch_quote_table(&sql, t->database, table);
    strbuf_puts(&sql, " FORMAT TabSeparated");
    if (learn_timezone(t, err, sizeof err) != 0 ||
        ch_exec(t->ch, sql.data, &out, NULL, err, sizeof err) != CH_OK ||
        target_parse_describe(out.data ? out.data : "", out.len, &cols, &ncols, err, sizeof err) !=
            0) {
        log_warn("could not read the columns of table %s (%s): its rows go as JSONEachRow until "
                 "the next reload (SIGHUP)",
                 table, err);
        goto done;
    }
    if (ncols == 0) {
        log_warn("DESCRIBE TABLE %s lists no insertable column: its rows go as JSONEachRow", table);
        goto done;
    }
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
done:
    target_columns_free(cols, ncols);
    strbuf_free(&sql);
    strbuf_free(&out);
    return layout;
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
    batch_layout *layout = describe(t, table);
    ch_set_timeout(t->ch, client_timeout);
    if (t->count == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->items = xrealloc(t->items, t->cap, sizeof *t->items);
    }
    t->items[t->count] = (target){xstrdup(table), layout};
    t->last = t->count++;
    return layout;
}
