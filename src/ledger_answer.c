/*
 * ledger_answer — the ledger's rows as ClickHouse answers them (see
 * include/cdcpipe/ledger_answer.h).
 */
#include "cdcpipe/ledger_answer.h"

#include <stdlib.h>
#include <string.h>

#include "cdcpipe/tsv.h"
#include "cdcpipe/xalloc.h"

bool ledger_names_have(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return true;
    return false;
}

void insert_group_free(insert_group *g)
{
    free(g->id);
    for (size_t k = 0; k < g->nk; k++)
        free(g->ktable[k]);
    free(g->ktable);
    free(g->krows);
    for (size_t k = 0; k < g->nr; k++)
        free(g->rtables[k]);
    free(g->rtables);
}

/* Parses one line of the recovery query into the groups; max_k: the answer's line count. */
static void take_line(char *line, size_t max_k, insert_group **groups, size_t *ngroups)
{
    char *f[8];
    size_t n = 0;
    for (char *p = line; n < 8; n++) {
        f[n] = p;
        char *tab = strchr(p, '\t');
        if (!tab) {
            n++;
            break;
        }
        *tab = '\0';
        p = tab + 1;
    }
    if (n != 8) return;
    for (size_t i = 0; i < 8; i++)
        tsv_unescape(f[i]);
    long long kk = atoll(f[5]); /* from 1; 0: no tables (LEFT ARRAY JOIN of an empty array) */
    if (kk > 0 && (unsigned long long)kk > max_k) return; /* k tables take k lines */
    /* insert_id state first last since k table rows */
    insert_group *g = NULL;
    int64_t first = atoll(f[2]);
    for (size_t i = 0; i < *ngroups; i++) /* one flush, one segment of the partition */
        if (strcmp((*groups)[i].id, f[0]) == 0 && (*groups)[i].first == first) g = &(*groups)[i];
    if (!g) {
        *groups = xrealloc(*groups, *ngroups + 1, sizeof **groups);
        g = &(*groups)[(*ngroups)++];
        memset(g, 0, sizeof *g);
        g->id = xstrdup(f[0]);
        g->first = atoll(f[2]);
        g->last = atoll(f[3]);
        g->since = atoll(f[4]);
    }
    size_t k = kk > 0 ? (size_t)(kk - 1) : 0;
    uint64_t rows = strtoull(f[7], NULL, 10);
    if (strcmp(f[1], "recovered") == 0) {
        g->recovered = true;
        if (kk > 0 && rows > 0 && !ledger_names_have(g->rtables, g->nr, f[6])) {
            g->rtables = xrealloc(g->rtables, g->nr + 1, sizeof *g->rtables);
            g->rtables[g->nr++] = xstrdup(f[6]);
        }
        return;
    }
    if (strcmp(f[1], "done") == 0) g->done = true;
    if (strcmp(f[1], "intent") == 0) g->intent = true;
    if (kk <= 0) return;
    if (k >= g->nk) {
        g->ktable = xrealloc(g->ktable, k + 1, sizeof *g->ktable);
        g->krows = xrealloc(g->krows, k + 1, sizeof *g->krows);
        for (size_t i = g->nk; i <= k; i++) {
            g->ktable[i] = NULL;
            g->krows[i] = 0;
        }
        g->nk = k + 1;
    }
    if (!g->ktable[k]) g->ktable[k] = xstrdup(f[6]);
    g->krows[k] = rows;
}

void ledger_parse_groups(char *answer, insert_group **groups, size_t *ngroups)
{
    *groups = NULL;
    *ngroups = 0;
    size_t lines = 1;
    for (const char *c = answer; c && *c; c++)
        lines += *c == '\n';
    for (char *line; (line = tsv_line(&answer));)
        take_line(line, lines, groups, ngroups);
}

ledger_piece *ledger_parse_pieces(char *answer, size_t *npieces)
{
    ledger_piece *pieces = NULL;
    size_t n = 0;
    for (char *line; (line = tsv_line(&answer));) {
        ledger_piece pc;
        pc.topic = tsv_field(&line);
        pc.partition = atoi(tsv_field(&line));
        pc.first = atoll(tsv_field(&line));
        pc.last = atoll(tsv_field(&line));
        pc.state = tsv_field(&line);
        pc.insert_id = tsv_field(&line);
        pc.table = tsv_field(&line);
        pc.rows = strtoull(tsv_field(&line), NULL, 10);
        tsv_unescape(pc.topic); /* as recovery does: a table name may hold a tab or a backslash */
        tsv_unescape(pc.state);
        tsv_unescape(pc.insert_id);
        tsv_unescape(pc.table);
        pieces = xrealloc(pieces, n + 1, sizeof *pieces);
        pieces[n++] = pc;
    }
    *npieces = n;
    return pieces;
}
