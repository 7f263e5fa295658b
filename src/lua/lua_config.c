/*
 * lua_config: indimail.config{...} → struct config. Every key is checked
 * (unknown keys are errors, so a typo never silently keeps a default) and
 * errors are raised with luaL_error, which names the file and line of the
 * indimail.config call in etc/indimail.lua.
 */
#include <lauxlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "../directory/directory.h"
#include "../net/tls.h"
#include "../mail/address.h"
#include "lua_api.h"

/* Raises "bad config: <section>.<key>: <why>". */
static int
bad(lua_State *L, const char *where, const char *why)
{
	return luaL_error(L, "bad config: %s: %s", where, why);
}

static char *
opt_string(lua_State *L, int t, const char *key, const char *where)
{
	char *s = NULL;

	lua_getfield(L, t, key);
	if (!lua_isnil(L, -1)) {
		if (lua_type(L, -1) != LUA_TSTRING)
			bad(L, where, "must be a string");
		s = xstrdup(lua_tostring(L, -1));
	}
	lua_pop(L, 1);
	return s;
}

static void
set_string(lua_State *L, int t, const char *key, const char *where, char **dst)
{
	char *s = opt_string(L, t, key, where);

	if (s) {
		free(*dst);
		*dst = s;
	}
}

/* Number field in [lo, hi]; scale converts (e.g. seconds → ms). */
static void
set_number(lua_State *L, int t, const char *key, const char *where,
    double lo, double hi, double scale, void *dst, int is_size)
{
	double v;

	lua_getfield(L, t, key);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return;
	}
	if (!lua_isnumber(L, -1))
		bad(L, where, "must be a number");
	v = lua_tonumber(L, -1);
	lua_pop(L, 1);
	if (v < lo || v > hi)
		luaL_error(L, "bad config: %s: %g is out of range [%g, %g]",
		    where, v, lo, hi);
	if (is_size == 1)
		*(size_t *)dst = (size_t)(v * scale);
	else if (is_size == 2)
		*(long *)dst = (long)(v * scale);
	else
		*(int *)dst = (int)(v * scale);
}

/* Every key of table t must be one of the names in allowed (NULL-ended). */
static void
check_keys(lua_State *L, int t, const char *section, const char **allowed)
{
	lua_pushnil(L);
	while (lua_next(L, t)) {
		int ok = 0;
		if (lua_type(L, -2) == LUA_TSTRING)
			for (const char **a = allowed; *a; a++)
				ok |= strcmp(*a, lua_tostring(L, -2)) == 0;
		else if (lua_type(L, -2) == LUA_TNUMBER && allowed[0] &&
		    strcmp(allowed[0], "#") == 0)
			ok = 1;
		if (!ok)
			luaL_error(L, "bad config: %s: unknown key '%s'", section,
			    lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
			    : luaL_typename(L, -2));
		lua_pop(L, 1);
	}
}

/* Pushes field key of t if it is a table (returns 1), else nothing (0). */
static int
sub_table(lua_State *L, int t, const char *key)
{
	lua_getfield(L, t, key);
	if (lua_istable(L, -1))
		return 1;
	if (!lua_isnil(L, -1))
		luaL_error(L, "bad config: %s: must be a table", key);
	lua_pop(L, 1);
	return 0;
}



/* A word from a fixed list: its value, or a config error naming them all. */
struct choice {
	const char	*name;
	int		 value;
};

static int
choose(lua_State *L, const char *s, const char *where,
    const struct choice *list, const char *expected)
{
	for (; list->name; list++)
		if (strcmp(s, list->name) == 0)
			return list->value;
	return bad(L, where, expected);
}

static int
parse_tls_mode(lua_State *L, const char *s, const char *where)
{
	static const struct choice modes[] = { { "none", TLS_NONE },
	    { "starttls", TLS_STARTTLS }, { "implicit", TLS_IMPLICIT },
	    { NULL, 0 } };

	return choose(L, s, where, modes,
	    "tls must be \"none\", \"starttls\" or \"implicit\"");
}

static int
parse_tls_version(lua_State *L, const char *s, const char *where)
{
	static const struct choice versions[] = {
	    { "TLSv1.2", TLS1_2_VERSION }, { "TLSv1.3", TLS1_3_VERSION },
	    { NULL, 0 } };

	return choose(L, s, where, versions,
	    "must be \"TLSv1.2\" or \"TLSv1.3\"");
}

static int
parse_client_tls(lua_State *L, const char *s, const char *where)
{
	static const struct choice modes[] = {
	    { "none", CLIENT_TLS_NONE },
	    { "opportunistic", CLIENT_TLS_OPPORTUNISTIC },
	    { "verify", CLIENT_TLS_VERIFY }, { NULL, 0 } };

	return choose(L, s, where, modes,
	    "must be \"none\", \"opportunistic\" or \"verify\"");
}

/*
 * tls_ciphers, tls_ciphersuites, tls_min_version of the listener at e,
 * tried on an OpenSSL context now, so that `indimaild -t` reports them.
 */
static void
parse_listen_tls(lua_State *L, int e, struct listen_conf *l)
{
	struct tls_profile p;
	struct buf err = BUF_INIT;

	l->tls_ciphers = opt_string(L, e, "tls_ciphers", "listen[].tls_ciphers");
	l->tls_ciphersuites = opt_string(L, e, "tls_ciphersuites",
	    "listen[].tls_ciphersuites");
	lua_getfield(L, e, "tls_min_version");
	if (lua_type(L, -1) == LUA_TSTRING)
		l->tls_min_version = parse_tls_version(L, lua_tostring(L, -1),
		    "listen[].tls_min_version");
	else if (!lua_isnil(L, -1))
		bad(L, "listen[].tls_min_version", "must be a string");
	lua_pop(L, 1);
	if (l->tls == TLS_NONE && (l->tls_ciphers || l->tls_ciphersuites ||
	    l->tls_min_version))
		luaL_error(L, "bad config: listen[]: listener '%s' has TLS "
		    "settings but tls = \"none\"", l->name);
	p.ciphers = l->tls_ciphers;
	p.ciphersuites = l->tls_ciphersuites;
	p.min_version = l->tls_min_version;
	if (l->tls != TLS_NONE && tls_profile_check(&p, &err) < 0) {
		luaL_where(L, 1);	/* as luaL_error, with err freed */
		lua_pushfstring(L, "bad config: listen[].%s", buf_cstr(&err));
		lua_concat(L, 2);
		buf_free(&err);
		lua_error(L);
	}
	buf_free(&err);
}

static void
parse_listen(lua_State *L, int t, struct config *c)
{
	static const char *keys[] = { "name", "address", "port", "tls",
	    "tls_ciphers", "tls_ciphersuites", "tls_min_version", NULL };
	size_t n = luaL_len(L, t);

	if (n == 0)
		bad(L, "listen", "needs at least one listener");
	c->listen = xcalloc(n, sizeof(*c->listen));
	for (size_t i = 0; i < n; i++) {
		struct listen_conf *l = &c->listen[i];
		char *tls;
		int e;

		lua_rawgeti(L, t, (lua_Integer)i + 1);
		if (!lua_istable(L, -1))
			luaL_error(L, "bad config: listen[%d]: must be a table",
			    (int)i + 1);
		e = lua_gettop(L);
		c->nlisten++;
		check_keys(L, e, "listen[]", keys);
		l->name = opt_string(L, e, "name", "listen[].name");
		l->address = opt_string(L, e, "address", "listen[].address");
		if (l->name == NULL)
			l->name = xstrdup("smtp");
		if (l->address == NULL)
			l->address = xstrdup("127.0.0.1");
		l->port = -1;
		set_number(L, e, "port", "listen[].port", 0, 65535, 1, &l->port, 0);
		if (l->port < 0)
			bad(L, "listen[].port", "is required (0 = any free port)");
		l->tls = TLS_NONE;
		if ((tls = opt_string(L, e, "tls", "listen[].tls")) != NULL) {
			l->tls = (enum tls_mode)parse_tls_mode(L, tls, "listen[].tls");
			free(tls);
		}
		parse_listen_tls(L, e, l);
		lua_pop(L, 1);
	}
}

static void
parse_string_list(lua_State *L, int t, const char *where, char ***out,
    size_t *n, int domains)
{
	size_t len = luaL_len(L, t);

	*out = xcalloc(len ? len : 1, sizeof(char *));
	for (size_t i = 0; i < len; i++) {
		const char *s;
		lua_rawgeti(L, t, (lua_Integer)i + 1);
		s = lua_tostring(L, -1);
		if (s == NULL)
			bad(L, where, "entries must be strings");
		if (domains && !address_valid_domain(s, strlen(s)))
			luaL_error(L, "bad config: %s: '%s' is not a domain name",
			    where, s);
		(*out)[(*n)++] = xstrdup(s);
		lua_pop(L, 1);
	}
}

static void
parse_relay(lua_State *L, int t, struct config *c)
{
	size_t len = luaL_len(L, t);

	c->relay_from = xcalloc(len ? len : 1, sizeof(struct cidr));
	for (size_t i = 0; i < len; i++) {
		const char *s;
		lua_rawgeti(L, t, (lua_Integer)i + 1);
		s = lua_tostring(L, -1);
		if (s == NULL || cidr_parse(s, &c->relay_from[i]) < 0)
			luaL_error(L, "bad config: relay_from: '%s' is not an "
			    "address or CIDR network", s ? s : "?");
		c->nrelay_from++;
		lua_pop(L, 1);
	}
}

static void
parse_limits(lua_State *L, int t, struct config *c)
{
	static const char *keys[] = { "command_line", "text_line",
	    "message_size", "recipients", "connections", "connections_per_ip",
	    "errors", "hook_instructions", "lua_memory", "junk_commands",
	    "tarpit_after", "tarpit_delay", "data_memory", NULL };

	check_keys(L, t, "limits", keys);
	set_number(L, t, "command_line", "limits.command_line", 512, 65536, 1,
	    &c->max_command_line, 1);
	set_number(L, t, "text_line", "limits.text_line", 1000, 1 << 20, 1,
	    &c->max_text_line, 1);
	set_number(L, t, "message_size", "limits.message_size", 1024,
	    1 << 30, 1, &c->max_message_size, 1);
	set_number(L, t, "recipients", "limits.recipients", 1, 100000, 1,
	    &c->max_recipients, 1);
	set_number(L, t, "connections", "limits.connections", 1, 1000000, 1,
	    &c->max_connections, 0);
	set_number(L, t, "connections_per_ip", "limits.connections_per_ip",
	    1, 1000000, 1, &c->max_connections_per_ip, 0);
	set_number(L, t, "errors", "limits.errors", 1, 1000, 1,
	    &c->max_errors, 0);
	set_number(L, t, "hook_instructions", "limits.hook_instructions",
	    1000, 1e12, 1, &c->hook_instructions, 2);
	set_number(L, t, "lua_memory", "limits.lua_memory", 1 << 20,
	    1e12, 1, &c->lua_memory, 1);
	set_number(L, t, "junk_commands", "limits.junk_commands", 1, 100000, 1,
	    &c->max_junk, 0);
	set_number(L, t, "tarpit_after", "limits.tarpit_after", 0, 100000, 1,
	    &c->tarpit_after, 0);
	set_number(L, t, "tarpit_delay", "limits.tarpit_delay", 0, 60, 1000,
	    &c->tarpit_delay, 0);
	set_number(L, t, "data_memory", "limits.data_memory", 1 << 20, 1e13, 1,
	    &c->data_memory, 1);
}

static void
parse_timeouts(lua_State *L, int t, struct config *c)
{
	static const char *keys[] = { "command", "data", "data_total", "tls",
	    "hook", "drain", "watchdog", NULL };

	check_keys(L, t, "timeouts", keys);
	set_number(L, t, "command", "timeouts.command", 0.05, 86400, 1000,
	    &c->timeout_command, 0);
	set_number(L, t, "data", "timeouts.data", 0.05, 86400, 1000,
	    &c->timeout_data, 0);
	set_number(L, t, "data_total", "timeouts.data_total", 0.05, 86400, 1000,
	    &c->timeout_data_total, 0);
	set_number(L, t, "tls", "timeouts.tls", 0.05, 86400, 1000,
	    &c->timeout_tls, 0);
	set_number(L, t, "watchdog", "timeouts.watchdog", 0.5, 3600, 1000,
	    &c->timeout_watchdog, 0);
	set_number(L, t, "hook", "timeouts.hook", 0.05, 86400, 1000,
	    &c->timeout_hook, 0);
	set_number(L, t, "drain", "timeouts.drain", 0, 86400, 1000,
	    &c->timeout_drain, 0);
}

static void
parse_sections(lua_State *L, int t, struct config *c)
{
	char *lvl;
	int ok;

	if (sub_table(L, t, "tls")) {
		static const char *k[] = { "cert", "key", NULL };
		check_keys(L, lua_gettop(L), "tls", k);
		set_string(L, -1, "cert", "tls.cert", &c->tls_cert);
		set_string(L, -1, "key", "tls.key", &c->tls_key);
		lua_pop(L, 1);
	}
	if (sub_table(L, t, "queue")) {
		static const char *k[] = { "path", "count", "split", NULL };
		check_keys(L, lua_gettop(L), "queue", k);
		set_string(L, -1, "path", "queue.path", &c->queue_path);
		set_number(L, -1, "count", "queue.count", 1, 64, 1,
		    &c->queue_count, 0);
		set_number(L, -1, "split", "queue.split", 1, 256, 1,
		    &c->queue_split, 0);
		lua_pop(L, 1);
	}
	if (sub_table(L, t, "log")) {
		static const char *k[] = { "file", "level", NULL };
		check_keys(L, lua_gettop(L), "log", k);
		set_string(L, -1, "file", "log.file", &c->log_file);
		if ((lvl = opt_string(L, -1, "level", "log.level")) != NULL) {
			c->log_level = (int)log_parse_level(lvl, &ok);
			free(lvl);
			if (!ok)
				bad(L, "log.level", "must be debug, info, warn or error");
		}
		lua_pop(L, 1);
	}
	if (sub_table(L, t, "dns")) {
		static const char *k[] = { "servers", "timeout", NULL };
		check_keys(L, lua_gettop(L), "dns", k);
		set_string(L, -1, "servers", "dns.servers", &c->dns_servers);
		set_number(L, -1, "timeout", "dns.timeout", 0.05, 600, 1000,
		    &c->dns_timeout_ms, 0);
		lua_pop(L, 1);
	}
	if (sub_table(L, t, "limits")) {
		parse_limits(L, lua_gettop(L), c);
		lua_pop(L, 1);
	}
	if (sub_table(L, t, "timeouts")) {
		parse_timeouts(L, lua_gettop(L), c);
		lua_pop(L, 1);
	}
}


/* retry = { base=, max= } and lifetime = seconds, in table t. */
static void
parse_retry(lua_State *L, int t, const char *where, struct retry_policy *r)
{
	struct buf w = BUF_INIT;

	buf_printf(&w, "%s.lifetime", where);
	set_number(L, t, "lifetime", buf_cstr(&w), 1, 365 * 86400., 1,
	    &r->lifetime_s, 2);
	if (sub_table(L, t, "retry")) {
		static const char *k[] = { "base", "max", NULL };
		check_keys(L, lua_gettop(L), where, k);
		set_number(L, -1, "base", "retry.base", 0.01, 86400, 1000,
		    &r->base_ms, 0);
		set_number(L, -1, "max", "retry.max", 0.01, 7 * 86400, 1000,
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

	if (!sub_table(L, t, "timeouts"))
		return;
	check_keys(L, lua_gettop(L), "timeouts", k);
	set_number(L, -1, "connect", "timeouts.connect", 0.05, 3600, 1000,
	    &to->connect, 0);
	set_number(L, -1, "greeting", "timeouts.greeting", 0.05, 3600, 1000,
	    &to->greeting, 0);
	set_number(L, -1, "command", "timeouts.command", 0.05, 3600, 1000,
	    &to->command, 0);
	set_number(L, -1, "data", "timeouts.data", 0.05, 3600, 1000,
	    &to->data, 0);
	lua_pop(L, 1);
}

static void
parse_delivery(lua_State *L, int t, struct delivery_conf *d)
{
	static const char *keys[] = { "lifetime", "retry", "concurrency",
	    "port", "bind_address", "tls", "timeouts", "max_hops",
	    "paused", NULL };
	char *tls;

	check_keys(L, t, "delivery", keys);
	parse_retry(L, t, "delivery", &d->retry);
	set_number(L, t, "port", "delivery.port", 1, 65535, 1, &d->port, 0);
	set_number(L, t, "max_hops", "delivery.max_hops", 1, 1000, 1,
	    &d->max_hops, 0);
	set_string(L, t, "bind_address", "delivery.bind_address",
	    &d->bind_address);
	lua_getfield(L, t, "paused");
	d->paused = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if ((tls = opt_string(L, t, "tls", "delivery.tls")) != NULL) {
		d->tls = parse_client_tls(L, tls, "delivery.tls");
		free(tls);
	}
	if (sub_table(L, t, "concurrency")) {
		static const char *k[] = { "local", "remote", "per_domain", NULL };
		check_keys(L, lua_gettop(L), "delivery.concurrency", k);
		set_number(L, -1, "local", "delivery.concurrency.local", 1,
		    10000, 1, &d->conc_local, 0);
		set_number(L, -1, "remote", "delivery.concurrency.remote", 1,
		    10000, 1, &d->conc_remote, 0);
		set_number(L, -1, "per_domain", "delivery.concurrency.per_domain",
		    1, 10000, 1, &d->conc_domain, 0);
		lua_pop(L, 1);
	}
	parse_client_timeouts(L, t, &d->timeouts);
}

static int
valid_address(const char *a)
{
	const char *at = strrchr(a, '@');

	return at && at > a && address_valid_domain(at + 1, strlen(at + 1));
}

static void
parse_users(lua_State *L, int t, struct delivery_conf *d)
{
	size_t n = luaL_len(L, t);

	d->users_listed = 1;
	d->users = xcalloc(n ? n : 1, sizeof(*d->users));
	for (size_t i = 0; i < n; i++) {
		struct mailbox_user *u = &d->users[i];
		lua_rawgeti(L, t, (lua_Integer)i + 1);
		if (lua_type(L, -1) == LUA_TSTRING)
			u->address = xstrdup(lua_tostring(L, -1));
		else if (lua_istable(L, -1)) {
			u->address = opt_string(L, lua_gettop(L), "address",
			    "mailboxes.users[].address");
			set_number(L, lua_gettop(L), "quota",
			    "mailboxes.users[].quota", 0, 1e15, 1, &u->quota, 1);
		}
		d->nusers++;
		if (u->address == NULL || !valid_address(u->address))
			luaL_error(L, "bad config: mailboxes.users[%d]: needs a "
			    "user@domain address", (int)i + 1);
		lua_pop(L, 1);
	}
}

/* aliases: ["info@x"] = "a@x" | { "a@x", "b@y" }; ["@x"] is a catch-all */
static void
parse_aliases(lua_State *L, int t, struct delivery_conf *d)
{
	lua_pushnil(L);
	while (lua_next(L, t)) {
		struct alias *a;
		const char *k = lua_type(L, -2) == LUA_TSTRING ?
		    lua_tostring(L, -2) : NULL;
		if (k == NULL || (k[0] != '@' && !valid_address(k)))
			luaL_error(L, "bad config: mailboxes.aliases: keys are "
			    "user@domain or @domain (catch-all)");
		d->aliases = xrealloc(d->aliases, (d->naliases + 1) *
		    sizeof(*d->aliases));
		a = &d->aliases[d->naliases++];
		memset(a, 0, sizeof(*a));
		a->address = xstrdup(k);
		if (lua_type(L, -1) == LUA_TSTRING) {
			a->targets = xcalloc(1, sizeof(char *));
			a->targets[a->ntargets++] = xstrdup(lua_tostring(L, -1));
		} else if (lua_istable(L, -1))
			parse_string_list(L, lua_gettop(L), "mailboxes.aliases",
			    &a->targets, &a->ntargets, 0);
		else
			luaL_error(L, "bad config: mailboxes.aliases['%s']: "
			    "must be an address or a list", k);
		for (size_t i = 0; i < a->ntargets; i++)
			if (!valid_address(a->targets[i]))
				luaL_error(L, "bad config: mailboxes.aliases['%s']: "
				    "'%s' is not an address", k, a->targets[i]);
		lua_pop(L, 1);
	}
}

static void
parse_mailboxes(lua_State *L, int t, struct delivery_conf *d)
{
	static const char *keys[] = { "root", "users", "aliases", "postmaster",
	    NULL };

	check_keys(L, t, "mailboxes", keys);
	set_string(L, t, "root", "mailboxes.root", &d->maildir_root);
	set_string(L, t, "postmaster", "mailboxes.postmaster", &d->postmaster);
	if (sub_table(L, t, "users")) {
		parse_users(L, lua_gettop(L), d);
		lua_pop(L, 1);
	}
	if (sub_table(L, t, "aliases")) {
		parse_aliases(L, lua_gettop(L), d);
		lua_pop(L, 1);
	}
}

/* An optional boolean field of table t (absent: 0). */
static int
opt_boolean(lua_State *L, int t, const char *key, const char *where)
{
	int v;

	lua_getfield(L, t, key);
	if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
		bad(L, where, "must be true or false");
	v = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return v;
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

	check_keys(L, e, "routes[]", keys);
	r->host = opt_string(L, e, "host", "routes[].host");
	set_number(L, e, "port", "routes[].port", 1, 65535, 1, &r->port, 0);
	r->auth_user = opt_string(L, e, "auth_user", "routes[].auth_user");
	r->auth_password = opt_string(L, e, "auth_password",
	    "routes[].auth_password");
	if (r->auth_password && r->auth_user == NULL)
		bad(L, "routes[].auth_password", "needs auth_user");
	r->auth_plaintext = opt_boolean(L, e, "auth_plaintext",
	    "routes[].auth_plaintext");
	if (r->auth_user)
		r->tls = CLIENT_TLS_VERIFY;
	if ((tls = opt_string(L, e, "tls", "routes[].tls")) != NULL) {
		r->tls = parse_client_tls(L, tls, "routes[].tls");
		free(tls);
	}
	parse_client_timeouts(L, e, &r->timeouts);
	parse_retry(L, e, "routes[]", &r->retry);
}

/* routes: ["domain" or "*"] = "host:port" | { host=, port=, auth_user=, ... } */
static void
parse_routes(lua_State *L, int t, struct delivery_conf *d)
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

/*
 * submission_socket = "path" | false: the local submission socket that
 * bin/sendmail talks to; by default <queue.path>/public/submit.sock.
 */
static void
parse_submit_socket(lua_State *L, struct config *c)
{
	struct buf p = BUF_INIT;

	lua_getfield(L, 1, "submission_socket");
	if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) > 0)
		c->submit_socket = xstrdup(lua_tostring(L, -1));
	else if (lua_isnil(L, -1)) {
		buf_printf(&p, "%s/public/submit.sock", c->queue_path);
		c->submit_socket = p.data;	/* the buffer's memory moves */
	} else if (!(lua_isboolean(L, -1) && !lua_toboolean(L, -1)))
		bad(L, "submission_socket", "must be a path or false");
	lua_pop(L, 1);
}

/* Users, postmaster and aliases must lead to mailboxes (directory.c). */
static void
check_mailboxes(lua_State *L, const struct config *c)
{
	struct buf err = BUF_INIT;

	if (directory_check(c, &err) == 0)
		return;
	lua_pushstring(L, buf_cstr(&err));	/* anchored: err can go */
	buf_free(&err);
	luaL_error(L, "bad config: %s", lua_tostring(L, -1));
}

/* indimail.config{...}: stack effect: (table) -> () */
int
lua_config_parse(lua_State *L, struct config *c)
{
	static const char *keys[] = { "hostname", "user", "workers", "listen",
	    "tls", "queue", "log", "dns", "local_domains", "relay_from",
	    "limits", "timeouts", "lua_dir", "delivery", "mailboxes", "routes",
	    "submission_socket", NULL };
	char host[256];

	luaL_checktype(L, 1, LUA_TTABLE);
	check_keys(L, 1, "config", keys);
	set_string(L, 1, "hostname", "hostname", &c->hostname);
	set_string(L, 1, "user", "user", &c->user);
	set_string(L, 1, "lua_dir", "lua_dir", &c->lua_dir);
	set_number(L, 1, "workers", "workers", 0, 256, 1, &c->workers, 0);
	if (!sub_table(L, 1, "listen"))
		bad(L, "listen", "is required");
	parse_listen(L, lua_gettop(L), c);
	lua_pop(L, 1);
	if (sub_table(L, 1, "local_domains")) {
		parse_string_list(L, lua_gettop(L), "local_domains",
		    &c->local_domains, &c->nlocal_domains, 1);
		lua_pop(L, 1);
	}
	if (sub_table(L, 1, "relay_from")) {
		parse_relay(L, lua_gettop(L), c);
		lua_pop(L, 1);
	}
	parse_sections(L, 1, c);
	if (sub_table(L, 1, "delivery")) {
		parse_delivery(L, lua_gettop(L), &c->delivery);
		lua_pop(L, 1);
	}
	if (sub_table(L, 1, "mailboxes")) {
		parse_mailboxes(L, lua_gettop(L), &c->delivery);
		lua_pop(L, 1);
	}
	if (sub_table(L, 1, "routes")) {
		parse_routes(L, lua_gettop(L), &c->delivery);
		lua_pop(L, 1);
	}
	if (c->delivery.maildir_root == NULL)
		c->delivery.maildir_root = xstrdup("var/maildirs");
	if (c->hostname == NULL) {
		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		c->hostname = xstrdup(host);
	}
	if (c->queue_path == NULL)
		c->queue_path = xstrdup("queue");
	parse_submit_socket(L, c);
	if (c->delivery.postmaster == NULL) {
		const char *dom = c->nlocal_domains ? c->local_domains[0] : c->hostname;
		struct buf pm = BUF_INIT;
		buf_printf(&pm, "postmaster@%s", dom);
		c->delivery.postmaster = pm.data;	/* the buffer's memory moves */
	}
	check_mailboxes(L, c);
	for (size_t i = 0; i < c->nlisten; i++)
		if (c->listen[i].tls != TLS_NONE && c->tls_cert == NULL)
			luaL_error(L, "bad config: listener '%s' uses TLS but "
			    "tls.cert/tls.key are not set", c->listen[i].name);
	if ((c->tls_cert == NULL) != (c->tls_key == NULL))
		bad(L, "tls", "cert and key go together");
	return 0;
}
