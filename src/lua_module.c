/*
 * lua_module — the built-in `cdcpipe` Lua module's helpers (see include/cdcpipe/lua_module.h).
 * Every function raises a Lua error naming the bad argument; the pipeline turns that into an
 * event error with the event's topic/partition/offset.
 */
#include "cdcpipe/lua_module.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "cdcpipe/datetime.h"
#include "cdcpipe/dbz_value.h"
#include "cdcpipe/log.h"
#include "cdcpipe/row_json.h"
#include "cdcpipe/strbuf.h"

/* The type helpers build their text in two strbufs owned by a userdata (upvalue 1 of every module
 * function), so a Lua error raised while pushing a result (out of memory) leaks nothing. Two, so a
 * helper can decode into one and format from it into the other (a strbuf may move as it grows). */
#define SCRATCH_META "cdcpipe.scratch"
#define SCRATCH_BUFS 2

static int scratch_gc(lua_State *L)
{
    strbuf *bufs = luaL_checkudata(L, 1, SCRATCH_META);
    for (int i = 0; i < SCRATCH_BUFS; i++)
        strbuf_free(&bufs[i]);
    return 0;
}

/* Converts argument 1 by spec and returns its text, or raises "fn: why". */
static int convert(lua_State *L, const char *fn, const dbz_value_spec *spec)
{
    char err[256];
    strbuf *scratch = lua_touserdata(L, lua_upvalueindex(1));
    if (dbz_value_convert(L, 1, spec, scratch, err, sizeof err) != 0)
        return luaL_error(L, "%s: %s", fn, err);
    return 1;
}

/* True when argument i is nil, absent or cdc.null: the helpers then return it unchanged. */
static bool is_null_arg(lua_State *L, int i)
{
    return lua_isnoneornil(L, i) ||
           (lua_type(L, i) == LUA_TLIGHTUSERDATA && lua_touserdata(L, i) == row_json_null());
}

/* Returns the value unchanged (nil or cdc.null) as the result of a helper. */
static int pass_null(lua_State *L)
{
    lua_settop(L, 1);
    if (lua_isnone(L, 1)) lua_pushnil(L);
    return 1;
}

/* An integer argument that may also come as decimal text (schema parameters are strings). */
static lua_Integer int_arg(lua_State *L, int i, const char *fn, const char *what)
{
    int ok = 0;
    lua_Integer v = lua_tointegerx(L, i, &ok);
    if (!ok)
        luaL_error(L, "%s: %s must be an integer, got %s%s%s", fn, what,
                   lua_type(L, i) == LUA_TSTRING ? "\"" : "a ",
                   lua_type(L, i) == LUA_TSTRING ? lua_tostring(L, i) : luaL_typename(L, i),
                   lua_type(L, i) == LUA_TSTRING ? "\"" : "");
    return v;
}

static dt_unit unit_arg(lua_State *L, int i, const char *fn, const char *dflt)
{
    const char *name = dflt ? luaL_optstring(L, i, dflt) : lua_tostring(L, i);
    dt_unit unit = DT_MILLIS; /* set by dt_parse_unit; luaL_error does not return */
    if (!name || dt_parse_unit(name, &unit) != 0)
        luaL_error(L, "%s: unit %s%s%s is not one of \"s\", \"ms\", \"us\", \"ns\"", fn,
                   name ? "\"" : "", name ? name : "(none)", name ? "\"" : "");
    return unit;
}

static int precision_arg(lua_State *L, int i, const char *fn, int dflt)
{
    if (lua_isnoneornil(L, i)) return dflt;
    lua_Integer p = int_arg(L, i, fn, "precision");
    if (p < 0 || p > 9) luaL_error(L, "%s: precision %d is outside 0..9", fn, (int)p);
    return (int)p;
}

static int unit_digits(dt_unit unit)
{
    return unit == DT_SECONDS ? 0 : unit == DT_MILLIS ? 3 : unit == DT_MICROS ? 6 : 9;
}

/* cdc.decimal(v [, scale]) */
static int l_decimal(lua_State *L)
{
    if (is_null_arg(L, 1)) return pass_null(L);
    dbz_value_spec spec = {.kind = DBZ_V_DECIMAL};
    switch (lua_type(L, 1)) {
    case LUA_TSTRING:
        if (lua_isnoneornil(L, 2))
            spec.kind = DBZ_V_DECIMAL_TEXT;
        else
            spec.param = int_arg(L, 2, "cdc.decimal", "scale");
        break;
    case LUA_TTABLE: /* io.debezium.data.VariableScaleDecimal */
        spec.kind = DBZ_V_VSDECIMAL;
        break;
    case LUA_TNUMBER: /* decimal.handling.mode=double */
        break;
    default:
        return luaL_error(L,
                          "cdc.decimal: expected base64 text with a scale, decimal text, a "
                          "{scale, value} table or a number, got a %s",
                          luaL_typename(L, 1));
    }
    return convert(L, "cdc.decimal", &spec);
}

/* cdc.time(v, unit [, precision]) or cdc.time(zoned_text [, nil [, precision]]) */
static int l_time(lua_State *L)
{
    if (is_null_arg(L, 1)) return pass_null(L);
    dbz_value_spec spec = {.kind = DBZ_V_ZONED_TIME,
                           .precision = precision_arg(L, 3, "cdc.time", -1)};
    if (lua_type(L, 1) == LUA_TNUMBER) {
        if (lua_isnoneornil(L, 2))
            return luaL_error(L, "cdc.time: a number needs its unit: \"ms\" (Time), \"us\" "
                                 "(MicroTime) or \"ns\" (NanoTime)");
        spec.kind = DBZ_V_TIME;
        spec.unit = unit_arg(L, 2, "cdc.time", NULL);
    } else if (lua_type(L, 1) != LUA_TSTRING) {
        return luaL_error(L,
                          "cdc.time: expected a number past midnight or a ZonedTime string, "
                          "got a %s",
                          luaL_typename(L, 1));
    }
    return convert(L, "cdc.time", &spec);
}

/* cdc.datetime64(v [, unit [, precision]]) */
static int l_datetime64(lua_State *L)
{
    if (is_null_arg(L, 1)) return pass_null(L);
    dbz_value_spec spec = {.kind = DBZ_V_ZONED_TIMESTAMP};
    if (lua_type(L, 1) == LUA_TSTRING) {
        spec.precision = precision_arg(L, 3, "cdc.datetime64", 6);
    } else if (lua_type(L, 1) == LUA_TNUMBER) {
        spec.kind = DBZ_V_TIMESTAMP;
        spec.unit = unit_arg(L, 2, "cdc.datetime64", "ms");
        spec.precision = precision_arg(L, 3, "cdc.datetime64", unit_digits(spec.unit));
    } else {
        return luaL_error(L,
                          "cdc.datetime64: expected an epoch number or an ISO-8601 string, got a "
                          "%s",
                          luaL_typename(L, 1));
    }
    return convert(L, "cdc.datetime64", &spec);
}

/* cdc.epoch(iso_text [, unit]) */
static int l_epoch(lua_State *L)
{
    char err[256];
    if (is_null_arg(L, 1)) return pass_null(L);
    if (lua_type(L, 1) != LUA_TSTRING)
        return luaL_error(L, "cdc.epoch: expected an ISO-8601 string, got a %s",
                          luaL_typename(L, 1));
    dt_unit unit = unit_arg(L, 2, "cdc.epoch", "us");
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    int64_t v;
    if (dbz_iso_to_epoch(s, len, unit, &v, err, sizeof err) != 0)
        return luaL_error(L, "cdc.epoch: %s", err);
    lua_pushinteger(L, (lua_Integer)v);
    return 1;
}

/* cdc.interval(v [, style]) */
static int l_interval(lua_State *L)
{
    if (is_null_arg(L, 1)) return pass_null(L);
    dbz_value_spec spec = {.kind = DBZ_V_INTERVAL}; /* interval.handling.mode=string */
    if (lua_type(L, 1) == LUA_TNUMBER) {
        const char *style = luaL_optstring(L, 2, "iso");
        spec.kind = DBZ_V_DURATION;
        if (strcmp(style, "iso") == 0)
            spec.interval = DBZ_INTERVAL_ISO;
        else if (strcmp(style, "seconds") == 0)
            spec.interval = DBZ_INTERVAL_SECONDS;
        else
            return luaL_error(L, "cdc.interval: style \"%s\" is not \"iso\" or \"seconds\"", style);
    } else if (lua_type(L, 1) != LUA_TSTRING) {
        return luaL_error(L,
                          "cdc.interval: expected MicroDuration microseconds or an ISO-8601 "
                          "duration string, got a %s",
                          luaL_typename(L, 1));
    }
    return convert(L, "cdc.interval", &spec);
}

/* cdc.uuid(v) */
static int l_uuid(lua_State *L)
{
    if (is_null_arg(L, 1)) return pass_null(L);
    return convert(L, "cdc.uuid", &(dbz_value_spec){.kind = DBZ_V_UUID});
}

/* cdc.bytes(v [, mode [, as]]) */
static int l_bytes(lua_State *L)
{
    if (is_null_arg(L, 1)) return pass_null(L);
    dbz_value_spec spec = {.kind = DBZ_V_BYTES};
    const char *mode = luaL_optstring(L, 2, "bytes");
    if (dbz_parse_binary_mode(mode, &spec.binary) != 0)
        return luaL_error(L,
                          "cdc.bytes: mode \"%s\" is not one of \"bytes\", \"base64\", "
                          "\"base64-url-safe\", \"hex\" (binary.handling.mode)",
                          mode);
    const char *as = luaL_optstring(L, 3, "raw");
    spec.hex = strcmp(as, "hex") == 0;
    if (!spec.hex && strcmp(as, "raw") != 0)
        return luaL_error(L, "cdc.bytes: output \"%s\" is not \"raw\" or \"hex\"", as);
    return convert(L, "cdc.bytes", &spec);
}

/* cdc.bits(v [, length]) */
static int l_bits(lua_State *L)
{
    if (is_null_arg(L, 1)) return pass_null(L);
    dbz_value_spec spec = {.kind = DBZ_V_BITS};
    if (!lua_isnoneornil(L, 2)) spec.param = int_arg(L, 2, "cdc.bits", "length");
    return convert(L, "cdc.bits", &spec);
}

/* cdc.is_unavailable(v [, placeholder]) */
static int l_is_unavailable(lua_State *L)
{
    const char *ph = luaL_optstring(L, 2, DBZ_UNAVAILABLE);
    lua_pushboolean(L, dbz_value_is_unavailable(L, 1, ph));
    return 1;
}

/* cdc.json(v): exact JSON text of a Lua value (sorted keys, int64 exact). */
static int l_json(lua_State *L)
{
    char err[256];
    if (lua_isnoneornil(L, 1)) return pass_null(L);
    strbuf *b = lua_touserdata(L, lua_upvalueindex(1));
    strbuf_reset(b);
    lua_settop(L, 1);
    lua_createtable(L, 0, 1); /* row_json writes objects: wrap as {v = value}, strip it again */
    lua_pushvalue(L, 1);
    lua_setfield(L, 2, "v");
    if (row_json_append(b, L, 2, true, NULL, NULL, err, sizeof err) != 0) {
        const char *msg = err;
        if (strncmp(msg, "column \"v\"", 10) == 0) msg += 10;
        return luaL_error(L, "cdc.json: the value%s", msg);
    }
    lua_pushlstring(L, b->data + 5, b->len - 6); /* {"v":…} */
    return 1;
}

/* cdc.datetime(v [, unit]) */
static int l_datetime(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) return pass_null(L);
    dbz_value_spec spec = {.kind = DBZ_V_ZONED_TIMESTAMP, .precision = -1};
    if (lua_type(L, 1) == LUA_TNUMBER) {
        spec.kind = DBZ_V_TIMESTAMP;
        spec.unit = unit_arg(L, 2, "cdc.datetime", "ms");
        if (!lua_isinteger(L, 1)) { /* a fraction of a unit: floored */
            const lua_Number n = lua_tonumber(L, 1);
            if (!(n >= -9.2e18 && n <= 9.2e18))
                return luaL_error(L, "cdc.datetime: %f is out of range", n);
            lua_Integer v = (lua_Integer)n;
            if ((lua_Number)v > n) v--;
            lua_pushinteger(L, v);
            lua_replace(L, 1);
        }
    } else if (lua_type(L, 1) != LUA_TSTRING) {
        return luaL_error(L,
                          "cdc.datetime: expected an epoch number or an ISO-8601 string, got a %s",
                          luaL_typename(L, 1));
    }
    return convert(L, "cdc.datetime", &spec);
}

/* cdc.date(days) */
static int l_date(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) return pass_null(L);
    return convert(L, "cdc.date", &(dbz_value_spec){.kind = DBZ_V_DATE});
}

static int l_log(lua_State *L)
{
    int first = 1;
    log_level level = LOG_INFO;
    if (lua_type(L, 1) == LUA_TSTRING && lua_gettop(L) > 1 &&
        log_parse_level(lua_tostring(L, 1), &level) == 0)
        first = 2;
    if (level > log_get_level()) return 0;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = first; i <= lua_gettop(L); i++) {
        if (i > first) luaL_addchar(&b, ' ');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    log_msg(level, "pipeline.lua: %s", lua_tostring(L, -1));
    return 0;
}

static int l_env(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *value = getenv(name);
    if (value)
        lua_pushstring(L, value);
    else
        lua_settop(L, 2); /* the default, or nil */
    return 1;
}

void lua_module_push(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"datetime", l_datetime},
        {"date", l_date},
        {"log", l_log},
        {"env", l_env},
        {"decimal", l_decimal},
        {"time", l_time},
        {"datetime64", l_datetime64},
        {"epoch", l_epoch},
        {"interval", l_interval},
        {"uuid", l_uuid},
        {"bytes", l_bytes},
        {"bits", l_bits},
        {"is_unavailable", l_is_unavailable},
        {"json", l_json},
        {NULL, NULL},
    };
    luaL_newlibtable(L, functions);
    strbuf *bufs = lua_newuserdatauv(L, SCRATCH_BUFS * sizeof *bufs, 0);
    memset(bufs, 0, SCRATCH_BUFS * sizeof *bufs);
    if (luaL_newmetatable(L, SCRATCH_META)) {
        lua_pushcfunction(L, scratch_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    luaL_setfuncs(L, functions, 1); /* every function gets the scratch buffers as upvalue 1 */
    lua_pushlightuserdata(L, row_json_null());
    lua_setfield(L, -2, "null");
    lua_pushstring(L, CDCPIPE_VERSION);
    lua_setfield(L, -2, "version");
}
