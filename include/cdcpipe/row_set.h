/*
 * row_set — some rows of a batch, as ranges of row numbers in batch order: what one INSERT sends
 * while the pipeline narrows a rejected batch down to its bad rows (a range per contiguous run,
 * so a set without a few rows is still a few pieces of the batch's buffer).
 */
#ifndef CDCPIPE_ROW_SET_H
#define CDCPIPE_ROW_SET_H

#include <stddef.h>

typedef struct {
    size_t from, to; /* rows [from, to) */
} row_range;

typedef struct {
    row_range *ranges; /* ascending, neither empty nor adjacent */
    size_t count, cap;
    size_t rows; /* in all ranges */
} row_set;

/* Appends rows [from, to) (after every row already in s; nothing when empty). */
void row_set_add(row_set *s, size_t from, size_t to);

/* The row number of the set's k-th row, counted from 0 (k < s->rows). */
size_t row_set_at(const row_set *s, size_t k);

/* Splits s into its first `rows` rows (*a) and the others (*b); s is unchanged. */
void row_set_split(const row_set *s, size_t rows, row_set *a, row_set *b);

/* Removes row `row` from s (nothing when it is not in s). */
void row_set_remove(row_set *s, size_t row);

void row_set_free(row_set *s);

#endif
