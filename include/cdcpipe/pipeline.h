/*
 * pipeline — consume → decode → transform → batch → encode → insert → commit.
 *
 * Threads: the consumer thread (pipeline.c, the caller's) polls Kafka and hands each record to
 * the partition worker of its partition (worker.c, --workers threads). A worker handles its
 * partitions' events in order; rows go into the per-table batches of the flight it fills. When
 * any limit is reached (rows, bytes, age) the flight is sealed and the worker's insert thread
 * (flusher.c) inserts every batch of it and, only when all are acknowledged, commits the offsets
 * it carries — while the worker fills the next flight (one in the air, one filling). Before a
 * rebalance takes partitions away from the worker and at shutdown everything is flushed so.
 *
 * The stages and the files that hold them:
 *   consume    pipeline.c (the consumer thread), kafka.c (group, rebalances, commits),
 *              partitions.c, start_position.c; worker.c (a worker thread: the stages below)
 *   decode     json_lua.c (JSON → Lua, envelope), schema.c, debezium_types.c, utf8.c
 *   transform  script.c (pipeline.lua, limits), lua_module.c (the cdcpipe module), lua_patterns.c,
 *              dbz_value.c (the one converter per Debezium type behind cdc.* and cdc.auto)
 *   batch      batch.c (rows per table, or per table and column set for RowBinary; columns,
 *              mark/rollback), row_set.c
 *   encode     row_json.c (JSONEachRow); target_tables.c (per table: RowBinary layout from
 *              DESCRIBE TABLE, or JSONEachRow) + ch_type.c + rowbinary.c (RowBinary, --format)
 *   insert     flusher.c (a worker's insert thread: one flight at a time), inserter.c (retries,
 *              narrowing rejected rows, DDL) over clickhouse.c (HTTP)
 *   commit     kafka.c's kafka_commit, called by flusher.c (the insert thread) once a flight's
 *              inserts are acknowledged; ledger.c's intent/done rows around them
 *   aside      dead_letter.c + record_fetch.c (bad events), metrics.c (counters), signals.c,
 *              commands.c (check, test, --show), config.c + cli.c (settings), log.c
 */
#ifndef CDCPIPE_PIPELINE_H
#define CDCPIPE_PIPELINE_H

#include <stdint.h>

#include "cdcpipe/config.h"
#include "cdcpipe/metrics.h"
#include "cdcpipe/script.h"

/* Runs the pipeline until stopped (or caught up, with cfg->once). Returns the process exit
 * status: 0 when everything consumed was inserted, dead-lettered or deliberately skipped and
 * committed, 1 on a runtime failure (logged), 2 on a configuration error found late. counters
 * receives the totals. *s is the script to run; after a reload (SIGHUP) it is the new one: the
 * caller closes *s either way. */
int pipeline_run(const config *cfg, script **s, metrics *counters);

#endif
