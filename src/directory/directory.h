/*
 * directory: who is local and where mail for an address goes. src/directory
 * owns the front (this header: per-loop directories, the RCPT decision,
 * alias expansion, mailbox checks, a cache), the backend table
 * (directory_backend.h) and the backends (today directory_config.c, the
 * configuration's mailboxes.users / aliases; SQLite and MariaDB next). It
 * knows no protocol and no Lua. Every lookup may answer now (DIR_DONE) or
 * later (DIR_PENDING, then cb on the loop thread), like hook_run.
 */
#ifndef INDIMAIL_DIRECTORY_H
#define INDIMAIL_DIRECTORY_H

#include <stddef.h>
#include <uv.h>

#include "../lib/buf.h"
#include "../mail/config.h"

/* The mailbox name rule of directory_mailbox_name(), for error texts. */
#define DIRECTORY_NAME_RULE \
	"letters, digits and . _ + - = only, not starting with a dot"

enum { DIR_DONE, DIR_PENDING };

/* How a lookup ended. */
enum dir_status {
	DIR_OK,			/* found / done */
	DIR_NOTFOUND,		/* no such user, alias or domain */
	DIR_LOOP,		/* alias expansion: a loop or over 10 levels */
	DIR_TEMPFAIL,		/* the backend failed: try again later */
	DIR_REFUSED		/* authentication: the user may not log in */
};

enum dir_lookup {
	DIR_LOCAL_USER,		/* a mailbox here */
	DIR_ALIAS,		/* an alias, the postmaster or a catch-all */
	DIR_UNKNOWN,		/* users are listed and it is none of them */
	DIR_BAD_NAME,		/* would be a mailbox, but no folder can hold it */
	DIR_NOT_LOCAL,
	DIR_LOOKUP_FAILED,	/* the backend or the quota read failed */
	DIR_DISABLED,		/* a user whose mailbox is disabled */
	DIR_OVER_QUOTA		/* a user whose mailbox is full */
};

struct expansion {
	char	       **rcpt;		/* final recipients */
	char	       **orcpt;		/* the address the client gave for each */
	unsigned char	*local;		/* 1: local by the database only */
	size_t		 n;
	enum dir_status	 status;	/* DIR_OK, DIR_LOOP or DIR_TEMPFAIL */
};

/* What local delivery needs to know of a final address. */
struct dir_mailbox {
	int		 has;		/* a mailbox here; else 5.1.1 */
	int		 disabled;	/* the user's mailbox is disabled: 5.2.1 */
	size_t		 quota;		/* bytes; 0 = none */
	char		*owner;		/* joe+tag@: joe@, whose Maildir; NULL:
					   the address's own */
	enum dir_status	 status;	/* DIR_TEMPFAIL: could not tell */
};

/* What SMTP AUTH learned (directory_authenticate). */
struct dir_auth {
	enum dir_status	 status;
	int		 no_relay;	/* DIR_OK: may log in, may not relay */
};

struct directory;
struct dir_query;
typedef void (*dir_done_cb)(void *arg);

/*
 * The directory of a configuration on a loop: the first get opens it
 * (backend "config" today), later gets with the same loop and config share
 * it, the last put closes it. The config must stay valid until the last
 * put and until every query on it completed or was cancelled.
 */
struct directory *directory_get(uv_loop_t *, const struct config *);
void	directory_put(struct directory *);
/* Forgets every cached answer (an admin changed the backend's data). */
void	directory_flush(struct directory *);
/* The same for every directory of a loop (old and new configurations). */
void	directory_flush_loop(uv_loop_t *);

/*
 * Every lookup below: DIR_DONE with the result in *out (cb never called),
 * or DIR_PENDING: cb(arg) runs later on the loop thread with *out filled,
 * unless directory_cancel(*qp) is called first. Inputs are copied; out
 * must stay valid until cb or the cancel.
 */
/*
 * Is this RCPT acceptable for a local domain? A listed user with a quota
 * is DIR_OVER_QUOTA when its Maildir++ usage plus size (what MAIL SIZE=
 * declared, 0 when nothing) exceeds it (read on the thread pool); an
 * address with an extension (joe+tag@) that is neither a user nor an
 * alias is looked up without it.
 */
int	directory_lookup(struct directory *, const char *address, size_t size,
	    enum dir_lookup *out, dir_done_cb, void *arg, struct dir_query **qp);
/*
 * Is domain local (local_domains, or the database's domains table)? *out
 * DIR_OK, DIR_NOTFOUND or DIR_TEMPFAIL. Through the cache.
 */
int	directory_domain(struct directory *, const char *domain,
	    enum dir_status *out, dir_done_cb, void *arg, struct dir_query **qp);
/*
 * Expands aliases, catch-alls and postmaster into final recipients, at most
 * 10 levels deep, each final address once; out->status DIR_LOOP on a loop.
 * out->local[i] says whether the directory found final address i's domain
 * local, so the queue manager can route without asking it again.
 */
int	directory_expand(struct directory *, char **rcpts, size_t n,
	    struct expansion *out, dir_done_cb, void *arg, struct dir_query **qp);
/*
 * For final local addresses: a listed user, the postmaster address, or
 * anything when no users are listed has a mailbox; quota from the user;
 * joe+tag@ that is no user is joe@'s mailbox (owner). Release out with
 * directory_mailboxes_free.
 */
int	directory_mailboxes(struct directory *, const char *const *addresses,
	    size_t n, struct dir_mailbox *out, dir_done_cb, void *arg,
	    struct dir_query **qp);
void	directory_mailboxes_free(struct dir_mailbox *, size_t n);
/*
 * SMTP AUTH: the user (user@domain) is looked up (through the cache) and
 * the password checked against its stored crypt(3) hash on the libuv
 * thread pool, so a directory on a loop always answers DIR_PENDING for a
 * user with a hash. out->status: DIR_OK (right), DIR_NOTFOUND (no such
 * user, no hash, or wrong password), DIR_REFUSED (disabled, or no-smtp) or
 * DIR_TEMPFAIL; out->no_relay the user's flag. A result is never cached.
 * Without a loop: checked at once.
 */
int	directory_authenticate(struct directory *, const char *user,
	    const char *password, struct dir_auth *out, dir_done_cb, void *arg,
	    struct dir_query **qp);
/*
 * May user (logged in) send as sender? DIR_OK: the same address, the
 * user's own under another spelling (an alias domain of its domain), or
 * an alias whose targets include the user; DIR_NOTFOUND: none of these;
 * DIR_TEMPFAIL: the backend failed. Addresses compare without case, as
 * the lookups do. Through the cache (directory_owns.c).
 */
int	directory_owns(struct directory *, const char *user,
	    const char *sender, enum dir_status *out, dir_done_cb, void *arg,
	    struct dir_query **qp);
/* The challenge-response mechanisms of SMTP AUTH (a secret per user). */
enum dir_mech { DIR_MECH_CRAM_MD5, DIR_MECH_SCRAM_SHA256 };

struct dir_secret {
	enum dir_status	 status;	/* DIR_OK, DIR_NOTFOUND, DIR_REFUSED, DIR_TEMPFAIL */
	char		*secret;	/* NULL: none stored for the mechanism */
	int		 no_relay;	/* the user may log in, not relay */
};

/*
 * SMTP AUTH CRAM-MD5 / SCRAM-SHA-256: the user's stored secret for the
 * mechanism (lib/sasl.h), looked up through the cache. out->status as for
 * directory_authenticate but without a check: DIR_OK or DIR_REFUSED
 * (disabled, no-smtp: refuse even if the proof is right) with the secret,
 * NULL when the user's domain did not enable the mechanism; DIR_NOTFOUND;
 * DIR_TEMPFAIL. Free with dir_secret_free (wiped).
 */
int	directory_secret(struct directory *, const char *user, enum dir_mech,
	    struct dir_secret *out, dir_done_cb, void *arg,
	    struct dir_query **qp);
void	dir_secret_free(struct dir_secret *);
/*
 * One fact for a policy (Lua's indimail.directory, directory_entry.c),
 * through the cache, never a secret: a listed user (its address as
 * stored, DIR_ENTRY_* flags, quota, the host holding it or NULL); an
 * alias's targets; whether a domain is local (as directory_domain); the
 * host holding a user when that is not this host (config hostname): its
 * name (host), address and SMTP port. out->status DIR_OK, DIR_NOTFOUND or
 * DIR_TEMPFAIL. Release out with dir_entry_free.
 */
/*
 * A user's autoresponder (the vacation table, `indimail user vacation`):
 * present only while it is on; the dates are for the policy to check.
 */
struct dir_vacation {
	char		*subject;	/* NULL: "Auto: " and the original's */
	char		*message;	/* the reply's text, LF line ends */
	long long	 from, until;	/* Unix time; 0: no bound */
	long long	 interval;	/* seconds between replies to one sender */
};

struct dir_vacation *dir_vacation_copy(const struct dir_vacation *);
void	dir_vacation_free(struct dir_vacation *);	/* NULL is fine */

enum dir_entry_kind { DIR_ENTRY_USER, DIR_ENTRY_ALIAS, DIR_ENTRY_DOMAIN,
	DIR_ENTRY_HOST };

#define DIR_ENTRY_DISABLED	0x1
#define DIR_ENTRY_NO_SMTP	0x2
#define DIR_ENTRY_NO_RELAY	0x4

struct dir_entry {
	enum dir_status	 status;
	char		*address;	/* user: as stored; host: its address */
	char		*host;		/* user: hostcntrl's or NULL; host: name */
	int		 port;		/* host */
	unsigned	 flags;		/* user: DIR_ENTRY_* */
	size_t		 quota;		/* user: bytes, 0 = none */
	struct dir_vacation *vacation;	/* user: NULL when off */
	char	       **targets;	/* alias */
	size_t		 ntargets;
};

int	directory_entry(struct directory *, enum dir_entry_kind,
	    const char *key, struct dir_entry *out, dir_done_cb, void *arg,
	    struct dir_query **qp);
void	dir_entry_free(struct dir_entry *);

/* Stops a pending query: its cb will not run. NULL is fine. */
void	directory_cancel(struct dir_query *);

void	expansion_free(struct expansion *);

/*
 * The one rule for a deliverable mailbox name, shared by the RCPT check and
 * local delivery: the local part of user@domain becomes a folder name.
 */
int	directory_mailbox_name(const char *address);

/*
 * Consistency of a configuration at load (synchronous, config backend):
 * users and the postmaster have deliverable names, every alias target ends
 * in mailboxes or remote addresses, without loops. -1 with the reason in err.
 * Test hook: INDIMAIL_DIRECTORY_LOOPS=1 in the environment lets alias loops
 * pass (directory_expand.c); the test hook of the config backend is in
 * directory_backend.h (INDIMAIL_DIRECTORY_DEFER=1).
 */
int	directory_check(const struct config *, struct buf *err);

#endif
