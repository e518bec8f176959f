/*
 * target_tables — the encode stage's choice for each target table: RowBinary, with the table's
 * insertable columns and their types read once from the server, or JSONEachRow.
 *
 * On a table's first use the server is asked `DESCRIBE TABLE` (and, once, `SELECT timezone()`,
 * the zone of DateTime columns that name none); every column's type is parsed (ch_type.h) and
 * checked (rowbinary_check_column). A table with a type the encoder does not cover goes as
 * JSONEachRow, logged once (info; a warning when RowBinary was asked for explicitly). When the
 * question itself fails (ClickHouse unreachable, the table missing) the table goes as JSONEachRow
 * until target_tables_reset, logged once as a warning: no event waits for it.
 * MATERIALIZED and ALIAS columns cannot be inserted and are left out of the layout.
 *
 * @locality: the thread that owns the ClickHouse client and the batches (a partition worker).
 */
#ifndef CDCPIPE_TARGET_TABLES_H
#define CDCPIPE_TARGET_TABLES_H

#include <stdbool.h>
#include <stddef.h>

#include <lua.h>

#include "cdcpipe/batch.h"
#include "cdcpipe/clickhouse.h"

typedef struct target_tables target_tables;

/* Tables of `database` (for names without "db.") on the server behind ch. warn_fallback: log a
 * table that falls back to JSONEachRow as a warning (--format rowbinary) rather than as info.
 * timeout_ms bounds each question to the server (the client's own deadline is restored). */
target_tables *target_tables_new(ch_client *ch, const char *database, bool warn_fallback,
                                 long timeout_ms);
void target_tables_free(target_tables *t);

/* The RowBinary layout of table ("t" or "db.t"), asked for on its first use; NULL: the table's
 * rows go as JSONEachRow. */
const batch_layout *target_tables_layout(target_tables *t, const char *table);

/* Whether table's choice is known (target_tables_layout will not ask the server). */
bool target_tables_known(target_tables *t, const char *table);

/* --format json: columns are read (target_tables_columns, target_tables_check_row) but no table
 * gets a RowBinary layout. */
void target_tables_json_only(target_tables *t);

/* What is known of a table. */
typedef enum {
    TARGET_UNKNOWN, /* not asked yet, or the question failed */
    TARGET_MISSING, /* the server said it does not exist (Code 60) */
    TARGET_COLUMNS, /* its columns are known */
} target_state;

/* One insertable column of a DESCRIBE TABLE answer. */
typedef struct {
    char *name;
    char *type;
} target_column;

/* What is known of table without asking; with TARGET_COLUMNS, *columns (valid until the next
 * call that changes t) and *ncolumns. */
target_state target_tables_columns(target_tables *t, const char *table,
                                   const target_column **columns, size_t *ncolumns);

/* Records table's columns from a DESCRIBE TABLE answer the caller obtained (tsv[0..len)), or that
 * it does not exist (tsv NULL), replacing what was known; its layout is built again. No batch may
 * use the table's previous layout. Returns 0, or -1 with err when the answer does not parse. */
int target_tables_learn(target_tables *t, const char *table, const char *tsv, size_t len, char *err,
                        size_t errlen);

/* No silent column loss: counts the string keys of the row table at idx that table (when its
 * columns are known) has no column for, and logs a warning once per table and column (the first
 * 20). The row itself is left to ClickHouse: current servers skip such a key
 * (input_format_skip_unknown_fields=1), 18.16 refuses the row (dead letters). */
size_t target_tables_check_row(target_tables *t, const char *table, lua_State *L, int idx);

/* Forgets every table (a reload's DDL may have changed them): each is asked again on its next
 * use. Every batch using a layout must have been freed before. */
void target_tables_reset(target_tables *t);

/* Reads a `DESCRIBE TABLE … FORMAT TabSeparated` answer (name, type, default kind, … per line,
 * TSV-escaped) into *columns (*ncolumns of them; free with target_columns_free), leaving out
 * MATERIALIZED and ALIAS columns. Returns 0, or -1 with err when a line has fewer than two
 * fields. */
int target_parse_describe(const char *tsv, size_t len, target_column **columns, size_t *ncolumns,
                          char *err, size_t errlen);
void target_columns_free(target_column *columns, size_t ncolumns);

#endif
