/*
 * query_log — did an INSERT with a query_id finish? (see include/cdcpipe/query_log.h)
 */
#include "cdcpipe/query_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdcpipe/errbuf.h"
#include "cdcpipe/strbuf.h"
#include "cdcpipe/tsv.h"
#include "cdcpipe/xalloc.h"

/* The WHERE condition for id and the ids below it (ids are [A-Za-z0-9._-]: no quoting needed). */
static void id_condition(strbuf *sql, const char *id)
{
    strbuf_printf(sql, "(query_id = '%s' OR substring(query_id, 1, %zu) = '%s.')", id,
                  strlen(id) + 1, id);
}

static ql_status classify(ch_status st, const ch_failure *f)
{
    if (st == CH_TRANSIENT) return QL_TRANSIENT;
    /* 60 UNKNOWN_TABLE (no query_log configured), access refused, or anything else permanent */
    (void)f;
    return QL_UNAVAILABLE;
}

void query_log_parse(char *answer, ql_result *out)
{
    for (char *line; (line = tsv_line(&answer));) {
        char *tab = strchr(line, '\t');
        if (tab) {
            *tab = '\0';
            out->ids = xrealloc(out->ids, out->count + 1, sizeof *out->ids);
            out->finished = xrealloc(out->finished, out->count + 1, sizeof *out->finished);
            out->ids[out->count] = xstrdup(line);
            out->finished[out->count++] = atoi(tab + 1) != 0;
        }
    }
}

ql_status query_log_lookup(ch_client *ch, const char *id, int64_t since_unix, ql_result *out,
                           char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    strbuf sql = {0}, answer = {0};
    ch_failure f;
    strbuf_puts(&sql, "SELECT count() FROM system.processes WHERE ");
    id_condition(&sql, id);
    ch_status st = ch_exec(ch, sql.data, &answer, &f, err, errlen);
    ql_status rc = QL_OK;
    if (st != CH_OK) {
        rc = classify(st, &f);
        goto done;
    }
    if (answer.data && atol(answer.data) > 0) {
        rc = QL_RUNNING;
        goto done;
    }
    st = ch_exec(ch, "SYSTEM FLUSH LOGS", NULL, &f, err, errlen);
    if (st != CH_OK) {
        rc = classify(st, &f);
        goto done;
    }
    strbuf_reset(&sql);
    strbuf_reset(&answer);
    strbuf_printf(&sql,
                  "SELECT query_id, max(toString(type) IN ('2', 'QueryFinish')) FROM "
                  "system.query_log WHERE event_date >= toDate(toDateTime(%lld)) - 1 AND ",
                  (long long)since_unix);
    id_condition(&sql, id);
    strbuf_puts(&sql, " GROUP BY query_id FORMAT TabSeparated");
    st = ch_exec(ch, sql.data, &answer, &f, err, errlen);
    if (st != CH_OK) {
        rc = classify(st, &f);
        goto done;
    }
    query_log_parse(answer.data, out);
done:
    strbuf_free(&sql);
    strbuf_free(&answer);
    return rc;
}

bool query_log_finished(const ql_result *r, const char *id)
{
    for (size_t i = 0; i < r->count; i++)
        if (r->finished[i] && strcmp(r->ids[i], id) == 0) return true;
    return false;
}

bool query_log_some_below_finished(const ql_result *r, const char *id)
{
    size_t len = strlen(id);
    for (size_t i = 0; i < r->count; i++)
        if (r->finished[i] && strncmp(r->ids[i], id, len) == 0 && r->ids[i][len] == '.')
            return true;
    return false;
}

void query_log_result_free(ql_result *r)
{
    for (size_t i = 0; i < r->count; i++)
        free(r->ids[i]);
    free(r->ids);
    free(r->finished);
    memset(r, 0, sizeof *r);
}
