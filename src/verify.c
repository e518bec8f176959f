/*
 * verify — what the insert ledger says was delivered (see include/cdcpipe/verify.h).
 */
#include "cdcpipe/verify.h"

#include <stdlib.h>
#include <string.h>

#include "cdcpipe/clickhouse.h"
#include "cdcpipe/group_offsets.h"
#include "cdcpipe/ledger.h"
#include "cdcpipe/ledger_answer.h"
#include "cdcpipe/log.h"
#include "cdcpipe/strbuf.h"
#include "cdcpipe/xalloc.h"

static int by_place(const void *a, const void *b)
{
    const ledger_piece *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    if (c) return c;
    if (x->partition != y->partition) return x->partition < y->partition ? -1 : 1;
    c = strcmp(x->table, y->table);
    if (c) return c;
    return x->first < y->first ? -1 : x->first > y->first;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}
static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

int command_verify(const config *cfg, FILE *out)
{
    char err[1024];
    if (!ledger_enabled(cfg)) {
        fprintf(stderr, "cdcpipe: verify needs the insert ledger (--ledger is none)\n");
        return 2;
    }
    group_offsets g;
    if (group_offsets_open(&g, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "cdcpipe: %s\n", err);
        group_offsets_close(&g);
        return 2;
    }
    ch_client *ch = ch_connect(cfg, err, sizeof err);
    if (!ch) {
        fprintf(stderr, "cdcpipe: %s\n", err);
        group_offsets_close(&g);
        return 2;
    }
    strbuf sql = {0}, answer = {0};
    strbuf_puts(&sql, "SELECT topic, partition, first_offset, last_offset, state, insert_id, t, r "
                      "FROM ");
    ch_quote_table(&sql, cfg->database, cfg->ledger);
    strbuf_puts(&sql, " LEFT ARRAY JOIN tables AS t, rows AS r WHERE consumer_group = ");
    ledger_sql_string(&sql, cfg->group);
    strbuf_puts(&sql, " AND state IN ('done', 'recovered') FORMAT TabSeparated");
    ch_status st = ch_exec(ch, sql.data, &answer, NULL, err, sizeof err);
    if (st != CH_OK) {
        fprintf(stderr, "cdcpipe: cannot read the ledger %s: %s\n", cfg->ledger, err);
        strbuf_free(&sql);
        strbuf_free(&answer);
        ch_close(ch);
        group_offsets_close(&g);
        return 2;
    }
    size_t n;
    ledger_piece *pieces = ledger_parse_pieces(answer.data, &n);
    qsort(pieces, n, sizeof *pieces, by_place);

    size_t gaps = 0, overlaps = 0;
    bool from_beginning = strcmp(cfg->from, "beginning") == 0;
    for (size_t i = 0; i < g.count; i++) {
        group_partition *gp = &g.parts[i];
        /* ranges of this partition (any table), sorted by first offset */
        int64_t *first = NULL, *last = NULL;
        size_t nr = 0;
        uint64_t rows = 0;
        for (size_t k = 0; k < n; k++) {
            if (pieces[k].partition != gp->partition || strcmp(pieces[k].topic, gp->topic) != 0)
                continue;
            first = xrealloc(first, nr + 1, sizeof *first);
            last = xrealloc(last, nr + 1, sizeof *last);
            first[nr] = pieces[k].first;
            last[nr++] = pieces[k].last;
            rows += pieces[k].rows;
        }
        /* sort the ranges by first offset (insertion sort: a few hundred at most per run) */
        for (size_t a = 1; a < nr; a++)
            for (size_t b = a; b > 0 && first[b - 1] > first[b]; b--) {
                int64_t t = first[b];
                first[b] = first[b - 1];
                first[b - 1] = t;
                t = last[b];
                last[b] = last[b - 1];
                last[b - 1] = t;
            }
        int64_t start = from_beginning ? gp->low : nr ? first[0] : gp->committed;
        fprintf(out, "%s [%d]: committed %lld, ledger ranges %zu (offsets %lld-%lld), rows %llu\n",
                gp->topic, (int)gp->partition, (long long)gp->committed, nr,
                nr ? (long long)first[0] : -1LL, nr ? (long long)last[nr - 1] : -1LL,
                (unsigned long long)rows);
        /* gaps in [start, committed) */
        int64_t at = start;
        for (size_t a = 0; a < nr && gp->committed >= 0 && at < gp->committed; a++) {
            if (first[a] > at) {
                int64_t to = min64(first[a], gp->committed) - 1;
                fprintf(out,
                        "  GAP %s [%d] offsets %lld-%lld: %lld events below the committed "
                        "offset that no insert accounts for (lost)\n",
                        gp->topic, (int)gp->partition, (long long)at, (long long)to,
                        (long long)(to - at + 1));
                gaps++;
            }
            at = max64(at, last[a] + 1);
        }
        if (gp->committed >= 0 && at < gp->committed) {
            fprintf(out,
                    "  GAP %s [%d] offsets %lld-%lld: %lld events below the committed offset "
                    "that no insert accounts for (lost)\n",
                    gp->topic, (int)gp->partition, (long long)at, (long long)gp->committed - 1,
                    (long long)(gp->committed - at));
            gaps++;
        }
        free(first);
        free(last);
        /* overlaps per table: pieces are sorted by topic, partition, table, first */
        const ledger_piece *widest = NULL;
        for (size_t k = 0; k < n; k++) {
            const ledger_piece *pc = &pieces[k];
            if (pc->partition != gp->partition || strcmp(pc->topic, gp->topic) != 0 ||
                pc->rows == 0 || !pc->table[0])
                continue;
            if (widest && strcmp(widest->table, pc->table) == 0 && pc->first <= widest->last &&
                strcmp(widest->insert_id, pc->insert_id) != 0) {
                fprintf(out,
                        "  OVERLAP %s [%d] offsets %lld-%lld table %s: inserted by %s (%llu "
                        "rows for offsets %lld-%lld) and by %s (%llu rows for offsets "
                        "%lld-%lld): rows doubled\n",
                        gp->topic, (int)gp->partition, (long long)pc->first,
                        (long long)min64(pc->last, widest->last), pc->table, widest->insert_id,
                        (unsigned long long)widest->rows, (long long)widest->first,
                        (long long)widest->last, pc->insert_id, (unsigned long long)pc->rows,
                        (long long)pc->first, (long long)pc->last);
                overlaps++;
            }
            if (!widest || strcmp(widest->table, pc->table) != 0 || pc->last > widest->last)
                widest = pc;
        }
    }
    /* totals per table */
    char **tables = NULL;
    uint64_t *trows = NULL;
    size_t nt = 0;
    for (size_t k = 0; k < n; k++) {
        if (!pieces[k].table[0]) continue;
        size_t t = 0;
        while (t < nt && strcmp(tables[t], pieces[k].table) != 0)
            t++;
        if (t == nt) {
            tables = xrealloc(tables, nt + 1, sizeof *tables);
            trows = xrealloc(trows, nt + 1, sizeof *trows);
            tables[nt] = pieces[k].table;
            trows[nt++] = 0;
        }
        trows[t] += pieces[k].rows;
    }
    strbuf count = {0}; /* not answer: the pieces' strings point into it */
    for (size_t t = 0; t < nt; t++) {
        strbuf_reset(&sql);
        strbuf_reset(&count);
        strbuf_puts(&sql, "SELECT count() FROM ");
        ch_quote_table(&sql, cfg->database, tables[t]);
        if (ch_exec(ch, sql.data, &count, NULL, err, sizeof err) == CH_OK && count.data)
            fprintf(out, "table %s: ledger %llu rows, count() %lld\n", tables[t],
                    (unsigned long long)trows[t], atoll(count.data));
        else
            fprintf(out, "table %s: ledger %llu rows, count() unknown (%s)\n", tables[t],
                    (unsigned long long)trows[t], err);
    }
    fprintf(out, "verify: %zu partitions, %zu gaps, %zu overlaps\n", g.count, gaps, overlaps);
    free(tables);
    free(trows);
    free(pieces);
    strbuf_free(&sql);
    strbuf_free(&answer);
    strbuf_free(&count);
    ch_close(ch);
    group_offsets_close(&g);
    return gaps || overlaps ? 1 : 0;
}
