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
#include "lua_domain.h"
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

/*
 * Counts each stage's hooks and indexes them: registry ref
 * rt->hook_index[s] = { fn1, name1, fn2, name2, ... }, so that starting a
 * hook (runtime_push_hook, on every stage of every message) reads two
 * array slots instead of looking up names. Runs where an allocation error
 * cannot escape: before the state's cap is set (the configuration) or
 * under the caller's lua_pcall (a domain file).
 */
static void
index_hooks(struct runtime *rt)
{
	lua_State *L = rt->L;

	lua_getfield(L, LUA_REGISTRYINDEX, "indimail.hooks");
	for (int s = 0; s < HOOK_NSTAGES; s++) {
		lua_getfield(L, -1, stage_names[s]);
		rt->nhooks[s] = (int)luaL_len(L, -1);
		lua_createtable(L, 2 * rt->nhooks[s], 0);
		for (int i = 1; i <= rt->nhooks[s]; i++) {
			lua_rawgeti(L, -2, i);
			lua_getfield(L, -1, "fn");
			lua_rawseti(L, -3, 2 * i - 1);
			lua_getfield(L, -1, "name");
			lua_rawseti(L, -3, 2 * i);
			lua_pop(L, 1);
		}
		rt->hook_index[s] = luaL_ref(L, LUA_REGISTRYINDEX);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

/* A runtime with a fresh sandboxed state and the API, nothing run yet. */
static struct runtime *
runtime_new(const char *path)
{
	struct runtime *rt = xcalloc(1, sizeof(*rt));
	lua_State *L;

	rt->mem_limit = 0;	/* set once the libraries are open */
	rt->refs = 1;
	rt->spare_co = LUA_NOREF;
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
	return rt;
}

/* Leaves rt's error (top of its stack) in err and frees rt. */
static struct runtime *
runtime_failed(struct runtime *rt, struct buf *err)
{
	const char *msg = lua_tostring(rt->L, -1);

	buf_printf(err, "%s", msg ? msg : "unknown error");
	runtime_unref(rt);
	return NULL;
}

/* Loads path; with r (`indimaild -t`), problems that leave the rest
 * checkable go in r and the load goes on (lua_check_report.c). */
static struct runtime *
load_main(const char *path, struct check_report *r, struct buf *err)
{
	struct runtime *rt = runtime_new(path);
	lua_State *L = rt->L;

	if (r)
		lua_check_collect(L, r);
	if (luaL_loadfilex(L, path, "t") != LUA_OK ||
	    lua_pcall(L, 0, 0, 0) != LUA_OK)
		return runtime_failed(rt, err);
	sandbox_seal(L);
	if (lua_api_finish(L, rt, err) < 0 ||
	    domain_rules_load(rt, err) < 0) {
		runtime_unref(rt);
		return NULL;
	}
	index_hooks(rt);
	rt->mem_limit = rt->cfg.lua_memory;
	return rt;
}

struct runtime *
runtime_load(const char *path, struct buf *err)
{
	return load_main(path, NULL, err);
}

struct runtime *
runtime_load_checking(const char *path, struct check_report *r)
{
	struct buf err = BUF_INIT;
	struct runtime *rt = load_main(path, r, &err);

	if (rt == NULL) {
		check_report_add(r, buf_cstr(&err));
		buf_printf(&r->text, "%s: the check stopped at the problem "
		    "above: what comes after it was not checked\n", path);
	}
	buf_free(&err);
	return rt;
}

/*
 * Runs a domain file, then seals its state and counts its hooks, all under
 * the caller's lua_pcall (the state has its cap by now). Arguments: path,
 * label, the runtime. [-3, +0]
 */
static int
domain_chunk(lua_State *L)
{
	const char *path = lua_tostring(L, 1), *name = lua_tostring(L, 2);
	struct runtime *rt = lua_touserdata(L, 3);

	if (luaL_loadfilex(L, path, "t") != LUA_OK)
		return lua_error(L);
	lua_call(L, 0, 1);
	if (lua_istable(L, -1))
		lua_api_add_stages(L, -1, name);
	else if (!lua_isnil(L, -1))
		return luaL_error(L, "%s: must return a table of stage "
		    "functions, not a %s", path, luaL_typename(L, -1));
	sandbox_seal(L);
	index_hooks(rt);
	return 0;
}

/* The budgets of domain: its own in domain_rules_limits, or the default. */
static struct domain_limit
domain_limit(const struct config *c, const char *domain)
{
	for (size_t i = 0; i < c->ndomain_limits; i++)
		if (strcmp(c->domain_limits[i].domain, domain) == 0)
			return c->domain_limits[i];
	return c->domain_default;
}

/* What a domain file's state takes from the configuration's. */
static void
inherit_config(struct config *own, const struct config *parent)
{
	if (parent->lua_dir)
		own->lua_dir = xstrdup(parent->lua_dir);
	own->npolicy_path = parent->npolicy_path;
	own->policy_path = parent->npolicy_path ?
	    xcalloc(parent->npolicy_path, sizeof(char *)) : NULL;
	for (size_t i = 0; i < parent->npolicy_path; i++)
		own->policy_path[i] = xstrdup(parent->policy_path[i]);
}

struct runtime *
runtime_load_domain(const char *path, const char *domain,
    const struct config *parent, struct buf *err)
{
	struct runtime *rt = runtime_new(path);
	struct domain_limit lim = domain_limit(parent, domain);
	lua_State *L = rt->L;
	struct budget b;
	int rc;

	rt->domain = xstrdup(domain);
	rt->cfg.hook_instructions = lim.instructions;
	inherit_config(&rt->cfg, parent);
	domain_rules_prepare(L, rt);	/* package.path: lua/stdlib */
	lua_pushcfunction(L, domain_chunk);
	lua_pushstring(L, path);
	lua_pushfstring(L, "domain:%s", domain);
	lua_pushlightuserdata(L, rt);
	rt->mem_limit = rt->mem_used + lim.memory;
	budget_start(&b, lim.instructions);
	budget_enter(&b);	/* a loop at load time ends too */
	rc = lua_pcall(L, 3, 0, 0);
	budget_leave();
	if (rc != LUA_OK)
		return runtime_failed(rt, err);
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
	domain_rules_free(rt->domains);
	free(rt->domain);
	config_free(&rt->cfg);
	free(rt->path);
	free(rt);
}

const char *
runtime_push_hook(struct runtime *rt, enum hook_stage s, int i)
{
	lua_State *L = rt->L;
	const char *name;

	lua_rawgeti(L, LUA_REGISTRYINDEX, rt->hook_index[s]);
	lua_rawgeti(L, -1, 2 * i + 1);		/* fn */
	lua_rawgeti(L, -2, 2 * i + 2);		/* name */
	name = lua_tostring(L, -1);	/* anchored by the index */
	lua_pop(L, 1);
	lua_remove(L, -2);
	return name ? name : "?";
}
