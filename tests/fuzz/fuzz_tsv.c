/*
 * fuzz_tsv — the parsers of ClickHouse's TabSeparated answers: tsv.c (unescaping, lines, fields),
 * the ledger's answers (ledger_answer.c: recovery's insert groups, verify's pieces), the query
 * log's (query_log_parse) and DESCRIBE TABLE's (target_parse_describe). Each input is used twice:
 *   - as an answer, given to every parser as it is: no crash, leak or allocation beyond the
 *     answer's size, and what comes back is consistent (group ids unique per first offset, at
 *     most as many groups, pieces, ids or columns as lines);
 *   - as the fields of rows (split at 0x1F, 8 per row): each field escaped as ClickHouse does,
 *     the rows joined into an answer, which must read back as those fields (tsv_unescape undoes
 *     the escaping byte for byte; the ledger parsers return the same strings, a NUL ending them).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

#include "cdcpipe/ledger_answer.h"
#include "cdcpipe/query_log.h"
#include "cdcpipe/strbuf.h"
#include "cdcpipe/target_tables.h"
#include "cdcpipe/tsv.h"
#include "cdcpipe/xalloc.h"

#define FIELDS 8
#define SEP    0x1F

/* data[0..size) as a NUL-terminated copy. */
static char *copy(const void *data, size_t size)
{
    char *s = xmalloc(size + 1);
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (*s == '\n') n++;
    return n + 1;
}

/* The input as an answer, as it is. */
static void parse_raw(const uint8_t *data, size_t size)
{
    char *text = copy(data, size);
    size_t lines = count_lines(text);

    char *s = copy(text, strlen(text));
    insert_group *g;
    size_t ng;
    ledger_parse_groups(s, &g, &ng);
    if (ng > lines) fuzz_fail("more groups than lines");
    for (size_t i = 0; i < ng; i++) {
        if (!g[i].id) fuzz_fail("a group without id");
        if (g[i].nk > lines || g[i].nr > lines) fuzz_fail("a group with more tables than lines");
        for (size_t j = 0; j < i; j++)
            if (g[j].first == g[i].first && strcmp(g[j].id, g[i].id) == 0)
                fuzz_fail("two groups of one id and first offset");
    }
    for (size_t i = 0; i < ng; i++)
        insert_group_free(&g[i]);
    free(g);
    free(s);

    s = copy(text, strlen(text));
    size_t np;
    ledger_piece *p = ledger_parse_pieces(s, &np);
    if (np > lines) fuzz_fail("more pieces than lines");
    for (size_t i = 0; i < np; i++)
        if (!p[i].topic || !p[i].state || !p[i].insert_id || !p[i].table)
            fuzz_fail("a piece without a field");
    free(p);
    free(s);

    s = copy(text, strlen(text));
    ql_result r = {0};
    query_log_parse(s, &r);
    if (r.count > lines) fuzz_fail("more query ids than lines");
    for (size_t i = 0; i < r.count; i++)
        if (r.finished[i] && !query_log_finished(&r, r.ids[i]))
            fuzz_fail("a finished id not found");
    query_log_result_free(&r);
    free(s);

    target_column *cols;
    size_t nc;
    char err[256];
    if (target_parse_describe((const char *)data, size, &cols, &nc, err, sizeof err) == 0) {
        if (nc > lines) fuzz_fail("more columns than lines");
        for (size_t i = 0; i < nc; i++)
            if (!cols[i].name || !cols[i].type) fuzz_fail("a column without name or type");
        target_columns_free(cols, nc);
    } else if (cols || nc || !err[0]) {
        fuzz_fail("a refused DESCRIBE answer without a message, or with columns");
    }

    s = copy(text, strlen(text));
    size_t len = strlen(s);
    tsv_unescape(s);
    if (strlen(s) > len) fuzz_fail("unescaping made text longer");
    free(s);
    free(text);
}

/* Appends f[0..len) escaped as ClickHouse's TabSeparated output escapes it. */
static void escape(strbuf *out, const uint8_t *f, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        const char *e = NULL;
        switch (f[i]) {
        case '\\':
            e = "\\\\";
            break;
        case '\t':
            e = "\\t";
            break;
        case '\n':
            e = "\\n";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\b':
            e = "\\b";
            break;
        case '\f':
            e = "\\f";
            break;
        case '\0':
            e = "\\0";
            break;
        case '\'':
            e = "\\'";
            break;
        }
        if (e)
            strbuf_puts(out, e);
        else
            strbuf_putc(out, (char)f[i]);
    }
}

typedef struct {
    const uint8_t *data;
    size_t len;
    char *text; /* the field as a C string: up to its first NUL */
} field;

/* The input as fields of rows: escaped, joined, read back. */
static void round_trip(const uint8_t *data, size_t size)
{
    size_t nf = 1;
    for (size_t i = 0; i < size; i++)
        if (data[i] == SEP) nf++;
    size_t nrows = (nf + FIELDS - 1) / FIELDS;
    field *f = xcalloc(nrows * FIELDS, sizeof *f);
    for (size_t i = 0, at = 0, start = 0; i <= size; i++)
        if (i == size || data[i] == SEP) {
            f[at].data = data + start;
            f[at].len = i - start;
            at++;
            start = i + 1;
        }
    strbuf answer = {0};
    strbuf_puts(&answer, "");
    for (size_t i = 0; i < nrows * FIELDS; i++) {
        f[i].text = copy(f[i].data, f[i].len);
        /* one field alone: unescaping undoes the escaping, byte for byte */
        strbuf one = {0};
        strbuf_puts(&one, "");
        escape(&one, f[i].data, f[i].len);
        tsv_unescape(one.data);
        if ((f[i].len && memcmp(one.data, f[i].data, f[i].len) != 0) || one.data[f[i].len])
            fuzz_fail("tsv_unescape does not undo the escaping");
        strbuf_free(&one);
        escape(&answer, f[i].data, f[i].len);
        strbuf_putc(&answer, (i + 1) % FIELDS ? '\t' : '\n');
    }

    /* verify's columns: topic, partition, first, last, state, insert_id, table, rows */
    char *s = copy(answer.data, answer.len);
    size_t np;
    ledger_piece *p = ledger_parse_pieces(s, &np);
    if (np != nrows) fuzz_fail("pieces: not one per row");
    for (size_t r = 0; r < nrows; r++) {
        const field *row = f + r * FIELDS;
        if (strcmp(p[r].topic, row[0].text) != 0 || strcmp(p[r].state, row[4].text) != 0 ||
            strcmp(p[r].insert_id, row[5].text) != 0 || strcmp(p[r].table, row[6].text) != 0)
            fuzz_fail("pieces: a field does not read back");
    }
    free(p);
    free(s);

    /* recovery's columns: insert_id, state, first, last, since, k, table, rows */
    s = copy(answer.data, answer.len);
    insert_group *g;
    size_t ng;
    ledger_parse_groups(s, &g, &ng);
    for (size_t r = 0; r < nrows; r++) {
        const field *row = f + r * FIELDS;
        long long k = atoll(row[5].text);
        if (k > (long long)nrows) continue; /* not a row of the query: no array is that long */
        const insert_group *it = NULL;
        for (size_t i = 0; i < ng && !it; i++)
            if (strcmp(g[i].id, row[0].text) == 0 && g[i].first == atoll(row[2].text)) it = &g[i];
        if (!it) fuzz_fail("groups: a row without its group");
        const char *state = row[1].text;
        if (strcmp(state, "recovered") == 0) {
            if (!it->recovered) fuzz_fail("groups: a recovered row not marked");
            if (k > 0 && strtoull(row[7].text, NULL, 10) > 0 &&
                !ledger_names_have(it->rtables, it->nr, row[6].text))
                fuzz_fail("groups: a recovered table missing");
            continue;
        }
        if ((strcmp(state, "done") == 0 && !it->done) ||
            (strcmp(state, "intent") == 0 && !it->intent))
            fuzz_fail("groups: a state not marked");
        if (k > 0 && ((size_t)k > it->nk || !it->ktable[k - 1]))
            fuzz_fail("groups: an INSERT's table missing");
    }
    for (size_t i = 0; i < ng; i++)
        insert_group_free(&g[i]);
    free(g);
    free(s);

    for (size_t i = 0; i < nrows * FIELDS; i++)
        free(f[i].text);
    free(f);
    strbuf_free(&answer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_raw(data, size);
    round_trip(data, size);
    return 0;
}
