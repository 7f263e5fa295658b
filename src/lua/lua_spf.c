/*
 * lua_spf: indimail.spf.check{ ip=, helo=, sender= }, an SPF check (RFC
 * 7208) from hooks only. The check runs on the thread pool (spf_job.h),
 * never on the loop: it is counted in the call's pending_ops, the
 * coroutine yields and on_answer resumes it. A cached answer returns at
 * once. A call that ends while it waits (session closed, hook timeout)
 * cancels the job. The process's job table is made on first use and
 * follows the configuration's spf = { ... } at each check.
 */
#include <string.h>

#include "lua_api.h"
#include "lua_hook_int.h"

static struct spf_jobs *hook_spf_jobs;

void
hook_spf_cancel(struct hook_call *c)
{
	if (c->spfq == NULL)
		return;
	spf_job_cancel(c->spfq);
	c->spfq = NULL;
	c->pending_ops--;
}

void
hook_spf_release(struct hook_call *c)
{
	spf_answer_free(&c->spfa);
}

/* Pushes result, { domain=, identity=, comment=, explanation=, header= }. */
static int
push_answer(struct hook_call *c)
{
	lua_State *L = c->co;
	const struct spf_answer *a = &c->spfa;

	lua_pushstring(L, spf_result_name(a->result));
	lua_createtable(L, 0, 5);
	hook_set_string(L, "domain", a->domain);
	hook_set_string(L, "identity", a->identity);
	hook_set_string(L, "comment", a->comment);
	hook_set_string(L, "explanation", a->explanation);
	hook_set_string(L, "header", a->header);
	spf_answer_free(&c->spfa);
	return 2;
}

static void
on_answer(void *arg, const struct spf_answer *a)
{
	struct hook_call *c = arg;

	c->spfq = NULL;
	c->pending_ops--;
	spf_answer_copy(&c->spfa, a);
	c->push = push_answer;
	hook_resume(c);
}

static const char *
opt_field(lua_State *L, const char *k)
{
	const char *v;

	lua_getfield(L, 1, k);
	v = luaL_opt(L, luaL_checkstring, -1, NULL);
	lua_pop(L, 1);
	if (v && strpbrk(v, "\r\n"))
		luaL_error(L, "indimail.spf.check: %s holds a line end", k);
	return v;
}

/* The limits of the configuration: dns.servers, dns.timeout, spf.timeout. */
static void
limits_of(lua_State *L, const struct config *cfg, struct spf_limits *lim)
{
	char why[128];

	memset(lim, 0, sizeof(*lim));
	if (spf_dns_servers_parse(cfg->dns_servers, &lim->servers, why,
	    sizeof(why)) < 0)
		luaL_error(L, "indimail.spf.check: dns.servers: %s", why);
	lim->dns_timeout_ms = cfg->dns_timeout_ms;
	lim->timeout_ms = cfg->spf_timeout_ms;
	lim->void_max = SPF_VOID_MAX;
}

/* indimail.spf.check{ ip=, helo=, sender= } -> result, info  (yields) */
static int
l_spf_check(lua_State *L)
{
	struct hook_call *c = *(struct hook_call **)lua_getextraspace(L);
	struct spf_query q;
	struct spf_limits lim;
	const struct config *cfg;

	luaL_checktype(L, 1, LUA_TTABLE);
	if (c == NULL || c->co != L)
		return luaL_error(L, "indimail.spf.check can only be called "
		    "from a hook (not at load time, not in a nested coroutine)");
	q.ip = opt_field(L, "ip");
	q.helo = opt_field(L, "helo");
	q.sender = opt_field(L, "sender");
	if (q.ip == NULL)
		return luaL_error(L, "indimail.spf.check: ip is required");
	if (hook_get_loop() == NULL)
		return luaL_error(L, "indimail.spf.check: no event loop in "
		    "this process");
	cfg = &c->main->cfg;
	q.receiver = cfg->hostname;
	limits_of(L, cfg, &lim);
	if (hook_spf_jobs == NULL)
		hook_spf_jobs = spf_jobs_new(hook_get_loop(), cfg->spf_jobs,
		    cfg->spf_cache_size, cfg->spf_cache_ttl);
	spf_jobs_configure(hook_spf_jobs, cfg->spf_jobs, cfg->spf_cache_ttl);
	if (spf_jobs_check(hook_spf_jobs, &lim, &q, &c->spfa, on_answer, c,
	    &c->spfq) == SPF_JOB_DONE)
		return push_answer(c);
	c->pending_ops++;
	return lua_yield(L, 0);
}

void
lua_spf_open(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "check", l_spf_check }, { NULL, NULL },
	};

	lua_getglobal(L, "indimail");
	luaL_newlib(L, fns);
	lua_setfield(L, -2, "spf");
	lua_pop(L, 1);
}
