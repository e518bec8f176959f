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
        if (t->items[i].partition == partition && strcmp(t->items[i].topic, topic) == 0)
            return &t->items[i];
    if (!create) return NULL;
    if (t->count == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        partition_state *items = xrealloc(t->items, t->cap, sizeof *items);
        t->items = items;
    }
    partition_state *p = &t->items[t->count++];
    memset(p, 0, sizeof *p);
    p->topic = xstrdup(topic);
    p->partition = partition;
    p->next = p->pending_from = p->committed = p->end_at_assign = -1;
    return p;
}

bool partitions_caught_up(const partition_table *t)
{
    size_t assigned = 0;
    for (size_t i = 0; i < t->count; i++) {
        const partition_state *p = &t->items[i];
        if (!p->assigned) continue;
        assigned++;
        if (!p->reached_end && !(p->end_at_assign >= 0 && p->next >= p->end_at_assign))
            return false;
    }
    return assigned > 0;
}

void partitions_free(partition_table *t)
{
    for (size_t i = 0; i < t->count; i++)
        free(t->items[i].topic);
    free(t->items);
    memset(t, 0, sizeof *t);
}
