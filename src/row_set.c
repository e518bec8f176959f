/*
 * row_set — rows of a batch as ranges (see include/cdcpipe/row_set.h).
 */
#include "cdcpipe/row_set.h"
#include "cdcpipe/xalloc.h"

#include <stdlib.h>

void row_set_add(row_set *s, size_t from, size_t to)
{
    if (from >= to) return;
    if (s->count && s->ranges[s->count - 1].to == from) {
        s->ranges[s->count - 1].to = to;
    } else {
        if (s->count == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 4;
            s->ranges = xrealloc(s->ranges, s->cap, sizeof *s->ranges);
        }
        s->ranges[s->count++] = (row_range){from, to};
    }
    s->rows += to - from;
}

size_t row_set_at(const row_set *s, size_t k)
{
    size_t i = 0;
    while (k >= s->ranges[i].to - s->ranges[i].from) {
        k -= s->ranges[i].to - s->ranges[i].from;
        i++;
    }
    return s->ranges[i].from + k;
}

void row_set_split(const row_set *s, size_t rows, row_set *a, row_set *b)
{
    *a = (row_set){0};
    *b = (row_set){0};
    for (size_t i = 0; i < s->count; i++) {
        size_t from = s->ranges[i].from, to = s->ranges[i].to;
        size_t take = a->rows < rows ? rows - a->rows : 0;
        if (take > to - from) take = to - from;
        row_set_add(a, from, from + take);
        row_set_add(b, from + take, to);
    }
}

void row_set_remove(row_set *s, size_t row)
{
    row_set out = {0};
    for (size_t i = 0; i < s->count; i++) {
        size_t from = s->ranges[i].from, to = s->ranges[i].to;
        if (row >= from && row < to) {
            row_set_add(&out, from, row);
            row_set_add(&out, row + 1, to);
        } else {
            row_set_add(&out, from, to);
        }
    }
    free(s->ranges);
    *s = out;
}

void row_set_free(row_set *s)
{
    free(s->ranges);
    *s = (row_set){0};
}
