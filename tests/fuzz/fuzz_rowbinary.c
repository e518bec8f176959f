/*
 * fuzz_rowbinary — libFuzzer target for the ClickHouse type parser (ch_type.h) and the RowBinary
 * encoder (rowbinary.h).
 *
 * Input: a type text, optionally followed by a NUL byte, a JSON value, and optionally a second
 * NUL byte and one option byte:
 *   bits 0-1: the server's time zone: UTC, unknown (NULL), Etc/GMT-3, Europe/Berlin
 *   bit 2:    strings "null" in the value become cdc.null
 * Checked, for any input:
 *   - ch_type_parse returns OK with a tree, or INVALID/UNSUPPORTED with no tree and a message;
 *   - an OK type formats to a text that parses again to the same text (ch_type_format is a
 *     fixed point);
 *   - the value, as the row {c = value}, is encoded after a prefix: a refusal (-1) has a message
 *     and leaves the buffer exactly as it was; an acceptance appends bytes that a RowBinary
 *     reader of the type (written here, independently) consumes exactly, with Bool bytes and
 *     Nullable flags 0/1 and Enum values among the type's; encoding twice gives the same bytes;
 *   - the Lua stack is left as it was; rowbinary_check_column answers 0 or -1 with a message.
 *
 * README: built only with -DCDCPIPE_FUZZ=ON and clang (see tests/fuzz/CMakeLists.txt); run it by
 * hand as  build-fuzz/tests/fuzz/fuzz_rowbinary -dict=tests/fuzz/rowbinary.dict CORPUS_DIR
 * tests/fuzz/corpus_rowbinary  and replay a finding as  build-fuzz/tests/fuzz/fuzz_rowbinary FILE
 */
#include <lauxlib.h>
#include <lualib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdcpipe/ch_type.h"
#include "cdcpipe/json_lua.h"
#include "cdcpipe/row_json.h"
#include "cdcpipe/rowbinary.h"
#include "cdcpipe/strbuf.h"
#include "fuzz_common.h"

enum { OPT_ZONE = 3, OPT_NULL = 4 };

/* ---- an independent RowBinary reader: consumes one value of type t ---- */

typedef struct {
    const unsigned char *p, *end;
} reader;

static bool take(reader *r, size_t n, const unsigned char **at)
{
    if ((size_t)(r->end - r->p) < n) return false;
    if (at) *at = r->p;
    r->p += n;
    return true;
}

static bool take_leb128(reader *r, size_t *n)
{
    *n = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        const unsigned char *b;
        if (!take(r, 1, &b)) return false;
        *n |= (size_t)(*b & 0x7f) << shift;
        if (!(*b & 0x80)) return true;
    }
    return false;
}

static bool read_value(reader *r, const ch_type *t)
{
    static const unsigned char sizes[] = {
        [CH_INT8] = 1,     [CH_INT16] = 2,      [CH_INT32] = 4,    [CH_INT64] = 8,
        [CH_INT128] = 16,  [CH_INT256] = 32,    [CH_UINT8] = 1,    [CH_UINT16] = 2,
        [CH_UINT32] = 4,   [CH_UINT64] = 8,     [CH_UINT128] = 16, [CH_UINT256] = 32,
        [CH_FLOAT32] = 4,  [CH_FLOAT64] = 8,    [CH_DATE] = 2,     [CH_DATE32] = 4,
        [CH_DATETIME] = 4, [CH_DATETIME64] = 8, [CH_UUID] = 16,    [CH_IPV4] = 4,
        [CH_IPV6] = 16,
    };
    const unsigned char *b;
    size_t n;
    switch (t->kind) {
    case CH_BOOL:
        return take(r, 1, &b) && *b <= 1;
    case CH_STRING:
        return take_leb128(r, &n) && take(r, n, NULL);
    case CH_FIXED_STRING:
    case CH_DECIMAL:
        return take(r, t->size, NULL);
    case CH_ENUM8:
    case CH_ENUM16: {
        if (!take(r, t->kind == CH_ENUM8 ? 1 : 2, &b)) return false;
        int v = t->kind == CH_ENUM8 ? (signed char)b[0] : (int16_t)(b[0] | b[1] << 8);
        for (size_t i = 0; i < t->nitems; i++)
            if (t->items[i].value == v) return true;
        return false;
    }
    case CH_LOW_CARDINALITY:
        return read_value(r, t->children[0]);
    case CH_NULLABLE:
        if (!take(r, 1, &b) || *b > 1) return false;
        return *b == 1 || read_value(r, t->children[0]);
    case CH_ARRAY:
    case CH_MAP:
        if (!take_leb128(r, &n)) return false;
        for (size_t i = 0; i < n; i++)
            for (size_t c = 0; c < t->nchildren; c++)
                if (!read_value(r, t->children[c])) return false;
        return true;
    case CH_TUPLE:
        for (size_t c = 0; c < t->nchildren; c++)
            if (!read_value(r, t->children[c])) return false;
        return true;
    default:
        return take(r, sizes[t->kind], NULL);
    }
}

/* ---- the value ---- */

/* Replaces the strings "null" in the table at idx (and tables in it) with cdc.null. */
static void nulls(lua_State *L, int idx, int depth)
{
    if (depth > 64 || !lua_checkstack(L, 4)) return;
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (lua_type(L, -1) == LUA_TTABLE) {
            nulls(L, -1, depth + 1);
        } else if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "null") == 0) {
            lua_pushvalue(L, -2);
            lua_pushlightuserdata(L, row_json_null());
            lua_rawset(L, idx); /* assigning an existing field keeps lua_next valid */
        }
        lua_pop(L, 1);
    }
}

static void check_type(const ch_type *t, const char *text, size_t len)
{
    strbuf once = {0}, twice = {0};
    ch_type_format(t, &once);
    ch_type *again = NULL;
    char err[512] = "";
    if (ch_type_parse(once.data, once.len, &again, err, sizeof err) != CH_TYPE_OK)
        fuzz_fail("\"%.*s\" formats as \"%s\", which does not parse: %s", (int)len, text, once.data,
                  err);
    ch_type_format(again, &twice);
    if (once.len != twice.len || memcmp(once.data, twice.data, once.len) != 0)
        fuzz_fail("\"%s\" parses and formats as \"%s\"", once.data, twice.data);
    ch_type_free(again);
    strbuf_free(&once);
    strbuf_free(&twice);
}

static void check_encoder(lua_State *L, const ch_type *t, const char *zone)
{
    static strbuf out, again;
    char err[1024] = "";
    rowbinary_column col = {"c", t};
    int row = lua_gettop(L), rc;

    rc = rowbinary_check_column("c", t, zone, err, sizeof err);
    if (rc != 0 && (rc != -1 || !err[0])) fuzz_fail("rowbinary_check_column: %d \"%s\"", rc, err);

    strbuf_reset(&out);
    strbuf_puts(&out, "prefix");
    err[0] = '\0';
    rc = rowbinary_append_row(&out, L, row, &col, 1, zone, err, sizeof err);
    if (lua_gettop(L) != row) fuzz_fail("the encoder changed the Lua stack (rc %d)", rc);
    if (out.len < 6 || memcmp(out.data, "prefix", 6) != 0) fuzz_fail("the prefix changed");
    if (rc == -1) {
        if (!err[0]) fuzz_fail("refused without a message");
        if (out.len != 6 || out.data[6] != '\0')
            fuzz_fail("refused but the buffer changed: %s", err);
        return;
    }
    if (rc != 0) fuzz_fail("rowbinary_append_row returned %d", rc);
    reader r = {(const unsigned char *)out.data + 6, (const unsigned char *)out.data + out.len};
    if (!read_value(&r, t) || r.p != r.end)
        fuzz_fail("the %zu bytes written are not one value of the type", out.len - 6);

    strbuf_reset(&again);
    if (rowbinary_append_row(&again, L, row, &col, 1, zone, err, sizeof err) != 0 ||
        again.len != out.len - 6 || memcmp(again.data, out.data + 6, again.len) != 0)
        fuzz_fail("encoding the same row twice gave different bytes");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const zones[] = {"UTC", NULL, "Etc/GMT-3", "Europe/Berlin"};
    fuzz_input in = fuzz_split(data, size);
    ch_type *t = (ch_type *)1;
    char err[512] = "";
    int rc = ch_type_parse(in.text, in.text_len, &t, err, sizeof err);
    if (rc == CH_TYPE_OK) {
        if (!t) fuzz_fail("CH_TYPE_OK without a tree");
        check_type(t, in.text, in.text_len);
    } else {
        if (rc != CH_TYPE_INVALID && rc != CH_TYPE_UNSUPPORTED) fuzz_fail("ch_type_parse: %d", rc);
        if (t) fuzz_fail("a failed parse left a tree");
        if (!err[0]) fuzz_fail("a failed parse without a message");
        return 0;
    }
    if (!in.tail) {
        ch_type_free(t);
        return 0;
    }

    fuzz_input value = fuzz_split((const uint8_t *)in.tail, in.tail_len);
    unsigned opts = value.tail_len ? (unsigned char)value.tail[0] : 0;
    /* a Lua state per input, closed at the end, so the leak check sees only real leaks */
    lua_State *L = luaL_newstate();
    if (!L) fuzz_fail("out of memory");
    if (fuzz_decode(NULL, L, value.text, value.text_len, 0, err, sizeof err) == 0) {
        if ((opts & OPT_NULL) && lua_type(L, -1) == LUA_TTABLE) nulls(L, -1, 0);
        if ((opts & OPT_NULL) && lua_type(L, -1) == LUA_TSTRING &&
            strcmp(lua_tostring(L, -1), "null") == 0) {
            lua_pop(L, 1);
            lua_pushlightuserdata(L, row_json_null());
        }
        lua_createtable(L, 0, 1);
        lua_insert(L, -2);
        lua_setfield(L, -2, "c"); /* the row {c = value} */
        check_encoder(L, t, zones[opts & OPT_ZONE]);
    }
    lua_close(L);
    ch_type_free(t);
    return 0;
}
