/*
 * test_rowbinary — tests for src/rowbinary.c (include/cdcpipe/rowbinary.h).
 *
 * Table-driven: a column type, a Lua expression for the value, and either the exact bytes
 * (hex) or the exact error. Every case runs as a one-column row `{c = <expr>}` appended after
 * a prefix already in the buffer; a refused row must leave the buffer exactly as it was and the
 * Lua stack as it was. Expected bytes were computed by hand (Python for the long ones); a sample
 * (UUID, Decimal32/64/128, Date, DateTime, Enum16, Float32/64, Array(Tuple(…Nullable…)),
 * LowCardinality(Nullable)) was compared with ClickHouse 18.16's own output of SELECT CAST(… AS
 * T) FORMAT RowBinary, and tests/integration/test_rowbinary_clickhouse.c inserts rows for real.
 * The global `null` is cdc.null.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "cdcpipe/ch_type.h"
#include "cdcpipe/row_json.h"
#include "cdcpipe/rowbinary.h"
#include "cdcpipe/strbuf.h"

static int setup(void **state)
{
    lua_State *L = luaL_newstate();
    if (!L) return -1;
    luaL_openlibs(L);
    lua_pushlightuserdata(L, row_json_null());
    lua_setglobal(L, "null");
    *state = L;
    return 0;
}

static int teardown(void **state)
{
    lua_close(*state);
    return 0;
}

/* Evaluates `return {c = <expr>}` and leaves the row on the stack. */
static void push_row(lua_State *L, const char *expr)
{
    char chunk[8192];
    snprintf(chunk, sizeof chunk, "return {c = %s}", expr);
    if (luaL_dostring(L, chunk) != LUA_OK) fail_msg("%s: %s", expr, lua_tostring(L, -1));
}

static ch_type *parse(const char *text)
{
    ch_type *t = NULL;
    char err[512];
    if (ch_type_parse(text, strlen(text), &t, err, sizeof err) != CH_TYPE_OK)
        fail_msg("%s: %s", text, err);
    return t;
}

static void to_hex(const char *data, size_t len, char *hex, size_t hexlen)
{
    static const char digits[] = "0123456789abcdef";
    size_t j = 0;
    for (size_t i = 0; i < len && j + 3 < hexlen; i++) {
        hex[j++] = digits[(unsigned char)data[i] >> 4];
        hex[j++] = digits[(unsigned char)data[i] & 15];
    }
    hex[j] = '\0';
}

/* Encodes {c = expr} as a column of type `type` with the server in zone `tz`; checks the bytes
 * (want_hex) or the error (want_err, want_hex NULL). */
static void check_tz(lua_State *L, const char *type, const char *expr, const char *tz,
                     const char *want_hex, const char *want_err)
{
    ch_type *t = parse(type);
    rowbinary_column col = {"c", t};
    strbuf out = {0};
    strbuf_append(&out, "PREFIX", 6);
    int top = lua_gettop(L);
    push_row(L, expr);
    char err[1024] = "";
    int rc = rowbinary_append_row(&out, L, -1, &col, 1, tz, err, sizeof err);
    if (lua_gettop(L) != top + 1) fail_msg("%s %s: the stack changed", type, expr);
    lua_settop(L, top);
    char hex[4096];
    to_hex(out.data + 6, out.len - 6, hex, sizeof hex);
    if (memcmp(out.data, "PREFIX", 6) != 0) fail_msg("%s %s: the prefix changed", type, expr);
    if (want_hex) {
        if (rc != 0) fail_msg("%s %s: refused: %s", type, expr, err);
        if (strcmp(hex, want_hex) != 0)
            fail_msg("%s %s: wrote %s, want %s", type, expr, hex, want_hex);
    } else {
        if (rc != -1) fail_msg("%s %s: accepted (%s), want: %s", type, expr, hex, want_err);
        if (out.len != 6 || out.data[6] != '\0')
            fail_msg("%s %s: refused but the buffer changed", type, expr);
        if (strcmp(err, want_err) != 0)
            fail_msg("%s %s:\n  error %s\n  want  %s", type, expr, err, want_err);
    }
    strbuf_free(&out);
    ch_type_free(t);
}

/* Server zone UTC. want: hex bytes, or "!message" for the exact error. */
typedef struct {
    const char *type, *expr, *want;
} rb_case;

static void run_cases(lua_State *L, const rb_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *w = cases[i].want;
        if (w[0] == '!')
            check_tz(L, cases[i].type, cases[i].expr, "UTC", NULL, w + 1);
        else
            check_tz(L, cases[i].type, cases[i].expr, "UTC", w, NULL);
    }
}

#define RUN(cases) run_cases(*state, cases, sizeof cases / sizeof cases[0])

static void test_integers(void **state)
{
    static const rb_case cases[] = {
        {"Int8", "0", "00"},
        {"Int8", "-1", "ff"},
        {"Int8", "127", "7f"},
        {"Int8", "-128", "80"},
        {"Int8", "\"-128\"", "80"},
        {"Int8", "\"007\"", "07"},
        {"Int8", "\"-0\"", "00"},
        {"Int8", "1.0", "01"},
        {"Int8", "-2.0", "fe"},
        {"Int8", "128", "!column \"c\" (Int8): cannot store 128: out of range -128..127"},
        {"Int8", "-129", "!column \"c\" (Int8): cannot store -129: out of range -128..127"},
        {"Int8", "1.5", "!column \"c\" (Int8): cannot store 1.5: not an integer"},
        {"Int8", "0/0", "!column \"c\" (Int8): cannot store nan: not an integer"},
        {"Int8", "math.huge", "!column \"c\" (Int8): cannot store inf: not an integer"},
        {"Int8", "\"1.5\"",
         "!column \"c\" (Int8): cannot store \"1.5\": not an integer (decimal digits, optional "
         "'-')"},
        {"Int8", "\"\"",
         "!column \"c\" (Int8): cannot store \"\": not an integer (decimal digits, optional '-')"},
        {"Int8", "\"-\"",
         "!column \"c\" (Int8): cannot store \"-\": not an integer (decimal digits, optional '-')"},
        {"Int8", "\"+1\"",
         "!column \"c\" (Int8): cannot store \"+1\": not an integer (decimal digits, optional "
         "'-')"},
        {"Int8", "\" 1\"",
         "!column \"c\" (Int8): cannot store \" 1\": not an integer (decimal digits, optional "
         "'-')"},
        {"Int8", "true", "!column \"c\" (Int8): cannot store true: not an integer"},
        {"Int8", "{}", "!column \"c\" (Int8): cannot store a table: not an integer"},
        {"Int16", "-2", "feff"},
        {"Int16", "32767", "ff7f"},
        {"Int16", "-32768", "0080"},
        {"Int16", "32768", "!column \"c\" (Int16): cannot store 32768: out of range -32768..32767"},
        {"Int32", "1", "01000000"},
        {"Int32", "-2147483648", "00000080"},
        {"Int32", "3000000000",
         "!column \"c\" (Int32): cannot store 3000000000: out of range -2147483648..2147483647"},
        {"Int64", "math.mininteger", "0000000000000080"},
        {"Int64", "math.maxinteger", "ffffffffffffff7f"},
        {"Int64", "\"-9223372036854775808\"", "0000000000000080"},
        {"Int64", "\"9223372036854775808\"",
         "!column \"c\" (Int64): cannot store \"9223372036854775808\": out of range "
         "-9223372036854775808..9223372036854775807"},
        {"Int64", "2^63",
         "!column \"c\" (Int64): cannot store 9.223372036854776e+18: out of range "
         "-9223372036854775808..9223372036854775807"},
        {"Int64", "-2^63", "0000000000000080"},
        {"Int64", "1e300",
         "!column \"c\" (Int64): cannot store 1e+300: out of range "
         "-9223372036854775808..9223372036854775807"},
        {"Int128", "-1", "ffffffffffffffffffffffffffffffff"},
        {"Int128", "\"170141183460469231731687303715884105727\"",
         "ffffffffffffffffffffffffffffff7f"},
        {"Int128", "\"-170141183460469231731687303715884105728\"",
         "00000000000000000000000000000080"},
        {"Int128", "\"170141183460469231731687303715884105728\"",
         "!column \"c\" (Int128): cannot store \"170141183460469231731687303715884105728\": out "
         "of range"},
        {"Int128", "2^100", "00000000000000000000000010000000"},
        {"Int256", "\"-1\"", "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"},
        {"Int256",
         "\"57896044618658097711785492504343953926634992332820282019728792003956564819967\"",
         "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"},
        {"Int256",
         "\"-57896044618658097711785492504343953926634992332820282019728792003956564819968\"",
         "0000000000000000000000000000000000000000000000000000000000000080"},
        {"Int256",
         "\"57896044618658097711785492504343953926634992332820282019728792003956564819968\"",
         "!column \"c\" (Int256): cannot store "
         "\"5789604461865809771178549250434395392663499233282028201972879200\"... (77 bytes): out "
         "of range"},
        {"UInt8", "255", "ff"},
        {"UInt8", "true", "01"},
        {"UInt8", "false", "00"},
        {"UInt8", "256", "!column \"c\" (UInt8): cannot store 256: out of range 0..255"},
        {"UInt8", "-1", "!column \"c\" (UInt8): cannot store -1: out of range 0..255"},
        {"UInt8", "\"-0\"", "00"},
        {"UInt16", "65535", "ffff"},
        {"UInt16", "true", "!column \"c\" (UInt16): cannot store true: not an integer"},
        {"UInt32", "4294967295", "ffffffff"},
        {"UInt32", "4294967296",
         "!column \"c\" (UInt32): cannot store 4294967296: out of range 0..4294967295"},
        {"UInt64", "math.maxinteger", "ffffffffffffff7f"},
        {"UInt64", "\"18446744073709551615\"", "ffffffffffffffff"},
        {"UInt64", "2^63", "0000000000000080"},
        {"UInt64", "\"18446744073709551616\"",
         "!column \"c\" (UInt64): cannot store \"18446744073709551616\": out of range "
         "0..18446744073709551615"},
        {"UInt64", "-1",
         "!column \"c\" (UInt64): cannot store -1: out of range 0..18446744073709551615"},
        {"UInt128", "\"340282366920938463463374607431768211455\"",
         "ffffffffffffffffffffffffffffffff"},
        {"UInt128", "\"340282366920938463463374607431768211456\"",
         "!column \"c\" (UInt128): cannot store \"340282366920938463463374607431768211456\": out "
         "of range"},
        {"UInt128", "-1", "!column \"c\" (UInt128): cannot store -1: out of range"},
        {"UInt256",
         "\"115792089237316195423570985008687907853269984665640564039457584007913129639935\"",
         "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"},
        {"UInt256",
         "\"115792089237316195423570985008687907853269984665640564039457584007913129639936\"",
         "!column \"c\" (UInt256): cannot store "
         "\"1157920892373161954235709850086879078532699846656405640394575840\"... (78 bytes): out "
         "of range"},
        {"UInt256",
         "\"" /* 100 digits: too many for the bignum itself */
         "1000000000000000000000000000000000000000000000000000"
         "000000000000000000000000000000000000000000000000\"",
         "!column \"c\" (UInt256): cannot store "
         "\"1000000000000000000000000000000000000000000000000000000000000000\"... (100 bytes): "
         "out of range"},
        {"UInt256", "0", "0000000000000000000000000000000000000000000000000000000000000000"},
    };
    RUN(cases);
}

static void test_floats_bool_strings(void **state)
{
    static const rb_case cases[] = {
        {"Float32", "1.5", "0000c03f"},
        {"Float32", "\"1.5\"", "0000c03f"},
        {"Float32", "0.1", "cdcccc3d"},
        {"Float32", "3", "00004040"},
        {"Float32", "1e39", "!column \"c\" (Float32): cannot store 1e+39: beyond Float32's range"},
        /* rounded once: text and integers straight to float, not through a double */
        {"Float32", "\"1.000000059604644775390625000001\"", "0100803f"},
        {"Float32", "16777217", "0000804b"},
        {"Float32", "\"3.4028235677973366e38\"", "ffff7f7f"},
        {"Float32", "3.4028235677973366e38",
         "!column \"c\" (Float32): cannot store 3.4028235677973366e+38: beyond Float32's range"},
        {"Float32", "\"1e39\"",
         "!column \"c\" (Float32): cannot store \"1e39\": beyond Float32's range"},
        {"Float64", "1.5", "000000000000f83f"},
        {"Float64", "-0.0", "0000000000000080"},
        {"Float64", "1", "000000000000f03f"},
        {"Float64", "9007199254740993", "0000000000004043"},
        {"Float64", "\"-2e-3\"", "fca9f1d24d6260bf"},
        {"Float64", "\".5\"", "000000000000e03f"},
        {"Float64", "\"1.\"", "000000000000f03f"},
        {"Float64", "\"nan\"", "!column \"c\" (Float64): cannot store \"nan\": not a number"},
        {"Float64", "\"0x10\"", "!column \"c\" (Float64): cannot store \"0x10\": not a number"},
        {"Float64", "\"1e\"", "!column \"c\" (Float64): cannot store \"1e\": not a number"},
        {"Float64", "\".\"", "!column \"c\" (Float64): cannot store \".\": not a number"},
        {"Float64", "\"1e400\"",
         "!column \"c\" (Float64): cannot store \"1e400\": not a finite number"},
        {"Float64", "0/0", "!column \"c\" (Float64): cannot store nan: not a finite number"},
        {"Float64", "-math.huge",
         "!column \"c\" (Float64): cannot store -inf: not a finite number"},
        {"Float64", "true", "!column \"c\" (Float64): cannot store true: not a number"},
        {"Bool", "true", "01"},
        {"Bool", "false", "00"},
        {"Bool", "1", "01"},
        {"Bool", "0", "00"},
        {"Bool", "2", "!column \"c\" (Bool): cannot store 2: Bool takes true, false, 0 or 1"},
        {"Bool", "\"true\"",
         "!column \"c\" (Bool): cannot store \"true\": Bool takes true, false, 0 or 1"},
        {"String", "\"abc\"", "03616263"},
        {"String", "\"\"", "00"},
        {"String", "\"a\\0b\"", "03610062"},
        {"String", "string.rep('x', 200)",
         "c801"
         "78787878787878787878787878787878787878787878787878787878787878787878787878787878"
         "78787878787878787878787878787878787878787878787878787878787878787878787878787878"
         "78787878787878787878787878787878787878787878787878787878787878787878787878787878"
         "78787878787878787878787878787878787878787878787878787878787878787878787878787878"
         "78787878787878787878787878787878787878787878787878787878787878787878787878787878"},
        {"String", "5", "0135"},
        {"String", "-1.5", "042d312e35"},
        {"String", "2.0", "0132"},
        {"String", "1e300", "0631652b333030"},
        {"String", "true", "0474727565"},
        {"String", "0/0", "!column \"c\" (String): cannot store nan: not a finite number"},
        {"String", "{}",
         "!column \"c\" (String): cannot store a table: takes a string, a number or a boolean"},
        {"FixedString(4)", "\"ab\"", "61620000"},
        {"FixedString(4)", "\"abcd\"", "61626364"},
        {"FixedString(4)", "12", "31320000"},
        {"FixedString(4)", "\"abcde\"",
         "!column \"c\" (FixedString(4)): cannot store \"abcde\": longer than 4 bytes"},
        {"LowCardinality(String)", "\"ab\"", "026162"},
    };
    RUN(cases);
}

static void test_dates(void **state)
{
    static const rb_case cases[] = {
        {"Date", "\"1970-01-01\"", "0000"},
        {"Date", "\"2024-01-02\"", "0c4d"},
        {"Date", "\"2024-02-29\"", "464d"},
        {"Date", "\"2149-06-06\"", "ffff"},
        {"Date", "19724", "0c4d"},
        {"Date", "19724.0", "0c4d"},
        {"Date", "\"2149-06-07\"",
         "!column \"c\" (Date): cannot store \"2149-06-07\": outside 1970-01-01..2149-06-06"},
        {"Date", "\"1969-12-31\"",
         "!column \"c\" (Date): cannot store \"1969-12-31\": outside 1970-01-01..2149-06-06"},
        {"Date", "-1", "!column \"c\" (Date): cannot store -1: outside 1970-01-01..2149-06-06"},
        {"Date", "65536",
         "!column \"c\" (Date): cannot store 65536: outside 1970-01-01..2149-06-06"},
        {"Date", "2^40",
         "!column \"c\" (Date): cannot store 1099511627776: outside 1970-01-01..2149-06-06"},
        {"Date", "\"2023-02-29\"",
         "!column \"c\" (Date): cannot store \"2023-02-29\": not a date (YYYY-MM-DD)"},
        {"Date", "\"2024-1-02\"",
         "!column \"c\" (Date): cannot store \"2024-1-02\": not a date (YYYY-MM-DD)"},
        {"Date", "\"2024-01-02 00:00:00\"",
         "!column \"c\" (Date): cannot store \"2024-01-02 00:00:00\": not a date (YYYY-MM-DD)"},
        {"Date", "\"2024-13-01\"",
         "!column \"c\" (Date): cannot store \"2024-13-01\": not a date (YYYY-MM-DD)"},
        {"Date", "1.5",
         "!column \"c\" (Date): cannot store 1.5: not a date (YYYY-MM-DD) or a number of days"},
        {"Date", "true",
         "!column \"c\" (Date): cannot store true: not a date (YYYY-MM-DD) or a number of days"},
        {"Date32", "\"1900-01-01\"", "219cffff"},
        {"Date32", "\"2299-12-31\"", "d1d60100"},
        {"Date32", "-25567", "219cffff"},
        {"Date32", "\"1899-12-31\"",
         "!column \"c\" (Date32): cannot store \"1899-12-31\": outside 1900-01-01..2299-12-31"},
        {"Date32", "\"2300-01-01\"",
         "!column \"c\" (Date32): cannot store \"2300-01-01\": outside 1900-01-01..2299-12-31"},
        {"DateTime", "\"2024-01-02 03:04:05\"", "257d9365"},
        {"DateTime", "\"2024-01-02T03:04:05\"", "257d9365"},
        {"DateTime", "\"2024-01-02 03:04:05.999999\"", "257d9365"},
        {"DateTime", "\"2024-01-02\"", "00529365"},
        {"DateTime", "0", "00000000"},
        {"DateTime", "4294967295", "ffffffff"},
        {"DateTime", "1704164645.0", "257d9365"},
        {"DateTime", "\"2106-02-07 06:28:15\"", "ffffffff"},
        {"DateTime", "\"2106-02-07 06:28:16\"",
         "!column \"c\" (DateTime): cannot store \"2106-02-07 06:28:16\": outside 1970-01-01 "
         "00:00:00..2106-02-07 06:28:15 UTC"},
        {"DateTime", "\"1969-12-31 23:59:59\"",
         "!column \"c\" (DateTime): cannot store \"1969-12-31 23:59:59\": outside 1970-01-01 "
         "00:00:00..2106-02-07 06:28:15 UTC"},
        {"DateTime", "4294967296",
         "!column \"c\" (DateTime): cannot store 4294967296: outside 0..4294967295"},
        {"DateTime", "-1", "!column \"c\" (DateTime): cannot store -1: outside 0..4294967295"},
        {"DateTime", "1.5", "!column \"c\" (DateTime): cannot store 1.5: not an integer"},
        {"DateTime", "\"2024-01-02 24:00:00\"",
         "!column \"c\" (DateTime): cannot store \"2024-01-02 24:00:00\": not a date-time "
         "(YYYY-MM-DD hh:mm:ss[.fraction])"},
        {"DateTime", "\"2024-01-02 03:04\"",
         "!column \"c\" (DateTime): cannot store \"2024-01-02 03:04\": not a date-time "
         "(YYYY-MM-DD hh:mm:ss[.fraction])"},
        {"DateTime", "\"2024-01-02 03:04:05.\"",
         "!column \"c\" (DateTime): cannot store \"2024-01-02 03:04:05.\": not a date-time "
         "(YYYY-MM-DD hh:mm:ss[.fraction])"},
        {"DateTime", "\"2024-01-02 03:04:05Z\"",
         "!column \"c\" (DateTime): cannot store \"2024-01-02 03:04:05Z\": not a date-time "
         "(YYYY-MM-DD hh:mm:ss[.fraction])"},
        {"DateTime", "\"2024-01-02 03:04:60\"",
         "!column \"c\" (DateTime): cannot store \"2024-01-02 03:04:60\": not a date-time "
         "(YYYY-MM-DD hh:mm:ss[.fraction])"},
        {"DateTime", "true",
         "!column \"c\" (DateTime): cannot store true: not date-time text or a number of "
         "seconds"},
        {"DateTime('Etc/GMT-3')", "\"2024-01-01 03:00:00\"", "80009265"},
        {"DateTime('Etc/GMT+5')", "\"2024-01-01 00:00:00\"", "d0469265"},
        {"DateTime('Europe/Berlin')", "1704067200", "80009265"},
        {"DateTime('Europe/Berlin')", "\"2024-01-01 00:00:00\"",
         "!column \"c\" (DateTime('Europe/Berlin')): cannot store \"2024-01-01 00:00:00\": text "
         "in time zone 'Europe/Berlin' is not supported (only UTC and fixed Etc/GMT offsets)"},
        {"DateTime64(3)", "\"2024-01-02 03:04:05.123456\"", "03d920c88c010000"},
        {"DateTime64(3)", "\"2024-01-02 03:04:05.1\"", "ecd820c88c010000"},
        {"DateTime64(3)", "\"2024-01-02\"", "005078c78c010000"},
        {"DateTime64(3)", "\"1900-01-01 00:00:00\"", "00dc01aefdfdffff"},
        {"DateTime64(3)", "\"2299-12-31 23:59:59.999\"", "ff775fa678090000"},
        {"DateTime64(3)", "\"1899-12-31 23:59:59\"",
         "!column \"c\" (DateTime64(3)): cannot store \"1899-12-31 23:59:59\": outside "
         "DateTime64(3)'s range"},
        {"DateTime64(3)", "\"2300-01-01 00:00:00\"",
         "!column \"c\" (DateTime64(3)): cannot store \"2300-01-01 00:00:00\": outside "
         "DateTime64(3)'s range"},
        {"DateTime64(9)", "\"2262-04-11 23:47:16.854775807\"", "ffffffffffffff7f"},
        {"DateTime64(9)", "\"2262-04-11 23:47:17\"",
         "!column \"c\" (DateTime64(9)): cannot store \"2262-04-11 23:47:17\": outside "
         "DateTime64(9)'s range"},
        {"DateTime64(0)", "\"2024-01-02 03:04:05.9\"", "257d936500000000"},
        {"DateTime64(3, 'Etc/GMT-3')", "\"2024-01-01 03:00:00.5\"", "f4f551c28c010000"},
        {"DateTime64(6)", "1704164645",
         "!column \"c\" (DateTime64(6)): cannot store 1704164645: not date-time text "
         "(YYYY-MM-DD hh:mm:ss[.fraction])"},
    };
    RUN(cases);
}

static void test_decimals(void **state)
{
    static const rb_case cases[] = {
        {"Decimal(9, 2)", "\"-1.5\"", "6affffff"},
        {"Decimal(38, 3)", "\"1\"", "e8030000000000000000000000000000"},
        {"Decimal(9, 2)", "\"1.230\"", "7b000000"},
        {"Decimal(9, 2)", "\"1.2300000000000000000000000000000000000000000\"", "7b000000"},
        {"Decimal(9, 2)", "\"9999999.99\"", "ffc99a3b"},
        {"Decimal(9, 2)", "\"-9999999.99\"", "013665c4"},
        {"Decimal(9, 2)", "\"1e2\"", "10270000"},
        {"Decimal(9, 2)", "\"0.5E-1\"", "05000000"},
        {"Decimal(9, 2)", "\"-0\"", "00000000"},
        {"Decimal(9, 2)", "\"-0.00\"", "00000000"},
        {"Decimal(9, 2)", "\"000000000000000000001\"", "64000000"},
        {"Decimal(9, 2)", "\".5\"", "32000000"},
        {"Decimal(9, 2)", "\"5.\"", "f4010000"},
        {"Decimal(9, 2)", "\"0e100000\"",
         "!column \"c\" (Decimal(9, 2)): cannot store \"0e100000\": exponent out of range"},
        {"Decimal(9, 2)", "12", "b0040000"},
        {"Decimal(9, 2)", "0.1", "0a000000"},
        {"Decimal(9, 2)", "-2.5", "06ffffff"},
        {"Decimal(9, 2)", "\"1.235\"",
         "!column \"c\" (Decimal(9, 2)): cannot store \"1.235\": more than 2 decimal places "
         "(values are not rounded)"},
        {"Decimal(9, 2)", "\"12345678.9\"",
         "!column \"c\" (Decimal(9, 2)): cannot store \"12345678.9\": more than 7 digits before "
         "the decimal point"},
        {"Decimal(9, 2)", "1e-7",
         "!column \"c\" (Decimal(9, 2)): cannot store 1e-07: more than 2 decimal places (values "
         "are not rounded)"},
        {"Decimal(9, 2)", "1e300",
         "!column \"c\" (Decimal(9, 2)): cannot store 1e+300: more than 7 digits before the "
         "decimal point"},
        {"Decimal(9, 2)", "\"abc\"",
         "!column \"c\" (Decimal(9, 2)): cannot store \"abc\": not a decimal number"},
        {"Decimal(9, 2)", "\"1e\"",
         "!column \"c\" (Decimal(9, 2)): cannot store \"1e\": not a decimal number"},
        {"Decimal(9, 2)", "\".\"",
         "!column \"c\" (Decimal(9, 2)): cannot store \".\": not a decimal number"},
        {"Decimal(9, 2)", "\"1.2.3\"",
         "!column \"c\" (Decimal(9, 2)): cannot store \"1.2.3\": not a decimal number"},
        {"Decimal(9, 2)", "\"+1\"",
         "!column \"c\" (Decimal(9, 2)): cannot store \"+1\": not a decimal number"},
        {"Decimal(9, 2)", "\" 1\"",
         "!column \"c\" (Decimal(9, 2)): cannot store \" 1\": not a decimal number"},
        {"Decimal(9, 2)", "\"1e100000\"",
         "!column \"c\" (Decimal(9, 2)): cannot store \"1e100000\": exponent out of range"},
        {"Decimal(9, 2)", "0/0",
         "!column \"c\" (Decimal(9, 2)): cannot store nan: not a finite number"},
        {"Decimal(9, 2)", "true",
         "!column \"c\" (Decimal(9, 2)): cannot store true: takes decimal text or a number"},
        {"Decimal(18, 4)", "\"99999999999999.9999\"", "ffff63a7b3b6e00d"},
        {"Decimal(38, 10)", "\"-12345678901234567890.0123456789\"",
         "eb2afbf3111f8c3c09f01671feffffff"},
        {"Decimal(76, 0)", "string.rep('9', 76)",
         "ffffffffffffffffff0f9571f1a57577792965e8abb46407b5159911a7cc1b16"},
        {"Decimal(76, 0)", "'-' .. string.rep('9', 76)",
         "010000000000000000f06a8e0e5a8a8886d69a17544b9bf84aea66ee5833e4e9"},
        {"Decimal(76, 0)", "'1' .. string.rep('0', 76)",
         "!column \"c\" (Decimal(76, 0)): cannot store "
         "\"1000000000000000000000000000000000000000000000000000000000000000\"... (77 bytes): "
         "more than 76 digits before the decimal point"},
        {"Decimal(76, 76)", "'0.' .. string.rep('0', 75) .. '1'",
         "0100000000000000000000000000000000000000000000000000000000000000"},
        {"Decimal(76, 76)", "\"1\"",
         "!column \"c\" (Decimal(76, 76)): cannot store \"1\": more than 0 digits before the "
         "decimal point"},
    };
    RUN(cases);
}

static void test_uuid_ip_enum(void **state)
{
    static const rb_case cases[] = {
        {"UUID", "\"01234567-89ab-cdef-0123-456789abcdef\"", "efcdab8967452301efcdab8967452301"},
        {"UUID", "\"00112233-4455-6677-8899-AABBCCDDEEFF\"", "7766554433221100ffeeddccbbaa9988"},
        {"UUID", "\"0123456789abcdef0123456789abcdef\"",
         "!column \"c\" (UUID): cannot store \"0123456789abcdef0123456789abcdef\": not a UUID "
         "(8-4-4-4-12 hex digits)"},
        {"UUID", "\"01234567-89ab-cdef-0123-456789abcdeg\"",
         "!column \"c\" (UUID): cannot store \"01234567-89ab-cdef-0123-456789abcdeg\": not a "
         "UUID (8-4-4-4-12 hex digits)"},
        {"UUID", "\"0123456-789ab-cdef-0123-456789abcdef\"",
         "!column \"c\" (UUID): cannot store \"0123456-789ab-cdef-0123-456789abcdef\": not a "
         "UUID (8-4-4-4-12 hex digits)"},
        {"UUID", "1", "!column \"c\" (UUID): cannot store 1: not a UUID (8-4-4-4-12 hex digits)"},
        {"IPv4", "\"1.2.3.4\"", "04030201"},
        {"IPv4", "\"255.255.255.255\"", "ffffffff"},
        {"IPv4", "16909060", "04030201"},
        {"IPv4", "\"256.1.1.1\"",
         "!column \"c\" (IPv4): cannot store \"256.1.1.1\": not an IPv4 address (a.b.c.d)"},
        {"IPv4", "\"1.2.3\"",
         "!column \"c\" (IPv4): cannot store \"1.2.3\": not an IPv4 address (a.b.c.d)"},
        {"IPv4", "\"1.2.3.4\\0\"",
         "!column \"c\" (IPv4): cannot store \"1.2.3.4\\x00\": not an IPv4 address (a.b.c.d)"},
        {"IPv4", "-1",
         "!column \"c\" (IPv4): cannot store -1: not an IPv4 address (0..4294967295)"},
        {"IPv6", "\"::1\"", "00000000000000000000000000000001"},
        {"IPv6", "\"2001:db8::ff00:42:8329\"", "20010db8000000000000ff0000428329"},
        {"IPv6", "\"1.2.3.4\"", "00000000000000000000ffff01020304"},
        {"IPv6", "\"::ffff:1.2.3.4\"", "00000000000000000000ffff01020304"},
        {"IPv6", "\"xyz\"", "!column \"c\" (IPv6): cannot store \"xyz\": not an IPv6 address"},
        {"IPv6", "string.rep('1', 70)",
         "!column \"c\" (IPv6): cannot store "
         "\"1111111111111111111111111111111111111111111111111111111111111111\"... (70 bytes): "
         "not an IPv6 address"},
        {"Enum8('a' = 1, 'b' = -2)", "\"b\"", "fe"},
        {"Enum8('a' = 1, 'b' = -2)", "\"a\"", "01"},
        {"Enum8('a' = 1, 'b' = -2)", "-2", "fe"},
        {"Enum8('a' = 1, 'b' = -2)", "3",
         "!column \"c\" (Enum8('a' = 1, 'b' = -2)): cannot store 3: not one of the Enum's values"},
        {"Enum8('a' = 1, 'b' = -2)", "\"c\"",
         "!column \"c\" (Enum8('a' = 1, 'b' = -2)): cannot store \"c\": not one of the Enum's "
         "names"},
        {"Enum8('a' = 1, 'b' = -2)", "\"a \"",
         "!column \"c\" (Enum8('a' = 1, 'b' = -2)): cannot store \"a \": not one of the Enum's "
         "names"},
        {"Enum8('a' = 1, 'b' = -2)", "true",
         "!column \"c\" (Enum8('a' = 1, 'b' = -2)): cannot store true: takes one of the Enum's "
         "names or values"},
        {"Enum8('it\\'s' = 5)", "\"it's\"", "05"},
        {"Enum16('x' = 1000, 'y' = -1000)", "\"x\"", "e803"},
        {"Enum16('x' = 1000, 'y' = -1000)", "\"y\"", "18fc"},
    };
    RUN(cases);
}

static void test_nullable_and_containers(void **state)
{
    static const rb_case cases[] = {
        {"Nullable(Int8)", "null", "01"},
        {"Nullable(Int8)", "5", "0005"},
        {"Nullable(Int8)", "\"x\"",
         "!column \"c\" (Nullable(Int8)): cannot store \"x\": not an integer (decimal digits, "
         "optional '-')"},
        {"Int8", "null",
         "!column \"c\" (Int8): cannot store cdc.null: not Nullable (leave the column out of the "
         "row to get its DEFAULT)"},
        {"LowCardinality(Nullable(String))", "null", "01"},
        {"LowCardinality(Nullable(String))", "\"a\"", "000161"},
        {"Array(UInt8)", "{1, 2}", "020102"},
        {"Array(UInt8)", "{}", "00"},
        {"Array(UInt8)", "{1, 2, x = 3}", "020102"},
        {"Array(UInt8)", "{x = 1}",
         "!column \"c\" (Array(UInt8)): cannot store a table: a table without elements 1..n is "
         "not an array"},
        {"Array(UInt8)", "\"x\"", "!column \"c\" (Array(UInt8)): cannot store \"x\": not a table"},
        {"Array(UInt8)", "{1, 300}",
         "!column \"c\" (Array(UInt8)) at [2] (UInt8): cannot store 300: out of range 0..255"},
        {"Array(UInt8)", "{1, null}",
         "!column \"c\" (Array(UInt8)) at [2] (UInt8): cannot store cdc.null: not Nullable "
         "(leave the column out of the row to get its DEFAULT)"},
        {"Array(Nullable(Int8))", "{1, null, 3}", "030001010003"},
        {"Array(Nullable(Int8))", "{1, nil, 3}", "030001010003"},
        {"Array(Array(String))", "{{'a'}, {}}", "0201016100"},
        {"Array(Array(String))", "{{'a'}, {'b', 5, {}}}",
         "!column \"c\" (Array(Array(String))) at [2][3] (String): cannot store a table: takes a "
         "string, a number or a boolean"},
        {"Array(Decimal(9, 2))", "{'1.5', 2}",
         "02"
         "96000000"
         "c8000000"},
        {"Map(String, UInt8)", "{a = 1}", "01016101"},
        {"Map(String, UInt8)", "{}", "00"},
        {"Map(String, UInt8)", "{a = 300}",
         "!column \"c\" (Map(String, UInt8)) at [\"a\"] (UInt8): cannot store 300: out of range "
         "0..255"},
        {"Map(UInt16, String)", "{[5] = 'x'}", "0105000178"},
        {"Map(UInt16, String)", "{['5'] = 'x'}", "0105000178"},
        {"Map(UInt16, String)", "{x = 'y'}",
         "!column \"c\" (Map(UInt16, String)) at key \"x\" (UInt16): cannot store \"x\": not an "
         "integer (decimal digits, optional '-')"},
        {"Map(String, Nullable(Int8))", "{k = null}", "01016b01"},
        {"Map(String, Array(Int8))", "{k = {1, 2}}", "01016b020102"},
        {"Map(String, UInt8)", "5",
         "!column \"c\" (Map(String, UInt8)): cannot store 5: not a table"},
        {"Tuple(Int8, String)", "{1, 'a'}", "010161"},
        {"Tuple(Int8, String)", "{1}",
         "!column \"c\" (Tuple(Int8, String)) at [2] (String): cannot store nil: a value is "
         "missing (only Nullable takes nil)"},
        {"Tuple(Int8, String)", "{1, 'a', 3}",
         "!column \"c\" (Tuple(Int8, String)): cannot store a table: more than 2 elements"},
        {"Tuple(Int8, String)", "{a = 1}",
         "!column \"c\" (Tuple(Int8, String)) at [1] (Int8): cannot store nil: a value is missing "
         "(only Nullable takes nil)"},
        {"Tuple(Int8, Nullable(Int8))", "{1}", "0101"},
        {"Tuple(a Int8, b String)", "{a = 1, b = 'x'}", "010178"},
        {"Tuple(a Int8, b String)", "{a = 1, b = 'x', z = 0}", "010178"},
        {"Tuple(a Int8, b String)", "{1, 'x'}", "010178"},
        {"Tuple(a Int8, b String)", "{a = 1}",
         "!column \"c\" (Tuple(a Int8, b String)) at .b (String): cannot store nil: a value is "
         "missing (only Nullable takes nil)"},
        {"Tuple()", "{}", ""},
        {"Nested(x UInt8, y String)", "{{x = 1, y = 'a'}, {x = 2, y = ''}}", "020101610200"},
        {"Array(Tuple(Int8, Array(Nullable(String))))", "{{1, {'a', null}}}", "01010200016101"},
    };
    RUN(cases);
}

static void test_time_zones(void **state)
{
    lua_State *L = *state;
    /* the server's zone for columns without their own */
    check_tz(L, "DateTime", "\"2024-01-01 03:00:00\"", "Etc/GMT-3", "80009265", NULL);
    check_tz(L, "DateTime", "\"2024-01-01 00:00:00\"", "Etc/UTC", "80009265", NULL);
    check_tz(L, "DateTime", "\"2024-01-01 00:00:00\"", "Zulu", "80009265", NULL);
    check_tz(L, "DateTime", "\"2024-01-01 00:00:00\"", "Europe/Moscow", NULL,
             "column \"c\" (DateTime): cannot store \"2024-01-01 00:00:00\": text in time zone "
             "'Europe/Moscow' is not supported (only UTC and fixed Etc/GMT offsets)");
    check_tz(L, "DateTime", "\"2024-01-01 00:00:00\"", NULL, NULL,
             "column \"c\" (DateTime): cannot store \"2024-01-01 00:00:00\": the server's time "
             "zone is unknown, so the text cannot be read");
    check_tz(L, "DateTime", "1704067200", NULL, "80009265", NULL);
    check_tz(L, "DateTime('UTC')", "\"2024-01-01 00:00:00\"", "Europe/Moscow", "80009265", NULL);
    check_tz(L, "DateTime('UTC')", "\"2024-01-01 00:00:00\"", NULL, "80009265", NULL);
    check_tz(L, "DateTime64(3)", "\"2024-01-01 03:00:00.5\"", "Etc/GMT-3", "f4f551c28c010000",
             NULL);
    /* the fixed offsets tzdata has: Etc/GMT-14 .. Etc/GMT+12 */
    check_tz(L, "DateTime('Etc/GMT-14')", "\"2024-01-01 14:00:00\"", "UTC", "80009265", NULL);
    check_tz(L, "DateTime('Etc/GMT+12')", "\"2023-12-31 12:00:00\"", "UTC", "80009265", NULL);
    check_tz(L, "DateTime('Etc/GMT+13')", "\"2024-01-01 00:00:00\"", "UTC", NULL,
             "column \"c\" (DateTime('Etc/GMT+13')): cannot store \"2024-01-01 00:00:00\": text "
             "in time zone 'Etc/GMT+13' is not supported (only UTC and fixed Etc/GMT offsets)");
    check_tz(L, "DateTime('Etc/GMT-03')", "\"2024-01-01 00:00:00\"", "UTC", NULL,
             "column \"c\" (DateTime('Etc/GMT-03')): cannot store \"2024-01-01 00:00:00\": text "
             "in time zone 'Etc/GMT-03' is not supported (only UTC and fixed Etc/GMT offsets)");
    /* a text whose UTC value falls outside the range only after the offset */
    check_tz(L, "DateTime('Etc/GMT-1')", "\"1970-01-01 00:30:00\"", "UTC", NULL,
             "column \"c\" (DateTime('Etc/GMT-1')): cannot store \"1970-01-01 00:30:00\": outside "
             "1970-01-01 00:00:00..2106-02-07 06:28:15 UTC");

    static const struct {
        const char *type, *server;
        const char *want; /* NULL: encodable */
    } checks[] = {
        {"DateTime", "UTC", NULL},
        {"Nullable(DateTime64(3))", "Etc/GMT-3", NULL},
        {"Array(DateTime('UTC'))", NULL, NULL},
        {"String", NULL, NULL},
        {"Array(DateTime('Europe/Berlin'))", "UTC",
         "column \"c\" (Array(DateTime('Europe/Berlin'))): the RowBinary encoder cannot read "
         "date-time text in time zone 'Europe/Berlin' (only UTC and fixed Etc/GMT offsets)"},
        {"Map(String, Tuple(a Int8, b DateTime))", "America/New_York",
         "column \"c\" (Map(String, Tuple(a Int8, b DateTime))): the RowBinary encoder cannot "
         "read date-time text in time zone 'America/New_York' (only UTC and fixed Etc/GMT "
         "offsets)"},
        {"DateTime64(6)", NULL,
         "column \"c\" (DateTime64(6)): the server's time zone is unknown, so the RowBinary "
         "encoder cannot read date-time text for it"},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        ch_type *t = parse(checks[i].type);
        char err[512] = "";
        int rc = rowbinary_check_column("c", t, checks[i].server, err, sizeof err);
        if (checks[i].want == NULL) {
            if (rc != 0) fail_msg("%s: %s", checks[i].type, err);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(err, checks[i].want);
        }
        ch_type_free(t);
    }
}

static void test_rows(void **state)
{
    lua_State *L = *state;
    ch_type *i8 = parse("Int8"), *str = parse("String"), *date = parse("Date");
    rowbinary_column cols[] = {{"b", i8}, {"a", str}, {"d", date}};
    strbuf out = {0};
    char err[512];

    /* the columns' order, not the table's; keys not listed are ignored */
    luaL_dostring(L, "return {a = 'x', b = 1, d = '1970-01-02', extra = {}}");
    assert_int_equal(rowbinary_append_row(&out, L, -1, cols, 3, "UTC", err, sizeof err), 0);
    assert_int_equal(out.len, 5);
    assert_memory_equal(out.data, "\x01\x01x\x01\x00", 5);
    lua_pop(L, 1);

    /* a subset of the columns, as the caller groups rows by the columns they set */
    luaL_dostring(L, "return {a = 'yz'}");
    assert_int_equal(rowbinary_append_row(&out, L, -1, cols + 1, 1, "UTC", err, sizeof err), 0);
    assert_int_equal(out.len, 8);
    assert_memory_equal(out.data + 5, "\x02yz", 3);

    /* a listed column the row does not set */
    assert_int_equal(rowbinary_append_row(&out, L, -1, cols, 2, "UTC", err, sizeof err), -1);
    assert_string_equal(err, "column \"b\" (Int8): the row has no value for it (the columns "
                             "passed must be the ones the row sets)");
    assert_int_equal(out.len, 8);
    lua_pop(L, 1);

    /* refused at the last column: everything of the row is taken back, stack as it was */
    luaL_dostring(L, "return {a = 'abc', b = 2, d = 'tomorrow'}");
    int top = lua_gettop(L);
    assert_int_equal(rowbinary_append_row(&out, L, -1, cols, 3, "UTC", err, sizeof err), -1);
    assert_string_equal(err,
                        "column \"d\" (Date): cannot store \"tomorrow\": not a date (YYYY-MM-DD)");
    assert_int_equal(out.len, 8);
    assert_int_equal(out.data[8], '\0');
    assert_int_equal(lua_gettop(L), top);
    lua_pop(L, 1);

    /* a failure deep inside a container, after lua_next pushed its key and value */
    ch_type *map = parse("Map(String, Array(UInt8))");
    rowbinary_column mcol = {"m", map};
    luaL_dostring(L, "return {m = {k = {1, 2, 'x'}}}");
    top = lua_gettop(L);
    assert_int_equal(rowbinary_append_row(&out, L, -1, &mcol, 1, "UTC", err, sizeof err), -1);
    assert_string_equal(err, "column \"m\" (Map(String, Array(UInt8))) at [\"k\"][3] (UInt8): "
                             "cannot store \"x\": not an integer (decimal digits, optional '-')");
    assert_int_equal(lua_gettop(L), top);
    assert_int_equal(out.len, 8);
    lua_pop(L, 1);

    /* not a table */
    lua_pushstring(L, "row");
    assert_int_equal(rowbinary_append_row(&out, L, -1, cols, 3, "UTC", err, sizeof err), -1);
    assert_string_equal(err, "a row must be a table, got a string");
    lua_pop(L, 1);

    /* no columns: an empty row */
    lua_newtable(L);
    assert_int_equal(rowbinary_append_row(&out, L, -1, cols, 0, "UTC", err, sizeof err), 0);
    assert_int_equal(out.len, 8);
    lua_pop(L, 1);

    /* NULL err is allowed */
    lua_pushstring(L, "row");
    assert_int_equal(rowbinary_append_row(&out, L, -1, cols, 3, "UTC", NULL, 0), -1);
    lua_pop(L, 1);

    strbuf_free(&out);
    ch_type_free(i8);
    ch_type_free(str);
    ch_type_free(date);
    ch_type_free(map);
}

static void test_values_in_messages(void **state)
{
    static const rb_case cases[] = {
        /* escaped: quotes, backslashes, control and non-ASCII bytes */
        {"Int8", "\"a\\\"b\\\\c\\n\\xff\"",
         "!column \"c\" (Int8): cannot store \"a\\\"b\\\\c\\x0a\\xff\": not an integer (decimal "
         "digits, optional '-')"},
        /* cut to 64 bytes of the value, with its length */
        {"Int8", "string.rep('ab', 50)",
         "!column \"c\" (Int8): cannot store "
         "\"abababababababababababababababababababababababababababababababab\"... (100 bytes): "
         "not an integer (decimal digits, optional '-')"},
        {"Int8", "print", "!column \"c\" (Int8): cannot store a function: not an integer"},
        {"String", "io.stdout",
         "!column \"c\" (String): cannot store a userdata: takes a string, a number or a boolean"},
    };
    RUN(cases);
}

static void test_leb128(void **state)
{
    (void)state;
    static const struct {
        size_t n;
        const char *hex;
    } cases[] = {
        {0, "00"},     {1, "01"},       {127, "7f"},       {128, "8001"},
        {300, "ac02"}, {16383, "ff7f"}, {16384, "808001"}, {SIZE_MAX, "ffffffffffffffffff01"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        strbuf out = {0};
        rowbinary_leb128(&out, cases[i].n);
        char hex[64];
        to_hex(out.data, out.len, hex, sizeof hex);
        assert_string_equal(hex, cases[i].hex);
        strbuf_free(&out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_integers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_floats_bool_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decimals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uuid_ip_enum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nullable_and_containers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_zones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values_in_messages, setup, teardown),
        cmocka_unit_test(test_leb128),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
