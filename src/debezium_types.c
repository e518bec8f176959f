/*
 * debezium_types — Debezium value encodings to ClickHouse text (see
 * include/cdcpipe/debezium_types.h).
 *
 * Owns nothing beyond the duration of a call. Decimals are converted exactly: the unscaled
 * two's-complement bytes are negated to a magnitude if needed and folded into base-10^9 limbs
 * (limb = limb * 256 + byte), so no double and no precision limit below DBZ_DECIMAL_MAX_BYTES.
 * Times are integer arithmetic; calendar work is delegated to datetime.c. The only floating
 * point is dbz_decimal_from_double, whose input already is a double.
 */
#include "cdcpipe/debezium_types.h"
#include "cdcpipe/base64.h"
#include "cdcpipe/errbuf.h"
#include "cdcpipe/xalloc.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S INT64_C(1000000000)
#define SECS_DAY INT64_C(86400)

/* Debezium's MicroTimestamp values for PostgreSQL 'infinity' / '-infinity'
 * (docs/debezium-format.md §4.4 "Dates and times"). */
#define MICROS_POS_INFINITY INT64_C(9223372036825200000)
#define MICROS_NEG_INFINITY (-INT64_C(9223372036832400000))

dbz_quoted dbz_quote(const char *s, size_t len)
{
    dbz_quoted q;
    size_t n = len > DBZ_QUOTE_MAX ? DBZ_QUOTE_MAX : len;
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        q.text[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (len > n) {
        memcpy(q.text + n, "...", 3);
        n += 3;
    }
    q.text[n] = '\0';
    return q;
}

/* ---- bytes ---- */

int dbz_parse_binary_mode(const char *name, dbz_binary_mode *mode)
{
    if (!name) return -1;
    if (strcmp(name, "bytes") == 0 || strcmp(name, "base64") == 0)
        *mode = DBZ_BIN_BASE64;
    else if (strcmp(name, "base64-url-safe") == 0)
        *mode = DBZ_BIN_BASE64_URL;
    else if (strcmp(name, "hex") == 0)
        *mode = DBZ_BIN_HEX;
    else
        return -1;
    return 0;
}

static int b64_value(unsigned char c, bool url)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == (url ? '-' : '+')) return 62;
    if (c == (url ? '_' : '/')) return 63;
    return -1;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void describe_byte(char *buf, size_t n, unsigned char c)
{
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, n, "'%c'", c);
    else
        snprintf(buf, n, "byte 0x%02x", c);
}

static int base64_decode(const char *s, size_t len, bool url, strbuf *out, char *err, size_t errlen)
{
    const char *what = url ? "base64-url-safe" : "base64";
    size_t data = len;
    while (data > 0 && s[data - 1] == '=' && len - data < 2)
        data--;
    const size_t pad = len - data;
    for (size_t i = 0; i < data; i++) {
        if (b64_value((unsigned char)s[i], url) < 0) {
            char c[16];
            describe_byte(c, sizeof c, (unsigned char)s[i]);
            errbuf_set(err, errlen, "invalid %s \"%s\": %s at position %zu", what,
                       dbz_quote(s, len).text, c, i);
            return -1;
        }
    }
    if ((pad && len % 4 != 0) || data % 4 == 1) {
        errbuf_set(err, errlen, "invalid %s \"%s\": length %zu is not a %s length", what,
                   dbz_quote(s, len).text, len, pad ? "padded" : "possible");
        return -1;
    }
    strbuf_reserve(out, data / 4 * 3 + 3);
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < data; i++) {
        acc = (acc << 6) | (uint32_t)b64_value((unsigned char)s[i], url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out->data[out->len++] = (char)((acc >> bits) & 0xff);
        }
    }
    out->data[out->len] = '\0';
    return 0;
}

static int hex_decode(const char *s, size_t len, strbuf *out, char *err, size_t errlen)
{
    if (len % 2) {
        errbuf_set(err, errlen, "invalid hex \"%s\": odd number of digits (%zu)",
                   dbz_quote(s, len).text, len);
        return -1;
    }
    const size_t start = out->len;
    strbuf_reserve(out, len / 2);
    for (size_t i = 0; i < len; i += 2) {
        const int hi = hex_value((unsigned char)s[i]), lo = hex_value((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0) {
            const size_t at = hi < 0 ? i : i + 1;
            char c[16];
            describe_byte(c, sizeof c, (unsigned char)s[at]);
            errbuf_set(err, errlen, "invalid hex \"%s\": %s at position %zu",
                       dbz_quote(s, len).text, c, at);
            strbuf_truncate(out, start);
            return -1;
        }
        out->data[out->len++] = (char)(hi << 4 | lo);
    }
    out->data[out->len] = '\0';
    return 0;
}

int dbz_binary_decode(const char *s, size_t len, dbz_binary_mode mode, strbuf *out, char *err,
                      size_t errlen)
{
    switch (mode) {
    case DBZ_BIN_BASE64:
        return base64_decode(s, len, false, out, err, errlen);
    case DBZ_BIN_BASE64_URL:
        return base64_decode(s, len, true, out, err, errlen);
    case DBZ_BIN_HEX:
        return hex_decode(s, len, out, err, errlen);
    }
    errbuf_set(err, errlen, "unknown binary mode %d", (int)mode);
    return -1;
}

void dbz_hex_encode(const unsigned char *b, size_t n, strbuf *out)
{
    static const char digits[] = "0123456789abcdef";
    strbuf_reserve(out, 2 * n);
    for (size_t i = 0; i < n; i++) {
        out->data[out->len++] = digits[b[i] >> 4];
        out->data[out->len++] = digits[b[i] & 15];
    }
    out->data[out->len] = '\0';
}

/* ---- decimals ---- */

static void put_zeros(strbuf *out, int64_t n)
{
    strbuf_reserve(out, (size_t)n);
    memset(out->data + out->len, '0', (size_t)n);
    out->len += (size_t)n;
    out->data[out->len] = '\0';
}

int dbz_decimal_from_unscaled(const unsigned char *b, size_t n, int64_t scale, strbuf *out,
                              char *err, size_t errlen)
{
    if (n == 0) {
        errbuf_set(err, errlen, "the unscaled value has no bytes");
        return -1;
    }
    if (n > DBZ_DECIMAL_MAX_BYTES) {
        errbuf_set(err, errlen, "the unscaled value has %zu bytes, more than the %d supported", n,
                   DBZ_DECIMAL_MAX_BYTES);
        return -1;
    }
    if (scale < -DBZ_DECIMAL_MAX_SCALE || scale > DBZ_DECIMAL_MAX_SCALE) {
        errbuf_set(err, errlen, "scale %" PRId64 " is outside -%d..%d", scale,
                   DBZ_DECIMAL_MAX_SCALE, DBZ_DECIMAL_MAX_SCALE);
        return -1;
    }

    /* Magnitude: a negative two's-complement value is inverted and incremented. */
    const bool negative = b[0] & 0x80;
    unsigned char *mag = xmalloc(n);
    memcpy(mag, b, n);
    if (negative) {
        unsigned carry = 1;
        for (size_t i = n; i-- > 0;) {
            const unsigned v = (unsigned)(unsigned char)~mag[i] + carry;
            mag[i] = (unsigned char)v;
            carry = v >> 8;
        }
    }

    /* Base 10^9 limbs, least significant first; each byte adds < 2.41 digits. */
    const size_t cap = n * 2410 / 9000 + 2;
    uint32_t *limbs = xrealloc(NULL, cap, sizeof *limbs);
    size_t nl = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t carry = mag[i];
        for (size_t j = 0; j < nl; j++) {
            const uint64_t t = (uint64_t)limbs[j] * 256 + carry;
            limbs[j] = (uint32_t)(t % 1000000000u);
            carry = t / 1000000000u;
        }
        while (carry) {
            limbs[nl++] = (uint32_t)(carry % 1000000000u);
            carry /= 1000000000u;
        }
    }
    free(mag);

    /* Digits without leading zeros; "0" for zero. */
    char *digits = xmalloc(nl * 9 + 2);
    size_t nd = 0;
    if (nl == 0) {
        digits[nd++] = '0';
    } else {
        nd = (size_t)sprintf(digits, "%" PRIu32, limbs[nl - 1]);
        for (size_t j = nl - 1; j-- > 0;)
            nd += (size_t)sprintf(digits + nd, "%09" PRIu32, limbs[j]);
    }
    free(limbs);
    const bool zero = nl == 0;

    if (negative && !zero) strbuf_putc(out, '-');
    if (scale <= 0) {
        strbuf_append(out, digits, nd);
        if (!zero) put_zeros(out, -scale);
    } else if ((uint64_t)scale >= nd) {
        strbuf_append(out, "0.", 2);
        put_zeros(out, scale - (int64_t)nd);
        strbuf_append(out, digits, nd);
    } else {
        const size_t int_digits = nd - (size_t)scale;
        strbuf_append(out, digits, int_digits);
        strbuf_putc(out, '.');
        strbuf_append(out, digits + int_digits, (size_t)scale);
    }
    free(digits);
    return 0;
}

int dbz_decimal_from_base64(const char *s, size_t len, int64_t scale, strbuf *out, char *err,
                            size_t errlen)
{
    strbuf bytes = {0};
    if (base64_decode(s, len, false, &bytes, err, errlen) != 0) {
        strbuf_free(&bytes);
        return -1;
    }
    char why[160];
    int rc = dbz_decimal_from_unscaled((const unsigned char *)bytes.data, bytes.len, scale, out,
                                       why, sizeof why);
    if (rc != 0)
        errbuf_set(err, errlen, "invalid decimal \"%s\" (scale %" PRId64 "): %s",
                   dbz_quote(s, len).text, scale, why);
    strbuf_free(&bytes);
    return rc;
}

int dbz_decimal_check_text(const char *s, size_t len, strbuf *out, char *err, size_t errlen)
{
    size_t i = 0;
    if (i < len && s[i] == '-') i++;
    const size_t int_start = i;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    bool ok = i > int_start;
    if (ok && i < len && s[i] == '.') {
        const size_t frac_start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        ok = i > frac_start;
    }
    ok = ok && i == len;
    if (!ok) {
        const char *body = len && s[0] == '-' ? s + 1 : s;
        const size_t blen = len && s[0] == '-' ? len - 1 : len;
        const bool special = (blen == 3 && strncmp(body, "NAN", 3) == 0) ||
                             (blen == 8 && strncmp(body, "INFINITY", 8) == 0);
        errbuf_set(err, errlen, "\"%s\" is not decimal text ([-]digits[.digits])%s",
                   dbz_quote(s, len).text,
                   special ? ": NaN and infinities cannot be stored in a ClickHouse Decimal" : "");
        return -1;
    }
    strbuf_append(out, s, len);
    return 0;
}

int dbz_decimal_from_double(double v, strbuf *out, char *err, size_t errlen)
{
    if (!isfinite(v)) {
        errbuf_set(err, errlen, "%s cannot be stored in a ClickHouse Decimal",
                   isnan(v) ? "NaN"
                   : v > 0  ? "+Infinity"
                            : "-Infinity");
        return -1;
    }
    if (v == 0) {
        strbuf_putc(out, '0');
        return 0;
    }
    /* Shortest "%.*e" that reads back as v: d.ddd…e±x. */
    char buf[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, v);
        if (strtod(buf, NULL) == v) break;
    }
    const char *p = buf;
    if (*p == '-') {
        strbuf_putc(out, '-');
        p++;
    }
    char mant[24];
    size_t nm = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') mant[nm++] = *p;
    const long exp10 = strtol(p + 1, NULL, 10); /* value = 0.mant × 10^(exp10 + 1) */
    while (nm > 1 && mant[nm - 1] == '0')
        nm--;
    const long point = exp10 + 1; /* digits before the decimal point */
    if (point <= 0) {
        strbuf_append(out, "0.", 2);
        put_zeros(out, -point);
        strbuf_append(out, mant, nm);
    } else if ((size_t)point >= nm) {
        strbuf_append(out, mant, nm);
        put_zeros(out, point - (long)nm);
    } else {
        strbuf_append(out, mant, (size_t)point);
        strbuf_putc(out, '.');
        strbuf_append(out, mant + point, nm - (size_t)point);
    }
    return 0;
}

/* ---- times ---- */

/* Appends the fraction of ns (0..999999999) to p per dbz_format_time's precision rule. */
static char *put_fraction(char *p, uint32_t ns, int precision)
{
    char nine[10];
    snprintf(nine, sizeof nine, "%09" PRIu32, ns);
    int n = precision;
    if (n < 0) {
        n = 9;
        while (n > 0 && nine[n - 1] == '0')
            n--;
    }
    if (n > 0) {
        *p++ = '.';
        memcpy(p, nine, (size_t)n);
        p += n;
    }
    *p = '\0';
    return p;
}

static int check_precision(int precision, bool allow_trim, char *err, size_t errlen)
{
    if (precision > 9 || (precision < 0 && !allow_trim)) {
        errbuf_set(err, errlen, "precision %d is outside 0..9", precision);
        return -1;
    }
    return 0;
}

/* Formats nanoseconds of the day (0 .. 24:00:00 inclusive). */
static void format_time_of_day(int64_t ns_of_day, int precision, char out[DBZ_TIME_LEN])
{
    const int64_t secs = ns_of_day / NS_PER_S;
    const uint32_t ns = (uint32_t)(ns_of_day % NS_PER_S);
    int n = snprintf(out, DBZ_TIME_LEN, "%02d:%02d:%02d", (int)(secs / 3600), (int)(secs / 60 % 60),
                     (int)(secs % 60));
    put_fraction(out + n, ns, precision);
}

int dbz_format_time(int64_t v, dt_unit unit, int precision, char out[DBZ_TIME_LEN], char *err,
                    size_t errlen)
{
    const int64_t per = dt_units_per_second(unit);
    if (per == 0) {
        errbuf_set(err, errlen, "unknown time unit %d", (int)unit);
        return -1;
    }
    if (check_precision(precision, true, err, errlen) != 0) return -1;
    if (v < 0 || v > SECS_DAY * per) {
        errbuf_set(err, errlen,
                   "time of day %" PRId64 " %s is outside 00:00:00..24:00:00 (0..%" PRId64 ")", v,
                   dt_unit_name(unit), SECS_DAY * per);
        return -1;
    }
    format_time_of_day(v / per * NS_PER_S + v % per * (NS_PER_S / per), precision, out);
    return 0;
}

/* Reads exactly two digits at s[*i]. */
static int two_digits(const char *s, size_t len, size_t *i, int *v)
{
    if (*i + 2 > len || s[*i] < '0' || s[*i] > '9' || s[*i + 1] < '0' || s[*i + 1] > '9') return -1;
    *v = (s[*i] - '0') * 10 + (s[*i + 1] - '0');
    *i += 2;
    return 0;
}

int dbz_format_zoned_time(const char *s, size_t len, int precision, char out[DBZ_TIME_LEN],
                          char *err, size_t errlen)
{
    if (check_precision(precision, true, err, errlen) != 0) return -1;
    size_t i = 0;
    int h, m, sec = 0, oh = 0, om = 0, sign = 0;
    int64_t ns = 0;
    const char *why = NULL;
    if (two_digits(s, len, &i, &h) || i >= len || s[i++] != ':' || two_digits(s, len, &i, &m)) {
        why = "expected hh:mm";
        goto bad;
    }
    if (i < len && s[i] == ':') {
        i++;
        if (two_digits(s, len, &i, &sec)) {
            why = "expected 2-digit seconds";
            goto bad;
        }
        if (i < len && s[i] == '.') {
            i++;
            int64_t scale = NS_PER_S / 10;
            const size_t start = i;
            for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
                if (i - start == 9) {
                    why = "more than 9 fraction digits";
                    goto bad;
                }
                ns += (s[i] - '0') * scale;
                scale /= 10;
            }
            if (i == start) {
                why = "expected a fraction digit after '.'";
                goto bad;
            }
        }
    }
    if (i < len && s[i] == 'Z') {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        sign = s[i++] == '+' ? 1 : -1;
        if (two_digits(s, len, &i, &oh)) {
            why = "expected a 2-digit offset hour";
            goto bad;
        }
        if (i < len && s[i] == ':') i++;
        if (i < len && two_digits(s, len, &i, &om)) {
            why = "expected 2-digit offset minutes";
            goto bad;
        }
    }
    if (i != len) {
        why = "unexpected text after the time";
        goto bad;
    }
    if (m > 59 || sec > 59 || oh > 23 || om > 59 || h > 24 || (h == 24 && (m || sec || ns))) {
        why = "a field is out of range";
        goto bad;
    }
    {
        const int64_t day = SECS_DAY * NS_PER_S;
        int64_t t = ((int64_t)h * 3600 + m * 60 + sec) * NS_PER_S + ns -
                    (int64_t)sign * (oh * 3600 + om * 60) * NS_PER_S;
        if (t != day) t = dt_floor_mod(t, day);
        format_time_of_day(t, precision, out);
        return 0;
    }
bad:
    errbuf_set(err, errlen, "cannot parse \"%s\" as a time of day (hh:mm:ss[.f][Z|+hh:mm]): %s",
               dbz_quote(s, len).text, why);
    return -1;
}

/* secs + ns (0..999999999) → DateTime64 text; -1 (err untouched) outside 0000..9999. */
static int format_dt64(int64_t secs, uint32_t ns, int precision, char out[DBZ_DATETIME64_LEN])
{
    char base[DT_DATETIME_LEN];
    if (dt_format_epoch(secs, DT_SECONDS, base, NULL, 0) != 0) return -1;
    memcpy(out, base, DT_DATETIME_LEN - 1);
    put_fraction(out + DT_DATETIME_LEN - 1, ns, precision);
    return 0;
}

int dbz_format_datetime64(int64_t v, dt_unit unit, int precision, char out[DBZ_DATETIME64_LEN],
                          char *err, size_t errlen)
{
    const int64_t per = dt_units_per_second(unit);
    if (per == 0) {
        errbuf_set(err, errlen, "unknown epoch unit %d", (int)unit);
        return -1;
    }
    if (check_precision(precision, false, err, errlen) != 0) return -1;
    const int64_t secs = dt_floor_div(v, per);
    const uint32_t ns = (uint32_t)(dt_floor_mod(v, per) * (NS_PER_S / per));
    if (format_dt64(secs, ns, precision, out) != 0) {
        const char *inf = unit != DT_MICROS          ? ""
                          : v == MICROS_POS_INFINITY ? " (PostgreSQL 'infinity')"
                          : v == MICROS_NEG_INFINITY ? " (PostgreSQL '-infinity')"
                                                     : "";
        errbuf_set(err, errlen, "epoch value %" PRId64 " %s%s is outside years 0000..9999", v,
                   dt_unit_name(unit), inf);
        return -1;
    }
    return 0;
}

static bool is_infinity_text(const char *s, size_t len)
{
    return (len == 8 && memcmp(s, "infinity", 8) == 0) ||
           (len == 9 && memcmp(s, "-infinity", 9) == 0);
}

int dbz_format_datetime64_iso(const char *s, size_t len, int precision,
                              char out[DBZ_DATETIME64_LEN], char *err, size_t errlen)
{
    if (check_precision(precision, false, err, errlen) != 0) return -1;
    if (is_infinity_text(s, len)) {
        errbuf_set(err, errlen, "\"%s\" (PostgreSQL %s) has no DateTime64 value",
                   dbz_quote(s, len).text, dbz_quote(s, len).text);
        return -1;
    }
    int64_t secs;
    uint32_t ns;
    if (dt_parse_iso(s, len, &secs, &ns, err, errlen) != 0) return -1;
    return format_dt64(secs, ns, precision, out); /* dt_parse_iso checked the range */
}

int dbz_iso_to_epoch(const char *s, size_t len, dt_unit unit, int64_t *v, char *err, size_t errlen)
{
    const int64_t per = dt_units_per_second(unit);
    if (per == 0) {
        errbuf_set(err, errlen, "unknown epoch unit %d", (int)unit);
        return -1;
    }
    if (is_infinity_text(s, len)) {
        errbuf_set(err, errlen, "\"%s\" (PostgreSQL %s) has no epoch value", dbz_quote(s, len).text,
                   dbz_quote(s, len).text);
        return -1;
    }
    int64_t secs;
    uint32_t ns;
    if (dt_parse_iso(s, len, &secs, &ns, err, errlen) != 0) return -1;
    const int64_t sub = (int64_t)ns / (NS_PER_S / per); /* 0 <= sub < per */
    /* secs * per + sub, computed as (secs + 1) * per - (per - sub) below zero so that the most
     * negative representable value does not overflow on the way. */
    bool fits;
    if (secs >= 0) {
        fits = secs <= (INT64_MAX - sub) / per;
        if (fits) *v = secs * per + sub;
    } else {
        fits = secs + 1 >= INT64_MIN / per && (secs + 1) * per >= INT64_MIN + (per - sub);
        if (fits) *v = (secs + 1) * per - (per - sub);
    }
    if (!fits) {
        errbuf_set(err, errlen, "\"%s\" does not fit a 64-bit count of %s", dbz_quote(s, len).text,
                   dt_unit_name(unit));
        return -1;
    }
    return 0;
}

void dbz_format_interval(int64_t us, dbz_interval_style style, char out[DBZ_INTERVAL_LEN])
{
    const bool neg = us < 0;
    const uint64_t mag = neg ? (uint64_t)(-(us + 1)) + 1 : (uint64_t)us;
    const uint64_t total_s = mag / 1000000;
    const uint32_t frac_ns = (uint32_t)(mag % 1000000) * 1000;
    char *p = out;
    if (neg) *p++ = '-';
    if (style == DBZ_INTERVAL_SECONDS) {
        p += sprintf(p, "%" PRIu64, total_s);
        put_fraction(p, frac_ns, -1);
        return;
    }
    const uint64_t days = total_s / SECS_DAY;
    const unsigned h = (unsigned)(total_s / 3600 % 24), m = (unsigned)(total_s / 60 % 60),
                   s = (unsigned)(total_s % 60);
    *p++ = 'P';
    if (days) p += sprintf(p, "%" PRIu64 "D", days);
    if (h || m || s || frac_ns || !days) {
        *p++ = 'T';
        if (h) p += sprintf(p, "%uH", h);
        if (m) p += sprintf(p, "%uM", m);
        if (s || frac_ns || (!h && !m)) {
            p += sprintf(p, "%u", s);
            p = put_fraction(p, frac_ns, -1);
            *p++ = 'S';
        }
    }
    *p = '\0';
}

int dbz_interval_check_text(const char *s, size_t len, strbuf *out, char *err, size_t errlen)
{
    static const char date_units[] = "YMWD", time_units[] = "HMS";
    size_t i = 0;
    const char *why = NULL;
    if (i < len && s[i] == '-') i++;
    if (i >= len || s[i] != 'P') {
        why = "expected 'P'";
        goto bad;
    }
    i++;
    bool in_time = false, any = false, any_time = false;
    const char *units = date_units;
    while (i < len) {
        if (s[i] == 'T' && !in_time) {
            in_time = true;
            units = time_units;
            i++;
            continue;
        }
        if (s[i] == '-') i++;
        const size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start) {
            why = "expected a number";
            goto bad;
        }
        bool fraction = false;
        if (i < len && (s[i] == '.' || s[i] == ',')) {
            const size_t fstart = ++i;
            while (i < len && s[i] >= '0' && s[i] <= '9')
                i++;
            if (i == fstart) {
                why = "expected a fraction digit";
                goto bad;
            }
            fraction = true;
        }
        const char *u = i < len ? strchr(units, s[i]) : NULL;
        if (!u || s[i] == '\0') {
            why = in_time ? "expected H, M or S (in order)" : "expected Y, M, W or D (in order)";
            goto bad;
        }
        if (fraction && !(in_time && *u == 'S')) {
            why = "only seconds may have a fraction";
            goto bad;
        }
        units = u + 1; /* designators must come in order, each once */
        i++;
        any = true;
        any_time = any_time || in_time;
    }
    if (!any || (in_time && !any_time)) {
        why = in_time ? "expected a component after 'T'" : "expected at least one component";
        goto bad;
    }
    strbuf_append(out, s, len);
    return 0;
bad:
    errbuf_set(err, errlen, "\"%s\" is not an ISO-8601 duration (P1Y2M3DT4H5M6.78S): %s",
               dbz_quote(s, len).text, why);
    return -1;
}

/* ---- other types ---- */

int dbz_format_uuid(const char *s, size_t len, char out[DBZ_UUID_LEN], char *err, size_t errlen)
{
    bool ok = len == 36;
    for (size_t i = 0; ok && i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            ok = s[i] == '-';
            out[i] = '-';
        } else {
            const int v = hex_value((unsigned char)s[i]);
            ok = v >= 0;
            out[i] = "0123456789abcdef"[v < 0 ? 0 : v];
        }
    }
    if (!ok) {
        errbuf_set(err, errlen,
                   "\"%s\" is not a UUID (8-4-4-4-12 hex digits, e.g. "
                   "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11)",
                   dbz_quote(s, len).text);
        return -1;
    }
    out[36] = '\0';
    return 0;
}

/* Longest bit string dbz_bits_from_bytes writes (PostgreSQL's own bit(n) limit is 83886080). */
#define BITS_MAX_LENGTH (1 << 24)

int dbz_bits_from_bytes(const unsigned char *b, size_t n, int64_t length, strbuf *out, char *err,
                        size_t errlen)
{
    if (length < 0 || length > BITS_MAX_LENGTH) {
        errbuf_set(err, errlen, "bit length %" PRId64 " is outside 0..%d", length, BITS_MAX_LENGTH);
        return -1;
    }
    if (n > BITS_MAX_LENGTH / 8) {
        errbuf_set(err, errlen, "%zu bytes are more bits than the %d supported", n,
                   BITS_MAX_LENGTH);
        return -1;
    }
    if (length == 0) length = (int64_t)n * 8;
    for (uint64_t k = (uint64_t)length; k < (uint64_t)n * 8; k++) {
        if (b[k / 8] >> (k % 8) & 1) {
            errbuf_set(err, errlen,
                       "bit %" PRIu64 " is set but the column has only %" PRId64 " bits", k,
                       length);
            return -1;
        }
    }
    strbuf_reserve(out, (size_t)length);
    for (int64_t k = length - 1; k >= 0; k--) {
        const size_t byte = (size_t)k / 8;
        const bool set = byte < n && (b[byte] >> (k % 8) & 1);
        out->data[out->len++] = set ? '1' : '0';
    }
    out->data[out->len] = '\0';
    return 0;
}

/* ---- placeholders ---- */

bool dbz_is_unavailable_string(const char *s, size_t len, const char *placeholder)
{
    if (!placeholder) placeholder = DBZ_UNAVAILABLE;
    const size_t plen = strlen(placeholder);
    if (len == plen && memcmp(s, placeholder, len) == 0) return true;
    /* hstore (hstore.handling.mode=json): {"P":"P"} */
    if (len == 2 * plen + 7 && memcmp(s, "{\"", 2) == 0 && memcmp(s + 2, placeholder, plen) == 0 &&
        memcmp(s + 2 + plen, "\":\"", 3) == 0 && memcmp(s + 5 + plen, placeholder, plen) == 0 &&
        memcmp(s + 5 + 2 * plen, "\"}", 2) == 0)
        return true;
    const unsigned char *pb = (const unsigned char *)placeholder;
    if (len == 2 * plen) { /* hex, either case */
        size_t i = 0;
        for (; i < plen; i++) {
            const int hi = hex_value((unsigned char)s[2 * i]),
                      lo = hex_value((unsigned char)s[2 * i + 1]);
            if (hi != (int)(pb[i] >> 4) || lo != (int)(pb[i] & 15)) break;
        }
        if (i == plen) return true;
    }
    if (len < (plen + 2) / 3 * 4 - 2 || len > (plen + 2) / 3 * 4) return false;
    bool found = false;
    for (int url = 0; url <= 1 && !found; url++) {
        strbuf enc = {0};
        base64_encode(pb, plen, url, &enc);
        size_t elen = enc.len;
        while (elen > 0 && enc.data[elen - 1] == '=')
            elen--;
        /* with or without the padding */
        found = (len == enc.len && memcmp(s, enc.data, len) == 0) ||
                (len == elen && memcmp(s, enc.data, len) == 0);
        strbuf_free(&enc);
    }
    return found;
}
