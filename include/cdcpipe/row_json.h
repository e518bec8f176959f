/*
 * row_json — a Lua row table written as one JSON object (ClickHouse JSONEachRow), in C,
 * straight from the table: no lua-cjson, integers exact.
 *
 * Values: string → JSON string (quotes, backslashes and control characters escaped; other bytes,
 * UTF-8 included, copied as they are); integer → digits; float → shortest round-trip digits
 * (integral floats within ±2^53 as integers); boolean → true/false; cdc.null → null; a table with
 * t[1] (or an empty table) → JSON array of t[1..#t]; any other table → nested object.
 * Keys of a row must be strings. NaN, infinities, functions and other userdata are errors.
 */
#ifndef CDCPIPE_ROW_JSON_H
#define CDCPIPE_ROW_JSON_H

#include <lua.h>
#include <stdbool.h>

#include "cdcpipe/strbuf.h"

/* The value of cdc.null: a light userdata with this address means JSON null. */
void *row_json_null(void);

/* Called once per top-level key written (the row's columns). Returns 0, or -1 with err to
 * refuse the row: row_json_append then stops and fails with that message. */
typedef int (*row_json_key_fn)(void *ud, const char *key, size_t len, char *err, size_t errlen);

/* Appends the table at stack index idx as a JSON object (no newline) to out. With `sorted`, keys
 * are written in byte order (stable output for people and tests); otherwise in table order.
 * on_key may be NULL. Returns 0, or -1 with err naming the offending column (or on_key's
 * message); out is then left
 * with a partial row the caller must truncate. Does not raise Lua errors except out of memory. */
int row_json_append(strbuf *out, lua_State *L, int idx, bool sorted, row_json_key_fn on_key,
                    void *ud, char *err, size_t errlen);

/* Appends "table<TAB>row<NL>" to the strbuf `out` with sorted keys: the line --dry-run and
 * `cdcpipe test` print. Its signature is a script_row_fn's, so it serves as one directly.
 * Returns 0, or -1 with err (out unchanged). */
int row_json_append_line(void *out, const char *table, lua_State *L, int idx, char *err,
                         size_t errlen);

/* Appends s as a JSON string literal, quotes included. */
void row_json_string(strbuf *out, const char *s, size_t len);

#endif
