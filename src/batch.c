/*
 * batch — rows waiting to be inserted, per target table (see include/cdcpipe/batch.h).
 */
#include "cdcpipe/batch.h"

#include <stdlib.h>
#include <string.h>

#include "cdcpipe/clock.h"
#include "cdcpipe/row_json.h"

static void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size);
    if (!q) abort();
    return q;
}

static batch *find_or_create(batch_set *set, const char *table)
{
    for (size_t i = 0; i < set->count; i++)
        if (strcmp(set->items[i].table, table) == 0) return &set->items[i];
    if (set->count == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 4;
        set->items = xrealloc(set->items, set->cap * sizeof *set->items);
    }
    batch *b = &set->items[set->count++];
    memset(b, 0, sizeof *b);
    b->table = strdup(table);
    if (!b->table) abort();
    b->opened_ms = -1;
    return b;
}

typedef struct {
    batch *b;
    uint64_t mask; /* the row's columns */
} row_columns;

static uint64_t column_bit(size_t i)
{
    return i < 64 ? (uint64_t)1 << i : 0;
}

/* row_json key callback: adds a key to the batch's column list unless already there, and marks
 * it used by the row. */
static void note_column(void *ud, const char *key, size_t len)
{
    row_columns *rc = ud;
    batch *b = rc->b;
    for (size_t i = 0; i < b->ncolumns; i++) {
        if (strncmp(b->columns[i], key, len) == 0 && b->columns[i][len] == '\0') {
            rc->mask |= column_bit(i);
            return;
        }
    }
    rc->mask |= column_bit(b->ncolumns);
    if (b->ncolumns == b->columns_cap) {
        b->columns_cap = b->columns_cap ? b->columns_cap * 2 : 16;
        b->columns = xrealloc(b->columns, b->columns_cap * sizeof *b->columns);
    }
    char *name = malloc(len + 1);
    if (!name) abort();
    memcpy(name, key, len);
    name[len] = '\0';
    b->columns[b->ncolumns++] = name;
}

static void drop_columns_from(batch *b, size_t keep)
{
    while (b->ncolumns > keep)
        free(b->columns[--b->ncolumns]);
}

int batch_set_add_row(batch_set *set, const char *table, lua_State *L, int idx, uint32_t event,
                      char *err, size_t errlen)
{
    batch *b = find_or_create(set, table);
    size_t len = b->rows.len, ncolumns = b->ncolumns;
    row_columns rc = {b, 0};
    if (row_json_append(&b->rows, L, idx, false, note_column, &rc, err, errlen) != 0) {
        strbuf_truncate(&b->rows, len);
        drop_columns_from(b, ncolumns);
        return -1;
    }
    strbuf_putc(&b->rows, '\n');
    if (b->nrows == b->rows_cap) {
        b->rows_cap = b->rows_cap ? b->rows_cap * 2 : 1024;
        b->row_end = xrealloc(b->row_end, b->rows_cap * sizeof *b->row_end);
        b->row_event = xrealloc(b->row_event, b->rows_cap * sizeof *b->row_event);
        b->row_columns = xrealloc(b->row_columns, b->rows_cap * sizeof *b->row_columns);
    }
    b->row_end[b->nrows] = b->rows.len;
    b->row_event[b->nrows] = event;
    b->row_columns[b->nrows] = rc.mask;
    if (b->nrows++ == 0) b->opened_ms = clock_ms();
    return 0;
}

size_t batch_row_start(const batch *b, size_t row)
{
    return row == 0 ? 0 : b->row_end[row - 1];
}

size_t batch_columns_of(const batch *b, size_t first, size_t end, char **names)
{
    uint64_t used = 0;
    for (size_t r = first; r < end; r++)
        used |= b->row_columns[r];
    size_t n = 0;
    for (size_t i = 0; i < b->ncolumns; i++)
        if (i >= 64 || (used & column_bit(i))) names[n++] = b->columns[i];
    return n;
}

void batch_set_mark(batch_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        batch *b = &set->items[i];
        b->mark_len = b->rows.len;
        b->mark_rows = b->nrows;
        b->mark_columns = b->ncolumns;
    }
}

void batch_set_rollback(batch_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        batch *b = &set->items[i];
        strbuf_truncate(&b->rows, b->mark_len);
        b->nrows = b->mark_rows;
        drop_columns_from(b, b->mark_columns);
        if (b->nrows == 0) b->opened_ms = -1;
    }
}

size_t batch_set_rows(const batch_set *set)
{
    size_t n = 0;
    for (size_t i = 0; i < set->count; i++)
        n += set->items[i].nrows;
    return n;
}

size_t batch_set_bytes(const batch_set *set)
{
    size_t n = 0;
    for (size_t i = 0; i < set->count; i++)
        n += set->items[i].rows.len;
    return n;
}

int64_t batch_set_oldest_ms(const batch_set *set)
{
    int64_t oldest = -1;
    for (size_t i = 0; i < set->count; i++) {
        int64_t t = set->items[i].opened_ms;
        if (t >= 0 && (oldest < 0 || t < oldest)) oldest = t;
    }
    return oldest;
}

void batch_clear(batch *b)
{
    strbuf_reset(&b->rows);
    b->nrows = 0;
    drop_columns_from(b, 0);
    b->opened_ms = -1;
    b->mark_len = b->mark_rows = b->mark_columns = 0;
}

void batch_set_free(batch_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        batch *b = &set->items[i];
        drop_columns_from(b, 0);
        free(b->columns);
        free(b->row_end);
        free(b->row_event);
        free(b->row_columns);
        strbuf_free(&b->rows);
        free(b->table);
    }
    free(set->items);
    memset(set, 0, sizeof *set);
}
