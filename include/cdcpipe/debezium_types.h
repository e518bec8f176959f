/*
 * debezium_types — Debezium's JSON encodings of PostgreSQL values turned into the exact text
 * ClickHouse columns accept: decimals, times of day, DateTime64, durations, UUIDs, bytea, bit
 * strings, and recognition of the unchanged-TOAST placeholder.
 *
 * Pure functions on bytes and integers: no Lua, no doubles on exact paths, no libc time
 * functions (the process's TZ never changes a result). dbz_value.h applies them to Lua values,
 * one converter per kind, for both the cdc.* helpers and cdc.auto; docs/types.md is the user's
 * guide.
 *
 * Conventions: text results are appended to a strbuf the caller owns (nothing is appended when a
 * function fails) or written into a fixed-size array; every function returns 0, or -1 with a
 * message in err (caller's buffer) that quotes the offending input (shortened and with
 * non-printable bytes shown as '?'). The encodings are described in docs/debezium-format.md,
 * §4 "Value encodings".
 */
#ifndef CDCPIPE_DEBEZIUM_TYPES_H
#define CDCPIPE_DEBEZIUM_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdcpipe/datetime.h"
#include "cdcpipe/strbuf.h"

/* Longest unscaled decimal accepted, in bytes (2466 digits; 32 bytes already hold 76 digits). */
#define DBZ_DECIMAL_MAX_BYTES 1024
/* Largest |scale| accepted (PostgreSQL numeric's own display-scale limit). */
#define DBZ_DECIMAL_MAX_SCALE 16383

/* "hh:mm:ss.fffffffff" plus NUL. */
#define DBZ_TIME_LEN 19
/* "YYYY-MM-DD hh:mm:ss.fffffffff" plus NUL. */
#define DBZ_DATETIME64_LEN 30
/* "-P106751991DT4H0M54.775808S"-sized, with room to spare. */
#define DBZ_INTERVAL_LEN 48
/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" plus NUL. */
#define DBZ_UUID_LEN 37

/* Debezium's unavailable.value.placeholder default. */
#define DBZ_UNAVAILABLE "__debezium_unavailable_value"

/* How much of a bad input an error message quotes. */
#define DBZ_QUOTE_MAX 64

typedef struct {
    char text[DBZ_QUOTE_MAX + 4];
} dbz_quoted;

/* At most DBZ_QUOTE_MAX bytes of s[0..len) for quoting in a message ("..." appended when cut);
 * non-printable bytes become '?'. */
dbz_quoted dbz_quote(const char *s, size_t len);

/* ---- bytes: base64 / hex (binary.handling.mode) ---- */

typedef enum {
    DBZ_BIN_BASE64,     /* "bytes" (JsonConverter base64) and "base64": RFC 4648 alphabet */
    DBZ_BIN_BASE64_URL, /* "base64-url-safe": '-' and '_' instead of '+' and '/' */
    DBZ_BIN_HEX,        /* "hex": two hex digits per byte, either case */
} dbz_binary_mode;

/* Parses "bytes", "base64", "base64-url-safe" or "hex". Returns 0, or -1 for anything else. */
int dbz_parse_binary_mode(const char *name, dbz_binary_mode *mode);

/* Decodes s[0..len) in `mode` and appends the raw bytes to out. Base64 may omit its '=' padding;
 * anything else (a character outside the alphabet, '=' in the middle, a length that cannot be
 * base64, an odd number of hex digits) is an error naming the position. */
int dbz_binary_decode(const char *s, size_t len, dbz_binary_mode mode, strbuf *out, char *err,
                      size_t errlen);

/* Appends the lowercase hex text of b[0..n) to out. Never fails. */
void dbz_hex_encode(const unsigned char *b, size_t n, strbuf *out);

/* ---- decimals ---- */

/* Appends the decimal text of a big-endian two's-complement unscaled integer b[0..n) with the
 * decimal point `scale` digits from the right: "-12345.6789", "0.05", "-0.005", "120" (a
 * negative scale appends zeros). Trailing zeros of the fraction are kept (the scale is part of a
 * PostgreSQL numeric); zero is never negative. Exact for any length up to DBZ_DECIMAL_MAX_BYTES.
 * Errors: n == 0, n too large, |scale| > DBZ_DECIMAL_MAX_SCALE. */
int dbz_decimal_from_unscaled(const unsigned char *b, size_t n, int64_t scale, strbuf *out,
                              char *err, size_t errlen);

/* Connect Decimal as JsonConverter writes it: base64 of the unscaled integer, plus the schema's
 * scale. Errors: invalid base64, then as dbz_decimal_from_unscaled. */
int dbz_decimal_from_base64(const char *s, size_t len, int64_t scale, strbuf *out, char *err,
                            size_t errlen);

/* decimal.handling.mode=string: checks that s is plain decimal text ([-]digits[.digits], what
 * BigDecimal.toPlainString gives) and appends it unchanged. "NAN", "INFINITY", "-INFINITY" and
 * anything else are errors (no ClickHouse Decimal holds them). */
int dbz_decimal_check_text(const char *s, size_t len, strbuf *out, char *err, size_t errlen);

/* decimal.handling.mode=double: appends the shortest text that reads back as exactly v, in plain
 * notation (never an exponent): 0.1 → "0.1", 1e20 → "100000000000000000000", -0.0 → "0".
 * NaN and infinities are errors. */
int dbz_decimal_from_double(double v, strbuf *out, char *err, size_t errlen);

/* ---- times ---- */

/* Time (ms), MicroTime (us), NanoTime (ns) past midnight → "hh:mm:ss[.fraction]". v must be
 * within 0 .. 24:00:00 (PostgreSQL's time allows 24:00:00). precision < 0: the fraction as
 * PostgreSQL prints it (trailing zeros dropped, no '.' when zero); 0..9: exactly that many
 * fraction digits (extra digits dropped, missing ones zero). DT_SECONDS is accepted too. */
int dbz_format_time(int64_t v, dt_unit unit, int precision, char out[DBZ_TIME_LEN], char *err,
                    size_t errlen);

/* ZonedTime ("11:45:30.123456Z", "11:45:30+02:00") → the UTC time of day, formatted as
 * dbz_format_time does. Up to nine fraction digits. */
int dbz_format_zoned_time(const char *s, size_t len, int precision, char out[DBZ_TIME_LEN],
                          char *err, size_t errlen);

/* Epoch value in `unit` (may be negative) → DateTime64 text "YYYY-MM-DD hh:mm:ss[.f…]" in UTC
 * with exactly `precision` (0..9) fraction digits, floored. Years outside 0000..9999 (including
 * Debezium's ±infinity sentinels, named as such) are errors. */
int dbz_format_datetime64(int64_t v, dt_unit unit, int precision, char out[DBZ_DATETIME64_LEN],
                          char *err, size_t errlen);

/* ISO-8601 date-time (ZonedTimestamp, with or without offset) → DateTime64 text as above.
 * "infinity"/"-infinity" are errors that say so. */
int dbz_format_datetime64_iso(const char *s, size_t len, int precision,
                              char out[DBZ_DATETIME64_LEN], char *err, size_t errlen);

/* ISO-8601 date-time → integer epoch in `unit` (floored). Errors: unparsable input, a result
 * that does not fit int64 (nanoseconds outside 1677..2262). */
int dbz_iso_to_epoch(const char *s, size_t len, dt_unit unit, int64_t *v, char *err, size_t errlen);

typedef enum {
    DBZ_INTERVAL_ISO,     /* "P1DT2H", "-PT0.000001S", "PT0S": days, hours, minutes, seconds */
    DBZ_INTERVAL_SECONDS, /* "93600", "-0.000001": decimal seconds (a Decimal(P,6) column) */
} dbz_interval_style;

/* MicroDuration (microseconds; Debezium counts a month as 30.4375 days and never a year or month
 * again, so the ISO form uses days as its largest unit) → text. Never fails for any int64. */
void dbz_format_interval(int64_t us, dbz_interval_style style, char out[DBZ_INTERVAL_LEN]);

/* interval.handling.mode=string (io.debezium.time.Interval, "P1Y2M3DT4H5M6.78S"): checks the
 * ISO-8601 duration shape (components may carry a '-') and appends s unchanged. */
int dbz_interval_check_text(const char *s, size_t len, strbuf *out, char *err, size_t errlen);

/* ---- other types ---- */

/* Checks canonical UUID text (8-4-4-4-12 hex digits) and writes it in lowercase. */
int dbz_format_uuid(const char *s, size_t len, char out[DBZ_UUID_LEN], char *err, size_t errlen);

/* io.debezium.data.Bits (bit(n), bit varying): the bytes are the bit string read as a binary
 * number, little-endian. Appends PostgreSQL's text form ("10110"), most significant bit first,
 * `length` digits (the column's n; 0 < length <= 8 * n); length 0 means 8 * n digits. A set bit
 * beyond `length` is an error. */
int dbz_bits_from_bytes(const unsigned char *b, size_t n, int64_t length, strbuf *out, char *err,
                        size_t errlen);

/* ---- unchanged-TOAST placeholders (docs/debezium-format.md §5 "Unchanged TOAST values") ---- */

/* True when a string value is the placeholder as any type carries it: the text itself (text,
 * varchar, json, xml, enum, ...), its bytes in base64 / base64-url-safe / hex (bytea), or the
 * JSON object {"P":"P"} (hstore with hstore.handling.mode=json).
 * placeholder NULL means DBZ_UNAVAILABLE. */
bool dbz_is_unavailable_string(const char *s, size_t len, const char *placeholder);

/* The uuid[] variant, UUID.nameUUIDFromBytes(DBZ_UNAVAILABLE), in lowercase. */
#define DBZ_UNAVAILABLE_UUID "b68a35a7-17ad-35b3-af2a-ae46edb4545a"

#endif
