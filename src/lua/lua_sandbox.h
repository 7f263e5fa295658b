/*
 * lua_sandbox: the standard library as indimail's Lua code sees it (the
 * table is in docs/lua.md). Files may be read only while the configuration
 * loads; nothing may run programs, write files, load C code or bytecode.
 */
#ifndef INDIMAIL_LUA_SANDBOX_H
#define INDIMAIL_LUA_SANDBOX_H

#include <lua.h>

/* Opens the allowed libraries in a new state (instead of luaL_openlibs). */
void	sandbox_open(lua_State *);
/* The configuration has loaded: the load-time functions raise from now on. */
void	sandbox_seal(lua_State *);
/* Raises "NAME is only available while the configuration loads" after it. */
void	sandbox_check_loading(lua_State *, const char *name);

#endif
