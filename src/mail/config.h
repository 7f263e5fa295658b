/*
 * [src/mail: what every part of the server knows about mail, whatever the
 * protocol; it includes only src/lib. See docs/architecture.md.]
 *
 * config: the C view of what etc/indimail.lua passed to indimail.config{}.
 * Filled and validated by lua/lua_config.c while the file runs, so a bad
 * value is reported with the file and line of the indimail.config call.
 */
#ifndef INDIMAIL_CONFIG_H
#define INDIMAIL_CONFIG_H

#include <netinet/in.h>
#include <stddef.h>

#include "../lib/cidr.h"

enum tls_mode { TLS_NONE, TLS_STARTTLS, TLS_IMPLICIT };

struct listen_conf {
	char		*name;
	char		*address;
	int		 port;
	enum tls_mode	 tls;
	/* NULL/0: Mozilla "intermediate" (net/tls.c, docs/smtp.md) */
	char		*tls_ciphers;		/* TLS <= 1.2, OpenSSL syntax */
	char		*tls_ciphersuites;	/* TLS 1.3 */
	int		 tls_min_version;	/* TLS1_2_VERSION, TLS1_3_VERSION */
	/* SMTP AUTH (docs/smtp.md); defaults depend on the name and tls */
	int		 auth;		/* offered here */
	int		 auth_plaintext;	/* also without TLS */
	int		 require_auth;	/* MAIL only after AUTH */
	unsigned	 auth_mechs;	/* AUTH_MECH_*: offered and taken here */
	int		 sender_login_match;	/* MAIL FROM: the user's own */
};

/* listen[].auth_mechs (default PLAIN and LOGIN). */
#define AUTH_MECH_PLAIN		0x1
#define AUTH_MECH_LOGIN		0x2
#define AUTH_MECH_CRAM_MD5	0x4
#define AUTH_MECH_SCRAM_SHA256	0x8

/* A virtual mailbox (until the directory lands): <root>/<domain>/<local>/Maildir */
struct mailbox_user {
	char		*address;
	size_t		 quota;		/* bytes; 0 = none */
	char		*secret;	/* crypt(3) hash for SMTP AUTH; NULL: none */
	int		 no_relay;	/* may log in, may not relay */
};

struct alias {
	char		*address;	/* local address or "@domain" (catch-all) */
	char	       **targets;
	size_t		 ntargets;
};

/* Retry tolerance: backoff base*n² capped at max, bounce after lifetime. */
struct retry_policy {
	int		 base_ms, max_ms;
	long		 lifetime_s;
};

/*
 * delivery.dead_destination = { backoff=, max= }: how long a destination
 * that is down waits before a probe; doubled by each failed probe. 0: the
 * retry base and max of its route, else of delivery.
 */
struct dead_dest_conf {
	int		 backoff_ms, max_ms;
};

/* Per-phase client timeouts (ms); 0 in a route means "the delivery default". */
struct client_timeouts {
	int		 connect, greeting, command, data;
};

/*
 * smtproutes: domain ("" = every remote domain) → relay host:port, with
 * its own TCP timeouts and retry tolerance (IndiMail's tcpto table).
 */
struct route_conf {
	char		*domain;
	char		*host;
	int		 port;
	char		*auth_user, *auth_password;
	int		 tls;		/* enum client_tls (auth_user: verify) */
	int		 auth_plaintext;	/* AUTH without TLS: dangerous */
	struct client_timeouts timeouts;	/* 0: delivery.timeouts */
	struct retry_policy retry;		/* 0: delivery.retry/lifetime */
};

enum client_tls { CLIENT_TLS_NONE, CLIENT_TLS_OPPORTUNISTIC, CLIENT_TLS_VERIFY };

struct delivery_conf {
	char		*maildir_root;
	struct mailbox_user *users;
	size_t		 nusers;
	int		 users_listed;	/* mailboxes.users given: others are unknown */
	struct alias	*aliases;
	size_t		 naliases;
	struct route_conf *routes;
	size_t		 nroutes;
	char		*postmaster;	/* receives double bounces */
	struct retry_policy retry;
	struct dead_dest_conf dead;	/* docs/delivery.md: a destination down */
	int		 conc_local, conc_remote, conc_domain;
	int		 conc_initial;	/* an untried destination's window */
	int		 port;		/* remote SMTP port, 25 */
	char		*bind_address;
	int		 tls;		/* enum client_tls for MX delivery */
	struct client_timeouts timeouts;
	int		 max_hops;
	int		 paused;	/* deliver nothing: mail stays queued */
	int		 active_limit;	/* messages the queue manager holds whole */
};

/*
 * directory = { backend=, path=, host=, ..., cache_ttl=, negative_ttl=,
 * extension_delimiter=, over_quota=, password_policy= }: where users live,
 * how the RCPT check answers and which passwords bin/indimail accepts.
 * The order of the backends is directory.c's table.
 */
/* queue.backend: plain files, or the write-ahead segments */
enum queue_backend_kind { QUEUE_BACKEND_FS, QUEUE_BACKEND_WAL,
	QUEUE_BACKEND_SEGMENT };

enum directory_kind { DIRECTORY_CONFIG, DIRECTORY_SQLITE, DIRECTORY_MARIADB };

/*
 * password_policy = { min_length=, min_classes=, max_length= }: lengths in
 * characters (UTF-8 code points), classes of lower, upper, digit, other.
 */
struct password_policy {
	int		 min_length;	/* 8, in 1..PASSWORD_MAX_CHARS */
	int		 min_classes;	/* 1, in 1..4 */
	int		 max_length;	/* 1024, in min_length..PASSWORD_MAX_CHARS */
};

#define PASSWORD_MAX_CHARS	1024
#define PASSWORD_POLICY_DEFAULT	{ 8, 1, PASSWORD_MAX_CHARS }

/* The characters extension_delimiter may hold (each once). */
#define DIRECTORY_DELIMITERS	"+-=_."

struct directory_conf {
	enum directory_kind backend;	/* DIRECTORY_CONFIG without the table */
	char		*path;		/* sqlite: the database file */
	/* mariadb: a socket, or host and port; the password from a file */
	char		*host, *socket, *database, *user, *password;
	int		 port;
	int		 timeout_s;	/* connect, read, write: 5 s */
	int		 pool;		/* connections per process, 4 */
	int		 cache_ttl_ms;	/* found answers, 60 s */
	int		 negative_ttl_ms;	/* "not found" answers, 10 s */
	/* joe+tag@ is joe@ (Postfix's recipient_delimiter); "" none; "+" */
	char		 extension_delimiter[sizeof(DIRECTORY_DELIMITERS)];
	int		 over_quota_reject;	/* RCPT 552 5.2.2, not 452 4.2.2 */
	struct password_policy password_policy;	/* bin/indimail's rules */
	/* where the password came from, for `indimail config dump` */
	char		*password_file;
};

/*
 * auth_fail_limit = { per_ip=, per_user=, window=, delay=, delay_max= }:
 * failed SMTP AUTH counted per client IP and per user across every worker
 * (docs/smtp.md); 0 in per_ip or per_user: that limit is off.
 */
struct auth_fail_conf {
	int		 per_ip;	/* failures from one IP, 10 */
	int		 per_user;	/* failures for one user, 5 */
	int		 window_s;	/* counted over 900 s */
	int		 delay_ms;	/* a failure's reply waits this long, 1 s, */
	int		 delay_max_ms;	/* doubling with the IP's count, to 16 s */
};

/*
 * A domain file's budgets (domain_rules_limits, lua_config_domains.c): the
 * default each file gets, and the site maximum (max = {...}) that neither
 * the default nor a domain's own value may pass.
 */
#define DOMAIN_DEFAULT_INSTRUCTIONS	(1000L * 1000)
#define DOMAIN_DEFAULT_MEMORY		((size_t)16 << 20)
#define DOMAIN_MAX_INSTRUCTIONS		(100L * 1000 * 1000)
#define DOMAIN_MAX_MEMORY		((size_t)256 << 20)
#define DOMAIN_LIMIT_DEFAULT	{ NULL, DOMAIN_DEFAULT_INSTRUCTIONS, \
				  DOMAIN_DEFAULT_MEMORY }
#define DOMAIN_LIMIT_MAX	{ NULL, DOMAIN_MAX_INSTRUCTIONS, DOMAIN_MAX_MEMORY }

struct domain_limit {
	char		*domain;	/* NULL: the default or the maximum */
	long		 instructions;	/* per hook, and to run the file */
	size_t		 memory;	/* its lua_State, beyond the libraries */
};

/* dkim.keys["example.com"] = { selector=, key_file=, algorithm= } */
struct dkim_key_conf {
	char		*domain, *selector;
	int		 ed25519;	/* else rsa-sha256 */
	char		*key;		/* the key file's PEM, read at load */
	char		*key_file;	/* where key came from */
};

/*
 * admin = { listen=, tls=, cert=, key=, tokens= },
 * the admin HTTP API (src/admin, docs/admin-api.md); absent: no API.
 */
#define ADMIN_DEFAULT_ADDRESS	"127.0.0.1"
#define ADMIN_DEFAULT_PORT	8443
struct admin_conf {
	int		 enabled;	/* the admin table was given */
	char		*address;	/* an IP literal */
	int		 port;		/* 0: any free port (logged) */
	int		 tls;		/* false only on a loopback address */
	char		*cert, *key;	/* NULL: tls.cert and tls.key */
	char		*tokens;	/* NULL: "admin-tokens" beside the config */
};

struct config {
	char		*hostname;
	char		*user;		/* drop to this user when root */
	int		 workers;	/* 0: one per core */
	struct listen_conf *listen;
	size_t		 nlisten;
	char		*tls_cert, *tls_key;
	char		*queue_path;
	char		*submit_socket;	/* local submission (sendmail); NULL: none */
	int		 queue_count;
	int		 queue_split;
	int		 queue_backend;	/* enum queue_backend_kind */
	char		*log_file;	/* NULL: stderr */
	int		 log_level;
	/* log = { format=, syslog=, syslog_socket= } */
	int		 log_format;	/* enum log_format: 0 kv, 1 json */
	int		 log_syslog;	/* a syslog facility code; -1: none */
	char		*log_syslog_socket;	/* NULL: /dev/log */
	char		*dns_servers;	/* "ip:port,..." or NULL for resolv.conf */
	int		 dns_timeout_ms;
	/* dns_cache = { size=, max_ttl=, negative_ttl= } (src/net/dns_cache.h) */
	size_t		 dns_cache_size;	/* slots; 0: no cache */
	int		 dns_cache_max_ttl;	/* seconds */
	int		 dns_cache_negative_ttl;	/* without an SOA */
	/* spf = { timeout=, jobs=, cache_size=, cache_ttl= } (src/net/spf_job.h) */
	int		 spf_timeout_ms;	/* a whole check */
	int		 spf_jobs;		/* checks on the thread pool at once */
	size_t		 spf_cache_size;	/* answers kept per worker; 0: none */
	int		 spf_cache_ttl;		/* seconds */
	/* dkim = { keys=, jobs=, timeout= } (src/net/dkim_job.h) */
	struct dkim_key_conf *dkim_keys;
	size_t		 ndkim_keys;
	int		 dkim_jobs;		/* jobs on the thread pool at once */
	int		 dkim_timeout_ms;	/* a whole verification */
	char		*lua_dir;
	/* issue 11: per-domain rules and the site policy search path */
	char		*domain_rules;		/* folder of DOMAIN.lua, or NULL */
	/* domain_rules_limits: every file's default, the site maximum no
	 * value may pass, and the domains given their own */
	struct domain_limit domain_default, domain_max;
	struct domain_limit *domain_limits;
	size_t		 ndomain_limits;
	char	       **policy_path;		/* searched before lua_dir/policies */
	size_t		 npolicy_path;
	char	       **local_domains;
	size_t		 nlocal_domains;
	struct cidr	*relay_from;
	size_t		 nrelay_from;
	int		 local_sender_requires_auth;	/* MAIL FROM a local domain */
	/* limits */
	size_t		 max_command_line;	/* 512 (RFC 5321 4.5.3.1.4) */
	size_t		 max_text_line;		/* 1000 with CRLF */
	size_t		 max_message_size;
	size_t		 max_recipients;
	int		 max_connections;
	int		 max_connections_per_ip;
	int		 max_errors;		/* bad commands before 421 */
	int		 max_junk;		/* NOOP/HELP/VRFY/RSET before they count as errors */
	int		 tarpit_after;		/* bad recipients before replies slow down */
	int		 tarpit_delay;		/* ms, grows with each further bad recipient */
	int		 tarpit_max;		/* ms: longest a hook's tarpit holds a reply */
	size_t		 data_memory;		/* message bytes a worker may hold */
	long		 hook_instructions;
	size_t		 lua_memory;		/* bytes per lua_State */
	/* timeouts, milliseconds */
	int		 timeout_command;
	int		 timeout_data;		/* idle inside DATA */
	int		 timeout_data_total;	/* the whole DATA phase */
	int		 timeout_tls;		/* the whole TLS handshake */
	int		 timeout_watchdog;	/* a hook holding the loop */
	int		 timeout_hook;
	int		 timeout_drain;
	struct delivery_conf delivery;
	struct directory_conf directory;
	struct auth_fail_conf auth_fail;
	struct admin_conf admin;
};

void	config_defaults(struct config *);
/*
 * the defaults that follow other settings, shared by the
 * reader (lua_config.c) and `indimail config dump`: each malloc'd.
 */
#define CONFIG_DEFAULT_QUEUE	"queue"
#define CONFIG_DEFAULT_MAILDIRS	"var/maildirs"
char	*config_default_hostname(void);
char	*config_default_submit_socket(const struct config *);
char	*config_default_postmaster(const struct config *);
/* A listener's AUTH defaults follow its name and tls (docs/smtp.md). */
int	listen_default_auth(const struct listen_conf *);
int	listen_default_require_auth(const struct listen_conf *);
void	config_free(struct config *);
/* The signing key of domain (any case), or NULL. */
const struct dkim_key_conf *config_dkim_key(const struct config *,
	    const char *domain);
int	config_is_local_domain(const struct config *, const char *domain);
const struct mailbox_user *config_find_user(const struct config *,
	    const char *address);
const struct alias *config_find_alias(const struct config *, const char *);
const struct route_conf *config_find_route(const struct config *,
	    const char *domain);
/* Same relay, login and TLS policy (both NULL: both MX). */
int	route_same_session(const struct route_conf *,
	    const struct route_conf *);

#endif
