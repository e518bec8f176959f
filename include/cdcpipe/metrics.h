/*
 * metrics — the run's counters and how they are reported: the --once summary, the periodic
 * `progress:` log line and the final `stopped:` line. The one home for what an operator can read
 * about a run (a metrics endpoint would export these).
 *
 * @locality: the pipeline's main thread updates and reads them; no locks.
 */
#ifndef CDCPIPE_METRICS_H
#define CDCPIPE_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t consumed;        /* Kafka records handed to the pipeline */
    uint64_t tombstones;      /* null values, skipped */
    uint64_t filtered;        /* transform returned nothing and emitted nothing */
    uint64_t dead_lettered;   /* bad events: decode, Lua or ClickHouse-rejected (logged) */
    uint64_t events_inserted; /* events whose rows are all acknowledged by ClickHouse */
    uint64_t rows_inserted;
    uint64_t retries;         /* insert attempts repeated after a transient failure */
    uint64_t unknown_columns; /* row keys the target table has no column for (dropped) */
    uint64_t ddl;             /* cdc.ddl statements run */
    uint64_t skipped; /* events of a replayed range whose rows were all in ClickHouse already
                       * (the insert ledger, ledger.h): not inserted again */
} metrics;

/* One line: "consumed=… tombstones=… filtered=… dead_lettered=… events_inserted=…
 * rows_inserted=… retries=… [ddl=…] [unknown_columns=…] [skipped=…] seconds=…" (the bracketed ones
 * when not zero). consumed = tombstones + filtered + dead_lettered + events_inserted + skipped once
 * everything is flushed. */
void metrics_format_summary(const metrics *m, double seconds, char *out, size_t outlen);

/* Logs `progress: <summary>` (info) when interval_s > 0 and interval_s seconds have passed since
 * *last_ms (clock_ms(); updated); started_ms is when the run began. */
void metrics_log_progress(const metrics *m, long interval_s, int64_t started_ms, int64_t *last_ms);

#endif
