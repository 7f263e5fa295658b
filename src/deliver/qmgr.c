/*
 * qmgr: the queue manager. State per message lives in memory (rebuilt at
 * start from the queue and each message's state journal) and on disk in
 * the journal the queue keeps for it (src/queue/queue_journal.c): final
 * outcomes (delivered, bounce queued, bounce dropped), held / released,
 * and the retry schedule (not fsynced). Only the decisions are made here.
 *
 * A recipient's outcome is appended (and fsynced) only after the delivery
 * or the bounce is durable elsewhere, so a crash can repeat a delivery but
 * never lose one (at-least-once). When every recipient is final the message
 * and its journal are removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../daemon/master.h"
#include "../lib/watchdog.h"
#include "../lib/xalloc.h"
#include "../directory/directory.h"
#include "../lua/lua_hook.h"
#include "../mail/header.h"
#include "../net/dns.h"
#include "../queue/queue.h"
#include "../mail/address.h"
#include "bounce.h"
#include "local.h"
#include "qmgr.h"
#include "remote.h"

enum rstate { RS_PENDING, RS_BUSY, RS_DONE };

#define NBUCKETS 65536

struct qmsg {
	struct qmsg	*next, *prev, *hnext;
	struct queue_item item;		/* envelope and where it lies */
	unsigned char	*st;		/* enum rstate per recipient */
	struct buf	*why;		/* last temporary failure per recipient */
	char	       **mta;		/* host that gave it, or NULL */
	struct qroute	*route;		/* per recipient, from the route hook */
	int		 attempts;
	uint64_t	 next_try;	/* uv_now() milliseconds */
	int		 busy;		/* jobs and journal writes in flight */
	int		 hold;
	int		 retired;	/* moved to done/: only its removal is left */
	uint64_t	 removed_at;	/* tombstone: removed at this uv_now() */
	long long	 retry_at;	/* from the journal: Unix time of next try */
};

/* Where one recipient goes. ROUTE_DEFAULT: local domains locally, routes
 * table, else MX — decided at scheduling time from the current config. */
struct qroute {
	int		 decided;	/* route hook ran (or there is none) */
	int		 running;	/* route hook in flight */
	enum route_kind	 kind;
	struct route_conf relay;	/* kind == ROUTE_RELAY: owned strings */
};

struct dcount {
	struct dcount	*next;
	char		*key;
	int		 n;
};

static struct {
	uv_loop_t	*loop;
	struct runtime	*rt;
	struct config	*cfg;
	struct directory *dir;		/* of cfg */
	struct queue_set qs;
	struct dns	*dns;
	struct remote_ctx *remote;
	struct qmsg	*msgs;
	struct qmsg	*tombstones;	/* removed, still in the id table */
	struct qmsg	*bucket[NBUCKETS];
	size_t		 nmsgs;
	int		 running_local, running_remote;
	int		 io_pending;	/* pool jobs: loads, flushes, removals, bounces */
	int		 lock_fd;	/* <queue.path>/qmgr.lock once held; else -1 */
	int		 pending_lock;	/* the same file while we wait for it */
	struct dcount	*dests;
	uv_timer_t	 tick;
	uv_poll_t	 notify;
	int		 notify_fd;
	uv_signal_t	 sighup, sigterm, sigint;
	int		 draining;
	int		 scheduled;
	uv_idle_t	 soon;
} Q;

static void schedule_soon(void);
static void maybe_done(struct qmsg *);

/* ---- the message table --------------------------------------------------- */

static unsigned
bucket_of(const char *id)
{
	unsigned h = 2166136261u;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % NBUCKETS;
}

static struct qmsg *
find(const char *id)
{
	for (struct qmsg *m = Q.bucket[bucket_of(id)]; m; m = m->hnext)
		if (strcmp(m->item.env.id, id) == 0)
			return m;
	return NULL;
}

static void
table_add(struct qmsg *m)
{
	unsigned b = bucket_of(m->item.env.id);

	m->hnext = Q.bucket[b];
	Q.bucket[b] = m;
	m->next = Q.msgs;
	if (Q.msgs)
		Q.msgs->prev = m;
	Q.msgs = m;
	Q.nmsgs++;
}

static void
unhash(struct qmsg *m)
{
	struct qmsg **pp = &Q.bucket[bucket_of(m->item.env.id)];

	while (*pp && *pp != m)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = m->hnext;
}

/* Off the list of live messages; still found by id (see tombstone). */
static void
table_remove(struct qmsg *m)
{
	if (m->prev)
		m->prev->next = m->next;
	else
		Q.msgs = m->next;
	if (m->next)
		m->next->prev = m->prev;
	Q.nmsgs--;
}

static void
qmsg_free(struct qmsg *m)
{
	for (size_t i = 0; i < m->item.env.nrcpts; i++) {
		buf_free(&m->why[i]);
		free(m->mta[i]);
		free(m->route[i].relay.host);
		free(m->route[i].relay.auth_user);
		free(m->route[i].relay.auth_password);
	}
	free(m->route);
	free(m->why);
	free(m->mta);
	free(m->st);
	queue_item_free(&m->item);
	free(m);
}

/*
 * A removed message stays findable by id for two minutes, so that a rescan
 * that read it just before its removal, or a late datagram, cannot bring it
 * back and deliver it again.
 */
static void
tombstone(struct qmsg *m)
{
	table_remove(m);
	m->removed_at = uv_now(Q.loop);
	m->next = Q.tombstones;
	Q.tombstones = m;
}

static void
sweep_tombstones(void)
{
	uint64_t now = uv_now(Q.loop);

	for (struct qmsg **pp = &Q.tombstones; *pp;) {
		struct qmsg *m = *pp;
		if (now - m->removed_at < 120 * 1000) {
			pp = &m->next;
			continue;
		}
		*pp = m->next;
		unhash(m);
		qmsg_free(m);
	}
}

static void
log_msg(struct logline *l, enum log_level lvl, const char *event,
    const struct qmsg *m)
{
	log_begin(l, lvl, event);
	log_kv(l, "qid", m->item.env.id);
}

/* ---- loading messages (thread pool) --------------------------------------- */

struct load_item {
	int		 queue;
	char		 id[QUEUE_ID_LEN + 1];
	struct qmsg	*m;		/* result */
};

struct load_job {
	uv_work_t	 w;
	int		 scan_all;
	struct load_item *items;
	size_t		 n;
};

/* A message read from the queue, with its journal applied. */
static struct qmsg *
qmsg_new(struct queue_item *qi)
{
	struct qmsg *m = xcalloc(1, sizeof(*m));
	size_t n = qi->env.nrcpts ? qi->env.nrcpts : 1;
	struct queue_journal jr;

	m->item = *qi;			/* the item moves */
	memset(qi, 0, sizeof(*qi));
	m->st = xcalloc(n, 1);
	m->why = xcalloc(n, sizeof(struct buf));
	m->mta = xcalloc(n, sizeof(char *));
	m->route = xcalloc(n, sizeof(struct qroute));
	memset(&jr, 0, sizeof(jr));
	jr.final = xcalloc(n, 1);
	Q.qs.backend->journal_read(&m->item, &jr);
	for (size_t i = 0; i < m->item.env.nrcpts; i++)
		m->st[i] = jr.final[i] ? RS_DONE : RS_PENDING;
	m->hold = jr.hold;
	m->attempts = jr.attempts;
	m->retry_at = jr.retry_at;
	free(jr.final);
	return m;
}

static struct qmsg *
load_one(int queue, const char *id)
{
	struct queue_item qi;

	if (Q.qs.backend->read(&Q.qs, queue, id, &qi) < 0)
		return NULL;
	return qmsg_new(&qi);
}

static int
scan_one(void *arg, struct queue_item *qi)
{
	struct load_job *j = arg;

	j->items = xrealloc(j->items, (j->n + 1) * sizeof(*j->items));
	memset(&j->items[j->n], 0, sizeof(*j->items));
	j->items[j->n].queue = qi->queue;
	snprintf(j->items[j->n].id, sizeof(j->items[j->n].id), "%s",
	    qi->env.id);
	j->items[j->n].m = qmsg_new(qi);
	j->n++;
	return 0;
}

static void
do_load(uv_work_t *w)
{
	struct load_job *j = w->data;

	if (j->scan_all) {
		static int started;
		if (!started++)	/* retired before a crash: finish the removal */
			queue_clean_done(&Q.qs);
		queue_scan(&Q.qs, scan_one, j);
		return;
	}
	for (size_t i = 0; i < j->n; i++)
		j->items[i].m = load_one(j->items[i].queue, j->items[i].id);
}

static void
after_load(uv_work_t *w, int status)
{
	struct load_job *j = w->data;
	int added = 0;

	(void)status;
	Q.io_pending--;
	for (size_t i = 0; i < j->n; i++) {
		struct qmsg *m = j->items[i].m;
		if (m == NULL) {
			if (!j->scan_all)	/* a scan logs its own failures */
				log_event(LOG_WARN, "queue_file_unreadable",
				    "queue=%d qid=%s", j->items[i].queue,
				    j->items[i].id);
			continue;
		}
		if (find(m->item.env.id)) {
			qmsg_free(m);
			continue;
		}
		m->next_try = uv_now(Q.loop);
		if (m->retry_at > (long long)time(NULL))	/* keep the schedule */
			m->next_try += (uint64_t)(m->retry_at - time(NULL)) * 1000;
		table_add(m);
		maybe_done(m);	/* every outcome journaled, removal lost */
		added++;
	}
	if (j->scan_all)
		log_event(LOG_INFO, "queue_scanned", "messages=%zu", Q.nmsgs);
	free(j->items);
	free(j);
	if (added)
		schedule_soon();
}

static void
load(int scan_all, struct load_item *items, size_t n)
{
	struct load_job *j = xcalloc(1, sizeof(*j));

	j->w.data = j;
	j->scan_all = scan_all;
	j->items = items;
	j->n = n;
	Q.io_pending++;
	uv_queue_work(Q.loop, &j->w, do_load, after_load);
}

/* ---- journal writes and removal (thread pool) ------------------------------ */

struct io_job {
	uv_work_t	 w;
	struct qmsg	*m;
	int		 remove;	/* 1: remove the message; 0: flush the journal */
	int		 ok;
};

/*
 * Journal records are appended the moment an outcome is known (on the
 * loop thread, and by local delivery on a pool thread the moment a Maildir
 * file is durable): once the append has returned, they survive kill -9 of
 * this process, so a delivery is repeated only if we die in the
 * microseconds between learning of it and the append. The flush for power
 * loss follows on the pool.
 */
static void
do_io(uv_work_t *w)
{
	struct io_job *j = w->data;
	const struct queue_backend *qb = Q.qs.backend;

	if (j->remove)
		j->ok = qb->remove(&j->m->item) == 0;
	else
		j->ok = qb->journal_flush(&j->m->item) == 0;
}

static void
after_io(uv_work_t *w, int status)
{
	struct io_job *j = w->data;
	struct qmsg *m = j->m;
	int removing = j->remove;

	(void)status;
	if (!j->ok) {
		struct logline l;
		log_msg(&l, LOG_ERROR, removing ? "remove_failed" : "journal_failed", m);
		log_kv(&l, "path", removing ? m->item.path : m->item.journal);
		log_end(&l);
	}
	free(j);
	m->busy--;
	Q.io_pending--;
	if (removing) {
		struct logline l;
		log_msg(&l, LOG_INFO, "removed", m);
		log_end(&l);
		tombstone(m);
		return;
	}
	maybe_done(m);
}

/* Flushes the journal (remove = 0) or removes the message, on the pool. */
static void
io(struct qmsg *m, int remove)
{
	struct io_job *j = xcalloc(1, sizeof(*j));

	j->w.data = j;
	j->m = m;
	j->remove = remove;
	m->busy++;
	Q.io_pending++;
	uv_queue_work(Q.loop, &j->w, do_io, after_io);
}

static int
all_done(const struct qmsg *m)
{
	for (size_t i = 0; i < m->item.env.nrcpts; i++)
		if (m->st[i] != RS_DONE)
			return 0;
	return 1;
}

/* Removes the message once every recipient is final and nothing runs. */
static void
maybe_done(struct qmsg *m)
{
	if (m->busy == 0 && all_done(m))
		io(m, 1);
}

/* Writes text to the journal now; flushed later unless `flush` is 0. */
static void
journal_text(struct qmsg *m, struct buf *text, int flush)
{
	if (Q.qs.backend->journal_append(&m->item, text) < 0) {
		struct logline l;
		log_msg(&l, LOG_ERROR, "journal_failed", m);
		log_kv(&l, "path", m->item.journal);
		log_kv(&l, "error", strerror(errno));
		log_end(&l);
	}
	buf_free(text);
	if (flush)
		io(m, 0);
}

/*
 * Every recipient is final: the message leaves mess/ at once, by a rename
 * to done/ on the loop thread (one metadata operation: no journal file to
 * create, flush and remove for the common message delivered in one go),
 * and is removed from there on the pool. A rename that power loss undoes
 * means one more delivery (at-least-once); kill -9 cannot undo it.
 */
static int
retire(struct qmsg *m)
{
	char *done;

	if (Q.qs.backend->retire(&Q.qs, &m->item, &done) < 0) {
		struct logline l;
		log_msg(&l, LOG_ERROR, "retire_failed", m);
		log_kv(&l, "path", m->item.path);
		log_kv(&l, "error", strerror(errno));
		log_end(&l);
		return -1;
	}
	free(m->item.path);
	m->item.path = done;
	m->retired = 1;
	return 0;
}

/*
 * Journals final outcomes (d, b, x) of recipients idx[]. When they
 * complete the message it is retired instead; otherwise the lines are
 * written at once and flushed to the disk afterwards.
 */
static void
journal(struct qmsg *m, char kind, const size_t *idx, size_t n)
{
	struct buf b = BUF_INIT;

	if (n == 0)
		return;
	if (all_done(m) && m->busy == 0 && (m->retired || retire(m) == 0))
		return;		/* out of mess/: nothing can deliver it again */
	for (size_t i = 0; i < n; i++)
		queue_journal_final(&b, kind, idx[i]);
	journal_text(m, &b, 1);
}

/* ---- bounces --------------------------------------------------------------- */

struct bounce_job {
	uv_work_t	 w;
	struct qmsg	*m;
	size_t		*idx;		/* failed recipients */
	char	       **text;
	size_t		 n;
	int		 level;		/* of the bounce we create */
	char		 id[QUEUE_ID_LEN + 1];
	struct buf	 dsn, empty;
	char		*rcpt;
	struct runtime	*rt;		/* keeps the expansion's config */
	struct expansion x;		/* rcpt through the aliases */
};

static void
do_bounce_build(uv_work_t *w)
{
	struct bounce_job *j = w->data;
	struct qmsg *m = j->m;
	struct bounce_rcpt *br = xcalloc(j->n, sizeof(*br));
	char *hdrs = NULL;
	size_t hlen = 0;
	int fd = open(m->item.path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {	/* the original header section, at most 64 KiB */
		char *buf = xmalloc(65537);
		ssize_t n = pread(fd, buf, 65536, (off_t)m->item.body_offset);
		if (n > 0) {
			buf[n] = '\0';
			header_end(buf, (size_t)n, 0, &hlen);
			hdrs = buf;
		} else
			free(buf);
		close(fd);
	}
	for (size_t i = 0; i < j->n; i++) {
		br[i].rcpt = m->item.env.rcpts[j->idx[i]];
		br[i].orcpt = envelope_orcpt(&m->item.env, j->idx[i]);
		br[i].text = j->text[i];
		br[i].remote_mta = m->mta[j->idx[i]];
	}
	bounce_build(Q.cfg->hostname, &m->item.env, j->level - 1, br, j->n,
	    hdrs ? hdrs : "", hlen, &j->dsn);
	free(hdrs);
	free(br);
}

static void
bounce_job_free(struct bounce_job *j)
{
	for (size_t i = 0; i < j->n; i++)
		free(j->text[i]);
	free(j->text);
	free(j->idx);
	buf_free(&j->dsn);
	free(j->rcpt);
	free(j);
}

static void
on_bounce_queued(void *arg, int ok, const char *error, double secs, int queue)
{
	struct bounce_job *j = arg;
	struct qmsg *m = j->m;
	struct logline l;
	struct load_item *item;

	(void)secs;
	m->busy--;
	Q.io_pending--;
	log_msg(&l, ok ? LOG_INFO : LOG_ERROR, ok ? "bounce_queued" :
	    "bounce_failed", m);
	log_kv(&l, "bounce_qid", j->id);
	log_kv(&l, "to", j->rcpt);
	log_kvi(&l, "level", j->level);
	if (!ok)
		log_kv(&l, "error", error);
	log_end(&l);
	if (!ok) {	/* try the whole thing again later */
		for (size_t i = 0; i < j->n; i++)
			m->st[j->idx[i]] = RS_PENDING;
		m->next_try = uv_now(Q.loop) + 60000;
		bounce_job_free(j);
		return;
	}
	journal(m, 'b', j->idx, j->n);
	item = xcalloc(1, sizeof(*item));
	item->queue = queue;
	snprintf(item->id, sizeof(item->id), "%s", j->id);
	load(0, item, 1);
	bounce_job_free(j);
	maybe_done(m);
}

/*
 * Queues the DSN built on the pool, once its recipient is expanded (j->x):
 * from the null sender, to the sender (through its aliases) or the
 * postmaster, marked with its bounce level.
 */
static void
bounce_queue(struct bounce_job *j)
{
	struct envelope e;
	char *key = "INDIMAIL_BOUNCE", val[4];

	snprintf(val, sizeof(val), "%d", j->level);
	memset(&e, 0, sizeof(e));
	queue_new_id(j->id);
	snprintf(e.id, sizeof(e.id), "%s", j->id);
	e.received = time(NULL);
	e.ip = "127.0.0.1";
	e.helo = Q.cfg->hostname;
	e.listener = "bounce";
	e.sender = "";
	/* A sender that is an alias gets its bounce through the alias. */
	if (j->x.status == DIR_OK) {
		e.rcpts = j->x.rcpt;
		e.orcpts = j->x.orcpt;
		e.nrcpts = j->x.n;
	} else {
		e.rcpts = &j->rcpt;	/* a loop (refused at config load) */
		e.nrcpts = 1;
	}
	e.vars.key = &key;
	e.vars.val = (char *[]){ val };
	e.vars.n = 1;
	e.bounce_level = j->level;
	queue_write(Q.loop, &Q.qs, &e, &j->empty, &j->dsn, on_bounce_queued, j);
	expansion_free(&j->x);	/* queue_write keeps the envelope it formatted */
	runtime_unref(j->rt);
	j->rt = NULL;
}

static void
on_bounce_expanded(void *arg)
{
	bounce_queue(arg);
}

static void
after_bounce_build(uv_work_t *w, int status)
{
	struct bounce_job *j = w->data;

	(void)status;
	j->rt = Q.rt;		/* Q.dir's config, until the expansion ends */
	runtime_ref(j->rt);
	if (directory_expand(Q.dir, &j->rcpt, 1, &j->x, on_bounce_expanded, j,
	    NULL) == DIR_DONE)
		bounce_queue(j);
}

/*
 * Permanent failures of recipients idx[]: a bounce to the sender, a double
 * bounce to the postmaster if the message was itself a bounce, or a log
 * line only if it was a double bounce.
 */
static void
bounce(struct qmsg *m, size_t *idx, char **text, size_t n)
{
	struct bounce_job *j;
	int level = m->item.env.bounce_level >= 2 ? 3 :
	    m->item.env.sender[0] == '\0' ? 2 : 1;

	for (size_t i = 0; i < n; i++) {
		struct logline l;
		log_msg(&l, LOG_INFO, "failed", m);
		log_kv(&l, "to", m->item.env.rcpts[idx[i]]);
		log_kv(&l, "reply", text[i]);
		log_end(&l);
		m->st[idx[i]] = RS_DONE;
	}
	if (level == 3) {
		struct logline l;
		log_msg(&l, LOG_WARN, "double_bounce_dropped", m);
		log_end(&l);
		journal(m, 'x', idx, n);
		for (size_t i = 0; i < n; i++)
			free(text[i]);
		free(text);
		free(idx);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->w.data = j;
	j->m = m;
	j->idx = idx;
	j->text = text;
	j->n = n;
	j->level = level;
	j->rcpt = xstrdup(level == 1 ? m->item.env.sender : Q.cfg->delivery.postmaster);
	m->busy++;
	Q.io_pending++;
	uv_queue_work(Q.loop, &j->w, do_bounce_build, after_bounce_build);
}

/* ---- outcomes -------------------------------------------------------------- */

/* The retry policy of a route, completed by delivery.retry/lifetime. */
static struct retry_policy
retry_of(const struct route_conf *rc)
{
	struct retry_policy r = Q.cfg->delivery.retry;

	if (rc && rc->retry.base_ms)
		r.base_ms = rc->retry.base_ms;
	if (rc && rc->retry.max_ms)
		r.max_ms = rc->retry.max_ms;
	if (rc && rc->retry.lifetime_s)
		r.lifetime_s = rc->retry.lifetime_s;
	return r;
}

static uint64_t
backoff_ms(const struct retry_policy *r, int attempts)
{
	uint64_t d = (uint64_t)r->base_ms * (uint64_t)attempts *
	    (uint64_t)attempts;

	return d > (uint64_t)r->max_ms ? (uint64_t)r->max_ms : d;
}

/* The class a result counts as: past its lifetime a deferral is a failure. */
static enum result_class
settle(struct rcpt_result *r, const struct retry_policy *rp, long long age)
{
	struct buf t = BUF_INIT;

	if (r->cls != RESULT_TEMP || age <= rp->lifetime_s)
		return r->cls;
	buf_printf(&t, "delivery time expired (queue lifetime %lds); last "
	    "error: %s", rp->lifetime_s, buf_cstr(&r->text));
	buf_free(&r->text);
	r->text = t;
	return RESULT_PERM;
}

static void
log_outcome(const struct qmsg *m, size_t i, enum result_class cls,
    const char *mta, struct rcpt_result *r)
{
	struct logline l;

	log_msg(&l, LOG_INFO, cls == RESULT_OK ? "delivered" :
	    cls == RESULT_TEMP ? "deferred" : "bounced", m);
	log_kv(&l, "to", m->item.env.rcpts[i]);
	if (mta)
		log_kv(&l, "relay", mta);
	log_kv(&l, "reply", buf_cstr(&r->text));
	log_end(&l);
}

/* The next try after a deferral, journaled (not flushed: losing it only
 * means an early retry). */
static void
defer(struct qmsg *m, const struct retry_policy *rp)
{
	uint64_t wait = backoff_ms(rp, m->attempts + 1);
	struct buf t = BUF_INIT;

	m->attempts++;
	m->next_try = uv_now(Q.loop) + wait;
	queue_journal_retry(&t, m->attempts,
	    (long long)time(NULL) + (long long)(wait / 1000));
	journal_text(m, &t, 0);
}

/*
 * Applies one job's results: rcpt[i] of the message got results[i].
 * Deliveries and the deferral schedule are journaled first (before even
 * the log lines: whoever sees "delivered" can rely on it), then failures
 * are bounced and the message removed once every recipient is final.
 */
static void
outcome(struct qmsg *m, const size_t *idx, struct rcpt_result *res, size_t n,
    const char *mta, const struct route_conf *rc)
{
	struct retry_policy rp = retry_of(rc);
	enum result_class *cls = xcalloc(n, sizeof(*cls));
	size_t *done = xcalloc(n, sizeof(size_t)), nd = 0;
	size_t *fail = xcalloc(n, sizeof(size_t)), nf = 0;
	char **ftext = xcalloc(n, sizeof(char *));
	int deferred = 0, recorded = 0;
	long long age = (long long)time(NULL) - m->item.env.received;

	for (size_t k = 0; k < n; k++) {
		size_t i = idx[k];

		free(m->mta[i]);
		m->mta[i] = mta ? xstrdup(mta) : NULL;
		cls[k] = settle(&res[k], &rp, age);
		if (cls[k] == RESULT_OK) {
			m->st[i] = RS_DONE;
			if (res[k].journaled)
				recorded = 1;	/* by the delivery, already */
			else
				done[nd++] = i;
		} else if (cls[k] == RESULT_PERM) {
			fail[nf] = i;
			ftext[nf++] = xstrdup(buf_cstr(&res[k].text));
		} else {
			m->st[i] = RS_PENDING;
			buf_set(&m->why[i], res[k].text.data, res[k].text.len);
			deferred = 1;
		}
	}
	if (deferred)
		defer(m, &rp);
	journal(m, 'd', done, nd);
	if (nd == 0 && recorded && !m->retired)
		io(m, 0);	/* flush what the delivery wrote */
	for (size_t k = 0; k < n; k++)
		log_outcome(m, idx[k], cls[k], mta, &res[k]);
	free(cls);
	free(done);
	if (nf)
		bounce(m, fail, ftext, nf);
	else {
		free(fail);
		free(ftext);
	}
	maybe_done(m);
}

/* ---- local jobs ------------------------------------------------------------ */

struct ljob {
	struct qmsg	*m;
	struct runtime	*rt;
	size_t		*idx;
	struct local_rcpt *r;
	size_t		 n;
	int		 completes;	/* the job's recipients are all that is left */
	char		*done_path;	/* where the pool retired the message */
	int		 retired;	/* the pool did */
	const char	**addrs;	/* of r[], for the directory */
	struct dir_mailbox *mb;		/* its answers */
};

static void
on_local_done(void *arg, struct local_rcpt *r, size_t n)
{
	struct ljob *j = arg;
	struct rcpt_result *res = xcalloc(n, sizeof(*res));

	for (size_t i = 0; i < n; i++)
		res[i] = r[i].result;
	Q.running_local--;
	j->m->busy--;
	if (j->retired) {	/* renamed by the pool: the loop's copy follows */
		free(j->m->item.path);
		j->m->item.path = j->done_path;
		j->done_path = NULL;
		j->m->retired = 1;
	}
	free(j->done_path);
	outcome(j->m, j->idx, res, n, NULL, NULL);
	for (size_t i = 0; i < n; i++)
		buf_free(&res[i].text);
	free(res);
	free(j->r);
	free(j->idx);
	runtime_unref(j->rt);
	free(j);
	schedule_soon();
}

/*
 * Local delivery's durable hook, on a pool thread, the moment the job's
 * Maildir files are durable (ok[] of its recipients): a job that completes
 * its message retires it (as retire() does; the loop takes the new path
 * in on_local_done); otherwise "d i" records go into the journal. The
 * item and the index array do not change while the job runs.
 */
static int
local_durable(void *arg, const size_t *ok, size_t nok)
{
	struct ljob *j = arg;
	struct buf b = BUF_INIT;
	int rc;

	if (nok == j->n && j->completes && Q.qs.backend->retire(&Q.qs,
	    &j->m->item, &j->done_path) == 0) {
		j->retired = 1;
		return 0;
	}
	for (size_t k = 0; k < nok; k++)
		queue_journal_final(&b, 'd', j->idx[ok[k]]);
	rc = b.len ? Q.qs.backend->journal_append(&j->m->item, &b) : 0;
	buf_free(&b);
	return rc;
}

/* Every recipient still open is in this job, and nothing else runs. */
static int
job_completes(const struct qmsg *m, size_t n)
{
	size_t open = 0;

	for (size_t i = 0; i < m->item.env.nrcpts; i++)
		open += m->st[i] != RS_DONE;
	return m->busy == 0 && open == n;
}

/* The directory told which recipients have a mailbox: deliver. */
static void
local_start(struct ljob *j)
{
	const struct config *c = &j->rt->cfg;	/* the job's, as the lookup */
	struct local_params p;

	for (size_t i = 0; i < j->n; i++) {
		j->r[i].mailbox = j->mb[i].status == DIR_TEMPFAIL ? -1 :
		    j->mb[i].has;
		j->r[i].quota = j->mb[i].quota;
	}
	free(j->mb);
	free(j->addrs);
	memset(&p, 0, sizeof(p));
	p.root = c->delivery.maildir_root;
	p.hostname = c->hostname;
	p.msg = &j->m->item;
	p.max_hops = c->delivery.max_hops;
	p.durable = local_durable;
	p.durable_arg = j;
	local_deliver(Q.loop, &p, j->r, j->n, on_local_done, j);
}

static void
on_local_looked_up(void *arg)
{
	local_start(arg);
}

static void
start_local(struct qmsg *m, size_t *idx, size_t n)
{
	struct ljob *j = xcalloc(1, sizeof(*j));

	j->m = m;
	j->rt = Q.rt;
	runtime_ref(Q.rt);
	j->idx = idx;
	j->n = n;
	j->r = xcalloc(n, sizeof(*j->r));
	j->completes = job_completes(m, n);
	j->addrs = xcalloc(n, sizeof(char *));
	j->mb = xcalloc(n, sizeof(*j->mb));
	for (size_t i = 0; i < n; i++) {
		j->r[i].address = j->addrs[i] = m->item.env.rcpts[idx[i]];
		m->st[idx[i]] = RS_BUSY;
	}
	m->busy++;
	Q.running_local++;
	if (directory_mailboxes(Q.dir, j->addrs, n, j->mb, on_local_looked_up,
	    j, NULL) == DIR_DONE)
		local_start(j);
}

/* ---- remote jobs ----------------------------------------------------------- */

struct rjob {
	struct qmsg	*m;
	struct runtime	*rt;
	size_t		*idx;
	struct remote_req req;
	char		*key;
};

static struct dcount *
dest(const char *key, int create)
{
	struct dcount *d;

	for (d = Q.dests; d; d = d->next)
		if (strcmp(d->key, key) == 0)
			return d;
	if (!create)
		return NULL;
	d = xcalloc(1, sizeof(*d));
	d->key = xstrdup(key);
	d->next = Q.dests;
	Q.dests = d;
	return d;
}

static void
on_remote_done(void *arg, struct remote_req *q)
{
	struct rjob *j = arg;

	Q.running_remote--;
	dest(j->key, 1)->n--;
	j->m->busy--;
	outcome(j->m, j->idx, q->results, q->n, q->mta[0] ? q->mta : NULL,
	    q->route);
	for (size_t i = 0; i < q->n; i++)
		buf_free(&q->results[i].text);
	free(q->results);
	free(q->rcpts);
	free(j->idx);
	free(j->key);
	runtime_unref(j->rt);
	free(j);
	schedule_soon();
}

static void
start_remote(struct qmsg *m, const char *domain, const struct route_conf *rc,
    const char *key, size_t *idx, size_t n)
{
	struct rjob *j = xcalloc(1, sizeof(*j));
	struct remote_req *q = &j->req;

	j->m = m;
	j->rt = Q.rt;
	runtime_ref(Q.rt);
	j->idx = idx;
	j->key = xstrdup(key);
	q->domain = address_domain(m->item.env.rcpts[idx[0]]);
	(void)domain;
	q->route = rc;
	q->msg = &m->item;
	q->n = n;
	q->rcpts = xcalloc(n, sizeof(char *));
	q->results = xcalloc(n, sizeof(*q->results));
	for (size_t i = 0; i < n; i++) {
		q->rcpts[i] = m->item.env.rcpts[idx[i]];
		m->st[idx[i]] = RS_BUSY;
	}
	m->busy++;
	Q.running_remote++;
	dest(key, 1)->n++;
	remote_deliver(Q.remote, q, on_remote_done, j);
}

/* ---- the route hook -------------------------------------------------------- */

struct rctx {
	struct hook_ctx	 ctx;
	struct envvars	 env;
	struct qmsg	*m;
	size_t		 i;
	struct hook_call *call;
};

static void
rctx_free(struct rctx *r)
{
	envvars_free(&r->env);
	free(r);
}

static void
apply_route(struct rctx *r, struct hook_verdict *v)
{
	struct qmsg *m = r->m;
	struct qroute *q = &m->route[r->i];
	struct rcpt_result res;
	struct logline l;

	q->running = 0;
	m->busy--;
	memset(&res, 0, sizeof(res));
	switch (v->action) {
	case VERDICT_ACCEPT:
		q->decided = 1;
		q->kind = ROUTE_DEFAULT;
		break;
	case VERDICT_ROUTE:
		q->decided = 1;
		q->kind = v->route;
		if (v->route == ROUTE_RELAY) {
			q->relay.domain = "";
			q->relay.host = xstrdup(buf_cstr(&v->route_host));
			q->relay.port = v->route_port;
			q->relay.auth_user = v->route_user.len ?
			    xstrdup(buf_cstr(&v->route_user)) : NULL;
			q->relay.auth_password = v->route_password.len ?
			    xstrdup(buf_cstr(&v->route_password)) : NULL;
			/* as in the config: credentials need TLS, verified */
			q->relay.tls = v->route_tls >= 0 ? v->route_tls :
			    q->relay.auth_user ? CLIENT_TLS_VERIFY :
			    CLIENT_TLS_OPPORTUNISTIC;
			q->relay.auth_plaintext = v->route_auth_plaintext;
		}
		break;
	case VERDICT_DISCARD:
		m->st[r->i] = RS_DONE;
		log_msg(&l, LOG_INFO, "discarded", m);
		log_kv(&l, "to", m->item.env.rcpts[r->i]);
		log_kv(&l, "policy", v->policy);
		log_end(&l);
		journal(m, 'x', &r->i, 1);
		break;
	case VERDICT_REJECT:
	case VERDICT_TEMPFAIL:
		res.cls = v->action == VERDICT_REJECT ? RESULT_PERM : RESULT_TEMP;
		buf_printf(&res.text, "%d %s %s", v->code, v->status,
		    buf_cstr(&v->text));
		outcome(m, &r->i, &res, 1, NULL, NULL);
		buf_free(&res.text);
		break;
	}
	rctx_free(r);
	maybe_done(m);
}

static void
on_route_done(void *arg, struct hook_verdict *v)
{
	apply_route(arg, v);
	schedule_soon();
}

/* Runs the route hook for recipient i (the result may come later). */
static void
route_rcpt(struct qmsg *m, size_t i)
{
	struct rctx *r;
	struct hook_verdict v;

	if (Q.rt->nhooks[HOOK_ROUTE] == 0) {
		m->route[i].decided = 1;
		return;
	}
	r = xcalloc(1, sizeof(*r));
	r->m = m;
	r->i = i;
	for (size_t k = 0; k < m->item.env.vars.n; k++)
		envvars_set(&r->env, m->item.env.vars.key[k],
		    m->item.env.vars.val[k]);
	r->ctx.session_id = m->item.env.id;
	r->ctx.queue_id = m->item.env.id;
	r->ctx.ip = m->item.env.ip;
	r->ctx.helo = m->item.env.helo;
	r->ctx.sender = m->item.env.sender;
	r->ctx.rcpts = m->item.env.rcpts;
	r->ctx.nrcpts = m->item.env.nrcpts;
	r->ctx.rcpt = m->item.env.rcpts[i];
	r->ctx.env = &r->env;
	m->route[i].running = 1;
	m->busy++;
	if (hook_run(Q.rt, HOOK_ROUTE, &r->ctx, &v, on_route_done, r,
	    &r->call) == HOOK_DONE) {
		apply_route(r, &v);
		hook_verdict_free(&v);
	}
}

/* ---- scheduling ------------------------------------------------------------ */

/* Destination key of a remote recipient: its relay, or its domain's MX. */
static const char *
dest_key(const struct qmsg *m, size_t i, const struct route_conf **rc,
    struct buf *key)
{
	const char *dom = address_domain(m->item.env.rcpts[i]);

	buf_clear(key);
	if (m->route[i].kind == ROUTE_RELAY)
		*rc = &m->route[i].relay;
	else if (m->route[i].kind == ROUTE_MX)
		*rc = NULL;
	else
		*rc = config_find_route(Q.cfg, dom ? dom : "");
	if (*rc)
		buf_printf(key, "relay:%s:%d", (*rc)->host, (*rc)->port);
	else
		buf_printf(key, "mx:%s", dom ? dom : "");
	return buf_cstr(key);
}

static int
is_local(const struct qmsg *m, size_t i)
{
	const char *dom = address_domain(m->item.env.rcpts[i]);

	if (m->route[i].kind != ROUTE_DEFAULT)
		return m->route[i].kind == ROUTE_LOCAL;
	return dom == NULL || config_is_local_domain(Q.cfg, dom);
}

/* Recipient i is waiting, routed and not in a job. */
static int
ready(struct qmsg *m, size_t i)
{
	if (m->st[i] != RS_PENDING || m->route[i].running)
		return 0;
	if (!m->route[i].decided)
		route_rcpt(m, i);
	return m->st[i] == RS_PENDING && m->route[i].decided;
}

static void
schedule_local(struct qmsg *m)
{
	size_t *idx = NULL, n = 0;

	if (Q.running_local >= Q.cfg->delivery.conc_local)
		return;
	for (size_t i = 0; i < m->item.env.nrcpts; i++)
		if (ready(m, i) && is_local(m, i)) {
			idx = xrealloc(idx, (n + 1) * sizeof(size_t));
			idx[n++] = i;
		}
	if (n)
		start_local(m, idx, n);
}

static void
schedule_remote(struct qmsg *m)
{
	struct buf key = BUF_INIT, other = BUF_INIT;

	for (size_t i = 0; i < m->item.env.nrcpts; i++) {
		const struct route_conf *rc, *rc2;
		struct dcount *d;
		size_t *idx, n = 0;

		if (!ready(m, i) || is_local(m, i))
			continue;
		if (Q.running_remote >= Q.cfg->delivery.conc_remote)
			break;
		dest_key(m, i, &rc, &key);
		d = dest(buf_cstr(&key), 0);
		if (d && d->n >= Q.cfg->delivery.conc_domain)
			continue;
		idx = xcalloc(m->item.env.nrcpts, sizeof(size_t));
		for (size_t k = i; k < m->item.env.nrcpts; k++) {
			if (!ready(m, k) || is_local(m, k))
				continue;
			dest_key(m, k, &rc2, &other);
			/* one transaction, one login: never another route's */
			if (strcmp(buf_cstr(&other), buf_cstr(&key)) == 0 &&
			    route_same_session(rc, rc2) &&
			    strcasecmp(address_domain(m->item.env.rcpts[k]),
			    address_domain(m->item.env.rcpts[i])) == 0)
				idx[n++] = k;
		}
		start_remote(m, NULL, rc, buf_cstr(&key), idx, n);
	}
	buf_free(&key);
	buf_free(&other);
}

static void
run_queue(void)
{
	uint64_t now = uv_now(Q.loop);

	if (Q.draining || Q.cfg->delivery.paused)
		return;
	for (struct qmsg *m = Q.msgs, *next; m; m = next) {
		next = m->next;
		if (m->hold || m->next_try > now)
			continue;
		schedule_local(m);
		schedule_remote(m);
		if (Q.running_local >= Q.cfg->delivery.conc_local &&
		    Q.running_remote >= Q.cfg->delivery.conc_remote)
			break;
	}
}

static void
on_soon(uv_idle_t *h)
{
	uv_idle_stop(h);
	Q.scheduled = 0;
	run_queue();
}

static void
schedule_soon(void)
{
	if (!Q.scheduled) {
		Q.scheduled = 1;
		uv_idle_start(&Q.soon, on_soon);
	}
}

static void
on_tick(uv_timer_t *t)
{
	static int ticks;

	(void)t;
	run_queue();
	remote_sweep(Q.remote, 5000);
	sweep_tombstones();
	if (++ticks % 60 == 0)	/* catch anything a lost datagram missed */
		load(1, NULL, 0);
}

/* ---- notifications from the SMTP workers ------------------------------------ */

static void
on_notify(uv_poll_t *p, int status, int events)
{
	struct load_item *items = NULL;
	size_t n = 0;
	char dgram[128];
	ssize_t len;

	(void)p;
	(void)status;
	(void)events;
	while ((len = recv(Q.notify_fd, dgram, sizeof(dgram) - 1,
	    MSG_DONTWAIT)) > 0) {
		int queue;
		char id[QUEUE_ID_LEN + 1];
		dgram[len] = '\0';
		if (sscanf(dgram, "%d %24s", &queue, id) != 2 || queue < 0 ||
		    queue >= Q.qs.count)
			continue;
		items = xrealloc(items, (n + 1) * sizeof(*items));
		memset(&items[n], 0, sizeof(*items));
		items[n].queue = queue;
		snprintf(items[n].id, sizeof(items[n].id), "%s", id);
		n++;
	}
	if (n)
		load(0, items, n);
}

/* ---- control socket: indimail queue ... ------------------------------------- */


static void
describe(const struct qmsg *m, struct buf *out)
{
	static const char *names[] = { "pending", "active", "done" };
	uint64_t now = uv_now(Q.loop);

	queue_format_entry(out, m->item.env.id, (long long)time(NULL) -
	    m->item.env.received, m->item.size, m->item.env.sender, m->hold);
	for (size_t i = 0; i < m->item.env.nrcpts; i++) {
		buf_printf(out, "    %-8s <%s>", names[m->st[i]], m->item.env.rcpts[i]);
		if (m->st[i] == RS_PENDING && m->attempts)
			buf_printf(out, " attempts=%d next_retry=%llds",
			    m->attempts, m->next_try > now ?
			    (long long)(m->next_try - now + 999) / 1000 : 0LL);
		if (m->st[i] == RS_PENDING && m->why[i].len)
			buf_printf(out, " last_error=\"%s\"", buf_cstr(&m->why[i]));
		buf_appendc(out, '\n');
	}
}

void
qmgr_command(const char *line, struct buf *out)
{
	char cmd[16], id[QUEUE_ID_LEN + 2];
	struct qmsg *m = NULL;
	int n = sscanf(line, "%15s %25s", cmd, id), count = 0;

	if (n == 2 && ((m = find(id)) == NULL || m->removed_at)) {
		buf_printf(out, "error no message %s in the queue\n", id);
		return;
	}
	if (n >= 1 && strcmp(cmd, "list") == 0) {
		for (struct qmsg *x = Q.msgs; x; x = x->next, count++)
			describe(x, out);
		buf_printf(out, "ok %d\n", count);
	} else if (n == 2 && strcmp(cmd, "show") == 0) {
		describe(m, out);
		buf_printf(out, "path %s\nok 1\n", m->item.path);
	} else if (n >= 1 && strcmp(cmd, "flush") == 0) {
		for (struct qmsg *x = Q.msgs; x; x = x->next)
			if (!x->hold) {
				x->next_try = 0;
				count++;
			}
		schedule_soon();
		buf_printf(out, "ok %d\n", count);
	} else if (n == 2 && (strcmp(cmd, "hold") == 0 ||
	    strcmp(cmd, "release") == 0)) {
		struct buf j = BUF_INIT;
		m->hold = cmd[0] == 'h';
		m->next_try = 0;
		queue_journal_hold(&j, m->hold);
		journal_text(m, &j, 1);
		schedule_soon();
		buf_printf(out, "ok 1\n");
	} else if (n == 2 && strcmp(cmd, "remove") == 0) {
		size_t *idx = xcalloc(m->item.env.nrcpts, sizeof(size_t)), k = 0;
		for (size_t i = 0; i < m->item.env.nrcpts; i++)
			if (m->st[i] == RS_PENDING) {
				m->st[i] = RS_DONE;
				idx[k++] = i;
			}
		if (k < m->item.env.nrcpts && m->busy) {
			for (size_t i = 0; i < k; i++)
				m->st[idx[i]] = RS_PENDING;
			buf_printf(out, "error %s is being delivered, try again\n", id);
		} else {
			journal(m, 'x', idx, k);
			maybe_done(m);
			buf_printf(out, "ok 1\n");
		}
		free(idx);
	} else
		buf_printf(out, "error unknown command (list, show ID, flush, "
		    "hold ID, release ID, remove ID)\n");
}

/* ---- process --------------------------------------------------------------- */

static void
on_reload(uv_signal_t *s, int sig)
{
	struct buf err = BUF_INIT;
	struct runtime *rt;

	(void)s;
	(void)sig;
	watchdog_enter();
	rt = runtime_load(Q.rt->path, &err);
	watchdog_leave();
	if (rt == NULL) {
		log_event(LOG_ERROR, "reload_failed", "error=\"%s\"", buf_cstr(&err));
		buf_free(&err);
		return;
	}
	directory_put(Q.dir);	/* lookups in flight keep it (and their job its config) */
	runtime_unref(Q.rt);
	Q.rt = rt;
	Q.cfg = &rt->cfg;
	Q.dir = directory_get(Q.loop, Q.cfg);
	watchdog_set_limit(Q.cfg->timeout_watchdog);
	remote_ctx_set_config(Q.remote, Q.cfg);
	log_event(LOG_INFO, "reloaded", NULL);
	schedule_soon();
}

/*
 * Drained: no delivery runs and no journal flush, removal, bounce or load
 * is still on the thread pool (exiting earlier would drop them).
 */
static void
maybe_exit(void)
{
	if (Q.draining && Q.running_local == 0 && Q.running_remote == 0 &&
	    Q.io_pending == 0) {
		remote_sweep(Q.remote, 0);
		log_event(LOG_INFO, "qmgr_exit", "reason=drained");
		exit(0);
	}
}

static void
on_drain_check(uv_timer_t *t)
{
	static int waited;

	(void)t;
	maybe_exit();
	if (++waited * 100 > Q.cfg->timeout_drain) {
		log_event(LOG_WARN, "qmgr_exit", "reason=drain_timeout");
		exit(0);
	}
}

static void
on_term(uv_signal_t *s, int sig)
{
	(void)s;
	(void)sig;
	if (Q.lock_fd < 0) {	/* never started: nothing to finish */
		log_event(LOG_INFO, "qmgr_exit", "reason=stopped_waiting_for_lock");
		exit(0);
	}
	Q.draining = 1;
	log_event(LOG_INFO, "draining", "local=%d remote=%d io=%d",
	    Q.running_local, Q.running_remote, Q.io_pending);
	uv_timer_start(&Q.tick, on_drain_check, 0, 100);
}

/* A route hook is stuck: deliveries in flight are repeated by our successor. */
static void
on_watchdog(void *unused)
{
	(void)unused;
}

/* Starts delivering: only one queue manager at a time works on a queue. */
static void
start_work(void)
{
	uv_timer_stop(&Q.tick);
	uv_timer_start(&Q.tick, on_tick, 1000, 1000);
	uv_poll_start(&Q.notify, UV_READABLE, on_notify);
	qmgr_control_open(Q.loop, Q.cfg->queue_path);
	log_event(LOG_INFO, "qmgr_start", "queues=%d", Q.qs.count);
	load(1, NULL, 0);
}

/*
 * The queue lock: a queue manager of an earlier master (killed with -9,
 * its children draining) may still be finishing deliveries; scanning the
 * queue before it is gone would deliver its messages a second time.
 */
static int
take_lock(int fd)
{
	return flock(fd, LOCK_EX | LOCK_NB) == 0;
}

static void
on_lock_retry(uv_timer_t *t)
{
	static int logged;

	if (!take_lock(Q.pending_lock)) {
		if (!logged++)
			log_event(LOG_INFO, "qmgr_waiting", "reason=\"another queue "
			    "manager still works on this queue\"");
		return;
	}
	uv_timer_stop(t);
	Q.lock_fd = Q.pending_lock;
	start_work();
}

static void
open_lock(void)
{
	struct buf p = BUF_INIT;

	buf_printf(&p, "%s/qmgr.lock", Q.cfg->queue_path);
	Q.lock_fd = -1;
	Q.pending_lock = open(buf_cstr(&p), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (Q.pending_lock < 0)
		fatal("cannot open %s: %s", buf_cstr(&p), strerror(errno));
	buf_free(&p);
	uv_timer_start(&Q.tick, on_lock_retry, 0, 200);
}

void
qmgr_main(struct runtime *rt, int notify_fd)
{
	struct buf err = BUF_INIT;

	log_set_role("qmgr");
	signal(SIGPIPE, SIG_IGN);
	Q.loop = xcalloc(1, sizeof(uv_loop_t));
	uv_loop_init(Q.loop);
	Q.rt = rt;
	Q.cfg = &rt->cfg;
	Q.dir = directory_get(Q.loop, Q.cfg);
	Q.notify_fd = notify_fd;
	if (queue_set_init(&Q.qs, Q.cfg->queue_path, Q.cfg->queue_count,
	    Q.cfg->queue_split, &err) < 0)
		fatal("queue: %s", buf_cstr(&err));
	if ((Q.dns = dns_new(Q.loop, Q.cfg->dns_servers, Q.cfg->dns_timeout_ms,
	    &err)) == NULL)
		fatal("dns: %s", buf_cstr(&err));
	Q.remote = remote_ctx_new(Q.loop, Q.dns, Q.cfg);
	hook_set_env(Q.loop, Q.dns);
	uv_idle_init(Q.loop, &Q.soon);
	uv_timer_init(Q.loop, &Q.tick);
	uv_poll_init(Q.loop, &Q.notify, notify_fd);
	uv_signal_init(Q.loop, &Q.sighup);
	uv_signal_init(Q.loop, &Q.sigterm);
	uv_signal_init(Q.loop, &Q.sigint);
	uv_signal_start(&Q.sighup, on_reload, SIGHUP);
	uv_signal_start(&Q.sigterm, on_term, SIGTERM);
	uv_signal_start(&Q.sigint, on_term, SIGINT);
	open_lock();
	watchdog_start(Q.cfg->timeout_watchdog, on_watchdog, NULL);
	unblock_signals();	/* blocked since the fork, see master.c */
	uv_run(Q.loop, UV_RUN_DEFAULT);
	exit(0);
}
