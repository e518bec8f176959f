/*
 * test_lua_patterns — tests for src/lua_patterns.c (include/cdcpipe/lua_patterns.h): the
 * stoppable string.find/match/gmatch/gsub.
 *
 * Differential: one Lua chunk runs find, plain find, match, gmatch and gsub (string, function and
 * table replacements, a maximum count) over subjects and patterns that cover every pattern item,
 * anchors, init positions, captures and every error message, and prints all results; the text
 * must be the same in a state with Lua's own string library (the system's liblua) and in one with
 * lua_patterns installed. Then the check: it is called while a long match runs, and an error it
 * raises stops the match and reaches the caller.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "cdcpipe/lua_patterns.h"

static const char differential_chunk[] =
    "local cases = {\n"
    "  {'hello world', 'o'}, {'hello world', 'o', 6}, {'hello', 'l+'}, {'hello', '(h)(e)'},\n"
    "  {'hello', '()ll()'}, {'  trim me  ', '^%s*(.-)%s*$'}, {'key=val; k2=v2', '(%w+)=(%w+)'},\n"
    "  {'THE (quick) fox', '%((%a+)%)'}, {'f(a(b)c)d', '%b()'}, {'f(a(b c', '%b()'},\n"
    "  {'THE (quick) fox', '%f[%a]%a+'}, {'THE (quick) fox', '%f[%A]'}, {'abcabc', '(abc)%1'},\n"
    "  {'a.b', '.'}, {'a.b', '%.'}, {'', ''}, {'abc', ''}, {'abc', '^'}, {'abc', '$'},\n"
    "  {'abc', 'x*'}, {'aaa', 'a-b'}, {'aaab', 'a-b'}, {'aaab', 'a-'}, {'ab', 'a?b?c?'},\n"
    "  {'[x]', '[%[]'}, {'a]b', '[]]'}, {'a-b', '[a-]'}, {'a^b', '[%^b]+'}, {'0x1F', '%x+', 3},\n"
    "  {'h\\195\\169llo', '[\\128-\\255]+'}, {'abc', 'b', -1}, {'abc', 'b', -2}, {'abc', 'b', "
    "-10},\n"
    "  {'abc', 'b', 10}, {'abc', 'c', 4}, {'a\\0b', '%z'}, {'a\\0b', '\\0'}, {'a\\0b\\0', "
    "'b%z$'},\n"
    "  {'x = 1, y = 22', '(%a)%s*=%s*(%d+)'}, {'Tab\\tNew\\nline', '%c'}, {'A1 b2', '%u%d'},\n"
    "  {'A1 b2', '[%l%d]+'}, {'a,b;;c', '[^,;]+'}, {'a,b;;c', '[^,;]*'}, {'1.5e10', "
    "'^[+-]?%d+%.?%d*'},\n"
    "  {'hello', 'l*'}, {'hello', '^h'}, {'hello', '^e'}, {'hello', 'o$'}, {'he$llo', 'e$l'},\n"
    "  {'aaa', '^a-$'}, {'abc', '((a)(b))'}, {'abc', '(a)(b)(c)', 2}, {'hello world from lua', "
    "'%a+'},\n"
    "  {'%d', '%%d'}, {'p%q', 'p%%q'}, {'abc', 'abc', 1}, {'abcabc', 'cab'},\n"
    "  {'abc', '%'}, {'abc', '[a'}, {'abc', '[a%'}, {'abc', '(a'}, {'abc', 'a)'}, {'abc', '%1'},\n"
    "  {'abc', '(a)%2'}, {'abc', '%b'}, {'abc', '%bx'}, {'abc', '%fa'}, {'abc', '(()'},\n"
    "  {'abc', '(a%1)'}, {'abc', string.rep('(', 33) .. 'a' .. string.rep(')', 33)},\n"
    "  {string.rep('a', 300), string.rep('a?', 300) .. string.rep('a', 300)},\n"
    "}\n"
    "local out = {}\n"
    "local function show(...)\n"
    "  local t = table.pack(...)\n"
    "  for i = 1, t.n do t[i] = string.format('%q', tostring(t[i])) end\n"
    "  return table.concat(t, ',')\n"
    "end\n"
    "local function try(name, f, ...) out[#out + 1] = name .. ': ' .. show(pcall(f, ...)) end\n"
    "local repl_table = { hello = 'HI', a = false, b = 42 }\n"
    "for i, c in ipairs(cases) do\n"
    "  local s, p, init = c[1], c[2], c[3]\n"
    "  out[#out + 1] = '-- case ' .. i\n"
    "  try('find', string.find, s, p, init)\n"
    "  try('find plain', string.find, s, p, init, true)\n"
    "  try('match', string.match, s, p, init)\n"
    "  try('method', function() return s:match(p, init) end)\n"
    "  try('gmatch', function()\n"
    "    local r = {}\n"
    "    for a, b in string.gmatch(s, p, init) do r[#r + 1] = show(a, b) end\n"
    "    return table.concat(r, ' ')\n"
    "  end)\n"
    "  try('gsub string', string.gsub, s, p, '<%0>')\n"
    "  try('gsub captures', string.gsub, s, p, '[%1]')\n"
    "  try('gsub %%', string.gsub, s, p, '%%')\n"
    "  try('gsub bad %', string.gsub, s, p, '%x')\n"
    "  try('gsub number', string.gsub, s, p, 7)\n"
    "  try('gsub function', string.gsub, s, p, function(a, b) return b and a .. '|' .. b or nil "
    "end)\n"
    "  try('gsub table', string.gsub, s, p, repl_table)\n"
    "  try('gsub max 1', string.gsub, s, p, '#', 1)\n"
    "  try('gsub bad repl', string.gsub, s, p, {})\n"
    "end\n"
    "try('gsub boolean', string.gsub, 'abc', 'b', true)\n"
    "try('gsub returns a table', string.gsub, 'abc', 'b', function() return {} end)\n"
    "try('find no args', string.find)\n"
    "try('match number', string.match, 12345, 3)\n"
    "return table.concat(out, '\\n')\n";

/* Runs the differential chunk in L; returns its text (the caller frees it). */
static char *run_chunk(lua_State *L)
{
    if (luaL_loadstring(L, differential_chunk) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK)
        fail_msg("the chunk failed: %s", lua_tostring(L, -1));
    char *text = strdup(lua_tostring(L, -1));
    assert_non_null(text);
    lua_pop(L, 1);
    return text;
}

static int calls;

static int counting_check(lua_State *L)
{
    (void)L;
    calls++;
    return 0;
}

static void test_same_as_lua(void **state)
{
    (void)state;
    lua_State *stock = luaL_newstate();
    luaL_openlibs(stock);
    lua_State *ours = luaL_newstate();
    luaL_openlibs(ours);
    lua_patterns_install(ours, counting_check);
    char *want = run_chunk(stock);
    char *got = run_chunk(ours);
    if (strcmp(want, got) != 0) {
        const char *w = want, *g = got;
        while (*w && *w == *g)
            w++, g++;
        fail_msg("differs at byte %td:\n--- Lua's\n%.300s\n--- ours\n%.300s", w - want, w, g);
    }
    assert_non_null(strstr(got, "malformed pattern (ends with '%')"));
    assert_non_null(strstr(got, "pattern too complex"));
    free(want);
    free(got);
    lua_close(stock);
    lua_close(ours);
}

/* The method syntax (s:match) goes through the string metatable: it must reach ours too. */
static void test_installed_everywhere(void **state)
{
    (void)state;
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_patterns_install(L, counting_check);
    calls = 0;
    const char *chunk = "local s = 'x' .. string.rep(' ', 3000) .. 'y'\n"
                        "local a = s:match('^%s*(.-)%s*$')\n"
                        "local b = require('string').gsub(s, '%s+$', '')\n"
                        "return #a + #b\n";
    if (luaL_dostring(L, chunk) != LUA_OK) fail_msg("%s", lua_tostring(L, -1));
    assert_int_equal(lua_tointeger(L, -1), 3002 + 3002);
    assert_true(calls > 100); /* ~4.5 M steps of matching */
    lua_close(L);
}

static int stopping_check(lua_State *L)
{
    if (++calls == 50) return luaL_error(L, "stopped by the check");
    return 0;
}

/* A quadratic match (seconds without the check) stops when the check raises; every function. */
static void test_check_stops_a_match(void **state)
{
    (void)state;
    static const char *const calls_of[] = {
        "return s:match('^%s*(.-)%s*$')",          "return s:find('^%s*(.-)%s*$')",
        "for a in s:gmatch('%s*(.-)%s*$') do end", "return s:gsub('%s*(.-)%s*$', '%1')",
        "return big:find(needle, 1, true)",        "return s:find('(.-)%b()')",
    };
    for (size_t i = 0; i < sizeof calls_of / sizeof calls_of[0]; i++) {
        lua_State *L = luaL_newstate();
        luaL_openlibs(L);
        lua_patterns_install(L, stopping_check);
        calls = 0;
        char chunk[512];
        snprintf(chunk, sizeof chunk,
                 "s = 'x' .. string.rep(' ', 200000) .. 'y'\n"
                 "big = string.rep('a', 2000000)\n"
                 "needle = string.rep('a', 100000) .. 'b'\n"
                 "local ok, err = pcall(function() %s end)\n"
                 "return err\n",
                 calls_of[i]);
        if (luaL_dostring(L, chunk) != LUA_OK) fail_msg("%s", lua_tostring(L, -1));
        const char *err = lua_tostring(L, -1);
        if (!err || !strstr(err, "stopped by the check"))
            fail_msg("%s: not stopped (%s)", calls_of[i], err ? err : "no error");
        assert_int_equal(calls, 50);
        lua_close(L);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_lua),
        cmocka_unit_test(test_installed_everywhere),
        cmocka_unit_test(test_check_stops_a_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
