/*
 * lua_authres: indimail.authres.parse(value), an Authentication-Results
 * field value (RFC 8601) read by src/mail/authres.c into a Lua table. It
 * does not yield and touches no daemon state, so the unit specs load the
 * same function through the indimail_test module (tests/helpers/testmod.c)
 * as authres_parse. Nothing here needs freeing: the parse lives on the C
 * stack and its scratch area in a userdata, so a Lua error leaks nothing.
 */
#include <lauxlib.h>

#include "../mail/authres.h"
#include "lua_api.h"

static void
set_span(lua_State *L, const char *key, struct authres_span s)
{
	if (s.s == NULL)
		return;
	lua_pushlstring(L, s.s, s.len);
	lua_setfield(L, -2, key);
}

/* A version: digits (at most AUTHRES_MAX_DIGITS, so it fits). */
static void
set_version(lua_State *L, const char *key, struct authres_span s)
{
	lua_Integer v = 0;
	size_t i;

	if (s.s == NULL)
		return;
	for (i = 0; i < s.len; i++)
		v = v * 10 + (s.s[i] - '0');
	lua_pushinteger(L, v);
	lua_setfield(L, -2, key);
}

/* Pushes { ["ptype.property"] = pvalue, ... }; the first of a key wins. */
static void
push_props(lua_State *L, const struct authres_result *r)
{
	size_t i;

	lua_createtable(L, 0, (int)r->nprops);
	for (i = 0; i < r->nprops; i++) {
		lua_pushlstring(L, r->props[i].key.s, r->props[i].key.len);
		if (lua_rawget(L, -2) == LUA_TNIL) {
			lua_pushlstring(L, r->props[i].key.s, r->props[i].key.len);
			lua_pushlstring(L, r->props[i].value.s,
			    r->props[i].value.len);
			lua_rawset(L, -4);
		}
		lua_pop(L, 1);
	}
}

/* Pushes { method=, version=, result=, reason=, props= }. */
static void
push_result(lua_State *L, const struct authres_result *r)
{
	lua_createtable(L, 0, 5);
	set_span(L, "method", r->method);
	set_version(L, "version", r->version);
	set_span(L, "result", r->result);
	set_span(L, "reason", r->reason);
	push_props(L, r);
	lua_setfield(L, -2, "props");
}

/*
 * parse(value) -> { authserv_id=, version=, results = { ... } }
 *               | nil, "byte N: why" [, authserv_id]
 * The third result: the id when it was read before the error (a caller
 * deciding whether a broken field claims to be someone's needs it).
 * [-1, +1 or +2|3]
 */
int
lua_authres_parse(lua_State *L)
{
	size_t n, i;
	const char *v = luaL_checklstring(L, 1, &n);
	char *scratch = lua_newuserdatauv(L, n, 0);
	struct authres ar;

	if (authres_parse(v, n, scratch, &ar) < 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "byte %I: %s", (lua_Integer)ar.errpos,
		    ar.error);
		if (ar.authserv_id.s == NULL)
			return 2;
		lua_pushlstring(L, ar.authserv_id.s, ar.authserv_id.len);
		return 3;
	}
	lua_createtable(L, 0, 3);
	set_span(L, "authserv_id", ar.authserv_id);
	set_version(L, "version", ar.version);
	lua_createtable(L, (int)ar.nresults, 0);
	for (i = 0; i < ar.nresults; i++) {
		push_result(L, &ar.results[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "results");
	return 1;
}

void
lua_authres_open(lua_State *L)
{
	lua_getglobal(L, "indimail");
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, lua_authres_parse);
	lua_setfield(L, -2, "parse");
	lua_setfield(L, -2, "authres");
	lua_pop(L, 1);
}
