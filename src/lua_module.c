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
#include "cdcpipe/debezium_types.h"
#include "cdcpipe/log.h"
#include "cdcpipe/row_json.h"
#include "cdcpipe/json_fast.h"
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

/* The module's scratch buffer i (0 or 1), emptied. */
static strbuf *scratch_n(lua_State *L, int i)
{
    strbuf *b = (strbuf *)lua_touserdata(L, lua_upvalueindex(1)) + i;
    strbuf_reset(b);
    return b;
}

static strbuf *scratch(lua_State *L)
{
    return scratch_n(L, 0);
}

/* Pushes the scratch buffer's text. */
static int push_scratch(lua_State *L, const strbuf *b)
{
    lua_pushlstring(L, b->len ? b->data : "", b->len);
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

/* An integer-valued number argument (floats with an integral value are accepted). */
static int64_t whole_arg(lua_State *L, int i, const char *fn, const char *what)
{
    int ok = 0;
    lua_Integer v = lua_tointegerx(L, i, &ok);
    if (!ok || lua_type(L, i) != LUA_TNUMBER)
        luaL_error(L, "%s: expected %s, got %s", fn, what,
                   lua_type(L, i) == LUA_TNUMBER ? "a fraction" : luaL_typename(L, i));
    return (int64_t)v;
}

/* cdc.decimal(v [, scale]) */
static int l_decimal(lua_State *L)
{
    char err[256];
    if (is_null_arg(L, 1)) return pass_null(L);
    strbuf *b = scratch(L);
    int rc;
    size_t len;
    const char *s;
    switch (lua_type(L, 1)) {
    case LUA_TSTRING:
        s = lua_tolstring(L, 1, &len);
        if (lua_isnoneornil(L, 2))
            rc = dbz_decimal_check_text(s, len, b, err, sizeof err);
        else
            rc = dbz_decimal_from_base64(s, len, int_arg(L, 2, "cdc.decimal", "scale"), b, err,
                                         sizeof err);
        break;
    case LUA_TTABLE: /* io.debezium.data.VariableScaleDecimal */
        if (lua_getfield(L, 1, "value") != LUA_TSTRING)
            return luaL_error(L,
                              "cdc.decimal: a VariableScaleDecimal table needs a base64 string "
                              "\"value\", got a %s",
                              luaL_typename(L, -1));
        if (lua_getfield(L, 1, "scale") != LUA_TNUMBER || !lua_isinteger(L, -1))
            return luaL_error(L,
                              "cdc.decimal: a VariableScaleDecimal table needs an integer "
                              "\"scale\", got a %s",
                              lua_type(L, -1) == LUA_TNUMBER ? "fraction" : luaL_typename(L, -1));
        s = lua_tolstring(L, -2, &len);
        rc = dbz_decimal_from_base64(s, len, lua_tointeger(L, -1), b, err, sizeof err);
        break;
    case LUA_TNUMBER: /* decimal.handling.mode=double */
        if (lua_isinteger(L, 1)) {
            strbuf_printf(b, "%lld", (long long)lua_tointeger(L, 1));
            rc = 0;
        } else {
            rc = dbz_decimal_from_double(lua_tonumber(L, 1), b, err, sizeof err);
        }
        break;
    default:
        return luaL_error(L,
                          "cdc.decimal: expected base64 text with a scale, decimal text, a "
                          "{scale, value} table or a number, got a %s",
                          luaL_typename(L, 1));
    }
    if (rc != 0) return luaL_error(L, "cdc.decimal: %s", err);
    return push_scratch(L, b);
}

/* cdc.time(v, unit [, precision]) or cdc.time(zoned_text [, nil [, precision]]) */
static int l_time(lua_State *L)
{
    char out[DBZ_TIME_LEN], err[256];
    if (is_null_arg(L, 1)) return pass_null(L);
    int precision = lua_isnoneornil(L, 3) ? -1 : precision_arg(L, 3, "cdc.time", -1);
    int rc;
    if (lua_type(L, 1) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, 1, &len);
        rc = dbz_format_zoned_time(s, len, precision, out, err, sizeof err);
    } else if (lua_type(L, 1) == LUA_TNUMBER) {
        if (lua_isnoneornil(L, 2))
            return luaL_error(L, "cdc.time: a number needs its unit: \"ms\" (Time), \"us\" "
                                 "(MicroTime) or \"ns\" (NanoTime)");
        dt_unit unit = unit_arg(L, 2, "cdc.time", NULL);
        int64_t v = whole_arg(L, 1, "cdc.time", "a whole number of time units past midnight");
        rc = dbz_format_time(v, unit, precision, out, err, sizeof err);
    } else {
        return luaL_error(L,
                          "cdc.time: expected a number past midnight or a ZonedTime string, "
                          "got a %s",
                          luaL_typename(L, 1));
    }
    if (rc != 0) return luaL_error(L, "cdc.time: %s", err);
    lua_pushstring(L, out);
    return 1;
}

/* cdc.datetime64(v [, unit [, precision]]) */
static int l_datetime64(lua_State *L)
{
    char out[DBZ_DATETIME64_LEN], err[256];
    if (is_null_arg(L, 1)) return pass_null(L);
    int rc;
    if (lua_type(L, 1) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, 1, &len);
        rc = dbz_format_datetime64_iso(s, len, precision_arg(L, 3, "cdc.datetime64", 6), out, err,
                                       sizeof err);
    } else if (lua_type(L, 1) == LUA_TNUMBER) {
        dt_unit unit = unit_arg(L, 2, "cdc.datetime64", "ms");
        int64_t v = whole_arg(L, 1, "cdc.datetime64", "a whole epoch number");
        rc =
            dbz_format_datetime64(v, unit, precision_arg(L, 3, "cdc.datetime64", unit_digits(unit)),
                                  out, err, sizeof err);
    } else {
        return luaL_error(L,
                          "cdc.datetime64: expected an epoch number or an ISO-8601 string, got a "
                          "%s",
                          luaL_typename(L, 1));
    }
    if (rc != 0) return luaL_error(L, "cdc.datetime64: %s", err);
    lua_pushstring(L, out);
    return 1;
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
    char err[256];
    if (is_null_arg(L, 1)) return pass_null(L);
    if (lua_type(L, 1) == LUA_TSTRING) { /* interval.handling.mode=string */
        size_t len;
        const char *s = lua_tolstring(L, 1, &len);
        strbuf *b = scratch(L);
        if (dbz_interval_check_text(s, len, b, err, sizeof err) != 0)
            return luaL_error(L, "cdc.interval: %s", err);
        return push_scratch(L, b);
    }
    if (lua_type(L, 1) != LUA_TNUMBER)
        return luaL_error(L,
                          "cdc.interval: expected MicroDuration microseconds or an ISO-8601 "
                          "duration string, got a %s",
                          luaL_typename(L, 1));
    int64_t us = whole_arg(L, 1, "cdc.interval", "whole microseconds");
    const char *style_name = luaL_optstring(L, 2, "iso");
    dbz_interval_style style;
    if (strcmp(style_name, "iso") == 0)
        style = DBZ_INTERVAL_ISO;
    else if (strcmp(style_name, "seconds") == 0)
        style = DBZ_INTERVAL_SECONDS;
    else
        return luaL_error(L, "cdc.interval: style \"%s\" is not \"iso\" or \"seconds\"",
                          style_name);
    char out[DBZ_INTERVAL_LEN];
    dbz_format_interval(us, style, out);
    lua_pushstring(L, out);
    return 1;
}

/* cdc.uuid(v) */
static int l_uuid(lua_State *L)
{
    char out[DBZ_UUID_LEN], err[256];
    if (is_null_arg(L, 1)) return pass_null(L);
    if (lua_type(L, 1) != LUA_TSTRING)
        return luaL_error(L, "cdc.uuid: expected UUID text, got a %s", luaL_typename(L, 1));
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    if (dbz_format_uuid(s, len, out, err, sizeof err) != 0)
        return luaL_error(L, "cdc.uuid: %s", err);
    lua_pushstring(L, out);
    return 1;
}

/* cdc.bytes(v [, mode [, as]]) */
static int l_bytes(lua_State *L)
{
    char err[256];
    if (is_null_arg(L, 1)) return pass_null(L);
    if (lua_type(L, 1) != LUA_TSTRING)
        return luaL_error(L, "cdc.bytes: expected an encoded string, got a %s",
                          luaL_typename(L, 1));
    const char *mode_name = luaL_optstring(L, 2, "bytes");
    dbz_binary_mode mode;
    if (dbz_parse_binary_mode(mode_name, &mode) != 0)
        return luaL_error(L,
                          "cdc.bytes: mode \"%s\" is not one of \"bytes\", \"base64\", "
                          "\"base64-url-safe\", \"hex\" (binary.handling.mode)",
                          mode_name);
    const char *as = luaL_optstring(L, 3, "raw");
    const bool hex = strcmp(as, "hex") == 0;
    if (!hex && strcmp(as, "raw") != 0)
        return luaL_error(L, "cdc.bytes: output \"%s\" is not \"raw\" or \"hex\"", as);
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    strbuf *b = scratch(L);
    if (dbz_binary_decode(s, len, mode, b, err, sizeof err) != 0)
        return luaL_error(L, "cdc.bytes: %s", err);
    if (!hex) return push_scratch(L, b);
    strbuf *text = scratch_n(L, 1);
    dbz_hex_encode((const unsigned char *)b->data, b->len, text);
    return push_scratch(L, text);
}

/* cdc.bits(v [, length]) */
static int l_bits(lua_State *L)
{
    char err[256];
    if (is_null_arg(L, 1)) return pass_null(L);
    if (lua_type(L, 1) != LUA_TSTRING)
        return luaL_error(L, "cdc.bits: expected base64 Bits, got a %s", luaL_typename(L, 1));
    const int64_t length = lua_isnoneornil(L, 2) ? 0 : int_arg(L, 2, "cdc.bits", "length");
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    strbuf *b = scratch(L);
    if (dbz_binary_decode(s, len, DBZ_BIN_BASE64, b, err, sizeof err) != 0)
        return luaL_error(L, "cdc.bits: %s", err);
    if (length == 0 && b->len == 0) return luaL_error(L, "cdc.bits: no bytes and no length");
    strbuf *text = scratch_n(L, 1);
    if (dbz_bits_from_bytes((const unsigned char *)b->data, b->len, length, text, err,
                            sizeof err) != 0)
        return luaL_error(L, "cdc.bits: \"%s\": %s", s, err);
    return push_scratch(L, text);
}

bool lua_module_is_unavailable(lua_State *L, int idx, const char *placeholder)
{
    const char *ph = placeholder ? placeholder : DBZ_UNAVAILABLE;
    const size_t plen = strlen(ph);
    const bool custom = strcmp(ph, DBZ_UNAVAILABLE) != 0;
    bool found = false;
    size_t len;
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *s = lua_tolstring(L, idx, &len);
        return dbz_is_unavailable_string(s, len, ph);
    }
    if (lua_type(L, idx) != LUA_TTABLE) return false;
    json_lazy_fill(L, idx);
    const lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    if (n == 1) { /* text[], uuid[], ... */
        if (lua_rawgeti(L, idx, 1) == LUA_TSTRING) {
            const char *s = lua_tolstring(L, -1, &len);
            found = dbz_is_unavailable_string(s, len, ph) ||
                    (!custom && len == 36 && strcmp(s, DBZ_UNAVAILABLE_UUID) == 0);
        }
        lua_pop(L, 1);
    } else if (n > 1 && (size_t)n == plen) { /* int[] / bigint[]: the placeholder's bytes */
        found = true;
        for (lua_Integer i = 1; found && i <= n; i++) {
            lua_rawgeti(L, idx, i);
            found = lua_isinteger(L, -1) && lua_tointeger(L, -1) == (unsigned char)ph[i - 1];
            lua_pop(L, 1);
        }
    } else if (n == 0) { /* hstore as a map: {placeholder = placeholder} */
        lua_pushnil(L);
        if (lua_next(L, idx) != 0) {
            found = lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING &&
                    strcmp(lua_tostring(L, -2), ph) == 0 && strcmp(lua_tostring(L, -1), ph) == 0;
            lua_pop(L, 1);
            if (lua_next(L, idx) != 0) {
                found = false; /* more than one entry */
                lua_pop(L, 2);
            }
        }
    }
    return found;
}

/* cdc.is_unavailable(v [, placeholder]) */
static int l_is_unavailable(lua_State *L)
{
    const char *ph = luaL_optstring(L, 2, DBZ_UNAVAILABLE);
    lua_pushboolean(L, lua_module_is_unavailable(L, 1, ph));
    return 1;
}

/* cdc.json(v): exact JSON text of a Lua value (sorted keys, int64 exact). */
static int l_json(lua_State *L)
{
    char err[256];
    if (lua_isnoneornil(L, 1)) return pass_null(L);
    strbuf *b = scratch(L);
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

static int l_datetime(lua_State *L)
{
    char out[DT_DATETIME_LEN], err[256];
    int type = lua_type(L, 1);
    if (type == LUA_TNIL || type == LUA_TNONE) {
        lua_pushnil(L);
        return 1;
    }
    if (type == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, 1, &len);
        if (dt_format_iso(s, len, out, err, sizeof err) != 0)
            return luaL_error(L, "cdc.datetime: %s", err);
        lua_pushstring(L, out);
        return 1;
    }
    if (type != LUA_TNUMBER)
        return luaL_error(L,
                          "cdc.datetime: expected an epoch number or an ISO-8601 string, got a %s",
                          luaL_typename(L, 1));
    const char *unit_name = luaL_optstring(L, 2, "ms");
    dt_unit unit;
    if (dt_parse_unit(unit_name, &unit) != 0)
        return luaL_error(
            L, "cdc.datetime: unit \"%s\" is not one of \"s\", \"ms\", \"us\", \"ns\"", unit_name);
    lua_Integer v;
    if (lua_isinteger(L, 1)) {
        v = lua_tointeger(L, 1);
    } else {
        lua_Number n = lua_tonumber(L, 1);
        if (!(n >= -9.2e18 && n <= 9.2e18))
            return luaL_error(L, "cdc.datetime: %f is out of range", n);
        v = (lua_Integer)n;
        if ((lua_Number)v > n) v--; /* floor */
    }
    if (dt_format_epoch((int64_t)v, unit, out, err, sizeof err) != 0)
        return luaL_error(L, "cdc.datetime: %s", err);
    lua_pushstring(L, out);
    return 1;
}

static int l_date(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        lua_pushnil(L);
        return 1;
    }
    if (!lua_isinteger(L, 1))
        return luaL_error(L, "cdc.date: expected whole days since 1970-01-01, got a %s",
                          lua_type(L, 1) == LUA_TNUMBER ? "fraction" : luaL_typename(L, 1));
    char out[DT_DATE_LEN], err[256];
    if (dt_format_date((int64_t)lua_tointeger(L, 1), out, err, sizeof err) != 0)
        return luaL_error(L, "cdc.date: %s", err);
    lua_pushstring(L, out);
    return 1;
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
