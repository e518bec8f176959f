/*
 * json_fast — one validating pass over JSON text into Lua values, lazy nested objects (see
 * include/cdcpipe/json_fast.h).
 *
 * A recursive descent over the bytes that builds Lua values, and for an object that will be lazy
 * a skip that only validates it (one loop, no recursion: skip_container). Every check the general
 * path makes is made here too — grammar, nesting depth, control characters and escapes in
 * strings, strict UTF-8, number syntax — so that a text accepted here is one the general path
 * accepts with the same value; anything unusual returns false and the caller gives up.
 *
 * A lazy table's hidden entries: [1] the source string, [2] the span (offset << 32 | length).
 * They stay while the members go in and are removed once they all are, so a build that runs out
 * of memory half-way can simply be done again.
 */
#include "cdcpipe/json_fast.h"
#include "cdcpipe/json_lua.h"
#include "cdcpipe/utf8.h"
#include "cdcpipe/xalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

/* Lazy tables need 64-bit Lua integers for their spans; elsewhere every object is built. */
#if LUA_MAXINTEGER >= INT64_MAX
#define LAZY_POSSIBLE 1
#else
#define LAZY_POSSIBLE 0
#endif

/* A lazy object of up to this many members gets room for them when it is pushed. */
#define LAZY_PRESIZE 8

/* The registry key of the lazy tables' metatable. */
static const char lazy_mt_key = 0;

/* ---- character classes inside strings ---- */

enum { C_PLAIN = 0, C_QUOTE, C_BACKSLASH, C_CONTROL, C_HIGH };

#define ROW16(c) c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c
static const unsigned char string_class[256] = {
    ROW16(C_CONTROL), ROW16(C_CONTROL), /* 0x00-0x1f: raw control characters are errors */
    [0x22] = C_QUOTE, [0x5c] = C_BACKSLASH, [0x80] = ROW16(C_HIGH), ROW16(C_HIGH), ROW16(C_HIGH),
    ROW16(C_HIGH),    ROW16(C_HIGH),        ROW16(C_HIGH),          ROW16(C_HIGH), ROW16(C_HIGH),
};
#undef ROW16

/* ---- numbers ---- */

int json_push_number(lua_State *L, const char *s, size_t len)
{
    bool integral = true;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.' || s[i] == 'e' || s[i] == 'E') {
            integral = false;
            break;
        }
    }
    if (integral) {
        size_t i = 0;
        bool negative = s[0] == '-';
        if (negative) i = 1;
        uint64_t magnitude = 0;
        bool overflow = false;
        if (len - i <= 19) { /* below 10^19: cannot overflow uint64 */
            for (; i < len; i++)
                magnitude = magnitude * 10 + (unsigned)(s[i] - '0');
        } else {
            for (; i < len; i++) {
                unsigned digit = (unsigned)(s[i] - '0');
                if (magnitude > (UINT64_MAX - digit) / 10) {
                    overflow = true;
                    break;
                }
                magnitude = magnitude * 10 + digit;
            }
        }
        uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        if (!overflow && magnitude <= limit) {
            lua_Integer v = negative ? (lua_Integer)(0 - magnitude) : (lua_Integer)magnitude;
            if (negative && magnitude == (uint64_t)INT64_MAX + 1) v = INT64_MIN;
            lua_pushinteger(L, v);
            return 0;
        }
    }
    char buf[512];
    if (len >= sizeof buf) return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    lua_pushnumber(L, strtod(buf, NULL));
    return 0;
}

/* ---- the parser ---- */

typedef struct {
    lua_State *L;
    const unsigned char *p, *end;
    const unsigned char *src; /* where span offsets count from: the source string's bytes */
    bool lazy;                /* objects below the top level become lazy tables */
    bool unwrap;              /* a top-level "schema" member: give up (general path) */
    int src_idx;              /* stack slot of the source string */
    int mt_idx;               /* stack slot of the lazy metatable */
    const char *text;         /* the source text, pushed as a string when first needed */
    size_t len;
    bool have_src;
    struct key_cache *keys; /* the state's key strings (key_cache_push), its table at keys_idx */
    int keys_idx;
    /* the top-level "source" member's "ts_ms" (json_fast_push's source_ts): watch_source: wanted;
     * watching: the value being built is that member's; watched: it was a lazy object */
    json_source_ts *source_ts;
    bool watch_source, watching, watched;
} parser;

static const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* Whitespace as the parser takes it: most texts have none between tokens, so one compare. */
static inline const unsigned char *skip_ws_fast(const unsigned char *p, const unsigned char *end)
{
    if (p<end && * p> ' ') return p;
    return skip_ws(p, end);
}

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Four hex digits at p into *cp; false when they are not. */
static bool hex4(const unsigned char *p, unsigned *cp)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_digit(p[i]);
        if (h < 0) return false;
        v = v << 4 | (unsigned)h;
    }
    *cp = v;
    return true;
}

/* The first byte at or after p that a string cannot take as it is (quote, backslash, control,
 * non-ASCII), or end: sixteen bytes at a time with SSE2, eight where the byte order allows. */
static const unsigned char *skip_plain(const unsigned char *p, const unsigned char *end)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'),
                  space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* signed bytes below 0x20: control characters and every non-ASCII byte */
        __m128i m =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
                         _mm_cmplt_epi8(x, space));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits) return p + __builtin_ctz(bits);
        p += 16;
    }
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
        /* a byte's high bit: it is a quote, a backslash, below 0x20 or non-ASCII; borrows can
         * only mark bytes above the first marked one, and only the first one counts */
        uint64_t m = (((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x) | x) & highs;
        if (m) return p + (__builtin_ctzll(m) >> 3);
        p += 8;
    }
#endif
    while (p < end && string_class[*p] == C_PLAIN)
        p++;
    return p;
}

/* The first byte at or after p that is not a decimal digit, or end. */
static const unsigned char *skip_digits(const unsigned char *p, const unsigned char *end)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        /* per byte: high nibble 3, and adding 6 keeps it 3 (low nibble 0-9); the first byte
         * that fails is the lowest one marked (a carry only runs upward) */
        uint64_t bad = ((x & 0xf0f0f0f0f0f0f0f0u) ^ 0x3030303030303030u) |
                       (((x + 0x0606060606060606u) & 0xf0f0f0f0f0f0f0f0u) ^ 0x3030303030303030u);
        if (bad) return p + (__builtin_ctzll(bad) >> 3);
        p += 8;
    }
#endif
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    return p;
}

/* p just after a string's opening quote: validates the string up to its closing quote and
 * returns where that quote is, or NULL; *escaped is set when it has escapes. Only escapes the
 * general path decodes the same way are accepted: a \u surrogate must be a high one followed by
 * a \u low one. */
static inline const unsigned char *string_end(const unsigned char *p, const unsigned char *end,
                                              bool *escaped)
{
    for (;;) {
        p = skip_plain(p, end);
        if (p >= end) return NULL;
        if (*p == '"') return p; /* the usual end */
        switch (string_class[*p]) {
        case C_QUOTE:
            return p;
        case C_BACKSLASH:
            *escaped = true;
            if (end - p < 2) return NULL;
            switch (p[1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                p += 2;
                break;
            case 'u': {
                unsigned cp, lo;
                if (end - p < 6 || !hex4(p + 2, &cp)) return NULL;
                if (cp >= 0xd800 && cp <= 0xdfff) {
                    if (cp >= 0xdc00 || end - p < 12 || p[6] != '\\' || p[7] != 'u' ||
                        !hex4(p + 8, &lo) || lo < 0xdc00 || lo > 0xdfff)
                        return NULL;
                    p += 12;
                } else {
                    p += 6;
                }
                break;
            }
            default:
                return NULL;
            }
            break;
        case C_CONTROL:
            return NULL;
        default: { /* a run of non-ASCII bytes: strict UTF-8 as the general path checks it */
            const unsigned char *q = p + 1;
            while (q < end && *q >= 0x80)
                q++;
            if (!utf8_valid(p, (size_t)(q - p))) return NULL;
            p = q;
        }
        }
    }
}

/* f->p at '"': validates the string, sets its raw bytes (between the quotes) and whether it has
 * escapes, and moves past the closing quote. */
static bool scan_string(parser *f, const unsigned char **start, size_t *n, bool *escaped)
{
    const unsigned char *p = f->p + 1;
    bool esc = false;
    const unsigned char *q = string_end(p, f->end, &esc);
    if (!q) return false;
    *start = p;
    *n = (size_t)(q - p);
    *escaped = esc;
    f->p = q + 1;
    return true;
}

/* Appends the UTF-8 form of code point cp (at most U+10FFFF, no surrogate) to b. */
static void add_utf8(luaL_Buffer *b, unsigned cp)
{
    if (cp < 0x80) {
        luaL_addchar(b, (char)cp);
    } else if (cp < 0x800) {
        luaL_addchar(b, (char)(0xc0 | cp >> 6));
        luaL_addchar(b, (char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        luaL_addchar(b, (char)(0xe0 | cp >> 12));
        luaL_addchar(b, (char)(0x80 | (cp >> 6 & 0x3f)));
        luaL_addchar(b, (char)(0x80 | (cp & 0x3f)));
    } else {
        luaL_addchar(b, (char)(0xf0 | cp >> 18));
        luaL_addchar(b, (char)(0x80 | (cp >> 12 & 0x3f)));
        luaL_addchar(b, (char)(0x80 | (cp >> 6 & 0x3f)));
        luaL_addchar(b, (char)(0x80 | (cp & 0x3f)));
    }
}

/* Pushes the string whose raw bytes scan_string found (escapes already validated). */
static void push_string(lua_State *L, const unsigned char *s, size_t n, bool escaped)
{
    if (!escaped) {
        lua_pushlstring(L, (const char *)s, n);
        return;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const unsigned char *p = s, *end = s + n;
    while (p < end) {
        const unsigned char *q = p;
        while (q < end && *q != '\\')
            q++;
        luaL_addlstring(&b, (const char *)p, (size_t)(q - p));
        if (q >= end) break;
        unsigned cp = 0, lo = 0;
        switch (q[1]) {
        case 'b':
            luaL_addchar(&b, '\b');
            break;
        case 'f':
            luaL_addchar(&b, '\f');
            break;
        case 'n':
            luaL_addchar(&b, '\n');
            break;
        case 'r':
            luaL_addchar(&b, '\r');
            break;
        case 't':
            luaL_addchar(&b, '\t');
            break;
        case 'u':
            hex4(q + 2, &cp);
            if (cp >= 0xd800 && cp <= 0xdbff) {
                hex4(q + 8, &lo);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                q += 6;
            }
            add_utf8(&b, cp);
            q += 4;
            break;
        default: /* " \ / */
            luaL_addchar(&b, (char)q[1]);
        }
        p = q + 2;
    }
    luaL_pushresult(&b);
}

/* p at the first byte of a number: validates its syntax and returns the byte after it, or
 * NULL; *integral is cleared when it has a fraction or an exponent. */
static inline const unsigned char *number_end(const unsigned char *p, const unsigned char *end,
                                              bool *integral)
{
    if (*p == '-') p++;
    if (p >= end) return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        p = skip_digits(p + 1, end);
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        *integral = false;
        p++;
        if (p >= end || *p < '0' || *p > '9') return NULL;
        p = skip_digits(p + 1, end);
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *integral = false;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return NULL;
        p = skip_digits(p + 1, end);
    }
    return p;
}

/* f->p at the first byte of a number: validates its syntax and moves past it; *integral: it
 * has neither fraction nor exponent. */
static bool scan_number(parser *f, const unsigned char **start, size_t *n, bool *integral)
{
    bool whole = true;
    const unsigned char *q = number_end(f->p, f->end, &whole);
    if (!q) return false;
    *start = f->p;
    *n = (size_t)(q - f->p);
    *integral = whole;
    f->p = q;
    return true;
}

/* f->p at 't', 'f' or 'n': 1 true, 0 false, 2 null, -1 not a literal. */
static int scan_literal(parser *f)
{
    const unsigned char *p = f->p;
    size_t left = (size_t)(f->end - p);
    if (left >= 4 && memcmp(p, "true", 4) == 0) {
        f->p += 4;
        return 1;
    }
    if (left >= 5 && memcmp(p, "false", 5) == 0) {
        f->p += 5;
        return 0;
    }
    if (left >= 4 && memcmp(p, "null", 4) == 0) {
        f->p += 4;
        return 2;
    }
    return -1;
}

/* After a member or element: whitespace, then `close` (moved past: 1, the container is done) or
 * ',' and whitespace (0, another item follows); -1 for anything else. */
static int after_item(parser *f, unsigned char close)
{
    f->p = skip_ws_fast(f->p, f->end);
    if (f->p >= f->end) return -1;
    if (*f->p == close) {
        f->p++;
        return 1;
    }
    if (*f->p != ',') return -1;
    f->p = skip_ws_fast(f->p + 1, f->end);
    return 0;
}

/* What skip_container watches for in the members of the container itself: the last "ts_ms"
 * member that is not null (v, end: its value's text), or unsure: a member name with escapes. */
typedef struct {
    bool match, unsure;
    const unsigned char *v, *end;
} ts_watch;

/* Validates the container (object or array) at f->p and moves past it: the same checks as
 * build_value makes (grammar, depth, strings, numbers), in one loop over the bytes without
 * recursion. depth counts the containers open around it; *members (when not NULL) counts the
 * members of the container itself, w (when not NULL) watches them for "ts_ms". The kinds of the
 * open containers are bits of `object` (JSON_MAX_DEPTH of them at most). */
static inline __attribute__((always_inline)) bool skip_container_with(parser *f, int depth,
                                                                      size_t *members, ts_watch *w)
{
    const unsigned char *p = f->p, *end = f->end, *value_start = NULL;
    uint64_t object[(JSON_MAX_DEPTH + 63) / 64] = {0};
    int level = 0; /* containers open in this skip */
    bool in_object;
    size_t count = 0;

open: /* p at '{' or '[' */
    if (depth + level >= JSON_MAX_DEPTH) return false;
    in_object = *p == '{';
    if (in_object)
        object[level >> 6] |= (uint64_t)1 << (level & 63);
    else
        object[level >> 6] &= ~((uint64_t)1 << (level & 63));
    level++;
    p = skip_ws_fast(p + 1, end);
    if (p >= end) return false;
    if (*p == (in_object ? '}' : ']')) {
        p++;
        goto closed;
    }
    if (!in_object) goto value;

member: /* p at a member's name (whitespace before it: checked only when there is any) */
    if (p >= end) return false;
    if (*p != '"') {
        p = skip_ws(p, end);
        if (p >= end || *p != '"') return false;
    }
    {
        bool esc = false;
        const unsigned char *name = p + 1;
        p = string_end(name, end, &esc);
        if (!p) return false;
        if (w && level == 1) {
            w->match = !esc && p - name == 5 && memcmp(name, "ts_ms", 5) == 0;
            w->unsure |= esc;
        }
    }
    if (++p >= end) return false;
    if (*p != ':') {
        p = skip_ws(p, end);
        if (p >= end || *p != ':') return false;
    }
    p++;
    count += level == 1;

value: /* p at a value, or at whitespace before it (value_start: where a member's value is) */
    if (p >= end) return false;
    if (w && level == 1) value_start = p;
    switch (*p) {
    case ' ':
    case '\t':
    case '\n':
    case '\r':
        p = skip_ws(p, end);
        goto value;
    case '{':
    case '[':
        goto open;
    case '"': {
        bool esc = false;
        p = string_end(p + 1, end, &esc);
        if (!p) return false;
        p++;
        break;
    }
    case 't':
        if (end - p < 4 || memcmp(p, "true", 4) != 0) return false;
        p += 4;
        break;
    case 'f':
        if (end - p < 5 || memcmp(p, "false", 5) != 0) return false;
        p += 5;
        break;
    case 'n':
        if (end - p < 4 || memcmp(p, "null", 4) != 0) return false;
        p += 4;
        break;
    default: {
        /* a number the general path converts with strtod must be shorter than 512 characters;
         * one that long is never an int64 */
        bool integral = true;
        const unsigned char *q = number_end(p, end, &integral);
        if (!q || q - p >= 512) return false;
        p = q;
    }
    }

next: /* after a value: ',' and the next item, or the container's end */
    if (w && level == 1 && w->match) {
        w->match = false;
        if (!(p - value_start == 4 && memcmp(value_start, "null", 4) == 0)) {
            w->v = value_start;
            w->end = p;
        }
    }
    if (p >= end) return false;
    if (*p != ',' && *p != (in_object ? '}' : ']')) {
        p = skip_ws(p, end);
        if (p >= end) return false;
    }
    if (*p == ',') {
        p++;
        if (in_object) goto member;
        goto value;
    }
    if (*p != (in_object ? '}' : ']')) return false;
    p++;

closed: /* p after a container's closing bracket */
    if (--level == 0) {
        f->p = p;
        if (members) *members = count;
        return true;
    }
    in_object = object[(level - 1) >> 6] >> ((level - 1) & 63) & 1;
    goto next;
}

/* skip_container_with without the watch (most objects) and with it: two loops. */
static bool skip_container(parser *f, int depth, size_t *members)
{
    return skip_container_with(f, depth, members, NULL);
}

static bool skip_container_watch(parser *f, int depth, size_t *members, ts_watch *w)
{
    return skip_container_with(f, depth, members, w);
}

/* ---- member names ----
 *
 * The same few member names come in every event. Interning one (lua_pushlstring: hash, look
 * up, compare; make it again when the collector took it since the last event) costs several
 * times what a lookup here does: a direct-mapped cache from the name's bytes to its Lua string,
 * per state, the strings anchored in a table (so they stay interned) that is the cache
 * userdata's user value; the userdata is entry [1] of the lazy metatable (which also tells
 * that metatable from any other: the cache starts with the address of lazy_mt_key). Names
 * longer than KEY_MAX and names with escapes are not cached. */

#define KEY_MAX   32
#define KEY_SLOTS 512 /* a power of two */

typedef struct key_cache {
    const void *magic; /* &lazy_mt_key */
    struct {
        uint64_t head, tail; /* the words key_words read; for up to 16 bytes, the whole name */
        size_t len;          /* 0: empty (the empty name is not cached) */
        unsigned char bytes[KEY_MAX];
    } slot[KEY_SLOTS];
} key_cache;

static uint64_t load64(const unsigned char *s)
{
    uint64_t v;
    memcpy(&v, s, 8);
    return v;
}

static uint64_t load32(const unsigned char *s)
{
    uint32_t v;
    memcpy(&v, s, 4);
    return v;
}

/* The name s[0..n) (1 to KEY_MAX bytes) as two words that overlap; up to 16 bytes they hold
 * all of it. */
static void key_words(const unsigned char *s, size_t n, uint64_t *head, uint64_t *tail)
{
    if (n >= 8) {
        *head = load64(s);
        *tail = load64(s + n - 8);
    } else if (n >= 4) {
        *head = load32(s);
        *tail = load32(s + n - 4);
    } else {
        *head = (uint64_t)s[0] << 16 | (uint64_t)s[n / 2] << 8 | s[n - 1];
        *tail = 0;
    }
}

/* Pushes the member name s[0..n) (scanned: escaped tells whether it has escapes). */
static void push_key(parser *f, const unsigned char *s, size_t n, bool escaped)
{
    if (escaped || n == 0 || n > KEY_MAX) {
        push_string(f->L, s, n, escaped);
        return;
    }
    uint64_t head, tail;
    key_words(s, n, &head, &tail);
    unsigned i =
        (unsigned)(((head ^ (tail * 0x9e3779b97f4a7c15u) ^ n) * 0xff51afd7ed558ccdu) >> 55) &
        (KEY_SLOTS - 1);
    key_cache *kc = f->keys;
    if (kc->slot[i].len == n && kc->slot[i].head == head && kc->slot[i].tail == tail &&
        (n <= 16 || memcmp(kc->slot[i].bytes, s, n) == 0)) {
        lua_rawgeti(f->L, f->keys_idx, (lua_Integer)i + 1);
        return;
    }
    lua_pushlstring(f->L, (const char *)s, n);
    lua_pushvalue(f->L, -1);
    lua_rawseti(f->L, f->keys_idx, (lua_Integer)i + 1); /* the array part: allocates nothing */
    kc->slot[i].len = n;
    kc->slot[i].head = head;
    kc->slot[i].tail = tail;
    memcpy(kc->slot[i].bytes, s, n);
}

/* The metatable at mt_idx is the lazy one: pushes its key cache's table, sets f->keys. */
static void keys_open(parser *f)
{
    lua_State *L = f->L;
    lua_rawgeti(L, f->mt_idx, 1);
    f->keys = lua_touserdata(L, -1);
    lua_getiuservalue(L, -1, 1);
    lua_remove(L, -2);
    f->keys_idx = lua_gettop(L);
}

static int lazy_metatable(lua_State *L);

/* Pushes a lazy table for the object text src[off..off + len) of `members` members. */
static void push_lazy(parser *f, size_t off, size_t len, size_t members)
{
    lua_State *L = f->L;
    if (!f->have_src) {
        lua_pushlstring(L, f->text, f->len);
        lua_replace(L, f->src_idx);
        f->have_src = true;
    }
    /* room for the members when they are few (more: the table grows when it is built) */
    lua_createtable(L, 2, members <= LAZY_PRESIZE ? (int)members : 0);
    lua_pushvalue(L, f->src_idx);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, (lua_Integer)((uint64_t)off << 32 | (uint64_t)len));
    lua_rawseti(L, -2, 2);
    lua_pushvalue(L, f->mt_idx);
    lua_setmetatable(L, -2);
}

/* The value of the JSON number s[0..end) (valid syntax) when Lua makes it an integer (as
 * json_push_number does: no fraction or exponent, within int64), else -1; -1 for anything but a
 * number too. */
static int64_t integer_of(const unsigned char *s, const unsigned char *end)
{
    bool negative = *s == '-';
    const unsigned char *p = s + negative;
    if (p >= end || *p < '0' || *p > '9') return -1;
    uint64_t m = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') return -1; /* a fraction or an exponent: a float */
        unsigned digit = (unsigned)(*p - '0');
        if (m > (UINT64_MAX - digit) / 10) return -1;
        m = m * 10 + digit;
    }
    if (m > (uint64_t)INT64_MAX + negative) return -1; /* past int64: a float */
    return negative ? (int64_t)(0 - m) : (int64_t)m;
}

static int build_value(parser *f, int depth);

/* f->p just after '{': builds the members into the table at stack index t and moves past '}'.
 * depth counts the containers open, this object included. */
static bool build_members(parser *f, int t, int depth)
{
    lua_State *L = f->L;
    const unsigned char *s;
    size_t n;
    bool esc;
    f->p = skip_ws_fast(f->p, f->end);
    if (f->p < f->end && *f->p == '}') {
        f->p++;
        return true;
    }
    for (;;) {
        if (f->p >= f->end || *f->p != '"' || !scan_string(f, &s, &n, &esc)) return false;
        push_key(f, s, n, esc);
        bool source = false;
        if (depth == 1 && (f->unwrap || f->watch_source) && (esc || n == 6)) {
            size_t klen = n;
            const char *k = (const char *)s;
            if (esc) k = lua_tolstring(L, -1, &klen);
            if (klen == 6) {
                /* the general path's envelope: "schema" decoded */
                if (f->unwrap && memcmp(k, "schema", 6) == 0) return false;
                source = f->watch_source && memcmp(k, "source", 6) == 0;
            }
        }
        f->p = skip_ws_fast(f->p, f->end);
        if (f->p >= f->end || *f->p != ':') return false;
        f->p = skip_ws_fast(f->p + 1, f->end);
        int got;
        if (!source) {
            got = build_value(f, depth);
        } else {
            f->watching = true;
            f->watched = false;
            got = build_value(f, depth);
            f->watching = false;
            /* a "source" that is no lazy object: the table tells (null leaves an earlier one) */
            if (got > 0 && !f->watched) f->source_ts->state = JSON_SOURCE_TS_READ;
        }
        if (got < 0) return false;
        if (got > 0)
            lua_rawset(L, t);
        else
            lua_pop(L, 1); /* null: the member is absent */
        int end = after_item(f, '}');
        if (end != 0) return end > 0;
    }
}

/* Pushes the value at f->p and moves past it: 1 pushed, 0 JSON null (nothing pushed), -1 not
 * accepted (whatever was pushed for it is left for the caller's settop). depth counts the
 * containers open around it. */
static int build_value(parser *f, int depth)
{
    lua_State *L = f->L;
    const unsigned char *s;
    size_t n;
    bool esc, integral;
    if (f->p >= f->end) return -1;
    switch (*f->p) {
    case '{': {
        if (depth >= JSON_MAX_DEPTH) return -1;
        if (f->lazy && depth > 0) {
            const unsigned char *from = f->p;
            size_t members = 0;
            if (f->watching && depth == 1) { /* the top-level "source": its ts_ms on the way */
                ts_watch w = {0};
                if (!skip_container_watch(f, depth, &members, &w)) return -1;
                f->source_ts->state = w.unsure ? JSON_SOURCE_TS_BUILD : JSON_SOURCE_TS_FOUND;
                f->source_ts->value = w.v ? integer_of(w.v, w.end) : -1;
                f->watched = true;
            } else if (!skip_container(f, depth, &members)) {
                return -1;
            }
            push_lazy(f, (size_t)(from - f->src), (size_t)(f->p - from), members);
            return 1;
        }
        luaL_checkstack(L, 4, "JSON nesting");
        lua_createtable(L, 0, 8);
        f->p++;
        return build_members(f, lua_gettop(L), depth + 1) ? 1 : -1;
    }
    case '[': {
        if (depth >= JSON_MAX_DEPTH) return -1;
        luaL_checkstack(L, 4, "JSON nesting");
        lua_createtable(L, 4, 0);
        int t = lua_gettop(L);
        lua_Integer next = 1;
        f->p = skip_ws_fast(f->p + 1, f->end);
        if (f->p < f->end && *f->p == ']') {
            f->p++;
            return 1;
        }
        for (;;) {
            int got = build_value(f, depth + 1);
            if (got < 0) return -1;
            if (got > 0) lua_rawseti(L, t, next);
            next++; /* a null leaves a hole */
            int end = after_item(f, ']');
            if (end != 0) return end;
        }
    }
    case '"':
        if (!scan_string(f, &s, &n, &esc)) return -1;
        push_string(L, s, n, esc);
        return 1;
    case 't':
    case 'f':
    case 'n': {
        int lit = scan_literal(f);
        if (lit < 0) return -1;
        if (lit == 2) return 0;
        lua_pushboolean(L, lit);
        return 1;
    }
    default:
        if (!scan_number(f, &s, &n, &integral)) return -1;
        if (integral && n - (*s == '-') <= 19) {
            /* at most 19 digits: below 10^19, no uint64 overflow; json_push_number's result when
             * it fits int64 (a float otherwise: its path) */
            bool negative = *s == '-';
            uint64_t m = 0;
            for (size_t i = negative; i < n; i++)
                m = m * 10 + (uint64_t)(s[i] - '0');
            if (m <= (uint64_t)INT64_MAX) {
                lua_pushinteger(L, negative ? -(lua_Integer)m : (lua_Integer)m);
                return 1;
            }
        }
        return json_push_number(L, (const char *)s, n) == 0 ? 1 : -1;
    }
}

int json_fast_push(lua_State *L, const char *text, size_t len, int flags, json_source_ts *source_ts)
{
    size_t used;
    if (json_fast_push_prefix(L, text, len, flags, &used, source_ts) != 0) return -1;
    if (used == len) return 0;
    lua_pop(L, 1);
    if (source_ts) *source_ts = (json_source_ts){JSON_SOURCE_TS_READ, -1};
    return -1;
}

int json_fast_push_prefix(lua_State *L, const char *text, size_t len, int flags, size_t *used,
                          json_source_ts *source_ts)
{
    int base = lua_gettop(L);
    if (source_ts) *source_ts = (json_source_ts){JSON_SOURCE_TS_READ, -1};
    parser f = {
        .L = L,
        .p = (const unsigned char *)text,
        .end = (const unsigned char *)text + len,
        .src = (const unsigned char *)text,
        .lazy = LAZY_POSSIBLE && (flags & JSON_LAZY) && len <= UINT32_MAX,
        .unwrap = (flags & JSON_UNWRAP_ENVELOPE) != 0,
        .src_idx = base + 1,
        .mt_idx = base + 2,
        .text = text,
        .len = len,
        .source_ts = source_ts,
        .watch_source = source_ts && LAZY_POSSIBLE && (flags & JSON_LAZY) && len <= UINT32_MAX,
    };
    luaL_checkstack(L, 8, "JSON decoding");
    lua_pushnil(L);    /* src_idx */
    lazy_metatable(L); /* mt_idx */
    keys_open(&f);     /* keys_idx: base + 3 */
    f.p = skip_ws(f.p, f.end);
    if (f.p >= f.end || ((flags & JSON_OBJECT_ONLY) && *f.p != '{')) goto fail;
    if (build_value(&f, 0) <= 0) goto fail; /* a top-level null: the general path decides */
    *used = (size_t)(skip_ws(f.p, f.end) - f.src);
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
    return 0;
fail: /* nothing found counts: the general path decides (a later "source" may win there) */
    lua_settop(L, base);
    if (source_ts) *source_ts = (json_source_ts){JSON_SOURCE_TS_READ, -1};
    return -1;
}

/* ---- lazy tables ---- */

/* True when the value at idx has the lazy metatable; it is pushed then (else nothing). */
static bool push_lazy_mt(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx)) return false;
    const key_cache *kc = lua_rawgeti(L, -1, 1) == LUA_TUSERDATA ? lua_touserdata(L, -1) : NULL;
    lua_pop(L, 1);
    /* only the lazy metatable's [1] is a full userdata that starts with this address */
    if (kc && lua_rawlen(L, -1) == 1 && kc->magic == &lazy_mt_key) return true;
    lua_pop(L, 1);
    return false;
}

bool json_lazy_is_pending(lua_State *L, int idx)
{
    if (!push_lazy_mt(L, idx)) return false;
    lua_pop(L, 1);
    return true;
}

/* Builds the lazy table at idx (absolute; it is pending) in place: mt_idx and keys_idx are where
 * the lazy metatable and its key cache's table are (stack slots or upvalues), kc the cache. */
static void fill_pending(lua_State *L, int idx, int mt_idx, int keys_idx, key_cache *kc)
{
    int top = lua_gettop(L);
    luaL_checkstack(L, 8, "building a JSON object");
    /* the hidden entries; a build that runs out of memory half-way leaves them (and the
     * members already in, which the next build sets again) */
    lua_rawgeti(L, idx, 1); /* top + 1 */
    lua_rawgeti(L, idx, 2);
    CDC_ASSERT(lua_type(L, top + 1) == LUA_TSTRING && lua_isinteger(L, top + 2));
    size_t srclen;
    const char *src = lua_tolstring(L, top + 1, &srclen);
    uint64_t span = (uint64_t)lua_tointeger(L, top + 2);
    size_t off = (size_t)(span >> 32), len = (size_t)(span & UINT32_MAX);
    parser f = {
        .L = L,
        .p = (const unsigned char *)src + off + 1,
        .end = (const unsigned char *)src + off + len,
        .src = (const unsigned char *)src,
        .lazy = true,
        .src_idx = top + 1,
        .mt_idx = mt_idx,
        .text = src,
        .len = srclen,
        .have_src = true,
        .keys = kc,
        .keys_idx = keys_idx,
    };
    CDC_ASSERT(off + len <= srclen && len >= 2 && src[off] == '{');
    /* validated when the whole text was decoded: nothing but memory can fail here */
    bool ok = build_members(&f, idx, 1);
    CDC_ASSERT(ok);
    lua_pushnil(L);
    lua_rawseti(L, idx, 1);
    lua_pushnil(L);
    lua_rawseti(L, idx, 2);
    lua_pushnil(L);
    lua_setmetatable(L, idx);
    lua_settop(L, top);
}

void json_lazy_fill(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TTABLE) return;
    idx = lua_absindex(L, idx);
    if (!push_lazy_mt(L, idx)) return;
    parser f = {.L = L, .mt_idx = lua_gettop(L)};
    keys_open(&f);
    fill_pending(L, idx, f.mt_idx, f.keys_idx, f.keys);
    lua_pop(L, 2);
}

/* The metamethods' upvalues: the lazy metatable, its key cache's table and the cache. */
#define UP_MT   lua_upvalueindex(1)
#define UP_KEYS lua_upvalueindex(2)
#define UP_KC   lua_upvalueindex(3)

/* Builds the table at 1, which a metamethod was called for: a lazy table, unless the build
 * that made it plain ran inside this same access. */
static void fill_self(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TTABLE) return;
    int got = lua_rawgeti(L, 1, 2);
    lua_pop(L, 1);
    if (got != LUA_TNUMBER) return;
    fill_pending(L, 1, UP_MT, UP_KEYS, lua_touserdata(L, UP_KC));
}

static int lazy_index(lua_State *L)
{
    fill_self(L);
    lua_settop(L, 2);
    lua_rawget(L, 1);
    return 1;
}

static int lazy_newindex(lua_State *L)
{
    fill_self(L);
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 0;
}

static int lazy_len(lua_State *L)
{
    fill_self(L);
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, 1));
    return 1;
}

/* next for tables that are plain: pairs' iterator when the state has no base library. */
static int plain_next(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    if (lua_next(L, 1)) return 2;
    lua_pushnil(L);
    return 1;
}

static int lazy_pairs(lua_State *L)
{
    fill_self(L);
    lua_pushvalue(L, lua_upvalueindex(4)); /* next */
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* Sets metamethod `name` of the lazy metatable at mt (its key cache's table at keys, the cache
 * at kc) to fn; extra (0 or 1): the value on top of the stack is a fourth upvalue (popped). */
static void set_metamethod(lua_State *L, int mt, int keys, int kc, const char *name,
                           lua_CFunction fn, int extra)
{
    lua_pushvalue(L, mt);
    lua_pushvalue(L, keys);
    lua_pushvalue(L, kc);
    if (extra) lua_pushvalue(L, -4);
    lua_pushcclosure(L, fn, 3 + extra);
    lua_setfield(L, mt, name);
    lua_pop(L, extra);
}

/* Pushes the lazy tables' metatable, made on first use. */
static int lazy_metatable(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &lazy_mt_key) == LUA_TTABLE) return 1;
    lua_pop(L, 1);
    lua_createtable(L, 1, 4);
    int mt = lua_gettop(L);
    key_cache *kc = lua_newuserdatauv(L, sizeof *kc, 1);
    memset(kc, 0, sizeof *kc);
    kc->magic = &lazy_mt_key;
    lua_createtable(L, KEY_SLOTS, 0);
    for (int i = 1; i <= KEY_SLOTS; i++) { /* the array part, so storing never allocates */
        lua_pushboolean(L, 0);
        lua_rawseti(L, -2, i);
    }
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, mt + 1, 1);
    /* mt + 1: the cache, mt + 2: its table */
    lua_pushvalue(L, mt + 1);
    lua_rawseti(L, mt, 1);
    set_metamethod(L, mt, mt + 2, mt + 1, "__index", lazy_index, 0);
    set_metamethod(L, mt, mt + 2, mt + 1, "__newindex", lazy_newindex, 0);
    set_metamethod(L, mt, mt + 2, mt + 1, "__len", lazy_len, 0);
    /* pairs' iterator is the base library's next when there is one (as for plain tables) */
    if (lua_getglobal(L, "next") != LUA_TFUNCTION || !lua_iscfunction(L, -1)) {
        lua_pop(L, 1);
        lua_pushcfunction(L, plain_next);
    }
    set_metamethod(L, mt, mt + 2, mt + 1, "__pairs", lazy_pairs, 1);
    lua_settop(L, mt);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &lazy_mt_key);
    return 1;
}

/* A wrapped base function: builds a lazy first argument, then runs the original C function in
 * this same call frame (so its argument errors name it as before). */
static int fill_first(lua_State *L)
{
    lua_CFunction original = lua_tocfunction(L, lua_upvalueindex(1));
    json_lazy_fill(L, 1);
    return original(L);
}

void json_lazy_install(lua_State *L)
{
    static const char *const wrapped[] = {"next",   "rawget",       "rawset",
                                          "rawlen", "getmetatable", "setmetatable"};
    lazy_metatable(L); /* before the wrapping: pairs keeps the original next */
    lua_pop(L, 1);
    for (size_t i = 0; i < sizeof wrapped / sizeof wrapped[0]; i++) {
        lua_getglobal(L, wrapped[i]);
        CDC_ASSERT(lua_iscfunction(L, -1));
        lua_pushcclosure(L, fill_first, 1);
        lua_setglobal(L, wrapped[i]);
    }
}

/* ---- structural skip (json_skip_container) ---- */

/* Where the structural scan is: containers open, inside a string, after a backslash in one. */
typedef struct {
    int depth;
    bool in_string, escaped;
} skip_state;

/* Scans [p, stop) byte by byte; returns the byte after the closing bracket, or NULL (st->depth
 * above max_depth: st->depth is set to -1). */
static const char *skip_bytes(skip_state *st, const char *p, const char *stop, int max_depth)
{
    for (; p < stop; p++) {
        char c = *p;
        if (st->in_string) {
            if (st->escaped)
                st->escaped = false;
            else if (c == '\\')
                st->escaped = true;
            else if (c == '"')
                st->in_string = false;
        } else if (c == '"') {
            st->in_string = true;
        } else if (c == '{' || c == '[') {
            if (++st->depth > max_depth) {
                st->depth = -1;
                return NULL;
            }
        } else if (c == '}' || c == ']') {
            if (--st->depth == 0) return p + 1;
        }
    }
    return NULL;
}

#if defined(__SSE2__)
/* Bit i set where byte i of the 64 at x, with the bits in `fold` set, is c. */
static uint64_t eq_mask64(const __m128i x[4], char fold, char c)
{
    const __m128i f = _mm_set1_epi8(fold), v = _mm_set1_epi8(c);
    uint64_t m = 0;
    for (int i = 0; i < 4; i++)
        m |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_or_si128(x[i], f), v))
             << (16 * i);
    return m;
}

/* Bit i: an odd number of bits set at or below i. */
static uint64_t prefix_xor(uint64_t m)
{
    m ^= m << 1;
    m ^= m << 2;
    m ^= m << 4;
    m ^= m << 8;
    m ^= m << 16;
    m ^= m << 32;
    return m;
}

/* Bits set in m (without the popcnt instruction, which plain x86-64 lacks). */
static int count_bits(uint64_t m)
{
    m = m - (m >> 1 & 0x5555555555555555u);
    m = (m & 0x3333333333333333u) + (m >> 2 & 0x3333333333333333u);
    m = (m + (m >> 4)) & 0x0f0f0f0f0f0f0f0fu;
    return (int)((m * 0x0101010101010101u) >> 56);
}
#endif

/* json_fast_use_avx2 (tests only) */
static bool use_avx2 = true;

void json_fast_use_avx2(bool on)
{
    use_avx2 = on;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The same scan with AVX2 (32 bytes to a compare), PCLMUL (the quotes' prefix XOR in one
 * multiply) and POPCNT, for the CPUs that have them (json_skip_container asks the CPU): about
 * half the instructions of SSE2 over a long schema. Returns what json_skip_container does;
 * st and p as the SSE2 loop leaves them when it has fewer than 64 bytes left (*rest). */
#define SKIP_AVX2 1
__attribute__((target("avx2,pclmul,popcnt"))) static const char *
skip_container_avx2(skip_state *st, const char *p, const char *end, int max_depth,
                    const char **rest)
{
    const __m256i backslash = _mm256_set1_epi8('\\'), quote = _mm256_set1_epi8('"'),
                  fold = _mm256_set1_epi8(0x20), open_c = _mm256_set1_epi8('{'),
                  close_c = _mm256_set1_epi8('}');
    const __m128i ones = _mm_set1_epi8((char)0xff);
    int depth = st->depth;
    uint64_t in_string = st->in_string ? ~(uint64_t)0 : 0; /* all ones inside a string */
    while (end - p >= 64) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)p);
        __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
        __m256i bs =
            _mm256_or_si256(_mm256_cmpeq_epi8(a, backslash), _mm256_cmpeq_epi8(b, backslash));
        if (st->escaped || !_mm256_testz_si256(bs, bs)) {
            st->depth = depth;
            st->in_string = in_string != 0;
            const char *q = skip_bytes(st, p, p + 64, max_depth); /* escapes: byte by byte */
            if (q || st->depth < 0) return q;
            depth = st->depth;
            in_string = st->in_string ? ~(uint64_t)0 : 0;
            p += 64;
            continue;
        }
#define MASK64(x, y, c)                                                                            \
    ((uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(x, c)) |                           \
     (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(y, c)) << 32)
        uint64_t quotes = MASK64(a, b, quote);
        /* prefix XOR: a carry-less multiply by all ones */
        uint64_t quoted = (uint64_t)_mm_cvtsi128_si64(
                              _mm_clmulepi64_si128(_mm_set_epi64x(0, (long long)quotes), ones, 0)) ^
                          in_string;
        in_string = (uint64_t)((int64_t)quoted >> 63);
        __m256i fa = _mm256_or_si256(a, fold), fb = _mm256_or_si256(b, fold);
        uint64_t open = MASK64(fa, fb, open_c) & ~quoted;
        uint64_t close = MASK64(fa, fb, close_c) & ~quoted;
#undef MASK64
        int opens = __builtin_popcountll(open), closes = __builtin_popcountll(close);
        if (depth + opens <= max_depth && depth - closes > 0) {
            depth += opens - closes;
            p += 64;
            continue;
        }
        for (uint64_t m = open | close; m; m &= m - 1) {
            int i = __builtin_ctzll(m);
            if (open >> i & 1) {
                if (++depth > max_depth) return NULL;
            } else if (--depth == 0) {
                return p + i + 1;
            }
        }
        p += 64;
    }
    st->depth = depth;
    st->in_string = in_string != 0;
    *rest = p;
    return NULL;
}
#endif

const char *json_skip_container(const char *p, const char *end, int max_depth)
{
    CDC_ASSERT(p < end && (*p == '{' || *p == '['));
    skip_state st = {.depth = 1};
    if (max_depth < 1) return NULL;
    p++;
#if defined(SKIP_AVX2)
    if (use_avx2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("pclmul") &&
        __builtin_cpu_supports("popcnt")) {
        const char *rest = NULL;
        const char *q = skip_container_avx2(&st, p, end, max_depth, &rest);
        if (!rest) return q; /* ended, too deep, or the bytes ran out inside a block */
        return skip_bytes(&st, rest, end, max_depth);
    }
#endif
#if defined(__SSE2__)
    while (end - p >= 64) {
        __m128i x[4];
        for (int i = 0; i < 4; i++)
            x[i] = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i));
        uint64_t backslash = eq_mask64(x, 0, '\\');
        if (backslash || st.escaped) { /* escapes: this block byte by byte */
            const char *q = skip_bytes(&st, p, p + 64, max_depth);
            if (q || st.depth < 0) return q;
            p += 64;
            continue;
        }
        uint64_t quoted = prefix_xor(eq_mask64(x, 0, '"'));
        if (st.in_string) quoted = ~quoted;
        st.in_string = quoted >> 63;
        /* '[' | 0x20 is '{', ']' | 0x20 is '}', and no other byte gives either */
        uint64_t open = eq_mask64(x, 0x20, '{') & ~quoted;
        uint64_t close = eq_mask64(x, 0x20, '}') & ~quoted;
        int opens = count_bits(open), closes = count_bits(close);
        if (st.depth + opens <= max_depth && st.depth - closes > 0) { /* neither limit nor end */
            st.depth += opens - closes;
            p += 64;
            continue;
        }
        for (uint64_t b = open | close; b; b &= b - 1) {
            int i = __builtin_ctzll(b);
            if (open >> i & 1) {
                if (++st.depth > max_depth) return NULL;
            } else if (--st.depth == 0) {
                return p + i + 1;
            }
        }
        p += 64;
    }
#endif
    return skip_bytes(&st, p, end, max_depth);
}
