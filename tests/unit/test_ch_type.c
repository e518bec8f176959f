/*
 * test_ch_type — tests for src/ch_type.c (include/cdcpipe/ch_type.h).
 *
 * Table-driven: a type text as DESCRIBE TABLE prints it (18.16 and 24.x forms, plus spellings
 * a user may write), and the canonical text ch_type_format gives back, which must parse again to
 * the same text. Then the tree's fields for the types whose details the encoder reads, and the
 * exact messages of invalid and unsupported types.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cdcpipe/ch_type.h"
#include "cdcpipe/strbuf.h"

/* Parses text (must succeed), checks the canonical text, and that it parses to itself. */
static ch_type *parse_ok(const char *text, const char *canonical)
{
    ch_type *t = NULL;
    char err[512] = "";
    int rc = ch_type_parse(text, strlen(text), &t, err, sizeof err);
    if (rc != CH_TYPE_OK) fail_msg("%s: rc %d: %s", text, rc, err);
    strbuf b = {0};
    ch_type_format(t, &b);
    if (strcmp(b.data, canonical) != 0)
        fail_msg("%s: formatted as %s, want %s", text, b.data, canonical);
    ch_type *again = NULL;
    assert_int_equal(ch_type_parse(b.data, b.len, &again, err, sizeof err), CH_TYPE_OK);
    strbuf b2 = {0};
    ch_type_format(again, &b2);
    assert_string_equal(b2.data, canonical);
    ch_type_free(again);
    strbuf_free(&b);
    strbuf_free(&b2);
    return t;
}

static void test_canonical_texts(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"Int8", "Int8"},
        {"Int16", "Int16"},
        {"Int32", "Int32"},
        {"Int64", "Int64"},
        {"Int128", "Int128"},
        {"Int256", "Int256"},
        {"UInt8", "UInt8"},
        {"UInt16", "UInt16"},
        {"UInt32", "UInt32"},
        {"UInt64", "UInt64"},
        {"UInt128", "UInt128"},
        {"UInt256", "UInt256"},
        {"Float32", "Float32"},
        {"Float64", "Float64"},
        {"Bool", "Bool"},
        {"String", "String"},
        {"FixedString(16)", "FixedString(16)"},
        {"Date", "Date"},
        {"Date32", "Date32"},
        {"DateTime", "DateTime"},
        {"DateTime('UTC')", "DateTime('UTC')"},
        {"DateTime('Europe/Berlin')", "DateTime('Europe/Berlin')"},
        {"DateTime64(3)", "DateTime64(3)"},
        {"DateTime64(6, 'UTC')", "DateTime64(6, 'UTC')"},
        {"DateTime64(9,'Asia/Tokyo')", "DateTime64(9, 'Asia/Tokyo')"},
        {"Decimal(10, 3)", "Decimal(10, 3)"},
        {"Decimal(10)", "Decimal(10, 0)"},
        {"Decimal32(2)", "Decimal(9, 2)"},
        {"Decimal64(4)", "Decimal(18, 4)"},
        {"Decimal128(10)", "Decimal(38, 10)"},
        {"Decimal256(20)", "Decimal(76, 20)"},
        {"Decimal(76, 76)", "Decimal(76, 76)"},
        {"UUID", "UUID"},
        {"IPv4", "IPv4"},
        {"IPv6", "IPv6"},
        {"Enum8('a' = 1, 'b' = 2)", "Enum8('a' = 1, 'b' = 2)"},
        {"Enum8('q\"' = -3, 'it\\'s' = 1, 'b\\\\c' = 2)",
         "Enum8('q\"' = -3, 'it\\'s' = 1, 'b\\\\c' = 2)"},
        {"Enum8('it''s'=1)", "Enum8('it\\'s' = 1)"},
        {"Enum16('x' = -32768, 'y' = 32767)", "Enum16('x' = -32768, 'y' = 32767)"},
        {"Enum8('\\n\\t\\x41\\0' = 0)", "Enum8('\\x0A\\x09A\\x00' = 0)"},
        {"LowCardinality(String)", "LowCardinality(String)"},
        {"LowCardinality(Nullable(String))", "LowCardinality(Nullable(String))"},
        {"Nullable(Decimal(38, 5))", "Nullable(Decimal(38, 5))"},
        {"Array(Nullable(Decimal(38, 5)))", "Array(Nullable(Decimal(38, 5)))"},
        {"Array(Array(UInt8))", "Array(Array(UInt8))"},
        {"Map(String, UInt64)", "Map(String, UInt64)"},
        {"Map(LowCardinality(String), Array(Int32))", "Map(LowCardinality(String), Array(Int32))"},
        {"Tuple(Date, DateTime)", "Tuple(Date, DateTime)"},
        {"Tuple(a Int8, b String)", "Tuple(a Int8, b String)"},
        {"Tuple(\n    a Int8,\n    b Nullable(String))", "Tuple(a Int8, b Nullable(String))"},
        {"Tuple(`a b` Int8, `x\\`y` String)", "Tuple(`a b` Int8, `x\\`y` String)"},
        {"Tuple(String String)", "Tuple(String String)"},
        {"Tuple()", "Tuple()"},
        {"DateTime('')", "DateTime('')"},
        {"Tuple(`` Int8)", "Tuple(`` Int8)"},
        {"Nested(x UInt8, y String)", "Array(Tuple(x UInt8, y String))"},
        {"  Array ( Int8 )  ", "Array(Int8)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ch_type_free(parse_ok(cases[i][0], cases[i][1]));
}

static void test_tree_fields(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        unsigned size, precision, scale;
    } decimals[] = {
        {"Decimal(1, 0)", 4, 1, 0},    {"Decimal(9, 9)", 4, 9, 9},
        {"Decimal(10, 2)", 8, 10, 2},  {"Decimal(18, 0)", 8, 18, 0},
        {"Decimal(19, 4)", 16, 19, 4}, {"Decimal(38, 38)", 16, 38, 38},
        {"Decimal(39, 1)", 32, 39, 1}, {"Decimal(76, 10)", 32, 76, 10},
        {"Decimal32(3)", 4, 9, 3},     {"Decimal64(3)", 8, 18, 3},
        {"Decimal128(3)", 16, 38, 3},  {"Decimal256(3)", 32, 76, 3},
    };
    for (size_t i = 0; i < sizeof decimals / sizeof decimals[0]; i++) {
        ch_type *t = NULL;
        assert_int_equal(ch_type_parse(decimals[i].text, strlen(decimals[i].text), &t, NULL, 0),
                         CH_TYPE_OK);
        assert_int_equal(t->kind, CH_DECIMAL);
        assert_int_equal(t->size, decimals[i].size);
        assert_int_equal(t->precision, decimals[i].precision);
        assert_int_equal(t->scale, decimals[i].scale);
        ch_type_free(t);
    }

    ch_type *t = parse_ok("Enum8('it\\'s' = 1, '' = -128, 'a\\0b' = 127)",
                          "Enum8('it\\'s' = 1, '' = -128, 'a\\x00b' = 127)");
    assert_int_equal(t->kind, CH_ENUM8);
    assert_int_equal(t->nitems, 3);
    assert_int_equal(t->items[0].name_len, 4);
    assert_memory_equal(t->items[0].name, "it's", 4);
    assert_int_equal(t->items[0].value, 1);
    assert_int_equal(t->items[1].name_len, 0);
    assert_int_equal(t->items[1].value, -128);
    assert_int_equal(t->items[2].name_len, 3);
    assert_memory_equal(t->items[2].name, "a\0b", 3);
    ch_type_free(t);

    t = parse_ok("DateTime64(6, 'Etc/GMT-3')", "DateTime64(6, 'Etc/GMT-3')");
    assert_int_equal(t->kind, CH_DATETIME64);
    assert_int_equal(t->scale, 6);
    assert_string_equal(t->timezone, "Etc/GMT-3");
    ch_type_free(t);

    t = parse_ok("DateTime", "DateTime");
    assert_null(t->timezone);
    ch_type_free(t);

    t = parse_ok("FixedString(3)", "FixedString(3)");
    assert_int_equal(t->kind, CH_FIXED_STRING);
    assert_int_equal(t->size, 3);
    ch_type_free(t);

    t = parse_ok("Map(String, Nullable(UInt8))", "Map(String, Nullable(UInt8))");
    assert_int_equal(t->kind, CH_MAP);
    assert_int_equal(t->nchildren, 2);
    assert_int_equal(t->children[0]->kind, CH_STRING);
    assert_int_equal(t->children[1]->kind, CH_NULLABLE);
    assert_int_equal(t->children[1]->children[0]->kind, CH_UINT8);
    ch_type_free(t);

    t = parse_ok("Tuple(a Int8, b String)", "Tuple(a Int8, b String)");
    assert_int_equal(t->kind, CH_TUPLE);
    assert_int_equal(t->nchildren, 2);
    assert_non_null(t->names);
    assert_string_equal(t->names[0], "a");
    assert_string_equal(t->names[1], "b");
    ch_type_free(t);

    t = parse_ok("Tuple(Int8, String)", "Tuple(Int8, String)");
    assert_null(t->names);
    ch_type_free(t);

    t = parse_ok("Nested(x UInt8)", "Array(Tuple(x UInt8))");
    assert_int_equal(t->kind, CH_ARRAY);
    assert_int_equal(t->children[0]->kind, CH_TUPLE);
    assert_string_equal(t->children[0]->names[0], "x");
    ch_type_free(t);
}

/* The exact message (and result) of a type that does not parse. */
static void expect_error(const char *text, int want_rc, const char *want_err)
{
    ch_type *t = (ch_type *)1;
    char err[512] = "";
    int rc = ch_type_parse(text, strlen(text), &t, err, sizeof err);
    if (rc != want_rc || strcmp(err, want_err) != 0)
        fail_msg("%s: rc %d, err \"%s\"; want rc %d, \"%s\"", text, rc, err, want_rc, want_err);
    assert_null(t);
}

static void test_unsupported(void **state)
{
    (void)state;
    expect_error("AggregateFunction(sum, UInt64)", CH_TYPE_UNSUPPORTED,
                 "unsupported ClickHouse type \"AggregateFunction(sum, UInt64)\": "
                 "AggregateFunction is not covered by the RowBinary encoder");
    expect_error("SimpleAggregateFunction(sum, UInt64)", CH_TYPE_UNSUPPORTED,
                 "unsupported ClickHouse type \"SimpleAggregateFunction(sum, UInt64)\": "
                 "SimpleAggregateFunction is not covered by the RowBinary encoder");
    expect_error("Array(JSON)", CH_TYPE_UNSUPPORTED,
                 "unsupported ClickHouse type \"Array(JSON)\": JSON is not covered by the "
                 "RowBinary encoder");
    expect_error("Map(String, Variant(UInt8, String))", CH_TYPE_UNSUPPORTED,
                 "unsupported ClickHouse type \"Map(String, Variant(UInt8, String))\": Variant is "
                 "not covered by the RowBinary encoder");
    expect_error("Tuple(a Dynamic)", CH_TYPE_UNSUPPORTED,
                 "unsupported ClickHouse type \"Tuple(a Dynamic)\": Dynamic is not covered by "
                 "the RowBinary encoder");
    expect_error("Object('json')", CH_TYPE_UNSUPPORTED,
                 "unsupported ClickHouse type \"Object('json')\": Object is not covered by the "
                 "RowBinary encoder");
    expect_error("Nullable(Nothing)", CH_TYPE_UNSUPPORTED,
                 "unsupported ClickHouse type \"Nullable(Nothing)\": Nothing is not covered by "
                 "the RowBinary encoder");
    expect_error("Time64(3)", CH_TYPE_UNSUPPORTED,
                 "unsupported ClickHouse type \"Time64(3)\": Time64 is not covered by the "
                 "RowBinary encoder");
    expect_error("int", CH_TYPE_UNSUPPORTED,
                 "unsupported ClickHouse type \"int\": int is not covered by the RowBinary "
                 "encoder");
}

static void test_invalid(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"", "a type name expected at offset 0"},
        {"Array(", "a type name expected at offset 6"},
        {"Array(Int8", "')' expected at offset 10"},
        {"Array(Int8))", "unexpected text at offset 11"},
        {"Int8 Int8", "unexpected text at offset 5"},
        {"FixedString", "'(' expected at offset 11"},
        {"FixedString(0)", "FixedString(0)"},
        {"FixedString(16777216)", "a FixedString length greater than 16777215 at offset 12"},
        {"FixedString(x)", "a FixedString length expected at offset 12"},
        {"Decimal(0, 0)", "Decimal precision 0"},
        {"Decimal(77, 0)", "a Decimal precision greater than 76 at offset 8"},
        {"Decimal(10, 11)", "a Decimal scale greater than 10 at offset 12"},
        {"Decimal32(10)", "a Decimal scale greater than 9 at offset 10"},
        {"DateTime64(10)", "a DateTime64 precision greater than 9 at offset 11"},
        {"DateTime64", "'(' expected at offset 10"},
        {"DateTime(UTC)", "a time zone in ' quotes expected at offset 9"},
        {"DateTime('UTC)", "a time zone without its closing quote at offset 9"},
        {"DateTime('a\\0b')", "a time zone with a NUL byte at offset 9"},
        {"Enum8()", "an Enum name in ' quotes expected at offset 6"},
        {"Enum8('a' = 128)", "Enum value 128 outside -128..127"},
        {"Enum8('a' = -129)", "Enum value -129 outside -128..127"},
        {"Enum16('a' = 32768)", "Enum value 32768 outside -32768..32767"},
        {"Enum16('a' = 40000)", "an Enum value greater than 32768 at offset 13"},
        {"Enum8('a' 1)", "'=' expected at offset 10"},
        {"Enum8('a\\x' = 1)", "\\x without hex digits at offset 10"},
        {"Map(String)", "',' expected at offset 10"},
        {"Tuple(a Int8, String)", "a Tuple names all its elements or none at offset 13"},
        {"Tuple(Int8, b String)", "a Tuple names all its elements or none at offset 11"},
        {"Nested(Int8)", "Nested needs a name for every element at offset 7"},
        {"Nested()", "a type name expected at offset 7"},
        {"Tuple(`a` )", "a type name expected at offset 10"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[512];
        snprintf(want, sizeof want, "invalid ClickHouse type \"%s\": %s", cases[i][0], cases[i][1]);
        /* the message shows non-printable bytes as '?' (none here) */
        expect_error(cases[i][0], CH_TYPE_INVALID, want);
    }
}

static void test_depth_limit(void **state)
{
    (void)state;
    char text[1024] = "";
    for (int i = 0; i < CH_TYPE_MAX_DEPTH - 1; i++)
        strcat(text, "Array(");
    strcat(text, "Int8");
    for (int i = 0; i < CH_TYPE_MAX_DEPTH - 1; i++)
        strcat(text, ")");
    ch_type *t = NULL;
    assert_int_equal(ch_type_parse(text, strlen(text), &t, NULL, 0), CH_TYPE_OK);
    ch_type_free(t);

    char deeper[1024] = "Array(";
    strcat(deeper, text);
    strcat(deeper, ")");
    char err[512];
    assert_int_equal(ch_type_parse(deeper, strlen(deeper), &t, err, sizeof err), CH_TYPE_INVALID);
    assert_null(t);
    assert_non_null(strstr(err, "nested deeper than 32 levels"));
}

static void test_message_shows_text_safely(void **state)
{
    (void)state;
    /* a NUL and a newline inside the text are shown as '?'; long texts are cut at 200 bytes */
    char err[512];
    ch_type *t;
    assert_int_equal(ch_type_parse("Foo\0\n", 5, &t, err, sizeof err), CH_TYPE_UNSUPPORTED);
    assert_string_equal(err, "unsupported ClickHouse type \"Foo??\": Foo is not covered by the "
                             "RowBinary encoder");
    char long_text[300];
    memset(long_text, 'X', sizeof long_text);
    assert_int_equal(ch_type_parse(long_text, sizeof long_text, &t, err, sizeof err),
                     CH_TYPE_UNSUPPORTED);
    assert_non_null(strstr(err, "XXX...\": "));
    /* a buffer too small for the message is filled and terminated */
    char small[16];
    assert_int_equal(ch_type_parse("Array(", 6, &t, small, sizeof small), CH_TYPE_INVALID);
    assert_string_equal(small, "invalid ClickHo");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_texts), cmocka_unit_test(test_tree_fields),
        cmocka_unit_test(test_unsupported),     cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_depth_limit),     cmocka_unit_test(test_message_shows_text_safely),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
