/*
 * rowbinary — a Lua row table encoded as one ClickHouse RowBinary row, in C, straight from the
 * table, for a given ordered list of columns (name + parsed type, see ch_type.h).
 *
 * The INSERT names exactly the columns passed, in that order (`INSERT INTO t (c1, c2, …) FORMAT
 * RowBinary`), so every column passed must have a value in the row: the caller passes the
 * columns the row sets (rows grouped by column set), and columns it leaves out get their
 * DEFAULT expression on every server, as with JSONEachRow. Keys of the row that are not among
 * the columns are ignored (as JSONEachRow with input_format_skip_unknown_fields=1).
 *
 * ---- Byte layouts written (all integers little-endian, whatever the host) ----
 *   (U)Int8/16/32/64/128/256   1/2/4/8/16/32 bytes, two's complement for the signed ones
 *   Float32, Float64           IEEE 754 binary32 / binary64
 *   Bool                       1 byte, 0 or 1
 *   String                     length as unsigned LEB128, then the bytes
 *   FixedString(N)             exactly N bytes, zero-padded
 *   Date                       UInt16 days since 1970-01-01
 *   Date32                     Int32 days since 1970-01-01
 *   DateTime[('tz')]           UInt32 seconds since 1970-01-01 00:00:00 UTC
 *   DateTime64(p[, 'tz'])      Int64 count of 10^-p seconds since 1970-01-01 00:00:00 UTC
 *   Decimal(P, S)              the unscaled value (value × 10^S) as Int32 (P ≤ 9), Int64
 *                              (P ≤ 18), Int128 (P ≤ 38) or Int256 (P ≤ 76)
 *   UUID                       the 128-bit number of the text's 32 hex digits as two UInt64
 *                              halves, high half first, each little-endian: for
 *                              01234567-89ab-cdef-0123-456789abcdef the bytes are
 *                              ef cd ab 89 67 45 23 01 ef cd ab 89 67 45 23 01
 *   IPv4                       UInt32 (1.2.3.4 = 0x01020304 → 04 03 02 01)
 *   IPv6                       16 bytes in network order (as inet_pton writes them)
 *   Enum8, Enum16              the value as Int8 / Int16
 *   LowCardinality(T)          as T
 *   Nullable(T)                1 byte: 1 = NULL (nothing follows), 0 = a T follows
 *   Array(T)                   element count as unsigned LEB128, then the elements
 *   Map(K, V)                  as Array(Tuple(K, V)): pair count, then key, value, key, …
 *   Tuple(T1, …)               the elements one after the other
 * (Checked against ClickHouse 18.16's own RowBinary output by
 * tests/integration/test_rowbinary_clickhouse.c.)
 *
 * ---- What each column accepts from the Lua values a transform produces ----
 * Integers (Int*, UInt*): a Lua integer; a float with an integral value; a string of decimal
 *   digits with an optional leading '-' ("-12", "18446744073709551615": the way to pass UInt64
 *   values above 2^63 and 128/256-bit values). Range-checked exactly per width; nothing is
 *   wrapped or rounded. UInt8 also takes a boolean (1/0).
 * Float32/Float64: a number; a string in decimal notation ("1.5", "-2e-3"; no nan/inf), read
 *   with strtod/strtof (correctly rounded). Float32 from a Lua float is the double rounded to
 *   the nearest float; JSONEachRow rounds the double's shortest text instead, which can differ
 *   in the last bit for the rare double that lies exactly halfway between two floats. NaN,
 *   infinities and values beyond Float32's range are refused.
 * Bool: a boolean, or the integer 0 or 1.
 * String, FixedString(N): a string's exact bytes; a number or boolean as the text JSONEachRow
 *   would carry (integers as digits, floats in shortest round-trip form, true/false).
 *   FixedString is zero-padded; a longer value is refused.
 * Date: "YYYY-MM-DD", or an integer count of days (0 = 1970-01-01 .. 65535 = 2149-06-06).
 * Date32: the same text, or days, within 1900-01-01 .. 2299-12-31.
 * DateTime: "YYYY-MM-DD hh:mm:ss" ('T' also accepted as the separator), with an optional
 *   fraction that is dropped (truncated), or "YYYY-MM-DD" (midnight); or an integer count of
 *   unix seconds. Range 1970-01-01 00:00:00 .. 2106-02-07 06:28:15 UTC.
 * DateTime64(p): the same text forms, the fraction truncated to p digits (missing digits are
 *   zeros); range 1900-01-01 .. 2299-12-31 23:59:59 and, for p = 9, what fits Int64
 *   (1677..2262). Integers are refused: ClickHouse reads them as seconds or as ticks depending
 *   on version and format, so no reading of them is safe.
 * Time zones: text is wall-clock time in the column's zone — the one in its type, or else the
 *   server's (server_timezone below) — as ClickHouse reads JSONEachRow text. The encoder knows
 *   the zones that are UTC (UTC, Etc/UTC, GMT, Etc/GMT, Etc/GMT0, Etc/GMT+0, Etc/GMT-0, GMT0,
 *   GMT+0, GMT-0, UCT, Etc/UCT, Universal, Etc/Universal, Zulu, Etc/Zulu, Greenwich,
 *   Etc/Greenwich) and the fixed offsets Etc/GMT+N / Etc/GMT-N (N ≤ 14, sign as in tzdata:
 *   Etc/GMT-3 is UTC+3). Text for a column in any other zone (with daylight saving time) is
 *   refused; rowbinary_check_column tells beforehand, so the caller can use JSONEachRow for
 *   such a table. Integers (unix seconds) do not depend on the zone.
 * Decimal(P, S): decimal text ("-123.45", "1e3", "0.5E-1"), a Lua integer, or a float (by its
 *   shortest round-trip text, as JSONEachRow gets it), converted exactly with integer
 *   arithmetic. Digits beyond the scale must be zeros ("1.230" fits Decimal(9, 2), "1.235" is
 *   refused: no rounding), and the unscaled value must have at most P digits. Both rules are
 *   what ClickHouse 18.16 applies to JSONEachRow text (newer servers may cut extra digits
 *   instead; the encoder refuses them).
 * UUID: canonical 8-4-4-4-12 hex text, either case.
 * IPv4: dotted-quad text ("1.2.3.4"), or an integer 0 .. 2^32-1.
 * IPv6: IPv6 text (any form inet_pton reads, "::ffff:1.2.3.4" included), or IPv4 text, stored
 *   as the IPv4-mapped address ::ffff:a.b.c.d.
 * Enum8/Enum16: a name of the Enum (exact bytes), or an integer that is one of its values.
 * LowCardinality(T): as T.
 * Nullable(T): cdc.null (row_json_null()) is NULL; so is nil where a value can be missing
 *   (an array hole, a tuple element). A non-Nullable column refuses cdc.null (leave the column
 *   out of the row instead to get its DEFAULT).
 * Array(T): a table, elements t[1 .. #t]; an empty table is []; a non-empty table without
 *   sequence elements is refused.
 * Map(K, V): a table, every key/value pair (in table order); each key converted to K by the
 *   rules above (a string key "5" fits a UInt8 key, as JSONEachRow's object keys do).
 * Tuple(T1, …): a table, elements t[1 .. n]; a named tuple also takes an object with its
 *   element names as keys (used when t[1] is nil; other keys ignored). More than n sequence
 *   elements are refused.
 *
 * A value that does not fit its column is refused with the column, its type and the value
 * (escaped, cut to 64 bytes) named: `column "n" (UInt8): cannot store 300: out of range
 * 0..255`; inside a container the place and the inner type follow the column's type:
 * `column "m" (Map(String, Array(UInt8))) at ["k"][3] (UInt8): cannot store "x": not an
 * integer (decimal digits, optional '-')` ([i] array or tuple element, .name named tuple
 * element, ["k"] map value, key "k" map key). The output buffer is then exactly as it was
 * before the row, and the Lua stack too. Row values are read with raw access (no
 * metamethods). No Lua error is raised except out of memory.
 */
#ifndef CDCPIPE_ROWBINARY_H
#define CDCPIPE_ROWBINARY_H

#include <lua.h>
#include <stddef.h>

#include "cdcpipe/ch_type.h"
#include "cdcpipe/strbuf.h"

typedef struct {
    const char *name;    /* the row table's key and the INSERT's column name */
    const ch_type *type; /* the column's parsed type */
} rowbinary_column;

/* Appends the row table at stack index idx as one RowBinary row of columns[0..ncolumns) to out.
 * server_timezone is what the server's `SELECT timezone()` answered (the zone of DateTime
 * columns that name none); NULL when unknown, and text for such columns is then refused.
 * Returns 0, or -1 with err naming the column, its type and the value; out is then unchanged. */
int rowbinary_append_row(strbuf *out, lua_State *L, int idx, const rowbinary_column *columns,
                         size_t ncolumns, const char *server_timezone, char *err, size_t errlen);

/* Whether every value a column of this type takes can be encoded for the given server time
 * zone: -1 with err (naming the column and the zone) when a DateTime/DateTime64 in it (at any
 * depth) is in a zone the encoder cannot read text for; 0 otherwise. A caller checks its table's
 * columns once and uses JSONEachRow for a table that fails. */
int rowbinary_check_column(const char *name, const ch_type *type, const char *server_timezone,
                           char *err, size_t errlen);

/* Appends n as unsigned LEB128 (the length prefix of String, Array and Map). */
void rowbinary_leb128(strbuf *out, size_t n);

#endif
