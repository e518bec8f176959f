/*
 * lua_module — the built-in `cdcpipe` Lua module's pure helpers (no pipeline state):
 *   cdc.datetime(v [, unit])  epoch number in "s"|"ms"|"us"|"ns" (default "ms") or an ISO-8601
 *                             string → "YYYY-MM-DD hh:mm:ss" UTC; nil → nil
 *   cdc.date(days)            days since 1970-01-01 → "YYYY-MM-DD"; nil → nil
 *   cdc.decimal, cdc.time, cdc.datetime64, cdc.epoch, cdc.interval, cdc.uuid, cdc.bytes,
 *   cdc.bits, cdc.is_unavailable
 *                             Debezium type encodings → ClickHouse text (each picks a kind of
 *                             dbz_value.h from its arguments; docs/types.md); nil and cdc.null
 *                             pass through
 *   cdc.json(v)               exact JSON text of a Lua value (sorted keys, int64 exact)
 *   cdc.log([level,] ...)     a log line on stderr ("error"|"warn"|"info"|"debug"; default info)
 *   cdc.env(name [, default]) an environment variable
 *   cdc.null                  a value that is written as JSON null
 *   cdc.version               cdcpipe's version string
 * script.c adds cdc.emit, which needs the running pipeline, and schema.c the schema-aware
 * functions (cdc.schema, cdc.field_type, cdc.field_schema, cdc.auto), which need the event.
 */
#ifndef CDCPIPE_LUA_MODULE_H
#define CDCPIPE_LUA_MODULE_H

#include <lua.h>

/* Pushes a new module table with the helpers above. */
void lua_module_push(lua_State *L);

#endif
