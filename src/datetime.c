/*
 * datetime — Debezium time encodings to ClickHouse DateTime/Date text (see
 * include/cdcpipe/datetime.h).
 *
 * Owns nothing: every function is pure integer arithmetic on the proleptic Gregorian calendar in
 * UTC (Howard Hinnant's days_from_civil / civil_from_days, http://howardhinnant.github.io/
 * date_algorithms.html). No libc time function is called, so TZ never changes a result.
 *
 * Overflow: every int64 input is divided down to days and range-checked against 0000-01-01 ..
 * 9999-12-31 before any multiplication, so INT64_MIN/INT64_MAX are reported as out of range rather
 * than wrapping (the unit tests run under UBSan).
 */
#include "cdcpipe/datetime.h"
#include "cdcpipe/errbuf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define SECS_PER_DAY 86400
/* dt_days_from_civil(0, 1, 1) and dt_days_from_civil(9999, 12, 31). */
#define DAYS_MIN (-719528)
#define DAYS_MAX 2932896
/* How much of an unparsable input an error message quotes. */
#define ERR_QUOTE_MAX 64

typedef struct {
    int64_t y;
    unsigned m, d;
} civil;

/* Floor division and matching non-negative remainder; d > 0. Never overflows (d != -1). */
int64_t dt_floor_div(int64_t v, int64_t d)
{
    int64_t q = v / d;
    if (v % d < 0) q--;
    return q;
}

int64_t dt_floor_mod(int64_t v, int64_t d)
{
    int64_t r = v % d;
    return r < 0 ? r + d : r;
}

int64_t dt_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;                          /* [0, 399] */
    const int64_t mp = m > 2 ? (int64_t)m - 3 : (int64_t)m + 9; /* March-based month */
    const int64_t doy = (153 * mp + 2) / 5 + (int64_t)d - 1;    /* [0, 365] */
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;  /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

/* Inverse of dt_days_from_civil; callers keep z within DAYS_MIN..DAYS_MAX. */
static civil civil_from_days(int64_t z)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;                                      /* [0, 146096] */
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    const int64_t mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
    civil c;
    c.d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    c.m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    c.y = yoe + era * 400 + (c.m <= 2);
    return c;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

/* Writes v as exactly n decimal digits (v < 10^n). */
static char *put_digits(char *p, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

/* "YYYY-MM-DD" for days within DAYS_MIN..DAYS_MAX; returns the position after it (no NUL). */
static char *put_date(char *p, int64_t days)
{
    const civil c = civil_from_days(days);
    p = put_digits(p, (unsigned)c.y, 4);
    *p++ = '-';
    p = put_digits(p, c.m, 2);
    *p++ = '-';
    return put_digits(p, c.d, 2);
}

/* Formats seconds since the epoch, or returns -1 (err untouched) when outside 0000..9999. */
static int format_seconds(int64_t secs, char out[DT_DATETIME_LEN])
{
    const int64_t days = dt_floor_div(secs, SECS_PER_DAY);
    if (days < DAYS_MIN || days > DAYS_MAX) return -1;
    const unsigned sod = (unsigned)dt_floor_mod(secs, SECS_PER_DAY);
    char *p = put_date(out, days);
    *p++ = ' ';
    p = put_digits(p, sod / 3600, 2);
    *p++ = ':';
    p = put_digits(p, sod / 60 % 60, 2);
    *p++ = ':';
    p = put_digits(p, sod % 60, 2);
    *p = '\0';
    return 0;
}

int64_t dt_units_per_second(dt_unit unit)
{
    switch (unit) {
    case DT_SECONDS:
        return 1;
    case DT_MILLIS:
        return 1000;
    case DT_MICROS:
        return 1000000;
    case DT_NANOS:
        return 1000000000;
    }
    return 1;
}

const char *dt_unit_name(dt_unit unit)
{
    switch (unit) {
    case DT_SECONDS:
        return "s";
    case DT_MILLIS:
        return "ms";
    case DT_MICROS:
        return "us";
    case DT_NANOS:
        return "ns";
    }
    return "?";
}

int dt_parse_unit(const char *name, dt_unit *unit)
{
    if (!name) return -1;
    /* "s", or one of "ms", "us", "ns" (dt_unit_name's): no strcmp per unit, it runs per value */
    if (name[0] == 's' && name[1] == '\0') {
        *unit = DT_SECONDS;
        return 0;
    }
    if (name[0] == '\0' || name[1] != 's' || name[2] != '\0') return -1;
    switch (name[0]) {
    case 'm':
        *unit = DT_MILLIS;
        return 0;
    case 'u':
        *unit = DT_MICROS;
        return 0;
    case 'n':
        *unit = DT_NANOS;
        return 0;
    }
    return -1;
}

int dt_format_epoch(int64_t value, dt_unit unit, char out[DT_DATETIME_LEN], char *err,
                    size_t errlen)
{
    int64_t per_second;
    switch (unit) {
    case DT_SECONDS:
        per_second = 1;
        break;
    case DT_MILLIS:
        per_second = 1000;
        break;
    case DT_MICROS:
        per_second = 1000000;
        break;
    case DT_NANOS:
        per_second = 1000000000;
        break;
    default:
        errbuf_set(err, errlen, "unknown epoch unit %d", (int)unit);
        return -1;
    }
    if (format_seconds(dt_floor_div(value, per_second), out) != 0) {
        errbuf_set(err, errlen, "epoch value %" PRId64 " %s is outside years 0000..9999", value,
                   dt_unit_name(unit));
        return -1;
    }
    return 0;
}

int dt_format_date(int64_t days, char out[DT_DATE_LEN], char *err, size_t errlen)
{
    if (days < DAYS_MIN || days > DAYS_MAX) {
        errbuf_set(err, errlen, "date value %" PRId64 " days is outside years 0000..9999", days);
        return -1;
    }
    *put_date(out, days) = '\0';
    return 0;
}

/* ---- ISO-8601 parsing ---- */

typedef struct {
    const char *s;
    size_t len, pos;
    char reason[96]; /* why parsing stopped; quoted with the input by dt_format_iso */
} iso_parser;

static int fail(iso_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(iso_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->reason, sizeof p->reason, fmt, ap);
    va_end(ap);
    return -1;
}

/* Describes the byte at the cursor for an error message. */
static int fail_unexpected(iso_parser *p, const char *expected)
{
    if (p->pos >= p->len)
        return fail(p, "expected %s at position %zu, found end of input", expected, p->pos);
    const unsigned char c = (unsigned char)p->s[p->pos];
    if (c >= 0x20 && c < 0x7f)
        return fail(p, "expected %s at position %zu, found '%c'", expected, p->pos, c);
    return fail(p, "expected %s at position %zu, found byte 0x%02x", expected, p->pos, c);
}

static bool at(const iso_parser *p, char c)
{
    return p->pos < p->len && p->s[p->pos] == c;
}

static bool at_digit(const iso_parser *p)
{
    return p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9';
}

/* Reads exactly n digits into *v. */
static int digits(iso_parser *p, int n, const char *what, unsigned *v)
{
    unsigned r = 0;
    for (int i = 0; i < n; i++) {
        if (!at_digit(p)) return fail_unexpected(p, what);
        r = r * 10 + (unsigned)(p->s[p->pos++] - '0');
    }
    *v = r;
    return 0;
}

static int expect(iso_parser *p, char c, const char *what)
{
    if (!at(p, c)) return fail_unexpected(p, what);
    p->pos++;
    return 0;
}

static int in_range(iso_parser *p, const char *field, unsigned v, unsigned lo, unsigned hi)
{
    if (v < lo || v > hi) return fail(p, "%s %u out of range", field, v);
    return 0;
}

/* Parses the whole input into seconds since the epoch (UTC) plus the first nine fraction digits
 * as nanoseconds (further digits are dropped: floored), or fills p->reason. */
static int parse_iso(iso_parser *p, int64_t *secs, uint32_t *nanos)
{
    unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, oh = 0,
             om = 0; /* gcc -O2 cannot see digits() sets them */
    int sign = 0;

    if (p->len == 0) return fail(p, "empty input");
    if (digits(p, 4, "a 4-digit year", &y) || expect(p, '-', "'-'") ||
        digits(p, 2, "a 2-digit month", &mo) || expect(p, '-', "'-'") ||
        digits(p, 2, "a 2-digit day", &d))
        return -1;
    if (in_range(p, "month", mo, 1, 12)) return -1;
    if (d < 1 || d > days_in_month(y, mo))
        return fail(p, "day %u out of range for %04u-%02u", d, y, mo);

    if (p->pos < p->len) {
        if (!at(p, 'T') && !at(p, ' ')) return fail_unexpected(p, "'T' or ' ' before the time");
        p->pos++;
        if (digits(p, 2, "a 2-digit hour", &h) || expect(p, ':', "':'") ||
            digits(p, 2, "a 2-digit minute", &mi))
            return -1;
        if (at(p, ':')) {
            p->pos++;
            if (digits(p, 2, "2-digit seconds", &s)) return -1;
            if (at(p, '.') || at(p, ',')) {
                p->pos++;
                if (!at_digit(p)) return fail_unexpected(p, "a fraction digit");
                uint32_t scale = 100000000;
                for (; at_digit(p); p->pos++) { /* floored: sub-second digits never carry */
                    *nanos += (uint32_t)(p->s[p->pos] - '0') * scale;
                    scale /= 10;
                }
            }
        }
        if (in_range(p, "hour", h, 0, 23) || in_range(p, "minute", mi, 0, 59) ||
            in_range(p, "second", s, 0, 59))
            return -1;

        if (at(p, 'Z')) {
            p->pos++;
        } else if (at(p, '+') || at(p, '-')) {
            sign = at(p, '+') ? 1 : -1;
            p->pos++;
            if (digits(p, 2, "a 2-digit offset hour", &oh)) return -1;
            if (at(p, ':')) {
                p->pos++;
                if (digits(p, 2, "2-digit offset minutes", &om)) return -1;
            } else if (at_digit(p)) {
                if (digits(p, 2, "2-digit offset minutes", &om)) return -1;
            }
            if (in_range(p, "offset hour", oh, 0, 23) || in_range(p, "offset minute", om, 0, 59))
                return -1;
        }
        if (p->pos < p->len) return fail_unexpected(p, "end of input");
    }

    /* Bounded: |days| < 3e6, so no overflow. Local time minus the offset is UTC. */
    *secs = dt_days_from_civil(y, mo, d) * SECS_PER_DAY + (int64_t)h * 3600 + mi * 60 + s -
            (int64_t)sign * (oh * 3600 + om * 60);
    return 0;
}

/* Copies at most ERR_QUOTE_MAX bytes of s into q for quoting, printable ASCII only. */
static void quote_input(const char *s, size_t len, char q[ERR_QUOTE_MAX + 4])
{
    size_t n = len > ERR_QUOTE_MAX ? ERR_QUOTE_MAX : len;
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        q[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (len > n) {
        memcpy(q + n, "...", 3);
        n += 3;
    }
    q[n] = '\0';
}

/* Parses s into *secs and *nanos, range-checked to years 0000..9999 in UTC, or sets err. */
static int parse_iso_checked(const char *s, size_t len, int64_t *secs, uint32_t *nanos, char *err,
                             size_t errlen)
{
    iso_parser p = {.s = s, .len = s ? len : 0, .pos = 0, .reason = ""};
    char probe[DT_DATETIME_LEN];
    *secs = 0;
    *nanos = 0;
    int rc = parse_iso(&p, secs, nanos);
    if (rc == 0 && format_seconds(*secs, probe) != 0)
        rc = fail(&p, "the UTC time is outside years 0000..9999");
    if (rc != 0) {
        char q[ERR_QUOTE_MAX + 4];
        quote_input(s ? s : "", p.len, q);
        errbuf_set(err, errlen, "cannot parse \"%s\" as an ISO-8601 date-time: %s", q, p.reason);
    }
    return rc;
}

int dt_format_iso(const char *s, size_t len, char out[DT_DATETIME_LEN], char *err, size_t errlen)
{
    int64_t secs;
    uint32_t nanos;
    if (parse_iso_checked(s, len, &secs, &nanos, err, errlen) != 0) return -1;
    return format_seconds(secs, out);
}

int dt_parse_iso(const char *s, size_t len, int64_t *secs, uint32_t *nanos, char *err,
                 size_t errlen)
{
    return parse_iso_checked(s, len, secs, nanos, err, errlen);
}
