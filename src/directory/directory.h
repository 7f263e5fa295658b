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
	DIR_LOOKUP_FAILED	/* the backend failed (never the config one) */
};

struct expansion {
	char	       **rcpt;		/* final recipients */
	char	       **orcpt;		/* the address the client gave for each */
	size_t		 n;
	enum dir_status	 status;	/* DIR_OK, DIR_LOOP or DIR_TEMPFAIL */
};

/* What local delivery needs to know of a final address. */
struct dir_mailbox {
	int		 has;		/* a mailbox here; else 5.1.1 */
	size_t		 quota;		/* bytes; 0 = none */
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

/*
 * Every lookup below: DIR_DONE with the result in *out (cb never called),
 * or DIR_PENDING: cb(arg) runs later on the loop thread with *out filled,
 * unless directory_cancel(*qp) is called first. Inputs are copied; out
 * must stay valid until cb or the cancel.
 */
/* Is this RCPT acceptable for a local domain? */
int	directory_lookup(struct directory *, const char *address,
	    enum dir_lookup *out, dir_done_cb, void *arg, struct dir_query **qp);
/*
 * Expands aliases, catch-alls and postmaster into final recipients, at most
 * 10 levels deep, each final address once; out->status DIR_LOOP on a loop.
 */
int	directory_expand(struct directory *, char **rcpts, size_t n,
	    struct expansion *out, dir_done_cb, void *arg, struct dir_query **qp);
/*
 * For final local addresses: a listed user, the postmaster address, or
 * anything when no users are listed has a mailbox; quota from the user.
 */
int	directory_mailboxes(struct directory *, const char *const *addresses,
	    size_t n, struct dir_mailbox *out, dir_done_cb, void *arg,
	    struct dir_query **qp);
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
