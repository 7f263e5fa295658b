/*
 * lua_config_read: typed readers of the fields of a config table. Each
 * checks the Lua type and range and raises "bad config: <where>: <why>"
 * with luaL_error (lua_check.c then puts the file and the key's line in
 * front); absent fields leave the default in place.
 */
#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "../mail/address.h"
#include "lua_config_int.h"

/* Raises "bad config: <where>: <why>"; never returns. */
int
cfg_bad(lua_State *L, const char *where, const char *why)
{
	return luaL_error(L, "bad config: %s: %s", where, why);
}

void
cfg_problem(lua_State *L, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	lua_pushvfstring(L, fmt, ap);
	va_end(ap);
	if (lua_getfield(L, LUA_REGISTRYINDEX, CFG_DEFERRED) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_error(L);
	}
	lua_rotate(L, -2, 1);
	lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
	lua_pop(L, 1);
}

char *
cfg_opt_string(lua_State *L, int t, const char *key, const char *where)
{
	char *s = NULL;

	lua_getfield(L, t, key);
	if (!lua_isnil(L, -1)) {
		if (lua_type(L, -1) != LUA_TSTRING)
			cfg_bad(L, where, "must be a string");
		s = xstrdup(lua_tostring(L, -1));
	}
	lua_pop(L, 1);
	return s;
}

void
cfg_set_string(lua_State *L, int t, const char *key, const char *where,
    char **dst)
{
	char *s = cfg_opt_string(L, t, key, where);

	if (s) {
		free(*dst);
		*dst = s;
	}
}

/* lua_pushfstring knows no %g: the numbers are formatted here. */
static void
out_of_range(lua_State *L, const char *where, double v, double lo, double hi)
{
	char why[128];

	snprintf(why, sizeof(why), "%g is out of range [%g, %g]", v, lo, hi);
	cfg_bad(L, where, why);
}

/* Number field in [lo, hi]; scale converts (e.g. seconds → ms). */
void
cfg_set_number(lua_State *L, int t, const char *key, const char *where,
    double lo, double hi, double scale, void *dst, int is_size)
{
	double v;

	lua_getfield(L, t, key);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return;
	}
	if (!lua_isnumber(L, -1))
		cfg_bad(L, where, "must be a number");
	v = lua_tonumber(L, -1);
	lua_pop(L, 1);
	if (v < lo || v > hi)
		out_of_range(L, where, v, lo, hi);
	if (is_size == 1)
		*(size_t *)dst = (size_t)(v * scale);
	else if (is_size == 2)
		*(long *)dst = (long)(v * scale);
	else
		*(int *)dst = (int)(v * scale);
}

/* An optional boolean field of table t (absent: 0). */
int
cfg_opt_boolean(lua_State *L, int t, const char *key, const char *where)
{
	int v;

	lua_getfield(L, t, key);
	if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
		cfg_bad(L, where, "must be true or false");
	v = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return v;
}

/* Every key of table t must be one of the names in allowed (NULL-ended). */
void
cfg_check_keys(lua_State *L, int t, const char *section, const char **allowed)
{
	lua_pushnil(L);
	while (lua_next(L, t)) {
		int ok = 0;
		if (lua_type(L, -2) == LUA_TSTRING)
			for (const char **a = allowed; *a; a++)
				ok |= strcmp(*a, lua_tostring(L, -2)) == 0;
		else if (lua_type(L, -2) == LUA_TNUMBER && allowed[0] &&
		    strcmp(allowed[0], "#") == 0)
			ok = 1;
		if (!ok)
			luaL_error(L, "bad config: %s: unknown key '%s'", section,
			    lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
			    : luaL_typename(L, -2));
		lua_pop(L, 1);
	}
}

/* Pushes field key of t if it is a table (returns 1), else nothing (0). */
int
cfg_sub_table(lua_State *L, int t, const char *key)
{
	lua_getfield(L, t, key);
	if (lua_istable(L, -1))
		return 1;
	if (!lua_isnil(L, -1))
		luaL_error(L, "bad config: %s: must be a table", key);
	lua_pop(L, 1);
	return 0;
}

int
cfg_choose(lua_State *L, const char *s, const char *where,
    const struct choice *list, const char *expected)
{
	for (; list->name; list++)
		if (strcmp(s, list->name) == 0)
			return list->value;
	return cfg_bad(L, where, expected);
}

void
cfg_string_list(lua_State *L, int t, const char *where, char ***out,
    size_t *n, int domains)
{
	size_t len = luaL_len(L, t);

	*out = xcalloc(len ? len : 1, sizeof(char *));
	for (size_t i = 0; i < len; i++) {
		const char *s;
		lua_rawgeti(L, t, (lua_Integer)i + 1);
		s = lua_tostring(L, -1);
		if (s == NULL)
			cfg_bad(L, where, "entries must be strings");
		if (domains && !address_valid_domain(s, strlen(s)))
			luaL_error(L, "bad config: %s: '%s' is not a domain name",
			    where, s);
		(*out)[(*n)++] = xstrdup(s);
		lua_pop(L, 1);
	}
}
