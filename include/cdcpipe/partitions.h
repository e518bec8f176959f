/*
 * partitions — what this process knows about each Kafka partition it has been assigned: which
 * worker handles it, the next offset it may commit, the offset committed last, and (for --once)
 * the end offset observed at assignment.
 *
 * A partition's state is allocated once and never moves (the table holds pointers), so the
 * consumer thread can hand a pointer to the worker that owns the partition. Each field belongs to
 * one thread, said below; `handled` is the one field both read.
 *
 * `next` only moves when the worker has handled an event (rows batched, filtered or logged as
 * bad); a flush carries a copy of it (flusher.h), committed only after every batch of that flush
 * has been acknowledged by ClickHouse.
 */
#ifndef CDCPIPE_PARTITIONS_H
#define CDCPIPE_PARTITIONS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *topic;
    int32_t partition;

    /* @locality: the consumer thread (pipeline.c, kafka.c) */
    bool assigned;         /* owned by this member now; never commit otherwise */
    bool paused;           /* fetching paused (its worker is retrying or has enough queued) */
    unsigned worker;       /* index of the worker that handles it, fixed once chosen */
    bool has_worker;       /* worker was chosen */
    int64_t end_at_assign; /* high watermark first seen after assignment (--once), -1 unknown */
    int64_t eof_at;        /* offset of the last partition-EOF seen since assignment, -1 none */
    int64_t dispatched;    /* offset after the last event handed to the worker, -1 none */

    /* @locality: the worker that handles it (worker.c) */
    bool owned;           /* the worker was told of the assignment and no revoke since */
    bool rewinding;       /* a rewind was asked for: its events are dropped until it is done */
    int64_t next;         /* offset after the last handled event, -1 if none yet */
    int64_t pending_from; /* first event handled since the last flush, -1 if none (rewinds) */
    int64_t committed;    /* last offset committed by us, -1 if none. Written by kafka_commit on the
                           * worker's insert thread; reset by the worker at assignment, when no
                           * flight carries the partition (flusher.h) */

    /* written by the worker, read by the consumer thread (--once: caught up?) */
    _Atomic int64_t handled; /* offset after the last handled event, -1 if none */
} partition_state;

typedef struct {
    partition_state **items;
    size_t count;
    size_t cap;
} partition_table;

/* Returns the state for topic/partition, or NULL when unknown and !create.
 * @locality: the consumer thread. */
partition_state *partitions_find(partition_table *t, const char *topic, int32_t partition,
                                 bool create);

/* true when at least one partition is assigned and, for every assigned partition, its worker has
 * handled every event handed to it and those reached end_at_assign or a partition-EOF.
 * @locality: the consumer thread. */
bool partitions_caught_up(const partition_table *t);

void partitions_free(partition_table *t);

#endif
