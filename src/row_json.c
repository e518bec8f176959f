/*
 * row_json — Lua row table → JSON object text (see include/cdcpipe/row_json.h).
 */
#include "cdcpipe/row_json.h"
#include "cdcpipe/json_fast.h"
#include "cdcpipe/xalloc.h"
#include "cdcpipe/errbuf.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#define MAX_NESTING     32
#define MAX_SORTED_KEYS 1024
#define SORTED_ON_STACK 32 /* keys sorted without a heap array */

static const char null_sentinel = 0;

void *row_json_null(void)
{
    return (void *)&null_sentinel;
}

/* One byte into out: the usual case writes it in place. */
static inline void put(strbuf *out, char c)
{
    if (out->len + 2 <= out->cap) {
        out->data[out->len++] = c;
        out->data[out->len] = '\0';
    } else {
        strbuf_putc(out, c);
    }
}

/* Copies to d the bytes at the start of s[0..len) that a JSON string takes as they are (no
 * quote, backslash or control character) and returns how many: eight at a time where the byte
 * order allows. d has room for len bytes. */
static size_t copy_plain(char *d, const char *s, size_t len)
{
    size_t i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    for (; len - i >= 8; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
        /* a byte's high bit: it is a quote, a backslash or below 0x20 (borrows only mark bytes
         * above a marked one: the block then goes byte by byte below) */
        if ((((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x)) & highs) break;
        memcpy(d + i, &x, 8);
    }
#endif
    for (; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\') break;
        d[i] = (char)c;
    }
    return i;
}

void row_json_string(strbuf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (out->len + len + 3 > out->cap) strbuf_reserve(out, len + 2);
    char *d = out->data + out->len;
    *d = '"';
    size_t plain = copy_plain(d + 1, s, len); /* the usual string needs no escape */
    out->len += plain + 1;
    if (plain == len) {
        d[plain + 1] = '"';
        d[plain + 2] = '\0';
        out->len++;
        return;
    }
    size_t start = plain;
    for (size_t i = plain; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        strbuf_append(out, s + start, i - start);
        start = i + 1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        strbuf_append(out, esc, n);
    }
    strbuf_append(out, s + start, len - start);
    strbuf_putc(out, '"');
}

static void append_integer(strbuf *out, lua_Integer v)
{
    char digits[24], *p = digits + sizeof digits;
    uint64_t m = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + m % 10);
        m /= 10;
    } while (m);
    if (v < 0) *--p = '-';
    strbuf_append(out, p, (size_t)(digits + sizeof digits - p));
}

static int append_number(strbuf *out, lua_State *L, int idx, const char *column, char *err,
                         size_t errlen)
{
    if (lua_isinteger(L, idx)) {
        append_integer(out, lua_tointeger(L, idx));
        return 0;
    }
    double v = lua_tonumber(L, idx);
    if (!isfinite(v)) {
        errbuf_set(err, errlen, "column \"%s\": %s cannot be written to ClickHouse", column,
                   isnan(v) ? "NaN" : "an infinite number");
        return -1;
    }
    if (v == floor(v) && fabs(v) <= 9007199254740992.0) {
        strbuf_printf(out, "%.0f", v);
        return 0;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, sizeof buf, "%.16g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, sizeof buf, "%.17g", v);
    strbuf_puts(out, buf);
    return 0;
}

static int append_value(strbuf *out, lua_State *L, int idx, const char *column, int depth,
                        bool sorted, char *err, size_t errlen);

static int append_array(strbuf *out, lua_State *L, int idx, const char *column, int depth,
                        bool sorted, char *err, size_t errlen)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    put(out, '[');
    for (lua_Integer i = 1; i <= n; i++) {
        if (i > 1) put(out, ',');
        lua_rawgeti(L, idx, i);
        int rc = append_value(out, L, lua_gettop(L), column, depth + 1, sorted, err, errlen);
        lua_pop(L, 1);
        if (rc != 0) return -1;
    }
    put(out, ']');
    return 0;
}

/* A key of a sorted object: keys may contain NUL bytes, so they carry their length; the
 * value's stack slot (0: look it up again; CAPTURED: a string or an integer, held here). */
typedef struct {
    const char *s;
    size_t len;
    int value;
    int type;        /* CAPTURED: LUA_TSTRING (str, n) or LUA_TNUMBER (integer) */
    const char *str; /* anchored in the table, as the key is */
    size_t n;
    lua_Integer integer;
} sort_key;

#define CAPTURED (-1)

static int compare_keys(const void *a, const void *b)
{
    const sort_key *x = a, *y = b;
    if (x->len && y->len && x->s[0] != y->s[0]) /* the usual case: no call to memcmp */
        return (unsigned char)x->s[0] < (unsigned char)y->s[0] ? -1 : 1;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Writes an object; top-level (depth 0) keys are reported through on_key. */
static int append_object(strbuf *out, lua_State *L, int idx, const char *column, int depth,
                         bool sorted, row_json_key_fn on_key, void *ud, char *err, size_t errlen)
{
    luaL_checkstack(L, 4, "row nesting");
    put(out, '{');
    bool first = true;
    if (sorted) {
        /* Sorting is for people and tests (--dry-run, cdcpipe test, cdc.json), not the insert
         * path: the keys of a small object on the stack, of a larger one in a heap array. */
        sort_key few[SORTED_ON_STACK];
        sort_key *keys = few;
        size_t n = 0;
        const int top = lua_gettop(L);
        /* the values of the first SORTED_ON_STACK keys stay on the stack, in the order found */
        luaL_checkstack(L, SORTED_ON_STACK + 2, "row columns");
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            if (lua_type(L, -2) != LUA_TSTRING) {
                errbuf_set(err, errlen, "%s%s%s has a key that is not a string (a %s)",
                           depth ? "column \"" : "row", depth ? column : "", depth ? "\"" : "",
                           luaL_typename(L, -2));
                lua_settop(L, top);
                if (keys != few) free(keys);
                return -1;
            }
            if (n == MAX_SORTED_KEYS) {
                lua_settop(L, top);
                errbuf_set(err, errlen, "row has more than %d columns", MAX_SORTED_KEYS);
                if (keys != few) free(keys);
                return -1;
            }
            if (n == SORTED_ON_STACK) {
                keys = xrealloc(NULL, MAX_SORTED_KEYS, sizeof *keys);
                memcpy(keys, few, sizeof few);
            }
            /* strings and integers (most columns) are taken off the stack at once */
            int type = lua_type(L, -1);
            if (type == LUA_TSTRING) {
                keys[n].str = lua_tolstring(L, -1, &keys[n].n);
            } else if (type == LUA_TNUMBER && lua_isinteger(L, -1)) {
                keys[n].integer = lua_tointeger(L, -1);
            } else {
                type = LUA_TNONE;
            }
            if (type != LUA_TNONE) {
                lua_pop(L, 1);
                keys[n].value = CAPTURED;
                keys[n].type = type;
            } else if (n < SORTED_ON_STACK) {
                lua_insert(L, -2); /* ... value key */
                keys[n].value = lua_gettop(L) - 1;
            } else {
                lua_pop(L, 1);
                keys[n].value = 0;
            }
            keys[n].s = lua_tolstring(L, -1, &keys[n].len); /* anchored in the table itself */
            n++;
        }
        if (n > SORTED_ON_STACK) {
            qsort(keys, n, sizeof keys[0], compare_keys);
        } else { /* insertion sort: the usual row is a few columns */
            for (size_t i = 1; i < n; i++) {
                sort_key k = keys[i];
                size_t j = i;
                for (; j > 0 && compare_keys(&keys[j - 1], &k) > 0; j--)
                    keys[j] = keys[j - 1];
                keys[j] = k;
            }
        }
        int rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (depth == 0 && on_key && on_key(ud, keys[i].s, keys[i].len, err, errlen) != 0) {
                rc = -1;
                break;
            }
            if (!first) put(out, ',');
            first = false;
            row_json_string(out, keys[i].s, keys[i].len);
            put(out, ':');
            int value = keys[i].value;
            if (value == CAPTURED) {
                if (keys[i].type == LUA_TSTRING)
                    row_json_string(out, keys[i].str, keys[i].n);
                else
                    append_integer(out, keys[i].integer);
                continue;
            }
            if (!value) {
                lua_pushlstring(L, keys[i].s, keys[i].len);
                lua_rawget(L, idx);
                value = lua_gettop(L);
            }
            rc = append_value(out, L, value, depth ? column : keys[i].s, depth + 1, sorted, err,
                              errlen);
            if (!keys[i].value) lua_pop(L, 1);
        }
        lua_settop(L, top);
        if (keys != few) free(keys);
        if (rc != 0) return -1;
    } else {
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            /* stack: ... key value */
            if (lua_type(L, -2) != LUA_TSTRING) {
                errbuf_set(err, errlen, "%s%s%s has a key that is not a string (a %s)",
                           depth ? "column \"" : "row", depth ? column : "", depth ? "\"" : "",
                           luaL_typename(L, -2));
                lua_pop(L, 2);
                return -1;
            }
            size_t klen;
            const char *key = lua_tolstring(L, -2, &klen);
            if (depth == 0 && on_key && on_key(ud, key, klen, err, errlen) != 0) {
                lua_pop(L, 2);
                return -1;
            }
            if (!first) put(out, ',');
            first = false;
            row_json_string(out, key, klen);
            put(out, ':');
            int rc = append_value(out, L, lua_gettop(L), depth ? column : key, depth + 1, sorted,
                                  err, errlen);
            lua_pop(L, 1);
            if (rc != 0) {
                lua_pop(L, 1);
                return -1;
            }
        }
    }
    put(out, '}');
    return 0;
}

static int append_value(strbuf *out, lua_State *L, int idx, const char *column, int depth,
                        bool sorted, char *err, size_t errlen)
{
    size_t len;
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        row_json_string(out, s, len);
        return 0;
    case LUA_TNUMBER:
        return append_number(out, L, idx, column, err, errlen);
    case LUA_TBOOLEAN:
        strbuf_puts(out, lua_toboolean(L, idx) ? "true" : "false");
        return 0;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == row_json_null()) {
            strbuf_puts(out, "null");
            return 0;
        }
        break;
    case LUA_TTABLE:
        if (depth > MAX_NESTING) {
            errbuf_set(err, errlen, "column \"%s\" nests tables deeper than %d levels", column,
                       MAX_NESTING);
            return -1;
        }
        json_lazy_fill(L, idx);
        lua_rawgeti(L, idx, 1);
        int is_array = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (!is_array) {
            lua_pushnil(L);
            is_array = lua_next(L, idx) == 0; /* empty table: [] */
            if (!is_array) lua_pop(L, 2);
        }
        if (is_array) return append_array(out, L, idx, column, depth, sorted, err, errlen);
        return append_object(out, L, idx, column, depth, sorted, NULL, NULL, err, errlen);
    default:
        break;
    }
    errbuf_set(err, errlen, "column \"%s\": a %s cannot be written to ClickHouse", column,
               luaL_typename(L, idx));
    return -1;
}

int row_json_append(strbuf *out, lua_State *L, int idx, bool sorted, row_json_key_fn on_key,
                    void *ud, char *err, size_t errlen)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) != LUA_TTABLE) {
        errbuf_set(err, errlen, "a row must be a table, got a %s", luaL_typename(L, idx));
        return -1;
    }
    json_lazy_fill(L, idx);
    int base = lua_gettop(L);
    int rc = append_object(out, L, idx, "", 0, sorted, on_key, ud, err, errlen);
    lua_settop(L, base);
    return rc;
}

int row_json_append_line(void *ud, const char *table, lua_State *L, int idx, char *err,
                         size_t errlen)
{
    strbuf *out = ud;
    size_t len = out->len;
    strbuf_puts(out, table);
    put(out, '\t');
    if (row_json_append(out, L, idx, true, NULL, NULL, err, errlen) != 0) {
        strbuf_truncate(out, len);
        return -1;
    }
    put(out, '\n');
    return 0;
}
