/*
 * json_lua — JSON text straight into Lua values, exact over the whole int64 range.
 *
 * A fast single pass (json_fast.h) handles the usual texts; the rest, and every error, goes to
 * the general path built on libyajl's event parser. Every object becomes a Lua table, every array a
 * 1-based sequence, integers that fit int64 become Lua integers (others become floats), other
 * numbers floats, JSON null becomes nil (an object member whose value is null is simply absent; an
 * array null leaves a hole). Strings must be valid UTF-8. No intermediate tree and no lua-cjson.
 *
 * One decoder is reused for every message: its parser memory lives in an arena that is reset per
 * call, so decoding allocates nothing beyond the Lua values it creates.
 */
#ifndef CDCPIPE_JSON_LUA_H
#define CDCPIPE_JSON_LUA_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

typedef struct json_decoder json_decoder;

/* Flags for json_decoder_push. */
enum {
    /* A top-level object with both "schema" and "payload" members (Kafka Connect's JsonConverter
     * with schemas.enable=true) yields its payload; the schema is skipped (scanned, not parsed)
     * and no Lua value is built for it, but its byte span is kept (json_decoder_schema_span). A
     * top-level "schema" without "payload" is an error. */
    JSON_UNWRAP_ENVELOPE = 1,
    /* Anything but a JSON object at the top level (array, string, number, ...) is an error. */
    JSON_OBJECT_ONLY = 2,
    /* Objects below the top level become lazy tables, built on first use (json_fast.h): what
     * reads such a table other than through metamethods must call json_lazy_fill first. */
    JSON_LAZY = 4,
    /* Tests only: skip the fast path (json_fast.h) and decode with the general one. */
    JSON_GENERAL_ONLY = 8,
};

/* Returns a new decoder, or NULL when out of memory. */
json_decoder *json_decoder_new(void);
void json_decoder_free(json_decoder *d);

/* Parses text[0..len) and pushes exactly one Lua value on L. Returns 0, or -1 with the stack
 * unchanged and err describing the problem and its byte offset. May raise a Lua memory error, so
 * call it from protected code. Nesting deeper than JSON_MAX_DEPTH is an error, inside a skipped
 * envelope "schema" too (the envelope counts as a level). The parser's own memory stays in
 * proportion to the text; if it cannot be had the process aborts (yajl cannot take a NULL). */
#define JSON_MAX_DEPTH 128
int json_decoder_push(json_decoder *d, lua_State *L, const char *text, size_t len, int flags,
                      char *err, size_t errlen);

/* The span text[0..len) of the "schema" member's value of the envelope that the last successful
 * json_decoder_push unwrapped (JSON_UNWRAP_ENVELOPE), when that value is a JSON object; NULL
 * and 0 otherwise (no envelope, "schema": null, a failed push). It points into the text passed
 * to that push, so it is valid as long as that text is, and is replaced by the next push.
 * Costs nothing to record: the schema is skipped either way. */
void json_decoder_schema_span(const json_decoder *d, const char **text, size_t *len);

/* What the last json_decoder_push found of event.source.ts_ms while its JSON_LAZY decode skipped
 * a lazy "source" object (json_fast.h): JSON_SOURCE_TS_FOUND and *value (-1: no "ts_ms" that is
 * an integer); JSON_SOURCE_TS_READ: read it from the table; JSON_SOURCE_TS_BUILD: build the lazy
 * source table first (its member names have escapes). */
int json_decoder_source_ts_ms(const json_decoder *d, int64_t *value);

#endif
