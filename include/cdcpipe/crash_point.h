/*
 * crash_point — kill the process at a named point, for the crash tests only.
 *
 * CDCPIPE_TEST_CRASH=POINT[:N] (read once, at the first crash_point call) makes the N-th pass
 * (default 1) through crash_point("POINT") raise SIGKILL: nothing is flushed, nothing is
 * committed, exactly as `kill -9` at that instant. Unset (users), crash_point costs one relaxed
 * atomic load. The points:
 *   after_intent  the ledger's 'intent' rows are written, no INSERT sent yet
 *   after_insert  ClickHouse acknowledged one table's INSERT, before the 'done' rows
 *   after_done    the 'done' rows are written, before the Kafka commit
 *   after_commit  the offsets are committed
 *   in_revoke     in a revoke's flush, after its inserts
 *   in_ddl        after one statement of ddl() ran
 * @locality: any thread (the pass counter is atomic).
 */
#ifndef CDCPIPE_CRASH_POINT_H
#define CDCPIPE_CRASH_POINT_H

void crash_point(const char *name);

#endif
