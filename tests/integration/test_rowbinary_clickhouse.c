/*
 * test_rowbinary_clickhouse — the RowBinary encoder (rowbinary.h, ch_type.h) against a real
 * ClickHouse.
 *
 * One table holds every type the server has (18.16: no Bool, Date32, DateTime64, 128/256-bit
 * integers, Decimal256, IPv4/IPv6, Map, named tuples; those columns are added only when
 * system.data_type_families lists the type, so a newer server gets them too), plus a column
 * with a DEFAULT expression no row sets. Its twin has the same columns. Then:
 *   1. The table's columns are read back with DESCRIBE TABLE and every type parsed with
 *      ch_type_parse (the server's own spelling of each type).
 *   2. The same Lua rows go into the table as RowBinary (rowbinary_append_row) and into the twin
 *      as JSONEachRow (row_json_append), grouped by the columns each row sets, one INSERT per
 *      group naming exactly those columns; `SELECT * … ORDER BY id FORMAT TSV` of both must be
 *      byte-identical (omitted columns got their DEFAULT both ways).
 *   3. Rows in forms 18.16's JSONEachRow does not read (Date as days, DateTime as seconds, Enum
 *      by value, String from a number, 38-digit Decimal text, UInt64 above 2^63 from a float,
 *      DateTime text with 'T' and a fraction) go in as RowBinary only, in one body with a row
 *      the encoder refuses between them (the body must stay valid), and their TSV output must
 *      equal the text written here.
 * Relies on: CDCPIPE_SERVICES_ENV (services.env with CLICKHOUSE_URL=). Works in a database
 * t_rowbinary_<pid>, dropped at the end (also on failure). Prints "ok - ..." per check and
 * "N passed, 0 failed" at the end; any failure prints "FAIL: ..." and exits 1.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "cdcpipe/ch_type.h"
#include "cdcpipe/row_json.h"
#include "cdcpipe/rowbinary.h"
#include "cdcpipe/strbuf.h"

#include "support.h"

static int passed;
static char *base_url; /* CLICKHOUSE_URL without a trailing '/' */
static char database[64];
static CURL *curl;

static long http(const char *query, const char *settings, const char *body, size_t len,
                 strbuf *answer);

/* Prints the failure, drops the test database if it was made, exits 1. */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (curl && database[0]) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", database);
        strbuf ignored = {0};
        http(NULL, "", sql, strlen(sql), &ignored);
        strbuf_free(&ignored);
    }
    exit(1);
}

static void pass(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void pass(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ok - ", stdout);
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
    va_end(ap);
    passed++;
}

/* ---- environment and HTTP ---- */

/* CLICKHOUSE_URL from services.env, or the test fails saying what is missing. */
static char *clickhouse_url_from_services_env(void)
{
    char err[512];
    char *url = services_clickhouse_url(err, sizeof err);
    if (!url) fail("%s", err);
    return url;
}

static size_t collect(char *data, size_t size, size_t nmemb, void *ud)
{
    strbuf_append(ud, data, size * nmemb);
    return size * nmemb;
}

/* POSTs body to the server; with `query` (an INSERT) the statement goes in the URL and body is
 * its data. settings: more URL parameters ("&name=value…" or ""). The answer is in *answer;
 * returns the HTTP status (0 when there was none). */
static long http(const char *query, const char *settings, const char *body, size_t len,
                 strbuf *answer)
{
    strbuf url = {0};
    strbuf_printf(&url, "%s/?%s%s%s", base_url, database[0] ? "database=" : "", database, settings);
    if (query) {
        char *escaped = curl_easy_escape(curl, query, 0);
        if (!escaped) abort();
        strbuf_printf(&url, "&query=%s", escaped);
        curl_free(escaped);
    }
    strbuf_reset(answer);
    curl_easy_setopt(curl, CURLOPT_URL, url.data);
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, answer);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    long status = 0;
    if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    strbuf_free(&url);
    strbuf_putc(answer, '\0'); /* data is a C string even when the answer is empty */
    answer->len--;
    return status;
}

/* Runs one statement; fails the test unless the server answers 200. */
static void run_sql(const char *settings, const char *sql, strbuf *answer)
{
    if (http(NULL, settings, sql, strlen(sql), answer) != 200)
        fail("ClickHouse: %s\n%s", sql, answer->data);
}

/* ---- the table ---- */

/* Columns of the test tables: name, type, and the type family the server must have. */
static const struct {
    const char *name, *type, *needs;
} candidates[] = {
    {"id", "UInt32", NULL},
    {"i8", "Int8", NULL},
    {"i16", "Int16", NULL},
    {"i32", "Int32", NULL},
    {"i64", "Int64", NULL},
    {"u8", "UInt8", NULL},
    {"u16", "UInt16", NULL},
    {"u32", "UInt32", NULL},
    {"u64", "UInt64", NULL},
    {"f32", "Float32", NULL},
    {"f64", "Float64", NULL},
    {"s", "String", NULL},
    {"fs", "FixedString(4)", NULL},
    {"d", "Date", NULL},
    {"dt", "DateTime", NULL},
    {"dt_utc", "DateTime('UTC')", NULL},
    {"dt_off", "DateTime('Etc/GMT-3')", NULL},
    {"dec9", "Decimal(9, 2)", NULL},
    {"dec18", "Decimal(18, 4)", NULL},
    {"dec38", "Decimal(38, 10)", NULL},
    {"dec32s", "Decimal32(3)", NULL},
    {"uuid", "UUID", NULL},
    {"e8", "Enum8('a' = 1, 'it\\'s' = -2, 'b\\\\c' = 3)", NULL},
    {"e16", "Enum16('x' = 1000, 'y' = -1000)", NULL},
    {"lc", "LowCardinality(String)", "LowCardinality"},
    {"lcn", "LowCardinality(Nullable(String))", "LowCardinality"},
    {"n_i32", "Nullable(Int32)", NULL},
    {"n_s", "Nullable(String)", NULL},
    {"n_dec", "Nullable(Decimal(9, 2))", NULL},
    {"arr_u8", "Array(UInt8)", NULL},
    {"arr_s", "Array(String)", NULL},
    {"arr_arr", "Array(Array(Int16))", NULL},
    {"arr_n", "Array(Nullable(Float64))", NULL},
    {"arr_dt", "Array(DateTime)", NULL},
    {"tup", "Tuple(Int8, String, Date)", NULL},
    {"dflt", "UInt32 DEFAULT id * 2", NULL},
    /* not on 18.16 */
    {"b", "Bool", "Bool"},
    {"d32", "Date32", "Date32"},
    {"dt64", "DateTime64(6)", "DateTime64"},
    {"dt64_utc", "DateTime64(3, 'UTC')", "DateTime64"},
    {"i128", "Int128", "Int128"},
    {"i256", "Int256", "Int256"},
    {"u128", "UInt128", "UInt128"},
    {"u256", "UInt256", "UInt256"},
    {"dec76", "Decimal(76, 20)", "Decimal256"},
    {"ip4", "IPv4", "IPv4"},
    {"ip6", "IPv6", "IPv6"},
    {"m", "Map(String, UInt64)", "Map"},
    {"ntup", "Tuple(a Int8, b String)", "Map"}, /* named tuples came with Map (21.x) */
    {"arr_tup", "Array(Tuple(Int8, String))", "Map"},
};
#define NCANDIDATES (sizeof candidates / sizeof candidates[0])

/* Rows both formats carry on every server (18.16's JSONEachRow included: decimals as numbers,
 * dates as text). Keys of columns a server lacks are ignored by both paths. */
static const char rows_both[] =
    "return {\n"
    " {id = 1, i8 = -128, i16 = 32767, i32 = -2147483648, i64 = math.mininteger, u8 = 255,\n"
    "  u16 = 65535, u32 = 4294967295, u64 = '18446744073709551615', f32 = 1.5, f64 = -0.1,\n"
    "  s = 'h\\195\\169llo\\t\"q\"\\\\\\n', fs = 'ab', d = '2024-02-29',\n"
    "  dt = '2024-01-02 03:04:05', dt_utc = '2038-01-19 03:14:08', dt_off = '2024-01-01 "
    "03:00:00',\n"
    "  dec9 = 1.25, dec18 = -12345, dec38 = 0.5, dec32s = -1.125,\n"
    "  uuid = '01234567-89ab-cdef-0123-456789abcdef', e8 = \"it's\", e16 = 'y', lc = 'x',\n"
    "  lcn = null, n_i32 = null, n_s = '', n_dec = null, arr_u8 = {1, 2, 255},\n"
    "  arr_s = {'a', '', '\"'}, arr_arr = {{1, -2}, {}, {32767}}, arr_n = {1.5, null, -2},\n"
    "  arr_dt = {'2024-01-01 00:00:00', '1970-01-02 00:00:00'}, tup = {-1, 't', '2024-01-01'},\n"
    "  b = true, d32 = '1900-01-01', dt64 = '2024-01-02 03:04:05.123456',\n"
    "  dt64_utc = '1969-12-31 23:59:59.999',\n"
    "  i128 = '-170141183460469231731687303715884105728',\n"
    "  i256 = '57896044618658097711785492504343953926634992332820282019728792003956564819967',\n"
    "  u128 = '340282366920938463463374607431768211455',\n"
    "  u256 = "
    "'115792089237316195423570985008687907853269984665640564039457584007913129639935',\n"
    "  dec76 = '-12345678901234567890123456789012345678901234567890.12345678901234567890',\n"
    "  ip4 = '1.2.3.4', ip6 = '2001:db8::1', m = {k = 1}, ntup = {a = 1, b = 'x'},\n"
    "  arr_tup = {{1, 'a'}, {2, 'b'}}},\n"
    " {id = 2, i8 = 0, i16 = -1, i32 = 0, i64 = math.maxinteger, u8 = 0, u16 = 0, u32 = 0,\n"
    "  u64 = 0, f32 = 3.4028234663852886e38, f64 = 1e300, s = '', fs = 'abcd', d = '1970-01-02',\n"
    "  dt = '1970-01-01 00:00:01', dt_utc = '2105-12-31 23:59:59', dt_off = '1970-01-01 "
    "03:00:01',\n"
    "  dec9 = 0, dec18 = 0.0001, dec38 = -7, dec32s = 999999.999,\n"
    "  uuid = '00000000-0000-0000-0000-000000000000', e8 = 'a', e16 = 'x', lc = '', lcn = 'y',\n"
    "  n_i32 = 7, n_s = null, n_dec = -0.01, arr_u8 = {}, arr_s = {}, arr_arr = {},\n"
    "  arr_n = {}, arr_dt = {}, tup = {0, '', '1970-01-02'},\n"
    "  b = false, d32 = '2299-12-31', dt64 = '1970-01-01 00:00:00', dt64_utc = '2299-12-31 "
    "23:59:59.999',\n"
    "  i128 = 0, i256 = -1, u128 = 0, u256 = 0, dec76 = 0, ip4 = '0.0.0.0', ip6 = '::',\n"
    "  m = {z = 0}, ntup = {0, ''}, arr_tup = {}},\n" /* row_json writes {} as [] */
    " {id = 3, s = 'only s'},\n"
    " {id = 4, i32 = 5, n_i32 = null, d = '2000-01-01', arr_n = {null}},\n"
    " {id = 5, s = '\\0\\1\\255\\254', fs = '\\0\\0ab', f32 = 0.1, f64 = 5e-300,\n"
    "  e8 = 'b\\\\c', tup = {127, '\\n', '2100-02-28'}, lcn = null, n_s = 'n'},\n"
    " {id = 6, f32 = -1e-40, f64 = 2^53 + 1, u64 = 2^53, i64 = -2^53, dec18 = 99999999999999,\n"
    "  dec38 = 1e-10, dec9 = -9999999.99},\n"
    "}\n";

/* Rows only RowBinary takes on 18.16, one the encoder refuses, and what SELECT of them prints. */
static const char rows_rowbinary_only[] =
    "return {\n"
    " {id = 100, u64 = 2^63, i64 = '-9223372036854775808', d = 19782, dt = 1704164645,\n"
    "  e8 = -2, e16 = 1000, s = 5, dec38 = '-12345678901234567890.0123456789',\n"
    "  dec18 = '99999999999999.9999', fs = 12},\n"
    " {id = 101, u8 = 300},\n" /* refused: out of range */
    " {id = 102, u64 = '0', i64 = 1.0, d = '2100-02-28', dt = '2024-01-02T03:04:05.999',\n"
    "  e8 = 'b\\\\c', e16 = 'y', s = true, dec38 = '1e-10', dec18 = '-0.00010', fs = 'abcd'},\n"
    "}\n";
static const char rows_rowbinary_only_select[] =
    "SELECT id, u64, i64, d, dt, e8, e16, s, dec38, dec18, fs FROM rb WHERE id >= 100 "
    "ORDER BY id FORMAT TSV";
static const char rows_rowbinary_only_tsv[] =
    "100\t9223372036854775808\t-9223372036854775808\t2024-02-29\t2024-01-02 03:04:05\tit\\'s\tx\t"
    "5\t-12345678901234567890.0123456789\t99999999999999.9999\t12\\0\\0\n"
    "102\t0\t1\t2100-02-28\t2024-01-02 03:04:05\tb\\\\c\ty\ttrue\t0.0000000001\t-0.0001\tabcd\n";

typedef struct {
    char *name;
    ch_type *type;
} table_column;

static table_column columns[NCANDIDATES];
static size_t ncolumns;

/* Creates rb and js with the candidate columns the server has; returns the server's zone. */
static char *create_tables(void)
{
    strbuf answer = {0}, sql = {0};
    run_sql("", "SELECT version()", &answer);
    bool old = strncmp(answer.data, "18.", 3) == 0 || strncmp(answer.data, "19.", 3) == 0;
    printf("# ClickHouse %s", answer.data);
    run_sql("", "SELECT name FROM system.data_type_families FORMAT TSV", &answer);
    strbuf families = {0};
    strbuf_printf(&families, "\n%s", answer.data);
    for (const char *table = "rb"; table; table = strcmp(table, "rb") == 0 ? "js" : NULL) {
        strbuf_reset(&sql);
        strbuf_printf(&sql, "CREATE TABLE %s (", table);
        bool first = true;
        for (size_t i = 0; i < NCANDIDATES; i++) {
            if (candidates[i].needs) {
                char want[64];
                snprintf(want, sizeof want, "\n%s\n", candidates[i].needs);
                if (!strstr(families.data, want)) {
                    if (table[0] == 'r')
                        printf("# %s %s: the server has no %s\n", candidates[i].name,
                               candidates[i].type, candidates[i].needs);
                    continue;
                }
            }
            strbuf_printf(&sql, "%s%s %s", first ? "" : ", ", candidates[i].name,
                          candidates[i].type);
            first = false;
        }
        strbuf_puts(&sql, ") ENGINE = MergeTree ORDER BY id");
        /* 18.16 makes LowCardinality columns only with this setting */
        run_sql(old ? "&allow_experimental_low_cardinality_type=1" : "", sql.data, &answer);
    }
    run_sql("", "SELECT timezone()", &answer);
    answer.data[strcspn(answer.data, "\n")] = '\0';
    char *zone = strdup(answer.data);
    if (!zone) abort();
    strbuf_free(&families);
    strbuf_free(&sql);
    strbuf_free(&answer);
    return zone;
}

/* DESCRIBE TABLE rb: every column's type as the server prints it, parsed. */
static void read_columns(const char *server_zone)
{
    strbuf answer = {0};
    run_sql("", "DESCRIBE TABLE rb FORMAT TabSeparatedRaw", &answer);
    char *save = NULL;
    for (char *line = strtok_r(answer.data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *tab = strchr(line, '\t');
        if (!tab) fail("DESCRIBE line without a tab: %s", line);
        *tab = '\0';
        char *type = tab + 1;
        char *end = strchr(type, '\t');
        if (end) *end = '\0';
        char err[512];
        ch_type *t;
        if (ch_type_parse(type, strlen(type), &t, err, sizeof err) != CH_TYPE_OK)
            fail("column %s: %s", line, err);
        if (rowbinary_check_column(line, t, server_zone, err, sizeof err) != 0)
            fail("column %s: %s", line, err);
        columns[ncolumns].name = strdup(line);
        columns[ncolumns].type = t;
        if (!columns[ncolumns].name) abort();
        ncolumns++;
    }
    strbuf_free(&answer);
    pass("DESCRIBE TABLE: %zu columns, every type parsed (%s … %s)", ncolumns, columns[0].name,
         columns[ncolumns - 1].name);
}

/* ---- inserting ---- */

/* The table's columns the row at idx sets, in table order; returns how many. */
static size_t row_columns(lua_State *L, int idx, rowbinary_column *out)
{
    size_t n = 0;
    for (size_t i = 0; i < ncolumns; i++) {
        lua_getfield(L, idx, columns[i].name);
        if (!lua_isnil(L, -1)) {
            out[n].name = columns[i].name;
            out[n].type = columns[i].type;
            n++;
        }
        lua_pop(L, 1);
    }
    return n;
}

static void column_list(strbuf *sql, const rowbinary_column *cols, size_t n)
{
    strbuf_putc(sql, '(');
    for (size_t i = 0; i < n; i++)
        strbuf_printf(sql, "%s%s", i ? ", " : "", cols[i].name);
    strbuf_putc(sql, ')');
}

static bool same_columns(const rowbinary_column *a, size_t na, const rowbinary_column *b, size_t nb)
{
    if (na != nb) return false;
    for (size_t i = 0; i < na; i++)
        if (a[i].name != b[i].name) return false;
    return true;
}

/* Inserts the rows of the table at the top of the stack into rb (RowBinary) and, with `twin`,
 * into js (JSONEachRow), grouped by the columns each row sets (consecutive rows with the same
 * set share an INSERT). Returns the number of rows the encoder refused. */
static int insert_rows(lua_State *L, const char *server_zone, bool twin)
{
    int list = lua_gettop(L), refused = 0;
    size_t nrows = (size_t)lua_rawlen(L, list);
    rowbinary_column group[NCANDIDATES], cols[NCANDIDATES];
    size_t ngroup = 0;
    strbuf rb = {0}, js = {0}, sql = {0}, answer = {0};
    char err[1024];
    for (size_t r = 1; r <= nrows + 1; r++) {
        size_t n = 0;
        if (r <= nrows) {
            lua_rawgeti(L, list, (lua_Integer)r);
            n = row_columns(L, lua_gettop(L), cols);
        }
        /* a new column set (or the end): send what the previous set gathered */
        if ((r > nrows || !same_columns(cols, n, group, ngroup)) && (rb.len || js.len)) {
            strbuf_reset(&sql);
            strbuf_puts(&sql, "INSERT INTO rb ");
            column_list(&sql, group, ngroup);
            strbuf_puts(&sql, " FORMAT RowBinary");
            if (http(sql.data, "", rb.data, rb.len, &answer) != 200)
                fail("%s: %s", sql.data, answer.data);
            if (twin) {
                strbuf_reset(&sql);
                strbuf_puts(&sql, "INSERT INTO js ");
                column_list(&sql, group, ngroup);
                strbuf_puts(&sql, " FORMAT JSONEachRow");
                if (http(sql.data, "&input_format_skip_unknown_fields=1", js.data, js.len,
                         &answer) != 200)
                    fail("%s: %s\n%s", sql.data, answer.data, js.data);
            }
            strbuf_reset(&rb);
            strbuf_reset(&js);
        }
        if (r > nrows) break;
        memcpy(group, cols, n * sizeof cols[0]);
        ngroup = n;
        int top = lua_gettop(L);
        size_t before = rb.len;
        if (rowbinary_append_row(&rb, L, top, cols, n, server_zone, err, sizeof err) != 0) {
            if (rb.len != before) fail("a refused row changed the buffer");
            printf("# row %zu refused: %s\n", r, err);
            refused++;
        } else if (twin) {
            if (row_json_append(&js, L, top, true, NULL, NULL, err, sizeof err) != 0)
                fail("row_json_append: %s", err);
            strbuf_putc(&js, '\n');
        }
        if (lua_gettop(L) != top) fail("the encoder changed the Lua stack");
        lua_pop(L, 1);
    }
    strbuf_free(&rb);
    strbuf_free(&js);
    strbuf_free(&sql);
    strbuf_free(&answer);
    return refused;
}

static void push_rows(lua_State *L, const char *chunk)
{
    if (luaL_dostring(L, chunk) != LUA_OK) fail("rows: %s", lua_tostring(L, -1));
}

/* Shows the first line where two texts differ. */
static void fail_diff(const char *what, const char *a, const char *b)
{
    size_t i = 0, line = 1, start = 0;
    while (a[i] && a[i] == b[i]) {
        if (a[i] == '\n') {
            line++;
            start = i + 1;
        }
        i++;
    }
    fail("%s differ at line %zu:\n  rowbinary: %.*s\n  json:      %.*s", what, line,
         (int)strcspn(a + start, "\n"), a + start, (int)strcspn(b + start, "\n"), b + start);
}

int main(void)
{
    base_url = clickhouse_url_from_services_env();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    curl = curl_easy_init();
    if (!curl) abort();

    strbuf answer = {0}, other = {0};
    char sql[256];
    snprintf(sql, sizeof sql, "CREATE DATABASE t_rowbinary_%d", (int)getpid());
    run_sql("", sql, &answer);
    snprintf(database, sizeof database, "t_rowbinary_%d", (int)getpid());

    char *zone = create_tables();
    pass("tables created; server time zone %s", zone);
    read_columns(zone);

    lua_State *L = luaL_newstate();
    if (!L) abort();
    luaL_openlibs(L);
    lua_pushlightuserdata(L, row_json_null());
    lua_setglobal(L, "null");

    /* 2. the same rows both ways */
    push_rows(L, rows_both);
    int nboth = (int)lua_rawlen(L, -1);
    if (insert_rows(L, zone, true) != 0) fail("the encoder refused a row meant for both formats");
    lua_pop(L, 1);
    run_sql("", "SELECT * FROM rb ORDER BY id FORMAT TSV", &answer);
    run_sql("", "SELECT * FROM js ORDER BY id FORMAT TSV", &other);
    if (strcmp(answer.data, other.data) != 0)
        fail_diff("SELECT * of rb and js", answer.data, other.data);
    int lines = 0;
    for (const char *p = answer.data; *p; p++)
        lines += *p == '\n';
    for (const char *p = answer.data; *p; p += strcspn(p, "\n") + 1) /* for the log */
        printf("# %.*s\n", (int)strcspn(p, "\n"), p);
    if (lines != nboth) fail("%d rows in rb, want %d", lines, nboth);
    pass("%d rows inserted as RowBinary and as JSONEachRow: SELECT * … FORMAT TSV identical "
         "(%zu bytes)",
         lines, answer.len);
    run_sql("", "SELECT dflt FROM rb WHERE id = 3", &answer);
    if (strcmp(answer.data, "6\n") != 0) fail("the DEFAULT of an omitted column: %s", answer.data);
    pass("a column no row sets got its DEFAULT expression (id * 2)");

    /* 3. forms only RowBinary takes on 18.16, with a refused row in the same body */
    push_rows(L, rows_rowbinary_only);
    int refused = insert_rows(L, zone, false);
    lua_pop(L, 1);
    if (refused != 1) fail("%d rows refused, want 1 (u8 = 300)", refused);
    pass("the row with u8 = 300 was refused and the body around it stayed valid");
    run_sql("", rows_rowbinary_only_select, &answer);
    if (strcmp(answer.data, rows_rowbinary_only_tsv) != 0)
        fail_diff("RowBinary-only rows and their expected text", answer.data,
                  rows_rowbinary_only_tsv);
    pass("Date from days, DateTime from seconds and from 'T' text with a fraction, Enum by value, "
         "String from a number and a boolean, UInt64 from 2^63, 38-digit Decimal text: as "
         "expected");

    snprintf(sql, sizeof sql, "DROP DATABASE %s", database);
    database[0] = '\0';
    run_sql("", sql, &answer);
    lua_close(L);
    for (size_t i = 0; i < ncolumns; i++) {
        free(columns[i].name);
        ch_type_free(columns[i].type);
    }
    free(zone);
    strbuf_free(&answer);
    strbuf_free(&other);
    curl_easy_cleanup(curl);
    curl_global_cleanup();
    free(base_url);
    printf("%d passed, 0 failed\n", passed);
    return 0;
}
