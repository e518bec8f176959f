/*
 * test_debezium_types — table-driven tests for src/debezium_types.c and the cdc.* functions that
 * wrap it in src/lua_module.c.
 *
 * Every case compares the exact output text or the exact error message. Decimal expectations were
 * computed independently with Python's arbitrary-precision integers (int.to_bytes(signed=True),
 * base64); times with Python's datetime. A randomized round trip checks the decimal conversion
 * against a second, independent implementation (decimal text back to two's-complement bytes).
 * main() sets TZ=America/New_York: no result may depend on the process's time zone.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* setenv, tzset when built outside CMake */
#endif

#include <stdarg.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "cdcpipe/debezium_types.h"
#include "cdcpipe/lua_module.h"

#include "support.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- dbz_decimal_from_base64 ---- */

typedef struct {
    const char *in;
    int64_t scale;
    const char *want; /* or NULL: error */
    const char *err;  /* exact error text when want is NULL */
} decimal_case;

static const decimal_case decimal_cases[] = {
    {"AeI6", 2, "1234.50", NULL}, /* debezium-format.md §4 */
    {"D54=", 2, "39.98", NULL},
    {"BMsv", 5, "3.14159", NULL},
    {"AA==", 0, "0", NULL},
    {"AA==", 2, "0.00", NULL},
    {"AA==", 10, "0.0000000000", NULL},
    {"/w==", 0, "-1", NULL},
    {"/w==", 3, "-0.001", NULL},
    {"BQ==", 3, "0.005", NULL},
    {"+w==", 3, "-0.005", NULL},
    {"AQ==", 0, "1", NULL},
    {"fw==", 0, "127", NULL},
    {"AIA=", 0, "128", NULL},
    {"gA==", 0, "-128", NULL},
    {"/38=", 0, "-129", NULL},
    {"AP8=", 0, "255", NULL},
    {"AQA=", 0, "256", NULL},
    {"/wA=", 0, "-256", NULL},
    {"f/8=", 0, "32767", NULL},
    {"gAA=", 0, "-32768", NULL},
    {"MDk=", -2, "1234500", NULL}, /* negative scale (numeric(p,-s), PostgreSQL 15+) */
    {"+Q==", -3, "-7000", NULL},
    {"AA==", -3, "0", NULL},
    /* Decimal(38,10) extremes */
    {"SztMqFqGxHoJiiI//////w==", 10, "9999999999999999999999999999.9999999999", NULL},
    {"tMSzV6V5O4X2dd3AAAAAAQ==", 10, "-9999999999999999999999999999.9999999999", NULL},
    {"SztMqFqGxHoJiiI//////w==", 0, "99999999999999999999999999999999999999", NULL},
    {"tMSzV6V5O4X2dd3AAAAAAQ==", 38, "-0.99999999999999999999999999999999999999", NULL},
    {"IE/OXj4lAmEQAAAA", 10, "1000000000000000000.0000000000", NULL},
    {"AQ==", 10, "0.0000000001", NULL},
    {"/w==", 10, "-0.0000000001", NULL},
    /* 76 digits (Decimal256) */
    {"FhvMpxGZFbUHZLSr6GUpeXd1pfFxlQ////////////8=", 0,
     "9999999999999999999999999999999999999999999999999999999999999999999999999999", NULL},
    {"6eQzWO5m6kr4m0tUF5rWhoiKWg6OavAAAAAAAAAAAAE=", 0,
     "-9999999999999999999999999999999999999999999999999999999999999999999999999999", NULL},
    {"FhvMpxGZFbUHZLSr6GUpeXd1pfFxlQ////////////8=", 38,
     "99999999999999999999999999999999999999.99999999999999999999999999999999999999", NULL},
    {"6eQzWO5m6kr4m0tUF5rWhoiKWg6OavAAAAAAAAAAAAE=", 76,
     "-0.9999999999999999999999999999999999999999999999999999999999999999999999999999", NULL},
    {"f/////////////////////////////////////////8=", 0,
     "57896044618658097711785492504343953926634992332820282019728792003956564819967", NULL},
    {"gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 0,
     "-57896044618658097711785492504343953926634992332820282019728792003956564819968", NULL},
    /* int64 and limb boundaries */
    {"f/////////8=", 0, "9223372036854775807", NULL},
    {"gAAAAAAAAAA=", 0, "-9223372036854775808", NULL},
    {"AQAAAAAAAAAA", 0, "18446744073709551616", NULL},
    {"/nEW8Ak8jB8RscD1Lg==", 4, "-12345678901234567890123456.7890", NULL},
    {"O5rKAA==", 0, "1000000000", NULL},
    {"O5rJ/w==", 0, "999999999", NULL},
    {"DeC2s6dkAAA=", 9, "1000000000.000000000", NULL},
    /* leading zero / sign-extension bytes */
    {"AAAB", 0, "1", NULL},
    {"AAAAAA==", 2, "0.00", NULL},
    {"////", 1, "-0.1", NULL},
    {"/4A=", 0, "-128", NULL},
    /* unpadded base64 is accepted */
    {"D54", 2, "39.98", NULL},
    /* errors */
    {"", 2, NULL, "invalid decimal \"\" (scale 2): the unscaled value has no bytes"},
    {"AeI!", 2, NULL, "invalid base64 \"AeI!\": '!' at position 3"},
    {"AeI6A", 2, NULL, "invalid base64 \"AeI6A\": length 5 is not a possible length"},
    {"AeI=6", 2, NULL, "invalid base64 \"AeI=6\": '=' at position 3"},
    {"AQ=", 0, NULL, "invalid base64 \"AQ=\": length 3 is not a padded length"},
    {"A===", 0, NULL, "invalid base64 \"A===\": '=' at position 1"},
    {"1234.50", 2, NULL, "invalid base64 \"1234.50\": '.' at position 4"},
    {"AQ-_", 0, NULL, "invalid base64 \"AQ-_\": '-' at position 2"},
    {"A\tQ=", 0, NULL, "invalid base64 \"A?Q=\": byte 0x09 at position 1"},
    {"AQ==", 16384, NULL,
     "invalid decimal \"AQ==\" (scale 16384): scale 16384 is outside "
     "-16383..16383"},
};

static void test_decimal_base64(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(decimal_cases); i++) {
        const decimal_case *c = &decimal_cases[i];
        strbuf out = {0};
        char err[256] = "";
        strbuf_puts(&out, "pre:"); /* appended to, never overwritten */
        int rc = dbz_decimal_from_base64(c->in, strlen(c->in), c->scale, &out, err, sizeof err);
        if (c->want) {
            if (rc != 0) fail_msg("case %zu (%s, %" PRId64 "): %s", i, c->in, c->scale, err);
            char want[256];
            snprintf(want, sizeof want, "pre:%s", c->want);
            assert_string_equal(out.data, want);
        } else {
            if (rc == 0) fail_msg("case %zu (%s): expected an error, got %s", i, c->in, out.data);
            assert_string_equal(err, c->err);
            assert_string_equal(out.data, "pre:"); /* nothing appended on failure */
        }
        strbuf_free(&out);
    }
}

static void test_decimal_limits(void **state)
{
    (void)state;
    char err[256];
    strbuf out = {0};
    unsigned char big[DBZ_DECIMAL_MAX_BYTES + 1];
    memset(big, 0xff, sizeof big);
    /* the largest accepted input: all 0xff is -1 however long */
    assert_int_equal(
        dbz_decimal_from_unscaled(big, DBZ_DECIMAL_MAX_BYTES, 2, &out, err, sizeof err), 0);
    assert_string_equal(out.data, "-0.01");
    strbuf_reset(&out);
    assert_int_equal(dbz_decimal_from_unscaled(big, sizeof big, 0, &out, err, sizeof err), -1);
    assert_string_equal(err, "the unscaled value has 1025 bytes, more than the 1024 supported");
    /* 0x7f ff … ff (1024 bytes) = 2^8191 - 1: 2466 digits, ends in …551 */
    big[0] = 0x7f;
    strbuf_reset(&out);
    assert_int_equal(
        dbz_decimal_from_unscaled(big, DBZ_DECIMAL_MAX_BYTES, 0, &out, err, sizeof err), 0);
    assert_int_equal(out.len, 2466);
    assert_string_equal(out.data + out.len - 6, "896447");
    assert_int_equal(dbz_decimal_from_unscaled(big, 0, 0, &out, err, sizeof err), -1);
    assert_string_equal(err, "the unscaled value has no bytes");
    strbuf_reset(&out);
    assert_int_equal(dbz_decimal_from_unscaled(big, 1, -16383, &out, err, sizeof err), 0);
    assert_int_equal(out.len, 3 + 16383); /* "127" and the zeros */
    assert_int_equal(dbz_decimal_from_unscaled(big, 1, -16384, &out, err, sizeof err), -1);
    strbuf_free(&out);
}

/* Independent inverse: decimal text (digits of the unscaled value, '-' and '.' skipped) back to an
 * n-byte big-endian two's-complement integer, by schoolbook multiply-add in base 256. */
static void text_to_unscaled(const char *text, unsigned char *b, size_t n)
{
    memset(b, 0, n);
    bool neg = text[0] == '-';
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9') continue;
        unsigned carry = (unsigned)(*p - '0');
        for (size_t i = n; i-- > 0;) {
            unsigned v = b[i] * 10u + carry;
            b[i] = (unsigned char)v;
            carry = v >> 8;
        }
    }
    if (neg) {
        unsigned carry = 1;
        for (size_t i = n; i-- > 0;) {
            unsigned v = (unsigned char)~b[i] + carry;
            b[i] = (unsigned char)v;
            carry = v >> 8;
        }
    }
}

static void test_decimal_round_trip(void **state)
{
    (void)state;
    srand(20240229);
    char err[256];
    strbuf out = {0};
    for (int iter = 0; iter < 20000; iter++) {
        unsigned char b[48], back[48];
        size_t n = 1 + (size_t)rand() % sizeof b;
        for (size_t i = 0; i < n; i++)
            b[i] = (unsigned char)rand();
        if (iter % 7 == 0) b[0] = iter % 2 ? 0x00 : 0xff; /* sign-extension bytes */
        int64_t scale = rand() % 60;
        strbuf_reset(&out);
        assert_int_equal(dbz_decimal_from_unscaled(b, n, scale, &out, err, sizeof err), 0);
        /* shape: [-]int[.frac] with exactly `scale` fraction digits, no leading zero unless 0 */
        const char *dot = strchr(out.data, '.');
        if (scale == 0) {
            assert_null(dot);
        } else {
            assert_non_null(dot);
            assert_int_equal(strlen(dot + 1), (size_t)scale);
        }
        const char *int_part = out.data[0] == '-' ? out.data + 1 : out.data;
        if (int_part[0] == '0') assert_true(int_part[1] == '\0' || int_part[1] == '.');
        assert_false(strncmp(out.data, "-0", 2) == 0 && strspn(out.data, "-0.") == out.len);
        text_to_unscaled(out.data, back, n);
        if (memcmp(b, back, n) != 0)
            fail_msg("round trip failed at iteration %d: %s", iter, out.data);
    }
    strbuf_free(&out);
}

/* ---- text and double modes ---- */

static void test_decimal_text_and_double(void **state)
{
    (void)state;
    static const struct {
        const char *in, *err;
    } texts[] = {
        {"1234.50", NULL},
        {"-0.5", NULL},
        {"12", NULL},
        {"0", NULL},
        {"-12345678901234567890123456789012345678.1234567890", NULL},
        {"NAN", "\"NAN\" is not decimal text ([-]digits[.digits]): NaN and infinities cannot be "
                "stored in a ClickHouse Decimal"},
        {"-INFINITY", "\"-INFINITY\" is not decimal text ([-]digits[.digits]): NaN and "
                      "infinities cannot be stored in a ClickHouse Decimal"},
        {"1.", "\"1.\" is not decimal text ([-]digits[.digits])"},
        {".5", "\".5\" is not decimal text ([-]digits[.digits])"},
        {"1e5", "\"1e5\" is not decimal text ([-]digits[.digits])"},
        {"+1", "\"+1\" is not decimal text ([-]digits[.digits])"},
        {"", "\"\" is not decimal text ([-]digits[.digits])"},
        {"-", "\"-\" is not decimal text ([-]digits[.digits])"},
        {"1 ", "\"1 \" is not decimal text ([-]digits[.digits])"},
    };
    for (size_t i = 0; i < N(texts); i++) {
        strbuf out = {0};
        char err[256] = "";
        int rc = dbz_decimal_check_text(texts[i].in, strlen(texts[i].in), &out, err, sizeof err);
        expect_text_or_error(rc, out.data, err, texts[i].err ? NULL : texts[i].in, texts[i].err,
                             "%s", texts[i].in);
        if (texts[i].err) assert_int_equal(out.len, 0);
        strbuf_free(&out);
    }

    static const struct {
        double in;
        const char *want;
    } doubles[] = {
        {0.1, "0.1"},
        {-0.0, "0"},
        {0.0, "0"},
        {1.5, "1.5"},
        {-2.25, "-2.25"},
        {1e20, "100000000000000000000"},
        {1e-7, "0.0000001"},
        {123456789.125, "123456789.125"},
        {0.30000000000000004, "0.30000000000000004"},
        {9007199254740993.0, "9007199254740992"},
        {1234.5, "1234.5"},
        {-1e-300, NULL}, /* "-0." then 299 zeros then "1": checked below */
    };
    for (size_t i = 0; i < N(doubles); i++) {
        strbuf out = {0};
        char err[256];
        assert_int_equal(dbz_decimal_from_double(doubles[i].in, &out, err, sizeof err), 0);
        if (doubles[i].want) {
            assert_string_equal(out.data, doubles[i].want);
        } else { /* -1e-300 */
            assert_int_equal(out.len, 3 + 299 + 1);
            assert_int_equal(strspn(out.data + 3, "0"), 299);
            assert_string_equal(out.data + out.len - 1, "1");
            assert_memory_equal(out.data, "-0.", 3);
        }
        assert_true(strtod(out.data, NULL) == doubles[i].in);
        strbuf_free(&out);
    }
    strbuf out = {0};
    char err[256];
    assert_int_equal(dbz_decimal_from_double(strtod("nan", NULL), &out, err, sizeof err), -1);
    assert_string_equal(err, "NaN cannot be stored in a ClickHouse Decimal");
    assert_int_equal(dbz_decimal_from_double(-strtod("inf", NULL), &out, err, sizeof err), -1);
    assert_string_equal(err, "-Infinity cannot be stored in a ClickHouse Decimal");
    /* the largest double: 309 digits, reads back exactly */
    assert_int_equal(dbz_decimal_from_double(1.7976931348623157e308, &out, err, sizeof err), 0);
    assert_int_equal(out.len, 309);
    assert_true(strtod(out.data, NULL) == 1.7976931348623157e308);
    strbuf_free(&out);
}

/* ---- times of day ---- */

typedef struct {
    int64_t v;
    dt_unit unit;
    int precision;
    const char *want, *err;
} time_case;

static const time_case time_cases[] = {
    {49530123456LL, DT_MICROS, -1, "13:45:30.123456", NULL}, /* debezium-format.md §4 */
    {49530123LL, DT_MILLIS, -1, "13:45:30.123", NULL},
    {49530123456789LL, DT_NANOS, -1, "13:45:30.123456789", NULL},
    {49530LL, DT_SECONDS, -1, "13:45:30", NULL},
    {49530100000LL, DT_MICROS, -1, "13:45:30.1", NULL}, /* as PostgreSQL prints it */
    {49530000000LL, DT_MICROS, -1, "13:45:30", NULL},
    {49530100000LL, DT_MICROS, 6, "13:45:30.100000", NULL},
    {49530123456LL, DT_MICROS, 3, "13:45:30.123", NULL}, /* extra digits dropped */
    {49530123456LL, DT_MICROS, 0, "13:45:30", NULL},
    {49530123LL, DT_MILLIS, 9, "13:45:30.123000000", NULL},
    {0, DT_MICROS, -1, "00:00:00", NULL},
    {86399999999LL, DT_MICROS, -1, "23:59:59.999999", NULL},
    {86400000000LL, DT_MICROS, -1, "24:00:00", NULL}, /* PostgreSQL allows 24:00:00 */
    {86400000001LL, DT_MICROS, -1, NULL,
     "time of day 86400000001 us is outside 00:00:00..24:00:00 (0..86400000000)"},
    {-1, DT_MICROS, -1, NULL, "time of day -1 us is outside 00:00:00..24:00:00 (0..86400000000)"},
    {INT64_MIN, DT_NANOS, -1, NULL,
     "time of day -9223372036854775808 ns is outside 00:00:00..24:00:00 (0..86400000000000)"},
    {1, DT_MICROS, 10, NULL, "precision 10 is outside 0..9"},
};

static void test_time(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(time_cases); i++) {
        const time_case *c = &time_cases[i];
        char out[DBZ_TIME_LEN], err[256];
        int rc = dbz_format_time(c->v, c->unit, c->precision, out, err, sizeof err);
        expect_text_or_error(rc, out, err, c->want, c->err, "case %zu", i);
    }
}

static void test_zoned_time(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int precision;
        const char *want, *err;
    } cases[] = {
        {"11:45:30.123456Z", -1, "11:45:30.123456", NULL},
        {"11:45:30Z", -1, "11:45:30", NULL},
        {"11:45:30Z", 6, "11:45:30.000000", NULL},
        {"11:45Z", -1, "11:45:00", NULL},
        {"13:45:30.5+02:00", -1, "11:45:30.5", NULL},
        {"01:00:00+02:00", -1, "23:00:00", NULL}, /* wraps to the previous day */
        {"23:30:00-01:30", -1, "01:00:00", NULL},
        {"10:00:00+0530", -1, "04:30:00", NULL},
        {"10:00:00+05", -1, "05:00:00", NULL},
        {"11:45:30.123456789Z", -1, "11:45:30.123456789", NULL},
        {"11:45:30", -1, "11:45:30", NULL},
        {"24:00:00Z", -1, "24:00:00", NULL},
        {"11:45:30.1234567890Z", -1, NULL,
         "cannot parse \"11:45:30.1234567890Z\" as a time of day (hh:mm:ss[.f][Z|+hh:mm]): more "
         "than 9 fraction digits"},
        {"25:00:00Z", -1, NULL,
         "cannot parse \"25:00:00Z\" as a time of day (hh:mm:ss[.f][Z|+hh:mm]): a field is out "
         "of range"},
        {"11:45:30.Z", -1, NULL,
         "cannot parse \"11:45:30.Z\" as a time of day (hh:mm:ss[.f][Z|+hh:mm]): expected a "
         "fraction digit after '.'"},
        {"11-45-30", -1, NULL,
         "cannot parse \"11-45-30\" as a time of day (hh:mm:ss[.f][Z|+hh:mm]): expected hh:mm"},
        {"11:45:30Zx", -1, NULL,
         "cannot parse \"11:45:30Zx\" as a time of day (hh:mm:ss[.f][Z|+hh:mm]): unexpected text "
         "after the time"},
        {"", -1, NULL,
         "cannot parse \"\" as a time of day (hh:mm:ss[.f][Z|+hh:mm]): expected hh:mm"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        char out[DBZ_TIME_LEN], err[256];
        int rc = dbz_format_zoned_time(cases[i].in, strlen(cases[i].in), cases[i].precision, out,
                                       err, sizeof err);
        expect_text_or_error(rc, out, err, cases[i].want, cases[i].err, "%s", cases[i].in);
    }
}

/* ---- DateTime64 ---- */

static void test_datetime64(void **state)
{
    (void)state;
    static const struct {
        int64_t v;
        dt_unit unit;
        int precision;
        const char *want, *err;
    } cases[] = {
        {1529507596945104LL, DT_MICROS, 6, "2018-06-20 15:13:16.945104", NULL},
        {1529507596945104LL, DT_MICROS, 3, "2018-06-20 15:13:16.945", NULL},
        {1529507596945104LL, DT_MICROS, 0, "2018-06-20 15:13:16", NULL},
        {1529507596945104LL, DT_MICROS, 9, "2018-06-20 15:13:16.945104000", NULL},
        {1529507596945LL, DT_MILLIS, 3, "2018-06-20 15:13:16.945", NULL},
        {1700000000123456789LL, DT_NANOS, 9, "2023-11-14 22:13:20.123456789", NULL},
        {0, DT_SECONDS, 0, "1970-01-01 00:00:00", NULL},
        {-1, DT_MICROS, 6, "1969-12-31 23:59:59.999999", NULL},
        {-1, DT_MILLIS, 3, "1969-12-31 23:59:59.999", NULL},
        {-1500, DT_MICROS, 3, "1969-12-31 23:59:59.998", NULL}, /* floored, not rounded */
        {1709208000500000LL, DT_MICROS, 6, "2024-02-29 12:00:00.500000", NULL}, /* leap day */
        {-2208988800000000LL, DT_MICROS, 6, "1900-01-01 00:00:00.000000", NULL},
        {-62135596800000000LL, DT_MICROS, 6, "0001-01-01 00:00:00.000000", NULL},
        {253402300799999999LL, DT_MICROS, 6, "9999-12-31 23:59:59.999999", NULL},
        {INT64_MAX, DT_NANOS, 9, "2262-04-11 23:47:16.854775807", NULL},
        {INT64_MIN, DT_NANOS, 9, "1677-09-21 00:12:43.145224192", NULL},
        {253402300800000000LL, DT_MICROS, 6, NULL,
         "epoch value 253402300800000000 us is outside years 0000..9999"},
        {INT64_C(9223372036825200000), DT_MICROS, 6, NULL,
         "epoch value 9223372036825200000 us (PostgreSQL 'infinity') is outside years 0000..9999"},
        {-INT64_C(9223372036832400000), DT_MICROS, 6, NULL,
         "epoch value -9223372036832400000 us (PostgreSQL '-infinity') is outside years "
         "0000..9999"},
        {INT64_MIN, DT_MILLIS, 3, NULL,
         "epoch value -9223372036854775808 ms is outside years 0000..9999"},
        {0, DT_MICROS, -1, NULL, "precision -1 is outside 0..9"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        char out[DBZ_DATETIME64_LEN], err[256];
        int rc = dbz_format_datetime64(cases[i].v, cases[i].unit, cases[i].precision, out, err,
                                       sizeof err);
        expect_text_or_error(rc, out, err, cases[i].want, cases[i].err, "case %zu", i);
    }

    static const struct {
        const char *in;
        int precision;
        const char *want, *err;
    } iso[] = {
        {"2018-06-20T13:13:16.945104Z", 6, "2018-06-20 13:13:16.945104", NULL},
        {"2018-06-20T15:13:16.945104+02:00", 6, "2018-06-20 13:13:16.945104", NULL},
        {"2018-06-20T13:13:16Z", 6, "2018-06-20 13:13:16.000000", NULL},
        {"2018-06-20T13:13:16Z", 0, "2018-06-20 13:13:16", NULL},
        {"2018-06-20T13:13:16.1234567891Z", 9, "2018-06-20 13:13:16.123456789", NULL},
        {"1969-12-31T23:59:59.999999Z", 6, "1969-12-31 23:59:59.999999", NULL},
        {"2024-02-29T00:30:00.25-01:00", 3, "2024-02-29 01:30:00.250", NULL},
        {"1900-01-01T00:00:00Z", 6, "1900-01-01 00:00:00.000000", NULL},
        {"infinity", 6, NULL, "\"infinity\" (PostgreSQL infinity) has no DateTime64 value"},
        {"-infinity", 6, NULL, "\"-infinity\" (PostgreSQL -infinity) has no DateTime64 value"},
        {"2018-02-30T00:00:00Z", 6, NULL,
         "cannot parse \"2018-02-30T00:00:00Z\" as an ISO-8601 date-time: day 30 out of range for "
         "2018-02"},
    };
    for (size_t i = 0; i < N(iso); i++) {
        char out[DBZ_DATETIME64_LEN], err[256];
        int rc = dbz_format_datetime64_iso(iso[i].in, strlen(iso[i].in), iso[i].precision, out, err,
                                           sizeof err);
        expect_text_or_error(rc, out, err, iso[i].want, iso[i].err, "%s", iso[i].in);
    }
}

static void test_iso_to_epoch(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        dt_unit unit;
        int64_t want;
        const char *err;
    } cases[] = {
        {"2018-06-20T13:13:16.945104Z", DT_MICROS, 1529500396945104LL, NULL},
        {"2018-06-20T13:13:16.945104Z", DT_MILLIS, 1529500396945LL, NULL},
        {"2018-06-20T13:13:16.945104Z", DT_NANOS, 1529500396945104000LL, NULL},
        {"2018-06-20T13:13:16.945104Z", DT_SECONDS, 1529500396LL, NULL},
        {"1969-12-31T23:59:59.5Z", DT_MILLIS, -500, NULL},
        {"1969-12-31T23:59:59.5Z", DT_SECONDS, -1, NULL},
        {"1970-01-01", DT_MICROS, 0, NULL},
        {"2262-04-11T23:47:16.854775807Z", DT_NANOS, INT64_MAX, NULL},
        {"1677-09-21T00:12:43.145224192Z", DT_NANOS, INT64_MIN, NULL},
        {"2262-04-11T23:47:16.854775808Z", DT_NANOS, 0,
         "\"2262-04-11T23:47:16.854775808Z\" does not fit a 64-bit count of ns"},
        {"1677-09-21T00:12:43.145224191Z", DT_NANOS, 0,
         "\"1677-09-21T00:12:43.145224191Z\" does not fit a 64-bit count of ns"},
        {"0001-01-01T00:00:00Z", DT_MICROS, -62135596800000000LL, NULL},
        {"infinity", DT_MICROS, 0, "\"infinity\" (PostgreSQL infinity) has no epoch value"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        int64_t v = 42;
        char err[256];
        int rc =
            dbz_iso_to_epoch(cases[i].in, strlen(cases[i].in), cases[i].unit, &v, err, sizeof err);
        if (!cases[i].err) {
            if (rc != 0) fail_msg("%s: %s", cases[i].in, err);
            assert_int_equal(v, cases[i].want);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(err, cases[i].err);
        }
    }
}

/* ---- intervals ---- */

static void test_interval(void **state)
{
    (void)state;
    static const struct {
        int64_t us;
        const char *iso, *seconds;
    } cases[] = {
        {93600000000LL, "P1DT2H", "93600"},          /* '1 day 02:00' */
        {2629800000000LL, "P30DT10H30M", "2629800"}, /* '1 mon' = 30.4375 days */
        {31557600000000LL, "P365DT6H", "31557600"},  /* '1 year' */
        {0, "PT0S", "0"},
        {1, "PT0.000001S", "0.000001"},
        {-1, "-PT0.000001S", "-0.000001"},
        {86400000000LL, "P1D", "86400"},
        {90061500000LL, "P1DT1H1M1.5S", "90061.5"},
        {-90061500000LL, "-P1DT1H1M1.5S", "-90061.5"},
        {300000000LL, "PT5M", "300"},
        {3600000001LL, "PT1H0.000001S", "3600.000001"},
        {INT64_MAX, "P106751991DT4H54.775807S", "9223372036854.775807"},
        {INT64_MIN, "-P106751991DT4H54.775808S", "-9223372036854.775808"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        char out[DBZ_INTERVAL_LEN];
        dbz_format_interval(cases[i].us, DBZ_INTERVAL_ISO, out);
        assert_string_equal(out, cases[i].iso);
        dbz_format_interval(cases[i].us, DBZ_INTERVAL_SECONDS, out);
        assert_string_equal(out, cases[i].seconds);
    }

    static const struct {
        const char *in, *why; /* why: NULL when valid */
    } texts[] = {
        {"P1Y2M3DT4H5M6.78S", NULL},
        {"P0Y0M0DT0H0M0S", NULL},
        {"P-1Y-2M3DT-4H5M-6.78S", NULL},
        {"-P1D", NULL},
        {"PT0.5S", NULL},
        {"P2W", NULL},
        {"PT", "expected a component after 'T'"},
        {"P", "expected at least one component"},
        {"1Y", "expected 'P'"},
        {"P1H", "expected Y, M, W or D (in order)"},
        {"P1M1Y", "expected Y, M, W or D (in order)"},
        {"PT1S1M", "expected H, M or S (in order)"},
        {"P1.5D", "only seconds may have a fraction"},
        {"P1Y2", "expected Y, M, W or D (in order)"},
        {"PTS", "expected a number"},
    };
    for (size_t i = 0; i < N(texts); i++) {
        strbuf out = {0};
        char err[256];
        int rc = dbz_interval_check_text(texts[i].in, strlen(texts[i].in), &out, err, sizeof err);
        char want_err[256];
        snprintf(want_err, sizeof want_err,
                 "\"%s\" is not an ISO-8601 duration (P1Y2M3DT4H5M6.78S): %s", texts[i].in,
                 texts[i].why ? texts[i].why : "");
        expect_text_or_error(rc, out.data, err, texts[i].why ? NULL : texts[i].in, want_err, "%s",
                             texts[i].in);
        strbuf_free(&out);
    }
}

/* ---- uuid, bytes, bits ---- */

static void test_uuid(void **state)
{
    (void)state;
    char out[DBZ_UUID_LEN], err[256];
    const char *ok = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
    assert_int_equal(dbz_format_uuid(ok, strlen(ok), out, err, sizeof err), 0);
    assert_string_equal(out, ok);
    const char *upper = "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11";
    assert_int_equal(dbz_format_uuid(upper, strlen(upper), out, err, sizeof err), 0);
    assert_string_equal(out, ok);
    const char *bad[] = {
        "a0eebc999c0b4ef8bb6d6bb9bd380a11",      /* no dashes */
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",   /* short */
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111", /* long */
        "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",  /* not hex */
        "a0eebc99_9c0b-4ef8-bb6d-6bb9bd380a11",  /* wrong separator */
        "",
    };
    for (size_t i = 0; i < N(bad); i++) {
        assert_int_equal(dbz_format_uuid(bad[i], strlen(bad[i]), out, err, sizeof err), -1);
        char want[256];
        snprintf(want, sizeof want,
                 "\"%s\" is not a UUID (8-4-4-4-12 hex digits, e.g. "
                 "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11)",
                 bad[i]);
        assert_string_equal(err, want);
    }
}

static void test_bytes(void **state)
{
    (void)state;
    static const struct {
        const char *in, *mode;
        const char *hex, *err; /* decoded bytes as hex, or the error */
    } cases[] = {
        {"AQID", "bytes", "010203", NULL},
        {"AQID", "base64", "010203", NULL},
        {"AQI=", "bytes", "0102", NULL},
        {"AQI", "bytes", "0102", NULL},
        {"AQ==", "bytes", "01", NULL},
        {"", "bytes", "", NULL},
        {"+/8=", "bytes", "fbff", NULL},
        {"-_8=", "base64-url-safe", "fbff", NULL},
        {"-_8", "base64-url-safe", "fbff", NULL},
        {"X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==", "bytes",
         "5f5f646562657a69756d5f756e617661696c61626c655f76616c7565", NULL},
        {"DEADbeef00", "hex", "deadbeef00", NULL},
        {"", "hex", "", NULL},
        {"-_8=", "bytes", NULL, "invalid base64 \"-_8=\": '-' at position 0"},
        {"+/8=", "base64-url-safe", NULL, "invalid base64-url-safe \"+/8=\": '+' at position 0"},
        {"A", "bytes", NULL, "invalid base64 \"A\": length 1 is not a possible length"},
        {"abc", "hex", NULL, "invalid hex \"abc\": odd number of digits (3)"},
        {"0z", "hex", NULL, "invalid hex \"0z\": 'z' at position 1"},
        {"\\x01", "hex", NULL, "invalid hex \"\\x01\": '\\' at position 0"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        dbz_binary_mode mode;
        assert_int_equal(dbz_parse_binary_mode(cases[i].mode, &mode), 0);
        strbuf raw = {0}, hex = {0};
        char err[256];
        int rc = dbz_binary_decode(cases[i].in, strlen(cases[i].in), mode, &raw, err, sizeof err);
        if (cases[i].hex) {
            if (rc != 0) fail_msg("%s: %s", cases[i].in, err);
            dbz_hex_encode((const unsigned char *)raw.data, raw.len, &hex);
            assert_string_equal(hex.data, cases[i].hex);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(err, cases[i].err);
            assert_int_equal(raw.len, 0);
        }
        strbuf_free(&raw);
        strbuf_free(&hex);
    }
    dbz_binary_mode mode;
    assert_int_equal(dbz_parse_binary_mode("base32", &mode), -1);
    assert_int_equal(dbz_parse_binary_mode(NULL, &mode), -1);
}

static void test_bits(void **state)
{
    (void)state;
    static const struct {
        const char *hex; /* the decoded Bits bytes */
        int64_t length;
        const char *want, *err;
    } cases[] = {
        {"16", 5, "10110", NULL}, /* B'10110' = 22, little-endian */
        {"16", 0, "00010110", NULL},
        {"16", 8, "00010110", NULL},
        {"0102", 16, "0000001000000001", NULL},
        {"0102", 10, "1000000001", NULL},
        {"ff", 10, "0011111111", NULL},
        {"", 4, "0000", NULL}, /* Debezium trims zero bytes; the length restores them */
        {"16", 3, NULL, "bit 4 is set but the column has only 3 bits"},
        {"16", -1, NULL, "bit length -1 is outside 0..16777216"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        strbuf b = {0}, out = {0};
        char err[256];
        assert_int_equal(
            dbz_binary_decode(cases[i].hex, strlen(cases[i].hex), DBZ_BIN_HEX, &b, err, sizeof err),
            0);
        int rc = dbz_bits_from_bytes((const unsigned char *)b.data, b.len, cases[i].length, &out,
                                     err, sizeof err);
        expect_text_or_error(rc, out.data, err, cases[i].want, cases[i].err, "case %zu", i);
        strbuf_free(&b);
        strbuf_free(&out);
    }
}

static void test_unavailable_strings(void **state)
{
    (void)state;
    static const struct {
        const char *in, *placeholder;
        bool want;
    } cases[] = {
        {"__debezium_unavailable_value", NULL, true},
        {"X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==", NULL, true}, /* bytea, bytes/base64 */
        {"X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ", NULL, true},   /* unpadded */
        {"5f5f646562657a69756d5f756e617661696c61626c655f76616c7565", NULL, true}, /* hex */
        {"5F5F646562657A69756D5F756E617661696C61626C655F76616C7565", NULL, true},
        {"{\"__debezium_unavailable_value\":\"__debezium_unavailable_value\"}", NULL, true},
        {"__debezium_unavailable_valu", NULL, false},
        {"__debezium_unavailable_value ", NULL, false},
        {"", NULL, false},
        {"X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZR==", NULL, false},
        {"5f5f646562657a69756d5f756e617661696c61626c655f76616c7566", NULL, false},
        {"N/A", "N/A", true},
        {"Ti9B", "N/A", true},
        {"4e2f41", "N/A", true},
        {"__debezium_unavailable_value", "N/A", false},
    };
    for (size_t i = 0; i < N(cases); i++) {
        if (dbz_is_unavailable_string(cases[i].in, strlen(cases[i].in), cases[i].placeholder) !=
            cases[i].want)
            fail_msg("case %zu (%s): expected %s", i, cases[i].in,
                     cases[i].want ? "true" : "false");
    }
}

/* ---- the cdc.* functions ---- */

typedef struct {
    const char *lua;  /* a chunk returning one value */
    const char *want; /* tostring() of the result, or NULL: error */
    const char *err;  /* exact error message */
} lua_case;

static const lua_case lua_cases[] = {
    /* decimal */
    {"return cdc.decimal('AeI6', 2)", "1234.50", NULL},
    {"return cdc.decimal('AeI6', '2')", "1234.50", NULL}, /* schema parameters are strings */
    {"return cdc.decimal({scale = 5, value = 'BMsv'})", "3.14159", NULL},
    {"return cdc.decimal({scale = 0, value = 'gA=='})", "-128", NULL},
    {"return cdc.decimal('-1234.50')", "-1234.50", NULL},
    {"return cdc.decimal(2.25)", "2.25", NULL},
    {"return cdc.decimal(7)", "7", NULL},
    {"return cdc.decimal(math.mininteger)", "-9223372036854775808", NULL},
    {"return cdc.decimal(-9223372036854775808)", "-9223372036854776000", NULL}, /* a float */
    {"return cdc.decimal(nil)", "nil", NULL},
    {"return cdc.decimal(cdc.null) == cdc.null", "true", NULL},
    {"return cdc.decimal('A!', 2)", NULL, "cdc.decimal: invalid base64 \"A!\": '!' at position 1"},
    {"return cdc.decimal('AA==', 'x')", NULL, "cdc.decimal: scale must be an integer, got \"x\""},
    {"return cdc.decimal('AA==', 1.5)", NULL,
     "cdc.decimal: scale must be an integer, got a number"},
    {"return cdc.decimal('NAN')", NULL,
     "cdc.decimal: \"NAN\" is not decimal text ([-]digits[.digits]): NaN and infinities cannot be "
     "stored in a ClickHouse Decimal"},
    {"return cdc.decimal(0/0)", NULL, "cdc.decimal: NaN cannot be stored in a ClickHouse Decimal"},
    {"return cdc.decimal(true)", NULL,
     "cdc.decimal: expected base64 text with a scale, decimal text, a {scale, value} table or a "
     "number, got a boolean"},
    {"return cdc.decimal({scale = 1.5, value = 'AA=='})", NULL,
     "cdc.decimal: a VariableScaleDecimal table needs an integer \"scale\", got a fraction"},
    {"return cdc.decimal({scale = 1})", NULL,
     "cdc.decimal: a VariableScaleDecimal table needs a base64 string \"value\", got a nil"},
    /* time */
    {"return cdc.time(49530123456, 'us')", "13:45:30.123456", NULL},
    {"return cdc.time(49530123, 'ms')", "13:45:30.123", NULL},
    {"return cdc.time(49530123456789, 'ns', 6)", "13:45:30.123456", NULL},
    {"return cdc.time(49530000000, 'us', 6)", "13:45:30.000000", NULL},
    {"return cdc.time('11:45:30.123456Z')", "11:45:30.123456", NULL},
    {"return cdc.time('13:45:30+02:00')", "11:45:30", NULL},
    {"return cdc.time(nil, 'us')", "nil", NULL},
    {"return cdc.time(5)", NULL,
     "cdc.time: a number needs its unit: \"ms\" (Time), \"us\" (MicroTime) or \"ns\" (NanoTime)"},
    {"return cdc.time(5, 'h')", NULL,
     "cdc.time: unit \"h\" is not one of \"s\", \"ms\", \"us\", \"ns\""},
    {"return cdc.time(1.5, 'us')", NULL,
     "cdc.time: expected a whole number of time units past midnight, got a fraction"},
    {"return cdc.time(-1, 'us')", NULL,
     "cdc.time: time of day -1 us is outside 00:00:00..24:00:00 (0..86400000000)"},
    {"return cdc.time({})", NULL,
     "cdc.time: expected a number past midnight or a ZonedTime string, got a table"},
    /* datetime64 / epoch */
    {"return cdc.datetime64(1529507596945104, 'us')", "2018-06-20 15:13:16.945104", NULL},
    {"return cdc.datetime64(1529507596945)", "2018-06-20 15:13:16.945", NULL},
    {"return cdc.datetime64(1529507596945, 'ms', 6)", "2018-06-20 15:13:16.945000", NULL},
    {"return cdc.datetime64(-1, 'us')", "1969-12-31 23:59:59.999999", NULL},
    {"return cdc.datetime64('2018-06-20T13:13:16.945104Z')", "2018-06-20 13:13:16.945104", NULL},
    {"return cdc.datetime64('2018-06-20T13:13:16.945104Z', nil, 3)", "2018-06-20 13:13:16.945",
     NULL},
    {"return cdc.datetime64(9223372036825200000, 'us')", NULL,
     "cdc.datetime64: epoch value 9223372036825200000 us (PostgreSQL 'infinity') is outside years "
     "0000..9999"},
    {"return cdc.datetime64('infinity')", NULL,
     "cdc.datetime64: \"infinity\" (PostgreSQL infinity) has no DateTime64 value"},
    {"return cdc.datetime64(1, 'us', 12)", NULL, "cdc.datetime64: precision 12 is outside 0..9"},
    {"return cdc.epoch('2018-06-20T13:13:16.945104Z')", "1529500396945104", NULL},
    {"return math.type(cdc.epoch('2018-06-20T13:13:16.945104Z', 'ms'))", "integer", NULL},
    {"return cdc.epoch('2018-06-20T13:13:16.945104Z', 'ns')", "1529500396945104000", NULL},
    {"return cdc.epoch(5)", NULL, "cdc.epoch: expected an ISO-8601 string, got a number"},
    {"return cdc.epoch('yesterday')", NULL,
     "cdc.epoch: cannot parse \"yesterday\" as an ISO-8601 date-time: expected a 4-digit year at "
     "position 0, found 'y'"},
    /* interval */
    {"return cdc.interval(93600000000)", "P1DT2H", NULL},
    {"return cdc.interval(93600000000, 'seconds')", "93600", NULL},
    {"return cdc.interval('P1Y2M3DT4H5M6.78S')", "P1Y2M3DT4H5M6.78S", NULL},
    {"return cdc.interval(1, 'weeks')", NULL,
     "cdc.interval: style \"weeks\" is not \"iso\" or \"seconds\""},
    {"return cdc.interval('1 day')", NULL,
     "cdc.interval: \"1 day\" is not an ISO-8601 duration (P1Y2M3DT4H5M6.78S): expected 'P'"},
    /* uuid */
    {"return cdc.uuid('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11')",
     "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", NULL},
    {"return cdc.uuid('nope')", NULL,
     "cdc.uuid: \"nope\" is not a UUID (8-4-4-4-12 hex digits, e.g. "
     "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11)"},
    {"return cdc.uuid(12)", NULL, "cdc.uuid: expected UUID text, got a number"},
    /* bytes */
    {"return cdc.bytes('AQID') == '\\1\\2\\3'", "true", NULL},
    {"return cdc.bytes('AP8A', 'base64') == '\\0\\255\\0'", "true", NULL},
    {"return cdc.bytes('AQID', 'bytes', 'hex')", "010203", NULL},
    {"return cdc.bytes('-_8=', 'base64-url-safe', 'hex')", "fbff", NULL},
    {"return cdc.bytes('DEADBEEF', 'hex', 'hex')", "deadbeef", NULL},
    {"return cdc.bytes('', 'bytes', 'hex')", "", NULL},
    {"return cdc.bytes('00ff', 'hex') == '\\0\\255'", "true", NULL},
    /* large enough that the scratch buffers grow (and move) while formatting */
    {"return #cdc.bytes(string.rep('AAAA', 3000), 'bytes', 'hex')", "18000", NULL},
    {"return #cdc.bits(string.rep('AAAA', 3000))", "72000", NULL},
    {"return cdc.bytes('AQID', 'base32')", NULL,
     "cdc.bytes: mode \"base32\" is not one of \"bytes\", \"base64\", \"base64-url-safe\", "
     "\"hex\" (binary.handling.mode)"},
    {"return cdc.bytes('AQID', 'bytes', 'text')", NULL,
     "cdc.bytes: output \"text\" is not \"raw\" or \"hex\""},
    {"return cdc.bytes('AQI$')", NULL, "cdc.bytes: invalid base64 \"AQI$\": '$' at position 3"},
    /* bits */
    {"return cdc.bits('Fg==', 5)", "10110", NULL},
    {"return cdc.bits('Fg==', '5')", "10110", NULL},
    {"return cdc.bits('Fg==')", "00010110", NULL},
    {"return cdc.bits('', 3)", "000", NULL},
    {"return cdc.bits('Fg==', 3)", NULL,
     "cdc.bits: \"Fg==\": bit 4 is set but the column has only 3 bits"},
    {"return cdc.bits('')", NULL, "cdc.bits: no bytes and no length"},
    /* is_unavailable */
    {"return cdc.is_unavailable('__debezium_unavailable_value')", "true", NULL},
    {"return cdc.is_unavailable('X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==')", "true", NULL},
    {"return cdc.is_unavailable({'__debezium_unavailable_value'})", "true", NULL},
    {"return cdc.is_unavailable({('__debezium_unavailable_value'):byte(1, -1)})", "true", NULL},
    {"return cdc.is_unavailable({__debezium_unavailable_value = '__debezium_unavailable_value'})",
     "true", NULL},
    {"return cdc.is_unavailable({'b68a35a7-17ad-35b3-af2a-ae46edb4545a'})", "true", NULL},
    {"return cdc.is_unavailable('N/A', 'N/A')", "true", NULL},
    {"return cdc.is_unavailable({'N/A'}, 'N/A')", "true", NULL},
    {"return cdc.is_unavailable({'b68a35a7-17ad-35b3-af2a-ae46edb4545a'}, 'N/A')", "false", NULL},
    {"return cdc.is_unavailable({__debezium_unavailable_value = '__debezium_unavailable_value', "
     "x = 'y'})",
     "false", NULL},
    {"return cdc.is_unavailable({'a', 'b'})", "false", NULL},
    {"return cdc.is_unavailable({})", "false", NULL},
    {"return cdc.is_unavailable('x')", "false", NULL},
    {"return cdc.is_unavailable(nil)", "false", NULL},
    {"return cdc.is_unavailable(cdc.null)", "false", NULL},
    {"return cdc.is_unavailable(95)", "false", NULL},
    /* json */
    {"return cdc.json({b = 1, a = {1, 2}, s = 'x\"y\\n'})",
     "{\"a\":[1,2],\"b\":1,\"s\":\"x\\\"y\\n\"}", NULL},
    {"return cdc.json(9223372036854775807)", "9223372036854775807", NULL},
    {"return cdc.json('\\u{e9}')", "\"\xc3\xa9\"", NULL},
    {"return cdc.json({})", "[]", NULL},
    {"return cdc.json({n = cdc.null, t = true})", "{\"n\":null,\"t\":true}", NULL},
    {"return cdc.json(nil)", "nil", NULL},
    {"return cdc.json({f = print})", NULL,
     "cdc.json: the value: a function cannot be written to ClickHouse"},
    {"return cdc.json(0/0)", NULL, "cdc.json: the value: NaN cannot be written to ClickHouse"},
};

static void test_lua_functions(void **state)
{
    (void)state;
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_module_push(L);
    lua_setglobal(L, "cdc");
    for (size_t i = 0; i < N(lua_cases); i++) {
        const lua_case *c = &lua_cases[i];
        if (luaL_loadstring(L, c->lua) != LUA_OK) fail_msg("%s: %s", c->lua, lua_tostring(L, -1));
        int rc = lua_pcall(L, 0, 1, 0);
        const char *got = luaL_tolstring(L, -1, NULL);
        if (c->want) {
            if (rc != LUA_OK) fail_msg("%s: raised %s", c->lua, got);
            if (strcmp(got, c->want) != 0)
                fail_msg("%s:\n  want %s\n  got  %s", c->lua, c->want, got);
        } else {
            if (rc == LUA_OK) fail_msg("%s: expected an error, got %s", c->lua, got);
            /* luaL_error prefixes the caller's position, as it does for pipeline.lua:12: */
            const char *where = strstr(got, "]:1: ");
            if (where) got = where + 5;
            if (strcmp(got, c->err) != 0)
                fail_msg("%s:\n  want %s\n  got  %s", c->lua, c->err, got);
        }
        lua_settop(L, 0);
    }
    lua_close(L);
}

int main(void)
{
    setenv("TZ", "America/New_York", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decimal_base64),
        cmocka_unit_test(test_decimal_limits),
        cmocka_unit_test(test_decimal_round_trip),
        cmocka_unit_test(test_decimal_text_and_double),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_zoned_time),
        cmocka_unit_test(test_datetime64),
        cmocka_unit_test(test_iso_to_epoch),
        cmocka_unit_test(test_interval),
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_bits),
        cmocka_unit_test(test_unavailable_strings),
        cmocka_unit_test(test_lua_functions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
