/*
 * directory_backend: the table a directory backend fills (OpenSMTPD's
 * table_backend style): a name, open/close, and four lookups. A backend
 * answers facts, the front (directory.c) applies the rules: postmaster,
 * catch-all, expansion, the RCPT decision, the cache, and the password
 * check (directory_auth.c: the user's stored hash, verified off the loop). A
 * backend is one table listed in directory.c.
 */
#ifndef INDIMAIL_DIRECTORY_BACKEND_H
#define INDIMAIL_DIRECTORY_BACKEND_H

#include <uv.h>

#include "directory.h"

/* What one backend lookup found; the strings are the result's own. */
struct dir_result {
	enum dir_status	 status;	/* DIR_OK, DIR_NOTFOUND, DIR_TEMPFAIL */
	/* user: DIR_OK means "has a mailbox here" */
	char		*address;	/* the user's own spelling */
	unsigned	 flags;		/* DIR_USER_* */
	size_t		 quota;		/* bytes; 0 = none */
	char		*secret;	/* user: the stored password hash (crypt(3)), or NULL */
	char		*scram;		/* user: SCRAM-SHA-256 secret (lib/sasl.h), or NULL */
	char		*cram;		/* user: CRAM-MD5 secret, or NULL */
	/* user: the host holding it (hostcntrl) or NULL; host: its name */
	char		*host;
	struct dir_vacation *vacation;	/* user: its autoresponder, or NULL */
	/* host: the host's address (host_table) is in address; its port: */
	int		 port;		/* smtp_port, 25 when none */
	/* alias */
	char	       **targets;
	size_t		 ntargets;
};

/* A listed user; without it, DIR_OK says "every name is a mailbox here". */
#define DIR_USER_LISTED		0x1
/* The user may not log in at all / may not log in to send (SMTP AUTH). */
#define DIR_USER_DISABLED	0x2
#define DIR_USER_NO_SMTP	0x4
/* The user may log in but not relay (RCPT to a domain not local). */
#define DIR_USER_NO_RELAY	0x8

/* backend: in memory, answers never change while it is open (no cache). */
#define DIR_BACKEND_MEMORY	0x1

typedef void (*dir_backend_cb)(void *arg, struct dir_result *);

/*
 * A lookup: DIR_DONE with *r filled, or DIR_PENDING and cb(arg, r) later
 * on the loop thread (r then belongs to cb for the call) unless
 * cancel(*opp) is called first. key is copied.
 */
typedef int (*dir_backend_lookup)(void *h, const char *key,
	    struct dir_result *r, dir_backend_cb cb, void *arg, void **opp);

struct directory_backend {
	const char	*name;
	/* loop NULL: the caller only takes synchronous answers. */
	void		*(*open)(uv_loop_t *, const struct config *,
			    unsigned *flags);
	/* No operation is pending any more. */
	void		 (*close)(void *h);
	dir_backend_lookup domain;	/* DIR_OK: a local domain */
	dir_backend_lookup user;	/* key: user@domain */
	dir_backend_lookup alias;	/* key: address or "@domain" */
	/* key: user@domain; DIR_OK: the user's hostcntrl row, its host's
	 * address and SMTP port (NULL: no hosts, always DIR_NOTFOUND) */
	dir_backend_lookup host;
	void		 (*cancel)(void *op);
};

/*
 * The configuration: mailboxes.users (with their password hashes),
 * aliases, local_domains.
 * Test hook: with INDIMAIL_DIRECTORY_DEFER=1 in the environment (and a
 * loop), every lookup answers DIR_PENDING and completes on the next loop
 * iteration, and the backend is cached as if it were remote, so real
 * sessions exercise the asynchronous path and the cache.
 */
extern const struct directory_backend directory_backend_config;

/*
 * The database of config->directory (dirdb.h), SQLite or MariaDB
 * (directory_sql.c): every lookup on the thread pool, DIR_PENDING (but a
 * domain of local_domains, DIR_DONE); local domains are those and the
 * domains table's rows;
 * a disabled user is found with DIR_USER_DISABLED; errors are
 * DIR_TEMPFAIL. Without a loop: DIR_TEMPFAIL.
 */
extern const struct directory_backend directory_backend_sqlite;
extern const struct directory_backend directory_backend_mariadb;

void	dir_result_init(struct dir_result *);
void	dir_result_free(struct dir_result *);
void	dir_result_copy(struct dir_result *dst, const struct dir_result *src);

#endif
