/*
 * kafka — the librdkafka consumer: group membership, rebalances, start positions, commits.
 *
 * Offsets are never stored or committed automatically (enable.auto.commit=false): each worker
 * calls kafka_commit for its partitions after its batches are acknowledged. Before partitions are
 * revoked the consumer calls the pipeline's revoking hook, so everything consumed from them is
 * inserted and committed while this member still owns them; afterwards they are forgotten (never
 * committed later). Handles both eager and cooperative rebalance protocols.
 *
 * @locality: the consumer thread (pipeline.c's loop), which polls and so runs the rebalance
 * hooks; kafka_commit alone is called from the worker threads (librdkafka's commit is
 * thread-safe, and it only touches the partitions' worker-owned fields).
 */
#ifndef CDCPIPE_KAFKA_H
#define CDCPIPE_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#include "cdcpipe/config.h"
#include "cdcpipe/metrics.h"
#include "cdcpipe/partitions.h"
#include "cdcpipe/start_position.h"

typedef struct kafka_consumer kafka_consumer;

/* Called from inside kafka_poll (the consumer thread). */
typedef struct {
    /* Partitions were just assigned (and marked assigned in the table): hand them to workers. */
    void (*assigned)(void *ud, partition_state **ps, size_t n);
    /* Partitions are about to be taken away: their events must be flushed and committed first
     * (or given up) when this returns. */
    void (*revoking)(void *ud, partition_state **ps, size_t n);
    void *ud;
} kafka_rebalance_hooks;

/* Creates the consumer and subscribes to cfg->topics. parts is the pipeline's partition table,
 * updated on assignment and revocation. With track_end the high watermark of each partition is
 * recorded when first known after assignment (for --once). With no_commit (dry run) nothing is ever
 * committed. Returns NULL with err on a configuration error (bad -X property names the property).
 */
kafka_consumer *kafka_open(const config *cfg, const start_position *from, bool track_end,
                           partition_table *parts, kafka_rebalance_hooks hooks, char *err,
                           size_t errlen);

/* Next message or NULL on timeout. The caller destroys it with rd_kafka_message_destroy.
 * Partition EOF is recorded in parts and not returned; other errors are logged and not
 * returned, except fatal ones: then *fatal is set and err filled. */
rd_kafka_message_t *kafka_poll(kafka_consumer *k, int timeout_ms, bool *fatal, char *err,
                               size_t errlen);

/* A partition's offset to commit: the offset after the last event a flush carried. */
typedef struct {
    partition_state *ps;
    int64_t next; /* -1: nothing handled yet */
} kafka_commit_point;

/* Synchronously commits each of the n points that moved since the last commit (ps->committed).
 * The caller owns the partitions (a worker waits for its insert thread before giving one up).
 * Returns 0, or -1 after logging why (the events will be consumed again: at-least-once).
 * @locality: the insert thread of the worker that owns the partitions (flusher.h): it alone
 * writes ps->committed. */
int kafka_commit(kafka_consumer *k, const kafka_commit_point *pts, size_t n);

/* Stops (pause) or restarts fetching from the assigned ones of the n partitions; kafka_poll keeps
 * serving the group (rebalances) meanwhile. librdkafka drops what it had fetched ahead and, on
 * resume, fetches again after the last message returned. */
void kafka_pause(kafka_consumer *k, partition_state *const *ps, size_t n, bool pause);

/* Resumes ps if paused and moves it back to offset, so the events from there on are consumed
 * again (messages fetched from the old position are discarded). Returns 0, or -1 after logging
 * why (then nothing more may be committed). */
int kafka_rewind(kafka_consumer *k, partition_state *ps, int64_t offset);

/* Sends librdkafka's log lines through cdcpipe's log (same format and levels). helper: a
 * dead-letter producer or record fetcher, which is given every -X property; its warnings about
 * properties meant for the main consumer are debug lines. */
void kafka_route_logs(rd_kafka_conf_t *conf, bool helper);

/* Where the consumer counts assignments, revocations and commits (metrics.h); NULL: nowhere (the
 * default). kafka_commit counts from the worker threads (the counters are atomic).
 * @locality: the consumer thread, before the workers start and before the first kafka_poll. */
void kafka_set_metrics(kafka_consumer *k, metrics *m);

/* Leaves the group (revoking: the flush hook runs once more) and destroys the handle. */
void kafka_close(kafka_consumer *k);

#endif
