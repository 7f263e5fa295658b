/*
 * qmgr_outcome: what the queue manager does with a result. Deliveries and
 * the retry schedule go to the message's journal first (before even the
 * log lines: whoever sees "delivered" can rely on it), then failures are
 * bounced, deferrals wait with a growing backoff, and a message whose
 * recipients are all final is retired (renamed to done/) and removed on
 * the pool. A recipient's outcome is appended only after the delivery or
 * the bounce is durable elsewhere: a crash can repeat a delivery, never
 * lose one (at-least-once).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/xalloc.h"
#include "qmgr_int.h"

static struct metric delivery_delay;	/* resolved on first use */

/* ---- journal writes and removal (thread pool) ------------------------------ */

struct io_job {
	struct batch_item item;		/* first: the removal batcher's link */
	uv_work_t	 w;
	struct qmgr	*q;
	struct qmsg	*m;
	int		 remove;	/* 1: remove the message; 0: flush the journal */
	int		 ok;
	int		 error;		/* errno when not ok */
	char		*done_path;	/* a settled message kept: moved there */
};

/*
 * Journal records are appended the moment an outcome is known (on the
 * loop thread, and by local delivery on a pool thread the moment a Maildir
 * file is durable): once the append has returned, they survive kill -9 of
 * this process, so a delivery is repeated only if we die in the
 * microseconds between learning of it and the append. The flush for power
 * loss follows on the pool.
 */
/*
 * A settled message (delivered by a local job, still in mess/) whose
 * removal failed: moved to done/, or failing that its recipients
 * journaled as delivered, so that nothing delivers it again.
 */
static void
keep_settled(struct io_job *j)
{
	const struct queue_backend *qb = j->q->qs.backend;
	struct queue_item *qi = &j->m->item;
	struct buf b = BUF_INIT;

	if (qb->retire(&j->q->qs, qi, &j->done_path) == 0)
		return;
	for (size_t i = 0; i < qi->env.nrcpts; i++)
		queue_journal_final(&b, 'd', i);
	if (qb->journal_append(qi, &b) == 0)
		qb->journal_flush(qi);
	buf_free(&b);
}

static void
run_io(struct io_job *j)
{
	const struct queue_backend *qb = j->q->qs.backend;

	if (j->remove)
		j->ok = qb->remove(&j->m->item) == 0;
	else
		j->ok = qb->journal_flush(&j->m->item) == 0;
	j->error = j->ok ? 0 : errno;
	if (!j->ok && j->remove && j->m->settled)
		keep_settled(j);
}

static void
do_io(uv_work_t *w)
{
	run_io(w->data);
}

static void
removed(struct qmgr *q, struct qmsg *m)
{
	struct logline l;

	qmsg_log(&l, LOG_INFO, "removed", m);
	log_end(&l);
	qmgr_table_tombstone(q->table, m, uv_now(q->loop));
}

static void
finish_io(struct io_job *j)
{
	struct qmgr *q = j->q;
	struct qmsg *m = j->m;
	int removing = j->remove;

	if (!j->ok) {
		struct logline l;
		qmsg_log(&l, LOG_ERROR, removing ? "remove_failed" :
		    "journal_failed", m);
		log_kv(&l, "path", removing ? m->item.path : m->item.journal);
		log_kv(&l, "error", strerror(j->error));
		log_end(&l);
	}
	if (j->done_path) {
		free(m->item.path);
		m->item.path = j->done_path;
	}
	free(j);
	m->busy--;
	q->io_pending--;
	if (removing) {
		removed(q, m);
		return;
	}
	qmgr_maybe_done(q, m);
}

static void
after_io(uv_work_t *w, int status)
{
	(void)status;
	finish_io(w->data);
}

/*
 * Removals go one batch at a time onto one pool thread: each unlink frees
 * the file's blocks (with `discard`, a trim each), and as single pool jobs
 * they took every pool thread at once, the Maildir writes and flushes
 * queued behind them (docs/delivery.md).
 */
static void
remove_batch(struct batch_item *items, size_t n, void *ctx)
{
	(void)n;
	(void)ctx;
	for (struct batch_item *it = items; it; it = it->next)
		run_io((struct io_job *)it);
}

static void
removals_done(struct batch_item *items, size_t n, void *ctx, int status)
{
	struct batch_item *it, *next;

	(void)n;
	(void)ctx;
	for (it = items; it; it = next) {
		struct io_job *j = (struct io_job *)it;
		next = it->next;
		if (status != 0) {
			j->ok = 0;
			j->error = ECANCELED;
		}
		finish_io(j);
	}
}

/* Flushes the journal (remove = 0) or removes the message, on the pool. */
static void
io(struct qmgr *q, struct qmsg *m, int remove)
{
	struct io_job *j = xcalloc(1, sizeof(*j));

	j->w.data = j;
	j->q = q;
	j->m = m;
	j->remove = remove;
	m->busy++;
	q->io_pending++;
	if (!remove) {
		uv_queue_work(q->loop, &j->w, do_io, after_io);
		return;
	}
	if (q->removals.work == NULL) {
		q->removals.loop = q->loop;
		q->removals.work = remove_batch;
		q->removals.done = removals_done;
		q->removals.uncounted = 1;
	}
	batcher_add(&q->removals, &j->item);
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
void
qmgr_maybe_done(struct qmgr *q, struct qmsg *m)
{
	if (m->busy == 0 && all_done(m))
		io(q, m, 1);
}

/* Writes text to the journal now; flushed later unless `flush` is 0. */
void
qmgr_journal_text(struct qmgr *q, struct qmsg *m, struct buf *text, int flush)
{
	if (q->qs.backend->journal_append(&m->item, text) < 0) {
		struct logline l;
		qmsg_log(&l, LOG_ERROR, "journal_failed", m);
		log_kv(&l, "path", m->item.journal);
		log_kv(&l, "error", strerror(errno));
		log_end(&l);
	}
	buf_free(text);
	if (flush)
		io(q, m, 0);
}

/*
 * Every recipient is final: the message leaves mess/ at once, by a rename
 * to done/ on the loop thread (one metadata operation: no journal file to
 * create, flush and remove for the common message delivered in one go),
 * and is removed from there on the pool. A rename that power loss undoes
 * means one more delivery (at-least-once); kill -9 cannot undo it.
 */
static int
retire(struct qmgr *q, struct qmsg *m)
{
	char *done;

	if (q->qs.backend->retire(&q->qs, &m->item, &done) < 0) {
		struct logline l;
		qmsg_log(&l, LOG_ERROR, "retire_failed", m);
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
void
qmgr_journal(struct qmgr *q, struct qmsg *m, char kind, const size_t *idx,
    size_t n)
{
	struct buf b = BUF_INIT;

	if (n == 0)
		return;
	if (all_done(m) && m->busy == 0 && (m->retired || retire(q, m) == 0))
		return;		/* out of mess/: nothing can deliver it again */
	for (size_t i = 0; i < n; i++)
		queue_journal_final(&b, kind, idx[i]);
	qmgr_journal_text(q, m, &b, 1);
}

/* ---- outcomes -------------------------------------------------------------- */

/* The retry policy of a route, completed by delivery.retry/lifetime. */
static struct retry_policy
retry_of(const struct qmgr *q, const struct route_conf *rc)
{
	struct retry_policy r = q->cfg->delivery.retry;

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

	qmsg_log(&l, LOG_INFO, cls == RESULT_OK ? "delivered" :
	    cls == RESULT_TEMP ? "deferred" : "bounced", m);
	log_kv(&l, "to", m->item.env.rcpts[i]);
	if (mta)
		log_kv(&l, "relay", mta);
	log_kv(&l, "reply", buf_cstr(&r->text));
	/* Seconds from queue entry to this outcome: `indimail stats` delays. */
	log_kvi(&l, "delay", (long long)(time(NULL) - m->item.env.received));
	log_end(&l);
}

/* indimail_deliveries_total and, for a delivery, its delay. */
static void
count_outcome(const struct qmsg *m, enum result_class cls, enum mm_class k)
{
	long long delay = (long long)time(NULL) - m->item.env.received;

	metric_inc(mail_metrics_delivery(cls == RESULT_OK ? MM_DELIVERED :
	    cls == RESULT_TEMP ? MM_DEFERRED : MM_BOUNCED, k));
	if (cls == RESULT_OK)
		metric_observe(metrics_once(&delivery_delay,
		    &mm_delivery_delay, NULL), delay > 0 ? (uint64_t)delay : 0);
}

/* The next try after a deferral, journaled (not flushed: losing it only
 * means an early retry), then in the retry index (qmgr_index.c). */
static void
defer(struct qmgr *q, struct qmsg *m, const struct retry_policy *rp)
{
	uint64_t wait = backoff_ms(rp, m->attempts + 1);
	long long at = (long long)time(NULL) + (long long)(wait / 1000);
	struct buf t = BUF_INIT;

	m->attempts++;
	m->next_try = uv_now(q->loop) + wait;
	queue_journal_retry(&t, m->attempts, at);
	qmgr_journal_text(q, m, &t, 0);
	qmgr_index_append(q, m->item.env.id, at);	/* after the journal */
}

/*
 * Applies one job's results: rcpt[i] of the message got results[i].
 * Deliveries and the deferral schedule are journaled first (before even
 * the log lines: whoever sees "delivered" can rely on it), then failures
 * are bounced and the message removed once every recipient is final.
 */
void
qmgr_outcome(struct qmgr *q, struct qmsg *m, const size_t *idx,
    struct rcpt_result *res, size_t n, const char *mta,
    const struct route_conf *rc, enum mm_class klass)
{
	struct retry_policy rp = retry_of(q, rc);
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
		defer(q, m, &rp);
	qmgr_journal(q, m, 'd', done, nd);
	if (nd == 0 && recorded && !m->retired)
		io(q, m, 0);	/* flush what the delivery wrote */
	for (size_t k = 0; k < n; k++) {
		log_outcome(m, idx[k], cls[k], mta, &res[k]);
		count_outcome(m, cls[k], klass);
	}
	free(cls);
	free(done);
	if (nf)
		qmgr_bounce(q, m, fail, ftext, nf);
	else {
		free(fail);
		free(ftext);
	}
	qmgr_maybe_done(q, m);
}
