/*
 * lua_config_delivery: the delivery = {...} section (retries, concurrency,
 * client TLS and timeouts) and routes = { [domain] = "host:port" | {...} }.
 * A route with credentials defaults to tls = "verify".
 */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "../net/tls.h"
#include "lua_config_int.h"

int
cfg_client_tls(lua_State *L, const char *s, const char *where)
{
	static const struct choice modes[] = {
	    { "none", CLIENT_TLS_NONE },
	    { "opportunistic", CLIENT_TLS_OPPORTUNISTIC },
	    { "verify", CLIENT_TLS_VERIFY }, { NULL, 0 } };

	return cfg_choose(L, s, where, modes,
	    "must be \"none\", \"opportunistic\" or \"verify\"");
}

/* retry = { base=, max= } and lifetime = seconds, in table t. */
static void
parse_retry(lua_State *L, int t, const char *where, struct retry_policy *r)
{
	struct buf w = BUF_INIT;

	buf_printf(&w, "%s.lifetime", where);
	cfg_set_number(L, t, "lifetime", buf_cstr(&w), 1, 365 * 86400., 1,
	    &r->lifetime_s, 2);
	if (cfg_sub_table(L, t, "retry")) {
		static const char *k[] = { "base", "max", NULL };
		cfg_check_keys(L, lua_gettop(L), where, k);
		cfg_set_number(L, -1, "base", "retry.base", 0.01, 86400, 1000,
		    &r->base_ms, 0);
		cfg_set_number(L, -1, "max", "retry.max", 0.01, 7 * 86400, 1000,
		    &r->max_ms, 0);
		lua_pop(L, 1);
	}
	buf_free(&w);
}

/* timeouts = { connect=, greeting=, command=, data= } in table t. */
static void
parse_client_timeouts(lua_State *L, int t, struct client_timeouts *to)
{
	static const char *k[] = { "connect", "greeting", "command", "data",
	    NULL };

	if (!cfg_sub_table(L, t, "timeouts"))
		return;
	cfg_check_keys(L, lua_gettop(L), "timeouts", k);
	cfg_set_number(L, -1, "connect", "timeouts.connect", 0.05, 3600, 1000,
	    &to->connect, 0);
	cfg_set_number(L, -1, "greeting", "timeouts.greeting", 0.05, 3600, 1000,
	    &to->greeting, 0);
	cfg_set_number(L, -1, "command", "timeouts.command", 0.05, 3600, 1000,
	    &to->command, 0);
	cfg_set_number(L, -1, "data", "timeouts.data", 0.05, 3600, 1000,
	    &to->data, 0);
	lua_pop(L, 1);
}

/* dead_destination = { backoff=, max= } (seconds) in table t. */
static void
parse_dead_destination(lua_State *L, int t, struct dead_dest_conf *dd)
{
	static const char *k[] = { "backoff", "max", NULL };

	if (!cfg_sub_table(L, t, "dead_destination"))
		return;
	cfg_check_keys(L, lua_gettop(L), "delivery.dead_destination", k);
	cfg_set_number(L, -1, "backoff", "delivery.dead_destination.backoff",
	    0.01, 86400, 1000, &dd->backoff_ms, 0);
	cfg_set_number(L, -1, "max", "delivery.dead_destination.max", 0.01,
	    7 * 86400, 1000, &dd->max_ms, 0);
	lua_pop(L, 1);
	if (dd->max_ms && dd->max_ms < dd->backoff_ms)
		luaL_error(L, "bad config: delivery.dead_destination: max must not be "
		    "less than backoff");
}

/*
 * concurrency.initial of the table on top: 1 to per_domain. Unset, the
 * default stays, capped by per_domain where the window is used (dest.c).
 */
static void
parse_initial(lua_State *L, struct delivery_conf *d)
{
	int initial = 0;

	cfg_set_number(L, -1, "initial", "delivery.concurrency.initial", 1,
	    10000, 1, &initial, 0);
	if (initial > d->conc_domain)
		luaL_error(L, "bad config: delivery.concurrency.initial must not "
		    "be more than per_domain");
	if (initial)
		d->conc_initial = initial;
}

void
cfg_delivery(lua_State *L, int t, struct delivery_conf *d)
{
	static const char *keys[] = { "lifetime", "retry", "concurrency",
	    "port", "bind_address", "tls", "timeouts", "max_hops",
	    "paused", "dead_destination", "active_limit", NULL };
	char *tls;

	cfg_check_keys(L, t, "delivery", keys);
	parse_retry(L, t, "delivery", &d->retry);
	cfg_set_number(L, t, "port", "delivery.port", 1, 65535, 1, &d->port, 0);
	cfg_set_number(L, t, "max_hops", "delivery.max_hops", 1, 1000, 1,
	    &d->max_hops, 0);
	cfg_set_string(L, t, "bind_address", "delivery.bind_address",
	    &d->bind_address);
	cfg_set_number(L, t, "active_limit", "delivery.active_limit", 1,
	    100000000, 1, &d->active_limit, 0);
	lua_getfield(L, t, "paused");
	d->paused = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if ((tls = cfg_opt_string(L, t, "tls", "delivery.tls")) != NULL) {
		d->tls = cfg_client_tls(L, tls, "delivery.tls");
		free(tls);
	}
	if (cfg_sub_table(L, t, "concurrency")) {
		static const char *k[] = { "local", "remote", "per_domain",
		    "initial", NULL };
		cfg_check_keys(L, lua_gettop(L), "delivery.concurrency", k);
		cfg_set_number(L, -1, "local", "delivery.concurrency.local", 1,
		    10000, 1, &d->conc_local, 0);
		cfg_set_number(L, -1, "remote", "delivery.concurrency.remote",
		    1, 10000, 1, &d->conc_remote, 0);
		cfg_set_number(L, -1, "per_domain",
		    "delivery.concurrency.per_domain", 1, 10000, 1,
		    &d->conc_domain, 0);
		parse_initial(L, d);
		lua_pop(L, 1);
	}
	parse_client_timeouts(L, t, &d->timeouts);
	parse_dead_destination(L, t, &d->dead);
}

/*
 * { host=, port=, auth_user=, auth_password=, auth_plaintext=, tls=, ... }
 * at index e. A route with credentials defaults to tls = "verify".
 */
static void
parse_route_table(lua_State *L, int e, struct route_conf *r)
{
	static const char *keys[] = { "host", "port", "auth_user",
	    "auth_password", "auth_plaintext", "tls", "timeouts", "retry",
	    "lifetime", NULL };
	char *tls;

	cfg_check_keys(L, e, "routes[]", keys);
	r->host = cfg_opt_string(L, e, "host", "routes[].host");
	cfg_set_number(L, e, "port", "routes[].port", 1, 65535, 1, &r->port, 0);
	r->auth_user = cfg_opt_string(L, e, "auth_user", "routes[].auth_user");
	r->auth_password = cfg_opt_string(L, e, "auth_password",
	    "routes[].auth_password");
	if (r->auth_password && r->auth_user == NULL)
		cfg_bad(L, "routes[].auth_password", "needs auth_user");
	r->auth_plaintext = cfg_opt_boolean(L, e, "auth_plaintext",
	    "routes[].auth_plaintext");
	if (r->auth_user)
		r->tls = CLIENT_TLS_VERIFY;
	if ((tls = cfg_opt_string(L, e, "tls", "routes[].tls")) != NULL) {
		r->tls = cfg_client_tls(L, tls, "routes[].tls");
		free(tls);
	}
	parse_client_timeouts(L, e, &r->timeouts);
	parse_retry(L, e, "routes[]", &r->retry);
}

/* routes: ["domain" or "*"] = "host:port" | { host=, port=, auth_user=, ... } */
void
cfg_routes(lua_State *L, int t, struct delivery_conf *d)
{
	lua_pushnil(L);
	while (lua_next(L, t)) {
		struct route_conf *r;
		const char *k = lua_type(L, -2) == LUA_TSTRING ?
		    lua_tostring(L, -2) : NULL;
		if (k == NULL)
			luaL_error(L, "bad config: routes: keys are domains or \"*\"");
		d->routes = xrealloc(d->routes, (d->nroutes + 1) * sizeof(*r));
		r = &d->routes[d->nroutes++];
		memset(r, 0, sizeof(*r));
		r->domain = xstrdup(strcmp(k, "*") == 0 ? "" : k);
		r->port = 25;
		r->tls = CLIENT_TLS_OPPORTUNISTIC;
		if (lua_type(L, -1) == LUA_TSTRING) {
			const char *v = lua_tostring(L, -1), *colon = strrchr(v, ':');
			r->host = colon ? xstrndup(v, (size_t)(colon - v)) : xstrdup(v);
			if (colon)
				r->port = atoi(colon + 1);
		} else if (lua_istable(L, -1))
			parse_route_table(L, lua_gettop(L), r);
		if (r->host == NULL || r->port <= 0 || r->port > 65535)
			luaL_error(L, "bad config: routes['%s']: needs host:port", k);
		lua_pop(L, 1);
	}
}
