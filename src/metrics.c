/*
 * metrics — the run's counters, summary and progress line (see include/cdcpipe/metrics.h).
 */
#include "cdcpipe/metrics.h"

#include <stdio.h>
#include <string.h>

#include "cdcpipe/clock.h"
#include "cdcpipe/log.h"

void metrics_format_summary(const metrics *m, double seconds, char *out, size_t outlen)
{
    char extra[160] = "";
    if (m->ddl) snprintf(extra, sizeof extra, " ddl=%llu", (unsigned long long)m->ddl);
    if (m->unknown_columns)
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " unknown_columns=%llu",
                 (unsigned long long)m->unknown_columns);
    if (m->skipped) /* only after a replay (the insert ledger) */
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " skipped=%llu",
                 (unsigned long long)m->skipped);
    snprintf(out, outlen,
             "consumed=%llu tombstones=%llu filtered=%llu dead_lettered=%llu "
             "events_inserted=%llu rows_inserted=%llu retries=%llu%s seconds=%.2f",
             (unsigned long long)m->consumed, (unsigned long long)m->tombstones,
             (unsigned long long)m->filtered, (unsigned long long)m->dead_lettered,
             (unsigned long long)m->events_inserted, (unsigned long long)m->rows_inserted,
             (unsigned long long)m->retries, extra, seconds);
}

void metrics_log_progress(const metrics *m, long interval_s, int64_t started_ms, int64_t *last_ms)
{
    int64_t now = clock_ms();
    if (interval_s <= 0 || now - *last_ms < interval_s * 1000) return;
    char line[512];
    *last_ms = now;
    metrics_format_summary(m, (double)(now - started_ms) / 1000.0, line, sizeof line);
    log_info("progress: %s", line);
}
