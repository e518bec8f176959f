/*
 * test_ledger_answer — tests for the ledger's TabSeparated answers
 * (include/cdcpipe/ledger_answer.h, query_log_parse in include/cdcpipe/query_log.h, tsv.h):
 * recovery's rows into insert groups, verify's into pieces, the query log's ids. (Asking the
 * server: tests/integration/test_ledger.sh; arbitrary answers: tests/fuzz/fuzz_tsv.c.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cdcpipe/ledger_answer.h"
#include "cdcpipe/query_log.h"
#include "cdcpipe/strbuf.h"
#include "cdcpipe/tsv.h"
#include "cdcpipe/xalloc.h"

/* The groups of answer as "id first-last since flags [k:table=rows ...] {recovered tables}",
 * joined with "|". */
static char *groups(const char *answer)
{
    char *text = xstrdup(answer);
    insert_group *g;
    size_t n;
    ledger_parse_groups(text, &g, &n);
    strbuf s = {0};
    strbuf_puts(&s, "");
    for (size_t i = 0; i < n; i++) {
        strbuf_printf(&s, "%s%s %lld-%lld %lld %s%s%s", i ? "|" : "", g[i].id,
                      (long long)g[i].first, (long long)g[i].last, (long long)g[i].since,
                      g[i].intent ? "I" : "", g[i].done ? "D" : "", g[i].recovered ? "R" : "");
        for (size_t k = 0; k < g[i].nk; k++)
            strbuf_printf(&s, " %zu:%s=%llu", k + 1, g[i].ktable[k] ? g[i].ktable[k] : "(none)",
                          (unsigned long long)g[i].krows[k]);
        for (size_t k = 0; k < g[i].nr; k++)
            strbuf_printf(&s, " {%s}", g[i].rtables[k]);
        insert_group_free(&g[i]);
    }
    free(g);
    free(text);
    return s.data;
}

static void expect_groups(const char *answer, const char *want)
{
    char *got = groups(answer);
    if (strcmp(got, want) != 0) fail_msg("for %s\ngot  %s\nwant %s", answer, got, want);
    free(got);
}

/* One flush's rows: its intent and done rows (k from 1, one line per table), a flush of two
 * segments (same id, two ranges), an empty flush (k 0), names TSV-escaped. */
static void test_groups(void **state)
{
    (void)state;
    expect_groups("", "");
    expect_groups("f1\tintent\t0\t9\t100\t1\titems\t10\n"
                  "f1\tintent\t0\t9\t100\t2\tother\t3\n"
                  "f1\tdone\t0\t9\t101\t1\titems\t10\n"
                  "f1\tintent\t20\t29\t100\t1\titems\t5\n"
                  "f2\tdone\t10\t19\t102\t0\t\t0\n",
                  "f1 0-9 100 ID 1:items=10 2:other=3|f1 20-29 100 I 1:items=5|f2 10-19 102 D");
    /* k 3 without k 2 (the answer has 3 lines: k may be 3): a hole the caller fills; escapes
     * undone */
    expect_groups("f3\tintent\t5\t6\t1\t3\ta\\tb\\\\c\t7\n"
                  "f4\tdone\t0\t0\t1\t0\t\t0\n"
                  "f4\tdone\t0\t0\t1\t0\t\t0\n",
                  "f3 5-6 1 I 1:(none)=0 2:(none)=0 3:a\tb\\c=7|f4 0-0 1 D");
}

/* A recovered row keeps the tables that landed (with rows), once each. */
static void test_groups_recovered(void **state)
{
    (void)state;
    expect_groups("r1\trecovered\t0\t9\t5\t1\titems\t4\n"
                  "r1\trecovered\t0\t9\t5\t2\titems\t4\n"
                  "r1\trecovered\t0\t9\t5\t3\tempty\t0\n"
                  "r1\trecovered\t0\t9\t5\t4\tother\t1\n",
                  "r1 0-9 5 R {items} {other}");
}

/* Lines without 8 fields (an empty one too), or with a k larger than the answer's line count,
 * are not rows of the query: skipped. */
static void test_groups_malformed(void **state)
{
    (void)state;
    expect_groups("short\tdone\t0\n"
                  "f1\tdone\t0\t9\t1\t1\titems\t2\n"
                  "\n"
                  "f2\tdone\t10\t19\t1\t1\titems\t2\n"
                  "f3\tdone\t20\t29\t1\t1000000000000\titems\t2\n",
                  "f1 0-9 1 D 1:items=2|f2 10-19 1 D 1:items=2");
}

static void test_pieces(void **state)
{
    (void)state;
    char text[] = "orders\t3\t100\t199\tdone\tab.1\titems\t42\n"
                  "orders\t0\t5\t9\trecovered\tcd\t\t0\n"
                  "short\t1\n"
                  "orders\t1\t0\t0\tdone\tef\tdb.a\\tb\\\\c\t1\n";
    size_t n;
    ledger_piece *p = ledger_parse_pieces(text, &n);
    assert_int_equal(n, 4);
    assert_string_equal(p[0].topic, "orders");
    assert_int_equal(p[0].partition, 3);
    assert_int_equal(p[0].first, 100);
    assert_int_equal(p[0].last, 199);
    assert_string_equal(p[0].state, "done");
    assert_string_equal(p[0].insert_id, "ab.1");
    assert_string_equal(p[0].table, "items");
    assert_int_equal(p[0].rows, 42);
    assert_string_equal(p[1].state, "recovered");
    assert_string_equal(p[1].table, "");
    assert_string_equal(p[2].topic, "short");
    assert_int_equal(p[2].partition, 1);
    assert_string_equal(p[2].table, "");
    assert_int_equal(p[2].rows, 0);
    assert_string_equal(p[3].table, "db.a\tb\\c"); /* TSV-escaped, as recovery reads it */
    free(p);
    assert_null(ledger_parse_pieces(NULL, &n));
    assert_int_equal(n, 0);
}

static void test_query_log(void **state)
{
    (void)state;
    char text[] = "a.1\t1\na.1.0\t0\nno tab\na.2\t0";
    ql_result r = {0};
    query_log_parse(text, &r);
    assert_int_equal(r.count, 3);
    assert_true(query_log_finished(&r, "a.1"));
    assert_false(query_log_finished(&r, "a.2"));
    assert_false(query_log_finished(&r, "a.1.0"));
    assert_false(query_log_some_below_finished(&r, "a.1"));
    assert_false(query_log_finished(&r, "no tab"));
    query_log_result_free(&r);
}

static void test_unescape(void **state)
{
    (void)state;
    char s[] = "a\\tb\\nc\\rd\\be\\ff\\\\g\\'h\\xi\\";
    tsv_unescape(s);
    assert_string_equal(s, "a\tb\nc\rd\be\ff\\g'hxi\\");
    char z[] = "x\\0y";
    tsv_unescape(z);
    assert_int_equal(memcmp(z, "x\0y", 4), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups),           cmocka_unit_test(test_groups_recovered),
        cmocka_unit_test(test_groups_malformed), cmocka_unit_test(test_pieces),
        cmocka_unit_test(test_query_log),        cmocka_unit_test(test_unescape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
