/*
 * pipeline — the main loop: consume → decode → transform → batch → encode → insert → commit.
 *
 * Single-threaded. Events are handled in order per partition; rows go into per-table batches.
 * When any limit is reached (rows, bytes, age) every batch is inserted, and only when all
 * inserts are acknowledged are the partitions' offsets committed. The same flush runs before a
 * rebalance takes partitions away and at shutdown.
 *
 * The stages and the files that hold them:
 *   consume    kafka.c (group, rebalances, commits), partitions.c, start_position.c
 *   decode     json_lua.c (JSON → Lua, envelope), schema.c, debezium_types.c, utf8.c
 *   transform  script.c (pipeline.lua, limits), lua_module.c (the cdcpipe module), lua_patterns.c,
 *              dbz_value.c (the one converter per Debezium type behind cdc.* and cdc.auto)
 *   batch      batch.c (rows per table, or per table and column set for RowBinary; columns,
 *              mark/rollback), row_set.c
 *   encode     row_json.c (JSONEachRow); target_tables.c (per table: RowBinary layout from
 *              DESCRIBE TABLE, or JSONEachRow) + ch_type.c + rowbinary.c (RowBinary, --format)
 *   insert     inserter.c (retries, narrowing rejected rows, DDL) over clickhouse.c (HTTP)
 *   commit     kafka.c's kafka_commit, called by this file's flush
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
