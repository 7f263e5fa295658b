/*
 * directory_sqlite: the SQLite database (dirdb_sqlite.h) as a directory
 * backend. Every lookup runs on libuv's thread pool (uv_queue_work) with
 * a connection taken from the backend's pool (at most one per pool
 * thread), and answers DIR_PENDING; the answer is handed over on the loop.
 * A cancelled operation's callback never runs (its work may still finish).
 * Any SQLite error is DIR_TEMPFAIL and a log line; the connection is then
 * dropped, so the next lookup opens the file again (recovery).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "dirdb_sqlite.h"
#include "directory_backend.h"

#define SQ_POOL_MAX	8

/* A connection and the file it opened (a replaced file is reopened). */
struct sq_conn {
	sqlite3		*db;
	dev_t		 dev;
	ino_t		 ino;
};

struct sq_dir {
	uv_loop_t	*loop;
	const struct config *cfg;	/* the front keeps it valid */
	char		*path;
	pthread_mutex_t	 lock;		/* the pool */
	struct sq_conn	 pool[SQ_POOL_MAX];
	int		 npool;
	int		 pending;	/* operations on the loop's books */
	int		 closing;
};

enum sq_kind { SQ_USER, SQ_ALIAS };

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

/* The file is still there, readable, and the one the connection opened. */
static int
sq_conn_current(const struct sq_dir *h, const struct sq_conn *c)
{
	struct stat st;

	return stat(h->path, &st) == 0 && access(h->path, R_OK) == 0 &&
	    st.st_dev == c->dev && st.st_ino == c->ino;
}

static int
sq_conn_take(struct sq_dir *h, struct sq_conn *c, struct buf *err)
{
	struct stat st;

	pthread_mutex_lock(&h->lock);
	c->db = h->npool ? h->pool[--h->npool].db : NULL;
	if (c->db)
		*c = h->pool[h->npool];
	pthread_mutex_unlock(&h->lock);
	if (c->db && sq_conn_current(h, c))
		return 0;
	sqlite3_close(c->db);
	c->db = NULL;
	if (access(h->path, R_OK) < 0 || stat(h->path, &st) < 0) {
		buf_printf(err, "%s: %s", h->path, strerror(errno));
		return -1;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	return (c->db = dirdb_open(h->path, DIRDB_LOOKUP, err)) ? 0 : -1;
}

static void
sq_conn_give(struct sq_dir *h, struct sq_conn *c)
{
	pthread_mutex_lock(&h->lock);
	if (h->npool < SQ_POOL_MAX) {
		h->pool[h->npool++] = *c;
		c->db = NULL;
	}
	pthread_mutex_unlock(&h->lock);
	sqlite3_close(c->db);
}

/* ---- queries (worker threads) -------------------------------------------- */

/* joe@alias.dom finds joe of the real domain; spelled as stored. */
static const char sql_user[] =
    "SELECT u.local || '@' || u.domain, u.password, u.quota, u.flags "
    "FROM domains d JOIN users u ON u.domain = coalesce(d.alias_of, d.name) "
    "WHERE d.name = ?2 AND u.local = ?1";
static const char sql_alias[] =
    "SELECT target FROM aliases WHERE address = ?1 ORDER BY rowid";

static void
sq_fill_user(struct sq_op *op, sqlite3_stmt *st)
{
	unsigned flags = (unsigned)sqlite3_column_int(st, 3);

	if (flags & DIRDB_DISABLED)	/* no mail: as if unknown */
		return;
	op->r.status = DIR_OK;
	op->r.address = xstrdup(dirdb_text(st, 0));
	op->r.secret = xstrdup(dirdb_text(st, 1));
	op->r.quota = (size_t)sqlite3_column_int64(st, 2);
	op->r.flags = DIR_USER_LISTED;
	if (flags & DIRDB_NO_SMTP)	/* AUTH refused, mail still comes */
		op->r.flags |= DIR_USER_NO_SMTP;
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

/* Binds the key (user: local part ?1, domain ?2), steps every row. */
static int
sq_run(struct sq_op *op, sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = dirdb_prepare(db, sql, &op->err);
	const char *at = strrchr(op->key, '@');
	int rc;

	if (st == NULL)
		return -1;
	if (op->kind == SQ_USER) {
		sqlite3_bind_text(st, 1, op->key, at ? (int)(at - op->key) :
		    -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, at ? at + 1 : "", -1, SQLITE_STATIC);
	} else
		sqlite3_bind_text(st, 1, op->key, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (op->kind == SQ_ALIAS)
			sq_add_target(&op->r, dirdb_text(st, 0));
		else
			sq_fill_user(op, st);
	if (rc != SQLITE_DONE)
		buf_printf(&op->err, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void
on_work(uv_work_t *req)
{
	struct sq_op *op = req->data;
	static const char *const sql[] = { sql_user, sql_alias };
	struct sq_conn c;

	if (sq_conn_take(op->h, &c, &op->err) < 0 ||
	    sq_run(op, c.db, sql[op->kind]) < 0) {
		dir_result_free(&op->r);
		op->r.status = DIR_TEMPFAIL;
		sqlite3_close(c.db);	/* the next one reopens */
		return;
	}
	sq_conn_give(op->h, &c);
}

/* ---- the loop ------------------------------------------------------------- */

static void
sq_free(struct sq_dir *h)
{
	for (int i = 0; i < h->npool; i++)
		sqlite3_close(h->pool[i].db);
	pthread_mutex_destroy(&h->lock);
	free(h->path);
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
		log_event(LOG_WARN, "directory_error", "backend=sqlite path=%s "
		    "error=\"%s\"", h->path, buf_cstr(&op->err));
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
	h->path = xstrdup(c->directory.path ? c->directory.path : "");
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
 * Local domains are local_domains, as for the queue manager, which routes
 * by them (qmgr_route.c): a domain only in the database would be accepted
 * here and then sent away. So it is not local until it is listed there.
 */
static int
sq_domain(void *hp, const char *key, struct dir_result *r, dir_backend_cb cb,
    void *arg, void **opp)
{
	struct sq_dir *h = hp;

	(void)cb, (void)arg, (void)opp;
	dir_result_init(r);
	r->status = config_is_local_domain(h->cfg, key) ? DIR_OK :
	    DIR_NOTFOUND;
	return DIR_DONE;
}

static int
sq_user(void *hp, const char *key, struct dir_result *r, dir_backend_cb cb,
    void *arg, void **opp)
{
	return sq_start(hp, SQ_USER, key, r, cb, arg, opp);
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
	.cancel = sq_cancel,
};
