/*
 * batch — rows waiting to be inserted, one buffer per target table (JSONEachRow) or per target
 * table and set of columns (RowBinary).
 *
 * JSONEachRow: rows arrive as Lua tables and are serialized at once (row_json) into the table's
 * buffer as JSONEachRow lines; the batch also keeps the union of column names seen, which becomes
 * the INSERT's column list.
 * RowBinary: for a table whose columns are known (a batch_layout, from DESCRIBE TABLE), a row is
 * encoded at once (rowbinary.h) into the batch of the columns it sets: every row of a RowBinary
 * batch sets exactly the batch's columns, in the table's order, so any subset of its rows is a
 * valid INSERT body for that column list; the columns a row leaves out get their DEFAULT. A
 * mark/rollback pair makes an event's rows all-or-nothing: the pipeline marks before an event and
 * rolls back if any of its rows (or its transform) fails.
 */
#ifndef CDCPIPE_BATCH_H
#define CDCPIPE_BATCH_H

#include <lua.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdcpipe/ch_type.h"
#include "cdcpipe/rowbinary.h"
#include "cdcpipe/strbuf.h"

/* What a row may have: past these its event is refused (batch_set_add_row fails, and the
 * pipeline dead-letters the event at the lua stage). Column names travel in every INSERT's
 * column list; a name with a NUL byte cannot be sent at all. */
#define BATCH_MAX_COLUMNS     1000 /* columns (top-level keys) per row */
#define BATCH_MAX_COLUMN_NAME 256  /* bytes per column name */

/* A table's insertable columns for RowBinary (opaque; batch_layout_new). */
typedef struct batch_layout batch_layout;

typedef struct {
    char *table; /* target table as the script named it ("t" or "db.t") */
    /* RowBinary: the layout of the table and which of its columns every row sets (indexes into
     * it, ascending); `columns` then holds their names, fixed for the batch's life, and row_cols
     * is not used. NULL for a JSONEachRow batch. */
    const batch_layout *layout;
    uint32_t *layout_cols;
    rowbinary_column *rb_columns;
    bool rowbinary; /* rows are RowBinary (layout != NULL) */
    strbuf rows;    /* JSONEachRow: one object per line */
    size_t nrows;
    /* per row: where its line ends in `rows`, the pipeline's index of the event it came from,
     * and where its column numbers end in `row_cols` (the indexes into `columns` it has) */
    size_t *row_end;
    uint32_t *row_event;
    size_t *row_cols_end;
    size_t rows_cap;
    uint32_t *row_cols; /* every row's column numbers, row after row */
    size_t nrow_cols, row_cols_cap;
    /* union of the rows' keys, in first-seen order: NUL-terminated (a key with a NUL byte is
     * refused), with their lengths, and a hash set over them (open addressing: column number +
     * 1, 0 = empty; its size a power of two, at least twice the columns) */
    char **columns;
    size_t *column_len;
    size_t ncolumns;
    size_t columns_cap;
    uint32_t *slots;
    size_t nslots;
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
 * that it came from event number `event` (the caller's numbering). Returns 0, or -1 with err
 * (a value row_json cannot write, more than BATCH_MAX_COLUMNS columns, a column name longer than
 * BATCH_MAX_COLUMN_NAME bytes or holding a NUL byte: err names the limit and the column, its
 * bytes escaped); the batch is then unchanged. */
int batch_set_add_row(batch_set *set, const char *table, lua_State *L, int idx, uint32_t event,
                      char *err, size_t errlen);

/* A RowBinary layout of `table`: its insertable columns in table order, names[i] of type
 * types[i] (the layout takes the types: ch_type_free at batch_layout_free), and the server's time
 * zone (copied; NULL when unknown). Every type must have passed rowbinary_check_column. */
batch_layout *batch_layout_new(const char *table, const char *const *names, ch_type **types,
                               size_t ncolumns, const char *server_timezone);
/* Frees the layout; no batch may use it any more (batch_set_free them first). */
void batch_layout_free(batch_layout *l);
size_t batch_layout_columns(const batch_layout *l);

/* Encodes the row table at idx as RowBinary into the batch of `layout`'s table for the set of
 * columns the row's keys name (created on first use), noting event as batch_set_add_row does. A
 * row without keys goes to the table's JSONEachRow batch instead (an INSERT needs a column).
 * Returns 0, or -1 with err: a key that is not a string, a key the table has no column for
 * ("table t has no column zzz"), or the encoder's refusal (column, type and value named); the
 * batches are then unchanged. */
int batch_set_add_rowbinary(batch_set *set, const batch_layout *layout, lua_State *L, int idx,
                            uint32_t event, char *err, size_t errlen);

/* Byte range of rows [first, end) in b->rows. */
size_t batch_row_start(const batch *b, size_t row);

/* The columns that rows [first, end) use, in batch order (a RowBinary batch: all of its columns,
 * in table order), into names (room for b->ncolumns);
 * returns how many. An INSERT of just those rows names exactly these columns. */
size_t batch_columns_of(const batch *b, size_t first, size_t end, char **names);

/* Remembers the current end of every batch; batch_set_rollback returns to it. */
void batch_set_mark(batch_set *set);
void batch_set_rollback(batch_set *set);

size_t batch_set_rows(const batch_set *set);
size_t batch_set_bytes(const batch_set *set);
/* clock_ms() of the oldest pending row, or -1 when no row is pending. */
int64_t batch_set_oldest_ms(const batch_set *set);

/* Empties one batch, keeping its buffer, table name (and a RowBinary batch its columns) for
 * reuse. */
void batch_clear(batch *b);
void batch_set_free(batch_set *set);

#endif
