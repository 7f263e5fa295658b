/*
 * directory_sql: the directory database (dirdb.h: SQLite or MariaDB) as a
 * directory backend. Every lookup (but that of a domain in local_domains)
 * runs on libuv's thread pool (uv_queue_work) with a connection taken from
 * the backend's pool (at most one per pool thread, directory.pool kept
 * idle), and answers DIR_PENDING; the answer is handed over on the loop.
 * A cancelled operation's callback never runs (its work may still finish).
 * A failure is DIR_TEMPFAIL and a log line, and the connection is dropped,
 * so the next lookup connects again (recovery); a pooled connection that
 * fails for a passing reason (the server restarted) is retried once on a
 * new one.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "dirdb.h"
#include "directory_backend.h"

#define SQ_POOL_MAX	64

struct sq_dir {
	uv_loop_t	*loop;
	const struct config *cfg;	/* the front keeps it valid */
	const char	*engine;
	pthread_mutex_t	 lock;		/* the pool */
	struct dirdb	*pool[SQ_POOL_MAX];
	int		 npool, maxpool;
	int		 pending;	/* operations on the loop's books */
	int		 closing;
};

enum sq_kind { SQ_USER, SQ_ALIAS, SQ_DOMAIN, SQ_HOST };

struct sq_op {
	uv_work_t	 req;
	struct sq_dir	*h;
	enum sq_kind	 kind;
	char		*key;
	struct dir_result r;
	struct buf	 err;		/* a failure, logged on the loop */
	int		 cancelled;
	dir_backend_cb	 cb;
	void		*arg;
};

/* ---- the pool (worker threads) ------------------------------------------- */

/* A pooled connection still current, or NULL; *fresh 0. */
static struct dirdb *
sq_conn_pooled(struct sq_dir *h)
{
	struct dirdb *db;

	pthread_mutex_lock(&h->lock);
	db = h->npool ? h->pool[--h->npool] : NULL;
	pthread_mutex_unlock(&h->lock);
	if (db && !dirdb_current(db)) {
		dirdb_close(db);
		db = NULL;
	}
	return db;
}

static void
sq_conn_give(struct sq_dir *h, struct dirdb *db)
{
	pthread_mutex_lock(&h->lock);
	if (h->npool < h->maxpool) {
		h->pool[h->npool++] = db;
		db = NULL;
	}
	pthread_mutex_unlock(&h->lock);
	dirdb_close(db);
}

/* ---- queries (worker threads) -------------------------------------------- */

/* joe@alias.dom finds joe of the real domain; spelled as stored; its
 * autoresponder when on (columns 7-11, NULL when off). */
static const char sql_user[] =
    "SELECT u.local || '@' || u.domain, u.password, u.quota, u.flags, "
    "u.scram, u.cram, h.host, v.message, v.subject, v.start_at, v.end_at, "
    "v.interval_s "
    "FROM domains d JOIN users u ON u.domain = coalesce(d.alias_of, d.name) "
    "LEFT JOIN hostcntrl h ON h.local = u.local AND h.domain = u.domain "
    "LEFT JOIN vacation v ON v.local = u.local AND v.domain = u.domain "
    "AND v.enabled = 1 "
    "WHERE d.name = ?2 AND u.local = ?1";
/* The host holding a user (user move), its address and SMTP port. */
static const char sql_host[] =
    "SELECT h.host, t.address, coalesce(p.port, 25) "
    "FROM domains d JOIN hostcntrl h ON h.domain = coalesce(d.alias_of, d.name) "
    "JOIN host_table t ON t.host = h.host "
    "LEFT JOIN smtp_port p ON p.host = h.host "
    "WHERE d.name = ?2 AND h.local = ?1";
static const char sql_alias[] =
    "SELECT target FROM aliases WHERE address = ?1 ORDER BY target";
/* A domain of its own or an alias domain: a row either way. */
static const char sql_domain[] =
    "SELECT 1 FROM domains WHERE name = ?1";

/* The vacation columns (7-11) of a user's row, NULL when it is off. */
static struct dir_vacation *
sq_vacation(struct dirdb_stmt *st)
{
	struct dir_vacation *v;

	if (dirdb_isnull(st, 7))
		return NULL;
	v = xcalloc(1, sizeof(*v));
	v->message = xstrdup(dirdb_text(st, 7));
	v->subject = dirdb_isnull(st, 8) ? NULL : xstrdup(dirdb_text(st, 8));
	v->from = dirdb_int(st, 9);
	v->until = dirdb_int(st, 10);
	v->interval = dirdb_int(st, 11);
	return v;
}

static void
sq_fill_user(struct sq_op *op, struct dirdb_stmt *st)
{
	unsigned flags = (unsigned)dirdb_int(st, 3);

	op->r.status = DIR_OK;
	op->r.address = xstrdup(dirdb_text(st, 0));
	op->r.secret = xstrdup(dirdb_text(st, 1));
	op->r.quota = (size_t)dirdb_int(st, 2);
	if (!dirdb_isnull(st, 4))
		op->r.scram = xstrdup(dirdb_text(st, 4));
	if (!dirdb_isnull(st, 5))
		op->r.cram = xstrdup(dirdb_text(st, 5));
	if (!dirdb_isnull(st, 6))
		op->r.host = xstrdup(dirdb_text(st, 6));
	op->r.vacation = sq_vacation(st);
	op->r.flags = DIR_USER_LISTED;
	if (flags & DIRDB_NO_SMTP)	/* AUTH refused, mail still comes */
		op->r.flags |= DIR_USER_NO_SMTP;
	if (flags & DIRDB_DISABLED)	/* no mail (5.2.1), no login */
		op->r.flags |= DIR_USER_DISABLED;
	if (flags & DIRDB_NO_RELAY)
		op->r.flags |= DIR_USER_NO_RELAY;
}

static void
sq_add_target(struct dir_result *r, const char *t)
{
	r->targets = xrealloc(r->targets, (r->ntargets + 2) * sizeof(char *));
	r->targets[r->ntargets++] = xstrdup(t);
	r->targets[r->ntargets] = NULL;
	r->status = DIR_OK;
}

/* One row of op's query. */
static void
sq_row(struct sq_op *op, struct dirdb_stmt *st)
{
	if (op->kind == SQ_ALIAS)
		sq_add_target(&op->r, dirdb_text(st, 0));
	else if (op->kind == SQ_USER)
		sq_fill_user(op, st);
	else if (op->kind == SQ_HOST) {
		op->r.status = DIR_OK;
		op->r.host = xstrdup(dirdb_text(st, 0));
		op->r.address = xstrdup(dirdb_text(st, 1));
		op->r.port = (int)dirdb_int(st, 2);
	} else
		op->r.status = DIR_OK;
}

/* Binds the key (user: local part ?1, domain ?2), steps every row. */
static int
sq_run(struct sq_op *op, struct dirdb *db)
{
	static const char *const sql[] = { sql_user, sql_alias, sql_domain,
	    sql_host };
	struct dirdb_stmt *st = dirdb_prepare_cached(db, sql[op->kind]);
	char *at = strrchr(op->key, '@');
	int rc;

	if (st == NULL)
		return -1;
	if ((op->kind == SQ_USER || op->kind == SQ_HOST) && at) {
		*at = '\0';
		dirdb_bind(st, "ss", op->key, at + 1);
		*at = '@';
	} else
		dirdb_bind(st, "ss", op->key, "");
	while ((rc = dirdb_step(st)) == DIRDB_ROW)
		sq_row(op, st);
	dirdb_release(st);
	return rc == DIRDB_DONE ? 0 : -1;
}

/* One try on db: 0, or -1 with the reason in op->err (db is closed). */
static int
sq_try(struct sq_op *op, struct dirdb *db)
{
	if (sq_run(op, db) == 0) {
		sq_conn_give(op->h, db);
		return 0;
	}
	buf_clear(&op->err);
	buf_printf(&op->err, "%s", dirdb_errmsg(db));
	dir_result_free(&op->r);
	dir_result_init(&op->r);
	dirdb_close(db);	/* the next one connects again */
	return -1;
}

static void
on_work(uv_work_t *req)
{
	struct sq_op *op = req->data;
	struct dirdb *db = sq_conn_pooled(op->h);

	dirdb_fold(op->key);
	if (db && sq_try(op, db) == 0)
		return;
	/* none pooled, or it failed: once more on a new connection */
	buf_clear(&op->err);
	if ((db = dirdb_open(&op->h->cfg->directory, DIRDB_LOOKUP,
	    &op->err)) != NULL && sq_try(op, db) == 0)
		return;
	op->r.status = DIR_TEMPFAIL;
}

/* ---- the loop ------------------------------------------------------------- */

static void
sq_free(struct sq_dir *h)
{
	for (int i = 0; i < h->npool; i++)
		dirdb_close(h->pool[i]);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static void
sq_op_free(struct sq_op *op)
{
	free(op->key);
	buf_free(&op->err);
	dir_result_free(&op->r);
	free(op);
}

/* The work is done (or was cancelled before it started). */
static void
on_work_done(uv_work_t *req, int status)
{
	struct sq_op *op = req->data;
	struct sq_dir *h = op->h;

	if (op->err.len)
		log_event(LOG_WARN, "directory_error", "backend=%s error=\"%s\"",
		    h->engine, buf_cstr(&op->err));
	if (!op->cancelled && status == 0)
		op->cb(op->arg, &op->r);
	sq_op_free(op);
	if (--h->pending == 0 && h->closing)
		sq_free(h);
}

static int
sq_start(struct sq_dir *h, enum sq_kind kind, const char *key,
    struct dir_result *r, dir_backend_cb cb, void *arg, void **opp)
{
	struct sq_op *op = xcalloc(1, sizeof(*op));

	dir_result_init(r);
	dir_result_init(&op->r);
	op->h = h;
	op->kind = kind;
	op->key = xstrdup(key);
	op->cb = cb;
	op->arg = arg;
	op->req.data = op;
	if (h->loop == NULL || uv_queue_work(h->loop, &op->req, on_work,
	    on_work_done) != 0) {
		r->status = DIR_TEMPFAIL;	/* no loop: no synchronous answers */
		sq_op_free(op);
		return DIR_DONE;
	}
	h->pending++;
	*opp = op;
	return DIR_PENDING;
}

static void *
sq_open(uv_loop_t *loop, const struct config *c, unsigned *flags)
{
	struct sq_dir *h = xcalloc(1, sizeof(*h));

	h->loop = loop;
	h->cfg = c;
	h->engine = c->directory.backend == DIRECTORY_MARIADB ? "mariadb" :
	    "sqlite";
	h->maxpool = c->directory.pool < SQ_POOL_MAX ? c->directory.pool :
	    SQ_POOL_MAX;
	pthread_mutex_init(&h->lock, NULL);
	*flags = 0;		/* answers change: the front caches them */
	return h;
}

static void
sq_close(void *hp)
{
	struct sq_dir *h = hp;

	h->closing = 1;
	if (h->pending == 0)
		sq_free(h);
}

static void
sq_cancel(void *opp)
{
	struct sq_op *op = opp;

	op->cancelled = 1;
	uv_cancel((uv_req_t *)&op->req);	/* fails once it runs: fine */
}

/*
 * Local domains are local_domains (answered at once) and the rows of the
 * domains table, alias domains included (asked on the pool; the front
 * caches the answer). The queue manager needs no database for it: the
 * SMTP side marks each recipient of a local domain in the queue envelope
 * (directory_expand's local[], queue_envelope.c's "route local").
 */
static int
sq_domain(void *hp, const char *key, struct dir_result *r, dir_backend_cb cb,
    void *arg, void **opp)
{
	struct sq_dir *h = hp;

	if (!config_is_local_domain(h->cfg, key))
		return sq_start(h, SQ_DOMAIN, key, r, cb, arg, opp);
	dir_result_init(r);
	r->status = DIR_OK;
	return DIR_DONE;
}

static int
sq_user(void *hp, const char *key, struct dir_result *r, dir_backend_cb cb,
    void *arg, void **opp)
{
	return sq_start(hp, SQ_USER, key, r, cb, arg, opp);
}

static int
sq_host(void *hp, const char *key, struct dir_result *r, dir_backend_cb cb,
    void *arg, void **opp)
{
	return sq_start(hp, SQ_HOST, key, r, cb, arg, opp);
}

static int
sq_alias(void *hp, const char *key, struct dir_result *r, dir_backend_cb cb,
    void *arg, void **opp)
{
	return sq_start(hp, SQ_ALIAS, key, r, cb, arg, opp);
}

const struct directory_backend directory_backend_sqlite = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.domain = sq_domain,
	.user = sq_user,
	.alias = sq_alias,
	.host = sq_host,
	.cancel = sq_cancel,
};

const struct directory_backend directory_backend_mariadb = {
	.name = "mariadb",
	.open = sq_open,
	.close = sq_close,
	.domain = sq_domain,
	.user = sq_user,
	.alias = sq_alias,
	.host = sq_host,
	.cancel = sq_cancel,
};
