/*
 * worker — one partition worker: decode → transform → batch → insert → commit for the partitions
 * the consumer thread hands it, on a thread of its own.
 *
 * Each worker has its own Lua state (pipeline.lua loaded again), batches, ClickHouse connection
 * and record fetcher, so workers share nothing on the hot path. The consumer thread (pipeline.c)
 * polls Kafka and pushes each record to the worker of its partition through the worker's queue;
 * a partition always goes to the same worker, so its order is kept. A worker commits the offsets
 * of its own partitions after every batch holding their rows has been acknowledged by ClickHouse
 * (the delivery rule, now per worker).
 *
 * The consumer thread talks to a worker through its queue (records, "you own this partition now",
 * "this partition was rewound") and through requests it waits for (revoke, reload, stop). The
 * worker asks the consumer thread for two things: pausing its partitions while it retries an
 * insert, and rewinding partitions whose events it had to give up (a revoke while ClickHouse was
 * unreachable).
 *
 * @locks: each worker has one mutex, held only to move items and requests in and out (never
 * while handling an event or talking to ClickHouse or Kafka).
 */
#ifndef CDCPIPE_WORKER_H
#define CDCPIPE_WORKER_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdcpipe/batch.h"
#include "cdcpipe/config.h"
#include "cdcpipe/dead_letter.h"
#include "cdcpipe/kafka.h"
#include "cdcpipe/metrics.h"
#include "cdcpipe/partitions.h"
#include "cdcpipe/script.h"

typedef struct worker worker;

/* Creates worker number `index` and starts its thread and its insert thread (flusher.h). It loads
 * cfg's script (script_path) into a Lua state of its own, and opens two ClickHouse connections
 * (its own statements; the inserts) unless cfg->dry_run (then it prints rows to stdout). kafka is
 * used for commits only, by the insert thread; dead_letters is shared (dead_letter.h
 * locks); counters is the one metrics instance of the run, shared by every worker (its updates
 * are atomic): the worker counts its events there, beats its /healthz heartbeat (slot `index`)
 * and shows its rows waiting. Returns NULL with err when the script or the connection cannot be
 * set up. @locality: the consumer thread. */
worker *worker_start(unsigned index, const config *cfg, const char *script_path,
                     kafka_consumer *kafka, dl_sink *dead_letters, metrics *counters, char *err,
                     size_t errlen);

/* ---- called by the consumer thread ---- */

/* Hands ps to the worker: from now on it handles ps's records. */
void worker_assign(worker *w, partition_state *ps);

/* Queues one record of a partition assigned to this worker (worker_assign); the worker destroys
 * it. */
void worker_push(worker *w, partition_state *ps, rd_kafka_message_t *m);

/* The rewind the worker asked for (worker_next_rewind) is done: records of ps queued from now on
 * are the ones from the rewound offset. */
void worker_rewound(worker *w, partition_state *ps);

/* Takes the n partitions away: returns once the worker has flushed and committed what it handled
 * of them (or given its pending events up, see worker.c), or has stopped. */
void worker_revoke(worker *w, partition_state *const *ps, size_t n);

/* The worker is retrying an insert (ClickHouse unreachable): its partitions should be paused. */
bool worker_retrying(worker *w);

/* The worker's queue is at its limit (QUEUE_MAX_*): poll no more for it for now. */
bool worker_full(worker *w);

/* true (once) with *ps and *offset when the worker gave events up and asks for ps to be rewound
 * to offset; the consumer seeks, then calls worker_rewound. */
bool worker_next_rewind(worker *w, partition_state **ps, int64_t *offset);

/* Waits up to ms for the worker's queue to drop below its limit. */
void worker_wait_room(worker *w, int ms);

/* Reload (SIGHUP), in two steps: worker_reload_begin makes the worker flush and wait (returns
 * false if that flush failed or the worker stopped); then worker_reload_end lets it go on,
 * with the script at path loaded again when reload is true. */
bool worker_reload_begin(worker *w);
void worker_reload_end(worker *w, bool reload);

/* The worker stopped (after worker_stop, a failure, or SIGINT/SIGTERM). */
bool worker_stopped(worker *w);
/* It failed: nothing more of it is committed; the run exits 1. */
bool worker_failed(worker *w);

/* Asks the worker to flush, commit and stop (records still queued are dropped uncommitted). */
void worker_stop(worker *w);

/* worker_stop (if not asked yet), waits for the thread, then reports whether the last commit
 * failed (its counters are in the shared metrics already). After worker_join the worker's
 * batches can still be read (worker_batches) until worker_free. */
void worker_join(worker *w, bool *commit_failed);
/* The batches of the worker's flight i (0 or 1: one fills while the other is inserted). */
const batch_set *worker_batches(const worker *w, unsigned i);
void worker_free(worker *w);

#endif
