/*
 * json_fast — the fast path of json_lua: one validating pass over JSON text straight into Lua
 * values, and lazy tables that build a nested object only when something looks into it.
 *
 * json_fast_push accepts a subset of what the general (yajl) path accepts — every valid JSON
 * text except the rare shapes it leaves to that path: escaped UTF-16 surrogates other than a
 * proper pair, a top-level "schema" member when unwrapping an envelope, numbers of 512
 * characters or more that are not int64, whitespace other than space, tab, CR and LF. For what
 * it accepts it pushes exactly the value the general path would (same tables, same sizes, same
 * insertion order); for anything else, errors included, it pushes nothing and the caller takes
 * the general path, which then also words the error. It never raises except out of memory.
 *
 * Lazy objects (JSON_LAZY): every object below the top level is pushed as a table with a
 * private metatable and two hidden raw entries ([1] a Lua string holding the text, [2] the
 * object's byte span in it as an integer; object members are never integer keys). The first
 * __index, __newindex, __len or __pairs builds its members in place (its own nested objects
 * lazy again), removes the hidden entries and the metatable: from then on it is a plain table, with
 * the same keys and values as an eager one (pairs may visit them in another order: Lua leaves that
 * order unspecified). Arrays are never lazy (so `#` on an array with holes is what it always was);
 * objects inside them are. The text was validated as a whole before the first table was pushed, so
 * building later cannot fail except out of memory (the table then stays lazy and is built when next
 * used).
 *
 * What does not go through metamethods must call json_lazy_fill first: C code that reads a
 * table that may come from an event with lua_next, lua_rawget*, lua_rawlen, lua_getmetatable or
 * lua_setmetatable (row_json, rowbinary, batch, schema, lua_module do); and in Lua, next, rawget,
 * rawset, rawlen, getmetatable and setmetatable, which json_lazy_install wraps so that scripts
 * see plain tables.
 */
#ifndef CDCPIPE_JSON_FAST_H
#define CDCPIPE_JSON_FAST_H

#include <lua.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What json_fast_push found of event.source.ts_ms: READ: nothing, read it from the table (no
 * "source" object became lazy: it is built, absent or not an object); BUILD: build the lazy
 * source table and read it (a member name with escapes in it); FOUND: value is it (-1: none, or
 * not an integer). */
enum { JSON_SOURCE_TS_READ, JSON_SOURCE_TS_BUILD, JSON_SOURCE_TS_FOUND };
typedef struct {
    int state;
    int64_t value;
} json_source_ts;

/* Decodes text[0..len) with json_lua's flags (JSON_UNWRAP_ENVELOPE here only means: a
 * top-level "schema" member is left to the general path; the envelope fast path in json_lua
 * has already unwrapped the canonical layout). Returns 0 with exactly one value pushed, or -1
 * with the stack unchanged: take the general path. With JSON_LAZY and source_ts not NULL, a
 * top-level "source" object left lazy has its "ts_ms" read while it is skipped anyway (a failed
 * push leaves JSON_SOURCE_TS_READ). */
int json_fast_push(lua_State *L, const char *text, size_t len, int flags,
                   json_source_ts *source_ts);

/* The same for the value that text[0..len) starts with (whitespace before it allowed): on
 * success *used is the bytes it and the whitespace after it take; what follows is not looked
 * at. */
int json_fast_push_prefix(lua_State *L, const char *text, size_t len, int flags, size_t *used,
                          json_source_ts *source_ts);

/* Pushes the JSON number text s[0..len) (valid JSON number syntax) the one way both paths do:
 * an integer when it has no fraction or exponent and fits int64, else a float (strtod). Returns
 * 0, or -1 without pushing when a number that needs strtod has 512 characters or more. */
int json_push_number(lua_State *L, const char *s, size_t len);

/* Skips the container (object or array) starting at p ('{' or '['), for structure only: strings
 * end at the first quote not escaped by a backslash, brackets of either kind nest (a '}' may
 * close a '['), nothing else is looked at. Returns the byte after the bracket that closes it,
 * or NULL when the text ends first or it nests deeper than max_depth levels (the container
 * itself is one). Sixty-four bytes at a time with AVX2 (x86-64 CPUs that have it, asked at run
 * time) or SSE2. */
const char *json_skip_container(const char *p, const char *end, int max_depth);

/* Tests only: false makes json_skip_container use SSE2 (or plain C) even where the CPU has
 * AVX2, PCLMUL and POPCNT, which it uses by default (not thread-safe: set it before any use). */
void json_fast_use_avx2(bool on);

/* True when the value at idx is a lazy table not yet built. */
bool json_lazy_is_pending(lua_State *L, int idx);

/* Builds the lazy table at idx in place (nothing when idx is anything else). May raise out of
 * memory; the table stays lazy then and can be built later. */
void json_lazy_fill(lua_State *L, int idx);

/* Wraps next, rawget, rawset, rawlen, getmetatable and setmetatable of L's globals so that they
 * build a lazy table given as their first argument before doing what they did. Call once, after
 * luaL_openlibs and before any script code runs. */
void json_lazy_install(lua_State *L);

#endif
