/*
 * ch_type — a ClickHouse column type, parsed from the text `DESCRIBE TABLE` and `system.columns`
 * print (18.16 and 24.x–26.x), into a small tree the RowBinary encoder (rowbinary.h) walks.
 *
 * Covered (everything else is CH_TYPE_UNSUPPORTED, so the caller can fall back to JSONEachRow):
 *   Int8 Int16 Int32 Int64 Int128 Int256, UInt8 … UInt256, Float32, Float64, Bool, String,
 *   FixedString(N), Date, Date32, DateTime, DateTime('tz'), DateTime64(p), DateTime64(p, 'tz'),
 *   Decimal(P, S), Decimal(P), Decimal32(S), Decimal64(S), Decimal128(S), Decimal256(S), UUID,
 *   IPv4, IPv6, Enum8('a' = 1, …), Enum16(…), LowCardinality(T), Nullable(T), Array(T),
 *   Map(K, V), Tuple(T1, T2, …), Tuple(a T1, b T2, …) (names plain or `back-quoted`),
 *   Nested(a T1, …) (as Array(Tuple(a T1, …)); a server that flattens Nested prints separate
 *   Array columns instead, which are covered as such).
 * Not covered: AggregateFunction, SimpleAggregateFunction, Nothing, JSON, Object, Variant,
 * Dynamic, Time, Time64, BFloat16, the geo types, and any name this parser does not know.
 *
 * Quoted strings (Enum names, time zones) may use ClickHouse's backslash escapes (\' \\ \n \t
 * \r \b \f \0 \a \v \xHH; any other escaped character stands for itself) or a doubled quote.
 * Whitespace (spaces, tabs, newlines) is allowed between tokens. The text is the type itself:
 * read system.columns with FORMAT JSONEachRow (or unescape TSV output, which writes ' as \').
 */
#ifndef CDCPIPE_CH_TYPE_H
#define CDCPIPE_CH_TYPE_H

#include <stddef.h>
#include <stdint.h>

#include "cdcpipe/strbuf.h"

typedef enum {
    CH_INT8,
    CH_INT16,
    CH_INT32,
    CH_INT64,
    CH_INT128,
    CH_INT256,
    CH_UINT8,
    CH_UINT16,
    CH_UINT32,
    CH_UINT64,
    CH_UINT128,
    CH_UINT256,
    CH_FLOAT32,
    CH_FLOAT64,
    CH_BOOL,
    CH_STRING,
    CH_FIXED_STRING, /* size = N */
    CH_DATE,
    CH_DATE32,
    CH_DATETIME,   /* timezone or NULL */
    CH_DATETIME64, /* scale = p (0..9), timezone or NULL */
    CH_DECIMAL,    /* precision P (1..76), scale S (0..P), size = 4, 8, 16 or 32 bytes */
    CH_UUID,
    CH_IPV4,
    CH_IPV6,
    CH_ENUM8,
    CH_ENUM16,
    CH_LOW_CARDINALITY, /* children[0] */
    CH_NULLABLE,        /* children[0] */
    CH_ARRAY,           /* children[0] */
    CH_MAP,             /* children[0] = key, children[1] = value */
    CH_TUPLE,           /* children[0..nchildren); names[i] too for a named tuple */
} ch_kind;

typedef struct {
    char *name; /* unescaped bytes, NUL-terminated (may hold NUL bytes: use name_len) */
    size_t name_len;
    int value;
} ch_enum_item;

typedef struct ch_type {
    ch_kind kind;
    unsigned size;       /* FixedString: N; Decimal: bytes of the unscaled integer */
    unsigned precision;  /* Decimal: P */
    unsigned scale;      /* Decimal: S; DateTime64: p */
    char *timezone;      /* DateTime, DateTime64: the zone named in the type, or NULL */
    ch_enum_item *items; /* Enum8/Enum16: in the order the type lists them */
    size_t nitems;
    struct ch_type **children; /* Nullable, LowCardinality, Array: 1; Map: 2; Tuple: n */
    char **names;              /* Tuple: element names (NUL-terminated), or NULL if unnamed */
    size_t nchildren;
} ch_type;

enum {
    CH_TYPE_OK = 0,
    CH_TYPE_INVALID = -1,    /* the text is not a well-formed type */
    CH_TYPE_UNSUPPORTED = 1, /* well-formed as far as read, but a type listed as not covered */
};

/* Types nest at most this deep (Array(Array(…)) counts one per level). */
#define CH_TYPE_MAX_DEPTH 32

/* Parses text[0..len) into a new tree in *out (free with ch_type_free). Returns CH_TYPE_OK,
 * or CH_TYPE_INVALID / CH_TYPE_UNSUPPORTED with *out NULL and err naming the whole type text,
 * e.g. `unsupported ClickHouse type "Array(JSON)": JSON is not covered by the RowBinary
 * encoder` or `invalid ClickHouse type "Array(": a type name expected at offset 6`. */
int ch_type_parse(const char *text, size_t len, ch_type **out, char *err, size_t errlen);

void ch_type_free(ch_type *t);

/* Appends the canonical text of t: what ClickHouse prints, with Decimal32(S) and friends as
 * Decimal(P, S) and Nested as Array(Tuple(…)). ch_type_parse reads it back to the same tree. */
void ch_type_format(const ch_type *t, strbuf *out);

#endif
