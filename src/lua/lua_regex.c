/*
 * lua_regex: indimail.regex.compile(pattern [, flags]), PCRE2 regular
 * expressions for policies, from lrexlib (Debian lua-rex-pcre2) linked into
 * indimaild. The sandbox loads no C modules (no package.cpath), so the
 * library is opened here in C once per Lua state and only its compiler is
 * offered: the object it returns has lrexlib's methods (find, match, exec,
 * tfind). A match runs in C, outside the instruction budget; PCRE2's own
 * match limit (10 million steps) bounds a runaway pattern.
 */
#include <lauxlib.h>

#include "lua_api.h"

int	luaopen_rex_pcre2(lua_State *);

/*
 * indimail.regex.compile(pattern [, flags]) -> regex; upvalue 1: rex.new.
 * flags: lrexlib's compile flags, e.g. "i" (caseless), "x", "s", "m".
 * A bad pattern raises "bad regex 'PATTERN': why".
 */
static int
l_regex_compile(lua_State *L)
{
	const char *pattern = luaL_checkstring(L, 1);

	luaL_optstring(L, 2, NULL);
	lua_settop(L, 2);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	if (lua_pcall(L, 2, 1, 0) != LUA_OK)
		return luaL_error(L, "bad regex '%s': %s", pattern,
		    lua_tostring(L, -1));
	return 1;
}

void
lua_regex_open(lua_State *L)
{
	lua_getglobal(L, "indimail");
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, luaopen_rex_pcre2);
	lua_call(L, 0, 1);			/* rex: kept only as an upvalue */
	lua_getfield(L, -1, "new");
	lua_pushcclosure(L, l_regex_compile, 1);
	lua_setfield(L, -3, "compile");
	lua_pop(L, 1);
	lua_setfield(L, -2, "regex");
	lua_pop(L, 1);
}
