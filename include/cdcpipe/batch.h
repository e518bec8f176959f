/*
 * batch — rows waiting to be inserted, one buffer per target table.
 *
 * Rows arrive as Lua tables and are serialized at once (row_json) into the table's buffer as
 * JSONEachRow lines; the batch also keeps the union of column names seen, which becomes the
 * INSERT's column list. A mark/rollback pair makes an event's rows all-or-nothing: the pipeline
 * marks before an event and rolls back if any of its rows (or its transform) fails.
 */
#ifndef CDCPIPE_BATCH_H
#define CDCPIPE_BATCH_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include "cdcpipe/strbuf.h"

typedef struct {
    char *table; /* target table as the script named it ("t" or "db.t") */
    strbuf rows; /* JSONEachRow: one object per line */
    size_t nrows;
    /* per row: where its line ends in `rows`, the pipeline's index of the event it came from,
     * and which of `columns` it has (bit i = columns[i]; columns past 63 count as present) */
    size_t *row_end;
    uint32_t *row_event;
    uint64_t *row_columns;
    size_t rows_cap;
    char **columns; /* union of the rows' keys, in first-seen order */
    size_t ncolumns;
    size_t columns_cap;
    int64_t opened_ms; /* clock_ms() of the first row, for the time limit */
    /* state at the last mark */
    size_t mark_len, mark_rows, mark_columns;
} batch;

typedef struct {
    batch *items;
    size_t count;
    size_t cap;
} batch_set;

/* Serializes the row table at idx into the batch for `table` (created on first use), noting
 * that it came from event number `event` (the caller's numbering). Returns 0, or -1 with err;
 * the batch is then unchanged. */
int batch_set_add_row(batch_set *set, const char *table, lua_State *L, int idx, uint32_t event,
                      char *err, size_t errlen);

/* Byte range of rows [first, end) in b->rows. */
size_t batch_row_start(const batch *b, size_t row);

/* The columns that rows [first, end) use, in batch order, into names (room for b->ncolumns);
 * returns how many. An INSERT of just those rows names exactly these columns. */
size_t batch_columns_of(const batch *b, size_t first, size_t end, char **names);

/* Remembers the current end of every batch; batch_set_rollback returns to it. */
void batch_set_mark(batch_set *set);
void batch_set_rollback(batch_set *set);

size_t batch_set_rows(const batch_set *set);
size_t batch_set_bytes(const batch_set *set);
/* clock_ms() of the oldest pending row, or -1 when no row is pending. */
int64_t batch_set_oldest_ms(const batch_set *set);

/* Empties one batch, keeping its buffer and table name for reuse. */
void batch_clear(batch *b);
void batch_set_free(batch_set *set);

#endif
