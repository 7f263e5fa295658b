/*
 * directory_int: what the files of the directory front share (directory.c
 * the registry, the query engine, the RCPT decision and mailbox checks;
 * directory_expand.c alias expansion and the config check;
 * directory_cache.c the cache; directory_auth.c the password check;
 * directory_quota.c the RCPT quota check; directory_owns.c whose sender an
 * address is). Not for use outside src/directory.
 *
 * A query is a small state machine: its step function reads the answer of
 * the previous lookup (q->res), then starts the next one or ends. A lookup
 * that the backend answers later parks the query until on_backend resumes it.
 */
#ifndef INDIMAIL_DIRECTORY_INT_H
#define INDIMAIL_DIRECTORY_INT_H

#include <stdint.h>

#include "directory_backend.h"

enum dir_kind { DK_DOMAIN, DK_USER, DK_ALIAS, DK_HOST };

struct dir_cache;
struct dir_auth_work;
struct dir_quota_work;

struct directory {
	struct directory *next;		/* the registry */
	uv_loop_t	*loop;		/* NULL: synchronous answers only */
	const struct config *cfg;
	const struct directory_backend *be;
	void		*h;		/* the backend's handle */
	unsigned	 flags;		/* DIR_BACKEND_* */
	int		 refs;		/* gets and queries */
	int		 registered;
	struct dir_cache *cache;	/* NULL for in-memory backends */
};

/* What a step returns. */
enum { Q_AGAIN, Q_WAIT, Q_END };

/* One frame of the expansion's depth-first walk. */
struct xframe {
	char		*addr;
	size_t		 orcpt;		/* index into the query's rcpts */
	int		 depth, caught;
	int		 state;
	char	       **targets;
	size_t		 ntargets, next;
	int		 child_caught;	/* targets of a catch-all */
	int		 exact_has;	/* the address itself has a mailbox */
};

struct dir_query {
	struct directory *d;
	dir_done_cb	 cb;
	void		*arg;
	void		*op;		/* backend operation in flight */
	enum dir_kind	 kind;		/* of the lookup in flight */
	char		*key;
	struct dir_result res;		/* the previous lookup's answer */
	int		 state;
	int		(*step)(struct dir_query *);
	/* per kind of query */
	char	       **addrs;		/* the caller's, copied if the query waits */
	int		 addrs_owned;
	size_t		 naddrs, i;
	void		*out;
	struct xframe	*st;		/* expansion stack */
	size_t		 nst, capst;
	int		 first_depth, first_caught;
	struct dir_auth_work *work;	/* authentication: the password check */
	struct dir_quota_work *quota;	/* RCPT: the maildirsize read */
	size_t		 size;		/* RCPT: the size MAIL declared */
	char		*owner;		/* directory_owns: the user as stored */
};

struct directory *dir_new(uv_loop_t *, const struct config *);
void	dir_unref(struct directory *);
struct dir_query *dir_query_new(struct directory *, int (*step)(struct
	    dir_query *), void *out, dir_done_cb, void *arg);
/* Runs the query; DIR_DONE (freed) or DIR_PENDING (*qp set). */
int	dir_query_start(struct dir_query *, struct dir_query **qp);
/* Q_AGAIN with q->res filled, or Q_WAIT (on_backend resumes the query). */
int	dir_query_lookup(struct dir_query *, enum dir_kind, const char *key);
void	dir_query_free(struct dir_query *);
/* A pending query is over: frees it, then tells its caller (cb). */
void	dir_query_done(struct dir_query *);
/* dir_query_lookup of the catch-all alias "@dom". */
#define DIR_DOMAIN_KEY	264
int	dir_query_catchall(struct dir_query *, const char *dom);
/* The query reads the caller's a[0..n) (copied only if it has to wait). */
void	dir_query_addrs(struct dir_query *, const char *const *a, size_t n);

/* directory_auth.c: a freed query lets go of its password check. */
void	dir_auth_release(struct dir_query *);

/*
 * directory_quota.c: a listed user's usage against its quota, on the
 * pool; Q_WAIT (then q->out and the caller's cb), or Q_END with q->out
 * set. A freed query lets go of the check.
 */
int	dir_quota_check(struct dir_query *, const char *owner, size_t quota);
void	dir_quota_release(struct dir_query *);

/*
 * Address extensions (directory.extension_delimiter): addr without its
 * extension (joe+tag@dom: joe@dom) into b, 1; 0 if it has none. And the
 * user's own address with addr's extension (joe@dom, Joe+tag@alias:
 * joe+tag@dom) into b.
 */
int	dir_base_address(const struct directory *, const char *addr,
	    struct buf *b);
void	dir_extended_address(const struct directory *, const char *user,
	    const char *addr, struct buf *b);

/* mailboxes.postmaster itself; postmaster@anything or bare "Postmaster". */
int	dir_is_postmaster_address(const struct directory *, const char *);
int	dir_is_postmaster(const char *address);

/* With c->directory's lifetimes. */
struct dir_cache *dir_cache_new(const struct config *c);
void	dir_cache_free(struct dir_cache *);
void	dir_cache_flush(struct dir_cache *);
int	dir_cache_get(struct dir_cache *, uint64_t now, enum dir_kind,
	    const char *key, struct dir_result *);
void	dir_cache_put(struct dir_cache *, uint64_t now, enum dir_kind,
	    const char *key, const struct dir_result *);

#endif
