/*
 * pipeline — the main loop: consume → decode → transform → batch → insert → commit.
 *
 * Single-threaded. Events are handled in order per partition; rows go into per-table batches.
 * When any limit is reached (rows, bytes, age) every batch is inserted, and only when all
 * inserts are acknowledged are the partitions' offsets committed. The same flush runs before a
 * rebalance takes partitions away and at shutdown.
 */
#ifndef CDCPIPE_PIPELINE_H
#define CDCPIPE_PIPELINE_H

#include <signal.h>
#include <stdint.h>

#include "cdcpipe/config.h"
#include "cdcpipe/script.h"

typedef struct {
    uint64_t consumed;        /* Kafka records handed to the pipeline */
    uint64_t tombstones;      /* null values, skipped */
    uint64_t filtered;        /* transform returned nothing and emitted nothing */
    uint64_t dead_lettered;   /* bad events: decode or Lua errors (logged with their offset) */
    uint64_t events_inserted; /* events whose rows are all acknowledged by ClickHouse */
    uint64_t rows_inserted;
    uint64_t retries; /* insert attempts repeated after a transient failure */
} pipeline_counters;

/* Set by the signal handlers; the loop acts at the next iteration. */
extern volatile sig_atomic_t pipeline_stop_requested;
extern volatile sig_atomic_t pipeline_reload_requested;

/* Installs SIGINT/SIGTERM handlers: the first asks the loop to stop (flush, commit, exit 0);
 * a second one exits at once with status 130 and commits nothing more. SIGHUP reloads the
 * script at the next batch boundary. */
void pipeline_install_signal_handlers(void);

/* Runs the pipeline until stopped (or caught up, with cfg->once). Returns the process exit
 * status: 0 when everything consumed was inserted, dead-lettered or deliberately skipped and
 * committed, 1 on a runtime failure (logged), 2 on a configuration error found late. counters
 * receives the totals. *s is the script to run; after a reload (SIGHUP) it is the new one: the
 * caller closes *s either way. */
int pipeline_run(const config *cfg, script **s, pipeline_counters *counters);

/* One-line summary of counters and elapsed seconds, as printed at the end of a run. */
void pipeline_format_summary(const pipeline_counters *c, double seconds, char *out, size_t outlen);

#endif
