/*
 * lua_dns: indimail.dns.lookup(name [, type]), the API that yields. An
 * answer the resolver's cache holds is returned at once (no yield, the
 * stage may finish without waiting). Else the query is counted in the
 * call's pending_ops and the coroutine yields; the answer is copied into
 * the call (the resolver's memory is gone after the callback) and the
 * call resumed, which pushes it as the lookup's results.
 * indimail.dns.lookup_all(names [, type]) sends its queries at once: each
 * is counted in pending_ops, and the call resumes when the last is in.
 */
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "lua_api.h"
#include "lua_hook_int.h"

/* The most names one lookup_all may ask for (each is a query in flight). */
#define DNS_LOOKUP_ALL_MAX	64

/* lookup_all's queries: one slot each, the call resumed when left is 0. */
struct dns_slot {
	struct dns_batch *b;
	struct dns_pending r;
};

struct dns_batch {
	struct hook_call *c;
	size_t		 n, left;
	struct dns_slot	*slot;
};

static struct dns *hook_dns;

void
hook_dns_set(struct dns *dns)
{
	hook_dns = dns;
}

struct dns *
hook_dns_get(void)
{
	return hook_dns;
}

static void
batch_free(struct dns_batch *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++)
		hook_dns_clear(&b->slot[i].r);
	free(b->slot);
	free(b);
}

void
hook_dns_clear(struct dns_pending *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->answers[i].value);
	free(d->answers);
	free(d->error);
	batch_free(d->batch);
	memset(d, 0, sizeof(*d));
}

/* Copies the resolver's answer r into d (r is gone after the callback). */
static void
copy_result(struct dns_pending *d, const struct dns_result *r)
{
	d->status = r->status;
	d->error = r->error ? xstrdup(r->error) : NULL;
	d->n = r->n;
	d->answers = xcalloc(r->n ? r->n : 1, sizeof(*r->answers));
	for (size_t i = 0; i < r->n; i++) {
		d->answers[i].value = xstrdup(r->answers[i].value);
		d->answers[i].preference = r->answers[i].preference;
	}
}

static void
on_dns(void *arg, const struct dns_result *r)
{
	struct hook_call *c = arg;

	c->pending_ops--;
	c->push = hook_dns_result;
	copy_result(&c->dns, r);
	hook_resume(c);
}

/* One of lookup_all's answers; the last one resumes the call. */
static void
on_dns_slot(void *arg, const struct dns_result *r)
{
	struct dns_slot *s = arg;
	struct dns_batch *b = s->b;
	struct hook_call *c = b->c;

	copy_result(&s->r, r);
	c->pending_ops--;
	if (--b->left > 0)
		return;
	c->push = hook_dns_batch_result;
	hook_resume(c);
}

static int
cmp_mx(const void *a, const void *b)
{
	return ((const struct dns_answer *)a)->preference -
	    ((const struct dns_answer *)b)->preference;
}

/*
 * Pushes (answers, "ok"|"nodata"|"nxdomain") or (nil, "tempfail: why") for
 * the answer d on co.  [-0, +2]
 */
static void
push_answer(lua_State *co, struct dns_pending *d)
{
	static const char *st[] = { "ok", "nodata", "nxdomain" };

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
}

int
hook_dns_result(struct hook_call *c)
{
	push_answer(c->co, &c->dns);
	hook_dns_clear(&c->dns);
	return 2;
}

/* Pushes lookup_all's { { answers=, status= }, ... } in the names' order. */
int
hook_dns_batch_result(struct hook_call *c)
{
	lua_State *co = c->co;
	struct dns_batch *b = c->dns.batch;

	lua_createtable(co, (int)b->n, 0);
	for (size_t i = 0; i < b->n; i++) {
		lua_createtable(co, 0, 2);
		push_answer(co, &b->slot[i].r);
		lua_setfield(co, -3, "status");
		lua_setfield(co, -2, "answers");
		lua_rawseti(co, -2, (lua_Integer)i + 1);
	}
	hook_dns_clear(&c->dns);
	return 1;
}

/* The type at index i (default A) and the call of a hook; raises if none. */
static struct hook_call *
check_lookup(lua_State *L, int i, const char *fn, enum dns_type *t)
{
	const char *type = luaL_optstring(L, i, "A");
	struct hook_call *c = *(struct hook_call **)lua_getextraspace(L);

	if (dns_type_parse(type, t) < 0)
		luaL_error(L, "unknown DNS type '%s' (A, AAAA, MX, TXT, PTR)", type);
	if (c == NULL || c->co != L)
		luaL_error(L, "indimail.dns.%s can only be called from a hook "
		    "(not at load time, not in a nested coroutine)", fn);
	if (hook_dns == NULL)
		luaL_error(L, "no DNS resolver in this process");
	return c;
}

/* indimail.dns.lookup(name [, type="A"]) -> answers, status  (yields) */
static int
l_dns_lookup(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	enum dns_type t;
	struct hook_call *c = check_lookup(L, 2, "lookup", &t);
	struct dns_result r;

	c->dns.type = t;
	if (dns_cached(hook_dns, name, t, &r)) {	/* kept in the call: */
		copy_result(&c->dns, &r);	/* a memory error while pushing */
		dns_result_free(&r);		/* leaks nothing */
		return hook_dns_result(c);
	}
	c->pending_ops++;
	dns_query(hook_dns, name, t, on_dns, c);
	return lua_yield(L, 0);
}

/* The names of lookup_all's list at index 1, checked: a batch without c. */
static struct dns_batch *
check_names(lua_State *L, enum dns_type t)
{
	struct dns_batch *b;
	lua_Integer n;

	luaL_checktype(L, 1, LUA_TTABLE);
	n = luaL_len(L, 1);
	if (n < 1 || n > DNS_LOOKUP_ALL_MAX)
		luaL_error(L, "indimail.dns.lookup_all takes a list of 1 to %d "
		    "names", DNS_LOOKUP_ALL_MAX);
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_geti(L, 1, i) != LUA_TSTRING)
			luaL_error(L, "indimail.dns.lookup_all: name %d is "
			    "not a string", (int)i);
		lua_pop(L, 1);
	}
	b = xcalloc(1, sizeof(*b));
	b->n = b->left = (size_t)n;
	b->slot = xcalloc(b->n, sizeof(*b->slot));
	for (size_t i = 0; i < b->n; i++) {
		b->slot[i].b = b;
		b->slot[i].r.type = t;
	}
	return b;
}

/* indimail.dns.lookup_all(names [, type="A"]) -> { {answers=, status=}, ... }
 * (yields once; the queries are in flight together) */
static int
l_dns_lookup_all(lua_State *L)
{
	enum dns_type t;
	struct hook_call *c = check_lookup(L, 2, "lookup_all", &t);
	struct dns_batch *b = check_names(L, t);

	b->c = c;
	c->dns.batch = b;
	c->pending_ops += (int)b->n;
	for (size_t i = 0; i < b->n; i++) {
		lua_geti(L, 1, (lua_Integer)i + 1);
		dns_query(hook_dns, lua_tostring(L, -1), t, on_dns_slot,
		    &b->slot[i]);
		lua_pop(L, 1);
	}
	return lua_yield(L, 0);
}

void
lua_hook_api_open(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "lookup", l_dns_lookup }, { "lookup_all", l_dns_lookup_all },
		{ NULL, NULL },
	};

	lua_getglobal(L, "indimail");
	luaL_newlib(L, fns);
	lua_setfield(L, -2, "dns");
	lua_pop(L, 1);
}
