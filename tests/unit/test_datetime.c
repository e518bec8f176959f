/*
 * test_datetime — table-driven tests for src/datetime.c (include/cdcpipe/datetime.h).
 *
 * Every case compares the exact output text (or the exact error message), so a wrong digit fails.
 * main() sets TZ=America/New_York first: the results must not depend on the process's time zone.
 * Expected values were cross-checked against Python's datetime (proleptic Gregorian, UTC).
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

#include "cdcpipe/datetime.h"

#include "support.h"

/* ---- dt_format_epoch ---- */

typedef struct {
    int64_t value;
    dt_unit unit;
    const char *want; /* formatted text, or NULL when an error is expected */
    const char *err;  /* exact error text when want is NULL */
} epoch_case;

static const epoch_case epoch_cases[] = {
    {0, DT_SECONDS, "1970-01-01 00:00:00", NULL},
    {0, DT_NANOS, "1970-01-01 00:00:00", NULL},
    {1, DT_SECONDS, "1970-01-01 00:00:01", NULL},
    {-1, DT_SECONDS, "1969-12-31 23:59:59", NULL},
    {-1, DT_MILLIS, "1969-12-31 23:59:59", NULL},
    {-1, DT_MICROS, "1969-12-31 23:59:59", NULL},
    {-1, DT_NANOS, "1969-12-31 23:59:59", NULL},
    {-999, DT_MILLIS, "1969-12-31 23:59:59", NULL},
    {-1000, DT_MILLIS, "1969-12-31 23:59:59", NULL},
    {-1001, DT_MILLIS, "1969-12-31 23:59:58", NULL},
    {999, DT_MILLIS, "1970-01-01 00:00:00", NULL},
    {-86400, DT_SECONDS, "1969-12-31 00:00:00", NULL},
    {-86401, DT_SECONDS, "1969-12-30 23:59:59", NULL},
    {-86400000000LL, DT_MICROS, "1969-12-31 00:00:00", NULL},
    {-86400000001LL, DT_MICROS, "1969-12-30 23:59:59", NULL},
    {1700000000LL, DT_SECONDS, "2023-11-14 22:13:20", NULL},
    {1700000000123LL, DT_MILLIS, "2023-11-14 22:13:20", NULL},
    {1700000000123456LL, DT_MICROS, "2023-11-14 22:13:20", NULL},
    {1700000000123456789LL, DT_NANOS, "2023-11-14 22:13:20", NULL},
    {1709164800LL, DT_SECONDS, "2024-02-29 00:00:00", NULL}, /* leap day */
    {1709164799LL, DT_SECONDS, "2024-02-28 23:59:59", NULL},
    {951782400LL, DT_SECONDS, "2000-02-29 00:00:00", NULL}, /* 400-year leap */
    {-2208988800LL, DT_SECONDS, "1900-01-01 00:00:00", NULL},
    {-2203891200LL, DT_SECONDS, "1900-03-01 00:00:00", NULL}, /* 1900 has no Feb 29 */
    {-2203891201LL, DT_SECONDS, "1900-02-28 23:59:59", NULL},
    {253402300799LL, DT_SECONDS, "9999-12-31 23:59:59", NULL}, /* last representable second */
    {253402300799999LL, DT_MILLIS, "9999-12-31 23:59:59", NULL},
    {-62167219200LL, DT_SECONDS, "0000-01-01 00:00:00", NULL}, /* first representable second */
    {-62167219200000LL, DT_MILLIS, "0000-01-01 00:00:00", NULL},
    {INT64_MAX, DT_NANOS, "2262-04-11 23:47:16", NULL},
    {INT64_MIN, DT_NANOS, "1677-09-21 00:12:43", NULL},
    {253402300800LL, DT_SECONDS, NULL, "epoch value 253402300800 s is outside years 0000..9999"},
    {-62167219201LL, DT_SECONDS, NULL, "epoch value -62167219201 s is outside years 0000..9999"},
    {-62167219200001LL, DT_MILLIS, NULL,
     "epoch value -62167219200001 ms is outside years 0000..9999"},
    {INT64_MAX, DT_SECONDS, NULL, "epoch value 9223372036854775807 s is outside years 0000..9999"},
    {INT64_MIN, DT_SECONDS, NULL, "epoch value -9223372036854775808 s is outside years 0000..9999"},
    {INT64_MIN, DT_MILLIS, NULL, "epoch value -9223372036854775808 ms is outside years 0000..9999"},
    {INT64_MAX, DT_MICROS, NULL, "epoch value 9223372036854775807 us is outside years 0000..9999"},
    {INT64_MIN, DT_MICROS, NULL, "epoch value -9223372036854775808 us is outside years 0000..9999"},
};

static void test_format_epoch(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof epoch_cases / sizeof epoch_cases[0]; i++) {
        const epoch_case *c = &epoch_cases[i];
        char out[DT_DATETIME_LEN] = "", err[256] = "";
        int rc = dt_format_epoch(c->value, c->unit, out, err, sizeof err);
        expect_text_or_error(rc, out, err, c->want, c->err, "case %zu: %" PRId64 " unit %d", i,
                             c->value, (int)c->unit);
    }
}

/* A NULL or zero-sized error buffer is allowed and left alone. */
static void test_format_epoch_no_errbuf(void **state)
{
    (void)state;
    char out[DT_DATETIME_LEN];
    char err[4] = "xyz";
    assert_int_equal(dt_format_epoch(INT64_MAX, DT_SECONDS, out, NULL, 0), -1);
    assert_int_equal(dt_format_epoch(INT64_MAX, DT_SECONDS, out, err, 0), -1);
    assert_string_equal(err, "xyz");
    /* A short buffer is truncated, still terminated. */
    assert_int_equal(dt_format_epoch(INT64_MAX, DT_SECONDS, out, err, sizeof err), -1);
    assert_string_equal(err, "epo");
}

/* ---- dt_format_iso ---- */

typedef struct {
    const char *in;
    const char *want; /* formatted text, or NULL when an error is expected */
    const char *err;  /* exact error text when want is NULL */
} iso_case;

#define ISO_ERR(in, reason)                                                                        \
    {                                                                                              \
        in, NULL, "cannot parse \"" in "\" as an ISO-8601 date-time: " reason                      \
    }

static const iso_case iso_cases[] = {
    {"2024-01-15T10:30:00Z", "2024-01-15 10:30:00", NULL},
    {"2024-01-15T10:30:00", "2024-01-15 10:30:00", NULL}, /* no offset: UTC */
    {"2024-01-15 10:30:00", "2024-01-15 10:30:00", NULL}, /* space separator */
    {"2024-01-15T10:30", "2024-01-15 10:30:00", NULL},    /* no seconds */
    {"2024-01-15T10:30Z", "2024-01-15 10:30:00", NULL},
    {"2024-01-15", "2024-01-15 00:00:00", NULL}, /* date only */
    {"2024-01-15T10:30:00+02:00", "2024-01-15 08:30:00", NULL},
    {"2024-01-15T10:30:00+0200", "2024-01-15 08:30:00", NULL},
    {"2024-01-15T10:30:00+02", "2024-01-15 08:30:00", NULL},
    {"2024-01-15T10:30:00-0530", "2024-01-15 16:00:00", NULL},
    {"2024-01-15T10:30:00-05:30", "2024-01-15 16:00:00", NULL},
    {"2024-01-15T10:30:00+00:00", "2024-01-15 10:30:00", NULL},
    {"2024-01-15T10:30:00-00:00", "2024-01-15 10:30:00", NULL},
    {"2024-01-15T10:30:00.999999Z", "2024-01-15 10:30:00", NULL}, /* fraction floored */
    {"2024-01-15 10:30:59.123456789Z", "2024-01-15 10:30:59", NULL},
    {"2024-01-15T10:30:00,5", "2024-01-15 10:30:00", NULL},
    {"2024-01-15T10:30:00.1+01:00", "2024-01-15 09:30:00", NULL},
    {"2024-01-01T00:30:00+01:00", "2023-12-31 23:30:00", NULL}, /* offset crosses the year */
    {"2023-12-31T23:30:00-01:00", "2024-01-01 00:30:00", NULL},
    {"2024-02-28T23:00:00-01:00", "2024-02-29 00:00:00", NULL}, /* into a leap day */
    {"2023-02-28T23:00:00-01:00", "2023-03-01 00:00:00", NULL},
    {"2024-02-29T12:34:56Z", "2024-02-29 12:34:56", NULL},
    {"2000-02-29", "2000-02-29 00:00:00", NULL},
    {"0000-02-29", "0000-02-29 00:00:00", NULL}, /* year 0 is a leap year (proleptic) */
    {"1969-12-31T23:59:59.999Z", "1969-12-31 23:59:59", NULL},
    {"1900-01-01T00:00:00Z", "1900-01-01 00:00:00", NULL},
    {"0000-01-01T00:00:00Z", "0000-01-01 00:00:00", NULL},
    {"9999-12-31T23:59:59.999999999Z", "9999-12-31 23:59:59", NULL},
    {"2024-01-01T23:59:59+23:59", "2024-01-01 00:00:59", NULL},

    ISO_ERR("2024-13-01", "month 13 out of range"),
    ISO_ERR("2024-00-10", "month 0 out of range"),
    ISO_ERR("2023-02-29", "day 29 out of range for 2023-02"),
    ISO_ERR("1900-02-29", "day 29 out of range for 1900-02"),
    ISO_ERR("2024-02-30", "day 30 out of range for 2024-02"),
    ISO_ERR("2024-04-31T00:00:00Z", "day 31 out of range for 2024-04"),
    ISO_ERR("2024-01-00", "day 0 out of range for 2024-01"),
    ISO_ERR("2024-01-01T24:00:00", "hour 24 out of range"),
    ISO_ERR("2024-01-01T23:60", "minute 60 out of range"),
    ISO_ERR("2024-01-01T23:59:60Z", "second 60 out of range"),
    ISO_ERR("2024-01-01T10:30:00+24:00", "offset hour 24 out of range"),
    ISO_ERR("2024-01-01T10:30:00+01:60", "offset minute 60 out of range"),
    ISO_ERR("", "empty input"),
    ISO_ERR("abcd", "expected a 4-digit year at position 0, found 'a'"),
    ISO_ERR("24-01-01", "expected a 4-digit year at position 2, found '-'"),
    ISO_ERR("2024-1-01", "expected a 2-digit month at position 6, found '-'"),
    ISO_ERR("2024/01/01", "expected '-' at position 4, found '/'"),
    ISO_ERR("2024-01-01T", "expected a 2-digit hour at position 11, found end of input"),
    ISO_ERR("2024-01-01X10:30", "expected 'T' or ' ' before the time at position 10, found 'X'"),
    ISO_ERR("2024-01-01T10", "expected ':' at position 13, found end of input"),
    ISO_ERR("2024-01-01T10:30:00.Z", "expected a fraction digit at position 20, found 'Z'"),
    ISO_ERR("2024-01-01T10:30:00Zjunk", "expected end of input at position 20, found 'j'"),
    ISO_ERR("2024-01-01T10:30:00+1", "expected a 2-digit offset hour at position 21, found end of "
                                     "input"),
    ISO_ERR("2024-01-01T10:30:00+01:", "expected 2-digit offset minutes at position 23, found "
                                       "end of input"),
    ISO_ERR("2024-01-01T10:30:00+013", "expected 2-digit offset minutes at position 23, found "
                                       "end of input"),
    ISO_ERR("2024-01-01T10:30:00 Z", "expected end of input at position 19, found ' '"),
    ISO_ERR("2024-01-01Z", "expected 'T' or ' ' before the time at position 10, found 'Z'"),
    ISO_ERR("0000-01-01T00:30:00+01:00", "the UTC time is outside years 0000..9999"),
    ISO_ERR("9999-12-31T23:59:59-00:01", "the UTC time is outside years 0000..9999"),
};

static void test_format_iso(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof iso_cases / sizeof iso_cases[0]; i++) {
        const iso_case *c = &iso_cases[i];
        char out[DT_DATETIME_LEN] = "", err[256] = "";
        int rc = dt_format_iso(c->in, strlen(c->in), out, err, sizeof err);
        expect_text_or_error(rc, out, err, c->want, c->err, "case %zu \"%s\"", i, c->in);
    }
}

/* len bounds the input: no NUL terminator is needed, and bytes past len are ignored. */
static void test_format_iso_len(void **state)
{
    (void)state;
    char out[DT_DATETIME_LEN], err[256];
    const char buf[] = "2024-01-15T10:30:00Zgarbage";
    assert_int_equal(dt_format_iso(buf, 20, out, err, sizeof err), 0);
    assert_string_equal(out, "2024-01-15 10:30:00");
    assert_int_equal(dt_format_iso(buf, 10, out, err, sizeof err), 0);
    assert_string_equal(out, "2024-01-15 00:00:00");

    const char nul[] = "2024-01-15\0";
    assert_int_equal(dt_format_iso(nul, 11, out, err, sizeof err), -1);
    assert_string_equal(err, "cannot parse \"2024-01-15?\" as an ISO-8601 date-time: expected 'T' "
                             "or ' ' before the time at position 10, found byte 0x00");

    assert_int_equal(dt_format_iso(NULL, 0, out, err, sizeof err), -1);
    assert_string_equal(err, "cannot parse \"\" as an ISO-8601 date-time: empty input");

    /* Long inputs are quoted up to 64 bytes. */
    char longin[200];
    memset(longin, 'x', sizeof longin);
    assert_int_equal(dt_format_iso(longin, sizeof longin, out, err, sizeof err), -1);
    assert_string_equal(err,
                        "cannot parse "
                        "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\""
                        " as an ISO-8601 date-time: expected a 4-digit year at position 0, "
                        "found 'x'");
}

/* ---- dt_format_date ---- */

typedef struct {
    int64_t days;
    const char *want;
    const char *err;
} date_case;

static const date_case date_cases[] = {
    {0, "1970-01-01", NULL},
    {-1, "1969-12-31", NULL},
    {-365, "1969-01-01", NULL},
    {-366, "1968-12-31", NULL},
    {19782, "2024-02-29", NULL},
    {11016, "2000-02-29", NULL},
    {-25567, "1900-01-01", NULL},
    {-25508, "1900-03-01", NULL},
    {-719528, "0000-01-01", NULL},
    {2932896, "9999-12-31", NULL},
    {-719529, NULL, "date value -719529 days is outside years 0000..9999"},
    {2932897, NULL, "date value 2932897 days is outside years 0000..9999"},
    {INT64_MIN, NULL, "date value -9223372036854775808 days is outside years 0000..9999"},
    {INT64_MAX, NULL, "date value 9223372036854775807 days is outside years 0000..9999"},
};

static void test_format_date(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof date_cases / sizeof date_cases[0]; i++) {
        const date_case *c = &date_cases[i];
        char out[DT_DATE_LEN] = "", err[256] = "";
        int rc = dt_format_date(c->days, out, err, sizeof err);
        expect_text_or_error(rc, out, err, c->want, c->err, "case %zu: %" PRId64 " days", i,
                             c->days);
    }
}

/* ---- dt_days_from_civil and round trips ---- */

static void test_days_from_civil(void **state)
{
    (void)state;
    assert_int_equal(dt_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(dt_days_from_civil(1969, 12, 31), -1);
    assert_int_equal(dt_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(dt_days_from_civil(2024, 2, 29), 19782);
    assert_int_equal(dt_days_from_civil(0, 1, 1), -719528);
    assert_int_equal(dt_days_from_civil(9999, 12, 31), 2932896);
    assert_int_equal(dt_days_from_civil(-1, 12, 31), -719529);
}

/* Every day of 0000..9999: format it, parse it back through dt_format_iso, and recompute the day
 * number from the printed fields. Catches any off-by-one in civil_from_days at era edges. */
static void test_round_trip_all_days(void **state)
{
    (void)state;
    for (int64_t days = -719528; days <= 2932896; days++) {
        char date[DT_DATE_LEN], dt[DT_DATETIME_LEN], err[256];
        assert_int_equal(dt_format_date(days, date, err, sizeof err), 0);
        assert_int_equal(dt_format_iso(date, 10, dt, err, sizeof err), 0);
        assert_memory_equal(dt, date, 10);
        assert_string_equal(dt + 10, " 00:00:00");
        int64_t y = atoi(date);
        unsigned m = (unsigned)atoi(date + 5), d = (unsigned)atoi(date + 8);
        if (dt_days_from_civil(y, m, d) != days)
            fail_msg("day %" PRId64 " printed as %s", days, date);
    }
}

/* ---- dt_parse_unit ---- */

static void test_parse_unit(void **state)
{
    (void)state;
    dt_unit u = DT_NANOS;
    assert_int_equal(dt_parse_unit("s", &u), 0);
    assert_int_equal(u, DT_SECONDS);
    assert_int_equal(dt_parse_unit("ms", &u), 0);
    assert_int_equal(u, DT_MILLIS);
    assert_int_equal(dt_parse_unit("us", &u), 0);
    assert_int_equal(u, DT_MICROS);
    assert_int_equal(dt_parse_unit("ns", &u), 0);
    assert_int_equal(u, DT_NANOS);

    const char *bad[] = {"", "S", "MS", "sec", "seconds", "msx", "m", "n", " s", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        u = DT_MICROS;
        assert_int_equal(dt_parse_unit(bad[i], &u), -1);
        assert_int_equal(u, DT_MICROS); /* untouched on failure */
    }
}

int main(void)
{
    /* Results are UTC arithmetic; a local zone with DST must not leak in. */
    setenv("TZ", "America/New_York", 1);
    tzset();

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_epoch),        cmocka_unit_test(test_format_epoch_no_errbuf),
        cmocka_unit_test(test_format_iso),          cmocka_unit_test(test_format_iso_len),
        cmocka_unit_test(test_format_date),         cmocka_unit_test(test_days_from_civil),
        cmocka_unit_test(test_round_trip_all_days), cmocka_unit_test(test_parse_unit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
