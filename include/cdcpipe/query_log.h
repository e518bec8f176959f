/*
 * query_log — whether INSERTs sent with a query_id (ch_set_query_id) finished, from ClickHouse's
 * system.query_log: the ledger's way to learn, after a crash or a lost answer, which inserts
 * landed (ledger.h).
 *
 * A lookup asks system.processes first (an insert still running may yet finish: the caller waits
 * and asks again), then runs SYSTEM FLUSH LOGS and reads system.query_log for the query id and
 * every id below it ("<id>.<k>": the inserter's narrowing slices). SQL that ClickHouse 18.16 and
 * current releases both accept: `type` is compared as text ('2' on 18.16, 'QueryFinish' later).
 * @locality: the caller's thread (its own ClickHouse client).
 */
#ifndef CDCPIPE_QUERY_LOG_H
#define CDCPIPE_QUERY_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdcpipe/clickhouse.h"

typedef enum {
    QL_OK,          /* answered: see the result */
    QL_RUNNING,     /* a query with that id (or one below it) still runs: ask again later */
    QL_TRANSIENT,   /* ClickHouse unreachable or overloaded: ask again later */
    QL_UNAVAILABLE, /* no system.query_log, or no right to read or flush it */
} ql_status;

typedef struct {
    char **ids;     /* query ids that appear in the log... */
    bool *finished; /* ...and whether each finished (QueryFinish) */
    size_t count;
} ql_result;

/* Looks up `id` and the ids that start with "<id>." logged on or after since_unix - 1 day.
 * err says why on QL_TRANSIENT and QL_UNAVAILABLE. */
ql_status query_log_lookup(ch_client *ch, const char *id, int64_t since_unix, ql_result *out,
                           char *err, size_t errlen);

/* Adds the lines "<query id>\t<0|1>" of the query_log answer (split in place; lines without a
 * tab are skipped) to out (zeroed or filled before). */
void query_log_parse(char *answer, ql_result *out);

/* Whether `id` is in r and finished. */
bool query_log_finished(const ql_result *r, const char *id);
/* Whether some id "<id>.<k>..." below id finished (a narrowing slice landed). */
bool query_log_some_below_finished(const ql_result *r, const char *id);

void query_log_result_free(ql_result *r);

#endif
