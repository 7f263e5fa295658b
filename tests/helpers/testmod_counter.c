/*
 * testmod_counter: the Lua 5.4 module "indimail_counter" that
 * tests/unit/counter_spec.lua loads. It wraps src/lib/counter.c (a table
 * in shared memory) and forks real processes that count on it, so the spec
 * checks what the workers rely on: totals across processes, window expiry,
 * and a lock that survives a holder killed by SIGKILL. Every wait is
 * bounded. Stack effects are given as [-arguments, +results].
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "../../src/lib/counter.h"

#define TABLE_META	"indimail_counter.table"

struct ud {
	struct counter_table *t;
};

static struct counter_table *
check_table(lua_State *L)
{
	struct ud *u = luaL_checkudata(L, 1, TABLE_META);

	luaL_argcheck(L, u->t != NULL, 1, "destroyed table");
	return u->t;
}

/* __gc [-0, +0] */
static int
l_gc(lua_State *L)
{
	struct ud *u = luaL_checkudata(L, 1, TABLE_META);

	counter_destroy(u->t);
	u->t = NULL;
	return 0;
}

/* create(nslots) -> table [-1, +1] */
static int
l_create(lua_State *L)
{
	lua_Integer n = luaL_checkinteger(L, 1);
	struct ud *u;

	luaL_argcheck(L, n > 0 && n <= 1 << 20, 1, "1..1048576 slots");
	u = lua_newuserdatauv(L, sizeof(*u), 0);
	u->t = NULL;
	luaL_setmetatable(L, TABLE_META);
	u->t = counter_create((size_t)n);
	return 1;
}

/* t:add(key, window_s, delta) -> count [-4, +1] */
static int
l_add(lua_State *L)
{
	struct counter_table *t = check_table(L);
	const char *key = luaL_checkstring(L, 2);
	lua_Integer w = luaL_checkinteger(L, 3);

	luaL_argcheck(L, w >= 0 && w <= 86400 * 365, 3, "seconds");
	lua_pushinteger(L, counter_add(t, key, (unsigned)w,
	    (long)luaL_optinteger(L, 4, 1)));
	return 1;
}

/* t:get(key) -> count [-2, +1] */
static int
l_get(lua_State *L)
{
	struct counter_table *t = check_table(L);

	lua_pushinteger(L, counter_get(t, luaL_checkstring(L, 2)));
	return 1;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits up to secs for pid; 1 if it exited 0, else 0 (killed if late). */
static int
wait_ok(pid_t pid, double secs)
{
	double end = now() + secs;
	int st;

	while (now() < end) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) && WEXITSTATUS(st) == 0;
		if (r < 0)
			return 0;
		usleep(2000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return 0;
}

/* The child's work: rounds times, every key of the Lua list once. */
static void
child_count(lua_State *L, struct counter_table *t, lua_Integer rounds,
    unsigned window)
{
	lua_Integer nkeys = (lua_Integer)luaL_len(L, 4);

	for (lua_Integer r = 0; r < rounds; r++)
		for (lua_Integer k = 1; k <= nkeys; k++) {
			lua_rawgeti(L, 4, k);
			counter_add(t, lua_tostring(L, -1), window, 1);
			lua_pop(L, 1);
		}
	_exit(0);
}

/*
 * t:hammer(nprocs, rounds, {keys}, window_s) -> children that finished
 * Forks nprocs processes that each add 1 to every key rounds times, at
 * the same time, and waits for them (10 s in all). [-5, +1]
 */
static int
l_hammer(lua_State *L)
{
	struct counter_table *t = check_table(L);
	lua_Integer n = luaL_checkinteger(L, 2), rounds = luaL_checkinteger(L, 3);
	unsigned window = (unsigned)luaL_optinteger(L, 5, 60);
	pid_t pids[64];
	int ok = 0;

	luaL_checktype(L, 4, LUA_TTABLE);
	luaL_argcheck(L, n > 0 && n <= 64, 2, "1..64 processes");
	for (lua_Integer i = 0; i < n; i++)
		if ((pids[i] = fork()) == 0)
			child_count(L, t, rounds, window);
	for (lua_Integer i = 0; i < n; i++)
		ok += pids[i] > 0 && wait_ok(pids[i], 10);
	lua_pushinteger(L, ok);
	return 1;
}

/*
 * t:kill_adders(times, key) -> did a later add finish
 * times times: a child adds to key in a loop and is killed by SIGKILL
 * after a few milliseconds (often while it holds the lock); then a fresh
 * child must still get through an add within 5 s. [-3, +1]
 */
static int
l_kill_adders(lua_State *L)
{
	struct counter_table *t = check_table(L);
	lua_Integer times = luaL_checkinteger(L, 2);
	const char *key = luaL_checkstring(L, 3);
	pid_t pid;
	int st;

	luaL_argcheck(L, times > 0 && times <= 1000, 2, "1..1000");
	for (lua_Integer i = 0; i < times; i++) {
		if ((pid = fork()) == 0)
			for (;;)
				counter_add(t, key, 60, 1);
		usleep(3000 + (useconds_t)(i % 7) * 500);
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	if ((pid = fork()) == 0) {
		counter_add(t, key, 60, 1);
		_exit(0);
	}
	lua_pushboolean(L, wait_ok(pid, 5));
	return 1;
}

/* t:hold(key, owner, delta) -> count [-4, +1] */
static int
l_hold(lua_State *L)
{
	struct counter_table *t = check_table(L);

	lua_pushinteger(L, counter_hold(t, luaL_checkstring(L, 2),
	    (long)luaL_checkinteger(L, 3), (long)luaL_checkinteger(L, 4)));
	return 1;
}

/* t:forget_owner(owner) [-2, +0] */
static int
l_forget_owner(lua_State *L)
{
	counter_forget_owner(check_table(L), (long)luaL_checkinteger(L, 2));
	return 0;
}

static const luaL_Reg methods[] = {
	{ "hold", l_hold }, { "forget_owner", l_forget_owner },
	{ "add", l_add }, { "get", l_get }, { "hammer", l_hammer },
	{ "kill_adders", l_kill_adders }, { NULL, NULL },
};

static const luaL_Reg funcs[] = {
	{ "create", l_create }, { NULL, NULL },
};

/* [-0, +1] the module table */
int luaopen_indimail_counter(lua_State *);

int
luaopen_indimail_counter(lua_State *L)
{
	if (luaL_newmetatable(L, TABLE_META)) {
		lua_pushcfunction(L, l_gc);
		lua_setfield(L, -2, "__gc");
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
