/*
 * ledger — the insert ledger: a ClickHouse table (--ledger, default cdcpipe_ledger in --database)
 * with one row per flush and source partition, written around the inserts so that a restart
 * after a crash at any point neither loses nor doubles a row, and so that `cdcpipe verify` can
 * tell afterwards what was delivered (verify.h).
 *
 * A worker's flush with a ledger (worker.c):
 *   1. insert id `<instance>-w<worker>-<seq>` (instance: host-pid-start time);
 *   2. 'intent' rows: for every partition with events since the last flush, the range
 *      [first_offset, last_offset], its event counts, and per INSERT k of the flush the table and
 *      how many of its rows came from that partition (tables[k], rows[k]);
 *   3. INSERT k carries query_id `<insert id>.<k>` (narrowing slices `<insert id>.<k>.<j>`) and
 *      log_queries=1; a table's batch goes as one INSERT;
 *   4. 'done' rows (the same ranges, final counts); then dead letters, then the Kafka commit.
 * Recovery, before the first record a worker handles of a partition it was given: the ledger's
 * rows of (group, topic, partition) that end at or after that record. A 'done' range: its tables'
 * rows are in ClickHouse. An 'intent' without 'done': system.query_log says which INSERTs
 * finished (query_log.h); a table all of whose INSERTs for the range finished landed, and a
 * 'recovered' row records it. While the worker then handles events of such ranges, rows for a
 * table that landed for the range are dropped (the event counts as skipped when all its rows
 * were); rows for the other tables are inserted as usual.
 *
 * @locality: a ledger belongs to one worker (ledger_new): the events side on the worker thread,
 * a sealed flush (ledger_seal) on its insert thread, which reads only the ledger's configuration
 * (and its atomic "created" flag). ledger_create runs on the consumer thread at start. No locks.
 */
#ifndef CDCPIPE_LEDGER_H
#define CDCPIPE_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdcpipe/batch.h"
#include "cdcpipe/clickhouse.h"
#include "cdcpipe/config.h"
#include "cdcpipe/inserter.h"
#include "cdcpipe/partitions.h"
#include "cdcpipe/strbuf.h"

typedef struct ledger ledger;

/* cfg has a ledger (--ledger is not "none", not a dry run). */
bool ledger_enabled(const config *cfg);

/* The CREATE TABLE IF NOT EXISTS statement of cfg's ledger (accepted by 18.16 and 24-26). */
void ledger_create_sql(const config *cfg, strbuf *sql);

/* Creates the ledger table, retrying while ClickHouse is unreachable for up to retry_ms (or
 * until a stop request). 0, or -1 after logging why. @locality: the consumer thread. */
int ledger_create(ch_client *ch, const config *cfg, int retry_ms);

/* This process's instance name: host-pid-start (unix ms). */
const char *ledger_instance(void);

/* Appends s as an SQL string literal ('...' with ' and \ escaped). */
void ledger_sql_string(strbuf *sql, const char *s);

/* The ledger of worker number `worker` (NULL when !ledger_enabled). */
ledger *ledger_new(const config *cfg, unsigned worker);
void ledger_free(ledger *l);

/* ---- partitions ---- */

/* ps was given to the worker: recovery runs before its first record (ledger_event_begin). */
void ledger_assigned(ledger *l, const partition_state *ps);
/* ps was taken away: forget it. */
void ledger_forget(ledger *l, const partition_state *ps);
/* The worker gave its pending events up (hand_back): the counts since the last seal are
 * dropped (the caller frees sealed flushes not yet written), and every partition recovers again
 * before its next record (this worker's own intent may have landed in part). */
void ledger_handed_back(ledger *l);

/* ---- events ---- */

typedef enum {
    LEDGER_FILTERED,
    LEDGER_TOMBSTONE,
    LEDGER_DEAD_LETTERED,
    LEDGER_SKIPPED
} ledger_kind;

/* Before handling the record at `offset` of ps: runs the partition's recovery when due
 * (through `in`, retried under its hooks), then prepares ledger_skip_row for the event.
 * INSERT_OK, or why recovery could not finish (the record must not be handled). */
insert_result ledger_event_begin(ledger *l, inserter *in, const partition_state *ps,
                                 int64_t offset);
/* A row of the current event goes to `table`: true when it must be dropped (that table's rows of
 * this range are in ClickHouse already); false when it is batched (counted as kept). */
bool ledger_skip_row(ledger *l, const char *table);
/* Rows of the current event dropped / kept so far. */
size_t ledger_event_skipped(const ledger *l);
size_t ledger_event_kept(const ledger *l);
/* The current event (of ps) has no rows in the batches: it counts as `kind`. */
void ledger_count(ledger *l, const partition_state *ps, ledger_kind kind);
/* The current event is handled (its offset becomes part of the next flush's ledger rows). Not
 * called for an event given up (it is consumed again): a flush during the event (cdc.ddl) must
 * not claim it. */
void ledger_event_end(ledger *l);

/* ---- flushes ---- */

/* One flush's share of the ledger: the segments of every partition with events handled since the
 * previous seal, and the flush's insert id. Sealed on the worker thread, written by the worker's
 * insert thread while the worker goes on handling events (flusher.h). */
typedef struct ledger_flush ledger_flush;

/* What the worker knows of event number `event` (batch row_event numbering, 0..nevents-1): its
 * partition, offset and whether it was dead-lettered. */
typedef const partition_state *(*ledger_event_info)(void *ud, uint32_t event, int64_t *offset,
                                                    bool *dead_lettered);

/* Step 1: takes the events handled since the last seal (NULL: none, or l is NULL) and numbers the
 * flush. @locality: the worker thread. */
ledger_flush *ledger_seal(ledger *l);
void ledger_flush_free(ledger_flush *f);

/* Step 2: the 'intent' rows of f's partitions (none when no batch has rows: then only 'done' rows
 * follow). After it, ledger_query_id names each non-empty batch's INSERT.
 * @locality: the insert thread (only l's configuration is read; see ledger_exec). */
insert_result ledger_flush_intent(ledger *l, ledger_flush *f, inserter *in,
                                  const batch_set *batches, uint32_t nevents,
                                  ledger_event_info info, void *ud);
/* The query_id of batch b's INSERT in flush f (NULL: b has no rows, or f is NULL). */
const char *ledger_query_id(const ledger_flush *f, const batch *b);
/* Step 4: the 'done' rows, with the final counts (events dead-lettered by ClickHouse's
 * rejections during the inserts). @locality: the insert thread. */
insert_result ledger_flush_done(ledger *l, ledger_flush *f, inserter *in, uint32_t nevents,
                                ledger_event_info info, void *ud);

#endif
