/*
 * json_lua — JSON text straight into Lua values (see include/cdcpipe/json_lua.h).
 *
 * yajl calls us back per token; we build Lua values on the Lua stack as they complete:
 *   object: [... table]        member key pushed, then value, then lua_rawset
 *   array:  [... table]        value pushed, then lua_rawseti at the next index
 * A per-level frame records whether the level is an array and its next index. While skipping
 * an envelope's "schema" member only nesting is counted and nothing is pushed; only its byte
 * span is kept, for scripts that ask for the schema (schema.c).
 */
#include "cdcpipe/json_lua.h"
#include "cdcpipe/json_fast.h"
#include "cdcpipe/utf8.h"
#include "cdcpipe/xalloc.h"
#include "cdcpipe/errbuf.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <yajl/yajl_parse.h>

/* ---- arena: yajl's allocations, released all at once per message ----
 *
 * Small blocks are carved from one 64 KiB buffer; larger ones ("spills") are malloc'd and kept
 * on a list. yajl grows its buffers with realloc (its parse stack 128 bytes at a time, its string
 * buffer by doubling): the block that was allocated last grows in place, and a spill is
 * realloc'd, so growth never leaves copies behind; garbage is bounded by the 64 KiB buffer.
 * yajl does not check what its allocator returns, so an allocation that fails aborts here
 * (alloc_or_abort) instead of handing it NULL. */

#define ARENA_SIZE (64 * 1024)

/* Every block starts with its size so realloc can copy. */
typedef struct {
    size_t size;
    size_t pad; /* keeps the payload 16-byte aligned */
} block_header;

/* A block too large for the arena: list links, then the block. */
typedef struct spill {
    struct spill *prev, *next;
    block_header h; /* last member: the payload follows it directly */
} spill;
_Static_assert(offsetof(spill, h) + sizeof(block_header) == sizeof(spill),
               "a spill's payload follows its header");

typedef struct {
    unsigned char *base;
    size_t used;
    spill *spills; /* blocks too large for the arena, freed on reset */
} arena;

/* The one place arena memory comes from: yajl must never see NULL. */
static void *alloc_or_abort(void *ptr, size_t size)
{
    return xrealloc(ptr, size, 1);
}

static size_t round16(size_t size)
{
    return (size + 15) & ~(size_t)15;
}

/* True when the block whose payload is ptr was carved from the arena (not a spill). */
static bool in_arena(const arena *a, const void *ptr)
{
    uintptr_t h = (uintptr_t)ptr - sizeof(block_header), base = (uintptr_t)a->base;
    return h >= base && h < base + ARENA_SIZE; /* as integers: ptr may be from another block */
}

/* The spill holding ptr (a payload outside the arena). */
static spill *spill_of(void *ptr)
{
    return (spill *)(void *)((unsigned char *)ptr - sizeof(spill));
}

/* True when the arena block at ptr is the last one carved: it can grow or shrink in place. */
static bool is_last(const arena *a, const void *ptr, const block_header *h)
{
    return (const unsigned char *)ptr + round16(h->size) == a->base + a->used;
}

static void *arena_malloc(void *ctx, size_t size)
{
    arena *a = ctx;
    if (size > SIZE_MAX / 2) alloc_or_abort(NULL, size); /* reports and aborts */
    size_t need = sizeof(block_header) + round16(size);
    block_header *h;
    if (a->used + need <= ARENA_SIZE) {
        h = (block_header *)(void *)(a->base + a->used);
        a->used += need;
    } else {
        spill *s = alloc_or_abort(NULL, sizeof(spill) + size);
        s->prev = NULL;
        s->next = a->spills;
        if (s->next) s->next->prev = s;
        a->spills = s;
        h = &s->h;
    }
    h->size = size;
    return h + 1;
}

static void arena_free(void *ctx, void *ptr)
{
    arena *a = ctx;
    if (!ptr) return;
    block_header *h = (block_header *)ptr - 1;
    if (in_arena(a, ptr)) {
        if (is_last(a, ptr, h)) a->used = (size_t)((unsigned char *)h - a->base);
        return; /* other arena blocks: released by arena_reset */
    }
    spill *s = spill_of(ptr);
    if (s->prev)
        s->prev->next = s->next;
    else
        a->spills = s->next;
    if (s->next) s->next->prev = s->prev;
    free(s);
}

static void *arena_realloc(void *ctx, void *ptr, size_t size)
{
    arena *a = ctx;
    if (!ptr) return arena_malloc(ctx, size);
    block_header *old = (block_header *)ptr - 1;
    if (old->size >= size) return ptr;
    if (!in_arena(a, ptr)) { /* a spill: realloc it and mend the list */
        if (size > SIZE_MAX / 2) alloc_or_abort(NULL, size);
        spill *s = alloc_or_abort(spill_of(ptr), sizeof(spill) + size);
        if (s->prev)
            s->prev->next = s;
        else
            a->spills = s;
        if (s->next) s->next->prev = s;
        s->h.size = size;
        return &s->h + 1;
    }
    if (is_last(a, ptr, old) && size <= ARENA_SIZE &&
        a->used - round16(old->size) + round16(size) <= ARENA_SIZE) {
        a->used = a->used - round16(old->size) + round16(size); /* grows in place */
        old->size = size;
        return ptr;
    }
    size_t old_size = old->size;
    bool was_last = is_last(a, ptr, old);
    void *fresh = arena_malloc(ctx, size); /* a spill when it is the last block: see above */
    memcpy(fresh, ptr, old_size);
    if (was_last && !in_arena(a, fresh)) a->used = (size_t)((unsigned char *)old - a->base);
    return fresh;
}

static void arena_reset(arena *a)
{
    while (a->spills) {
        spill *next = a->spills->next;
        free(a->spills);
        a->spills = next;
    }
    a->used = 0;
}

/* ---- decoder ---- */

typedef struct {
    bool is_array;
    lua_Integer next_index; /* arrays: index of the next element */
} frame;

struct json_decoder {
    arena arena;
    lua_State *L;
    int flags;
    int depth;                /* open containers being built */
    int skip_depth;           /* > 0 while skipping the envelope's schema */
    bool skip_next;           /* the next value is the envelope's schema */
    bool saw_schema;          /* top level had "schema" */
    bool expect_payload;      /* the next value is the top level's "payload" */
    const char *payload_kind; /* what that value is: "object", "array", ... */
    const char *top_kind;     /* what the document is: "object", "array", "string", ... */
    char problem[160];
    /* The unwrapped envelope's schema value (json_decoder_schema_span); the general path finds
     * it from the offset just after the last top-level "schema" key, read from the parser. */
    const char *schema_text;
    size_t schema_len;
    size_t schema_key_end;
    json_source_ts source_ts; /* json_decoder_source_ts_ms */
    yajl_handle handle;
    frame frames[JSON_MAX_DEPTH];
};

json_decoder *json_decoder_new(void)
{
    json_decoder *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->arena.base = malloc(ARENA_SIZE);
    if (!d->arena.base) {
        free(d);
        return NULL;
    }
    return d;
}

void json_decoder_free(json_decoder *d)
{
    if (!d) return;
    arena_reset(&d->arena);
    free(d->arena.base);
    free(d);
}

/* A scalar or a finished container is on top of the stack: attach it to its parent. */
static void attach_value(json_decoder *d)
{
    if (d->depth == 0) return; /* the document itself */
    frame *f = &d->frames[d->depth - 1];
    if (f->is_array)
        lua_rawseti(d->L, -2, f->next_index++);
    else
        lua_rawset(d->L, -3);
}

/* Returns true when the current value is part of a skipped subtree (and accounts for it). */
static bool skipping_scalar(json_decoder *d)
{
    if (d->skip_next) {
        d->skip_next = false;
        return true;
    }
    return d->skip_depth > 0;
}

/* Returns 1 when the container opening now is part of a skipped subtree (and accounts for it),
 * 0 when it is not, -1 when it would nest deeper than JSON_MAX_DEPTH: the limit holds inside
 * the skipped schema too, or yajl's parse stack would grow without bound. */
static int skipping_open(json_decoder *d)
{
    if (!d->skip_next && d->skip_depth == 0) return 0;
    if (d->depth + d->skip_depth >= JSON_MAX_DEPTH) {
        snprintf(d->problem, sizeof d->problem,
                 "nesting deeper than %d levels (inside the envelope's \"schema\")",
                 JSON_MAX_DEPTH);
        return -1;
    }
    d->skip_next = false;
    d->skip_depth++;
    return 1;
}

static bool skipping_close(json_decoder *d)
{
    if (d->skip_depth > 0) {
        d->skip_depth--;
        return true;
    }
    return false;
}

/* Records what the whole document is, when a value starts at the top level. */
static void note_kind(json_decoder *d, const char *kind)
{
    if (d->depth == 0 && !d->top_kind) d->top_kind = kind;
    if (d->depth == 1 && d->expect_payload) {
        d->payload_kind = kind;
        d->expect_payload = false;
    }
}

/* The one wording for an envelope whose payload is not an object (fast and general path). */
static void payload_kind_error(char *err, size_t errlen, const char *kind)
{
    errbuf_set(err, errlen, "payload is not a JSON object (a %s%s)",
               strcmp(kind, "array") == 0 ? "JSON " : "", kind);
}

static int on_null(void *ctx)
{
    json_decoder *d = ctx;
    if (skipping_scalar(d)) return 1;
    note_kind(d, "null");
    if (d->depth == 0) {
        lua_pushnil(d->L);
        return 1;
    }
    frame *f = &d->frames[d->depth - 1];
    if (f->is_array)
        f->next_index++; /* leave a hole */
    else
        lua_pop(d->L, 1); /* drop the member key: absent means null */
    return 1;
}

static int on_boolean(void *ctx, int value)
{
    json_decoder *d = ctx;
    if (skipping_scalar(d)) return 1;
    note_kind(d, "boolean");
    lua_pushboolean(d->L, value);
    attach_value(d);
    return 1;
}

/* Integers that fit int64 stay exact; everything else becomes a float (json_push_number). */
static int on_number(void *ctx, const char *s, size_t len)
{
    json_decoder *d = ctx;
    if (skipping_scalar(d)) return 1;
    note_kind(d, "number");
    if (json_push_number(d->L, s, len) != 0) {
        snprintf(d->problem, sizeof d->problem, "number of %zu characters is too long", len);
        return 0;
    }
    attach_value(d);
    return 1;
}

/* yajl's own check (switched off: yajl_dont_validate_strings) lets overlong forms, UTF-16
 * surrogates and code points above U+10FFFF through, and decodes a lone "\udc00" escape into a
 * surrogate: every decoded string and key is checked strictly here instead, so invalid UTF-8 has
 * one message whatever is wrong with it. Returns true when valid; otherwise sets d->problem. */
static bool check_utf8(json_decoder *d, const unsigned char *s, size_t len)
{
    if (utf8_valid(s, len)) return true;
    snprintf(d->problem, sizeof d->problem,
             "string is not valid UTF-8 (malformed bytes, an overlong form, a surrogate or beyond "
             "U+10FFFF)");
    return false;
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
    json_decoder *d = ctx;
    if (skipping_scalar(d)) return 1;
    if (!check_utf8(d, s, len)) return 0;
    note_kind(d, "string");
    lua_pushlstring(d->L, (const char *)s, len);
    attach_value(d);
    return 1;
}

static int open_container(json_decoder *d, bool is_array)
{
    int skipped = skipping_open(d);
    if (skipped != 0) return skipped > 0;
    note_kind(d, is_array ? "array" : "object");
    if (d->depth >= JSON_MAX_DEPTH) {
        snprintf(d->problem, sizeof d->problem, "nesting deeper than %d levels", JSON_MAX_DEPTH);
        return 0;
    }
    luaL_checkstack(d->L, 3, "JSON nesting");
    lua_createtable(d->L, is_array ? 4 : 0, is_array ? 0 : 8);
    d->frames[d->depth].is_array = is_array;
    d->frames[d->depth].next_index = 1;
    d->depth++;
    return 1;
}

static int close_container(json_decoder *d)
{
    if (skipping_close(d)) return 1;
    d->depth--;
    attach_value(d);
    return 1;
}

static int on_start_map(void *ctx)
{
    return open_container(ctx, false);
}

static int on_end_map(void *ctx)
{
    return close_container(ctx);
}

static int on_start_array(void *ctx)
{
    return open_container(ctx, true);
}

static int on_end_array(void *ctx)
{
    return close_container(ctx);
}

static int on_map_key(void *ctx, const unsigned char *key, size_t len)
{
    json_decoder *d = ctx;
    if (d->skip_depth > 0) return 1;
    if (!check_utf8(d, key, len)) return 0;
    if (d->depth == 1 && (d->flags & JSON_UNWRAP_ENVELOPE))
        d->expect_payload = len == 7 && memcmp(key, "payload", 7) == 0;
    if (d->depth == 1 && (d->flags & JSON_UNWRAP_ENVELOPE) && len == 6 &&
        memcmp(key, "schema", 6) == 0) {
        d->saw_schema = true;
        d->skip_next = true;
        d->schema_key_end = yajl_get_bytes_consumed(d->handle); /* right after the key's quote */
        return 1;
    }
    lua_pushlstring(d->L, (const char *)key, len);
    return 1;
}

static const yajl_callbacks callbacks = {
    on_null,      on_boolean, NULL,       NULL,           on_number,    on_string,
    on_start_map, on_map_key, on_end_map, on_start_array, on_end_array,
};

/* Replaces the envelope on top of the stack by its payload. Returns 0 or -1. */
static int unwrap_envelope(json_decoder *d, char *err, size_t errlen)
{
    lua_State *L = d->L;
    if (!d->saw_schema) return 0;
    if (lua_getfield(L, -1, "payload") == LUA_TNIL) {
        lua_pop(L, 2);
        errbuf_set(err, errlen, "JSON object has a \"schema\" member but no \"payload\"");
        return -1;
    }
    lua_remove(L, -2);
    return 0;
}

/* ---- the envelope fast path ----
 * Kafka Connect's JsonConverter writes {"schema":{...},"payload":{...}} in that order, and the
 * schema is usually most of the bytes. Finding the payload by scanning the schema for its end
 * (strings and nesting only) is several times cheaper than tokenizing it; only the payload is
 * then parsed. Anything else takes the general path. The skipped schema is checked for
 * structure, not for JSON validity in every detail. */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at '"': returns the byte after the closing quote, or NULL. */
static const char *skip_string(const char *p, const char *end)
{
    const char *from = ++p;
    for (;;) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q) return NULL;
        size_t backslashes = 0;
        while (q - backslashes > from && q[-1 - (ptrdiff_t)backslashes] == '\\')
            backslashes++;
        if (backslashes % 2 == 0) return q + 1;
        p = q + 1;
    }
}

/* Returns the byte after the JSON value starting at p, or NULL (also when it nests deeper than
 * max_depth levels: the general parser then reports it). */
static const char *skip_value(const char *p, const char *end, int max_depth)
{
    if (p >= end) return NULL;
    if (*p == '"') return skip_string(p, end);
    if (*p != '{' && *p != '[') {
        while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' &&
               *p != '\t' && *p != '\r')
            p++;
        return p;
    }
    return json_skip_container(p, end, max_depth);
}

/* Expects "key" then ':' at *pp (whitespace allowed); advances past them. */
static bool match_key(const char **pp, const char *end, const char *key)
{
    size_t n = strlen(key);
    const char *p = skip_ws(*pp, end);
    if ((size_t)(end - p) < n + 2 || *p != '"' || memcmp(p + 1, key, n) != 0 || p[n + 1] != '"')
        return false;
    p = skip_ws(p + n + 2, end);
    if (p >= end || *p != ':') return false;
    *pp = skip_ws(p + 1, end);
    return true;
}

/* Finds where the payload of {"schema": ..., "payload": ...} starts, and the schema's span on
 * the way. */
static bool find_payload_start(const char *text, size_t len, const char **start,
                               const char **schema, size_t *slen)
{
    const char *end = text + len, *p = skip_ws(text, end);
    if (p >= end || *p++ != '{' || !match_key(&p, end, "schema")) return false;
    *schema = p;
    /* the envelope is a level: the schema may nest one level less than JSON_MAX_DEPTH, as on
     * the general path */
    if (!(p = skip_value(p, end, JSON_MAX_DEPTH - 1))) return false;
    *slen = (size_t)(p - *schema);
    p = skip_ws(p, end);
    if (p >= end || *p++ != ',' || !match_key(&p, end, "payload")) return false;
    *start = p;
    return true;
}

/* p just after the payload and the whitespace after it: true when the envelope ends there. */
static bool envelope_ends(const char *p, const char *end)
{
    return p < end && *p == '}' && skip_ws(p + 1, end) == end;
}

/* The payload's length, from where it starts to where the envelope ends, or false. */
static bool find_payload_len(const char *start, const char *end, size_t *plen)
{
    const char *p = skip_value(start, end, JSON_MAX_DEPTH);
    if (!p) return false;
    *plen = (size_t)(p - start);
    return envelope_ends(skip_ws(p, end), end);
}

/* General path: the span of the value after the top-level "schema" key that yajl skipped. */
static void note_schema_span(json_decoder *d, const char *text, size_t len)
{
    const char *end = text + len, *p = skip_ws(text + d->schema_key_end, end), *q;
    if (p >= end || *p != ':') return;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '{' && (q = skip_value(p, end, JSON_MAX_DEPTH))) {
        d->schema_text = p;
        d->schema_len = (size_t)(q - p);
    }
}

int json_decoder_source_ts_ms(const json_decoder *d, int64_t *value)
{
    *value = d->source_ts.value;
    return d->source_ts.state;
}

void json_decoder_schema_span(const json_decoder *d, const char **text, size_t *len)
{
    *text = d->schema_text;
    *len = d->schema_len;
}

int json_decoder_push(json_decoder *d, lua_State *L, const char *text, size_t len, int flags,
                      char *err, size_t errlen)
{
    const char *payload, *schema = NULL;
    size_t payload_len, schema_len = 0;
    size_t skipped = 0; /* bytes before the part parsed, for error positions */
    bool payload_only = false;
    d->schema_text = NULL;
    d->schema_len = 0;
    d->source_ts = (json_source_ts){JSON_SOURCE_TS_READ, -1};
    bool envelope = (flags & JSON_UNWRAP_ENVELOPE) &&
                    find_payload_start(text, len, &payload, &schema, &schema_len);
    if (envelope) {
        /* the fast path over the payload finds its end too: no scan for it first */
        const char *end = text + len;
        size_t used;
        if (!(flags & JSON_GENERAL_ONLY) &&
            json_fast_push_prefix(L, payload, (size_t)(end - payload),
                                  flags & ~JSON_UNWRAP_ENVELOPE, &used, &d->source_ts) == 0) {
            if (envelope_ends(payload + used, end)) {
                if (*schema == '{') {
                    d->schema_text = schema;
                    d->schema_len = schema_len;
                }
                return 0;
            }
            lua_pop(L, 1);
            d->source_ts = (json_source_ts){JSON_SOURCE_TS_READ, -1};
        }
    }
    if (envelope && find_payload_len(payload, text + len, &payload_len)) {
        skipped = (size_t)(payload - text);
        text = payload;
        len = payload_len;
        flags &= ~JSON_UNWRAP_ENVELOPE;
        payload_only = true;
    }
    /* the fast path takes what it can, with the very values this path would build; anything
     * else, errors included, is decoded (and worded) below */
    if (!(flags & JSON_GENERAL_ONLY) && json_fast_push(L, text, len, flags, &d->source_ts) == 0) {
        if (payload_only && *schema == '{') {
            d->schema_text = schema;
            d->schema_len = schema_len;
        }
        return 0;
    }
    int base = lua_gettop(L);
    yajl_alloc_funcs afs = {arena_malloc, arena_realloc, arena_free, &d->arena};
    arena_reset(&d->arena);
    d->L = L;
    d->flags = flags;
    d->depth = 0;
    d->skip_depth = 0;
    d->skip_next = false;
    d->saw_schema = false;
    d->expect_payload = false;
    d->payload_kind = NULL;
    d->top_kind = NULL;
    d->problem[0] = '\0';

    yajl_handle h = yajl_alloc(&callbacks, &afs, d);
    if (!h) {
        errbuf_set(err, errlen, "out of memory creating the JSON parser");
        return -1;
    }
    d->handle = h;
    yajl_config(h, yajl_dont_validate_strings, 1); /* check_utf8 does it, strictly */
    yajl_status st = yajl_parse(h, (const unsigned char *)text, len);
    size_t at = yajl_get_bytes_consumed(h);
    /* yajl_complete_parse counts its bytes from 0: its errors are at the end of the text */
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
        at = len;
    }
    if (st != yajl_status_ok) {
        if (d->problem[0]) {
            errbuf_set(err, errlen, "invalid JSON at byte %zu: %s", skipped + at, d->problem);
        } else {
            unsigned char *msg = yajl_get_error(h, 0, (const unsigned char *)text, len);
            char *nl;
            while ((nl = strchr((char *)msg, '\n')))
                *nl = ' ';
            errbuf_set(err, errlen, "invalid JSON at byte %zu: %s", skipped + at, (char *)msg);
            yajl_free_error(h, msg);
        }
        yajl_free(h);
        lua_settop(L, base);
        return -1;
    }
    yajl_free(h);
    (void)at;
    if (lua_gettop(L) != base + 1) {
        errbuf_set(err, errlen, "empty JSON text");
        lua_settop(L, base);
        return -1;
    }
    if (payload_only && strcmp(d->top_kind, "null") == 0) {
        errbuf_set(err, errlen, "JSON object has a \"schema\" member but no \"payload\"");
        lua_settop(L, base);
        return -1;
    }
    if ((flags & JSON_OBJECT_ONLY) && strcmp(d->top_kind, "object") != 0) {
        if (payload_only)
            payload_kind_error(err, errlen, d->top_kind);
        else
            errbuf_set(err, errlen, "value is JSON but not an object (a JSON %s)", d->top_kind);
        lua_settop(L, base);
        return -1;
    }
    if ((flags & JSON_UNWRAP_ENVELOPE) && strcmp(d->top_kind, "object") == 0) {
        if (unwrap_envelope(d, err, errlen) != 0) {
            lua_settop(L, base);
            return -1;
        }
        if (d->saw_schema && (flags & JSON_OBJECT_ONLY) && d->payload_kind &&
            strcmp(d->payload_kind, "object") != 0) {
            payload_kind_error(err, errlen, d->payload_kind);
            lua_settop(L, base);
            return -1;
        }
        if (d->saw_schema) note_schema_span(d, text, len);
    }
    if (payload_only && *schema == '{') {
        d->schema_text = schema;
        d->schema_len = schema_len;
    }
    return 0;
}
