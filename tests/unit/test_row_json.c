/*
 * test_row_json — tests for src/row_json.c (include/cdcpipe/row_json.h).
 *
 * Rows are built by small Lua expressions (table-driven: expression, exact JSON text or exact
 * error). Globals `null` (cdc.null), `ud` (another light userdata), `full` (a full userdata) and
 * `co` (a coroutine) are available to the expressions. Sorted output is compared byte for byte;
 * unsorted output must produce the same error, or the same text for rows whose objects have at
 * most one key (table order is then fixed).
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

#include "cdcpipe/row_json.h"
#include "cdcpipe/strbuf.h"

static int setup(void **state)
{
    lua_State *L = luaL_newstate();
    if (!L) return -1;
    luaL_openlibs(L);
    lua_pushlightuserdata(L, row_json_null());
    lua_setglobal(L, "null");
    static int other;
    lua_pushlightuserdata(L, &other);
    lua_setglobal(L, "ud");
    lua_newuserdatauv(L, 8, 0);
    lua_setglobal(L, "full");
    if (luaL_dostring(L, "co = coroutine.create(function() end)") != LUA_OK) return -1;
    *state = L;
    return 0;
}

static int teardown(void **state)
{
    lua_close(*state);
    return 0;
}

/* Evaluates `return <expr>` and leaves the value on the stack. */
static void push_expr(lua_State *L, const char *expr)
{
    char chunk[8192];
    snprintf(chunk, sizeof chunk, "return %s", expr);
    if (luaL_dostring(L, chunk) != LUA_OK) fail_msg("%s: %s", expr, lua_tostring(L, -1));
}

/* ---- row_json_string ---- */

static void test_string_control_chars(void **state)
{
    (void)state;
    static const char *const want[32] = {
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b",     "\\t",     "\\n",     "\\u000b", "\\f",     "\\r",     "\\u000e", "\\u000f",
        "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
        "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
    };
    strbuf b = {0};
    char expect[32];
    for (int c = 0; c < 32; c++) {
        /* alone, and between other bytes so the copy around the escape is checked too */
        char alone = (char)c;
        strbuf_reset(&b);
        row_json_string(&b, &alone, 1);
        snprintf(expect, sizeof expect, "\"%s\"", want[c]);
        assert_string_equal(b.data, expect);
        assert_int_equal(b.len, strlen(expect));

        char mid[3] = {'a', (char)c, 'z'};
        strbuf_reset(&b);
        row_json_string(&b, mid, 3);
        snprintf(expect, sizeof expect, "\"a%sz\"", want[c]);
        assert_string_equal(b.data, expect);
    }
    /* all 32 in a row */
    char all[32];
    strbuf want_all = {0};
    strbuf_putc(&want_all, '"');
    for (int c = 0; c < 32; c++) {
        all[c] = (char)c;
        strbuf_puts(&want_all, want[c]);
    }
    strbuf_putc(&want_all, '"');
    strbuf_reset(&b);
    row_json_string(&b, all, sizeof all);
    assert_string_equal(b.data, want_all.data);
    strbuf_free(&want_all);
    strbuf_free(&b);
}

typedef struct {
    const char *in;
    size_t len; /* 0: strlen(in) */
    const char *want;
} string_case;

static const string_case string_cases[] = {
    {"", 0, "\"\""},
    {"plain", 0, "\"plain\""},
    {"say \"hi\"", 0, "\"say \\\"hi\\\"\""},
    {"C:\\dir\\", 0, "\"C:\\\\dir\\\\\""},
    {"\\\"", 0, "\"\\\\\\\"\""},
    {"a/b", 0, "\"a/b\""},                 /* '/' is not escaped */
    {"del\x7f", 0, "\"del\x7f\""},         /* DEL is not a JSON control character */
    {" ~", 0, "\" ~\""},                   /* 0x20 and 0x7e as they are */
    {"caf\xc3\xa9", 0, "\"caf\xc3\xa9\""}, /* UTF-8 as it is */
    {"\xe2\x82\xac \xf0\x9f\x98\x80", 0, "\"\xe2\x82\xac \xf0\x9f\x98\x80\""},
    {"\xff\xfe", 0, "\"\xff\xfe\""}, /* other bytes copied too */
    {"a\0b", 3, "\"a\\u0000b\""},
    {"\0", 1, "\"\\u0000\""},
    {"line1\nline2\r\n\ttab", 0, "\"line1\\nline2\\r\\n\\ttab\""},
};

static void test_string_cases(void **state)
{
    (void)state;
    strbuf b = {0};
    for (size_t i = 0; i < sizeof string_cases / sizeof string_cases[0]; i++) {
        const string_case *c = &string_cases[i];
        strbuf_reset(&b);
        row_json_string(&b, c->in, c->len ? c->len : strlen(c->in));
        if (strcmp(b.data, c->want) != 0) fail_msg("case %zu: got %s want %s", i, b.data, c->want);
        assert_int_equal(b.len, strlen(c->want));
    }
    /* appends: what was in the buffer stays */
    strbuf_reset(&b);
    strbuf_puts(&b, "prefix:");
    row_json_string(&b, "x\"", 2);
    assert_string_equal(b.data, "prefix:\"x\\\"\"");
    /* a long string crosses the buffer's growth */
    strbuf_reset(&b);
    char big[5000];
    memset(big, '\n', sizeof big);
    row_json_string(&b, big, sizeof big);
    assert_int_equal(b.len, 2 + 2 * sizeof big);
    assert_int_equal(b.data[0], '"');
    assert_int_equal(b.data[b.len - 1], '"');
    assert_memory_equal(b.data + 1, "\\n\\n\\n", 6);
    strbuf_free(&b);
}

/* ---- row_json_append ---- */

typedef struct {
    const char *lua;  /* expression for the row */
    const char *want; /* exact JSON with sorted keys, or NULL */
    const char *err;  /* exact error when want is NULL */
    int one_key;      /* each object has <= 1 key: unsorted output is the same text */
} row_case;

static const row_case row_cases[] = {
    /* strings */
    {"{s = 'plain'}", "{\"s\":\"plain\"}", NULL, 1},
    {"{s = 'a\"b\\\\c'}", "{\"s\":\"a\\\"b\\\\c\"}", NULL, 1},
    {"{s = '\\n\\r\\t\\b\\f'}", "{\"s\":\"\\n\\r\\t\\b\\f\"}", NULL, 1},
    {"{s = '\\1\\2\\11\\31\\127'}", "{\"s\":\"\\u0001\\u0002\\u000b\\u001f\x7f\"}", NULL, 1},
    {"{s = 'caf\\u{e9} \\u{1F600}'}", "{\"s\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}", NULL, 1},
    {"{s = 'a\\0b\\0'}", "{\"s\":\"a\\u0000b\\u0000\"}", NULL, 1},
    {"{s = ''}", "{\"s\":\"\"}", NULL, 1},
    /* integers */
    {"{a = math.mininteger, b = math.maxinteger, c = 0, d = -1, e = 9007199254740993}",
     "{\"a\":-9223372036854775808,\"b\":9223372036854775807,\"c\":0,\"d\":-1,"
     "\"e\":9007199254740993}",
     NULL, 0},
    {"{m = math.mininteger}", "{\"m\":-9223372036854775808}", NULL, 1},
    /* floats: shortest text that reads back, integral ones within 2^53 as integers */
    {"{f = 0.1}", "{\"f\":0.1}", NULL, 1},
    {"{f = 1e300}", "{\"f\":1e+300}", NULL, 1},
    {"{f = 3.0}", "{\"f\":3}", NULL, 1},
    {"{f = -0.5}", "{\"f\":-0.5}", NULL, 1},
    {"{f = 1.5e-7}", "{\"f\":1.5e-07}", NULL, 1},
    {"{f = 0.1 + 0.2}", "{\"f\":0.30000000000000004}", NULL, 1},
    {"{f = 1 / 3}", "{\"f\":0.3333333333333333}", NULL, 1},
    {"{f = 0.1 + 0.7}", "{\"f\":0.7999999999999999}", NULL, 1},
    {"{f = 2.0^53}", "{\"f\":9007199254740992}", NULL, 1},
    {"{f = -2.0^53}", "{\"f\":-9007199254740992}", NULL, 1},
    {"{f = 2.0^54}", "{\"f\":18014398509481984}", NULL, 1},
    {"{f = 1e16}", "{\"f\":1e+16}", NULL, 1},
    {"{f = 1700000000.25}", "{\"f\":1700000000.25}", NULL, 1},
    {"{f = -1e-300}", "{\"f\":-1e-300}", NULL, 1},
    /* NaN and infinities name the column, also when nested */
    {"{ok = 1, x = 0/0}", NULL, "column \"x\": NaN cannot be written to ClickHouse", 0},
    {"{y = math.huge}", NULL, "column \"y\": an infinite number cannot be written to ClickHouse",
     1},
    {"{z = -math.huge}", NULL, "column \"z\": an infinite number cannot be written to ClickHouse",
     1},
    {"{arr = {1, 2, 0/0}}", NULL, "column \"arr\": NaN cannot be written to ClickHouse", 1},
    {"{obj = {inner = {v = math.huge}}}", NULL,
     "column \"obj\": an infinite number cannot be written to ClickHouse", 1},
    /* booleans and null */
    {"{t = true, f = false}", "{\"f\":false,\"t\":true}", NULL, 0},
    {"{n = null}", "{\"n\":null}", NULL, 1},
    {"{a = {1, null, 3}}", "{\"a\":[1,null,3]}", NULL, 1},
    {"{o = {k = null}}", "{\"o\":{\"k\":null}}", NULL, 1},
    /* nested arrays and objects */
    {"{a = {{1, 2}, {3}, {}}}", "{\"a\":[[1,2],[3],[]]}", NULL, 1},
    {"{o = {x = {y = {z = 'deep'}}}}", "{\"o\":{\"x\":{\"y\":{\"z\":\"deep\"}}}}", NULL, 1},
    {"{l = {{k = 'v'}, {k = 2}}}", "{\"l\":[{\"k\":\"v\"},{\"k\":2}]}", NULL, 1},
    {"{o = {b = 1, a = {2, 3}, c = {d = true}}}",
     "{\"o\":{\"a\":[2,3],\"b\":1,\"c\":{\"d\":true}}}", NULL, 0},
    {"{a = {'x', 'y', extra = 'ignored'}}", "{\"a\":[\"x\",\"y\"]}", NULL, 1},
    /* empty tables: [] inside a row, {} for the row itself */
    {"{e = {}}", "{\"e\":[]}", NULL, 1},
    {"{}", "{}", NULL, 1},
    /* sorted keys are in byte order */
    {"{b = 1, a = 2, B = 3, _ = 4, aa = 5, ['a b'] = 6, ['\\u{e9}'] = 7, Z = 8, ['1'] = 9}",
     "{\"1\":9,\"B\":3,\"Z\":8,\"_\":4,\"a\":2,\"a b\":6,\"aa\":5,\"b\":1,\"\xc3\xa9\":7}", NULL,
     0},
    {"{['k\"q'] = 1, ['new\\nline'] = 2, ['back\\\\'] = 3}",
     "{\"back\\\\\":3,\"k\\\"q\":1,\"new\\nline\":2}", NULL, 0},
    /* keys must be strings */
    {"{[1] = 'x'}", NULL, "row has a key that is not a string (a number)", 1},
    {"{a = 1, [2] = 'x'}", NULL, "row has a key that is not a string (a number)", 0},
    {"{[true] = 1}", NULL, "row has a key that is not a string (a boolean)", 1},
    {"{o = {[2] = 'x'}}", NULL, "column \"o\" has a key that is not a string (a number)", 1},
    {"{o = {[{}] = 'x'}}", NULL, "column \"o\" has a key that is not a string (a table)", 1},
    /* values that are not data */
    {"{f = print}", NULL, "column \"f\": a function cannot be written to ClickHouse", 1},
    {"{ok = 'x', f = function() end}", NULL,
     "column \"f\": a function cannot be written to ClickHouse", 0},
    {"{l = {1, print}}", NULL, "column \"l\": a function cannot be written to ClickHouse", 1},
    {"{o = {p = {q = print}}}", NULL, "column \"o\": a function cannot be written to ClickHouse",
     1},
    {"{u = ud}", NULL, "column \"u\": a userdata cannot be written to ClickHouse", 1},
    {"{u = full}", NULL, "column \"u\": a userdata cannot be written to ClickHouse", 1},
    {"{c = co}", NULL, "column \"c\": a thread cannot be written to ClickHouse", 1},
    /* not a table */
    {"'text'", NULL, "a row must be a table, got a string", 1},
    {"nil", NULL, "a row must be a table, got a nil", 1},
    {"42", NULL, "a row must be a table, got a number", 1},
};

static void test_row_cases(void **state)
{
    lua_State *L = *state;
    strbuf out = {0};
    int failures = 0;
    for (size_t i = 0; i < sizeof row_cases / sizeof row_cases[0]; i++) {
        const row_case *c = &row_cases[i];
        lua_settop(L, 0);
        lua_pushliteral(L, "below");
        push_expr(L, c->lua);
        for (int sorted = 1; sorted >= 0; sorted--) {
            char err[256] = "";
            strbuf_reset(&out);
            strbuf_puts(&out, "X"); /* appended after what is there */
            int rc = row_json_append(&out, L, -1, sorted, NULL, NULL, err, sizeof err);
            assert_int_equal(lua_gettop(L), 2); /* stack unchanged */
            assert_string_equal(lua_tostring(L, 1), "below");
            const char *got = out.data + 1;
            if (c->want) {
                if (rc != 0) {
                    print_error("case %zu %s (sorted %d): error %s\n", i, c->lua, sorted, err);
                    failures++;
                } else if ((sorted || c->one_key) && strcmp(got, c->want) != 0) {
                    print_error("case %zu %s (sorted %d):\n got  %s\n want %s\n", i, c->lua, sorted,
                                got, c->want);
                    failures++;
                } else if (!sorted && strlen(got) != strlen(c->want)) {
                    print_error("case %zu %s unsorted: %s\n", i, c->lua, got);
                    failures++;
                }
                assert_int_equal(out.data[0], 'X');
            } else if (rc != -1 || strcmp(err, c->err) != 0) {
                print_error("case %zu %s (sorted %d):\n got  rc %d %s\n want %s\n", i, c->lua,
                            sorted, rc, err, c->err);
                failures++;
            }
        }
    }
    strbuf_free(&out);
    assert_int_equal(failures, 0);
}

/* Strings with embedded NULs pushed from C (lua_pushlstring), as values and keys. */
static void test_embedded_nul(void **state)
{
    lua_State *L = *state;
    char err[256];
    strbuf out = {0};
    lua_createtable(L, 0, 1);
    lua_pushlstring(L, "x\0y\0", 4);
    lua_setfield(L, -2, "v");
    assert_int_equal(row_json_append(&out, L, -1, true, NULL, NULL, err, sizeof err), 0);
    assert_string_equal(out.data, "{\"v\":\"x\\u0000y\\u0000\"}");
    strbuf_reset(&out);
    /* a key with a NUL: unsorted only, sorted mode handles keys as C strings (known limit) */
    lua_pushlstring(L, "k\0z", 3);
    lua_pushinteger(L, 1);
    lua_settable(L, -3);
    lua_pushnil(L);
    lua_setfield(L, -2, "v");
    assert_int_equal(row_json_append(&out, L, -1, false, NULL, NULL, err, sizeof err), 0);
    assert_string_equal(out.data, "{\"k\\u0000z\":1}");
    lua_pop(L, 1);
    strbuf_free(&out);
}

/* Nesting: 32 levels of tables in a column are fine, 33 are an error. */
static void test_nesting_limit(void **state)
{
    lua_State *L = *state;
    char err[256];
    strbuf out = {0};
    strbuf want = {0};
    push_expr(L, "(function() local t = 1 for i = 1, 32 do t = {t} end return {c = t} end)()");
    assert_int_equal(row_json_append(&out, L, -1, true, NULL, NULL, err, sizeof err), 0);
    strbuf_puts(&want, "{\"c\":");
    for (int i = 0; i < 32; i++)
        strbuf_putc(&want, '[');
    strbuf_putc(&want, '1');
    for (int i = 0; i < 32; i++)
        strbuf_putc(&want, ']');
    strbuf_putc(&want, '}');
    assert_string_equal(out.data, want.data);
    lua_pop(L, 1);

    push_expr(L, "(function() local t = 1 for i = 1, 33 do t = {t} end return {c = t} end)()");
    assert_int_equal(row_json_append(&out, L, -1, true, NULL, NULL, err, sizeof err), -1);
    assert_string_equal(err, "column \"c\" nests tables deeper than 32 levels");
    lua_pop(L, 1);
    push_expr(L, "(function() local t = {} for i = 1, 40 do t = {k = t} end return {o = t} end)()");
    assert_int_equal(row_json_append(&out, L, -1, false, NULL, NULL, err, sizeof err), -1);
    assert_string_equal(err, "column \"o\" nests tables deeper than 32 levels");
    lua_pop(L, 1);
    /* a table that contains itself ends at the limit too */
    push_expr(L, "(function() local t = {} t.self = t return {r = t} end)()");
    assert_int_equal(row_json_append(&out, L, -1, true, NULL, NULL, err, sizeof err), -1);
    assert_string_equal(err, "column \"r\" nests tables deeper than 32 levels");
    lua_pop(L, 1);
    assert_int_equal(lua_gettop(L), 0);
    strbuf_free(&out);
    strbuf_free(&want);
}

/* Sorted rows have at most 1024 columns; unsorted rows have no such limit. */
static void test_many_columns(void **state)
{
    lua_State *L = *state;
    char err[256];
    strbuf out = {0};
    push_expr(L, "(function() local t = {} for i = 1, 1024 do t[string.format('c%04d', i)] = i "
                 "end return t end)()");
    assert_int_equal(row_json_append(&out, L, -1, true, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(strncmp(out.data, "{\"c0001\":1,\"c0002\":2,", 21), 0);
    assert_non_null(strstr(out.data, ",\"c1024\":1024}"));
    lua_pushinteger(L, 1025);
    lua_setfield(L, -2, "c1025");
    strbuf_reset(&out);
    assert_int_equal(row_json_append(&out, L, -1, true, NULL, NULL, err, sizeof err), -1);
    assert_string_equal(err, "row has more than 1024 columns");
    strbuf_reset(&out);
    assert_int_equal(row_json_append(&out, L, -1, false, NULL, NULL, err, sizeof err), 0);
    assert_non_null(strstr(out.data, "\"c1025\":1025"));
    lua_pop(L, 1);
    strbuf_free(&out);
}

/* ---- on_key ---- */

typedef struct {
    char keys[16][16];
    int n;
} key_log;

static int log_key(void *ud, const char *key, size_t len, char *err, size_t errlen)
{
    key_log *k = ud;
    (void)err;
    (void)errlen;
    assert_true(k->n < 16);
    assert_true(len < sizeof k->keys[0]);
    memcpy(k->keys[k->n], key, len);
    k->keys[k->n][len] = '\0';
    k->n++;
    return 0;
}

/* Refuses the second key it sees. */
static int refuse_second(void *ud, const char *key, size_t len, char *err, size_t errlen)
{
    int *seen = ud;
    if (++*seen == 2) {
        snprintf(err, errlen, "refused %.*s", (int)len, key);
        return -1;
    }
    return 0;
}

/* on_key can refuse the row: row_json_append stops there and fails with its message, the stack
 * as it was. */
static void test_on_key_refuses(void **state)
{
    lua_State *L = *state;
    char err[256];
    strbuf out = {0};
    push_expr(L, "{a = 1, b = {c = 2}, d = 3}");
    for (int sorted = 0; sorted <= 1; sorted++) {
        int seen = 0, top = lua_gettop(L);
        err[0] = '\0';
        assert_int_equal(
            row_json_append(&out, L, -1, sorted, refuse_second, &seen, err, sizeof err), -1);
        assert_int_equal(seen, 2);
        assert_int_equal(strncmp(err, "refused ", 8), 0);
        if (sorted) assert_string_equal(err, "refused b");
        assert_int_equal(lua_gettop(L), top);
        strbuf_reset(&out);
    }
    lua_pop(L, 1);
    strbuf_free(&out);
}

static void test_on_key(void **state)
{
    lua_State *L = *state;
    char err[256];
    strbuf out = {0};
    push_expr(L, "{b = 1, a = {x = 1, y = {z = 2}}, c = {1, 2, {w = 3}}, d = null}");

    key_log sorted = {0};
    assert_int_equal(row_json_append(&out, L, -1, true, log_key, &sorted, err, sizeof err), 0);
    assert_string_equal(
        out.data, "{\"a\":{\"x\":1,\"y\":{\"z\":2}},\"b\":1,\"c\":[1,2,{\"w\":3}],\"d\":null}");
    assert_int_equal(sorted.n, 4); /* top-level keys only, each once, in output order */
    assert_string_equal(sorted.keys[0], "a");
    assert_string_equal(sorted.keys[1], "b");
    assert_string_equal(sorted.keys[2], "c");
    assert_string_equal(sorted.keys[3], "d");

    key_log table_order = {0};
    strbuf_reset(&out);
    assert_int_equal(row_json_append(&out, L, -1, false, log_key, &table_order, err, sizeof err),
                     0);
    assert_int_equal(table_order.n, 4);
    int seen[4] = {0};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(strlen(table_order.keys[i]), 1);
        int k = table_order.keys[i][0] - 'a';
        assert_in_range(k, 0, 3);
        seen[k]++;
        /* the output lists the keys in the order on_key saw them */
        char quoted[24];
        snprintf(quoted, sizeof quoted, "\"%s\":", table_order.keys[i]);
        const char *at = strstr(out.data, quoted);
        assert_non_null(at);
        if (i > 0) {
            snprintf(quoted, sizeof quoted, "\"%s\":", table_order.keys[i - 1]);
            assert_true(strstr(out.data, quoted) < at);
        }
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(strlen(out.data), strlen("{\"a\":{\"x\":1,\"y\":{\"z\":2}},\"b\":1,\"c\":[1,"
                                              "2,{\"w\":3}],\"d\":null}"));
    lua_pop(L, 1);

    /* no callback is fine; an empty row reports nothing */
    key_log none = {0};
    push_expr(L, "{}");
    strbuf_reset(&out);
    assert_int_equal(row_json_append(&out, L, -1, true, log_key, &none, err, sizeof err), 0);
    assert_string_equal(out.data, "{}");
    assert_int_equal(none.n, 0);
    lua_pop(L, 1);
    strbuf_free(&out);
}

/* The row may be anywhere on the stack (negative and positive indexes). */
static void test_stack_index(void **state)
{
    lua_State *L = *state;
    char err[256];
    strbuf out = {0};
    push_expr(L, "{k = 'v'}");
    lua_pushinteger(L, 1);
    lua_pushinteger(L, 2);
    assert_int_equal(row_json_append(&out, L, -3, true, NULL, NULL, err, sizeof err), 0);
    assert_string_equal(out.data, "{\"k\":\"v\"}");
    strbuf_reset(&out);
    assert_int_equal(row_json_append(&out, L, 1, false, NULL, NULL, err, sizeof err), 0);
    assert_string_equal(out.data, "{\"k\":\"v\"}");
    assert_int_equal(lua_gettop(L), 3);
    lua_settop(L, 0);
    strbuf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string_control_chars),
        cmocka_unit_test(test_string_cases),
        cmocka_unit_test_setup_teardown(test_row_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_embedded_nul, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nesting_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_columns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_on_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_on_key_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stack_index, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
