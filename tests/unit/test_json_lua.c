/*
 * test_json_lua — tests for src/json_lua.c (include/cdcpipe/json_lua.h).
 *
 * Every decoded value is rendered by dump() into one canonical text (table keys sorted, integers
 * and floats told apart, string bytes outside printable ASCII as \xHH), so each table-driven case
 * compares exact text. Errors compare the exact "invalid JSON at byte N: " prefix plus the
 * problem's key phrase, and check that the Lua stack is left exactly as it was.
 * Fixture tests read the synthesized Debezium events under
 * $CDCPIPE_SOURCE_DIR/tests/fixtures/debezium/handwritten/.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lua.h>

#include "cdcpipe/json_fast.h"
#include "cdcpipe/json_lua.h"
#include "cdcpipe/strbuf.h"

#include "support.h"

typedef struct {
    lua_State *L;
    json_decoder *d;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->L = luaL_newstate();
    f->d = json_decoder_new();
    if (!f->L || !f->d) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    json_decoder_free(f->d);
    lua_close(f->L);
    free(f);
    return 0;
}

/* ---- dump: a Lua value as canonical text ---- */

static void dump(strbuf *b, lua_State *L, int idx);

/* Bytes outside printable ASCII as \xHH; with `quoted`, in quotes with " and \ escaped. */
static void dump_bytes(strbuf *b, const char *s, size_t len, int quoted)
{
    if (quoted) strbuf_putc(b, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (quoted && (c == '"' || c == '\\'))
            strbuf_printf(b, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            strbuf_putc(b, (char)c);
        else
            strbuf_printf(b, "\\x%02x", c);
    }
    if (quoted) strbuf_putc(b, '"');
}

/* Shortest of %.15g..%.17g that reads back; ".0" marks an integral float. */
static void dump_float(strbuf *b, double v)
{
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v || isnan(v)) break;
    }
    strbuf_puts(b, buf);
    if (!strpbrk(buf, ".eni")) strbuf_puts(b, ".0");
}

typedef struct {
    int is_int;
    lua_Integer i;
    const char *s;
    size_t len;
} table_key;

static int compare_table_keys(const void *pa, const void *pb)
{
    const table_key *a = pa, *b = pb;
    if (a->is_int != b->is_int) return a->is_int ? -1 : 1;
    if (a->is_int) return a->i < b->i ? -1 : a->i > b->i;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, n);
    if (c) return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* {[1]=..,[2]=..,name=..}: integer keys first in order, then string keys in byte order. */
static void dump_table(strbuf *b, lua_State *L, int idx)
{
    size_t n = 0, cap = 16;
    table_key *keys = malloc(cap * sizeof *keys);
    assert_non_null(keys);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        if (n == cap) {
            cap *= 2;
            keys = realloc(keys, cap * sizeof *keys);
            assert_non_null(keys);
        }
        table_key *k = &keys[n++];
        memset(k, 0, sizeof *k);
        if (lua_isinteger(L, -1)) {
            k->is_int = 1;
            k->i = lua_tointeger(L, -1);
        } else {
            assert_int_equal(lua_type(L, -1), LUA_TSTRING); /* JSON makes no other keys */
            k->s = lua_tolstring(L, -1, &k->len);           /* anchored by the table */
        }
    }
    qsort(keys, n, sizeof *keys, compare_table_keys);
    strbuf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i) strbuf_putc(b, ',');
        if (keys[i].is_int) {
            strbuf_printf(b, "[%lld]=", (long long)keys[i].i);
            lua_pushinteger(L, keys[i].i);
        } else {
            dump_bytes(b, keys[i].s, keys[i].len, 0);
            strbuf_putc(b, '=');
            lua_pushlstring(L, keys[i].s, keys[i].len);
        }
        lua_rawget(L, idx);
        dump(b, L, lua_gettop(L));
        lua_pop(L, 1);
    }
    strbuf_putc(b, '}');
    free(keys);
}

static void dump(strbuf *b, lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    size_t len;
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        strbuf_puts(b, "nil");
        break;
    case LUA_TBOOLEAN:
        strbuf_puts(b, lua_toboolean(L, idx) ? "true" : "false");
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            strbuf_printf(b, "%lld", (long long)lua_tointeger(L, idx));
        else
            dump_float(b, lua_tonumber(L, idx));
        break;
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        dump_bytes(b, s, len, 1);
        break;
    case LUA_TTABLE:
        dump_table(b, L, idx);
        break;
    default:
        fail_msg("unexpected Lua type %s", luaL_typename(L, idx));
    }
}

/* Pushes the value at a dotted path ("after.id") below the table at idx. */
static void push_path(lua_State *L, int idx, const char *path)
{
    idx = lua_absindex(L, idx);
    lua_pushvalue(L, idx);
    char name[64];
    while (*path) {
        size_t n = strcspn(path, ".");
        assert_true(n < sizeof name);
        memcpy(name, path, n);
        name[n] = '\0';
        assert_int_equal(lua_type(L, -1), LUA_TTABLE);
        lua_getfield(L, -1, name);
        lua_remove(L, -2);
        path += n + (path[n] == '.');
    }
}

/* Dumps the value on top of the stack and pops it; returns the dump, free it. */
static char *pop_dump(lua_State *L)
{
    strbuf b = {0};
    dump(&b, L, -1);
    lua_pop(L, 1);
    return b.data;
}

/* Decodes text (must succeed with exactly one value pushed) and returns its dump; free it. */
static char *decode_dump(fixture *f, const char *text, size_t len, int flags)
{
    char err[256] = "";
    int base = lua_gettop(f->L);
    int rc = json_decoder_push(f->d, f->L, text, len, flags, err, sizeof err);
    if (rc != 0) fail_msg("decoding %.60s failed: %s", text, err);
    assert_int_equal(lua_gettop(f->L), base + 1);
    return pop_dump(f->L);
}

/* ---- table-driven decoding ---- */

typedef struct {
    const char *json;
    size_t len; /* 0: strlen(json) */
    int flags;
    const char *want;       /* dump of the decoded value, or NULL when an error is expected */
    const char *err_prefix; /* exact start of the error */
    const char *err_phrase; /* must appear in the error */
} decode_case;

#define U JSON_UNWRAP_ENVELOPE
#define O JSON_OBJECT_ONLY

static const decode_case cases[] = {
    /* scalars and containers */
    {"null", 0, 0, "nil", NULL, NULL},
    {"true", 0, 0, "true", NULL, NULL},
    {"false", 0, 0, "false", NULL, NULL},
    {" \t\r\n\"x\" \n", 0, 0, "\"x\"", NULL, NULL},
    {"{}", 0, 0, "{}", NULL, NULL},
    {"[]", 0, 0, "{}", NULL, NULL},
    {"{\"a\":1,\"b\":\"two\",\"c\":true}", 0, 0, "{a=1,b=\"two\",c=true}", NULL, NULL},
    {"[1,\"two\",false,3.5]", 0, 0, "{[1]=1,[2]=\"two\",[3]=false,[4]=3.5}", NULL, NULL},
    {"{\"a\":{\"b\":{\"c\":[1,[2,[3]]]}},\"d\":[{\"e\":{}}]}", 0, 0,
     "{a={b={c={[1]=1,[2]={[1]=2,[2]={[1]=3}}}}},d={[1]={e={}}}}", NULL, NULL},
    {"[[],{},[[]]]", 0, 0, "{[1]={},[2]={},[3]={[1]={}}}", NULL, NULL},
    /* a member whose value is null is absent; an array null leaves a hole */
    {"{\"a\":null,\"b\":1,\"c\":null}", 0, 0, "{b=1}", NULL, NULL},
    {"{\"a\":null}", 0, 0, "{}", NULL, NULL},
    {"[null,2,null,4]", 0, 0, "{[2]=2,[4]=4}", NULL, NULL},
    {"[1,null]", 0, 0, "{[1]=1}", NULL, NULL},
    {"{\"x\":[null,{\"y\":null}]}", 0, 0, "{x={[2]={}}}", NULL, NULL},
    /* a key that is not an identifier, an empty key, a key with escapes */
    {"{\"\":1,\"a b\":2,\"k\\u00e9\":3}", 0, 0, "{=1,a b=2,k\\xc3\\xa9=3}", NULL, NULL},
    /* integers: exact over the whole int64 range */
    {"0", 0, 0, "0", NULL, NULL},
    {"-1", 0, 0, "-1", NULL, NULL},
    {"9007199254740993", 0, 0, "9007199254740993", NULL, NULL},         /* 2^53 + 1 */
    {"-9007199254740993", 0, 0, "-9007199254740993", NULL, NULL},       /* -(2^53 + 1) */
    {"9223372036854775807", 0, 0, "9223372036854775807", NULL, NULL},   /* 2^63 - 1 */
    {"-9223372036854775808", 0, 0, "-9223372036854775808", NULL, NULL}, /* -2^63 */
    {"-9223372036854775807", 0, 0, "-9223372036854775807", NULL, NULL},
    {"[9223372036854775807,-9223372036854775808]", 0, 0,
     "{[1]=9223372036854775807,[2]=-9223372036854775808}", NULL, NULL},
    /* beyond int64: floats */
    {"9223372036854775808", 0, 0, "9.223372036854776e+18", NULL, NULL},   /* 2^63 */
    {"-9223372036854775809", 0, 0, "-9.223372036854776e+18", NULL, NULL}, /* -2^63 - 1 */
    {"18446744073709551616", 0, 0, "1.8446744073709552e+19", NULL, NULL}, /* 2^64 */
    {"123456789012345678901234567890", 0, 0, "1.2345678901234568e+29", NULL, NULL},
    /* -0 is the integer 0; -0.0 is a negative-zero float */
    {"-0", 0, 0, "0", NULL, NULL},
    {"-0.0", 0, 0, "-0.0", NULL, NULL},
    /* floats */
    {"1.5", 0, 0, "1.5", NULL, NULL},
    {"1e3", 0, 0, "1000.0", NULL, NULL},
    {"1E3", 0, 0, "1000.0", NULL, NULL},
    {"-2.5E-3", 0, 0, "-0.0025", NULL, NULL},
    {"2.0", 0, 0, "2.0", NULL, NULL},
    {"0.1", 0, 0, "0.1", NULL, NULL},
    {"1e-300", 0, 0, "1e-300", NULL, NULL},
    {"6.02214076e23", 0, 0, "6.02214076e+23", NULL, NULL},
    /* strings with escapes */
    {"\"a\\\"b\"", 0, 0, "\"a\\\"b\"", NULL, NULL},
    {"\"back\\\\slash\"", 0, 0, "\"back\\\\slash\"", NULL, NULL},
    {"\"l1\\nl2\\r\\t\\b\\f\\/\"", 0, 0, "\"l1\\x0al2\\x0d\\x09\\x08\\x0c/\"", NULL, NULL},
    {"\"caf\\u00e9\"", 0, 0, "\"caf\\xc3\\xa9\"", NULL, NULL},
    {"\"\\u20ac\"", 0, 0, "\"\\xe2\\x82\\xac\"", NULL, NULL},
    {"\"\\ud83d\\ude00\"", 0, 0, "\"\\xf0\\x9f\\x98\\x80\"", NULL, NULL}, /* U+1F600 */
    {"\"a\\u0000b\"", 0, 0, "\"a\\x00b\"", NULL, NULL},
    /* raw UTF-8 passes unchanged */
    {"\"caf\xc3\xa9 \xf0\x9f\x98\x80\"", 0, 0, "\"caf\\xc3\\xa9 \\xf0\\x9f\\x98\\x80\"", NULL,
     NULL},
    {"\"\xf4\x8f\xbf\xbf\"", 0, 0, "\"\\xf4\\x8f\\xbf\\xbf\"", NULL, NULL}, /* U+10FFFF */
    {"\"\xed\x9f\xbf\"", 0, 0, "\"\\xed\\x9f\\xbf\"", NULL, NULL},          /* U+D7FF */
    /* invalid UTF-8 inside a string */
    {"\"\xff\"", 0, 0, NULL, "invalid JSON at byte 3: ", "not valid UTF-8"},
    {"\"ab\xc3\x28\"", 0, 0, NULL,
     "invalid JSON at byte 6: ", "not valid UTF-8"}, /* bad continuation */
    {"[\"\xe2\x82\"]", 0, 0, NULL, "invalid JSON at byte ",
     "not valid UTF-8"},                                                   /* truncated sequence */
    {"\"\xc0\xaf\"", 0, 0, NULL, "invalid JSON at byte 4: ", "UTF-8"},     /* overlong '/' */
    {"\"\xe0\x80\xaf\"", 0, 0, NULL, "invalid JSON at byte 5: ", "UTF-8"}, /* overlong '/' */
    {"\"\xed\xa0\x80\"", 0, 0, NULL, "invalid JSON at byte 5: ", "UTF-8"}, /* surrogate D800 */
    {"\"\xf4\x90\x80\x80\"", 0, 0, NULL, "invalid JSON at byte 6: ", "UTF-8"}, /* > U+10FFFF */
    {"\"\\ude00\"", 0, 0, NULL, "invalid JSON at byte 8: ", "UTF-8"},      /* lone low surrogate */
    {"{\"\xc0\xaf\":1}", 0, 0, NULL, "invalid JSON at byte 5: ", "UTF-8"}, /* in a key */
    {"\"a\tb\"", 0, 0, NULL, "invalid JSON at byte 2: ", "invalid character inside string"},
    /* truncated: the error is at the end of the text */
    {"", 0, 0, NULL, "invalid JSON at byte 0: ", "premature EOF"},
    {"   ", 0, 0, NULL, "invalid JSON at byte 3: ", "premature EOF"},
    {"{", 0, 0, NULL, "invalid JSON at byte 1: ", "premature EOF"},
    {"[1,2", 0, 0, NULL, "invalid JSON at byte 4: ", "premature EOF"},
    {"{\"a\":{\"b\":[1,2,{\"c\":", 0, 0, NULL, "invalid JSON at byte 20: ", "premature EOF"},
    {"\"abc", 0, 0, NULL, "invalid JSON at byte 4: ", "premature EOF"},
    {"-", 0, 0, NULL, "invalid JSON at byte 1: ", "malformed number"},
    {"1.", 0, 0, NULL, "invalid JSON at byte 2: ", "malformed number"},
    {"1e", 0, 0, NULL, "invalid JSON at byte 2: ", "malformed number"},
    /* trailing garbage */
    {"{}x", 0, 0, NULL, "invalid JSON at byte 3: ", "trailing garbage"},
    {"[1,2]]", 0, 0, NULL, "invalid JSON at byte 6: ", "trailing garbage"},
    {"{\"a\":1}}", 0, 0, NULL, "invalid JSON at byte 8: ", "trailing garbage"},
    {"[1] [2]", 0, 0, NULL, "invalid JSON at byte 5: ", "trailing garbage"},
    {"01", 0, 0, NULL, "invalid JSON at byte 2: ", "trailing garbage"},
    {"{} {}", 0, U, NULL, "invalid JSON at byte 4: ", "trailing garbage"},
    /* bare words and other syntax errors */
    {"hello", 0, 0, NULL, "invalid JSON at byte 1: ", "invalid char in json text"},
    {"NaN", 0, 0, NULL, "invalid JSON at byte 1: ", "invalid char in json text"},
    {"Infinity", 0, 0, NULL, "invalid JSON at byte 1: ", "invalid char in json text"},
    {"nul", 0, 0, NULL, "invalid JSON at byte 3: ", "invalid string in json text"},
    {"truex", 0, 0, NULL, "invalid JSON at byte ", "invalid"},
    {"{a:1}", 0, 0, NULL, "invalid JSON at byte 2: ", "invalid"},
    {"['a']", 0, 0, NULL, "invalid JSON at byte 2: ", "invalid char in json text"},
    {"{\"a\":}", 0, 0, NULL, "invalid JSON at byte 6: ", "unallowed token"},
    {"[1,]", 0, 0, NULL, "invalid JSON at byte 4: ", "unallowed token"},
    {"{\"a\" 1}", 0, 0, NULL, "invalid JSON at byte 6: ", "separated by a colon"},
    {"\"\\x\"", 0, 0, NULL, "invalid JSON at byte 2: ", "inside a string"},
    {"{\"a\":1,}", 0, U, NULL, "invalid JSON at byte 8: ", "invalid object key"},
    /* envelope unwrapping */
    {"{\"schema\":{\"type\":\"struct\",\"fields\":[{\"field\":\"id\"}]},\"payload\":{\"op\":\"c\","
     "\"after\":{\"id\":7}}}",
     0, U, "{after={id=7},op=\"c\"}", NULL, NULL},
    {"{\"payload\":{\"op\":\"u\"},\"schema\":{\"a\":[1,{\"b\":null}],\"c\":\"d\"}}", 0, U,
     "{op=\"u\"}", NULL, NULL},
    {"{\"schema\":null,\"payload\":{\"op\":\"d\"}}", 0, U, "{op=\"d\"}", NULL, NULL},
    {"{\"schema\":\"string\",\"payload\":\"just text\"}", 0, U, "\"just text\"", NULL, NULL},
    {"{\"schema\":{\"type\":\"int64\"},\"payload\":9223372036854775807}", 0, U,
     "9223372036854775807", NULL, NULL},
    /* a plain payload passes unchanged, "schema" below the top level included */
    {"{\"op\":\"c\",\"source\":{\"schema\":\"inventory\",\"table\":\"t\"},\"after\":{\"id\":1}}", 0,
     U, "{after={id=1},op=\"c\",source={schema=\"inventory\",table=\"t\"}}", NULL, NULL},
    {"{\"payload\":{\"op\":\"c\"}}", 0, U, "{payload={op=\"c\"}}", NULL, NULL},
    {"[{\"schema\":1,\"payload\":2}]", 0, U, "{[1]={payload=2,schema=1}}", NULL, NULL},
    {"\"schema\"", 0, U, "\"schema\"", NULL, NULL},
    {"null", 0, U, "nil", NULL, NULL},
    /* schema without payload */
    {"{\"schema\":{\"type\":\"struct\"}}", 0, U, NULL,
     "JSON object has a \"schema\" member but no \"payload\"", "schema"},
    {"{\"schema\":{\"type\":\"struct\"},\"op\":\"c\"}", 0, U, NULL,
     "JSON object has a \"schema\" member but no \"payload\"", "payload"},
    {"{\"schema\":{},\"payload\":null}", 0, U, NULL,
     "JSON object has a \"schema\" member but no \"payload\"", "payload"},
    /* JSON_OBJECT_ONLY: the document itself must be an object */
    {"{}", 0, O, "{}", NULL, NULL},
    {"{\"a\":[1]}", 0, O, "{a={[1]=1}}", NULL, NULL},
    {"[{\"a\":1}]", 0, O, NULL, "value is JSON but not an object (a JSON array)", "array"},
    {"\"text\"", 0, O, NULL, "value is JSON but not an object (a JSON string)", "string"},
    {"12", 0, O, NULL, "value is JSON but not an object (a JSON number)", "number"},
    {"true", 0, O, NULL, "value is JSON but not an object (a JSON boolean)", "boolean"},
    {"null", 0, O, NULL, "value is JSON but not an object (a JSON null)", "null"},
    {"[1", 0, O, NULL, "invalid JSON at byte 2: ", "premature EOF"},
    /* ... of an envelope, the payload must be an object: it is the event */
    {"{\"schema\":{},\"payload\":{\"op\":\"r\"}}", 0, U | O, "{op=\"r\"}", NULL, NULL},
    {"{\"schema\":{},\"payload\":[1]}", 0, U | O, NULL,
     "payload is not a JSON object (a JSON array)", "array"},
    {"[{\"schema\":{},\"payload\":{}}]", 0, U | O, NULL,
     "value is JSON but not an object (a JSON array)", "array"},
    /* without the flag the envelope is a value like any other */
    {"{\"schema\":{\"type\":\"struct\"},\"payload\":{\"op\":\"c\"}}", 0, 0,
     "{payload={op=\"c\"},schema={type=\"struct\"}}", NULL, NULL},
    {"{\"schema\":{\"type\":\"struct\"}}", 0, 0, "{schema={type=\"struct\"}}", NULL, NULL},
};

static void test_decode_cases(void **state)
{
    fixture *f = *state;
    lua_State *L = f->L;
    int failures = 0;
    /* Values below the decoded one must survive every call, failed ones included. */
    lua_pushliteral(L, "below");
    lua_pushinteger(L, 42);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const decode_case *c = &cases[i];
        size_t len = c->len ? c->len : strlen(c->json);
        char err[256] = "";
        int rc = json_decoder_push(f->d, L, c->json, len, c->flags, err, sizeof err);
        strbuf b = {0};
        if (rc == 0) dump(&b, L, -1);
        if (c->want && rc != 0) {
            print_error("case %zu %s: unexpected error %s\n", i, c->json, err);
            failures++;
        } else if (c->want && strcmp(b.data, c->want) != 0) {
            print_error("case %zu %s:\n got  %s\n want %s\n", i, c->json, b.data, c->want);
            failures++;
        } else if (!c->want && rc != -1) {
            print_error("case %zu %s: expected an error, got %s\n", i, c->json, b.data);
            failures++;
        } else if (!c->want && (strncmp(err, c->err_prefix, strlen(c->err_prefix)) != 0 ||
                                !strstr(err, c->err_phrase))) {
            print_error("case %zu %s:\n got  %s\n want %s...%s\n", i, c->json, err, c->err_prefix,
                        c->err_phrase);
            failures++;
        }
        strbuf_free(&b);
        assert_int_equal(lua_gettop(L), rc == 0 ? 3 : 2);
        if (rc == 0) lua_pop(L, 1);
        assert_string_equal(lua_tostring(L, 1), "below");
        assert_int_equal(lua_tointeger(L, 2), 42);
    }
    assert_int_equal(failures, 0);
}

/* Exact integer and float types, checked on the Lua values themselves. */
static void test_number_types(void **state)
{
    fixture *f = *state;
    lua_State *L = f->L;
    static const char text[] = "[9007199254740993,-9223372036854775808,9223372036854775807,"
                               "9223372036854775808,-0,1.5,1e3,-2.5E-3,-0.0]";
    char err[256];
    assert_int_equal(json_decoder_push(f->d, L, text, strlen(text), 0, err, sizeof err), 0);
    static const struct {
        int is_int;
        lua_Integer i;
        double d;
    } want[] = {
        {1, 9007199254740993LL, 0},
        {1, INT64_MIN, 0},
        {1, INT64_MAX, 0},
        {0, 0, 9223372036854775808.0},
        {1, 0, 0},
        {0, 0, 1.5},
        {0, 0, 1000.0},
        {0, 0, -0.0025},
        {0, 0, -0.0},
    };
    assert_int_equal(lua_rawlen(L, -1), sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(lua_rawgeti(L, -1, (lua_Integer)i + 1), LUA_TNUMBER);
        assert_int_equal(lua_isinteger(L, -1), want[i].is_int);
        if (want[i].is_int) {
            assert_true(lua_tointeger(L, -1) == want[i].i);
        } else {
            double v = lua_tonumber(L, -1);
            assert_memory_equal(&v, &want[i].d, sizeof v); /* bit-exact: -0.0 is not 0.0 */
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    assert_int_equal(lua_gettop(L), 0);
}

/* Surrogate pair and escapes, checked byte by byte on the Lua string. */
static void test_string_bytes(void **state)
{
    fixture *f = *state;
    lua_State *L = f->L;
    static const char text[] = "\"q\\\"b\\\\n\\n\\u00e9\\ud83d\\ude00\"";
    static const char want[] = "q\"b\\n\n\xc3\xa9\xf0\x9f\x98\x80";
    char err[256];
    assert_int_equal(json_decoder_push(f->d, L, text, strlen(text), 0, err, sizeof err), 0);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    assert_int_equal(len, sizeof want - 1);
    assert_memory_equal(s, want, len);
    lua_pop(L, 1);
}

/* Text is bounded by len, not by a NUL: bytes after len are never read. */
static void test_length_bounded(void **state)
{
    fixture *f = *state;
    static const char text[] = "{\"a\":1}garbage";
    char *out = decode_dump(f, text, 7, 0);
    assert_string_equal(out, "{a=1}");
    free(out);
    /* a raw NUL inside a string is a control character, not the end of the text */
    static const char nul[] = "\"a\0b\"";
    char err[256];
    assert_int_equal(json_decoder_push(f->d, f->L, nul, sizeof nul - 1, 0, err, sizeof err), -1);
    assert_string_equal(err, "invalid JSON at byte 2: lexical error: invalid character inside "
                             "string. ");
    assert_int_equal(lua_gettop(f->L), 0);
}

/* ---- depth limit ---- */

static char *nested(int depth, const char *open, const char *inner, const char *close)
{
    strbuf b = {0};
    for (int i = 0; i < depth; i++)
        strbuf_puts(&b, open);
    strbuf_puts(&b, inner);
    for (int i = 0; i < depth; i++)
        strbuf_puts(&b, close);
    return b.data;
}

static void test_depth_limit(void **state)
{
    fixture *f = *state;
    lua_State *L = f->L;
    char err[256];

    /* JSON_MAX_DEPTH arrays: fine, and the innermost value is reachable */
    char *ok = nested(JSON_MAX_DEPTH, "[", "7", "]");
    assert_int_equal(json_decoder_push(f->d, L, ok, strlen(ok), 0, err, sizeof err), 0);
    assert_int_equal(lua_gettop(L), 1);
    for (int i = 0; i < JSON_MAX_DEPTH; i++) {
        assert_int_equal(lua_rawgeti(L, -1, 1), i < JSON_MAX_DEPTH - 1 ? LUA_TTABLE : LUA_TNUMBER);
        lua_remove(L, -2);
    }
    assert_int_equal(lua_tointeger(L, -1), 7);
    lua_pop(L, 1);
    free(ok);

    /* one more: an error at the byte of the opening bracket, stack unchanged */
    lua_pushliteral(L, "below");
    char *deep = nested(JSON_MAX_DEPTH + 1, "[", "7", "]");
    assert_int_equal(json_decoder_push(f->d, L, deep, strlen(deep), 0, err, sizeof err), -1);
    assert_string_equal(err, "invalid JSON at byte 129: nesting deeper than 128 levels");
    assert_int_equal(lua_gettop(L), 1);
    free(deep);

    /* objects count the same way */
    char *deep_obj = nested(JSON_MAX_DEPTH + 1, "{\"a\":", "1", "}");
    assert_int_equal(json_decoder_push(f->d, L, deep_obj, strlen(deep_obj), 0, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "nesting deeper than 128 levels"));
    assert_int_equal(strncmp(err, "invalid JSON at byte ", 21), 0);
    assert_int_equal(lua_gettop(L), 1);
    free(deep_obj);
    char *ok_obj = nested(JSON_MAX_DEPTH, "{\"a\":", "1", "}");
    assert_int_equal(json_decoder_push(f->d, L, ok_obj, strlen(ok_obj), 0, err, sizeof err), 0);
    assert_int_equal(lua_gettop(L), 2);
    lua_pop(L, 1);
    free(ok_obj);

    /* inside an envelope the payload's own nesting counts (the envelope is skipped, not a
     * level) */
    strbuf b = {0};
    strbuf_puts(&b, "{\"schema\":{},\"payload\":");
    char *payload = nested(JSON_MAX_DEPTH + 1, "[", "1", "]");
    strbuf_puts(&b, payload);
    strbuf_putc(&b, '}');
    assert_int_equal(
        json_decoder_push(f->d, L, b.data, b.len, JSON_UNWRAP_ENVELOPE, err, sizeof err), -1);
    assert_non_null(strstr(err, "nesting deeper than 128 levels"));
    assert_int_equal(lua_gettop(L), 1);
    free(payload);
    strbuf_free(&b);

    /* the decoder is usable after all that */
    char *out = decode_dump(f, "[1]", 3, 0);
    assert_string_equal(out, "{[1]=1}");
    free(out);
    lua_pop(L, 1);
}

/* ---- a skipped schema: the depth limit holds, memory stays flat ---- */

/* Peak resident memory of this process so far, in KiB. */
static long peak_rss_kib(void)
{
    struct rusage ru;
    assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
    return ru.ru_maxrss;
}

/* {"schema":S,"payload":P} (schema_first) or {"payload":P,"schema":S}. */
static strbuf envelope(const char *schema, const char *payload, bool schema_first)
{
    strbuf b = {0};
    if (schema_first)
        strbuf_printf(&b, "{\"schema\":%s,\"payload\":%s}", schema, payload);
    else
        strbuf_printf(&b, "{\"payload\":%s,\"schema\":%s}", payload, schema);
    return b;
}

/* The envelope counts as a level, so a schema may nest JSON_MAX_DEPTH - 1 levels; one more is
 * refused with the same reason as any nesting too deep, whether the envelope fast path (schema
 * first) or the general parser (payload first) meets it, and the stack is left unchanged. */
static void test_schema_depth_limit(void **state)
{
    fixture *f = *state;
    lua_State *L = f->L;
    char err[256];
    static const char payload[] = "{\"op\":\"c\"}";
    for (int schema_first = 0; schema_first <= 1; schema_first++) {
        for (int object = 0; object <= 1; object++) {
            const char *open = object ? "{\"a\":" : "[", *close = object ? "}" : "]";
            char *fits = nested(JSON_MAX_DEPTH - 1, open, "1", close);
            strbuf b = envelope(fits, payload, schema_first);
            char *got = decode_dump(f, b.data, b.len, JSON_UNWRAP_ENVELOPE | JSON_OBJECT_ONLY);
            assert_string_equal(got, "{op=\"c\"}");
            free(got);
            strbuf_free(&b);
            free(fits);

            lua_pushliteral(L, "below");
            char *deep = nested(JSON_MAX_DEPTH, open, "1", close);
            b = envelope(deep, payload, schema_first);
            /* the opening that is one level too many: the envelope, then 128 of the schema */
            size_t prefix = (size_t)(strstr(b.data, "\"schema\":") - b.data) + 9;
            size_t at = prefix + (JSON_MAX_DEPTH - 1) * strlen(open) + 1;
            char want[160];
            snprintf(want, sizeof want,
                     "invalid JSON at byte %zu: nesting deeper than 128 levels (inside the "
                     "envelope's \"schema\")",
                     at);
            assert_int_equal(json_decoder_push(f->d, L, b.data, b.len,
                                               JSON_UNWRAP_ENVELOPE | JSON_OBJECT_ONLY, err,
                                               sizeof err),
                             -1);
            assert_string_equal(err, want);
            assert_int_equal(lua_gettop(L), 1);
            lua_pop(L, 1);
            strbuf_free(&b);
            free(deep);
        }
    }
    /* without JSON_UNWRAP_ENVELOPE "schema" is an ordinary member: the same limit */
    char *deep = nested(JSON_MAX_DEPTH, "[", "1", "]");
    strbuf b = envelope(deep, payload, false);
    assert_int_equal(json_decoder_push(f->d, L, b.data, b.len, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "nesting deeper than 128 levels"));
    strbuf_free(&b);
    free(deep);
    /* the decoder is usable afterwards */
    char *out = decode_dump(f, "[1]", 3, 0);
    assert_string_equal(out, "{[1]=1}");
    free(out);
}

/* The audit's reproducer: 400,000 levels inside a skipped schema (800 KB) took 625 MB, memory
 * growing with the square of the depth. Now it is refused at level 129 with memory to spare. */
static void test_schema_deep_memory(void **state)
{
    fixture *f = *state;
    enum { LEVELS = 400000 };
    char err[256];
    char *deep = nested(LEVELS, "[", "", "]");
    long before = peak_rss_kib();
    for (int schema_first = 0; schema_first <= 1; schema_first++) {
        strbuf b = envelope(deep, "{\"op\":\"c\"}", schema_first);
        assert_int_equal(json_decoder_push(f->d, f->L, b.data, b.len,
                                           JSON_UNWRAP_ENVELOPE | JSON_OBJECT_ONLY, err,
                                           sizeof err),
                         -1);
        assert_non_null(strstr(err, "nesting deeper than 128 levels (inside the envelope's"));
        assert_int_equal(lua_gettop(f->L), 0);
        strbuf_free(&b);
    }
    long grown = peak_rss_kib() - before;
    if (grown > 32 * 1024) fail_msg("decoding a deep schema raised the peak RSS by %ld KiB", grown);
    free(deep);
}

/* A large flat schema (long arrays, many keys, long strings with escapes, which grow yajl's
 * buffers) is still skipped, on both paths, and the payload decoded, with memory in proportion
 * to the text. */
static void test_schema_large_flat(void **state)
{
    fixture *f = *state;
    strbuf schema = {0};
    strbuf_puts(&schema, "{\"type\":\"struct\",\"fields\":[");
    for (int i = 0; i < 50000; i++)
        strbuf_printf(&schema, "%s{\"field\":\"f%d\",\"type\":\"int64\",\"n\":[1,2,3]}",
                      i ? "," : "", i);
    strbuf_puts(&schema, "],\"doc\":\"");
    for (int i = 0; i < 200000; i++)
        strbuf_puts(&schema, "ab\\n\\u00e9");
    strbuf_puts(&schema, "\"}");
    assert_true(schema.len > 4000000);
    long before = peak_rss_kib();
    for (int schema_first = 0; schema_first <= 1; schema_first++) {
        strbuf b = envelope(schema.data, "{\"op\":\"c\",\"after\":{\"id\":1}}", schema_first);
        char *got = decode_dump(f, b.data, b.len, JSON_UNWRAP_ENVELOPE | JSON_OBJECT_ONLY);
        assert_string_equal(got, "{after={id=1},op=\"c\"}");
        free(got);
        const char *span;
        size_t len;
        json_decoder_schema_span(f->d, &span, &len);
        assert_int_equal(len, schema.len);
        assert_memory_equal(span, schema.data, len);
        strbuf_free(&b);
    }
    long grown = peak_rss_kib() - before;
    /* the two texts themselves are about 9 MB; yajl's buffers must not add copies of them */
    if (grown > 48 * 1024) fail_msg("skipping a flat schema raised the peak RSS by %ld KiB", grown);
    strbuf_free(&schema);
}

/* Texts larger than the decoder's arena (64 KiB) and reuse after them. */
static void test_large_values(void **state)
{
    fixture *f = *state;
    lua_State *L = f->L;
    char err[256];
    enum { N = 300000 };

    /* one long string with escapes spread through it (yajl's buffer grows and spills) */
    strbuf text = {0};
    strbuf want = {0};
    strbuf_putc(&text, '"');
    for (int i = 0; i < N; i++) {
        if (i % 1000 == 999) {
            strbuf_puts(&text, "\\n");
            strbuf_putc(&want, '\n');
        } else {
            strbuf_putc(&text, (char)('a' + i % 26));
            strbuf_putc(&want, (char)('a' + i % 26));
        }
    }
    strbuf_putc(&text, '"');
    assert_int_equal(json_decoder_push(f->d, L, text.data, text.len, 0, err, sizeof err), 0);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    assert_int_equal(len, want.len);
    assert_memory_equal(s, want.data, len);
    lua_pop(L, 1);

    /* a long array of integers and an object with many keys */
    strbuf_reset(&text);
    strbuf_puts(&text, "{\"list\":[");
    for (int i = 0; i < 20000; i++)
        strbuf_printf(&text, "%s%d", i ? "," : "", i * 7 - 3);
    strbuf_puts(&text, "]");
    for (int i = 0; i < 2000; i++)
        strbuf_printf(&text, ",\"k%d\":%d", i, i);
    strbuf_puts(&text, "}");
    assert_int_equal(json_decoder_push(f->d, L, text.data, text.len, 0, err, sizeof err), 0);
    lua_getfield(L, -1, "list");
    assert_int_equal(lua_rawlen(L, -1), 20000);
    lua_Integer sum = 0;
    for (lua_Integer i = 1; i <= 20000; i++) {
        lua_rawgeti(L, -1, i);
        assert_true(lua_isinteger(L, -1));
        sum += lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    assert_true(sum == (lua_Integer)7 * (19999LL * 20000 / 2) - 3 * 20000);
    lua_pop(L, 1);
    lua_getfield(L, -1, "k1999");
    assert_int_equal(lua_tointeger(L, -1), 1999);
    lua_pop(L, 2);

    /* small text after large ones */
    char *out = decode_dump(f, "{\"a\":[true]}", 12, 0);
    assert_string_equal(out, "{a={[1]=true}}");
    free(out);
    strbuf_free(&text);
    strbuf_free(&want);
    assert_int_equal(lua_gettop(L), 0);
}

/* ---- Debezium fixtures ---- */

/* Decodes a fixture and leaves the value on the stack. The file's trailing newline is kept: JSON
 * allows trailing whitespace, so that is tested too. */
static void push_fixture(fixture *f, const char *name, int flags)
{
    size_t len;
    char *text = read_fixture(name, &len);
    char err[256];
    if (json_decoder_push(f->d, f->L, text, len, flags, err, sizeof err) != 0)
        fail_msg("%s: %s", name, err);
    free(text);
}

static char *fixture_dump(fixture *f, const char *name, int flags)
{
    push_fixture(f, name, flags);
    return pop_dump(f->L);
}

typedef struct {
    const char *path;
    int type;
    lua_Integer i; /* LUA_TNUMBER: integer value (is_float: 0) */
    double d;      /* LUA_TNUMBER with is_float */
    int is_float;
    const char *s; /* LUA_TSTRING */
} field_want;

static void check_fields(lua_State *L, const char *name, const field_want *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        push_path(L, -1, w[i].path);
        if (lua_type(L, -1) != w[i].type)
            fail_msg("%s %s: a %s, want a %s", name, w[i].path, luaL_typename(L, -1),
                     lua_typename(L, w[i].type));
        if (w[i].type == LUA_TNUMBER) {
            assert_int_equal(lua_isinteger(L, -1), !w[i].is_float);
            if (w[i].is_float)
                assert_true(lua_tonumber(L, -1) == w[i].d);
            else if (lua_tointeger(L, -1) != w[i].i)
                fail_msg("%s %s: %lld, want %lld", name, w[i].path, (long long)lua_tointeger(L, -1),
                         (long long)w[i].i);
        } else if (w[i].type == LUA_TSTRING) {
            assert_string_equal(lua_tostring(L, -1), w[i].s);
        } else if (w[i].type == LUA_TBOOLEAN) {
            assert_int_equal(lua_toboolean(L, -1), (int)w[i].i);
        }
        lua_pop(L, 1);
    }
}

static void test_fixture_create_s27(void **state)
{
    fixture *f = *state;
    static const field_want want[] = {
        {"op", LUA_TSTRING, 0, 0, 0, "c"},
        {"after.id", LUA_TNUMBER, 1005, 0, 0, NULL},
        {"after.first_name", LUA_TSTRING, 0, 0, 0, "Bob"},
        {"after.email", LUA_TSTRING, 0, 0, 0, "bob@example.com"},
        {"before", LUA_TNIL, 0, 0, 0, NULL},
        {"transaction", LUA_TNIL, 0, 0, 0, NULL},
        {"source.ts_ms", LUA_TNUMBER, 1700000000123LL, 0, 0, NULL},
        {"source.ts_ns", LUA_TNUMBER, 1700000000123456000LL, 0, 0, NULL},
        {"source.schema", LUA_TSTRING, 0, 0, 0, "inventory"}, /* not the envelope's schema */
        {"source.table", LUA_TSTRING, 0, 0, 0, "customers"},
        {"source.sequence", LUA_TSTRING, 0, 0, 0, "[\"23994968\",\"23995024\"]"},
        {"source.xmin", LUA_TNIL, 0, 0, 0, NULL},
        {"ts_ns", LUA_TNUMBER, 1700000000500321789LL, 0, 0, NULL}, /* not a multiple of 2^k */
        {"ts_us", LUA_TNUMBER, 1700000000500321LL, 0, 0, NULL},
        {"schema", LUA_TNIL, 0, 0, 0, NULL},
        {"payload", LUA_TNIL, 0, 0, 0, NULL},
    };
    static const char *const files[] = {"S27-02-create-with-schema.json",
                                        "S27-02-create-no-schema.json"};
    for (size_t i = 0; i < 2; i++) {
        push_fixture(f, files[i], JSON_UNWRAP_ENVELOPE);
        check_fields(f->L, files[i], want, sizeof want / sizeof want[0]);
        lua_pop(f->L, 1);
    }
    assert_int_equal(lua_gettop(f->L), 0);
}

static void test_fixture_typed(void **state)
{
    fixture *f = *state;
    static const field_want want[] = {
        {"op", LUA_TSTRING, 0, 0, 0, "c"},
        {"after.id", LUA_TNUMBER, 1, 0, 0, NULL},
        {"after.big", LUA_TNUMBER, 9007199254740993LL, 0, 0, NULL},
        {"after.r", LUA_TNUMBER, 0, 1.5, 1, NULL},
        {"after.dp", LUA_TNUMBER, 0, 2.25, 1, NULL},
        {"after.flag", LUA_TBOOLEAN, 1, 0, 0, NULL},
        {"after.ts", LUA_TNUMBER, 1529507596945104LL, 0, 0, NULL},
        {"after.tstz", LUA_TSTRING, 0, 0, 0, "2018-06-20T13:13:16.945104Z"},
        {"after.j", LUA_TSTRING, 0, 0, 0, "{\"a\": 1}"},
        {"after.ratio.scale", LUA_TNUMBER, 5, 0, 0, NULL},
        {"after.ratio.value", LUA_TSTRING, 0, 0, 0, "BMsv"},
        {"source.table", LUA_TSTRING, 0, 0, 0, "typed"},
        {"source.ts_ns", LUA_TNUMBER, 1700000600123456000LL, 0, 0, NULL},
    };
    push_fixture(f, "S27-10-typed-create-with-schema.json", JSON_UNWRAP_ENVELOPE);
    check_fields(f->L, "S27-10", want, sizeof want / sizeof want[0]);
    push_path(f->L, -1, "after.tags");
    strbuf b = {0};
    dump(&b, f->L, -1);
    assert_string_equal(b.data, "{[1]=\"a\",[2]=\"b\"}");
    strbuf_free(&b);
    lua_pop(f->L, 2);
}

/* The with-schema and no-schema variants decode to the same payload, field for field. */
static void test_fixture_envelope_variants(void **state)
{
    fixture *f = *state;
    static const char *const pairs[][2] = {
        {"S27-02-create-with-schema.json", "S27-02-create-no-schema.json"},
        {"S25-02-create-with-schema.json", "S25-02-create-no-schema.json"},
        {"S27-01-key-with-schema.json", "S27-01-key-no-schema.json"},
        {"S25-01-key-with-schema.json", "S25-01-key-no-schema.json"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char *with = fixture_dump(f, pairs[i][0], JSON_UNWRAP_ENVELOPE);
        char *plain = fixture_dump(f, pairs[i][1], JSON_UNWRAP_ENVELOPE);
        char *plain_noflag = fixture_dump(f, pairs[i][1], 0);
        if (strcmp(with, plain) != 0)
            fail_msg("%s and %s differ:\n%s\n%s", pairs[i][0], pairs[i][1], with, plain);
        assert_string_equal(plain, plain_noflag);
        free(with);
        free(plain);
        free(plain_noflag);
    }
    char *key = fixture_dump(f, "S27-01-key-with-schema.json", JSON_UNWRAP_ENVELOPE);
    assert_string_equal(key, "{id=1005}");
    free(key);
    char *s25 = fixture_dump(f, "S25-02-create-with-schema.json", JSON_UNWRAP_ENVELOPE);
    assert_string_equal(
        s25, "{after={email=\"bob@example.com\",first_name=\"Bob\",id=1005,last_name=\"Hopper\"},"
             "op=\"c\",source={connector=\"postgresql\",db=\"postgres\",lsn=23995024,name="
             "\"dbserver1\",schema=\"inventory\",sequence=\"[\\\"23994968\\\",\\\"23995024\\\"]\","
             "snapshot=\"false\",table=\"customers\",ts_ms=1700000000123,txId=771,version=\"2.5."
             "4.Final\"},ts_ms=1700000000500}");
    free(s25);
    assert_int_equal(lua_gettop(f->L), 0);
}

/* Without the flag a with-schema file is the envelope itself. */
static void test_fixture_envelope_kept(void **state)
{
    fixture *f = *state;
    push_fixture(f, "S27-02-create-with-schema.json", 0);
    static const field_want want[] = {
        {"schema.type", LUA_TSTRING, 0, 0, 0, "struct"},
        {"schema.name", LUA_TSTRING, 0, 0, 0, "dbserver1.inventory.customers.Envelope"},
        {"schema.version", LUA_TNUMBER, 2, 0, 0, NULL},
        {"payload.op", LUA_TSTRING, 0, 0, 0, "c"},
        {"payload.after.id", LUA_TNUMBER, 1005, 0, 0, NULL},
        {"payload.source.ts_ns", LUA_TNUMBER, 1700000000123456000LL, 0, 0, NULL},
        {"op", LUA_TNIL, 0, 0, 0, NULL},
    };
    check_fields(f->L, "S27-02 envelope", want, sizeof want / sizeof want[0]);
    push_path(f->L, -1, "schema.fields");
    assert_int_equal(lua_rawlen(f->L, -1), 8); /* before … op, ts_ms, ts_us, ts_ns */
    lua_pop(f->L, 2);
}

/* The envelope fast path skips the schema by scanning strings and nesting: schemas with
 * braces and quotes inside strings, escapes and whitespace give the same payload as parsing
 * the payload alone; layouts it does not know fall back to the general parser. */
static void test_envelope_fast_path(void **state)
{
    fixture *f = *state;
    static const char payload[] =
        "{\"op\":\"u\",\"after\":{\"id\":9007199254740993,\"s\":\"}{\\\"\"}}";
    static const char *const schemas[] = {
        "{}",
        "{\"doc\":\"a } brace and a { brace\",\"fields\":[{\"f\":\"x\"}]}",
        "{\"doc\":\"quote \\\" inside\",\"n\":[1,2,{\"k\":null}]}",
        "{\"doc\":\"ends in a backslash \\\\\",\"x\":true}",
        " { \"a\" : [ ] } ",
    };
    char *want = decode_dump(f, payload, strlen(payload), 0);
    for (size_t i = 0; i < sizeof schemas / sizeof schemas[0]; i++) {
        strbuf b = {0};
        strbuf_printf(&b, " {\"schema\": %s , \"payload\" : %s }\n", schemas[i], payload);
        char *got = decode_dump(f, b.data, b.len, JSON_UNWRAP_ENVELOPE);
        assert_string_equal(got, want);
        free(got);
        strbuf_reset(&b);
        /* payload first: the general parser */
        strbuf_printf(&b, "{\"payload\":%s,\"schema\":%s}", payload, schemas[i]);
        got = decode_dump(f, b.data, b.len, JSON_UNWRAP_ENVELOPE);
        assert_string_equal(got, want);
        free(got);
        strbuf_free(&b);
    }
    free(want);
    /* the fast path was taken: a payload of JSON_MAX_DEPTH levels fits (the general parser
     * would count the envelope as one level more) */
    strbuf deep = {0};
    char *levels = nested(JSON_MAX_DEPTH, "[", "1", "]");
    strbuf_printf(&deep, "{\"schema\":{\"x\":\"}\"},\"payload\":%s}", levels);
    char *got = decode_dump(f, deep.data, deep.len, JSON_UNWRAP_ENVELOPE);
    free(got);
    free(levels);
    strbuf_free(&deep);
    /* trailing garbage and a truncated payload are still errors */
    char err[256];
    static const char *const bad[] = {
        "{\"schema\":{},\"payload\":{\"a\":1}} x",
        "{\"schema\":{},\"payload\":{\"a\":1}",
        "{\"schema\":{},\"payload\":{\"a\":}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(json_decoder_push(f->d, f->L, bad[i], strlen(bad[i]), JSON_UNWRAP_ENVELOPE,
                                           err, sizeof err),
                         -1);
        assert_non_null(strstr(err, "invalid JSON at byte "));
        assert_int_equal(lua_gettop(f->L), 0);
    }
}

/* The byte-by-byte scan json_skip_container stands for: strings end at an unescaped quote,
 * brackets of either kind nest, nothing else counts. */
static const char *skip_reference(const char *p, const char *end, int max_depth)
{
    int depth = 0;
    while (p < end) {
        if (*p == '"') {
            for (p++; p < end && *p != '"'; p++)
                if (*p == '\\' && ++p >= end) break;
            if (p >= end) return NULL;
        } else if (*p == '{' || *p == '[') {
            if (++depth > max_depth) return NULL;
        } else if (*p == '}' || *p == ']') {
            if (--depth == 0) return p + 1;
        }
        p++;
    }
    return NULL;
}

/* json_skip_container (64 bytes at a time) ends where the byte-by-byte scan does, or fails
 * where it does, on texts of brackets, quotes, backslashes and padding of every length, the
 * depth limit included. */
static void test_skip_container(void **state)
{
    (void)state;
    static const char alphabet[] = "{}[]\"\"\"\\\\ax{}[]ab \xc3\xa9";
    char text[600];
    unsigned seed = 12345;
    /* the first half with AVX2 where the CPU has it, the second with SSE2 */
    for (int round = 0; round < 400000; round++) {
        json_fast_use_avx2(round < 200000);
        seed = seed * 1103515245u + 12345u;
        size_t len = 1 + (seed >> 8) % (round % 200000 < 100000 ? 140 : sizeof text - 1);
        text[0] = (seed >> 4) & 1 ? '{' : '[';
        for (size_t i = 1; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = seed >> 16;
            /* mostly padding, so that some texts nest and close over many blocks */
            text[i] = r % 4 ? (r % 3 == 0 ? '"' : 'a') : alphabet[(r >> 4) % (sizeof alphabet - 1)];
        }
        int max_depth = 1 + (int)(seed >> 24) % 6;
        const char *want = skip_reference(text, text + len, max_depth);
        const char *got = json_skip_container(text, text + len, max_depth);
        if (got != want)
            fail_msg("round %d: %.*s (max depth %d): ends at %td, want %td", round, (int)len, text,
                     max_depth, got ? got - text : -1, want ? want - text : -1);
    }
    /* deep and long: the schema-sized case, with the limit just met and just missed */
    strbuf b = {0};
    for (int i = 0; i < 100; i++)
        strbuf_puts(&b, "{\"k\":\"v } ] \\\" [\",\"a\":[");
    for (int i = 0; i < 100; i++)
        strbuf_puts(&b, "1]}");
    const char *end = b.data + b.len;
    assert_ptr_equal(json_skip_container(b.data, end, 200), end);
    assert_null(json_skip_container(b.data, end, 199));
    assert_null(json_skip_container(b.data, end - 1, 200));
    json_fast_use_avx2(true);
    assert_ptr_equal(json_skip_container(b.data, end, 200), end);
    assert_null(json_skip_container(b.data, end, 199));
    assert_null(json_skip_container(b.data, end - 1, 200));
    strbuf_free(&b);
}

/* The schema's span: exactly the text of the "schema" member's value, from the fast path and
 * from the general parser alike; NULL without an envelope, for a non-object schema and after a
 * failed push. */
static void expect_span(fixture *f, const char *text, int flags, const char *want)
{
    char err[256];
    const char *span = (const char *)1;
    size_t len = 99;
    int rc = json_decoder_push(f->d, f->L, text, strlen(text), flags, err, sizeof err);
    json_decoder_schema_span(f->d, &span, &len);
    if (rc == 0) lua_pop(f->L, 1);
    if (!want) {
        if (span != NULL || len != 0)
            fail_msg("%s: span \"%.*s\", want none", text, (int)len, span);
        return;
    }
    if (!span) fail_msg("%s: no span, want %s", text, want);
    assert_true(span >= text && span + len <= text + strlen(text)); /* points into the text */
    if (len != strlen(want) || memcmp(span, want, len) != 0)
        fail_msg("%s: span \"%.*s\", want \"%s\"", text, (int)len, span, want);
}

static void test_schema_span(void **state)
{
    fixture *f = *state;
    static const char schema[] = "{\"type\":\"struct\",\"doc\":\"} \\\" {\",\"fields\":[]}";
    static const struct {
        const char *layout; /* @: the schema */
        int flags;
        bool has;
    } span_cases[] = {
        {"{\"schema\":@,\"payload\":{\"a\":1}}", JSON_UNWRAP_ENVELOPE, true},
        {" { \"schema\" :\n @\t, \"payload\" : {\"a\":1} } ", JSON_UNWRAP_ENVELOPE, true},
        {"{\"schema\":@,\"payload\":{\"a\":1}}", JSON_UNWRAP_ENVELOPE | JSON_OBJECT_ONLY, true},
        /* general parser: payload first, an escaped key, an extra member */
        {"{\"payload\":{\"a\":1},\"schema\":@}", JSON_UNWRAP_ENVELOPE, true},
        {"{\"payload\":{\"a\":1}, \"sch\\u0065ma\" : @ }", JSON_UNWRAP_ENVELOPE, true},
        {"{\"x\":[1,{\"schema\":2}],\"schema\":@,\"payload\":{\"a\":1}}", JSON_UNWRAP_ENVELOPE,
         true},
        /* none */
        {"{\"schema\":@,\"payload\":{\"a\":1}}", 0, false},
        {"{\"a\":{\"schema\":@,\"payload\":1}}", JSON_UNWRAP_ENVELOPE, false},
        {"{\"schema\":@,\"payload\":{\"a\":}}", JSON_UNWRAP_ENVELOPE, false},
        {"{\"schema\":@}", JSON_UNWRAP_ENVELOPE, false},
    };
    for (size_t i = 0; i < sizeof span_cases / sizeof span_cases[0]; i++) {
        strbuf b = {0};
        const char *at = strchr(span_cases[i].layout, '@');
        strbuf_append(&b, span_cases[i].layout, (size_t)(at - span_cases[i].layout));
        strbuf_puts(&b, schema);
        strbuf_puts(&b, at + 1);
        expect_span(f, b.data, span_cases[i].flags, span_cases[i].has ? schema : NULL);
        strbuf_free(&b);
    }
    expect_span(f, "{\"schema\":null,\"payload\":{\"a\":1}}", JSON_UNWRAP_ENVELOPE, NULL);
    expect_span(f, "{\"payload\":{\"a\":1},\"schema\":\"s\"}", JSON_UNWRAP_ENVELOPE, NULL);
    /* a push without an envelope clears the previous span */
    expect_span(f, "{\"schema\":{},\"payload\":1}", JSON_UNWRAP_ENVELOPE, "{}");
    expect_span(f, "{\"a\":1}", JSON_UNWRAP_ENVELOPE, NULL);
    /* the typed fixture: the span is its whole schema */
    size_t len;
    char *text = read_fixture("S27-10-typed-create-with-schema.json", &len);
    char err[256];
    const char *span;
    size_t slen;
    assert_int_equal(
        json_decoder_push(f->d, f->L, text, len, JSON_UNWRAP_ENVELOPE, err, sizeof err), 0);
    lua_pop(f->L, 1);
    json_decoder_schema_span(f->d, &span, &slen);
    assert_non_null(span);
    assert_int_equal(json_decoder_push(f->d, f->L, span, slen, JSON_OBJECT_ONLY, err, sizeof err),
                     0);
    assert_int_equal(lua_getfield(f->L, -1, "name"), LUA_TSTRING);
    assert_string_equal(lua_tostring(f->L, -1), "dbserver1.inventory.typed.Envelope");
    lua_settop(f->L, 0);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_decode_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_string_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_length_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_depth_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_deep_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_large_flat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixture_create_s27, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixture_typed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixture_envelope_variants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixture_envelope_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_envelope_fast_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_span, setup, teardown),
        cmocka_unit_test(test_skip_container),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
