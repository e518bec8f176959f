/*
 * flusher — a partition worker's insert thread. The worker fills a flight (its batches, the events
 * they hold, the offsets to commit, the ledger's rows of them); when the flight is due the worker
 * seals it and launches it here, and goes on filling the next one while this one is inserted:
 * one flight in the air and one filling per worker, so a worker's memory is at most two flights.
 *
 * Delivery rule, in one place (land): a flight's offsets are committed only after every batch of
 * it has been acknowledged by ClickHouse — with a ledger, between its 'intent' and 'done' rows
 * (ledger.h) — and after the dead letters sent so far are acknowledged. Flights land in the order
 * they were launched, so commits of a partition only move forward.
 *
 * While ClickHouse is unreachable the flight retries and the worker's partitions are paused
 * (flusher_retrying); if the consumer asks to take partitions away meanwhile, the flight gives up
 * (INSERT_HANDED_BACK) and the worker hands every event since its last commit back. A flight
 * launched for a revoke (in_revoke) retries until the revoke's deadline instead.
 *
 * @locality: flusher_start/launch/landed/free on the worker thread; the flight itself on the
 * insert thread from launch until flusher_landed returns it. @locks: the flusher's own mutex
 * (launch, landed) and, through the hooks, the worker's.
 */
#ifndef CDCPIPE_FLUSHER_H
#define CDCPIPE_FLUSHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdcpipe/batch.h"
#include "cdcpipe/config.h"
#include "cdcpipe/dead_letter.h"
#include "cdcpipe/inserter.h"
#include "cdcpipe/kafka.h"
#include "cdcpipe/ledger.h"
#include "cdcpipe/metrics.h"
#include "cdcpipe/partitions.h"

/* An event whose rows wait in the batches: where it came from, so that an event whose row
 * ClickHouse rejects can be read again and dead-lettered with its original key, value and
 * headers (the record itself is not kept: see record_fetch.h). */
typedef struct {
    partition_state *ps;
    int64_t offset;
    bool dead_lettered;
    int64_t origin_ms; /* source.ts_ms (script_source_ts_ms), -1: none (metrics: latency) */
    int64_t kafka_ms;  /* the record's Kafka timestamp, -1: none */
} held_event;

typedef struct {
    batch_set batches;
    held_event *held; /* numbered as the rows' row_event */
    size_t nheld, held_cap;
    /* set when sealed, for every partition the worker owns: the offset to commit, and the
     * partition's first event in the flight (-1 none: a hand-back rewinds there) */
    kafka_commit_point *commits;
    int64_t *commit_from;
    size_t ncommits, commits_cap;
    ledger_flush *ledger; /* set when sealed; NULL: no ledger, or nothing handled */
    bool in_revoke;       /* launched for a revoke: retry until revoke_deadline_ms */
    int64_t revoke_deadline_ms;
    insert_result result; /* once landed */
} flight;

/* Notes an event with rows in f's batches (number f->nheld). */
void flight_hold(flight *f, held_event h);
/* Seals: ps's offset to commit (next) and its first event in the flight (from, -1 none). */
void flight_commit(flight *f, partition_state *ps, int64_t next, int64_t from);
/* Empties f for refilling (its batches keep their tables and layouts). */
void flight_clear(flight *f);
void flight_free(flight *f);

typedef struct {
    /* Whether the consumer asks to take partitions away. @locality: the insert thread. */
    bool (*revoke_asked)(void *ud);
    /* A flight landed: wake the worker if it sleeps. @locality: the insert thread. */
    void (*landed)(void *ud);
    void *ud;
} flusher_hooks;

typedef struct flusher flusher;

/* Starts worker `index`'s insert thread with its own ClickHouse connection (none in a dry run:
 * flights then only commit). NULL with err when the connection or the thread cannot be made. */
flusher *flusher_start(const config *cfg, unsigned index, kafka_consumer *kafka,
                       dl_sink *dead_letters, metrics *counters, ledger *worker_ledger,
                       flusher_hooks hooks, char *err, size_t errlen);
/* Hands f to the insert thread; no other flight may be in the air. */
void flusher_launch(flusher *fl, flight *f);
/* The flight in the air, if it has landed (waiting up to wait_ms for it): returned once, with
 * its result; NULL while it flies or when none was launched. */
flight *flusher_landed(flusher *fl, int wait_ms);
/* A flight is in the air (launched, not yet returned by flusher_landed). */
bool flusher_flying(const flusher *fl);
/* The flight in the air retries an insert (the worker's partitions should be paused). */
bool flusher_retrying(const flusher *fl);
/* A flight failed: nothing more may be committed. */
bool flusher_failed(const flusher *fl);
/* The last commit failed (the next flight commits again). */
bool flusher_commit_failed(const flusher *fl);
/* Stops the insert thread (no flight may be in the air) and frees it. */
void flusher_free(flusher *fl);

#endif
