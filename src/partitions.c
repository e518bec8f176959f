/*
 * partitions — per-partition offsets of this process (see include/cdcpipe/partitions.h).
 * A handful of partitions per process: a linear search is the simple and fast choice.
 */
#include "cdcpipe/partitions.h"
#include "cdcpipe/xalloc.h"

#include <stdlib.h>
#include <string.h>

partition_state *partitions_find(partition_table *t, const char *topic, int32_t partition,
                                 bool create)
{
    for (size_t i = 0; i < t->count; i++)
        if (t->items[i]->partition == partition && strcmp(t->items[i]->topic, topic) == 0)
            return t->items[i];
    if (!create) return NULL;
    if (t->count == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->items = xrealloc(t->items, t->cap, sizeof *t->items);
    }
    partition_state *p = xcalloc(1, sizeof *p);
    p->topic = xstrdup(topic);
    p->partition = partition;
    p->next = p->pending_from = p->committed = p->end_at_assign = p->eof_at = p->dispatched = -1;
    atomic_init(&p->handled, -1);
    t->items[t->count++] = p;
    return p;
}

bool partitions_caught_up(const partition_table *t)
{
    size_t assigned = 0;
    for (size_t i = 0; i < t->count; i++) {
        const partition_state *p = t->items[i];
        if (!p->assigned) continue;
        assigned++;
        int64_t handled = atomic_load_explicit(&p->handled, memory_order_acquire);
        if (p->dispatched >= 0 && handled < p->dispatched) return false; /* still in the works */
        bool at_eof = p->eof_at >= 0 && p->eof_at >= p->dispatched;
        bool at_end = p->end_at_assign >= 0 && p->dispatched >= p->end_at_assign;
        if (!at_eof && !at_end) return false;
    }
    return assigned > 0;
}

void partitions_free(partition_table *t)
{
    for (size_t i = 0; i < t->count; i++) {
        free(t->items[i]->topic);
        free(t->items[i]);
    }
    free(t->items);
    memset(t, 0, sizeof *t);
}
