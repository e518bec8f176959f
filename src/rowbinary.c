/*
 * rowbinary — Lua row table → one ClickHouse RowBinary row (see include/cdcpipe/rowbinary.h for
 * the byte layouts and the conversions; this file follows it section by section).
 */
#include "cdcpipe/rowbinary.h"

#include <arpa/inet.h>
#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdcpipe/errbuf.h"
#include "cdcpipe/row_json.h"
#include "cdcpipe/json_fast.h"

/* Values are shown in messages cut to this many bytes. */
#define VALUE_SHOWN 64

/* ---- the state of one row ---- */

typedef struct {
    strbuf *out;
    lua_State *L;
    const rowbinary_column *column; /* the column being written */
    const char *server_timezone;
    /* where in the column's value we are: one frame per container entered, turned into text
     * ("[3]", ".name", "[\"key\"]", "key \"k\"") only when a value is refused */
    struct {
        char kind; /* '[': element `index`; '.': element `name`; 'k'/'v': a map's key or
                    * the value of the key at stack index `key` */
        size_t index;
        const char *name;
        int key;
    } path[CH_TYPE_MAX_DEPTH];
    int depth;
    char *err;
    size_t errlen;
} encoder;

/* ---- output ---- */

/* The low `bytes` bytes of v, least significant first. */
static void put_le(strbuf *out, uint64_t v, unsigned bytes)
{
    char b[8];
    for (unsigned i = 0; i < bytes; i++)
        b[i] = (char)(unsigned char)(v >> (8 * i));
    strbuf_append(out, b, bytes);
}

void rowbinary_leb128(strbuf *out, size_t n)
{
    char b[10];
    size_t len = 0;
    do {
        unsigned char byte = n & 0x7f;
        n >>= 7;
        b[len++] = (char)(n ? byte | 0x80 : byte);
    } while (n);
    strbuf_append(out, b, len);
}

/* ---- describing values in messages ---- */

/* A float as row_json writes it (integral values within ±2^53 as integers, otherwise the
 * shortest of %.15g/%.16g/%.17g that reads back the same): the text JSONEachRow would get. */
static void format_double(double v, char buf[32])
{
    if (v == floor(v) && fabs(v) <= 9007199254740992.0) {
        snprintf(buf, 32, "%.0f", v);
        return;
    }
    snprintf(buf, 32, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, 32, "%.16g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, 32, "%.17g", v);
}

/* The value at idx for a message: strings quoted and escaped, cut to VALUE_SHOWN bytes. */
static void describe(lua_State *L, int idx, char *buf, size_t n)
{
    switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL:
        snprintf(buf, n, "nil");
        return;
    case LUA_TBOOLEAN:
        snprintf(buf, n, "%s", lua_toboolean(L, idx) ? "true" : "false");
        return;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            snprintf(buf, n, "%lld", (long long)lua_tointeger(L, idx));
        } else {
            double v = (double)lua_tonumber(L, idx);
            char text[32];
            if (isnan(v))
                snprintf(text, sizeof text, "nan");
            else if (isinf(v))
                snprintf(text, sizeof text, "%s", v > 0 ? "inf" : "-inf");
            else
                format_double(v, text);
            snprintf(buf, n, "%s", text);
        }
        return;
    case LUA_TLIGHTUSERDATA:
        snprintf(buf, n, "%s",
                 lua_touserdata(L, idx) == row_json_null() ? "cdc.null" : "a light userdata");
        return;
    case LUA_TSTRING:
        break;
    default:
        snprintf(buf, n, "a %s", lua_typename(L, lua_type(L, idx)));
        return;
    }
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    strbuf b = {0};
    strbuf_putc(&b, '"');
    for (size_t i = 0; i < len && i < VALUE_SHOWN; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            strbuf_printf(&b, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            strbuf_printf(&b, "\\x%02x", c);
        else
            strbuf_putc(&b, (char)c);
    }
    strbuf_putc(&b, '"');
    if (len > VALUE_SHOWN) strbuf_printf(&b, "... (%zu bytes)", len);
    snprintf(buf, n, "%s", b.data);
    strbuf_free(&b);
}

/* Fills err with `column "c" (T)[ at PATH (inner T)]: cannot store VALUE: REASON` and
 * returns -1. t is the type the value was refused by. */
static int refuse(encoder *e, const ch_type *t, int idx, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refuse(encoder *e, const ch_type *t, int idx, const char *fmt, ...)
{
    char reason[256], value[VALUE_SHOWN * 4 + 40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    describe(e->L, idx, value, sizeof value);
    strbuf column_type = {0}, where = {0};
    ch_type_format(e->column->type, &column_type);
    for (int i = 0; i < e->depth; i++) {
        strbuf_puts(&where, i ? "" : " at ");
        if (e->path[i].kind == '[') {
            strbuf_printf(&where, "[%zu]", e->path[i].index);
        } else if (e->path[i].kind == '.') {
            strbuf_printf(&where, ".%s", e->path[i].name);
        } else {
            char key[VALUE_SHOWN * 4 + 40];
            describe(e->L, e->path[i].key, key, sizeof key);
            strbuf_printf(&where, e->path[i].kind == 'k' ? "key %s" : "[%s]", key);
        }
    }
    if (e->depth) {
        strbuf_puts(&where, " (");
        ch_type_format(t, &where);
        strbuf_putc(&where, ')');
    }
    errbuf_set(e->err, e->errlen, "column \"%s\" (%s)%s: cannot store %s: %s", e->column->name,
               column_type.data, where.len ? where.data : "", value, reason);
    strbuf_free(&column_type);
    strbuf_free(&where);
    return -1;
}

/* ---- integers of any width: a sign and a 256-bit magnitude ---- */

typedef struct {
    bool negative;
    uint32_t w[8]; /* magnitude, least significant 32 bits first */
} bignum;

static void bignum_from_i64(bignum *v, int64_t x)
{
    memset(v, 0, sizeof *v);
    v->negative = x < 0;
    uint64_t m = x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
    v->w[0] = (uint32_t)m;
    v->w[1] = (uint32_t)(m >> 32);
}

/* v = v * 10 + digit; false when the magnitude no longer fits 256 bits. */
static bool bignum_mul10_add(bignum *v, unsigned digit)
{
    uint64_t carry = digit;
    for (int i = 0; i < 8; i++) {
        uint64_t x = (uint64_t)v->w[i] * 10 + carry;
        v->w[i] = (uint32_t)x;
        carry = x >> 32;
    }
    return carry == 0;
}

/* Number of significant bits of the magnitude (0 for zero). */
static unsigned bignum_bits(const bignum *v)
{
    for (int i = 7; i >= 0; i--)
        if (v->w[i]) {
            unsigned bits = 32 * (unsigned)i;
            for (uint32_t x = v->w[i]; x; x >>= 1)
                bits++;
            return bits;
        }
    return 0;
}

/* Whether v fits a `bits`-wide integer, signed or not. */
static bool bignum_fits(const bignum *v, unsigned bits, bool is_signed)
{
    unsigned n = bignum_bits(v);
    if (n == 0) return true;
    if (!is_signed) return !v->negative && n <= bits;
    if (n <= bits - 1) return true;
    /* only -2^(bits-1) is left: a single bit, the top one */
    if (!v->negative || n != bits) return false;
    for (int i = 0; i < 8; i++) {
        uint32_t x = v->w[i];
        if (i == (int)(bits - 1) / 32) x &= ~(1u << ((bits - 1) % 32));
        if (x) return false;
    }
    return true;
}

/* v's value when it fits Int32. */
static int64_t bignum_i32(const bignum *v)
{
    return v->negative ? -(int64_t)v->w[0] : (int64_t)v->w[0];
}

/* Writes v as a `bytes`-wide two's complement integer, little-endian. */
static void put_bignum(strbuf *out, const bignum *v, unsigned bytes)
{
    uint32_t w[8];
    memcpy(w, v->w, sizeof w);
    if (v->negative) { /* two's complement: invert, add one */
        uint64_t carry = 1;
        for (int i = 0; i < 8; i++) {
            uint64_t x = (uint64_t)(uint32_t)~w[i] + carry;
            w[i] = (uint32_t)x;
            carry = x >> 32;
        }
    }
    for (unsigned i = 0; i < bytes; i += 4)
        put_le(out, w[i / 4], bytes - i < 4 ? bytes - i : 4);
}

/* "-?[0-9]+" into v; false when s is anything else or beyond 256 bits. */
static bool parse_digits(const char *s, size_t len, bignum *v)
{
    memset(v, 0, sizeof *v);
    size_t i = 0;
    if (len > 0 && s[0] == '-') {
        v->negative = true;
        i = 1;
    }
    if (i == len) return false;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        if (!bignum_mul10_add(v, (unsigned)(s[i] - '0'))) return false;
    }
    return true;
}

/* Parses decimal text — "-?digits[.digits][e[+-]digits]" with at least one digit — into
 * the unscaled integer value × 10^scale. Refused (with why filled) when it is not such text,
 * when a non-zero digit lies beyond the scale, or when the unscaled value has more than
 * `precision` digits (precision ≤ 76, so it always fits the bignum). */
static bool parse_decimal(const char *s, size_t len, unsigned scale, unsigned precision, bignum *v,
                          char *why, size_t whylen)
{
    memset(v, 0, sizeof *v);
    size_t i = 0;
    if (i < len && s[i] == '-') {
        v->negative = true;
        i++;
    }
    size_t mantissa = i, digits = 0, fraction = 0;
    bool point = false;
    for (; i < len; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            digits++;
            if (point) fraction++;
        } else if (s[i] == '.' && !point) {
            point = true;
        } else {
            break;
        }
    }
    size_t mantissa_end = i;
    long exponent = 0;
    if (digits > 0 && i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool negative_exponent = false;
        if (i < len && (s[i] == '+' || s[i] == '-')) negative_exponent = s[i++] == '-';
        size_t start = i;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            if (exponent < 100000) exponent = exponent * 10 + (s[i] - '0');
        if (i == start) digits = 0; /* "1e": not a number */
        if (negative_exponent) exponent = -exponent;
    }
    if (digits == 0 || i != len) {
        snprintf(why, whylen, "not a decimal number");
        return false;
    }
    if (exponent >= 100000 || exponent <= -100000) {
        snprintf(why, whylen, "exponent out of range");
        return false;
    }
    /* value = D × 10^(exponent - fraction), D the mantissa's digits; unscaled = D × 10^shift */
    long shift = exponent - (long)fraction + (long)scale;
    /* the digits kept: all of them, or without the last -shift ones, which must be zeros */
    size_t keep = digits;
    if (shift < 0) {
        size_t dropped = (size_t)-shift < digits ? (size_t)-shift : digits;
        keep = digits - dropped;
        size_t seen = 0;
        for (size_t j = mantissa; j < mantissa_end; j++) {
            if (s[j] == '.') continue;
            if (seen++ >= keep && s[j] != '0') {
                snprintf(why, whylen, "more than %u decimal places (values are not rounded)",
                         scale);
                return false;
            }
        }
        shift = 0;
    }
    /* significant digits: the kept ones after leading zeros, then shift zeros */
    size_t seen = 0, significant = 0;
    bool leading = true;
    for (size_t j = mantissa; j < mantissa_end && seen < keep; j++) {
        if (s[j] == '.') continue;
        seen++;
        if (leading && s[j] == '0') continue;
        leading = false;
        significant++;
    }
    if (significant == 0) {
        v->negative = false; /* zero, "-0" included */
        return true;
    }
    if (significant + (size_t)shift > precision) {
        snprintf(why, whylen, "more than %u digits before the decimal point", precision - scale);
        return false;
    }
    seen = 0;
    for (size_t j = mantissa; j < mantissa_end && seen < keep; j++) {
        if (s[j] == '.') continue;
        seen++;
        bignum_mul10_add(v, (unsigned)(s[j] - '0')); /* ≤ 76 digits: cannot overflow */
    }
    for (long k = 0; k < shift; k++)
        bignum_mul10_add(v, 0);
    return true;
}

/* ---- reading Lua values ---- */

static bool is_null(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == row_json_null();
}

/* An integer value: a Lua integer, an integral float, or "-?[0-9]+" text. */
static bool read_integer(lua_State *L, int idx, bignum *v, const char **why)
{
    if (lua_isinteger(L, idx)) {
        bignum_from_i64(v, (int64_t)lua_tointeger(L, idx));
        return true;
    }
    if (lua_type(L, idx) == LUA_TNUMBER) {
        double d = (double)lua_tonumber(L, idx);
        if (!isfinite(d) || d != floor(d)) {
            *why = "not an integer";
            return false;
        }
        if (d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
            bignum_from_i64(v, (int64_t)d);
            return true;
        }
        char text[400]; /* an integral double printed exactly: at most 309 digits */
        snprintf(text, sizeof text, "%.0f", d);
        if (parse_digits(text, strlen(text), v)) return true;
        *why = "out of range";
        return false;
    }
    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (parse_digits(s, len, v)) return true;
        size_t start = len > 0 && s[0] == '-' ? 1 : 0;
        bool digits_only = len > start; /* then it was too large for 256 bits */
        for (size_t i = start; i < len; i++)
            if (s[i] < '0' || s[i] > '9') digits_only = false;
        *why = digits_only ? "out of range" : "not an integer (decimal digits, optional '-')";
        return false;
    }
    *why = "not an integer";
    return false;
}

/* The bit width and signedness of an integer kind. */
static unsigned int_bits(ch_kind kind, bool *is_signed)
{
    static const unsigned bits[] = {8, 16, 32, 64, 128, 256};
    *is_signed = kind <= CH_INT256;
    return bits[*is_signed ? kind - CH_INT8 : kind - CH_UINT8];
}

static int put_integer(encoder *e, const ch_type *t, int idx)
{
    bool is_signed;
    unsigned bits = int_bits(t->kind, &is_signed);
    bignum v;
    const char *why = NULL;
    if (t->kind == CH_UINT8 && lua_type(e->L, idx) == LUA_TBOOLEAN) {
        put_le(e->out, lua_toboolean(e->L, idx) ? 1 : 0, 1);
        return 0;
    }
    if (!read_integer(e->L, idx, &v, &why) || !bignum_fits(&v, bits, is_signed)) {
        if (why && strcmp(why, "out of range") != 0) return refuse(e, t, idx, "%s", why);
        if (bits > 64) return refuse(e, t, idx, "out of range");
        if (is_signed) {
            long long hi = bits == 64 ? INT64_MAX : (1LL << (bits - 1)) - 1;
            return refuse(e, t, idx, "out of range %lld..%lld", -hi - 1, hi);
        }
        unsigned long long hi = bits == 64 ? UINT64_MAX : (1ULL << bits) - 1;
        return refuse(e, t, idx, "out of range 0..%llu", hi);
    }
    put_bignum(e->out, &v, bits / 8);
    return 0;
}

/* A float column's value as a double; why set when refused. */
static bool read_float(lua_State *L, int idx, double *out, const char **why)
{
    if (lua_type(L, idx) == LUA_TNUMBER) {
        *out = lua_isinteger(L, idx) ? (double)lua_tointeger(L, idx) : (double)lua_tonumber(L, idx);
    } else if (lua_type(L, idx) == LUA_TSTRING) {
        /* decimal notation only: [-]digits[.digits][e[+-]digits] or [-].digits[…] */
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        size_t i = 0, digits = 0;
        if (i < len && s[i] == '-') i++;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
        if (i < len && s[i] == '.')
            for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
                digits++;
        if (digits > 0 && i < len && (s[i] == 'e' || s[i] == 'E')) {
            i++;
            if (i < len && (s[i] == '+' || s[i] == '-')) i++;
            size_t start = i;
            for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {}
            if (i == start) digits = 0;
        }
        if (digits == 0 || i != len) {
            *why = "not a number";
            return false;
        }
        *out = strtod(s, NULL); /* Lua strings end with a NUL; the whole text was checked */
    } else {
        *why = "not a number";
        return false;
    }
    if (!isfinite(*out)) {
        *why = "not a finite number";
        return false;
    }
    return true;
}

static int put_float(encoder *e, const ch_type *t, int idx)
{
    double d;
    const char *why;
    if (!read_float(e->L, idx, &d, &why)) return refuse(e, t, idx, "%s", why);
    if (t->kind == CH_FLOAT64) {
        uint64_t bits;
        memcpy(&bits, &d, 8);
        put_le(e->out, bits, 8);
        return 0;
    }
    /* rounded once, from the value itself: an integer or text straight to float (as a server
     * parsing the text does), a Lua float from its double */
    float f = lua_isinteger(e->L, idx)             ? (float)lua_tointeger(e->L, idx)
              : lua_type(e->L, idx) == LUA_TSTRING ? strtof(lua_tostring(e->L, idx), NULL)
                                                   : (float)d;
    if (!isfinite(f)) return refuse(e, t, idx, "beyond Float32's range");
    uint32_t bits;
    memcpy(&bits, &f, 4);
    put_le(e->out, bits, 4);
    return 0;
}

static int put_bool(encoder *e, const ch_type *t, int idx)
{
    if (lua_type(e->L, idx) == LUA_TBOOLEAN) {
        put_le(e->out, lua_toboolean(e->L, idx) ? 1 : 0, 1);
        return 0;
    }
    if (lua_isinteger(e->L, idx) && (lua_tointeger(e->L, idx) & ~(lua_Integer)1) == 0) {
        put_le(e->out, (uint64_t)lua_tointeger(e->L, idx), 1);
        return 0;
    }
    return refuse(e, t, idx, "Bool takes true, false, 0 or 1");
}

/* String and FixedString: the bytes of a string, or the JSON text of a number or boolean. */
static int put_string(encoder *e, const ch_type *t, int idx)
{
    char text[32];
    const char *s = text;
    size_t len;
    switch (lua_type(e->L, idx)) {
    case LUA_TSTRING:
        s = lua_tolstring(e->L, idx, &len);
        break;
    case LUA_TBOOLEAN:
        len =
            (size_t)snprintf(text, sizeof text, "%s", lua_toboolean(e->L, idx) ? "true" : "false");
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(e->L, idx)) {
            snprintf(text, sizeof text, "%lld", (long long)lua_tointeger(e->L, idx));
        } else {
            double d = (double)lua_tonumber(e->L, idx);
            if (!isfinite(d)) return refuse(e, t, idx, "not a finite number");
            format_double(d, text);
        }
        len = strlen(text);
        break;
    default:
        return refuse(e, t, idx, "takes a string, a number or a boolean");
    }
    if (t->kind == CH_STRING) {
        rowbinary_leb128(e->out, len);
        strbuf_append(e->out, s, len);
        return 0;
    }
    if (len > t->size) return refuse(e, t, idx, "longer than %u bytes", t->size);
    strbuf_append(e->out, s, len);
    strbuf_reserve(e->out, t->size - len);
    memset(e->out->data + e->out->len, 0, t->size - len);
    e->out->len += t->size - len;
    e->out->data[e->out->len] = '\0';
    return 0;
}

/* ---- dates and times ---- */

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* n decimal digits at s into *v; false if any is not a digit. */
static bool read_fixed_digits(const char *s, unsigned n, unsigned *v)
{
    *v = 0;
    for (unsigned i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        *v = *v * 10 + (unsigned)(s[i] - '0');
    }
    return true;
}

/* "YYYY-MM-DD" at the start of s (at least 10 bytes) → days since 1970-01-01. */
static bool parse_date(const char *s, int64_t *days)
{
    unsigned y, m, d;
    if (!read_fixed_digits(s, 4, &y) || s[4] != '-' || !read_fixed_digits(s + 5, 2, &m) ||
        s[7] != '-' || !read_fixed_digits(s + 8, 2, &d))
        return false;
    if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m)) return false;
    *days = days_from_civil(y, m, d);
    return true;
}

/* "YYYY-MM-DD", or "YYYY-MM-DD hh:mm:ss" (or 'T') with an optional ".digits" fraction → local
 * seconds since 1970-01-01 00:00:00 and the fraction's digits (frac_len 0 when none). */
static bool parse_datetime(const char *s, size_t len, int64_t *secs, const char **frac,
                           size_t *frac_len)
{
    int64_t days;
    *frac = NULL;
    *frac_len = 0;
    if (len < 10 || !parse_date(s, &days)) return false;
    if (len == 10) {
        *secs = days * 86400;
        return true;
    }
    unsigned h, mi, sec;
    if (len < 19 || (s[10] != ' ' && s[10] != 'T') || !read_fixed_digits(s + 11, 2, &h) ||
        s[13] != ':' || !read_fixed_digits(s + 14, 2, &mi) || s[16] != ':' ||
        !read_fixed_digits(s + 17, 2, &sec) || h > 23 || mi > 59 || sec > 59)
        return false;
    if (len > 19) {
        if (s[19] != '.' || len == 20) return false;
        for (size_t i = 20; i < len; i++)
            if (s[i] < '0' || s[i] > '9') return false;
        *frac = s + 20;
        *frac_len = len - 20;
    }
    *secs = days * 86400 + h * 3600 + mi * 60 + sec;
    return true;
}

/* The UTC offset (seconds east) of a zone the encoder knows: UTC and its aliases, and the
 * fixed Etc/GMT±N zones (whose sign is inverted, as in tzdata: Etc/GMT-3 is UTC+3). */
static bool zone_offset(const char *zone, long *offset)
{
    static const char *const utc[] = {
        "UTC",       "Etc/UTC",       "GMT",   "Etc/GMT",  "Etc/GMT0",  "Etc/GMT+0",
        "Etc/GMT-0", "GMT0",          "GMT+0", "GMT-0",    "UCT",       "Etc/UCT",
        "Universal", "Etc/Universal", "Zulu",  "Etc/Zulu", "Greenwich", "Etc/Greenwich",
    };
    *offset = 0;
    if (!zone) return false;
    for (size_t i = 0; i < sizeof utc / sizeof utc[0]; i++)
        if (strcmp(zone, utc[i]) == 0) return true;
    if (strncmp(zone, "Etc/GMT", 7) != 0 || (zone[7] != '+' && zone[7] != '-')) return false;
    const char *n = zone + 8;
    unsigned hours;
    size_t digits = strlen(n);
    if (digits < 1 || digits > 2 || !read_fixed_digits(n, (unsigned)digits, &hours) || hours > 14 ||
        (n[0] == '0' && digits == 2) || (zone[7] == '+' && hours > 12))
        return false;
    *offset = (zone[7] == '-' ? 1 : -1) * (long)hours * 3600;
    return true;
}

/* The zone whose wall-clock time the column's text is in. */
static const char *column_zone(const encoder *e, const ch_type *t)
{
    return t->timezone ? t->timezone : e->server_timezone;
}

static int put_date(encoder *e, const ch_type *t, int idx)
{
    bool date32 = t->kind == CH_DATE32;
    int64_t lo = date32 ? -25567 : 0, hi = date32 ? 120529 : 65535; /* 1900-01-01..2299-12-31 */
    int64_t days;
    if (lua_type(e->L, idx) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(e->L, idx, &len);
        if (len != 10 || !parse_date(s, &days)) return refuse(e, t, idx, "not a date (YYYY-MM-DD)");
    } else {
        bignum v;
        const char *why;
        if (lua_type(e->L, idx) != LUA_TNUMBER || !read_integer(e->L, idx, &v, &why))
            return refuse(e, t, idx, "not a date (YYYY-MM-DD) or a number of days");
        days = bignum_fits(&v, 32, true) ? bignum_i32(&v) : INT64_MAX;
    }
    if (days < lo || days > hi)
        return refuse(e, t, idx, "outside %s",
                      date32 ? "1900-01-01..2299-12-31" : "1970-01-01..2149-06-06");
    put_le(e->out, (uint64_t)days, date32 ? 4 : 2);
    return 0;
}

static int put_datetime(encoder *e, const ch_type *t, int idx)
{
    bool dt64 = t->kind == CH_DATETIME64;
    int64_t secs;
    const char *frac = NULL;
    size_t frac_len = 0;
    if (lua_type(e->L, idx) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(e->L, idx, &len);
        if (!parse_datetime(s, len, &secs, &frac, &frac_len))
            return refuse(e, t, idx, "not a date-time (YYYY-MM-DD hh:mm:ss[.fraction])");
        long offset;
        const char *zone = column_zone(e, t);
        if (!zone)
            return refuse(e, t, idx,
                          "the server's time zone is unknown, so the text cannot be read");
        if (!zone_offset(zone, &offset))
            return refuse(e, t, idx,
                          "text in time zone '%s' is not supported (only UTC and "
                          "fixed Etc/GMT offsets)",
                          zone);
        secs -= offset;
    } else if (!dt64 && lua_type(e->L, idx) == LUA_TNUMBER) {
        bignum v;
        const char *why;
        if (!read_integer(e->L, idx, &v, &why)) return refuse(e, t, idx, "%s", why);
        if (!bignum_fits(&v, 32, false)) return refuse(e, t, idx, "outside 0..4294967295");
        secs = (int64_t)v.w[0];
    } else {
        return refuse(e, t, idx, "%s",
                      dt64 ? "not date-time text (YYYY-MM-DD hh:mm:ss[.fraction])"
                           : "not date-time text or a number of seconds");
    }
    if (!dt64) {
        if (secs < 0 || secs > 4294967295LL)
            return refuse(e, t, idx, "outside 1970-01-01 00:00:00..2106-02-07 06:28:15 UTC");
        put_le(e->out, (uint64_t)secs, 4);
        return 0;
    }
    /* 1900-01-01 00:00:00 .. 2299-12-31 23:59:59 UTC, and the ticks must fit Int64 (which
     * only the upper end can miss: 2262-04-11 23:47:16.854775807 for p = 9) */
    int64_t scale = 1, fraction = 0;
    for (unsigned i = 0; i < t->scale; i++) {
        scale *= 10;
        fraction = fraction * 10 + (i < frac_len ? frac[i] - '0' : 0);
    }
    if (secs < -2208988800LL || secs > 10413791999LL || secs > (INT64_MAX - fraction) / scale)
        return refuse(e, t, idx, "outside DateTime64(%u)'s range", t->scale);
    int64_t ticks = secs * scale;
    put_le(e->out, (uint64_t)(ticks + fraction), 8);
    return 0;
}

/* ---- Decimal, UUID, IP addresses, Enum ---- */

static int put_decimal(encoder *e, const ch_type *t, int idx)
{
    char text[32], why[96];
    const char *s = text;
    size_t len;
    if (lua_type(e->L, idx) == LUA_TSTRING) {
        s = lua_tolstring(e->L, idx, &len);
    } else if (lua_isinteger(e->L, idx)) {
        len = (size_t)snprintf(text, sizeof text, "%lld", (long long)lua_tointeger(e->L, idx));
    } else if (lua_type(e->L, idx) == LUA_TNUMBER) {
        double d = (double)lua_tonumber(e->L, idx);
        if (!isfinite(d)) return refuse(e, t, idx, "not a finite number");
        format_double(d, text);
        len = strlen(text);
    } else {
        return refuse(e, t, idx, "takes decimal text or a number");
    }
    bignum v;
    if (!parse_decimal(s, len, t->scale, t->precision, &v, why, sizeof why))
        return refuse(e, t, idx, "%s", why);
    put_bignum(e->out, &v, t->size);
    return 0;
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static int put_uuid(encoder *e, const ch_type *t, int idx)
{
    size_t len = 0;
    const char *s = lua_type(e->L, idx) == LUA_TSTRING ? lua_tolstring(e->L, idx, &len) : NULL;
    unsigned char b[16]; /* the 128-bit number, most significant byte first */
    size_t n = 0;
    for (size_t i = 0; s && len == 36 && i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') break;
            continue;
        }
        int hi = hex_value(s[i]), lo = i + 1 < 36 ? hex_value(s[i + 1]) : -1;
        if (hi < 0 || lo < 0) break;
        b[n++] = (unsigned char)(hi * 16 + lo);
        i++;
    }
    if (n != 16) return refuse(e, t, idx, "not a UUID (8-4-4-4-12 hex digits)");
    char wire[16]; /* the high half, then the low half, each little-endian */
    for (int i = 0; i < 8; i++) {
        wire[i] = (char)b[7 - i];
        wire[8 + i] = (char)b[15 - i];
    }
    strbuf_append(e->out, wire, 16);
    return 0;
}

/* Text of an address for inet_pton: a NUL-terminated copy, or false when too long for one. */
static bool address_text(lua_State *L, int idx, char buf[64])
{
    if (lua_type(L, idx) != LUA_TSTRING) return false;
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (len >= 64 || memchr(s, '\0', len)) return false;
    memcpy(buf, s, len + 1);
    return true;
}

static int put_ipv4(encoder *e, const ch_type *t, int idx)
{
    char text[64];
    unsigned char a[4];
    if (lua_type(e->L, idx) == LUA_TNUMBER) {
        bignum v;
        const char *why;
        if (!read_integer(e->L, idx, &v, &why) || !bignum_fits(&v, 32, false))
            return refuse(e, t, idx, "not an IPv4 address (0..4294967295)");
        put_le(e->out, v.w[0], 4);
        return 0;
    }
    if (!address_text(e->L, idx, text) || inet_pton(AF_INET, text, a) != 1)
        return refuse(e, t, idx, "not an IPv4 address (a.b.c.d)");
    put_le(e->out, (uint64_t)a[0] << 24 | (uint64_t)a[1] << 16 | (uint64_t)a[2] << 8 | a[3], 4);
    return 0;
}

static int put_ipv6(encoder *e, const ch_type *t, int idx)
{
    char text[64];
    unsigned char a[16];
    if (!address_text(e->L, idx, text)) return refuse(e, t, idx, "not an IPv6 address");
    if (inet_pton(AF_INET6, text, a) != 1) {
        unsigned char v4[4]; /* IPv4 text: the IPv4-mapped address ::ffff:a.b.c.d */
        if (inet_pton(AF_INET, text, v4) != 1) return refuse(e, t, idx, "not an IPv6 address");
        memset(a, 0, 10);
        a[10] = a[11] = 0xff;
        memcpy(a + 12, v4, 4);
    }
    strbuf_append(e->out, (const char *)a, 16);
    return 0;
}

static int put_enum(encoder *e, const ch_type *t, int idx)
{
    unsigned bytes = t->kind == CH_ENUM8 ? 1 : 2;
    if (lua_type(e->L, idx) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(e->L, idx, &len);
        for (size_t i = 0; i < t->nitems; i++)
            if (t->items[i].name_len == len && memcmp(t->items[i].name, s, len) == 0) {
                put_le(e->out, (uint64_t)(int64_t)t->items[i].value, bytes);
                return 0;
            }
        return refuse(e, t, idx, "not one of the Enum's names");
    }
    if (lua_isinteger(e->L, idx)) {
        lua_Integer v = lua_tointeger(e->L, idx);
        for (size_t i = 0; i < t->nitems; i++)
            if (t->items[i].value == v) {
                put_le(e->out, (uint64_t)(int64_t)v, bytes);
                return 0;
            }
        return refuse(e, t, idx, "not one of the Enum's values");
    }
    return refuse(e, t, idx, "takes one of the Enum's names or values");
}

/* ---- containers ---- */

static int put_value(encoder *e, const ch_type *t, int idx);

/* Enters a container's element (a frame of the path shown in messages); leave with e->depth--.
 * Containers nest no deeper than their types, so the frames cannot run out. */
static void enter(encoder *e, char kind, size_t index, const char *name, int key)
{
    e->path[e->depth].kind = kind;
    e->path[e->depth].index = index;
    e->path[e->depth].name = name;
    e->path[e->depth].key = key;
    e->depth++;
}

static int put_array(encoder *e, const ch_type *t, int idx)
{
    lua_State *L = e->L;
    if (lua_type(L, idx) != LUA_TTABLE) return refuse(e, t, idx, "not a table");
    json_lazy_fill(L, idx);
    size_t n = (size_t)lua_rawlen(L, idx);
    if (n == 0) {
        lua_pushnil(L);
        if (lua_next(L, idx) != 0) {
            lua_pop(L, 2);
            return refuse(e, t, idx, "a table without elements 1..n is not an array");
        }
    }
    rowbinary_leb128(e->out, n);
    int rc = 0;
    enter(e, '[', 0, NULL, 0);
    for (size_t i = 1; i <= n && rc == 0; i++) {
        e->path[e->depth - 1].index = i;
        lua_rawgeti(L, idx, (lua_Integer)i);
        rc = put_value(e, t->children[0], lua_gettop(L));
        lua_pop(L, 1);
    }
    e->depth--;
    return rc;
}

static int put_map(encoder *e, const ch_type *t, int idx)
{
    lua_State *L = e->L;
    if (lua_type(L, idx) != LUA_TTABLE) return refuse(e, t, idx, "not a table");
    json_lazy_fill(L, idx);
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        n++;
    }
    rowbinary_leb128(e->out, n);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        /* stack: key value */
        int key = lua_gettop(L) - 1;
        enter(e, 'k', 0, NULL, key);
        int rc = put_value(e, t->children[0], key);
        e->path[e->depth - 1].kind = 'v';
        if (rc == 0) rc = put_value(e, t->children[1], key + 1);
        e->depth--;
        if (rc) {
            lua_pop(L, 2);
            return rc;
        }
        lua_pop(L, 1);
    }
    return 0;
}

static int put_tuple(encoder *e, const ch_type *t, int idx)
{
    lua_State *L = e->L;
    if (lua_type(L, idx) != LUA_TTABLE) return refuse(e, t, idx, "not a table");
    json_lazy_fill(L, idx);
    bool by_name = t->names && lua_rawgeti(L, idx, 1) == LUA_TNIL;
    if (t->names) lua_pop(L, 1);
    if (!by_name && (size_t)lua_rawlen(L, idx) > t->nchildren)
        return refuse(e, t, idx, "more than %zu elements", t->nchildren);
    int rc = 0;
    for (size_t i = 0; i < t->nchildren && rc == 0; i++) {
        if (by_name) {
            enter(e, '.', 0, t->names[i], 0);
            lua_pushstring(L, t->names[i]);
            lua_rawget(L, idx);
        } else {
            enter(e, '[', i + 1, NULL, 0);
            lua_rawgeti(L, idx, (lua_Integer)(i + 1));
        }
        rc = put_value(e, t->children[i], lua_gettop(L));
        lua_pop(L, 1);
        e->depth--;
    }
    return rc;
}

/* Writes the value at idx (absolute) as type t. */
static int put_value(encoder *e, const ch_type *t, int idx)
{
    lua_State *L = e->L;
    if (!lua_checkstack(L, 4)) return refuse(e, t, idx, "the Lua stack cannot grow");
    if (t->kind == CH_NULLABLE) {
        if (lua_isnil(L, idx) || is_null(L, idx)) {
            strbuf_putc(e->out, 1);
            return 0;
        }
        strbuf_putc(e->out, 0);
        return put_value(e, t->children[0], idx);
    }
    if (t->kind == CH_LOW_CARDINALITY) return put_value(e, t->children[0], idx);
    if (is_null(L, idx))
        return refuse(e, t, idx,
                      "not Nullable (leave the column out of the row to get its DEFAULT)");
    if (lua_isnil(L, idx)) return refuse(e, t, idx, "a value is missing (only Nullable takes nil)");
    switch (t->kind) {
    case CH_INT8:
    case CH_INT16:
    case CH_INT32:
    case CH_INT64:
    case CH_INT128:
    case CH_INT256:
    case CH_UINT8:
    case CH_UINT16:
    case CH_UINT32:
    case CH_UINT64:
    case CH_UINT128:
    case CH_UINT256:
        return put_integer(e, t, idx);
    case CH_FLOAT32:
    case CH_FLOAT64:
        return put_float(e, t, idx);
    case CH_BOOL:
        return put_bool(e, t, idx);
    case CH_STRING:
    case CH_FIXED_STRING:
        return put_string(e, t, idx);
    case CH_DATE:
    case CH_DATE32:
        return put_date(e, t, idx);
    case CH_DATETIME:
    case CH_DATETIME64:
        return put_datetime(e, t, idx);
    case CH_DECIMAL:
        return put_decimal(e, t, idx);
    case CH_UUID:
        return put_uuid(e, t, idx);
    case CH_IPV4:
        return put_ipv4(e, t, idx);
    case CH_IPV6:
        return put_ipv6(e, t, idx);
    case CH_ENUM8:
    case CH_ENUM16:
        return put_enum(e, t, idx);
    case CH_ARRAY:
        return put_array(e, t, idx);
    case CH_MAP:
        return put_map(e, t, idx);
    case CH_TUPLE:
        return put_tuple(e, t, idx);
    case CH_NULLABLE:
    case CH_LOW_CARDINALITY:
        break; /* handled above */
    }
    return refuse(e, t, idx, "unknown type");
}

/* ---- rows ---- */

int rowbinary_append_row(strbuf *out, lua_State *L, int idx, const rowbinary_column *columns,
                         size_t ncolumns, const char *server_timezone, char *err, size_t errlen)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) != LUA_TTABLE) {
        errbuf_set(err, errlen, "a row must be a table, got a %s", luaL_typename(L, idx));
        return -1;
    }
    json_lazy_fill(L, idx);
    encoder e = {
        .out = out, .L = L, .server_timezone = server_timezone, .err = err, .errlen = errlen};
    size_t start = out->len;
    int base = lua_gettop(L);
    int rc = 0;
    for (size_t i = 0; i < ncolumns && rc == 0; i++) {
        e.column = &columns[i];
        e.depth = 0;
        lua_pushstring(L, columns[i].name);
        if (lua_rawget(L, idx) == LUA_TNIL) {
            strbuf name = {0};
            ch_type_format(columns[i].type, &name);
            errbuf_set(err, errlen,
                       "column \"%s\" (%s): the row has no value for it (the columns passed "
                       "must be the ones the row sets)",
                       columns[i].name, name.data);
            strbuf_free(&name);
            rc = -1;
        } else {
            rc = put_value(&e, columns[i].type, lua_gettop(L));
        }
        lua_settop(L, base);
    }
    if (rc) strbuf_truncate(out, start);
    return rc;
}

/* Whether the zones of t's date-times (at any depth) are known; *zone names the first that is
 * not (NULL for a DateTime without a zone of its own when the server's is unknown). */
static bool zones_known(const ch_type *t, const char *server_timezone, const char **zone)
{
    long offset;
    if (t->kind == CH_DATETIME || t->kind == CH_DATETIME64) {
        *zone = t->timezone ? t->timezone : server_timezone;
        return zone_offset(*zone, &offset);
    }
    for (size_t i = 0; i < t->nchildren; i++)
        if (!zones_known(t->children[i], server_timezone, zone)) return false;
    return true;
}

int rowbinary_check_column(const char *name, const ch_type *type, const char *server_timezone,
                           char *err, size_t errlen)
{
    const char *zone = NULL;
    if (zones_known(type, server_timezone, &zone)) return 0;
    strbuf text = {0};
    ch_type_format(type, &text);
    if (zone)
        errbuf_set(err, errlen,
                   "column \"%s\" (%s): the RowBinary encoder cannot read date-time text in "
                   "time zone '%s' (only UTC and fixed Etc/GMT offsets)",
                   name, text.data, zone);
    else
        errbuf_set(err, errlen,
                   "column \"%s\" (%s): the server's time zone is unknown, so the RowBinary "
                   "encoder cannot read date-time text for it",
                   name, text.data);
    strbuf_free(&text);
    return -1;
}
