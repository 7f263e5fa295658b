/*
 * config_keys: the table of every key indimail.config{} accepts, as
 * `indimail config dump` shows it: { key, type, offsetof, unit }. A number
 * the struct holds in milliseconds while the file says seconds has unit
 * MS and prints in seconds. Lists of elements (listen, routes, ...) have a
 * table of their own, whose keys start with "." ("" is the element itself).
 *
 * Adding a config key is one line here, in the table of its struct, next
 * to the struct field the reader (src/lua/lua_config*.c) fills, e.g.
 *     STR("log.format", log_format),          -- a char *
 *     NUM("admin.timeout", admin_timeout_ms, MS),
 *     WORD("log.syslog", log_syslog, facilities),
 * (a `struct ck_word` list names an enum's values). A key without a line
 * here fails tests/integration/config_tool_spec.lua, which compares this
 * table (`indimail config keys`) with the reader's cfg_check_keys lists.
 */
#include <arpa/inet.h>
#include <openssl/tls1.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"
#include "../lib/xalloc.h"
#include "../lib/log.h"
#include "../lua/lua_runtime.h"
#include "config_keys_int.h"

/* One line of a table; T is the struct the table describes. */
#define OFF(f)		offsetof(T, f)
#define NUMTYPE(f)	_Generic(((T *)0)->f, int: CK_INT, size_t: CK_SIZE, \
			    long: CK_LONG)
#define STR(k, f)	{ .key = k, .type = CK_STR, .off = OFF(f) }
#define SECRET(k, f)	{ .key = k, .type = CK_SECRET, .off = OFF(f) }
#define BOOL(k, f)	{ .key = k, .type = CK_BOOL, .off = OFF(f) }
#define NUM(k, f, u)	{ .key = k, .type = NUMTYPE(f), .off = OFF(f), .unit = u }
#define OPTNUM(k, f, u)	{ .key = k, .type = NUMTYPE(f), .off = OFF(f), \
			    .unit = u, .zero_nil = 1 }
#define WORD(k, f, w)	{ .key = k, .type = CK_WORD, .off = OFF(f), .words = w }
#define LIST(k, f, n)	{ .key = k, .type = CK_LIST, .off = OFF(f), \
			    .count_off = OFF(n) }
#define FN(k, fn)	{ .key = k, .type = CK_FN, .get = fn }
#define ARRAY(k, f, n, s) { .key = k, .type = CK_ARRAY, .off = OFF(f), \
			    .count_off = OFF(n), .sub = s }

static const struct ck_word tls_modes[] = { { "none", TLS_NONE },
	{ "starttls", TLS_STARTTLS }, { "implicit", TLS_IMPLICIT },
	{ NULL, 0 } };
static const struct ck_word tls_versions[] = {
	{ "TLSv1.2", TLS1_2_VERSION }, { "TLSv1.3", TLS1_3_VERSION },
	{ NULL, 0 } };
static const struct ck_word client_tls[] = {
	{ "none", CLIENT_TLS_NONE },
	{ "opportunistic", CLIENT_TLS_OPPORTUNISTIC },
	{ "verify", CLIENT_TLS_VERIFY }, { NULL, 0 } };
static const struct ck_word log_levels[] = { { "debug", LOG_DEBUG },
	{ "info", LOG_INFO }, { "warn", LOG_WARN }, { "error", LOG_ERROR },
	{ NULL, 0 } };
static const struct ck_word log_formats[] = { { "kv", LOG_FORMAT_KV },
	{ "json", LOG_FORMAT_JSON }, { NULL, 0 } };
static const struct ck_word queue_backends[] = { { "fs", QUEUE_BACKEND_FS },
	{ "wal", QUEUE_BACKEND_WAL }, { "segment", QUEUE_BACKEND_SEGMENT },
	{ NULL, 0 } };
static const struct ck_word backends[] = { { "config", DIRECTORY_CONFIG },
	{ "sqlite", DIRECTORY_SQLITE }, { "mariadb", DIRECTORY_MARIADB },
	{ NULL, 0 } };
static const struct ck_word over_quota[] = { { "tempfail", 0 },
	{ "reject", 1 }, { NULL, 0 } };
static const struct ck_word dkim_algorithms[] = { { "rsa-sha256", 0 },
	{ "ed25519-sha256", 1 }, { NULL, 0 } };
static const struct ck_word auth_mechs[] = { { "plain", AUTH_MECH_PLAIN },
	{ "login", AUTH_MECH_LOGIN }, { "cram-md5", AUTH_MECH_CRAM_MD5 },
	{ "scram-sha-256", AUTH_MECH_SCRAM_SHA256 }, { NULL, 0 } };

/* ---- values that are not one field ---------------------------------- */

static json_t *
get_auth_mechs(const void *base)
{
	const struct listen_conf *l = base;
	json_t *a = json_array();

	for (const struct ck_word *w = auth_mechs; w->name; w++)
		if (l->auth_mechs & (unsigned)w->value)
			json_array_append_new(a, json_string(w->name));
	return a;
}

static json_t *
get_relay_from(const void *base)
{
	const struct config *c = base;
	char addr[INET6_ADDRSTRLEN];
	json_t *a = json_array();
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < c->nrelay_from; i++) {
		inet_ntop(c->relay_from[i].family, c->relay_from[i].addr, addr,
		    sizeof(addr));
		buf_clear(&b);
		buf_printf(&b, "%s/%d", addr, c->relay_from[i].bits);
		json_array_append_new(a, json_string(buf_cstr(&b)));
	}
	buf_free(&b);
	return a;
}

/* submission_socket = false: none. */
static json_t *
get_submit_socket(const void *base)
{
	const struct config *c = base;

	return c->submit_socket ? json_string(c->submit_socket) :
	    json_false();
}

static json_t *
get_extension_delimiter(const void *base)
{
	const struct config *c = base;

	return json_string(c->directory.extension_delimiter);
}

/* log.syslog: the facility's name, or false for none. */
static json_t *
get_log_syslog(const void *base)
{
	static const char *const names[] = { "mail", "local0", "local1",
	    "local2", "local3", "local4", "local5", "local6", "local7" };
	const struct config *c = base;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (log_syslog_facility(names[i]) == c->log_syslog)
			return json_string(names[i]);
	return json_false();
}

/* admin.listen: "address:port", or nil without an admin table. */
static json_t *
get_admin_listen(const void *base)
{
	const struct config *c = base;
	char s[INET6_ADDRSTRLEN + 16];

	if (!c->admin.enabled)
		return json_null();
	snprintf(s, sizeof(s), strchr(c->admin.address, ':') ? "[%s]:%d" :
	    "%s:%d", c->admin.address, c->admin.port);
	return json_string(s);
}

/* ---- the tables ------------------------------------------------------- */

#define T struct listen_conf
static const struct config_key listen_keys[] = {
	STR(".name", name),
	STR(".address", address),
	NUM(".port", port, 1),
	WORD(".tls", tls, tls_modes),
	STR(".tls_ciphers", tls_ciphers),
	STR(".tls_ciphersuites", tls_ciphersuites),
	WORD(".tls_min_version", tls_min_version, tls_versions),
	BOOL(".auth", auth),
	BOOL(".auth_plaintext", auth_plaintext),
	BOOL(".require_auth", require_auth),
	FN(".auth_mechs", get_auth_mechs),
	BOOL(".sender_login_match", sender_login_match),
	{ NULL, 0, 0, 0, 0, NULL, 0, NULL, NULL }
};
#undef T

#define T struct route_conf
static const struct config_key route_keys[] = {
	STR(".host", host),
	NUM(".port", port, 1),
	STR(".auth_user", auth_user),
	SECRET(".auth_password", auth_password),
	BOOL(".auth_plaintext", auth_plaintext),
	WORD(".tls", tls, client_tls),
	OPTNUM(".timeouts.connect", timeouts.connect, MS),
	OPTNUM(".timeouts.greeting", timeouts.greeting, MS),
	OPTNUM(".timeouts.command", timeouts.command, MS),
	OPTNUM(".timeouts.data", timeouts.data, MS),
	OPTNUM(".retry.base", retry.base_ms, MS),
	OPTNUM(".retry.max", retry.max_ms, MS),
	OPTNUM(".lifetime", retry.lifetime_s, 1),
	{ NULL, 0, 0, 0, 0, NULL, 0, NULL, NULL }
};
#undef T

#define T struct dkim_key_conf
static const struct config_key dkim_key_keys[] = {
	STR(".selector", selector),
	STR(".key_file", key_file),	/* the key itself is never shown */
	WORD(".algorithm", ed25519, dkim_algorithms),
	{ NULL, 0, 0, 0, 0, NULL, 0, NULL, NULL }
};
#undef T

#define T struct mailbox_user
static const struct config_key user_keys[] = {
	STR(".address", address),
	NUM(".quota", quota, 1),
	SECRET(".password", secret),
	BOOL(".no_relay", no_relay),
	{ NULL, 0, 0, 0, 0, NULL, 0, NULL, NULL }
};
#undef T

#define T struct alias
static const struct config_key alias_keys[] = {
	LIST("", targets, ntargets),
	{ NULL, 0, 0, 0, 0, NULL, 0, NULL, NULL }
};
#undef T

#define T struct domain_limit
static const struct config_key domain_limit_keys[] = {
	NUM(".instructions", instructions, 1),
	NUM(".memory", memory, 1),
	{ NULL, 0, 0, 0, 0, NULL, 0, NULL, NULL }
};
#undef T

static void
listen_dflt(const struct config *c, const void *elem, void *out)
{
	const struct listen_conf *l = elem;
	struct listen_conf *d = out;

	(void)c;
	d->name = (char *)"smtp";
	d->address = (char *)"127.0.0.1";
	d->port = -1;		/* required */
	d->auth = listen_default_auth(l);
	d->require_auth = listen_default_require_auth(l);
	d->auth_mechs = AUTH_MECH_PLAIN | AUTH_MECH_LOGIN;
	d->sender_login_match = 1;
}

static void
route_dflt(const struct config *c, const void *elem, void *out)
{
	const struct route_conf *r = elem;
	struct route_conf *d = out;

	(void)c;
	d->port = 25;
	d->tls = r->auth_user ? CLIENT_TLS_VERIFY : CLIENT_TLS_OPPORTUNISTIC;
}

static void
domain_limit_dflt(const struct config *c, const void *elem, void *out)
{
	(void)elem;
	*(struct domain_limit *)out = c->domain_default;
}

static void
zero_dflt(const struct config *c, const void *elem, void *out)
{
	(void)c;
	(void)elem;
	(void)out;		/* zeroed already */
}

static const struct config_array listens = { listen_keys,
	sizeof(struct listen_conf), -1, listen_dflt };
static const struct config_array routes = { route_keys,
	sizeof(struct route_conf), offsetof(struct route_conf, domain),
	route_dflt };
static const struct config_array dkim_keys = { dkim_key_keys,
	sizeof(struct dkim_key_conf), offsetof(struct dkim_key_conf, domain),
	zero_dflt };
static const struct config_array users = { user_keys,
	sizeof(struct mailbox_user), -1, zero_dflt };
static const struct config_array aliases = { alias_keys,
	sizeof(struct alias), offsetof(struct alias, address), zero_dflt };
static const struct config_array domain_limits = { domain_limit_keys,
	sizeof(struct domain_limit), offsetof(struct domain_limit, domain),
	domain_limit_dflt };

#define T struct config
const struct config_key config_keys[] = {
	STR("hostname", hostname),
	STR("user", user),
	NUM("workers", workers, 1),
	STR("lua_dir", lua_dir),
	ARRAY("listen", listen, nlisten, &listens),
	STR("tls.cert", tls_cert),
	STR("tls.key", tls_key),
	STR("queue.path", queue_path),
	NUM("queue.count", queue_count, 1),
	NUM("queue.split", queue_split, 1),
	WORD("queue.backend", queue_backend, queue_backends),
	FN("submission_socket", get_submit_socket),
	STR("log.file", log_file),
	WORD("log.level", log_level, log_levels),
	WORD("log.format", log_format, log_formats),
	FN("log.syslog", get_log_syslog),
	STR("log.syslog_socket", log_syslog_socket),
	STR("dns.servers", dns_servers),
	NUM("dns.timeout", dns_timeout_ms, MS),
	NUM("dns_cache.size", dns_cache_size, 1),
	NUM("dns_cache.max_ttl", dns_cache_max_ttl, 1),
	NUM("dns_cache.negative_ttl", dns_cache_negative_ttl, 1),
	NUM("spf.timeout", spf_timeout_ms, MS),
	NUM("spf.jobs", spf_jobs, 1),
	NUM("spf.cache_size", spf_cache_size, 1),
	NUM("spf.cache_ttl", spf_cache_ttl, 1),
	NUM("dkim.jobs", dkim_jobs, 1),
	NUM("dkim.timeout", dkim_timeout_ms, MS),
	ARRAY("dkim.keys", dkim_keys, ndkim_keys, &dkim_keys),
	LIST("local_domains", local_domains, nlocal_domains),
	FN("relay_from", get_relay_from),
	BOOL("local_sender_requires_auth", local_sender_requires_auth),
	NUM("limits.command_line", max_command_line, 1),
	NUM("limits.text_line", max_text_line, 1),
	NUM("limits.message_size", max_message_size, 1),
	NUM("limits.recipients", max_recipients, 1),
	NUM("limits.connections", max_connections, 1),
	NUM("limits.connections_per_ip", max_connections_per_ip, 1),
	NUM("limits.errors", max_errors, 1),
	NUM("limits.junk_commands", max_junk, 1),
	NUM("limits.tarpit_after", tarpit_after, 1),
	NUM("limits.tarpit_delay", tarpit_delay, MS),
	NUM("limits.tarpit_max", tarpit_max, MS),
	NUM("limits.data_memory", data_memory, 1),
	NUM("limits.hook_instructions", hook_instructions, 1),
	NUM("limits.lua_memory", lua_memory, 1),
	NUM("timeouts.command", timeout_command, MS),
	NUM("timeouts.data", timeout_data, MS),
	NUM("timeouts.data_total", timeout_data_total, MS),
	NUM("timeouts.tls", timeout_tls, MS),
	NUM("timeouts.watchdog", timeout_watchdog, MS),
	NUM("timeouts.hook", timeout_hook, MS),
	NUM("timeouts.drain", timeout_drain, MS),
	NUM("auth_fail_limit.per_ip", auth_fail.per_ip, 1),
	NUM("auth_fail_limit.per_user", auth_fail.per_user, 1),
	NUM("auth_fail_limit.window", auth_fail.window_s, 1),
	NUM("auth_fail_limit.delay", auth_fail.delay_ms, MS),
	NUM("auth_fail_limit.delay_max", auth_fail.delay_max_ms, MS),
	NUM("delivery.lifetime", delivery.retry.lifetime_s, 1),
	NUM("delivery.retry.base", delivery.retry.base_ms, MS),
	NUM("delivery.retry.max", delivery.retry.max_ms, MS),
	OPTNUM("delivery.dead_destination.backoff", delivery.dead.backoff_ms, MS),
	OPTNUM("delivery.dead_destination.max", delivery.dead.max_ms, MS),
	NUM("delivery.concurrency.local", delivery.conc_local, 1),
	NUM("delivery.concurrency.remote", delivery.conc_remote, 1),
	NUM("delivery.concurrency.per_domain", delivery.conc_domain, 1),
	NUM("delivery.concurrency.initial", delivery.conc_initial, 1),
	NUM("delivery.port", delivery.port, 1),
	STR("delivery.bind_address", delivery.bind_address),
	WORD("delivery.tls", delivery.tls, client_tls),
	NUM("delivery.timeouts.connect", delivery.timeouts.connect, MS),
	NUM("delivery.timeouts.greeting", delivery.timeouts.greeting, MS),
	NUM("delivery.timeouts.command", delivery.timeouts.command, MS),
	NUM("delivery.timeouts.data", delivery.timeouts.data, MS),
	NUM("delivery.max_hops", delivery.max_hops, 1),
	BOOL("delivery.paused", delivery.paused),
	NUM("delivery.active_limit", delivery.active_limit, 1),
	STR("mailboxes.root", delivery.maildir_root),
	STR("mailboxes.postmaster", delivery.postmaster),
	ARRAY("mailboxes.users", delivery.users, delivery.nusers, &users),
	ARRAY("mailboxes.aliases", delivery.aliases, delivery.naliases,
	    &aliases),
	ARRAY("routes", delivery.routes, delivery.nroutes, &routes),
	WORD("directory.backend", directory.backend, backends),
	STR("directory.path", directory.path),
	NUM("directory.cache_ttl", directory.cache_ttl_ms, MS),
	NUM("directory.negative_ttl", directory.negative_ttl_ms, MS),
	STR("directory.host", directory.host),
	OPTNUM("directory.port", directory.port, 1),
	STR("directory.socket", directory.socket),
	STR("directory.database", directory.database),
	STR("directory.user", directory.user),
	STR("directory.password_file", directory.password_file),
	NUM("directory.timeout", directory.timeout_s, 1),
	NUM("directory.pool", directory.pool, 1),
	FN("directory.extension_delimiter", get_extension_delimiter),
	WORD("directory.over_quota", directory.over_quota_reject, over_quota),
	NUM("directory.password_policy.min_length",
	    directory.password_policy.min_length, 1),
	NUM("directory.password_policy.min_classes",
	    directory.password_policy.min_classes, 1),
	NUM("directory.password_policy.max_length",
	    directory.password_policy.max_length, 1),
	STR("domain_rules", domain_rules),
	NUM("domain_rules_limits.instructions", domain_default.instructions, 1),
	NUM("domain_rules_limits.memory", domain_default.memory, 1),
	NUM("domain_rules_limits.max.instructions", domain_max.instructions, 1),
	NUM("domain_rules_limits.max.memory", domain_max.memory, 1),
	ARRAY("domain_rules_limits.domains", domain_limits, ndomain_limits,
	    &domain_limits),
	LIST("policy_path", policy_path, npolicy_path),
	FN("admin.listen", get_admin_listen),
	BOOL("admin.tls", admin.tls),
	STR("admin.cert", admin.cert),
	STR("admin.key", admin.key),
	STR("admin.tokens", admin.tokens),
	{ NULL, 0, 0, 0, 0, NULL, 0, NULL, NULL }
};
#undef T

