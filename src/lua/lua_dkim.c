/*
 * lua_dkim: DKIM for policies. msg:dkim_sign{ domain=, sign_failure= }
 * asks for a signature (data and message hooks): nothing is signed here,
 * the session signs the final message, after every edit, at the queue
 * write (smtp_tx.c), with dkim.keys[domain]. indimail.dkim.verify(msg)
 * (message hook) verifies the message as received on the thread pool
 * (dkim_job.h), never on the loop: the coroutine yields, on_answer
 * resumes it; a call that ends while it waits cancels the job.
 */
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "lua_api.h"
#include "lua_hook_int.h"

void
hook_dkim_cancel(struct hook_call *c)
{
	if (c->dkimq == NULL)
		return;
	dkim_job_cancel(c->dkimq);
	c->dkimq = NULL;
	c->pending_ops--;
}

void
hook_dkim_release(struct hook_call *c)
{
	if (c->dkima == NULL)
		return;
	dkim_msg_answer_free(c->dkima);
	free(c->dkima);
	c->dkima = NULL;
}

/* Pushes { { result=, domain=, selector=, algorithm=, b=, error= }, ... } */
static int
push_answer(struct hook_call *c)
{
	lua_State *L = c->co;
	const struct dkim_msg_answer *a = c->dkima;

	lua_createtable(L, (int)a->n, 0);
	for (size_t i = 0; i < a->n; i++) {
		const struct dkim_msg_sig *s = &a->sig[i];
		lua_createtable(L, 0, 6);
		hook_set_string(L, "result", dkim_msg_result_name(s->result));
		hook_set_string(L, "domain", s->domain);
		hook_set_string(L, "selector", s->selector);
		hook_set_string(L, "algorithm", s->algorithm);
		hook_set_string(L, "b", s->b);
		hook_set_string(L, "error", s->error);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	hook_dkim_release(c);
	return 1;
}

static void
on_answer(void *arg, struct dkim_msg_answer *a)
{
	struct hook_call *c = arg;

	c->dkimq = NULL;
	c->pending_ops--;
	c->dkima = xmalloc(sizeof(*c->dkima));
	*c->dkima = *a;		/* ours now */
	c->push = push_answer;
	hook_resume(c);
}

/* dns.servers, dns.timeout and dkim.timeout. */
static void
limits_of(lua_State *L, const struct config *cfg, struct dkim_msg_limits *lim)
{
	char why[128];

	memset(lim, 0, sizeof(*lim));
	if (spf_dns_servers_parse(cfg->dns_servers, &lim->servers, why,
	    sizeof(why)) < 0)
		luaL_error(L, "indimail.dkim.verify: dns.servers: %s", why);
	lim->dns_timeout_ms = cfg->dns_timeout_ms;
	lim->timeout_ms = cfg->dkim_timeout_ms;
}

/* indimail.dkim.verify(msg) -> { per signature }  (yields) */
static int
l_dkim_verify(lua_State *L)
{
	struct hook_call *c = hook_msg_call(L);
	struct dkim_msg_limits lim;
	const struct config *cfg = &c->main->cfg;

	if (c->co != L)
		return luaL_error(L, "indimail.dkim.verify can only be called "
		    "from the hook itself (not in a nested coroutine)");
	if (c->stage != HOOK_MESSAGE)
		return luaL_error(L, "indimail.dkim.verify needs the whole "
		    "message: call it in the message hook");
	if (hook_get_loop() == NULL)
		return luaL_error(L, "indimail.dkim.verify: no event loop in "
		    "this process");
	limits_of(L, cfg, &lim);
	dkim_jobs_setup(hook_get_loop(), cfg->dkim_jobs);
	c->dkimq = dkim_jobs_verify(&lim, c->ctx->message->data,
	    c->ctx->message->len, on_answer, c);
	c->pending_ops++;
	return lua_yield(L, 0);
}

static const char *
opt_string(lua_State *L, const char *k)
{
	const char *v;

	lua_getfield(L, 2, k);
	v = luaL_opt(L, luaL_checkstring, -1, NULL);
	lua_pop(L, 1);
	return v;
}

/* msg:dkim_sign{ domain=, sign_failure="tempfail"|"pass" } -> () */
static int
m_dkim_sign(lua_State *L)
{
	struct hook_call *c = hook_msg_call(L);
	const char *d, *fail;
	struct msg_edit *e = c->ctx->edit;

	luaL_checktype(L, 2, LUA_TTABLE);
	if (e == NULL)
		return luaL_error(L, "msg:dkim_sign() can be used in the data "
		    "and message hooks only");
	if ((d = opt_string(L, "domain")) == NULL)
		return luaL_error(L, "msg:dkim_sign(): domain is required");
	if (config_dkim_key(&c->main->cfg, d) == NULL)
		return luaL_error(L, "msg:dkim_sign(): no key for %s in "
		    "dkim.keys", d);
	fail = opt_string(L, "sign_failure");
	if (fail && strcmp(fail, "pass") != 0 && strcmp(fail, "tempfail") != 0)
		return luaL_error(L, "msg:dkim_sign(): sign_failure is "
		    "\"tempfail\" or \"pass\"");
	free(e->dkim_domain);
	e->dkim_domain = xstrdup(d);
	e->dkim_fail_pass = fail && strcmp(fail, "pass") == 0;
	return 0;
}

/* indimail.dkim.has_key(domain) -> selector or nil (hooks only) */
static int
l_dkim_has_key(lua_State *L)
{
	struct hook_call *c = hook_current_call();
	const char *d = luaL_checkstring(L, 1);
	const struct dkim_key_conf *k;

	if (c == NULL)
		return luaL_error(L, "indimail.dkim.has_key can only be called "
		    "from a hook");
	k = config_dkim_key(&c->main->cfg, d);
	lua_pushstring(L, k ? k->selector : NULL);
	return 1;
}

/* indimail.dkim.authserv_id() -> the configuration's hostname (hooks) */
static int
l_dkim_authserv_id(lua_State *L)
{
	struct hook_call *c = hook_current_call();

	if (c == NULL)
		return luaL_error(L, "indimail.dkim.authserv_id can only be "
		    "called from a hook");
	lua_pushstring(L, c->main->cfg.hostname);
	return 1;
}

void
hook_dkim_msg_methods(lua_State *L)
{
	lua_pushcfunction(L, m_dkim_sign);
	lua_setfield(L, -2, "dkim_sign");
}

void
lua_dkim_open(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "verify", l_dkim_verify }, { "has_key", l_dkim_has_key },
		{ "authserv_id", l_dkim_authserv_id }, { NULL, NULL },
	};

	lua_getglobal(L, "indimail");
	luaL_newlib(L, fns);
	lua_setfield(L, -2, "dkim");
	lua_pop(L, 1);
}
