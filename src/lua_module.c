/*
 * lua_module — the built-in `cdcpipe` Lua module's helpers (see include/cdcpipe/lua_module.h).
 * Every function raises a Lua error naming the bad argument; the pipeline turns that into an
 * event error with the event's topic/partition/offset.
 */
#include "cdcpipe/lua_module.h"

#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "cdcpipe/datetime.h"
#include "cdcpipe/log.h"
#include "cdcpipe/row_json.h"

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
        {"datetime", l_datetime}, {"date", l_date}, {"log", l_log}, {"env", l_env}, {NULL, NULL},
    };
    luaL_newlib(L, functions);
    lua_pushlightuserdata(L, row_json_null());
    lua_setfield(L, -2, "null");
    lua_pushstring(L, CDCPIPE_VERSION);
    lua_setfield(L, -2, "version");
}
