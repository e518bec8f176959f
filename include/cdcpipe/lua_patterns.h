/*
 * lua_patterns — string.find, string.match, string.gmatch and string.gsub that can be stopped.
 *
 * Lua's own pattern matcher is C code that runs to completion: no hook is called while it works,
 * and a pattern such as "^%s*(.-)%s*$" takes time quadratic in the subject (seconds for 40 KB of
 * spaces; with several "-" or "*" items, a higher power). These are Lua 5.4.4's functions with the
 * same semantics and messages, except that every LUA_PATTERNS_CHECK_STEPS steps of matching work
 * (a match attempt, a character a repetition or %b scans, a comparison of a plain find) they call
 * a check function, which may raise a Lua error to stop the match.
 */
#ifndef CDCPIPE_LUA_PATTERNS_H
#define CDCPIPE_LUA_PATTERNS_H

#include <lua.h>

#define LUA_PATTERNS_CHECK_STEPS 4096

/* Replaces find, match, gmatch and gsub in L's string library (the table `string` and the string
 * metatable's __index share) with the versions above. check(L) is called directly (not through
 * lua_call), with the stack of the string function that runs; it returns normally to go on or
 * raises an error. Call once, after luaL_openlibs and before any script runs. */
void lua_patterns_install(lua_State *L, lua_CFunction check);

#endif
