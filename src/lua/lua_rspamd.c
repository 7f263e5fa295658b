/*
 * lua_rspamd: indimail.rspamd.check(msg [, opts]), the message stage's
 * check by rspamd over its HTTP protocol (src/net/rspamd.c), from a hook
 * only. The envelope headers (IP, Helo, From, Rcpt, Queue-Id, User) come
 * from the session. The check is counted in the call's pending_ops and
 * the coroutine yields; on_checked keeps the answer and resumes, and
 * push_check builds it in the hook's state. A call that ends while the
 * check runs cancels it.
 */
#include <string.h>

#include "lua_api.h"
#include "lua_hook_int.h"

#define RSPAMD_HOST_DEFAULT	"127.0.0.1"
#define RSPAMD_PORT_DEFAULT	11333	/* the normal worker's */
#define RSPAMD_TIMEOUT_DEFAULT	20	/* seconds, the whole check */
#define RSPAMD_TIMEOUT_MAX	3600
#define MS_PER_S		1000

static const char *const opt_names[] = {
	"host", "port", "timeout", "password", NULL,
};

void
hook_rspamd_cancel(struct hook_call *c)
{
	if (c->rspq == NULL)
		return;
	rspamd_cancel(c->rspq);
	c->rspq = NULL;
	c->pending_ops--;
}

/* { action=, score=, required_score=, subject=, symbols={NAME=score}, ms= } */
static void
push_reply(lua_State *L, const struct rspamd_reply *r, uint64_t ms)
{
	lua_createtable(L, 0, 6);
	lua_pushstring(L, r->action);
	lua_setfield(L, -2, "action");
	lua_pushnumber(L, r->score);
	lua_setfield(L, -2, "score");
	lua_pushnumber(L, r->required_score);
	lua_setfield(L, -2, "required_score");
	if (r->subject) {
		lua_pushstring(L, r->subject);
		lua_setfield(L, -2, "subject");
	}
	lua_createtable(L, 0, (int)r->nsymbols);
	for (size_t i = 0; i < r->nsymbols; i++) {
		lua_pushnumber(L, r->symbols[i].score);
		lua_setfield(L, -2, r->symbols[i].name);
	}
	lua_setfield(L, -2, "symbols");
	lua_pushinteger(L, (lua_Integer)ms);
	lua_setfield(L, -2, "ms");
}

/*
 * Pushes the answer kept in c: a table, or nil, the error and ms. Run as
 * the hook resumes (push_answer: protected, so a full state is a 451);
 * the reply's memory goes with the call if building it fails.
 */
static int
push_check(struct hook_call *c)
{
	lua_State *L = c->co;

	if (!c->rsp_ok) {
		lua_pushnil(L);
		lua_pushstring(L, buf_cstr(&c->rsp_error));
		lua_pushinteger(L, (lua_Integer)c->rsp_ms);
		return 3;
	}
	c->rsp_ok = 0;
	push_reply(L, &c->rsp_reply, c->rsp_ms);
	rspamd_reply_free(&c->rsp_reply);
	return 1;
}

static void
on_checked(void *arg, const struct rspamd_result *r)
{
	struct hook_call *c = arg;

	c->rspq = NULL;
	c->pending_ops--;
	c->rsp_ms = r->ms;
	buf_set(&c->rsp_error, r->error, strlen(r->error));
	if (r->reply) {		/* taken: built into a table as the hook resumes */
		c->rsp_reply = *r->reply;
		memset(r->reply, 0, sizeof(*r->reply));
		c->rsp_ok = 1;
	}
	c->push = push_check;
	hook_resume(c);
}

/* opts at index i; its strings stay referenced by opts. */
static void
read_opts(lua_State *L, int i, struct rspamd_target *t, const char **password)
{
	lua_Number s = RSPAMD_TIMEOUT_DEFAULT;

	t->host = RSPAMD_HOST_DEFAULT;
	t->port = RSPAMD_PORT_DEFAULT;
	*password = NULL;
	if (!lua_isnoneornil(L, i)) {
		luaL_checktype(L, i, LUA_TTABLE);
		hook_check_opts(L, i, "indimail.rspamd.check", opt_names);
		if (lua_getfield(L, i, "host") != LUA_TNIL)
			t->host = luaL_checkstring(L, -1);
		if (lua_getfield(L, i, "port") != LUA_TNIL)
			t->port = (int)luaL_checkinteger(L, -1);
		if (lua_getfield(L, i, "timeout") != LUA_TNIL)
			s = luaL_checknumber(L, -1);
		if (lua_getfield(L, i, "password") != LUA_TNIL)
			*password = luaL_checkstring(L, -1);
		lua_pop(L, 4);
	}
	if (t->port < 1 || t->port > 65535)
		luaL_error(L, "indimail.rspamd.check: port must be 1-65535");
	if (!(s > 0 && s <= RSPAMD_TIMEOUT_MAX))
		luaL_error(L, "indimail.rspamd.check: timeout must be seconds "
		    "in (0, %d]", RSPAMD_TIMEOUT_MAX);
	t->timeout_ms = (uint64_t)(s * MS_PER_S);
}

/* The envelope headers from the session (borrowed from ctx). */
static void
envelope_of(const struct hook_ctx *x, struct rspamd_envelope *e)
{
	memset(e, 0, sizeof(*e));
	e->ip = x->ip;
	e->helo = x->helo;
	e->from = x->sender;
	e->rcpts = x->rcpts;
	e->nrcpts = x->nrcpts;
	e->queue_id = x->queue_id;
	e->user = x->auth_user;
}

/*
 * indimail.rspamd.check(msg [, { host=, port=, timeout=, password= }])
 * -> { action=, score=, required_score=, symbols=, subject=, ms= } |
 * nil, "error text", ms  (yields)
 */
static int
l_check(lua_State *L)
{
	struct hook_call *c = hook_msg_call(L);
	const struct buf *m = c->ctx->message;
	struct rspamd_target t;
	struct rspamd_envelope e;

	if (*(struct hook_call **)lua_getextraspace(L) != c || c->co != L)
		return luaL_error(L, "indimail.rspamd.check can only be called "
		    "from the message's hook (not in a nested coroutine)");
	if (hook_get_loop() == NULL)
		return luaL_error(L, "indimail.rspamd.check: no event loop here");
	envelope_of(c->ctx, &e);
	read_opts(L, 2, &t, &e.password);
	buf_clear(&c->rsp_error);
	c->rsp_ok = 0;
	c->rspq = rspamd_check(hook_get_loop(), &t, &e, m->data, m->len,
	    on_checked, c, &c->rsp_error);
	if (c->rspq == NULL) {
		c->rsp_ms = 0;
		return push_check(c);
	}
	c->pending_ops++;
	return lua_yield(L, 0);
}

void
lua_rspamd_open(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "check", l_check }, { NULL, NULL },
	};

	lua_getglobal(L, "indimail");
	luaL_newlib(L, fns);
	lua_setfield(L, -2, "rspamd");
	lua_pop(L, 1);
}
