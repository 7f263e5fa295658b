/*
 * lua_dmarc: DMARC for policies (RFC 7489; evaluation in src/mail/dmarc.c).
 * indimail.dmarc.check{ from_domain=, spf=, dkim= [, record=] } finds the
 * policy record (6.6.3: _dmarc.<From domain>, else _dmarc.<Organizational
 * Domain>) with the process's resolver on the loop (c-ares, dns.servers,
 * dns.timeout, the shared DNS cache): nothing blocks, so no thread-pool
 * job is needed. The coroutine yields while a query is out; a call that
 * ends meanwhile lets the answer go (the query cannot be recalled, its
 * timeout bounds it). With record= no DNS is asked. from_domain(msg) and
 * organizational_domain(d) are the evaluation's pieces, for policies.
 */
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "../mail/address.h"
#include "../mail/dmarc.h"
#include "lua_api.h"
#include "lua_hook_int.h"

#define DMARC_PREFIX	"_dmarc."

/* One check: its inputs (owned copies), where discovery is, the answer. */
struct dmarc_check {
	struct hook_call *c;
	char		 from[DMARC_DOMAIN_MAX];
	char		 org[DMARC_DOMAIN_MAX];	/* "": none */
	char		*spf_domain, *dkim_domain[DMARC_DKIM_MAX];
	char		*record;
	struct dmarc_input in;
	int		 at_org;	/* the query out is the org domain's */
	enum dmarc_result result;	/* before an evaluation */
	char		 reason[160];
	int		 evaluated;
	struct dmarc_outcome out;
};

static void
check_free(struct dmarc_check *q)
{
	if (q == NULL)
		return;
	free(q->spf_domain);
	for (size_t i = 0; i < DMARC_DKIM_MAX; i++)
		free(q->dkim_domain[i]);
	free(q->record);
	free(q);
}

void
hook_dmarc_release(struct hook_call *c)
{
	check_free(c->dmarcq);
	c->dmarcq = NULL;
}

static void
set_str(lua_State *L, const char *k, const char *v)
{
	lua_pushstring(L, v);	/* NULL: nil, the field is absent */
	lua_setfield(L, -2, k);
}

static void
set_bool(lua_State *L, const char *k, int v)
{
	lua_pushboolean(L, v);
	lua_setfield(L, -2, k);
}

/* The record's tags and the alignment, when one was evaluated. [-0, +0] */
static void
push_tags(lua_State *L, const struct dmarc_check *q)
{
	const struct dmarc_outcome *o = &q->out;

	set_str(L, "policy", dmarc_policy_name(o->policy));
	set_str(L, "disposition", dmarc_policy_name(o->disposition));
	set_str(L, "p", dmarc_policy_name(o->p));
	set_str(L, "sp", dmarc_policy_name(o->sp));
	set_bool(L, "sp_used", o->sp_used);
	set_str(L, "adkim", o->adkim_strict ? "s" : "r");
	set_str(L, "aspf", o->aspf_strict ? "s" : "r");
	lua_pushinteger(L, o->pct);
	lua_setfield(L, -2, "pct");
	set_bool(L, "spf_aligned", o->spf_aligned);
	set_bool(L, "dkim_aligned", o->dkim_aligned);
	set_str(L, "dkim_domain", o->dkim_domain);
	set_str(L, "rua", o->rua[0] ? o->rua : NULL);
	set_str(L, "record_domain", q->at_org ? q->org : q->from);
}

/* Pushes the answer table for q. [-0, +1] */
static void
push_outcome(lua_State *L, const struct dmarc_check *q)
{
	int evaluated = q->evaluated && q->out.result != DMARC_RESULT_PERMERROR;

	lua_createtable(L, 0, 20);
	set_str(L, "result", dmarc_result_name(q->evaluated ? q->out.result :
	    q->result));
	set_str(L, "from_domain", q->from);
	set_str(L, "organizational_domain", q->org[0] ? q->org : NULL);
	set_str(L, "spf_domain", q->spf_domain);
	if (evaluated)
		push_tags(L, q);
	else {
		set_str(L, "policy", "none");
		set_str(L, "disposition", "none");
		set_bool(L, "spf_aligned", 0);
		set_bool(L, "dkim_aligned", 0);
	}
	set_str(L, "reason", q->evaluated ? (q->out.reason[0] ? q->out.reason :
	    NULL) : (q->reason[0] ? q->reason : NULL));
}

static int
push_answer(struct hook_call *c)
{
	push_outcome(c->co, c->dmarcq);
	hook_dmarc_release(c);
	return 1;
}

static void
evaluate(struct dmarc_check *q, const char *record)
{
	q->in.from_domain = q->from;
	q->in.record = record;
	q->in.from_org = q->at_org;
	q->in.draw = arc4random_uniform(100);
	dmarc_evaluate(&q->in, &q->out);
	q->evaluated = 1;
}

static void ask(struct dmarc_check *q, const char *domain);

/*
 * What one _dmarc answer means (6.6.3): one DMARC record is evaluated;
 * none at the From domain sends us to the Organizational Domain; more
 * than one, or none at the end, is no policy; no answer a temperror.
 * 1 when the check is over, 0 when another query is out.
 */
static int
discover(struct dmarc_check *q, const struct dns_result *r)
{
	const char *found = NULL;
	size_t n = 0;

	if (r->status == DNS_TEMPFAIL) {
		q->result = DMARC_RESULT_TEMPERROR;
		snprintf(q->reason, sizeof(q->reason), "DNS: %s",
		    r->error ? r->error : "no answer");
		return 1;
	}
	for (size_t i = 0; r->status == DNS_OK && i < r->n; i++)
		if (dmarc_is_record(r->answers[i].value,
		    strlen(r->answers[i].value)) && n++ == 0)
			found = r->answers[i].value;
	if (n == 1) {
		evaluate(q, found);
		return 1;
	}
	if (n == 0 && !q->at_org && q->org[0] && strcmp(q->org, q->from)) {
		q->at_org = 1;
		ask(q, q->org);
		return 0;
	}
	q->result = DMARC_RESULT_NONE;
	snprintf(q->reason, sizeof(q->reason), n ? "more than one DMARC "
	    "record at _dmarc.%s" : "no DMARC record", q->at_org ? q->org :
	    q->from);
	return 1;
}

static void
on_txt(void *arg, const struct dns_result *r)
{
	struct dmarc_check *q = arg;
	struct hook_call *c = q->c;

	if (!c->finished && !discover(q, r))
		return;		/* the org domain's query is out */
	c->pending_ops--;
	c->push = push_answer;
	hook_resume(c);
}

static void
ask(struct dmarc_check *q, const char *domain)
{
	struct buf name = BUF_INIT;

	buf_printf(&name, DMARC_PREFIX "%s", domain);
	dns_query(hook_dns_get(), buf_cstr(&name), DNS_TXT, on_txt, q);
	buf_free(&name);
}

/* t.k (a string or nil) copied, or NULL. [-0, +0] */
static char *
opt_copy(lua_State *L, int t, const char *k)
{
	const char *v;

	lua_getfield(L, t, k);
	v = luaL_opt(L, luaL_checkstring, -1, NULL);
	lua_pop(L, 1);
	return v ? xstrdup(v) : NULL;
}

/* A result table { result=, domain= } at the top into a. [-1, +0] */
static void
auth_of(lua_State *L, struct dmarc_auth *a, char **keep, const char *what)
{
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return;
	}
	if (!lua_istable(L, -1))
		luaL_error(L, "indimail.dmarc.check: %s must be a table of "
		    "{ result=, domain= }", what);
	*keep = opt_copy(L, -1, "domain");
	lua_getfield(L, -1, "result");
	a->pass = lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "pass") == 0;
	a->domain = *keep;
	lua_pop(L, 2);
}

/* dkim = { {result=, domain=}, ... } of the table at 1 (first 8). */
static void
dkim_of(lua_State *L, struct dmarc_check *q)
{
	int t = lua_getfield(L, 1, "dkim");

	if (t != LUA_TNIL && t != LUA_TTABLE)
		luaL_error(L, "indimail.dmarc.check: dkim must be a list of "
		    "{ result=, domain= } (tx.notes.dkim)");
	for (lua_Integer i = 1; t == LUA_TTABLE && q->in.ndkim < DMARC_DKIM_MAX;
	    i++) {
		size_t k = q->in.ndkim;
		if (lua_geti(L, -1, i) == LUA_TNIL) {
			lua_pop(L, 1);
			break;
		}
		q->in.ndkim++;
		auth_of(L, &q->in.dkim[k], &q->dkim_domain[k], "each dkim entry");
	}
	lua_pop(L, 1);		/* the list */
}

/* The from_domain of the table at 1, lower case, into q->from. */
static void
from_of(lua_State *L, struct dmarc_check *q)
{
	size_t n;
	const char *d;

	lua_getfield(L, 1, "from_domain");
	d = lua_tolstring(L, -1, &n);
	if (d == NULL || n >= sizeof(q->from) || !address_valid_domain(d, n))
		luaL_error(L, "indimail.dmarc.check: from_domain must be a "
		    "domain name");
	for (size_t i = 0; i <= n; i++)
		q->from[i] = (char)(d[i] >= 'A' && d[i] <= 'Z' ? d[i] + 32 : d[i]);
	lua_pop(L, 1);
	if (dmarc_org_domain(q->from, q->org) < 0)
		q->org[0] = '\0';
}

/* The table at 1: every key known (raises before anything is made). */
static void
check_args(lua_State *L)
{
	static const char *const names[] = { "from_domain", "spf", "dkim",
	    "record", NULL };

	luaL_checktype(L, 1, LUA_TTABLE);
	hook_check_opts(L, 1, "indimail.dmarc.check", names);
}

/* Reads the table at 1 into q (at 2); raises on a bad field. */
static int
read_args(lua_State *L)
{
	struct dmarc_check *q = lua_touserdata(L, 2);

	from_of(L, q);
	lua_getfield(L, 1, "spf");
	auth_of(L, &q->in.spf, &q->spf_domain, "spf");
	dkim_of(L, q);
	q->record = opt_copy(L, 1, "record");
	return 0;
}

/* indimail.dmarc.check{ from_domain=, spf=, dkim= [, record=] } -> table
 * (yields while it asks DNS) */
static int
l_dmarc_check(lua_State *L)
{
	struct hook_call *c = hook_current_call();
	struct dmarc_check *q;

	check_args(L);
	if (c == NULL || c->co != L || hook_dns_get() == NULL)
		return luaL_error(L, "indimail.dmarc.check can only be called "
		    "from a hook (not in a nested coroutine) of a process with "
		    "a resolver");
	q = xcalloc(1, sizeof(*q));
	lua_pushcfunction(L, read_args);
	lua_pushvalue(L, 1);
	lua_pushlightuserdata(L, q);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		check_free(q);
		return lua_error(L);
	}
	q->c = c;
	if (q->record) {
		evaluate(q, q->record);
		push_outcome(L, q);
		check_free(q);
		return 1;
	}
	c->dmarcq = q;
	c->pending_ops++;
	ask(q, q->from);
	return lua_yield(L, 0);
}

/* indimail.dmarc.from_domain(msg) -> domain | nil, "absent" | "multiple" */
static int
l_dmarc_from_domain(lua_State *L)
{
	struct hook_call *c = hook_msg_call(L);
	const struct buf *m = c->ctx->message;
	char dom[DMARC_DOMAIN_MAX];

	if (m == NULL)
		return luaL_error(L, "indimail.dmarc.from_domain needs the "
		    "message: call it in the data or message hook");
	switch (dmarc_from_domain(m->data, c->ctx->header_len ?
	    c->ctx->header_len : m->len, dom)) {
	case DMARC_FROM_ONE:
		lua_pushstring(L, dom);
		return 1;
	case DMARC_FROM_MULTIPLE:
		lua_pushnil(L);
		lua_pushliteral(L, "multiple");
		return 2;
	default:
		lua_pushnil(L);
		lua_pushliteral(L, "absent");
		return 2;
	}
}

/* indimail.dmarc.organizational_domain(domain) -> domain | nil */
static int
l_dmarc_org_domain(lua_State *L)
{
	size_t n;
	const char *d = luaL_checklstring(L, 1, &n);
	char org[DMARC_DOMAIN_MAX];

	if (!address_valid_domain(d, n) || dmarc_org_domain(d, org) < 0)
		lua_pushnil(L);
	else
		lua_pushstring(L, org);
	return 1;
}

void
lua_dmarc_open(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "check", l_dmarc_check }, { "from_domain", l_dmarc_from_domain },
		{ "organizational_domain", l_dmarc_org_domain }, { NULL, NULL },
	};

	dmarc_init();
	lua_getglobal(L, "indimail");
	luaL_newlib(L, fns);
	lua_setfield(L, -2, "dmarc");
	lua_pop(L, 1);
}
