/*
 * lua_config: indimail.config{...} → struct config. Every key is checked
 * (unknown keys are errors, so a typo never silently keeps a default) and
 * errors are raised with luaL_error, which names the file and line of the
 * indimail.config call in etc/indimail.lua.
 */
#include <lauxlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/xalloc.h"
#include "../smtp/smtp_parse.h"
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

static enum tls_mode
parse_tls_mode(lua_State *L, const char *s, const char *where)
{
	if (strcmp(s, "none") == 0)
		return TLS_NONE;
	if (strcmp(s, "starttls") == 0)
		return TLS_STARTTLS;
	if (strcmp(s, "implicit") == 0)
		return TLS_IMPLICIT;
	bad(L, where, "tls must be \"none\", \"starttls\" or \"implicit\"");
	return TLS_NONE;
}

static void
parse_listen(lua_State *L, int t, struct config *c)
{
	static const char *keys[] = { "name", "address", "port", "tls", NULL };
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
			l->tls = parse_tls_mode(L, tls, "listen[].tls");
			free(tls);
		}
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
		if (domains && !smtp_valid_domain(s, strlen(s)))
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
	    "errors", "hook_instructions", "lua_memory", NULL };

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
}

static void
parse_timeouts(lua_State *L, int t, struct config *c)
{
	static const char *keys[] = { "command", "data", "tls", "hook",
	    "drain", NULL };

	check_keys(L, t, "timeouts", keys);
	set_number(L, t, "command", "timeouts.command", 0.05, 86400, 1000,
	    &c->timeout_command, 0);
	set_number(L, t, "data", "timeouts.data", 0.05, 86400, 1000,
	    &c->timeout_data, 0);
	set_number(L, t, "tls", "timeouts.tls", 0.05, 86400, 1000,
	    &c->timeout_tls, 0);
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

/* indimail.config{...}: stack effect: (table) -> () */
int
lua_config_parse(lua_State *L, struct config *c)
{
	static const char *keys[] = { "hostname", "user", "workers", "listen",
	    "tls", "queue", "log", "dns", "local_domains", "relay_from",
	    "limits", "timeouts", "lua_dir", NULL };
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
	if (c->hostname == NULL) {
		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		c->hostname = xstrdup(host);
	}
	if (c->queue_path == NULL)
		c->queue_path = xstrdup("queue");
	for (size_t i = 0; i < c->nlisten; i++)
		if (c->listen[i].tls != TLS_NONE && c->tls_cert == NULL)
			luaL_error(L, "bad config: listener '%s' uses TLS but "
			    "tls.cert/tls.key are not set", c->listen[i].name);
	if ((c->tls_cert == NULL) != (c->tls_key == NULL))
		bad(L, "tls", "cert and key go together");
	return 0;
}
