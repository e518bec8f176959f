/*
 * dbz_value — Debezium-encoded Lua values to ClickHouse text, one converter per kind (see
 * include/cdcpipe/dbz_value.h). Owns nothing; the text is built in the caller's scratch buffers
 * or in fixed-size arrays and pushed as a Lua string.
 */
#include "cdcpipe/dbz_value.h"

#include <string.h>

#include <lauxlib.h>

#include "cdcpipe/errbuf.h"

/* An integer, or a float with an integral value, at idx; false for anything else. */
static bool whole(lua_State *L, int idx, int64_t *v)
{
    int ok = 0;
    const lua_Integer i = lua_tointegerx(L, idx, &ok);
    if (!ok || lua_type(L, idx) != LUA_TNUMBER) return false;
    *v = (int64_t)i;
    return true;
}

/* "expected <what>, got a string"; a number where a text was expected is "a number", where a
 * whole number was expected "a fraction". */
static int wrong(lua_State *L, int idx, const char *what, char *err, size_t errlen)
{
    errbuf_set(err, errlen, "expected %s, got a %s", what, luaL_typename(L, idx));
    return -1;
}

static int not_whole(lua_State *L, int idx, const char *what, char *err, size_t errlen)
{
    errbuf_set(err, errlen, "expected %s, got a %s", what,
               lua_type(L, idx) == LUA_TNUMBER ? "fraction" : luaL_typename(L, idx));
    return -1;
}

static int decimal(lua_State *L, int v, int64_t scale, strbuf *b, char *err, size_t errlen)
{
    if (lua_type(L, v) == LUA_TNUMBER) {
        if (!lua_isinteger(L, v))
            return dbz_decimal_from_double(lua_tonumber(L, v), b, err, errlen);
        strbuf_printf(b, "%lld", (long long)lua_tointeger(L, v));
        return 0;
    }
    if (lua_type(L, v) != LUA_TSTRING) return wrong(L, v, "base64 text or a number", err, errlen);
    size_t len;
    const char *s = lua_tolstring(L, v, &len);
    return dbz_decimal_from_base64(s, len, scale, b, err, errlen);
}

static int vsdecimal(lua_State *L, int v, strbuf *b, char *err, size_t errlen)
{
    if (lua_type(L, v) != LUA_TTABLE) return wrong(L, v, "a {scale, value} table", err, errlen);
    const int top = lua_gettop(L);
    int rc = -1;
    if (lua_getfield(L, v, "value") != LUA_TSTRING) {
        errbuf_set(err, errlen,
                   "a VariableScaleDecimal table needs a base64 string \"value\", got a %s",
                   luaL_typename(L, -1));
    } else if (lua_getfield(L, v, "scale") != LUA_TNUMBER || !lua_isinteger(L, -1)) {
        errbuf_set(err, errlen, "a VariableScaleDecimal table needs an integer \"scale\", got a %s",
                   lua_type(L, -1) == LUA_TNUMBER ? "fraction" : luaL_typename(L, -1));
    } else {
        size_t len;
        const char *s = lua_tolstring(L, -2, &len);
        rc = dbz_decimal_from_base64(s, len, lua_tointeger(L, -1), b, err, errlen);
    }
    lua_settop(L, top);
    return rc;
}

/* The text of a string value, or NULL with the "expected" message in err. */
static const char *text(lua_State *L, int v, size_t *len, const char *what, char *err,
                        size_t errlen)
{
    if (lua_type(L, v) == LUA_TSTRING) return lua_tolstring(L, v, len);
    wrong(L, v, what, err, errlen);
    return NULL;
}

int dbz_value_convert(lua_State *L, int idx, const dbz_value_spec *spec, strbuf scratch[2],
                      char *err, size_t errlen)
{
    const int v = lua_absindex(L, idx);
    strbuf *b = &scratch[0], *raw = &scratch[1];
    strbuf_reset(b);
    strbuf_reset(raw);
    char t[DBZ_DATETIME64_LEN > DBZ_INTERVAL_LEN ? DBZ_DATETIME64_LEN : DBZ_INTERVAL_LEN];
    _Static_assert(sizeof t >= DBZ_TIME_LEN && sizeof t >= DBZ_UUID_LEN &&
                       sizeof t >= DT_DATETIME_LEN && sizeof t >= DT_DATE_LEN,
                   "one array holds every fixed-size result");
    t[0] = '\0';
    size_t len;
    const char *s;
    int64_t n;
    int rc = 0;
    switch (spec->kind) {
    case DBZ_V_DECIMAL:
        rc = decimal(L, v, spec->param, b, err, errlen);
        break;
    case DBZ_V_DECIMAL_TEXT:
        if (!(s = text(L, v, &len, "decimal text", err, errlen))) return -1;
        rc = dbz_decimal_check_text(s, len, b, err, errlen);
        break;
    case DBZ_V_VSDECIMAL:
        rc = vsdecimal(L, v, b, err, errlen);
        break;
    case DBZ_V_DATE:
        if (!whole(L, v, &n)) return not_whole(L, v, "whole days since 1970-01-01", err, errlen);
        rc = dt_format_date(n, t, err, errlen);
        break;
    case DBZ_V_TIME:
        if (!whole(L, v, &n))
            return not_whole(L, v, "a whole number of time units past midnight", err, errlen);
        rc = dbz_format_time(n, spec->unit, spec->precision, t, err, errlen);
        break;
    case DBZ_V_ZONED_TIME:
        if (!(s = text(L, v, &len, "ZonedTime text", err, errlen))) return -1;
        rc = dbz_format_zoned_time(s, len, spec->precision, t, err, errlen);
        break;
    case DBZ_V_TIMESTAMP:
        if (!whole(L, v, &n)) return not_whole(L, v, "a whole epoch number", err, errlen);
        if (spec->precision < 0)
            rc = dt_format_epoch(n, spec->unit, t, err, errlen);
        else
            rc = dbz_format_datetime64(n, spec->unit, spec->precision, t, err, errlen);
        break;
    case DBZ_V_ZONED_TIMESTAMP:
        if (!(s = text(L, v, &len, "ISO-8601 text", err, errlen))) return -1;
        if (spec->precision < 0)
            rc = dt_format_iso(s, len, t, err, errlen);
        else
            rc = dbz_format_datetime64_iso(s, len, spec->precision, t, err, errlen);
        break;
    case DBZ_V_DURATION:
        if (!whole(L, v, &n)) return not_whole(L, v, "whole microseconds", err, errlen);
        dbz_format_interval(n, spec->interval, t);
        break;
    case DBZ_V_INTERVAL:
        if (!(s = text(L, v, &len, "an ISO-8601 duration", err, errlen))) return -1;
        rc = dbz_interval_check_text(s, len, b, err, errlen);
        break;
    case DBZ_V_UUID:
        if (!(s = text(L, v, &len, "UUID text", err, errlen))) return -1;
        rc = dbz_format_uuid(s, len, t, err, errlen);
        break;
    case DBZ_V_BITS:
        if (!(s = text(L, v, &len, "base64 Bits", err, errlen))) return -1;
        rc = dbz_binary_decode(s, len, DBZ_BIN_BASE64, raw, err, errlen);
        if (rc == 0 && spec->param <= 0 && raw->len == 0) {
            errbuf_set(err, errlen, "no bytes and no length");
            return -1;
        }
        if (rc == 0) {
            char why[200];
            rc = dbz_bits_from_bytes((const unsigned char *)raw->data, raw->len,
                                     spec->param > 0 ? spec->param : 0, b, why, sizeof why);
            if (rc != 0) errbuf_set(err, errlen, "\"%s\": %s", dbz_quote(s, len).text, why);
        }
        break;
    case DBZ_V_BYTES:
        if (!(s = text(L, v, &len, "encoded bytes", err, errlen))) return -1;
        rc = dbz_binary_decode(s, len, spec->binary, spec->hex ? raw : b, err, errlen);
        if (rc == 0 && spec->hex) dbz_hex_encode((const unsigned char *)raw->data, raw->len, b);
        break;
    }
    if (rc != 0) return -1;
    if (t[0])
        lua_pushstring(L, t);
    else
        lua_pushlstring(L, b->len ? b->data : "", b->len);
    return 0;
}

bool dbz_value_is_unavailable(lua_State *L, int idx, const char *placeholder)
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
