/*
 * partitions — what this process knows about each Kafka partition it has been assigned:
 * the next offset it may commit, the offset committed last, and (for --once) the end offset
 * observed at assignment.
 *
 * `next` only moves when the pipeline has handled an event (rows batched, filtered or logged as
 * bad); it is committed only after every batch holding rows from it has been acknowledged by
 * ClickHouse, which is why the pipeline flushes all batches before any commit.
 */
#ifndef CDCPIPE_PARTITIONS_H
#define CDCPIPE_PARTITIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *topic;
    int32_t partition;
    bool assigned;         /* owned by this member now; never commit otherwise */
    int64_t next;          /* offset after the last handled event, -1 if none yet */
    int64_t pending_from;  /* first event handled since the last flush, -1 if none (rewinds) */
    int64_t committed;     /* last offset committed by us, -1 if none */
    int64_t end_at_assign; /* high watermark first seen after assignment (--once), -1 unknown */
    bool reached_end;      /* a partition-EOF was seen */
} partition_state;

typedef struct {
    partition_state *items;
    size_t count;
    size_t cap;
} partition_table;

/* Returns the state for topic/partition, or NULL when unknown and !create. */
partition_state *partitions_find(partition_table *t, const char *topic, int32_t partition,
                                 bool create);

/* true when every assigned partition has been consumed up to end_at_assign (or hit EOF) and at
 * least one partition is assigned. */
bool partitions_caught_up(const partition_table *t);

void partitions_free(partition_table *t);

#endif
