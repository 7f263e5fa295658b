/*
 * lua_counter: see lua_counter.h. Owns the process's backend pointer and
 * the Lua functions of indimail.counter; a session owns its hook_holds.
 * Every function is callable only from a running hook (the counts exist in
 * the workers and the queue manager, not while the file loads), checks its
 * arguments, and never yields: the shared-memory table answers at once.
 */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/buf.h"
#include "../lib/counter.h"
#include "../lib/xalloc.h"
#include "lua_counter.h"
#include "lua_hook_int.h"

#define KEY_MAX		1000		/* a window key, before its prefix */
#define HOLD_KEY_MAX	250		/* a hold key, before its prefix */
#define WINDOW_MAX	(86400 * 366)

static struct counter_backend local;
static const struct counter_backend *backend;
static long owner;			/* this process, for its holds */

/* ---- the local backend: the master's table --------------------------- */

static long
local_add(void *t, const char *key, unsigned window_s, long delta)
{
	return counter_add(t, key, window_s, delta);
}

static long
local_get(void *t, const char *key, unsigned window_s)
{
	(void)window_s;
	return counter_get(t, key);
}

static long
local_hold(void *t, const char *key, long delta)
{
	return counter_hold(t, key, owner, delta);
}

void
hook_set_counters(struct counter_table *t)
{
	backend = NULL;
	if (t == NULL)
		return;
	local = (struct counter_backend){ "local", local_add, local_get,
	    local_hold, t };
	owner = (long)getpid();
	backend = &local;
}

/* ---- holds of a session ----------------------------------------------- */

static int
holds_find(const struct hook_holds *h, const char *key)
{
	for (size_t i = 0; i < h->n; i++)
		if (strcmp(h->keys[i], key) == 0)
			return (int)i;
	return -1;
}

void
hook_holds_release(struct hook_holds *h)
{
	for (size_t i = 0; i < h->n; i++) {
		if (backend)
			backend->hold(backend->arg, h->keys[i], -1);
		free(h->keys[i]);
	}
	free(h->keys);
	h->keys = NULL;
	h->n = 0;
}

/* ---- the Lua side ----------------------------------------------------- */

/* The running hook's call; raises outside one or without counters. */
static struct hook_call *
check_context(lua_State *L, const char *fn)
{
	struct hook_call *c = *(struct hook_call **)lua_getextraspace(L);

	if (c == NULL || c->co != L)
		luaL_error(L, "indimail.counter.%s can only be called from a "
		    "hook (not at load time, not in a nested coroutine)", fn);
	if (backend == NULL)
		luaL_error(L, "indimail.counter.%s: no shared counters in this "
		    "process (they exist in indimaild's workers and queue "
		    "manager)", fn);
	return c;
}

/* Room for the longest prefix ("lua-hold:") and key, and the NUL. */
#define KEY_BUF		(sizeof("lua-hold:") + KEY_MAX)

/*
 * prefix..key into buf (KEY_BUF bytes) after checking key (argument 1): up
 * to max bytes, no control characters (a hold's owner suffix begins with
 * one). Built in C: a key is made on every counted MAIL and RCPT, and a
 * Lua string would be garbage at once. [-0, +0]
 */
static const char *
check_key(lua_State *L, const char *prefix, size_t max, char *buf)
{
	size_t n, p = strlen(prefix);
	const char *k = luaL_checklstring(L, 1, &n);

	if (n == 0 || n > max)
		luaL_error(L, "bad argument #1: a key of 1 to %d bytes", (int)max);
	for (size_t i = 0; i < n; i++)
		luaL_argcheck(L, (unsigned char)k[i] >= 0x20 && k[i] != 0x7f,
		    1, "a key without control characters");
	memcpy(buf, prefix, p);
	memcpy(buf + p, k, n + 1);
	return buf;
}

static unsigned
check_window(lua_State *L, int arg)
{
	lua_Integer w = luaL_checkinteger(L, arg);

	luaL_argcheck(L, w >= 1 && w <= WINDOW_MAX, arg,
	    "a window of 1 second to 366 days");
	return (unsigned)w;
}

static int
push_count(lua_State *L, long n, const char *fn)
{
	if (n < 0)
		return luaL_error(L, "indimail.counter.%s: the %s backend could "
		    "not count", fn, backend->name);
	lua_pushinteger(L, n);
	return 1;
}

/* indimail.counter.add(key, window_s [, delta=1]) -> count [-3, +1] */
static int
l_add(lua_State *L)
{
	char buf[KEY_BUF];
	unsigned w = check_window(L, 2);
	lua_Integer d = luaL_optinteger(L, 3, 1);
	const char *key;

	luaL_argcheck(L, d >= -1000000 && d <= 1000000, 3, "a delta of at "
	    "most a million");
	check_context(L, "add");
	key = check_key(L, "lua:", KEY_MAX, buf);
	return push_count(L, backend->add(backend->arg, key, w, (long)d),
	    "add");
}

/* indimail.counter.get(key, window_s) -> count [-2, +1] */
static int
l_get(lua_State *L)
{
	char buf[KEY_BUF];
	unsigned w = check_window(L, 2);
	const char *key;

	check_context(L, "get");
	key = check_key(L, "lua:", KEY_MAX, buf);
	return push_count(L, backend->get(backend->arg, key, w), "get");
}

/* The session's holds; raises in a hook without a session (route). */
static struct hook_holds *
check_holds(lua_State *L, const char *fn)
{
	struct hook_call *c = check_context(L, fn);

	if (c->ctx->holds == NULL)
		luaL_error(L, "indimail.counter.%s needs an SMTP session (it is "
		    "given back when the session ends)", fn);
	return c->ctx->holds;
}

/* indimail.counter.hold(key) -> count, the session's included [-1, +1] */
static int
l_hold(lua_State *L)
{
	char buf[KEY_BUF];
	struct hook_holds *h = check_holds(L, "hold");
	const char *key = check_key(L, "lua-hold:", HOLD_KEY_MAX, buf);
	long n;

	if (holds_find(h, key) >= 0)	/* held already: counted once */
		return push_count(L, backend->get(backend->arg, key, 0), "hold");
	n = backend->hold(backend->arg, key, 1);
	if (n >= 0) {
		h->keys = xrealloc(h->keys, (h->n + 1) * sizeof(*h->keys));
		h->keys[h->n++] = xstrdup(key);
	}
	return push_count(L, n, "hold");
}

/* indimail.counter.release(key) -> count [-1, +1] */
static int
l_release(lua_State *L)
{
	char buf[KEY_BUF];
	struct hook_holds *h = check_holds(L, "release");
	const char *key = check_key(L, "lua-hold:", HOLD_KEY_MAX, buf);
	int i = holds_find(h, key);

	if (i < 0)
		return push_count(L, backend->get(backend->arg, key, 0),
		    "release");
	free(h->keys[i]);
	h->keys[i] = h->keys[--h->n];
	return push_count(L, backend->hold(backend->arg, key, -1), "release");
}

/* indimail.counter.held(key) -> count [-1, +1] */
static int
l_held(lua_State *L)
{
	char buf[KEY_BUF];
	const char *key;

	check_context(L, "held");
	key = check_key(L, "lua-hold:", HOLD_KEY_MAX, buf);
	return push_count(L, backend->get(backend->arg, key, 0), "held");
}

void
lua_counter_open(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "add", l_add }, { "get", l_get }, { "hold", l_hold },
		{ "release", l_release }, { "held", l_held }, { NULL, NULL },
	};

	lua_getglobal(L, "indimail");
	luaL_newlib(L, fns);
	lua_setfield(L, -2, "counter");
	lua_pop(L, 1);
}
