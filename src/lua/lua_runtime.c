/*
 * lua_runtime: creates a memory-capped lua_State with the sandboxed standard
 * library (lua_sandbox.c) and the instruction budget (lua_budget.c),
 * installs the `indimail` API (lua_api.c), runs the configuration file and
 * keeps the resulting struct config and hook lists. Hooks live in the
 * registry as registry["indimail.hooks"][stage] = { {name=, fn=}, ... }.
 */
#include <lauxlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "lua_api.h"
#include "lua_budget.h"
#include "lua_runtime.h"
#include "lua_sandbox.h"

static const char *stage_names[HOOK_NSTAGES] = {
	"connect", "helo", "auth", "mail", "rcpt", "data", "message", "route",
};

const char *
hook_stage_name(enum hook_stage s)
{
	return stage_names[s];
}

/* Allocator with a ceiling: a policy cannot eat the worker's memory. */
static void *
capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct runtime *rt = ud;
	size_t old = ptr ? osize : 0;

	if (nsize == 0) {
		free(ptr);
		rt->mem_used -= old;
		return NULL;
	}
	if (nsize > old && rt->mem_limit &&
	    rt->mem_used + (nsize - old) > rt->mem_limit)
		return NULL;
	ptr = realloc(ptr, nsize);
	if (ptr)
		rt->mem_used = rt->mem_used - old + nsize;
	return ptr;
}

static int
count_hooks(struct runtime *rt)
{
	lua_State *L = rt->L;

	lua_getfield(L, LUA_REGISTRYINDEX, "indimail.hooks");
	for (int s = 0; s < HOOK_NSTAGES; s++) {
		lua_getfield(L, -1, stage_names[s]);
		rt->nhooks[s] = (int)luaL_len(L, -1);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return 0;
}

struct runtime *
runtime_load(const char *path, struct buf *err)
{
	struct runtime *rt = xcalloc(1, sizeof(*rt));
	lua_State *L;

	rt->mem_limit = 0;	/* set from the config once it is known */
	rt->refs = 1;
	rt->path = xstrdup(path);
	config_defaults(&rt->cfg);
	L = lua_newstate(capped_alloc, rt);
	if (L == NULL)
		panic("cannot create a Lua state");
	/* no hook call: Lua leaves the main thread's extra space (which every
	 * new coroutine copies) uninitialized; the yielding APIs read it */
	memset(lua_getextraspace(L), 0, LUA_EXTRASPACE);
	rt->L = L;
	sandbox_open(L);
	budget_open(L);
	lua_api_open(L, rt);
	if (luaL_loadfilex(L, path, "t") != LUA_OK ||
	    lua_pcall(L, 0, 0, 0) != LUA_OK) {
		buf_printf(err, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1)
		    : "unknown error");
		runtime_unref(rt);
		return NULL;
	}
	sandbox_seal(L);
	if (lua_api_finish(L, rt, err) < 0) {
		runtime_unref(rt);
		return NULL;
	}
	count_hooks(rt);
	rt->mem_limit = rt->cfg.lua_memory;
	return rt;
}

void
runtime_ref(struct runtime *rt)
{
	rt->refs++;
}

void
runtime_unref(struct runtime *rt)
{
	if (--rt->refs > 0)
		return;
	lua_close(rt->L);
	config_free(&rt->cfg);
	free(rt->path);
	free(rt);
}

const char *
runtime_push_hook(struct runtime *rt, enum hook_stage s, int i)
{
	lua_State *L = rt->L;
	const char *name;

	lua_getfield(L, LUA_REGISTRYINDEX, "indimail.hooks");
	lua_getfield(L, -1, stage_names[s]);
	lua_rawgeti(L, -1, i + 1);
	lua_getfield(L, -1, "name");
	name = lua_tostring(L, -1);	/* anchored by the hook table */
	lua_getfield(L, -2, "fn");
	lua_replace(L, -5);
	lua_pop(L, 3);
	return name ? name : "?";
}
