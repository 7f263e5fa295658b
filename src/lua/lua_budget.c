/*
 * lua_budget: makes the instruction budget of a hook inescapable.
 *
 * Every thread of a state carries the same count hook: the main thread gets
 * it here and a coroutine inherits it from the thread that creates it, so
 * coroutines made at load time or nested in a hook are counted too. Once
 * the current budget is spent every later count fails again (a yield where
 * one is possible, since nothing can catch it, else an error), and each Lua
 * function that could catch or outlive that failure (pcall, xpcall and its
 * message handler, load with a reader, coroutine.resume/wrap/close) fails
 * the same way when it returns, so it always reaches the hook runner.
 * __gc metamethods are refused: finalizers run with hooks off.
 */
#include <lauxlib.h>

#include "lua_budget.h"

#define BUDGET_STEP	1000

static struct budget *current;	/* charged, or NULL outside hooks */

void
budget_start(struct budget *b, long limit)
{
	b->used = 0;
	b->limit = limit;
	b->spent = 0;
}

void
budget_enter(struct budget *b)
{
	current = b;
}

void
budget_leave(void)
{
	current = NULL;
}

static int
spent(void)
{
	return current != NULL && current->spent;
}

/* Leaves the running frame for good: a yield if L may yield, else an error. */
static int
fail(lua_State *L)
{
	if (lua_isyieldable(L))
		return lua_yield(L, 0);
	return luaL_error(L, "instruction budget exceeded");
}

static void
on_count(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	if (current == NULL)
		return;
	current->used += BUDGET_STEP;
	if (current->used > current->limit)
		current->spent = 1;
	if (current->spent)
		(void)fail(L);
}

/* Tail and continuation of pcall/xpcall, as lbaselib's finishpcall. */
static int
pcall_done(lua_State *L, int status, lua_KContext extra)
{
	if (spent())
		return fail(L);
	if (status != LUA_OK && status != LUA_YIELD) {
		lua_pushboolean(L, 0);
		lua_pushvalue(L, -2);
		return 2;
	}
	return lua_gettop(L) - (int)extra;
}

/* pcall(f, ...) -> true, results | false, error  (may yield inside f) */
static int
b_pcall(lua_State *L)
{
	int status;

	luaL_checkany(L, 1);
	if (spent())
		return fail(L);
	lua_pushboolean(L, 1);
	lua_insert(L, 1);
	status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, pcall_done);
	return pcall_done(L, status, 0);
}

/* The handler xpcall installs: the policy's (upvalue 1) unless spent. */
static int
xpcall_handler(lua_State *L)
{
	if (spent())
		return 1;		/* the error as it is: no more policy code */
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 1);
	return 1;
}

/* xpcall(f, handler, ...) -> true, results | false, handler(error) */
static int
b_xpcall(lua_State *L)
{
	int status, n = lua_gettop(L);

	luaL_checktype(L, 2, LUA_TFUNCTION);
	if (spent())
		return fail(L);
	lua_pushvalue(L, 2);
	lua_pushcclosure(L, xpcall_handler, 1);
	lua_replace(L, 2);
	lua_pushboolean(L, 1);
	lua_pushvalue(L, 1);
	lua_rotate(L, 3, 2);		/* handler, true, f, args */
	status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, pcall_done);
	return pcall_done(L, status, 2);
}

/* Calls upvalue 1 with the arguments; a budget spent meanwhile is passed on. */
static int
guarded(lua_State *L)
{
	if (spent())
		return fail(L);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
	if (spent())
		return fail(L);
	return lua_gettop(L);
}

/* coroutine.resume(co, ...) and coroutine.close(co), guarded. */
static int
co_guarded(lua_State *L)
{
	luaL_argexpected(L, lua_type(L, 1) == LUA_TTHREAD, 1, "coroutine");
	return guarded(L);
}

/* coroutine.wrap(f): the original's function, guarded. */
static int
co_wrap(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TFUNCTION);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 1);
	lua_pushcclosure(L, guarded, 1);
	return 1;
}

/* setmetatable(t, mt) as lbaselib's, refusing mt.__gc: finalizers run
 * with hooks off, outside any budget, and their errors are swallowed. */
static int
b_setmetatable(lua_State *L)
{
	int t = lua_type(L, 2);

	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
	if (t == LUA_TTABLE) {
		lua_pushliteral(L, "__gc");
		if (lua_rawget(L, 2) != LUA_TNIL)
			return luaL_error(L, "setmetatable: __gc metamethods are "
			    "not allowed (finalizers run outside the instruction "
			    "budget)");
	}
	if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
		return luaL_error(L, "cannot change a protected metatable");
	lua_settop(L, 2);
	lua_setmetatable(L, 1);
	return 1;
}

/* t[name] = fn with the old t[name] as upvalue 1 (t on top). */
static void
wrap_field(lua_State *L, const char *name, lua_CFunction fn)
{
	lua_getfield(L, -1, name);
	lua_pushcclosure(L, fn, 1);
	lua_setfield(L, -2, name);
}

void
budget_open(lua_State *L)
{
	lua_sethook(L, on_count, LUA_MASKCOUNT, BUDGET_STEP);
	lua_pushglobaltable(L);
	lua_pushcfunction(L, b_pcall);
	lua_setfield(L, -2, "pcall");
	lua_pushcfunction(L, b_xpcall);
	lua_setfield(L, -2, "xpcall");
	wrap_field(L, "load", guarded);
	lua_pushcfunction(L, b_setmetatable);
	lua_setfield(L, -2, "setmetatable");
	lua_getfield(L, -1, "coroutine");
	wrap_field(L, "resume", co_guarded);
	wrap_field(L, "close", co_guarded);
	wrap_field(L, "wrap", co_wrap);
	lua_pop(L, 2);
}
