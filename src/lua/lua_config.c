/*
 * lua_config: indimail.config{...} → struct config. Every key is checked
 * (unknown keys are errors, so a typo never silently keeps a default) and
 * errors are raised with luaL_error; lua_check.c puts the file and the line
 * of the offending key in front. This file reads the top level
 * and the small sections; the others have a file each (lua_config_int.h).
 */
#include <lauxlib.h>
#include <string.h>

#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "../directory/directory.h"
#include "../net/tls.h"
#include "lua_api.h"
#include "lua_config_int.h"

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

/* queue.backend, "fs", "wal" or "segment" (the default; docs/queue.md). */
static void
parse_queue_backend(lua_State *L, struct config *c)
{
	static const struct { const char *name; int kind; } known_backends[] = {
		{ "fs", QUEUE_BACKEND_FS }, { "wal", QUEUE_BACKEND_WAL },
		{ "segment", QUEUE_BACKEND_SEGMENT } };
	char *v = cfg_opt_string(L, -1, "backend", "queue.backend");
	int known = 0;

	if (v == NULL)
		return;
	for (size_t i = 0; i < sizeof(known_backends) / sizeof(known_backends[0]);
	    i++)
		if (strcmp(v, known_backends[i].name) == 0) {
			c->queue_backend = known_backends[i].kind;
			known = 1;
		}
	free(v);
	if (!known)
		cfg_bad(L, "queue.backend",
		    "must be \"fs\", \"wal\" or \"segment\"");
}

/* dns = { servers=, timeout= }, dns_cache = { size=, max_ttl=, ... } */
/*
 * log.format ("kv" or "json"), log.syslog (a facility name, or
 * false) and log.syslog_socket (where the datagrams go, default /dev/log).
 */
static void
parse_log_output(lua_State *L, struct config *c)
{
	char *v = cfg_opt_string(L, -1, "format", "log.format");
	int ok;

	if (v != NULL) {
		c->log_format = (int)log_parse_format(v, &ok);
		free(v);
		if (!ok)
			cfg_bad(L, "log.format", "must be \"kv\" or \"json\"");
	}
	lua_getfield(L, -1, "syslog");
	if (lua_isboolean(L, -1) && !lua_toboolean(L, -1))
		c->log_syslog = -1;
	else if (lua_type(L, -1) == LUA_TSTRING) {
		c->log_syslog = log_syslog_facility(lua_tostring(L, -1));
		if (c->log_syslog < 0)
			cfg_bad(L, "log.syslog", "must be \"mail\", \"local0\" .. "
			    "\"local7\" or false");
	} else if (!lua_isnil(L, -1))
		cfg_bad(L, "log.syslog", "must be a facility name or false");
	lua_pop(L, 1);
	cfg_set_string(L, -1, "syslog_socket", "log.syslog_socket",
	    &c->log_syslog_socket);
}

static void
parse_dns(lua_State *L, int t, struct config *c)
{
	static const char *k[] = { "servers", "timeout", NULL };
	static const char *kc[] = { "size", "max_ttl", "negative_ttl", NULL };

	if (cfg_sub_table(L, t, "dns")) {
		cfg_check_keys(L, lua_gettop(L), "dns", k);
		cfg_set_string(L, -1, "servers", "dns.servers",
		    &c->dns_servers);
		cfg_set_number(L, -1, "timeout", "dns.timeout", 0.05, 600, 1000,
		    &c->dns_timeout_ms, 0);
		lua_pop(L, 1);
	}
	if (cfg_sub_table(L, t, "dns_cache")) {
		cfg_check_keys(L, lua_gettop(L), "dns_cache", kc);
		cfg_set_number(L, -1, "size", "dns_cache.size", 0, 1048576, 1,
		    &c->dns_cache_size, 1);
		cfg_set_number(L, -1, "max_ttl", "dns_cache.max_ttl", 0, 604800,
		    1, &c->dns_cache_max_ttl, 0);
		cfg_set_number(L, -1, "negative_ttl", "dns_cache.negative_ttl",
		    0, 86400, 1, &c->dns_cache_negative_ttl, 0);
		lua_pop(L, 1);
	}
}

/* spf = { timeout=, jobs=, cache_size=, cache_ttl= } */
static void
parse_spf(lua_State *L, int t, struct config *c)
{
	static const char *k[] = { "timeout", "jobs", "cache_size",
	    "cache_ttl", NULL };

	if (!cfg_sub_table(L, t, "spf"))
		return;
	cfg_check_keys(L, lua_gettop(L), "spf", k);
	cfg_set_number(L, -1, "timeout", "spf.timeout", 0.1, 600, 1000,
	    &c->spf_timeout_ms, 0);
	cfg_set_number(L, -1, "jobs", "spf.jobs", 1, 64, 1, &c->spf_jobs, 0);
	cfg_set_number(L, -1, "cache_size", "spf.cache_size", 0, 1048576, 1,
	    &c->spf_cache_size, 1);
	cfg_set_number(L, -1, "cache_ttl", "spf.cache_ttl", 0, 86400, 1,
	    &c->spf_cache_ttl, 0);
	lua_pop(L, 1);
}

static void
parse_sections(lua_State *L, int t, struct config *c)
{
	char *lvl;
	int ok;

	if (cfg_sub_table(L, t, "tls")) {
		static const char *k[] = { "cert", "key", NULL };
		cfg_check_keys(L, lua_gettop(L), "tls", k);
		cfg_set_string(L, -1, "cert", "tls.cert", &c->tls_cert);
		cfg_set_string(L, -1, "key", "tls.key", &c->tls_key);
		lua_pop(L, 1);
	}
	if (cfg_sub_table(L, t, "queue")) {
		static const char *k[] = { "path", "count", "split", "backend",
		    NULL };
		cfg_check_keys(L, lua_gettop(L), "queue", k);
		cfg_set_string(L, -1, "path", "queue.path", &c->queue_path);
		cfg_set_number(L, -1, "count", "queue.count", 1, 64, 1,
		    &c->queue_count, 0);
		cfg_set_number(L, -1, "split", "queue.split", 1, 256, 1,
		    &c->queue_split, 0);
		parse_queue_backend(L, c);
		lua_pop(L, 1);
	}
	if (cfg_sub_table(L, t, "log")) {
		static const char *k[] = { "file", "level", "format", "syslog",
		    "syslog_socket", NULL };
		cfg_check_keys(L, lua_gettop(L), "log", k);
		cfg_set_string(L, -1, "file", "log.file", &c->log_file);
		parse_log_output(L, c);
		lvl = cfg_opt_string(L, -1, "level", "log.level");
		if (lvl != NULL) {
			c->log_level = (int)log_parse_level(lvl, &ok);
			free(lvl);
			if (!ok)
				cfg_bad(L, "log.level",
				    "must be debug, info, warn or error");
		}
		lua_pop(L, 1);
	}
	parse_dns(L, t, c);
	parse_spf(L, t, c);
	cfg_dkim(L, t, c);
	if (cfg_sub_table(L, t, "limits")) {
		cfg_limits(L, lua_gettop(L), c);
		lua_pop(L, 1);
	}
	if (cfg_sub_table(L, t, "timeouts")) {
		cfg_timeouts(L, lua_gettop(L), c);
		lua_pop(L, 1);
	}
	if (cfg_sub_table(L, t, "auth_fail_limit")) {
		cfg_auth_fail(L, lua_gettop(L), &c->auth_fail);
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
	lua_getfield(L, 1, "submission_socket");
	if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) > 0)
		c->submit_socket = xstrdup(lua_tostring(L, -1));
	else if (lua_isnil(L, -1))
		c->submit_socket = config_default_submit_socket(c);
	else if (!(lua_isboolean(L, -1) && !lua_toboolean(L, -1)))
		cfg_bad(L, "submission_socket", "must be a path or false");
	lua_pop(L, 1);
}

/*
 * local_sender_requires_auth = true | false (default true): MAIL FROM a
 * local domain needs AUTH, relay_from or the local socket (docs/smtp.md).
 */
static void
parse_local_sender(lua_State *L, struct config *c)
{
	int absent;

	lua_getfield(L, 1, "local_sender_requires_auth");
	absent = lua_isnil(L, -1);
	lua_pop(L, 1);
	if (!absent)
		c->local_sender_requires_auth = cfg_opt_boolean(L, 1,
		    "local_sender_requires_auth", "local_sender_requires_auth");
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
	cfg_problem(L, "bad config: %s", lua_tostring(L, -1));
	lua_pop(L, 1);
}

/* The tables of the config at index 1, each by its parser. */
static void
parse_tables(lua_State *L, struct config *c)
{
	if (!cfg_sub_table(L, 1, "listen"))
		cfg_bad(L, "listen", "is required");
	cfg_listen(L, lua_gettop(L), c);
	lua_pop(L, 1);
	if (cfg_sub_table(L, 1, "local_domains")) {
		cfg_string_list(L, lua_gettop(L), "local_domains",
		    &c->local_domains, &c->nlocal_domains, 1);
		lua_pop(L, 1);
	}
	if (cfg_sub_table(L, 1, "relay_from")) {
		parse_relay(L, lua_gettop(L), c);
		lua_pop(L, 1);
	}
	parse_sections(L, 1, c);
	if (cfg_sub_table(L, 1, "delivery")) {
		cfg_delivery(L, lua_gettop(L), &c->delivery);
		lua_pop(L, 1);
	}
	if (cfg_sub_table(L, 1, "mailboxes")) {
		cfg_mailboxes(L, lua_gettop(L), &c->delivery);
		lua_pop(L, 1);
	}
	if (cfg_sub_table(L, 1, "directory")) {
		cfg_directory(L, lua_gettop(L), &c->directory);
		lua_pop(L, 1);
	}
	if (cfg_sub_table(L, 1, "routes")) {
		cfg_routes(L, lua_gettop(L), &c->delivery);
		lua_pop(L, 1);
	}
	if (cfg_sub_table(L, 1, "admin")) {
		cfg_admin(L, lua_gettop(L), c);
		lua_pop(L, 1);
	}
}

/* Defaults that depend on other settings (hostname, queue path). */
static void
set_defaults(lua_State *L, struct config *c)
{
	if (c->delivery.maildir_root == NULL)
		c->delivery.maildir_root = xstrdup(CONFIG_DEFAULT_MAILDIRS);
	if (c->hostname == NULL)
		c->hostname = config_default_hostname();
	if (c->queue_path == NULL)
		c->queue_path = xstrdup(CONFIG_DEFAULT_QUEUE);
	parse_submit_socket(L, c);
	if (c->delivery.postmaster == NULL)
		c->delivery.postmaster = config_default_postmaster(c);
}

/* A TLS listener needs the certificate and key, which go together. */
static void
check_tls(lua_State *L, const struct config *c)
{
	for (size_t i = 0; i < c->nlisten; i++)
		if (c->listen[i].tls != TLS_NONE && c->tls_cert == NULL)
			luaL_error(L, "bad config: listener '%s' uses TLS but "
			    "tls.cert/tls.key are not set", c->listen[i].name);
	if ((c->tls_cert == NULL) != (c->tls_key == NULL))
		cfg_bad(L, "tls", "cert and key go together");
}

/* indimail.config{...}: stack effect: (table) -> () */
int
lua_config_parse(lua_State *L, struct config *c)
{
	static const char *keys[] = { "hostname", "user", "workers", "listen",
	    "tls", "queue", "log", "dns", "dns_cache", "spf", "dkim", "local_domains",
	    "relay_from", "limits", "timeouts", "lua_dir", "delivery",
	    "mailboxes", "routes", "submission_socket", "directory", "local_sender_requires_auth",
	    "auth_fail_limit", "domain_rules", "domain_rules_limits",
	    "policy_path",
	    "admin",
	    NULL };

	luaL_checktype(L, 1, LUA_TTABLE);
	cfg_check_keys(L, 1, "config", keys);
	cfg_set_string(L, 1, "hostname", "hostname", &c->hostname);
	cfg_set_string(L, 1, "user", "user", &c->user);
	cfg_set_string(L, 1, "lua_dir", "lua_dir", &c->lua_dir);
	cfg_set_number(L, 1, "workers", "workers", 0, 256, 1, &c->workers, 0);
	parse_local_sender(L, c);
	parse_tables(L, c);
	cfg_domain_rules(L, 1, c);
	set_defaults(L, c);
	check_mailboxes(L, c);
	check_tls(L, c);
	return 0;
}
