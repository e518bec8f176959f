/*
 * schema — the Connect schema of the event being transformed (see include/cdcpipe/schema.h).
 *
 * Owns the C side of the cache: SCHEMA_CACHE_SIZE entries, most recently used first, each the
 * schema text's length, a pointer to the text (inside a Lua string the entry table keeps alive)
 * and a registry reference to the entry table:
 *   entry   = { [E_TEXT] = schema text, [E_SCHEMA] = parsed schema, [E_SECTIONS] = sections }
 *   sections: section name (true for the top level) → index
 *   index   = { [1] = number of fields, <field name> = descriptor, ... }
 *   descriptor = { [D_KIND] = kind (a dbz_value_kind, K_KEEP or K_ARRAY), [D_PARAM] = scale or
 *                  bit length, [D_UNIT] = the epoch or time-of-day unit, [D_SCHEMA] = the
 *                  field's schema table, [D_ITEMS] = descriptor of array items,
 *                  [D_LABEL] = type name }
 * Sections are indexed on first use. A lookup compares lengths, then bytes (memcmp), in MRU
 * order; the entry found is remembered for the rest of the event.
 *
 * Relies on json_lua (parsing the schema text) and dbz_value (the converters behind the cdc.*
 * helpers, called directly so that an error can name the field, and the unchanged-TOAST
 * placeholder test).
 */
#include "cdcpipe/schema.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "cdcpipe/dbz_value.h"
#include "cdcpipe/json_lua.h"
#include "cdcpipe/strbuf.h"

enum { E_TEXT = 1, E_SCHEMA, E_SECTIONS };
enum { D_KIND = 1, D_PARAM, D_SCHEMA, D_ITEMS, D_LABEL, D_UNIT };

/* Deepest array-of-array schema whose items are converted. */
#define MAX_ITEMS_DEPTH 8

typedef struct {
    const char *text; /* in the entry's Lua string */
    size_t len;
    int ref;
} entry;

struct schema_cache {
    entry entries[SCHEMA_CACHE_SIZE]; /* most recently used first */
    int n;
    const void *event; /* the table transform runs for; NULL outside transform */
    const char *text;  /* its schema text (in the Kafka record); NULL: it has none */
    size_t len;
    int current;           /* registry ref of its entry once looked up; LUA_NOREF before */
    json_decoder *decoder; /* created by the first parse */
    strbuf buf[2];         /* conversion scratch: decode into one, format into the other */
};

schema_cache *schema_cache_new(void)
{
    schema_cache *c = calloc(1, sizeof *c);
    if (c) c->current = LUA_NOREF;
    return c;
}

void schema_cache_free(schema_cache *c)
{
    if (!c) return;
    json_decoder_free(c->decoder);
    strbuf_free(&c->buf[0]);
    strbuf_free(&c->buf[1]);
    free(c);
}

void schema_begin_event(schema_cache *c, const void *event, const char *text, size_t len)
{
    c->event = event;
    c->text = text;
    c->len = len;
    c->current = LUA_NOREF;
}

void schema_end_event(schema_cache *c)
{
    c->event = NULL;
    c->text = NULL;
}

/* ---- logical types ---- */

/* A descriptor's D_KIND: a dbz_value_kind, or one of these. */
enum {
    K_KEEP = -1,  /* the value as decoded: numbers, strings, Json, Enum, Xml, structs, maps, ... */
    K_ARRAY = -2, /* an array whose items have a kind */
};

static const struct {
    const char *name;
    dbz_value_kind k;
    dt_unit unit;
} logical_types[] = {
    {"org.apache.kafka.connect.data.Decimal", DBZ_V_DECIMAL, DT_SECONDS},
    {"io.debezium.data.VariableScaleDecimal", DBZ_V_VSDECIMAL, DT_SECONDS},
    {"io.debezium.time.Date", DBZ_V_DATE, DT_SECONDS},
    {"org.apache.kafka.connect.data.Date", DBZ_V_DATE, DT_SECONDS},
    {"io.debezium.time.Time", DBZ_V_TIME, DT_MILLIS},
    {"org.apache.kafka.connect.data.Time", DBZ_V_TIME, DT_MILLIS},
    {"io.debezium.time.MicroTime", DBZ_V_TIME, DT_MICROS},
    {"io.debezium.time.NanoTime", DBZ_V_TIME, DT_NANOS},
    {"io.debezium.time.ZonedTime", DBZ_V_ZONED_TIME, DT_SECONDS},
    {"io.debezium.time.Timestamp", DBZ_V_TIMESTAMP, DT_MILLIS},
    {"org.apache.kafka.connect.data.Timestamp", DBZ_V_TIMESTAMP, DT_MILLIS},
    {"io.debezium.time.MicroTimestamp", DBZ_V_TIMESTAMP, DT_MICROS},
    {"io.debezium.time.NanoTimestamp", DBZ_V_TIMESTAMP, DT_NANOS},
    {"io.debezium.time.ZonedTimestamp", DBZ_V_ZONED_TIMESTAMP, DT_SECONDS},
    {"io.debezium.time.MicroDuration", DBZ_V_DURATION, DT_MICROS},
    {"io.debezium.time.Interval", DBZ_V_INTERVAL, DT_SECONDS},
    {"io.debezium.data.Uuid", DBZ_V_UUID, DT_SECONDS},
    {"io.debezium.data.Bits", DBZ_V_BITS, DT_SECONDS},
};

/* A schema parameter ("scale": "2") as an integer; -1 when absent or not an integer. */
static lua_Integer int_parameter(lua_State *L, int fs, const char *name)
{
    lua_Integer v = -1;
    if (lua_getfield(L, fs, "parameters") == LUA_TTABLE) {
        int type = lua_getfield(L, -1, name);
        if (type == LUA_TNUMBER && lua_isinteger(L, -1)) {
            v = lua_tointeger(L, -1);
        } else if (type == LUA_TSTRING) {
            const char *s = lua_tostring(L, -1);
            char *end;
            errno = 0;
            long long parsed = strtoll(s, &end, 10);
            if (end != s && *end == '\0' && errno == 0) v = (lua_Integer)parsed;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return v;
}

/* Pushes the descriptor of the field schema table at fs (see the file comment). */
static void push_descriptor(lua_State *L, int fs, int depth)
{
    fs = lua_absindex(L, fs);
    luaL_checkstack(L, 6, "schema nesting");
    lua_createtable(L, 6, 0);
    const int d = lua_gettop(L);
    const char *type = lua_getfield(L, fs, "type") == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    const char *name = lua_getfield(L, fs, "name") == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pushvalue(L, name ? -1 : -2); /* the label: the logical name, else the Connect type */
    lua_rawseti(L, d, D_LABEL);

    int k = K_KEEP;
    dt_unit unit = DT_SECONDS;
    lua_Integer param = 0;
    for (size_t i = 0; name && i < sizeof logical_types / sizeof logical_types[0]; i++) {
        if (strcmp(name, logical_types[i].name) == 0) {
            k = (int)logical_types[i].k;
            unit = logical_types[i].unit;
            break;
        }
    }
    if (k == DBZ_V_DECIMAL)
        param = int_parameter(L, fs, "scale");
    else if (k == DBZ_V_BITS)
        param = int_parameter(L, fs, "length");
    else if (k == K_KEEP && type && strcmp(type, "bytes") == 0)
        k = DBZ_V_BYTES; /* JsonConverter writes every bytes value as base64 */
    else if (k == K_KEEP && type && strcmp(type, "array") == 0 && depth < MAX_ITEMS_DEPTH &&
             lua_getfield(L, fs, "items") == LUA_TTABLE) {
        push_descriptor(L, -1, depth + 1);
        lua_rawgeti(L, -1, D_KIND);
        if (lua_tointeger(L, -1) != K_KEEP) {
            k = K_ARRAY;
            lua_pop(L, 1);
            lua_rawseti(L, d, D_ITEMS);
        }
    }
    lua_settop(L, d);
    lua_pushinteger(L, k);
    lua_rawseti(L, d, D_KIND);
    lua_pushinteger(L, param);
    lua_rawseti(L, d, D_PARAM);
    lua_pushinteger(L, unit);
    lua_rawseti(L, d, D_UNIT);
    lua_pushvalue(L, fs);
    lua_rawseti(L, d, D_SCHEMA);
}

/* Pushes the index of the struct schema at st: [1] = field count, name → descriptor. */
static void push_index(lua_State *L, int st)
{
    st = lua_absindex(L, st);
    lua_Integer count = 0;
    if (lua_getfield(L, st, "fields") == LUA_TTABLE) count = (lua_Integer)lua_rawlen(L, -1);
    const int fields = lua_gettop(L);
    lua_createtable(L, 1, (int)count);
    const int ix = lua_gettop(L);
    lua_pushinteger(L, count);
    lua_rawseti(L, ix, 1);
    for (lua_Integer i = 1; i <= count; i++) {
        if (lua_rawgeti(L, fields, i) == LUA_TTABLE &&
            lua_getfield(L, -1, "field") == LUA_TSTRING) {
            push_descriptor(L, -2, 0);
            lua_rawset(L, ix); /* name → descriptor */
        }
        lua_settop(L, ix);
    }
    lua_remove(L, fields);
}

/* ---- the cache ---- */

/* Pushes the entry table of the current event's schema (c->text != NULL), parsing it on a miss.
 * Raises when the text is not JSON. */
static void push_entry(lua_State *L, schema_cache *c, const char *fn)
{
    if (c->current != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->current);
        return;
    }
    for (int i = 0; i < c->n; i++) {
        entry *e = &c->entries[i];
        if (e->len == c->len && memcmp(e->text, c->text, c->len) == 0) {
            const entry hit = *e;
            memmove(&c->entries[1], &c->entries[0], (size_t)i * sizeof *e);
            c->entries[0] = hit;
            c->current = hit.ref;
            lua_rawgeti(L, LUA_REGISTRYINDEX, hit.ref);
            return;
        }
    }
    if (!c->decoder && !(c->decoder = json_decoder_new()))
        luaL_error(L, "%s: out of memory creating the schema parser", fn);
    lua_createtable(L, 3, 0);
    const int t = lua_gettop(L);
    lua_pushlstring(L, c->text, c->len);
    const char *text = lua_tostring(L, -1);
    lua_rawseti(L, t, E_TEXT); /* the table keeps the string, so text stays valid */
    char err[256];
    if (json_decoder_push(c->decoder, L, c->text, c->len, JSON_OBJECT_ONLY, err, sizeof err) != 0)
        luaL_error(L, "%s: the event's schema is not valid JSON: %s", fn, err);
    lua_rawseti(L, t, E_SCHEMA);
    lua_newtable(L);
    lua_rawseti(L, t, E_SECTIONS);
    lua_pushvalue(L, t);
    const int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (c->n == SCHEMA_CACHE_SIZE) luaL_unref(L, LUA_REGISTRYINDEX, c->entries[--c->n].ref);
    memmove(&c->entries[1], &c->entries[0], (size_t)c->n * sizeof c->entries[0]);
    c->entries[0] = (entry){text, c->len, ref};
    c->n++;
    c->current = ref;
}

/* Writes the names of the fields in the array at `fields` to out ("before, after, ..."),
 * shortened to fit. */
static void field_names(lua_State *L, int fields, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    const lua_Integer n = (lua_Integer)lua_rawlen(L, fields);
    for (lua_Integer i = 1; i <= n && used < outlen; i++) {
        const int top = lua_gettop(L);
        if (lua_rawgeti(L, fields, i) == LUA_TTABLE &&
            lua_getfield(L, -1, "field") == LUA_TSTRING) {
            int w =
                snprintf(out + used, outlen - used, "%s%s", used ? ", " : "", lua_tostring(L, -1));
            used += w > 0 ? (size_t)w : 0;
        }
        lua_settop(L, top);
    }
}

/* Pushes the index of section (NULL: the top level) of the entry at e, building it on first use.
 * Raises when the schema has no such struct member. */
static void push_section(lua_State *L, int e, const char *section, const char *fn)
{
    e = lua_absindex(L, e);
    const int base = lua_gettop(L);
    lua_rawgeti(L, e, E_SECTIONS);
    const int secs = base + 1;
    if (section)
        lua_pushstring(L, section);
    else
        lua_pushboolean(L, 1);
    if (lua_rawget(L, secs) == LUA_TTABLE) {
        lua_replace(L, secs);
        return;
    }
    lua_pop(L, 1);
    lua_rawgeti(L, e, E_SCHEMA);
    const int root = base + 2;
    if (section) {
        bool found = false;
        lua_getfield(L, root, "fields");
        const int fields = base + 3;
        const lua_Integer n =
            lua_type(L, fields) == LUA_TTABLE ? (lua_Integer)lua_rawlen(L, fields) : 0;
        for (lua_Integer i = 1; i <= n && !found; i++) {
            if (lua_rawgeti(L, fields, i) == LUA_TTABLE &&
                lua_getfield(L, -1, "field") == LUA_TSTRING &&
                strcmp(lua_tostring(L, -1), section) == 0) {
                found = true;
                lua_pop(L, 1); /* leaves the section's schema */
            } else {
                lua_settop(L, fields);
            }
        }
        if (!found) {
            char names[256] = "";
            if (n > 0) field_names(L, fields, names, sizeof names);
            luaL_error(L, "%s: the event's schema has no section \"%s\" (its fields: %s)", fn,
                       section, names);
        }
        if (lua_getfield(L, -1, "type") != LUA_TSTRING ||
            strcmp(lua_tostring(L, -1), "struct") != 0)
            luaL_error(L, "%s: \"%s\" is a %s in the event's schema, not a struct of fields", fn,
                       section, lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "value");
        lua_pop(L, 1);
    }
    push_index(L, -1);
    if (section)
        lua_pushstring(L, section);
    else
        lua_pushboolean(L, 1);
    lua_pushvalue(L, -2);
    lua_rawset(L, secs);
    lua_replace(L, secs);
    lua_settop(L, secs);
}

/* The cache for a call with the current event as argument 1; raises outside transform or for
 * another table. */
static schema_cache *check_event(lua_State *L, const char *fn)
{
    schema_cache *c = lua_touserdata(L, lua_upvalueindex(1));
    if (!c->event) luaL_error(L, "%s can only be called while transform runs, with its event", fn);
    if (lua_type(L, 1) != LUA_TTABLE || lua_topointer(L, 1) != c->event)
        luaL_error(L,
                   "%s: argument 1 must be the event table transform(event, meta) received, not "
                   "%s",
                   fn,
                   lua_type(L, 1) == LUA_TTABLE ? "another table (event.after or a copy?)"
                                                : luaL_typename(L, 1));
    return c;
}

/* Pushes the descriptor of a field named by (event, section, field) or (event, field), or nil.
 * Returns false (nothing pushed) when the event has no schema. */
static bool push_field(lua_State *L, const char *fn)
{
    schema_cache *c = check_event(L, fn);
    const char *section = NULL, *field;
    if (lua_gettop(L) >= 3) {
        section = lua_isnil(L, 2) ? NULL : luaL_checkstring(L, 2);
        field = luaL_checkstring(L, 3);
    } else {
        field = luaL_checkstring(L, 2);
    }
    if (!c->text) return false;
    push_entry(L, c, fn);
    push_section(L, -1, section, fn);
    lua_getfield(L, -1, field);
    return true;
}

/* cdc.schema(event) */
static int l_schema(lua_State *L)
{
    schema_cache *c = check_event(L, "cdc.schema");
    lua_pushnil(L);
    if (!c->text) return 1;
    push_entry(L, c, "cdc.schema");
    lua_rawgeti(L, -1, E_SCHEMA);
    return 1;
}

/* cdc.field_type(event, [section,] field) */
static int l_field_type(lua_State *L)
{
    if (!push_field(L, "cdc.field_type")) lua_pushnil(L);
    if (!lua_isnil(L, -1)) lua_rawgeti(L, -1, D_LABEL);
    return 1;
}

/* cdc.field_schema(event, [section,] field) */
static int l_field_schema(lua_State *L)
{
    if (!push_field(L, "cdc.field_schema")) lua_pushnil(L);
    if (!lua_isnil(L, -1)) lua_rawgeti(L, -1, D_SCHEMA);
    return 1;
}

/* ---- cdc.auto ---- */

typedef struct {
    bool datetime64;             /* timestamps = "datetime64" */
    bool hex;                    /* bytes = "hex" */
    dbz_interval_style interval; /* intervals = "iso" | "seconds" */
    const char *placeholder;     /* unavailable.value.placeholder */
} auto_options;

/* Where a value is, for error messages: section.field[index]. */
typedef struct {
    const char *section; /* NULL: top level */
    const char *field;
    lua_Integer index; /* 0: not an array element */
} path;

static int fail(lua_State *L, const path *p, int d, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(lua_State *L, const path *p, int d, const char *fmt, ...)
{
    char why[320], at[32] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (p->index) snprintf(at, sizeof at, "[%lld]", (long long)p->index);
    lua_rawgeti(L, d, D_LABEL);
    return luaL_error(L, "cdc.auto: %s%s%s%s (%s): %s", p->section ? p->section : "",
                      p->section ? "." : "", p->field, at,
                      lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?", why);
}

/* Converts the value at v by the descriptor at d (absolute indexes) and pushes the result;
 * returns 0 without pushing when toast_check is set and the value is the unchanged-TOAST
 * placeholder (the field is left out). Raises with the path on a malformed value. */
static int convert(lua_State *L, schema_cache *c, int v, int d, const auto_options *o,
                   const path *p, bool toast_check)
{
    if (toast_check && dbz_value_is_unavailable(L, v, o->placeholder)) return 0;
    lua_rawgeti(L, d, D_KIND);
    const int k = (int)lua_tointeger(L, -1);
    lua_rawgeti(L, d, D_PARAM);
    const lua_Integer param = lua_tointeger(L, -1);
    lua_rawgeti(L, d, D_UNIT);
    const dt_unit unit = (dt_unit)lua_tointeger(L, -1);
    lua_pop(L, 3);
    if (k == K_KEEP) {
        lua_pushvalue(L, v);
        return 1;
    }
    if (k == K_ARRAY) {
        if (lua_type(L, v) != LUA_TTABLE)
            fail(L, p, d, "expected an array, got a %s", luaL_typename(L, v));
        luaL_checkstack(L, 6, "array nesting");
        lua_createtable(L, (int)lua_rawlen(L, v), 0);
        const int arr = lua_gettop(L);
        lua_rawgeti(L, d, D_ITEMS);
        const int items = arr + 1;
        path elem = *p;
        lua_pushnil(L);
        while (lua_next(L, v) != 0) { /* keeps holes (NULL elements) where they are */
            elem.index = lua_isinteger(L, -2) ? lua_tointeger(L, -2) : 0;
            lua_pushvalue(L, -2);
            convert(L, c, items + 2, items, o, &elem, false);
            lua_rawset(L, arr);
            lua_pop(L, 1);
        }
        lua_settop(L, arr);
        return 1;
    }
    dbz_value_spec spec = {
        .kind = (dbz_value_kind)k,
        .unit = unit,
        .precision = -1,
        .param = param,
        .binary = DBZ_BIN_BASE64, /* JsonConverter's encoding of every bytes value */
        .hex = o->hex,
        .interval = o->interval,
    };
    if (o->datetime64 && k == DBZ_V_TIMESTAMP)
        spec.precision = unit == DT_MILLIS ? 3 : unit == DT_MICROS ? 6 : 9;
    else if (o->datetime64 && k == DBZ_V_ZONED_TIMESTAMP)
        spec.precision = 6;
    if (k == DBZ_V_DECIMAL && param < 0 && lua_type(L, v) == LUA_TSTRING)
        fail(L, p, d, "the schema has no integer \"scale\" parameter");
    char err[256];
    if (dbz_value_convert(L, v, &spec, c->buf, err, sizeof err) != 0) fail(L, p, d, "%s", err);
    return 1;
}

static void auto_options_read(lua_State *L, int i, auto_options *o)
{
    *o = (auto_options){false, false, DBZ_INTERVAL_ISO, DBZ_UNAVAILABLE};
    if (lua_isnoneornil(L, i)) return;
    luaL_checktype(L, i, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, i) != 0) {
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        const char *value = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        bool ok = value != NULL;
        if (strcmp(key, "timestamps") == 0) {
            ok = ok && (strcmp(value, "datetime") == 0 || strcmp(value, "datetime64") == 0);
            o->datetime64 = ok && strcmp(value, "datetime64") == 0;
        } else if (strcmp(key, "bytes") == 0) {
            ok = ok && (strcmp(value, "raw") == 0 || strcmp(value, "hex") == 0);
            o->hex = ok && strcmp(value, "hex") == 0;
        } else if (strcmp(key, "intervals") == 0) {
            ok = ok && (strcmp(value, "iso") == 0 || strcmp(value, "seconds") == 0);
            o->interval =
                ok && strcmp(value, "seconds") == 0 ? DBZ_INTERVAL_SECONDS : DBZ_INTERVAL_ISO;
        } else if (strcmp(key, "placeholder") == 0) {
            if (ok) o->placeholder = value; /* kept alive by the options table */
        } else {
            lua_pushvalue(L, -2);
            luaL_error(L,
                       "cdc.auto: unknown option %s (options: timestamps, bytes, intervals, "
                       "placeholder)",
                       luaL_tolstring(L, -1, NULL));
        }
        if (!ok)
            luaL_error(L,
                       "cdc.auto: option %s = %s is not one of its values (timestamps: "
                       "\"datetime\"|\"datetime64\"; bytes: \"raw\"|\"hex\"; intervals: "
                       "\"iso\"|\"seconds\"; placeholder: a string)",
                       key, luaL_tolstring(L, -1, NULL));
        lua_pop(L, 1);
    }
}

/* cdc.auto(event [, section [, options]]) */
static int l_auto(lua_State *L)
{
    schema_cache *c = check_event(L, "cdc.auto");
    const char *section = lua_isnoneornil(L, 2) ? NULL : luaL_checkstring(L, 2);
    auto_options o;
    auto_options_read(L, 3, &o);
    lua_settop(L, 3);
    if (!c->text)
        return luaL_error(L, "cdc.auto: the event has no schema (its topic is written with "
                             "schemas.enable=false); convert its fields with cdc.decimal, "
                             "cdc.datetime, ... instead");
    push_entry(L, c, "cdc.auto");
    push_section(L, -1, section, "cdc.auto"); /* raises for a section the schema does not have */
    const int ix = lua_gettop(L);
    int row = 1;
    if (section) {
        lua_pushstring(L, section);
        if (lua_rawget(L, 1) == LUA_TNIL) return 1; /* e.g. the after of a delete: nil */
        if (lua_type(L, -1) != LUA_TTABLE)
            return luaL_error(L, "cdc.auto: event.%s is a %s, not a row", section,
                              luaL_typename(L, -1));
        row = lua_gettop(L);
    }
    lua_rawgeti(L, ix, 1);
    const int nfields = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_createtable(L, 0, nfields);
    const int out = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, row) != 0) { /* stack: out key value */
        const int val = lua_gettop(L), key = val - 1;
        bool converted = false;
        if (lua_type(L, key) == LUA_TSTRING) {
            lua_pushvalue(L, key);
            if (lua_rawget(L, ix) == LUA_TTABLE) {
                const path p = {section, lua_tostring(L, key), 0};
                if (convert(L, c, val, val + 1, &o, &p, true)) {
                    lua_pushvalue(L, key);
                    lua_insert(L, -2);
                    lua_rawset(L, out);
                }
                converted = true;
            }
            lua_settop(L, val);
        }
        if (!converted) {
            lua_pushvalue(L, key);
            lua_pushvalue(L, val);
            lua_rawset(L, out);
        }
        lua_pop(L, 1);
    }
    lua_settop(L, out);
    return 1;
}

void schema_add_functions(lua_State *L, schema_cache *c)
{
    static const luaL_Reg functions[] = {
        {"schema", l_schema},
        {"field_type", l_field_type},
        {"field_schema", l_field_schema},
        {"auto", l_auto},
        {NULL, NULL},
    };
    lua_pushlightuserdata(L, c);
    luaL_setfuncs(L, functions, 1);
}
