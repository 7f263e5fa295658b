/*
 * config: defaults, lookups and release of struct config. The Lua side
 * (src/lua/lua_config.c) fills it; everything here is plain C so the
 * worker can consult limits without touching the Lua state.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "../lib/buf.h"
#include "../lib/xalloc.h"

#define HOSTNAME_MAX	256

/* dns, dns_cache and spf */
static void
dns_defaults(struct config *c)
{
	c->dns_timeout_ms = 5000;
	c->dns_cache_size = 4096;
	c->dns_cache_max_ttl = 3600;
	c->dns_cache_negative_ttl = 300;
	c->spf_timeout_ms = 20 * 1000;	/* RFC 7208 4.6.4: at least 20 s */
	c->spf_jobs = 2;		/* of libuv's 4 pool threads */
	c->spf_cache_size = 1024;
	c->spf_cache_ttl = 300;
}

/* delivery.concurrency: jobs at once, and a destination's slow start. */
static void
concurrency_defaults(struct delivery_conf *d)
{
	d->conc_local = 10;
	d->conc_remote = 50;
	d->conc_domain = 10;
	d->conc_initial = 5;	/* Postfix's, capped by conc_domain */
}

void
config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->queue_count = 1;
	c->queue_split = 16;
	c->queue_backend = QUEUE_BACKEND_SEGMENT;	/* docs/queue.md */
	c->log_level = 1;	/* info */
	c->log_syslog = -1;	/* no syslog */
	dns_defaults(c);
	c->max_command_line = 512;
	c->max_text_line = 1000;
	c->max_message_size = 25 * 1024 * 1024;
	c->max_recipients = 100;
	c->max_connections = 1000;
	c->max_connections_per_ip = 20;
	c->max_errors = 10;
	c->local_sender_requires_auth = 1;
	c->max_junk = 100;		/* Postfix's smtpd_junk_command_limit */
	c->tarpit_after = 5;
	c->tarpit_delay = 1000;
	c->tarpit_max = 30 * 1000;
	c->data_memory = 256 * 1024 * 1024;
	c->hook_instructions = 10 * 1000 * 1000;
	c->lua_memory = 256 * 1024 * 1024;
	c->domain_default = (struct domain_limit)DOMAIN_LIMIT_DEFAULT;
	c->domain_max = (struct domain_limit)DOMAIN_LIMIT_MAX;
	c->timeout_command = 300 * 1000;
	c->timeout_data = 600 * 1000;
	c->timeout_data_total = 1800 * 1000;
	c->timeout_watchdog = 10 * 1000;
	c->timeout_tls = 30 * 1000;
	c->timeout_hook = 30 * 1000;
	c->timeout_drain = 30 * 1000;
	c->delivery.retry = (struct retry_policy){ .base_ms = 60 * 1000,
	    .max_ms = 2 * 3600 * 1000, .lifetime_s = 7 * 86400 };
	c->delivery.active_limit = 20000;
	concurrency_defaults(&c->delivery);
	c->delivery.port = 25;
	c->delivery.tls = CLIENT_TLS_OPPORTUNISTIC;
	c->delivery.timeouts.connect = 30 * 1000;
	c->delivery.timeouts.greeting = 300 * 1000;
	c->delivery.timeouts.command = 300 * 1000;
	c->delivery.timeouts.data = 600 * 1000;
	c->delivery.max_hops = 100;
	c->directory.cache_ttl_ms = 60 * 1000;
	c->directory.timeout_s = 5;
	c->directory.pool = 4;
	c->directory.negative_ttl_ms = 10 * 1000;
	strcpy(c->directory.extension_delimiter, "+");
	c->directory.password_policy =
	    (struct password_policy)PASSWORD_POLICY_DEFAULT;
	c->dkim_jobs = 2;
	c->dkim_timeout_ms = 10 * 1000;
	c->auth_fail.per_ip = 10;
	c->auth_fail.per_user = 5;
	c->auth_fail.window_s = 900;
	c->auth_fail.delay_ms = 1000;
	c->auth_fail.delay_max_ms = 16 * 1000;
}

char *
config_default_hostname(void)
{
	char host[HOSTNAME_MAX];

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	return xstrdup(host);
}

char *
config_default_submit_socket(const struct config *c)
{
	struct buf p = BUF_INIT;

	buf_printf(&p, "%s/public/submit.sock", c->queue_path);
	return p.data;		/* the buffer's memory moves */
}

/* postmaster@ the first local domain, else the hostname. */
char *
config_default_postmaster(const struct config *c)
{
	struct buf pm = BUF_INIT;

	buf_printf(&pm, "postmaster@%s", c->nlocal_domains ?
	    c->local_domains[0] : c->hostname);
	return pm.data;		/* the buffer's memory moves */
}

/* Offered on "submission" and on implicit TLS. */
int
listen_default_auth(const struct listen_conf *l)
{
	return strcmp(l->name, "submission") == 0 || l->tls == TLS_IMPLICIT;
}

/* Required on "submission" when offered there. */
int
listen_default_require_auth(const struct listen_conf *l)
{
	return strcmp(l->name, "submission") == 0 && l->auth;
}

static void
delivery_free(struct delivery_conf *d)
{
	for (size_t i = 0; i < d->nusers; i++) {
		free(d->users[i].address);
		free(d->users[i].secret);
	}
	free(d->users);
	for (size_t i = 0; i < d->naliases; i++) {
		free(d->aliases[i].address);
		for (size_t k = 0; k < d->aliases[i].ntargets; k++)
			free(d->aliases[i].targets[k]);
		free(d->aliases[i].targets);
	}
	free(d->aliases);
	for (size_t i = 0; i < d->nroutes; i++) {
		free(d->routes[i].domain);
		free(d->routes[i].host);
		free(d->routes[i].auth_user);
		free(d->routes[i].auth_password);
	}
	free(d->routes);
	free(d->maildir_root);
	free(d->postmaster);
	free(d->bind_address);
}

const struct mailbox_user *
config_find_user(const struct config *c, const char *address)
{
	for (size_t i = 0; i < c->delivery.nusers; i++)
		if (strcasecmp(c->delivery.users[i].address, address) == 0)
			return &c->delivery.users[i];
	return NULL;
}

const struct alias *
config_find_alias(const struct config *c, const char *address)
{
	for (size_t i = 0; i < c->delivery.naliases; i++)
		if (strcasecmp(c->delivery.aliases[i].address, address) == 0)
			return &c->delivery.aliases[i];
	return NULL;
}

const struct route_conf *
config_find_route(const struct config *c, const char *domain)
{
	const struct route_conf *any = NULL;

	for (size_t i = 0; i < c->delivery.nroutes; i++) {
		if (strcasecmp(c->delivery.routes[i].domain, domain) == 0)
			return &c->delivery.routes[i];
		if (c->delivery.routes[i].domain[0] == '\0')
			any = &c->delivery.routes[i];
	}
	return any;
}

static int
same_string(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

int
route_same_session(const struct route_conf *a, const struct route_conf *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcasecmp(a->host, b->host) == 0 && a->port == b->port &&
	    a->tls == b->tls && a->auth_plaintext == b->auth_plaintext &&
	    same_string(a->auth_user, b->auth_user) &&
	    same_string(a->auth_password, b->auth_password);
}

void
config_free(struct config *c)
{
	for (size_t i = 0; i < c->nlisten; i++) {
		free(c->listen[i].name);
		free(c->listen[i].address);
		free(c->listen[i].tls_ciphers);
		free(c->listen[i].tls_ciphersuites);
	}
	free(c->listen);
	for (size_t i = 0; i < c->nlocal_domains; i++)
		free(c->local_domains[i]);
	free(c->local_domains);
	free(c->relay_from);
	free(c->hostname);
	free(c->user);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->admin.address);
	free(c->admin.cert);
	free(c->admin.key);
	free(c->admin.tokens);
	free(c->queue_path);
	free(c->submit_socket);
	free(c->log_file);
	free(c->log_syslog_socket);
	free(c->dns_servers);
	free(c->lua_dir);
	free(c->domain_rules);
	for (size_t i = 0; i < c->ndomain_limits; i++)
		free(c->domain_limits[i].domain);
	free(c->domain_limits);
	for (size_t i = 0; i < c->npolicy_path; i++)
		free(c->policy_path[i]);
	free(c->policy_path);
	delivery_free(&c->delivery);
	free(c->directory.path);
	free(c->directory.host);
	free(c->directory.socket);
	free(c->directory.database);
	free(c->directory.user);
	if (c->directory.password)
		explicit_bzero(c->directory.password,
		    strlen(c->directory.password));
	free(c->directory.password);
	free(c->directory.password_file);
	for (size_t i = 0; i < c->ndkim_keys; i++) {
		free(c->dkim_keys[i].domain);
		free(c->dkim_keys[i].selector);
		if (c->dkim_keys[i].key)
			explicit_bzero(c->dkim_keys[i].key,
			    strlen(c->dkim_keys[i].key));
		free(c->dkim_keys[i].key);
		free(c->dkim_keys[i].key_file);
	}
	free(c->dkim_keys);
	memset(c, 0, sizeof(*c));
}

const struct dkim_key_conf *
config_dkim_key(const struct config *c, const char *domain)
{
	for (size_t i = 0; i < c->ndkim_keys; i++)
		if (strcasecmp(c->dkim_keys[i].domain, domain) == 0)
			return &c->dkim_keys[i];
	return NULL;
}

int
config_is_local_domain(const struct config *c, const char *domain)
{
	for (size_t i = 0; i < c->nlocal_domains; i++)
		if (strcasecmp(c->local_domains[i], domain) == 0)
			return 1;
	return 0;
}
