/*
 * lua_clamd: indimail.clamd.scan(msg [, opts]), the message stage's virus
 * scan through clamd (src/net/clamd.c), from a hook only. The scan is
 * counted in the call's pending_ops and the coroutine yields; on_scanned
 * copies the answer into the call and resumes it. A call that ends while
 * the scan runs (hook timeout, session gone) cancels it before the
 * session's message can go, so clamd never reads freed memory.
 */
#include <string.h>

#include "lua_api.h"
#include "lua_hook_int.h"

#define CLAMD_SOCKET_DEFAULT	"/run/clamav/clamd.ctl"	/* Debian's */
#define CLAMD_PORT_DEFAULT	3310
#define CLAMD_TIMEOUT_DEFAULT	20	/* seconds, the whole scan */
#define CLAMD_CONNECT_DEFAULT	5	/* seconds, the connect */
#define CLAMD_TIMEOUT_MAX	3600	/* seconds */
#define MS_PER_S		1000

static const char *const opt_names[] = {
	"socket", "host", "port", "timeout", "connect_timeout", NULL,
};

void
hook_clamd_cancel(struct hook_call *c)
{
	if (c->clamq == NULL)
		return;
	clamd_cancel(c->clamq);
	c->clamq = NULL;
	c->pending_ops--;
}

/* Pushes ("clean"|"virus"|nil, name|error|nil, ms) on c->co; returns 3. */
static int
push_scan(struct hook_call *c)
{
	lua_State *L = c->co;

	if (c->clam_verdict == CLAMD_ERROR)
		lua_pushnil(L);
	else
		lua_pushstring(L, c->clam_verdict == CLAMD_VIRUS ? "virus" :
		    "clean");
	if (c->clam_verdict == CLAMD_CLEAN)
		lua_pushnil(L);
	else
		lua_pushstring(L, buf_cstr(&c->clam_text));
	lua_pushinteger(L, (lua_Integer)c->clam_ms);
	return 3;
}

static void
on_scanned(void *arg, const struct clamd_result *r)
{
	struct hook_call *c = arg;

	c->clamq = NULL;
	c->pending_ops--;
	c->clam_verdict = r->verdict;
	buf_set(&c->clam_text, r->text, strlen(r->text));
	c->clam_ms = r->ms;
	c->push = push_scan;
	hook_resume(c);
}

/* opts.NAME as seconds (> 0, bounded) in ms, or def seconds. */
static uint64_t
opt_seconds(lua_State *L, int i, const char *name, int def)
{
	lua_Number s;

	if (lua_getfield(L, i, name) == LUA_TNIL) {
		lua_pop(L, 1);
		return (uint64_t)def * MS_PER_S;
	}
	s = luaL_checknumber(L, -1);
	if (!(s > 0 && s <= CLAMD_TIMEOUT_MAX))
		luaL_error(L, "indimail.clamd.scan: %s must be seconds in "
		    "(0, %d]", name, CLAMD_TIMEOUT_MAX);
	lua_pop(L, 1);
	return (uint64_t)(s * MS_PER_S);
}

/* An option table's strings stay on L (index i) while the scan starts. */
static void
read_opts(lua_State *L, int i, struct clamd_target *t)
{
	memset(t, 0, sizeof(*t));
	t->port = CLAMD_PORT_DEFAULT;
	t->socket = CLAMD_SOCKET_DEFAULT;
	t->connect_ms = (uint64_t)CLAMD_CONNECT_DEFAULT * MS_PER_S;
	t->timeout_ms = (uint64_t)CLAMD_TIMEOUT_DEFAULT * MS_PER_S;
	if (lua_isnoneornil(L, i))
		return;
	luaL_checktype(L, i, LUA_TTABLE);
	hook_check_opts(L, i, "indimail.clamd.scan", opt_names);
	if (lua_getfield(L, i, "host") != LUA_TNIL) {
		t->host = luaL_checkstring(L, -1);
		t->socket = NULL;
	}
	if (lua_getfield(L, i, "socket") != LUA_TNIL) {
		if (t->host)
			luaL_error(L, "indimail.clamd.scan: socket or host, not both");
		t->socket = luaL_checkstring(L, -1);
	}
	if (lua_getfield(L, i, "port") != LUA_TNIL)
		t->port = (int)luaL_checkinteger(L, -1);
	if (t->port < 1 || t->port > 65535)
		luaL_error(L, "indimail.clamd.scan: port must be 1-65535");
	lua_pop(L, 3);	/* the strings stay referenced by opts */
	t->timeout_ms = opt_seconds(L, i, "timeout", CLAMD_TIMEOUT_DEFAULT);
	t->connect_ms = opt_seconds(L, i, "connect_timeout",
	    CLAMD_CONNECT_DEFAULT);
}

/*
 * indimail.clamd.scan(msg [, { socket= | host=, port=, timeout=,
 * connect_timeout= }]) -> "clean", nil, ms | "virus", name, ms |
 * nil, "error text", ms  (yields)
 */
static int
l_clamd_scan(lua_State *L)
{
	struct hook_call *c = hook_msg_call(L);
	const struct buf *m = c->ctx->message;
	struct clamd_target t;

	if (*(struct hook_call **)lua_getextraspace(L) != c || c->co != L)
		return luaL_error(L, "indimail.clamd.scan can only be called "
		    "from the message's hook (not in a nested coroutine)");
	if (hook_get_loop() == NULL)
		return luaL_error(L, "indimail.clamd.scan: no event loop here");
	read_opts(L, 2, &t);
	buf_clear(&c->clam_text);
	if (clamd_scan(hook_get_loop(), &t, m->data, m->len, on_scanned, c,
	    &c->clamq, &c->clam_text) < 0) {
		c->clam_verdict = CLAMD_ERROR;
		c->clam_ms = 0;
		return push_scan(c);
	}
	c->pending_ops++;
	return lua_yield(L, 0);
}

void
lua_clamd_open(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "scan", l_clamd_scan }, { NULL, NULL },
	};

	lua_getglobal(L, "indimail");
	luaL_newlib(L, fns);
	lua_setfield(L, -2, "clamd");
	lua_pop(L, 1);
}
