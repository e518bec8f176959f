/*
 * schema — the Kafka Connect schema of the event being transformed, for scripts that ask.
 *
 * With schemas.enable=true every record carries {"schema": ..., "payload": ...}; the decoder
 * skips the schema without parsing it and reports its byte span (json_decoder_schema_span). The
 * script runtime hands that span over for the duration of transform (schema_begin_event /
 * schema_end_event); nothing else happens per event. Only when the script calls one of these
 * functions is the schema parsed into a Lua table — once per distinct schema text: parsed
 * schemas are kept in the Lua registry, the SCHEMA_CACHE_SIZE most recently used ones, so the
 * events of one table version (which all carry the same schema) parse it once.
 *
 *   cdc.schema(event)                      the whole schema as a Lua table, or nil
 *   cdc.field_type(event, [section,] f)    logical type name ("io.debezium.time.Date", ...) or
 *                                          Connect type ("int32", ...) of a field, or nil
 *   cdc.field_schema(event, [section,] f)  the field's schema table (parameters, ...), or nil
 *   cdc.auto(event [, section [, opts]])   a new row: every field of event[section] converted
 *                                          by its logical type with the cdc.* helpers
 *
 * `event` must be the very table transform received (it is recognised by identity; the event
 * table itself carries nothing extra); a call outside transform or with another table raises
 * an error. `section` names a struct member of the envelope ("after", "before", "source");
 * nil or absent means the top level (a flattened record from the unwrap SMT). docs/types.md is
 * the user's guide.
 */
#ifndef CDCPIPE_SCHEMA_H
#define CDCPIPE_SCHEMA_H

#include <lua.h>
#include <stddef.h>

/* Distinct schemas kept parsed per Lua state. */
#define SCHEMA_CACHE_SIZE 64

typedef struct schema_cache schema_cache;

/* Returns a new cache, or NULL when out of memory. */
schema_cache *schema_cache_new(void);
/* Frees the C side; call after lua_close of the state it served (the parsed tables live in
 * that state's registry). NULL is fine. */
void schema_cache_free(schema_cache *c);

/* Sets cdc.schema, cdc.field_type, cdc.field_schema and cdc.auto in the module table at the top
 * of L's stack. c must outlive L. */
void schema_add_functions(lua_State *L, schema_cache *c);

/* transform is about to run for the event table `event` (lua_topointer of it), whose record had
 * the schema text[0..len) (NULL when it had none). text must stay valid until
 * schema_end_event. Costs a few stores. */
void schema_begin_event(schema_cache *c, const void *event, const char *text, size_t len);
void schema_end_event(schema_cache *c);

#endif
