/*
 * lua_sandbox: opens the standard library for indimail's Lua code and cuts
 * it down. Pure computation stays. Reading files (io.open in a read mode,
 * io.lines, file methods, dofile, loadfile, require of a new module) works
 * only while the configuration loads: the wrappers test a flag in the
 * registry, so a reference kept in a local at load time gets no further.
 * Running programs, writing files, loading C code or bytecode, the debug
 * library, stopping the collector and ending the process are never there;
 * print is a debug log line. Every refusal is an error naming the function.
 */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <string.h>

#include "../lib/log.h"
#include "lua_sandbox.h"

#define LOADING_KEY	"indimail.loading"

enum phase { NEVER, AT_LOAD };

struct rule {
	const char	*lib;	/* global table holding the function */
	const char	*name;
	enum phase	 when;
};

static const struct rule rules[] = {
	{ "os", "execute", NEVER }, { "os", "exit", NEVER },
	{ "os", "remove", NEVER }, { "os", "rename", NEVER },
	{ "os", "tmpname", NEVER }, { "os", "setlocale", NEVER },
	{ "io", "popen", NEVER }, { "io", "tmpfile", NEVER },
	{ "io", "input", NEVER }, { "io", "output", NEVER },
	{ "io", "read", NEVER }, { "io", "write", NEVER },
	{ "io", "flush", NEVER }, { "package", "loadlib", NEVER },
	{ "package", "searchpath", AT_LOAD },
};

/* Methods of an open file (reached through files opened at load time). */
static const struct rule file_rules[] = {
	{ "file", "read", AT_LOAD }, { "file", "seek", AT_LOAD },
	{ "file", "write", NEVER }, { "file", "flush", NEVER },
	{ "file", "setvbuf", NEVER },
};

static int
loading(lua_State *L)
{
	int on;

	lua_getfield(L, LUA_REGISTRYINDEX, LOADING_KEY);
	on = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return on;
}

void
sandbox_check_loading(lua_State *L, const char *name)
{
	if (!loading(L))
		luaL_error(L, "%s is only available while the configuration "
		    "loads", name);
}

void
sandbox_seal(lua_State *L)
{
	lua_pushboolean(L, 0);
	lua_setfield(L, LUA_REGISTRYINDEX, LOADING_KEY);
}

/* Calls upvalue up with the arguments. Stack: (args) -> (results) */
static int
call_upvalue(lua_State *L, int up)
{
	lua_pushvalue(L, lua_upvalueindex(up));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
	return lua_gettop(L);
}

/* Upvalue 1: the function's name. Never available. */
static int
sb_never(lua_State *L)
{
	return luaL_error(L, "%s is not allowed in indimail's Lua sandbox",
	    lua_tostring(L, lua_upvalueindex(1)));
}

/* Upvalue 1: the name, 2: the original, for the load phase only. */
static int
sb_at_load(lua_State *L)
{
	sandbox_check_loading(L, lua_tostring(L, lua_upvalueindex(1)));
	return call_upvalue(L, 2);
}

/* io.lines / file:lines: the iterator returned only works at load time too. */
static int
sb_lines(lua_State *L)
{
	int n = sb_at_load(L);

	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushvalue(L, 1);
	lua_pushcclosure(L, sb_at_load, 2);
	lua_replace(L, 1);
	return n;
}

/* io.lines(filename, ...): a file name is required (never stdin). */
static int
sb_io_lines(lua_State *L)
{
	luaL_checkstring(L, 1);
	return sb_lines(L);
}

/* io.open(filename [, mode]): load time only, read modes only. */
static int
sb_io_open(lua_State *L)
{
	const char *mode = luaL_optstring(L, 2, "r");

	luaL_checkstring(L, 1);
	sandbox_check_loading(L, "io.open");
	if (strcmp(mode, "r") != 0 && strcmp(mode, "rb") != 0)
		return luaL_error(L, "io.open: mode '%s' is not allowed (files "
		    "can only be read)", mode);
	return call_upvalue(L, 1);
}

/* io.close(file): a file is required (without one it closes stdout). */
static int
sb_io_close(lua_State *L)
{
	luaL_checkudata(L, 1, LUA_FILEHANDLE);
	return call_upvalue(L, 1);
}

/* print(...): a debug log line `event=lua_print text=...`, never stdout. */
static int
sb_print(lua_State *L)
{
	int n = lua_gettop(L);
	struct logline l;
	luaL_Buffer b;
	const char *s;
	size_t len;

	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, '\t');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	s = lua_tolstring(L, -1, &len);
	log_begin(&l, LOG_DEBUG, "lua_print");
	log_kvn(&l, "text", s, len);
	log_end(&l);
	return 0;
}

/* load(chunk [, name [, mode [, env]]]): text chunks only (upvalue 1). */
static int
sb_load(lua_State *L)
{
	size_t n;
	const char *s = lua_tolstring(L, 1, &n);

	if (s == NULL)
		luaL_checktype(L, 1, LUA_TFUNCTION);
	else if (n > 0 && s[0] == LUA_SIGNATURE[0])
		return luaL_error(L, "load: binary chunks are not allowed");
	if (lua_gettop(L) < 3)
		lua_settop(L, 2);	/* no env: keep argument 4 absent */
	lua_pushliteral(L, "t");
	if (lua_gettop(L) > 3)
		lua_replace(L, 3);
	return call_upvalue(L, 1);
}

/* loadfile(filename [, mode [, env]]): load time, text only, no stdin. */
static int
sb_loadfile(lua_State *L)
{
	const char *file = luaL_checkstring(L, 1);
	int env = !lua_isnone(L, 3);

	sandbox_check_loading(L, "loadfile");
	if (luaL_loadfilex(L, file, "t") != LUA_OK) {
		lua_pushnil(L);
		lua_insert(L, -2);
		return 2;		/* nil, message */
	}
	if (env) {
		lua_pushvalue(L, 3);
		if (!lua_setupvalue(L, -2, 1))	/* _ENV */
			lua_pop(L, 1);
	}
	return 1;
}

/* dofile(filename): load time, text only, no stdin. */
static int
sb_dofile(lua_State *L)
{
	const char *file = luaL_checkstring(L, 1);

	sandbox_check_loading(L, "dofile");
	lua_settop(L, 1);
	if (luaL_loadfilex(L, file, "t") != LUA_OK)
		return lua_error(L);
	lua_call(L, 0, LUA_MULTRET);
	return lua_gettop(L) - 1;
}

/* collectgarbage([opt, ...]): "count" and "step" only (upvalue 1). */
static int
sb_collectgarbage(lua_State *L)
{
	const char *opt = luaL_optstring(L, 1, "collect");

	if (strcmp(opt, "count") != 0 && strcmp(opt, "step") != 0)
		return luaL_error(L, "collectgarbage: option '%s' is not allowed "
		    "(only \"count\" and \"step\")", opt);
	return call_upvalue(L, 1);
}

/* require(name): a search at load time (upvalue 1), then loaded ones only. */
static int
sb_require(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);

	if (loading(L))
		return call_upvalue(L, 1);
	lua_settop(L, 1);
	lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
	lua_getfield(L, 2, name);
	if (!lua_toboolean(L, -1))
		return luaL_error(L, "require: module '%s' was not loaded while "
		    "the configuration loaded", name);
	return 1;
}

/*
 * package.searchers[2]: Lua files on package.path, in text mode. Upvalue 1:
 * the package table, 2: the original package.searchpath.
 */
static int
sb_search_lua(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	const char *file;

	lua_settop(L, 1);
	lua_pushvalue(L, lua_upvalueindex(2));
	lua_pushvalue(L, 1);
	if (lua_getfield(L, lua_upvalueindex(1), "path") != LUA_TSTRING)
		return luaL_error(L, "'package.path' must be a string");
	lua_call(L, 2, 2);
	if ((file = lua_tostring(L, 2)) == NULL)
		return 1;		/* searchpath's "no file ..." message */
	if (luaL_loadfilex(L, file, "t") != LUA_OK)
		return luaL_error(L, "error loading module '%s' from file "
		    "'%s':\n\t%s", name, file, lua_tostring(L, -1));
	lua_pushvalue(L, 2);		/* the loader's second argument */
	return 2;
}

/* Replaces t[name] (t on top) by a closure of fn over (label, old value). */
static void
wrap(lua_State *L, const char *label, const char *name, lua_CFunction fn)
{
	lua_pushstring(L, label);
	lua_getfield(L, -2, name);
	lua_pushcclosure(L, fn, 2);
	lua_setfield(L, -2, name);
}

/* Pushes the table a rule applies to: a library, or the file methods. */
static void
push_lib(lua_State *L, const char *lib)
{
	if (strcmp(lib, "file") == 0) {
		luaL_getmetatable(L, LUA_FILEHANDLE);
		lua_getfield(L, -1, "__index");
		lua_remove(L, -2);
	} else
		lua_getglobal(L, lib);
}

static void
apply(lua_State *L, const struct rule *r, size_t n)
{
	char label[64];

	for (size_t i = 0; i < n; i++) {
		snprintf(label, sizeof(label), "%s%s%s", r[i].lib,
		    strcmp(r[i].lib, "file") == 0 ? ":" : ".", r[i].name);
		push_lib(L, r[i].lib);
		wrap(L, label, r[i].name, r[i].when == NEVER ? sb_never :
		    sb_at_load);
		lua_pop(L, 1);
	}
}

/* Replaces t[name] (t on top) by fn with the old value as upvalue 1. */
static void
replace(lua_State *L, const char *name, lua_CFunction fn)
{
	lua_getfield(L, -1, name);
	lua_pushcclosure(L, fn, 1);
	lua_setfield(L, -2, name);
}

static void
restrict_base(lua_State *L)
{
	lua_pushglobaltable(L);
	lua_pushcfunction(L, sb_print);
	lua_setfield(L, -2, "print");
	lua_pushcfunction(L, sb_loadfile);
	lua_setfield(L, -2, "loadfile");
	lua_pushcfunction(L, sb_dofile);
	lua_setfield(L, -2, "dofile");
	replace(L, "load", sb_load);
	replace(L, "collectgarbage", sb_collectgarbage);
	replace(L, "require", sb_require);
	lua_pop(L, 1);
}

/* Searchers: preload, then Lua files in text mode; never C libraries. */
static void
restrict_package(lua_State *L)
{
	lua_getglobal(L, "package");
	lua_getfield(L, -1, "searchers");
	lua_pushvalue(L, -2);
	lua_getfield(L, -3, "searchpath");
	lua_pushcclosure(L, sb_search_lua, 2);
	lua_rawseti(L, -2, 2);
	lua_pushnil(L);
	lua_rawseti(L, -2, 4);
	lua_pushnil(L);
	lua_rawseti(L, -2, 3);
	lua_pop(L, 1);
	lua_pushnil(L);
	lua_setfield(L, -2, "cpath");
	lua_pop(L, 1);
}

/* io: no standard streams; files opened at load time stay read-only. */
static void
restrict_io(lua_State *L)
{
	static const char *streams[] = { "stdin", "stdout", "stderr" };

	lua_getglobal(L, "io");
	for (size_t i = 0; i < 3; i++) {
		lua_pushnil(L);
		lua_setfield(L, -2, streams[i]);
	}
	replace(L, "open", sb_io_open);
	replace(L, "close", sb_io_close);
	wrap(L, "io.lines", "lines", sb_io_lines);
	lua_pop(L, 1);
	luaL_getmetatable(L, LUA_FILEHANDLE);
	lua_pushboolean(L, 0);		/* getmetatable(f) = false: no __gc swap */
	lua_setfield(L, -2, "__metatable");
	lua_getfield(L, -1, "__index");
	wrap(L, "file:lines", "lines", sb_lines);
	lua_pop(L, 2);
	apply(L, file_rules, sizeof(file_rules) / sizeof(file_rules[0]));
}

void
sandbox_open(lua_State *L)
{
	static const luaL_Reg libs[] = {	/* no debug library */
		{ LUA_GNAME, luaopen_base },
		{ LUA_LOADLIBNAME, luaopen_package },
		{ LUA_COLIBNAME, luaopen_coroutine },
		{ LUA_TABLIBNAME, luaopen_table },
		{ LUA_IOLIBNAME, luaopen_io },
		{ LUA_OSLIBNAME, luaopen_os },
		{ LUA_STRLIBNAME, luaopen_string },
		{ LUA_MATHLIBNAME, luaopen_math },
		{ LUA_UTF8LIBNAME, luaopen_utf8 },
		{ NULL, NULL },
	};

	for (const luaL_Reg *l = libs; l->name; l++) {
		luaL_requiref(L, l->name, l->func, 1);
		lua_pop(L, 1);
	}
	lua_pushboolean(L, 1);
	lua_setfield(L, LUA_REGISTRYINDEX, LOADING_KEY);
	restrict_base(L);
	restrict_package(L);	/* keeps the original package.searchpath */
	restrict_io(L);
	apply(L, rules, sizeof(rules) / sizeof(rules[0]));
}
