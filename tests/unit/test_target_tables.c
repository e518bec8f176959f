/*
 * test_target_tables — tests for target_parse_describe (include/cdcpipe/target_tables.h): a
 * `DESCRIBE TABLE … FORMAT TabSeparated` answer as 18.16 and 24.x+ print it into the insertable
 * columns a RowBinary layout is made of. (Asking the server, the fallback and its log lines:
 * tests/integration/test_rowbinary_pipeline.sh.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cdcpipe/target_tables.h"

/* The columns of answer as "name:type" joined with "|", or "error: <message>". */
static char *parse(const char *answer)
{
    target_column *cols;
    size_t n;
    char err[256];
    strbuf s = {0};
    strbuf_puts(&s, "");
    if (target_parse_describe(answer, strlen(answer), &cols, &n, err, sizeof err) != 0) {
        assert_null(cols);
        assert_int_equal(n, 0);
        strbuf_printf(&s, "error: %s", err);
        return s.data;
    }
    for (size_t i = 0; i < n; i++)
        strbuf_printf(&s, "%s%s:%s", i ? "|" : "", cols[i].name, cols[i].type);
    target_columns_free(cols, n);
    return s.data;
}

static void expect(const char *answer, const char *want)
{
    char *got = parse(answer);
    if (strcmp(got, want) != 0) fail_msg("for %s\ngot  %s\nwant %s", answer, got, want);
    free(got);
}

/* 18.16 prints name, type, default kind, default expression; newer servers add comment, codec,
 * TTL. Names and types are TSV-escaped (a quote in an Enum name as \', a tab as \t). */
static void test_columns(void **state)
{
    (void)state;
    expect("id\tUInt32\t\t\nname\tString\tDEFAULT\t'x'\n", "id:UInt32|name:String");
    expect("id\tUInt64\t\t\t\t\t\n"
           "mood\tEnum8(\\'it\\\\\\'s\\' = 1)\t\t\t\t\t\n"
           "a\\tb\tNullable(DateTime(\\'UTC\\'))\tDEFAULT\tnow()\tc\t\t\n",
           "id:UInt64|mood:Enum8('it\\'s' = 1)|a\tb:Nullable(DateTime('UTC'))");
    expect("", "");
}

/* MATERIALIZED and ALIAS columns cannot be inserted: they are left out; EPHEMERAL ones stay. */
static void test_computed_columns_left_out(void **state)
{
    (void)state;
    expect("id\tUInt32\t\t\n"
           "twice\tUInt64\tMATERIALIZED\tid * 2\n"
           "label\tString\tALIAS\ttoString(id)\n"
           "raw\tString\tEPHEMERAL\t\n"
           "d\tDate\tDEFAULT\ttoday()\n",
           "id:UInt32|raw:String|d:Date");
}

static void test_malformed(void **state)
{
    (void)state;
    expect("id\tUInt32\nbroken\n",
           "error: line 2 of the DESCRIBE TABLE answer has no type: \"broken\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_columns),
        cmocka_unit_test(test_computed_columns_left_out),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
