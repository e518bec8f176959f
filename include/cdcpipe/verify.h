/*
 * verify — `cdcpipe verify pipeline.lua`: what the insert ledger (ledger.h) says was delivered,
 * per partition of the topics, against the group's committed offsets. Reads only the ledger and
 * the offsets (never the events), so it takes seconds whatever the topic's size.
 *   accounted: the ranges of 'done' and 'recovered' rows;
 *   gaps:      offsets below the committed offset that no range covers (events lost), from the
 *              partition's first ledger range on (--from beginning: from its low watermark);
 *   overlaps:  offsets covered by two inserts that both put rows into the same table (rows
 *              doubled), with both inserts' row counts;
 *   totals:    rows the ledger says went into each table, next to its count() (information: other
 *              writers, merges of Replacing/Collapsing tables, TTLs and deletes change count()).
 * Exit 0 clean, 1 with gaps or overlaps (listed), 2 configuration or connection errors.
 */
#ifndef CDCPIPE_VERIFY_H
#define CDCPIPE_VERIFY_H

#include <stdio.h>

#include "cdcpipe/config.h"

int command_verify(const config *cfg, FILE *out);

/* `cdcpipe rewind pipeline.lua --to POS`: commits earlier offsets for the group, which must have
 * no member running, and writes a 'rewind' row per partition moved ([new offset, old committed
 * offset - 1]). POS: a unix time in ms, -<N>s|m|h|d before now, or offsets P:O[,P:O...] (or
 * TOPIC:P:O). A replay then skips what the ledger says is in ClickHouse already. Exit 0, 1 when
 * the group has members or a commit fails, 2 for a bad POS or configuration. */
int command_rewind(const config *cfg, const char *to, FILE *out);

#endif
