/*
 * fuzz_row — libFuzzer target for the row serializer (include/cdcpipe/row_json.h).
 *
 * Input: JSON text, optionally followed by a NUL byte and one option byte. The text is decoded
 * with json_decoder_push into a Lua table (inputs that do not decode are skipped); the option
 * bits then replace string values that JSON cannot express otherwise:
 *   1: "null" → cdc.null      2: "nan", "inf", "-inf" → those floats      4: "fn" → a function.
 * The table is written with row_json_append sorted and unsorted, and checked against the
 * contract in row_json.h, through an independent canonical dump of what the row means:
 *   - the output is valid JSON: json_decoder_push decodes it again, and its canonical dump equals
 *     the original's (numbers compared by value, since an integral float is written as an
 *     integer; cdc.null members are absent after the round trip);
 *   - a row the contract allows (string keys, finite numbers, no holes, nesting well within the
 *     limit) is accepted, one it forbids is rejected with a message;
 *   - on_key sees each top-level key once, in strictly increasing byte order when sorted;
 *   - the Lua stack is left as it was; row_json_append_line writes "table TAB row NL" or nothing.
 *
 * README: built only with -DCDCPIPE_FUZZ=ON and clang (see tests/fuzz/CMakeLists.txt); run it by
 * hand as  build-fuzz/tests/fuzz/fuzz_row -dict=tests/fuzz/json.dict CORPUS_DIR tests/fuzz/corpus
 * and replay a finding as  build-fuzz/tests/fuzz/fuzz_row tests/fuzz/crashes/FILE
 */
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdcpipe/json_lua.h"
#include "cdcpipe/row_json.h"
#include "cdcpipe/strbuf.h"
#include "fuzz_common.h"

/* Rows nested at most this deep, with at most this many keys per table, are within every limit
 * of row_json (which allows more; these are well inside them so that the check does not copy
 * its exact limits). */
#define SAFE_DEPTH 16
#define SAFE_KEYS  1000

enum { OPT_NULL = 1, OPT_NONFINITE = 2, OPT_FUNCTION = 4 };

static lua_State *L; /* a new one per input (see LLVMFuzzerTestOneInput) */
static int a_function(lua_State *state)
{
    (void)state;
    return 0;
}

/* Replaces, in the table at idx and the tables in it, the strings the option bits name. */
static void apply_options(int idx, unsigned opts)
{
    idx = lua_absindex(L, idx);
    if (!lua_checkstack(L, 4)) fuzz_fail("Lua stack exhausted");
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        /* stack: key value */
        if (lua_type(L, -1) == LUA_TTABLE) {
            apply_options(-1, opts);
        } else if (lua_type(L, -1) == LUA_TSTRING) {
            const char *s = lua_tostring(L, -1);
            bool set = true;
            if ((opts & OPT_NULL) && strcmp(s, "null") == 0)
                lua_pushlightuserdata(L, row_json_null());
            else if ((opts & OPT_NONFINITE) && strcmp(s, "nan") == 0)
                lua_pushnumber(L, (lua_Number)NAN);
            else if ((opts & OPT_NONFINITE) && strcmp(s, "inf") == 0)
                lua_pushnumber(L, (lua_Number)HUGE_VAL);
            else if ((opts & OPT_NONFINITE) && strcmp(s, "-inf") == 0)
                lua_pushnumber(L, -(lua_Number)HUGE_VAL);
            else if ((opts & OPT_FUNCTION) && strcmp(s, "fn") == 0)
                lua_pushcfunction(L, a_function);
            else
                set = false;
            if (set) {
                lua_pushvalue(L, -3); /* key */
                lua_insert(L, -2);
                lua_rawset(L, idx); /* assigning an existing field keeps lua_next valid */
            }
        }
        lua_pop(L, 1);
    }
}

/* ---- canonical dump: what a row means as JSON, independent of row_json ---- */

typedef struct {
    bool lossy;    /* a cdc.null array element: a hole after the round trip */
    bool too_deep; /* nested far past any limit: not dumped, no verdict */
    int max_depth; /* deepest table value (the row itself is 0) */
    size_t max_keys;
} canon_state;

static int canon_value(strbuf *out, lua_State *state, int idx, int depth, void *ud);

/* Keys of an object must be strings. */
static int canon_key(strbuf *out, lua_State *state, int idx, int depth, void *ud)
{
    (void)depth;
    (void)ud;
    if (lua_type(state, idx) != LUA_TSTRING) return -1;
    size_t len;
    const char *s = lua_tolstring(state, idx, &len);
    fuzz_dump_bytes(out, 'k', s, len);
    return 0;
}

/* A member value: cdc.null is left out (JSON null becomes an absent member). */
static int canon_member(strbuf *out, lua_State *state, int idx, int depth, void *ud)
{
    if (lua_type(state, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(state, idx) == row_json_null())
        return 1;
    return canon_value(out, state, idx, depth, ud);
}

static size_t count_keys(lua_State *state, int idx)
{
    size_t n = 0;
    idx = lua_absindex(state, idx);
    lua_pushnil(state);
    while (lua_next(state, idx) != 0) {
        lua_pop(state, 1);
        n++;
    }
    return n;
}

static int canon_object(strbuf *out, lua_State *state, int idx, int depth, canon_state *cs)
{
    size_t keys = count_keys(state, idx);
    if (keys > cs->max_keys) cs->max_keys = keys;
    size_t start = out->len;
    /* the pairs' dumpers get depth + 1: the depth of the member values */
    int rc = fuzz_dump_pairs(out, state, idx, depth, canon_key, canon_member, cs);
    /* a nested object of cdc.null members only decodes again as an empty table: [] */
    if (rc == 0 && depth > 0 && out->len == start + 2) {
        strbuf_truncate(out, start);
        strbuf_puts(out, "[]");
    }
    return rc;
}

/* Numbers by value: an integral float that fits int64 dumps as that integer. */
static int canon_value(strbuf *out, lua_State *state, int idx, int depth, void *ud)
{
    canon_state *cs = ud;
    size_t len;
    const char *s;
    switch (lua_type(state, idx)) {
    case LUA_TSTRING:
        s = lua_tolstring(state, idx, &len);
        fuzz_dump_bytes(out, 's', s, len);
        return 0;
    case LUA_TBOOLEAN:
        strbuf_putc(out, lua_toboolean(state, idx) ? 't' : 'f');
        return 0;
    case LUA_TNUMBER:
        if (lua_isinteger(state, idx)) {
            strbuf_printf(out, "i%lld,", (long long)lua_tointeger(state, idx));
        } else {
            double v = (double)lua_tonumber(state, idx);
            if (!isfinite(v)) return -1;
            if (v == floor(v) && v >= -9223372036854775808.0 && v < 9223372036854775808.0)
                strbuf_printf(out, "i%lld,", (long long)v);
            else
                strbuf_printf(out, "d%a,", v);
        }
        return 0;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(state, idx) != row_json_null()) return -1;
        cs->lossy = true; /* an array element (members are left out before) */
        strbuf_putc(out, 'N');
        return 0;
    case LUA_TTABLE:
        break;
    default:
        return -1;
    }
    if (depth > cs->max_depth) cs->max_depth = depth;
    if (depth > 2 * SAFE_DEPTH) {
        cs->too_deep = true;
        return -1;
    }
    idx = lua_absindex(state, idx);
    if (!lua_checkstack(state, 2)) fuzz_fail("Lua stack exhausted");
    bool array = lua_rawgeti(state, idx, 1) != LUA_TNIL;
    lua_pop(state, 1);
    if (!array && count_keys(state, idx) == 0) array = true; /* {} is written as [] */
    if (!array) return canon_object(out, state, idx, depth, cs);
    lua_Integer n = (lua_Integer)lua_rawlen(state, idx);
    if ((size_t)n > cs->max_keys) cs->max_keys = (size_t)n;
    strbuf_putc(out, '[');
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(state, idx, i);
        int rc = lua_isnil(state, -1) ? -1 : canon_value(out, state, -1, depth + 1, cs);
        lua_pop(state, 1);
        if (rc != 0) return -1;
        strbuf_putc(out, ',');
    }
    strbuf_putc(out, ']');
    return 0;
}

/* The row at idx: always an object, whatever its keys. Returns 0 or -1 (not a valid row). */
static int canon_row(strbuf *out, lua_State *state, int idx, canon_state *cs)
{
    memset(cs, 0, sizeof *cs);
    strbuf_reset(out);
    if (lua_type(state, idx) != LUA_TTABLE) return -1;
    return canon_object(out, state, idx, 0, cs);
}

/* ---- the checks ---- */

typedef struct {
    size_t n;
    bool sorted;
    const char *prev;
    size_t prev_len;
} key_log;

static int on_key(void *ud, const char *key, size_t len, char *err, size_t errlen)
{
    key_log *k = ud;
    (void)err;
    (void)errlen;
    if (k->sorted && k->n > 0) {
        size_t m = len < k->prev_len ? len : k->prev_len;
        int c = memcmp(k->prev, key, m);
        if (c > 0 || (c == 0 && k->prev_len >= len))
            fuzz_fail("sorted keys out of order (or repeated): \"%.*s\" after \"%.*s\"", (int)len,
                      key, (int)k->prev_len, k->prev);
    }
    k->prev = key; /* anchored in the row table for the whole call */
    k->prev_len = len;
    k->n++;
    return 0;
}

static bool same(const strbuf *a, const strbuf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static void check_serializer(int row, bool sorted, const strbuf *expect, int expect_rc,
                             const canon_state *cs)
{
    static strbuf out, again, line;
    canon_state cs2;
    key_log keys = {0, sorted, NULL, 0};
    char err[512] = "";
    int top = lua_gettop(L);
    strbuf_reset(&out);
    strbuf_puts(&out, "prefix"); /* appends, does not overwrite */
    int rc = row_json_append(&out, L, row, sorted, on_key, &keys, err, sizeof err);
    if (lua_gettop(L) != top) fuzz_fail("row_json_append changed the stack (%d)", rc);
    if (memcmp(out.data, "prefix", 6) != 0) fuzz_fail("row_json_append overwrote the buffer");
    const char *how = sorted ? "sorted" : "unsorted";
    if (rc != 0) {
        if (rc != -1 || !err[0])
            fuzz_fail("row_json_append (%s) returned %d, \"%s\"", how, rc, err);
        bool safe = expect_rc == 0 && cs->max_depth <= SAFE_DEPTH && cs->max_keys <= SAFE_KEYS;
        if (safe)
            fuzz_fail("row_json_append (%s) rejected a valid row: %s; the row: %.*s", how, err,
                      (int)expect->len, expect->data);
        return;
    }
    if (expect_rc != 0 && !cs->too_deep)
        fuzz_fail("row_json_append (%s) accepted an invalid row: %s", how, out.data + 6);
    size_t columns = 0;
    lua_pushnil(L);
    while (lua_next(L, row) != 0) {
        lua_pop(L, 1);
        columns++;
    }
    if (keys.n != columns)
        fuzz_fail("on_key (%s) called %zu times for %zu columns", how, keys.n, columns);

    /* the output decodes again, to the same row */
    char derr[256];
    if (fuzz_decode(NULL, L, out.data + 6, out.len - 6, JSON_OBJECT_ONLY, derr, sizeof derr) != 0)
        fuzz_fail("row_json_append (%s) wrote invalid JSON (%s): %s", how, derr, out.data + 6);
    if (canon_row(&again, L, -1, &cs2) != 0 && !cs->lossy)
        fuzz_fail("row_json_append (%s) output decodes to no valid row: %s", how, out.data + 6);
    lua_pop(L, 1);
    if (!cs->lossy && !same(expect, &again))
        fuzz_fail("row_json_append (%s) changed the row:\n  in:  %.*s\n  out: %.*s\n  json: %s",
                  how, (int)expect->len, expect->data, (int)again.len, again.data, out.data + 6);

    /* the --dry-run line is "table TAB (sorted row) NL" */
    if (sorted) {
        strbuf_reset(&line);
        strbuf_puts(&line, "x");
        err[0] = '\0';
        if (row_json_append_line(&line, "tbl", L, row, err, sizeof err) != 0)
            fuzz_fail("row_json_append_line failed where row_json_append did not: %s", err);
        if (lua_gettop(L) != top) fuzz_fail("row_json_append_line changed the stack");
        if (line.len != out.len - 6 + 6 || memcmp(line.data, "xtbl\t", 5) != 0 ||
            memcmp(line.data + 5, out.data + 6, out.len - 6) != 0 ||
            line.data[line.len - 1] != '\n')
            fuzz_fail("row_json_append_line wrote %s", line.data);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static strbuf expect;
    fuzz_input in = fuzz_split(data, size);
    unsigned opts = in.tail_len ? (unsigned char)in.tail[0] : 0;
    char err[256];
    /* A Lua state of its own per input, closed at the end: everything Lua allocated is freed in
     * the same run, so libFuzzer's leak check (run whenever mallocs and frees differ) stays
     * quiet and finds the leaks that are real. */
    L = luaL_newstate();
    if (!L) fuzz_fail("out of memory");
    if (fuzz_decode(NULL, L, in.text, in.text_len, 0, err, sizeof err) != 0) {
        lua_close(L);
        return 0;
    }
    if (lua_type(L, 1) == LUA_TTABLE && opts) apply_options(1, opts);
    canon_state cs;
    int expect_rc = canon_row(&expect, L, 1, &cs);
    if (lua_gettop(L) != 1) fuzz_fail("canonical dump changed the stack");
    check_serializer(1, false, &expect, expect_rc, &cs);
    check_serializer(1, true, &expect, expect_rc, &cs);

    /* a failed line leaves the buffer as it was */
    static strbuf line;
    strbuf_reset(&line);
    strbuf_puts(&line, "kept");
    if (row_json_append_line(&line, "tbl", L, 1, err, sizeof err) != 0 &&
        (line.len != 4 || memcmp(line.data, "kept", 4) != 0))
        fuzz_fail("row_json_append_line failed but changed the buffer: %s", line.data);
    lua_close(L);
    return 0;
}
