/*
 * lua_dns: indimail.dns.lookup(name [, type]), the API that yields. An
 * answer the resolver's cache holds is returned at once (no yield, the
 * stage may finish without waiting). Else the query is counted in the
 * call's pending_ops and the coroutine yields; the answer is copied into
 * the call (the resolver's memory is gone after the callback) and the
 * call resumed, which pushes it as the lookup's results.
 */
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "lua_api.h"
#include "lua_hook_int.h"

static struct dns *hook_dns;

void
hook_dns_set(struct dns *dns)
{
	hook_dns = dns;
}

void
hook_dns_clear(struct dns_pending *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->answers[i].value);
	free(d->answers);
	free(d->error);
	memset(d, 0, sizeof(*d));
}

/* Copies r into the call, where hook_dns_result pushes it from. */
static void
keep_result(struct hook_call *c, const struct dns_result *r)
{
	c->dns.status = r->status;
	c->dns.error = r->error ? xstrdup(r->error) : NULL;
	c->dns.n = r->n;
	c->dns.answers = xcalloc(r->n ? r->n : 1, sizeof(*r->answers));
	for (size_t i = 0; i < r->n; i++) {
		c->dns.answers[i].value = xstrdup(r->answers[i].value);
		c->dns.answers[i].preference = r->answers[i].preference;
	}
}

static void
on_dns(void *arg, const struct dns_result *r)
{
	struct hook_call *c = arg;

	c->pending_ops--;
	c->push = hook_dns_result;
	keep_result(c, r);
	hook_resume(c);
}

static int
cmp_mx(const void *a, const void *b)
{
	return ((const struct dns_answer *)a)->preference -
	    ((const struct dns_answer *)b)->preference;
}

/* Pushes (answers, "ok"|"nodata"|"nxdomain") or (nil, "tempfail: why"). */
int
hook_dns_result(struct hook_call *c)
{
	static const char *st[] = { "ok", "nodata", "nxdomain" };
	lua_State *co = c->co;
	struct dns_pending *d = &c->dns;

	if (d->status == DNS_TEMPFAIL) {
		lua_pushnil(co);
		lua_pushfstring(co, "tempfail: %s", d->error ? d->error : "?");
	} else {
		if (d->type == DNS_MX)
			qsort(d->answers, d->n, sizeof(*d->answers), cmp_mx);
		lua_createtable(co, (int)d->n, 0);
		for (size_t i = 0; i < d->n; i++) {
			if (d->type == DNS_MX) {
				lua_createtable(co, 0, 2);
				lua_pushinteger(co, d->answers[i].preference);
				lua_setfield(co, -2, "preference");
				lua_pushstring(co, d->answers[i].value);
				lua_setfield(co, -2, "host");
			} else
				lua_pushstring(co, d->answers[i].value);
			lua_rawseti(co, -2, (lua_Integer)i + 1);
		}
		lua_pushstring(co, st[d->status]);
	}
	hook_dns_clear(d);
	return 2;
}

/* indimail.dns.lookup(name [, type="A"]) -> answers, status  (yields) */
static int
l_dns_lookup(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	const char *type = luaL_optstring(L, 2, "A");
	struct hook_call *c = *(struct hook_call **)lua_getextraspace(L);
	struct dns_result r;
	enum dns_type t;

	if (dns_type_parse(type, &t) < 0)
		return luaL_error(L, "unknown DNS type '%s' (A, AAAA, MX, TXT, PTR)", type);
	if (c == NULL || c->co != L)
		return luaL_error(L, "indimail.dns.lookup can only be called "
		    "from a hook (not at load time, not in a nested coroutine)");
	if (hook_dns == NULL)
		return luaL_error(L, "no DNS resolver in this process");
	c->dns.type = t;
	if (dns_cached(hook_dns, name, t, &r)) {	/* kept in the call: */
		keep_result(c, &r);	/* a memory error while pushing */
		dns_result_free(&r);	/* leaks nothing */
		return hook_dns_result(c);
	}
	c->pending_ops++;
	dns_query(hook_dns, name, t, on_dns, c);
	return lua_yield(L, 0);
}

void
lua_hook_api_open(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "lookup", l_dns_lookup }, { NULL, NULL },
	};

	lua_getglobal(L, "indimail");
	luaL_newlib(L, fns);
	lua_setfield(L, -2, "dns");
	lua_pop(L, 1);
}
