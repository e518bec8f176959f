/*
 * inserter — the insert stage: a batch's rows into ClickHouse, whatever it takes.
 *
 * Transient failures (unreachable, overloaded, timed out) are retried with exponential backoff
 * and jitter (200 ms doubling up to 10 s) until they succeed or the caller's deadline passes.
 * Rejected data is narrowed down to the bad rows — the row ClickHouse names ("at row N") is tried
 * alone, else the rows are split in halves, at most INSERTER_NARROW_BUDGET inserts per slice —
 * and the caller dead-letters the events of the bad rows. A permanent failure (credentials, a
 * missing table) stops the batch. The start-up and reload DDL goes through here too.
 *
 * It knows nothing of Kafka: it waits between retries, learns its deadline and hands rejected
 * rows back through the hooks its caller provides.
 *
 * @locality: the thread that owns the batch and the ClickHouse client (a partition worker);
 * the hooks run on that thread.
 */
#ifndef CDCPIPE_INSERTER_H
#define CDCPIPE_INSERTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdcpipe/batch.h"
#include "cdcpipe/clickhouse.h"
#include "cdcpipe/metrics.h"
#include "cdcpipe/row_set.h"
#include "cdcpipe/script.h"

typedef enum {
    INSERT_OK,
    INSERT_FAILED,      /* deployment error, or unreachable until the shutdown deadline */
    INSERT_HANDED_BACK, /* the caller gave the rows up (a rebalance took their partitions) */
} insert_result;

/* Inserts that one slice of a batch may spend narrowing a rejection down to its bad rows: a bad
 * row costs 2 when ClickHouse names its row number and about 2·log2(rows) when it does not; each
 * insert that succeeds adds a part to the table. Past the budget every piece still rejected is
 * dead-lettered whole: bad input can neither multiply inserts (TOO_MANY_PARTS) nor keep a batch
 * from finishing. */
#define INSERTER_NARROW_BUDGET 64

typedef struct {
    /* Waits ms before the next attempt. INSERT_OK to go on; otherwise the batch is given up
     * with that result (partitions taken away, or a failure the caller already logged). */
    insert_result (*wait)(void *ud, int ms);
    /* Whether retrying must stop now, and how: INSERT_OK to go on; INSERT_FAILED (at shutdown)
     * or INSERT_HANDED_BACK (during a revoke) after the hook has logged why, given `err`, the
     * last failure. */
    insert_result (*give_up)(void *ud, const char *err);
    /* Dead-letters the event of a rejected row (`event`: the batch's row_event number) with the
     * reason; 0, or -1 when the dead letter could not be written (the batch fails). Called at
     * most once per event. */
    int (*reject)(void *ud, uint32_t event, const char *reason, int clickhouse_code);
    void *ud;
    /* Optional (NULL: none): the rows of s in b were just acknowledged by ClickHouse (for the
     * end-to-end latency). Called once per acknowledged INSERT, before the next request. */
    void (*acked)(void *ud, const batch *b, const row_set *s);
} inserter_hooks;

typedef struct {
    ch_client *ch;
    inserter_hooks hooks;
    metrics *counters; /* rows_inserted, retries, the insert series (metrics.h) */
    /* With the ledger (ledger.h): the query_id of the next inserter_insert's INSERT, NULL none.
     * Its narrowing slices get "<query_id>.<k>" (k = 1, 2, ...). Before an INSERT with an id is
     * sent again after a transient failure, system.query_log is asked whether it finished after
     * all (the answer was lost): then it is not sent twice. */
    const char *query_id;
    unsigned next_slice; /* @locality: inserter_insert's */
} inserter;

/* Inserts rows [first, end) of b (at most --batch-rows of them: one INSERT when all is well). */
insert_result inserter_insert(inserter *in, batch *b, size_t first, size_t end);

/* Runs one statement (cdc.ddl's, or a question such as DESCRIBE TABLE) with an insert's retry
 * rules: transient failures retried through the hooks. INSERT_OK with *st CH_OK (the answer in
 * out, when not NULL), CH_REJECTED or CH_PERMANENT (err and fail say why; nothing logged);
 * INSERT_FAILED or INSERT_HANDED_BACK when the hooks give up. */
insert_result inserter_exec(inserter *in, const char *sql, strbuf *out, ch_status *st,
                            ch_failure *fail, char *err, size_t errlen);

/* Waits through the hooks as between two retries (for callers that poll, e.g. for an insert
 * still running): INSERT_OK, or why to stop. */
insert_result inserter_pause(inserter *in, int ms, const char *why);

/* Runs ddl()'s statements in order, each retried while ClickHouse is not reachable for up to
 * retry_ms (or until a stop request). Returns 0, or -1 after logging why. */
int inserter_run_ddl(inserter *in, script *s, int retry_ms);

/* The stop rule of a give_up hook: after SIGINT/SIGTERM, once --shutdown-timeout (timeout_s) has
 * passed (signals_grace_expired), logs that retrying ends after err and returns INSERT_FAILED
 * (offsets stay uncommitted); INSERT_OK before. @locality: any thread. */
insert_result inserter_give_up_at_shutdown(long timeout_s, const char *err);

/* A wait between two retries with the caller's partitions paused: ms in slices of 100 ms, each a
 * heartbeat of `thread` (metrics_heartbeat, /healthz). INSERT_HANDED_BACK as soon as revoked(ud)
 * says partitions are being taken away; INSERT_OK after ms, or earlier when a stop is requested
 * meanwhile. @locality: a worker or its insert thread. */
insert_result inserter_wait_paused(int ms, bool (*revoked)(void *ud), void *ud, metrics *counters,
                                   unsigned thread);

/* Sleeps up to ms; wakes early when a stop is requested meanwhile (signals.h). */
void inserter_sleep(int ms);

#endif
