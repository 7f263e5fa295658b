/*
 * scheduler: which recipients start now. Walks the table for messages
 * that are due and not held, groups their ready recipients into local
 * jobs and remote jobs (one per destination and login), and keeps the
 * limits: delivery.conc_local, conc_remote and each destination's window
 * (slow start from concurrency.initial up to per_domain, kept in the
 * destination table, dest.c). A message
 * whose every waiting recipient goes to a destination that is down is held
 * back in memory until the destination's probe, without a journal line or
 * a log line of its own (a restart only tries it once more); one past its
 * queue lifetime bounces. Never runs while draining or paused.
 *
 * Two kinds of pass. The full pass walks the whole active set: every
 * second (the tick), and soon after a command, a reload, or a load while
 * the active set is under pressure (moving out needs it). It also puts
 * each message on the table's ready lists (local, remote) when it is due
 * and has a recipient ready for that kind of job. The short pass, soon
 * after a job ends or messages are loaded (scheduler_changed), walks only
 * the ready lists, oldest first, and only while that kind of job has room:
 * a message that has nothing to start costs nothing, so a large active set
 * waiting for a busy kind of job is not walked after each job. A message
 * that becomes due by time alone waits for the tick, as before.
 *
 * The active set (docs/queue.md): when entries outside it are due and it
 * has no room, the walk moves the idle messages that are not due out of
 * it (qmgr_evict): one held back by a single destination that is down is
 * parked on that destination, and the tick wakes one of them for the
 * probe, all of them when it is up. Then due entries are loaded.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../lib/xalloc.h"
#include "../mail/address.h"
#include "qmgr_int.h"

#define DEST_IDLE_MS	(10 * 60 * 1000)	/* an idle destination is forgotten */
#define PROBE_LOST_MS	(60 * 1000)	/* a woken probe that never started */
/* A short pass stops after this many listed messages in a row that start
 * nothing (their destinations full): the tick's full pass sees the rest. */
#define SHORT_PASS_IDLE_MAX	256

struct scheduler {
	struct qmgr	*q;
	int		 running_local, running_remote;
	int		 draining;
	int		 scheduled;	/* soon is started */
	int		 full;		/* the pass soon is a full one */
	uv_idle_t	 soon;
	int		 ticks;
};

/* The recipients of one message held back by destinations that are down. */
struct held {
	size_t		 n;		/* recipients held */
	uint64_t	 until;		/* the earliest probe among them */
	int		 other;		/* some wait for another reason */
	struct dest	*last;		/* counted the message already */
	int		 ndests;	/* destinations that hold it back */
};

struct scheduler *
scheduler_new(struct qmgr *q)
{
	struct scheduler *s = xcalloc(1, sizeof(*s));

	s->q = q;
	uv_idle_init(q->loop, &s->soon);
	s->soon.data = s;
	return s;
}

void
scheduler_local_started(struct scheduler *s)
{
	s->running_local++;
}

void
scheduler_local_ended(struct scheduler *s)
{
	s->running_local--;
}

void
scheduler_remote_started(struct scheduler *s, const char *key)
{
	struct qmgr *q = s->q;

	s->running_remote++;
	dest_job_started(dest_get(q->dests, key), uv_now(q->loop));
}

/*
 * delivery.concurrency's window for a destination of route rc, and
 * delivery.dead_destination; a zero there means the retry base or max of
 * route rc, else of delivery.
 */
static struct dest_conf
dest_conf(const struct qmgr *q, const struct route_conf *rc)
{
	const struct delivery_conf *dc = &q->cfg->delivery;
	struct dest_conf c = { dc->conc_initial, dc->conc_domain, dc->dead };

	if (c.dead.backoff_ms == 0)
		c.dead.backoff_ms = rc && rc->retry.base_ms ?
		    rc->retry.base_ms : dc->retry.base_ms;
	if (c.dead.max_ms == 0)
		c.dead.max_ms = rc && rc->retry.max_ms ? rc->retry.max_ms :
		    dc->retry.max_ms;
	return c;
}

void
scheduler_remote_ended(struct scheduler *s, const char *key,
    const struct route_conf *rc, enum remote_verdict v, const char *reason)
{
	struct qmgr *q = s->q;
	struct dest_conf c = dest_conf(q, rc);

	s->running_remote--;
	dest_job_ended(q->dests, dest_get(q->dests, key), v, reason, &c,
	    uv_now(q->loop));
}

void
scheduler_running(const struct scheduler *s, int *local, int *remote)
{
	*local = s->running_local;
	*remote = s->running_remote;
}

void
scheduler_drain(struct scheduler *s)
{
	s->draining = 1;
}

/* Recipient i is waiting, routed and not in a job. */
static int
ready(struct qmgr *q, struct qmsg *m, size_t i)
{
	if (m->st[i] != RS_PENDING || m->route[i].running)
		return 0;
	if (!m->route[i].decided)
		qmgr_route_rcpt(q, m, i);
	return m->st[i] == RS_PENDING && m->route[i].decided;
}

static void
schedule_local(struct scheduler *s, struct qmsg *m)
{
	struct qmgr *q = s->q;
	size_t *idx = NULL, n = 0;

	if (s->running_local >= q->cfg->delivery.conc_local)
		return;
	for (size_t i = 0; i < m->item.env.nrcpts; i++)
		if (ready(q, m, i) && qmgr_route_is_local(q, m, i)) {
			idx = xrealloc(idx, (n + 1) * sizeof(size_t));
			idx[n++] = i;
		}
	if (n)
		qmgr_local_start(q, m, idx, n);
}

/*
 * The recipients from i on that go with recipient i (destination key,
 * route rc): same destination, same login, same domain.
 */
static size_t *
remote_batch(struct qmgr *q, struct qmsg *m, size_t i,
    const struct route_conf *rc, const char *key, size_t *n)
{
	size_t *idx = xcalloc(m->item.env.nrcpts, sizeof(size_t));
	struct buf other = BUF_INIT;

	*n = 0;
	for (size_t k = i; k < m->item.env.nrcpts; k++) {
		const struct route_conf *rc2;

		if (!ready(q, m, k) || qmgr_route_is_local(q, m, k))
			continue;
		qmgr_route_dest_key(q, m, k, &rc2, &other);
		/* one transaction, one login: never another route's */
		if (strcmp(buf_cstr(&other), key) == 0 &&
		    route_same_session(rc, rc2) &&
		    strcasecmp(address_domain(m->item.env.rcpts[k]),
		    address_domain(m->item.env.rcpts[i])) == 0)
			idx[(*n)++] = k;
	}
	buf_free(&other);
	return idx;
}

/* Past its queue lifetime (the route's, else delivery.lifetime). */
static int
expired(const struct qmgr *q, const struct qmsg *m, const struct route_conf *rc)
{
	long lifetime = rc && rc->retry.lifetime_s ? rc->retry.lifetime_s :
	    q->cfg->delivery.retry.lifetime_s;

	return (long long)time(NULL) - m->item.env.received > lifetime;
}

/* Debug level only: at info a destination down is one line, not one a
 * message. */
static void
log_held(const struct qmsg *m, size_t i, const struct dest *d)
{
	struct logline l;

	qmsg_log(&l, LOG_DEBUG, "held", m);
	log_kv(&l, "to", m->item.env.rcpts[i]);
	log_kv(&l, "dest", d->key);
	log_end(&l);
}

/*
 * Recipient i waits for destination d, which is down until `until`; past
 * its lifetime it bounces with the destination's reason instead.
 */
static void
hold(struct qmgr *q, struct qmsg *m, size_t i, const struct route_conf *rc,
    struct dest *d, uint64_t until, struct held *h)
{
	struct rcpt_result res;

	if (expired(q, m, rc)) {
		memset(&res, 0, sizeof(res));
		res.cls = RESULT_TEMP;	/* made permanent by its age */
		buf_appends(&res.text, d->why);
		qmgr_outcome(q, m, &i, &res, 1, NULL, rc,
		    rc ? MM_RELAY : MM_REMOTE);
		buf_free(&res.text);
		return;
	}
	log_held(m, i, d);
	h->n++;
	if (h->until == 0 || until < h->until)
		h->until = until;
	if (h->last != d) {
		d->held++;
		h->ndests++;
	}
	h->last = d;
}

static void
schedule_remote(struct scheduler *s, struct qmsg *m, struct held *h)
{
	struct qmgr *q = s->q;
	struct buf key = BUF_INIT;
	uint64_t now = uv_now(q->loop), until = 0;

	for (size_t i = 0; i < m->item.env.nrcpts; i++) {
		const struct route_conf *rc;
		struct dest_conf c;
		struct dest *d;
		size_t *idx, n;

		if (!ready(q, m, i) || qmgr_route_is_local(q, m, i))
			continue;
		if (s->running_remote >= q->cfg->delivery.conc_remote) {
			h->other = 1;
			break;
		}
		d = dest_get(q->dests, qmgr_route_dest_key(q, m, i, &rc, &key));
		c = dest_conf(q, rc);
		switch (dest_admit(d, &c, now, &until)) {
		case DEST_FULL:
			h->other = 1;
			continue;
		case DEST_HELD:
			hold(q, m, i, rc, d, until, h);
			continue;
		case DEST_GO:
			break;
		}
		idx = remote_batch(q, m, i, rc, buf_cstr(&key), &n);
		qmgr_remote_start(q, m, rc, buf_cstr(&key), idx, n);
	}
	buf_free(&key);
}

static size_t
pending(const struct qmsg *m)
{
	size_t n = 0;

	for (size_t i = 0; i < m->item.env.nrcpts; i++)
		n += m->st[i] == RS_PENDING;
	return n;
}

/*
 * Starts what m may start; holds it back if all it waits for is down.
 * Returns the destination that alone holds it back, else NULL.
 */
static struct dest *
schedule_message(struct scheduler *s, struct qmsg *m)
{
	struct held h;

	memset(&h, 0, sizeof(h));
	schedule_local(s, m);
	schedule_remote(s, m, &h);
	if (!h.n || h.other || pending(m) != h.n)
		return NULL;
	m->next_try = h.until;	/* in memory only: see the head comment */
	return h.ndests == 1 ? h.last : NULL;
}

/* The destination recipient i waits for, if the table knows it. */
static struct dest *
dest_of(const struct qmgr *q, const struct qmsg *m, size_t i)
{
	const struct route_conf *rc;
	struct buf key = BUF_INIT;
	struct dest *d = NULL;

	if (m->st[i] == RS_PENDING && !qmgr_route_is_local(q, m, i))
		d = dest_find(q->dests, qmgr_route_dest_key(q, m, i, &rc, &key));
	buf_free(&key);
	return d;
}

/*
 * The destination that alone holds m back since an earlier pass: every
 * waiting recipient goes to it, it is down, and m waits for its probe
 * (next_try set by schedule_message or scheduler_follow_dest); else NULL.
 */
static struct dest *
held_by(const struct qmgr *q, const struct qmsg *m)
{
	struct dest *d = NULL;

	for (size_t i = 0; i < m->item.env.nrcpts; i++) {
		struct dest *di;
		if (m->st[i] != RS_PENDING)
			continue;
		di = dest_of(q, m, i);
		if (di == NULL || (d && di != d))
			return NULL;
		d = di;
	}
	return d && d->state == DEST_DOWN && m->next_try == d->until ? d : NULL;
}

/*
 * m, not due, leaves the active set: parked on d, the destination that
 * held it back in this pass or an earlier one, if there is one.
 */
static void
evict(struct qmgr *q, struct qmsg *m, struct dest *d)
{
	if (d == NULL && !m->hold)
		d = held_by(q, m);
	qmgr_evict(q, m, d);
}

void
scheduler_evict(struct qmgr *q, struct qmsg *m)
{
	evict(q, m, NULL);
}

/*
 * m on the ready lists it belongs on: due, not held, not removed, with a
 * waiting recipient for a local (remote) job. One whose route hook has not
 * run yet goes on both: the hook runs when a pass gets to it, not here.
 */
static void
classify(struct qmgr *q, struct qmsg *m, uint64_t now)
{
	int want[QREADY_KINDS] = { 0, 0 };

	if (!m->hold && m->next_try <= now && m->removed_at == 0 &&
	    !m->retired)
		for (size_t i = 0; i < m->item.env.nrcpts; i++) {
			if (m->st[i] != RS_PENDING || m->route[i].running)
				continue;
			if (!m->route[i].decided)
				want[QREADY_LOCAL] = want[QREADY_REMOTE] = 1;
			else
				want[qmgr_route_is_local(q, m, i) ?
				    QREADY_LOCAL : QREADY_REMOTE] = 1;
		}
	for (int k = 0; k < QREADY_KINDS; k++)
		qmgr_table_ready(q->table, m, k, want[k]);
}

static int
room_for(const struct scheduler *s, int kind)
{
	const struct delivery_conf *dc = &s->q->cfg->delivery;

	return kind == QREADY_LOCAL ? s->running_local < dc->conc_local :
	    s->running_remote < dc->conc_remote;
}

/* The whole active set: see the head comment. */
static void
full_pass(struct scheduler *s)
{
	struct qmgr *q = s->q;
	uint64_t now = uv_now(q->loop);
	int pressure = qmgr_pressure(q);

	for (struct qmsg *m = qmgr_table_first(q->table), *next; m; m = next) {
		struct dest *d = NULL;

		next = m->next;
		if (!m->hold && m->next_try <= now &&
		    (room_for(s, QREADY_LOCAL) || room_for(s, QREADY_REMOTE)))
			d = schedule_message(s, m);
		classify(q, m, now);
		if (pressure && (m->hold || m->next_try > now) &&
		    qmgr_evictable(m))
			evict(q, m, d);
	}
}

/* The ready lists only, while their kind of job has room. */
static void
short_pass(struct scheduler *s)
{
	struct qmgr *q = s->q;
	uint64_t now = uv_now(q->loop);

	for (int k = 0; k < QREADY_KINDS; k++) {
		int idle = 0;
		for (struct qmsg *m = qmgr_table_ready_first(q->table, k), *next;
		    m && room_for(s, k) && idle < SHORT_PASS_IDLE_MAX; m = next) {
			int before = s->running_local + s->running_remote;
			next = m->rnext[k];
			if (!m->hold && m->next_try <= now)
				schedule_message(s, m);
			idle = s->running_local + s->running_remote == before ?
			    idle + 1 : 0;
			classify(q, m, now);
		}
	}
}

static void
run_queue(struct scheduler *s, int full)
{
	struct qmgr *q = s->q;

	if (s->draining || q->cfg->delivery.paused)
		return;
	if (full)
		full_pass(s);
	else
		short_pass(s);
	qmgr_fill(q);
	dest_announce(q->dests, uv_now(q->loop));
}

static void
on_soon(uv_idle_t *h)
{
	struct scheduler *s = h->data;
	int full = s->full;

	uv_idle_stop(h);
	s->scheduled = 0;
	s->full = 0;
	run_queue(s, full);
}

static void
soon(struct scheduler *s, int full)
{
	s->full |= full;
	if (!s->scheduled) {
		s->scheduled = 1;
		uv_idle_start(&s->soon, on_soon);
	}
}

/* A full pass once the loop has nothing else to do. */
void
scheduler_soon(struct qmgr *q)
{
	soon(q->sched, 1);
}

void
scheduler_changed(struct qmgr *q, struct qmsg *m)
{
	if (m)
		classify(q, m, uv_now(q->loop));
	soon(q->sched, 0);
}

/* The shortest queue lifetime: delivery's or a route's. */
static long
shortest_lifetime(const struct qmgr *q)
{
	const struct delivery_conf *dc = &q->cfg->delivery;
	long l = dc->retry.lifetime_s;

	for (size_t i = 0; i < dc->nroutes; i++)
		if (dc->routes[i].retry.lifetime_s &&
		    dc->routes[i].retry.lifetime_s < l)
			l = dc->routes[i].retry.lifetime_s;
	return l;
}

/*
 * The messages parked on d: all due once it is up; one (and those past
 * the shortest lifetime, to bounce) each time its probe may start; all if
 * that one never probed it (bounced, removed, or routed elsewhere now, as
 * after a restart with other routes: docs/queue.md "The retry index").
 */
static void
wake_parked(struct dest *d, void *arg)
{
	struct qmgr *q = arg;
	uint64_t now = uv_now(q->loop);

	if (d->nparked == 0)
		return;
	qmgr_index_dest(q, d);	/* a new probe time for those parked */
	if (d->state == DEST_UP)
		qmgr_wait_wake_all(q->wait, d, now);
	else if (d->state == DEST_DOWN && now >= d->until &&
	    d->woken != d->until) {
		d->woken = d->until;
		qmgr_wait_wake_one(q->wait, d, now);
		qmgr_wait_wake_old(q->wait, d, (long long)time(NULL) -
		    shortest_lifetime(q), now);
	} else if (d->state == DEST_DOWN && d->woken == d->until &&
	    now >= d->until + PROBE_LOST_MS)	/* the message woken went */
		qmgr_wait_wake_all(q->wait, d, now);	/* elsewhere, or away */
}

/*
 * Every second: due retries, parked messages, idle connections, old
 * tombstones. No rescan of the queue: notifications are not lost.
 */
void
scheduler_tick(struct qmgr *q)
{
	struct scheduler *s = q->sched;

	dest_each(q->dests, wake_parked, q);
	run_queue(s, 1);
	remote_sweep(q->remote, 5000);
	qmgr_table_sweep(q->table, uv_now(q->loop));
	if (++s->ticks % 60 == 0)
		dest_sweep(q->dests, uv_now(q->loop), DEST_IDLE_MS);
}

/* The reply of the destination that holds recipient i back, or NULL. */
const char *
scheduler_held_why(const struct qmgr *q, const struct qmsg *m, size_t i)
{
	struct dest *d = dest_of(q, m, i);

	return d && d->state != DEST_UP ? d->why : NULL;
}

/*
 * After the outcome of m's job to key: if that destination is down, m
 * waits for its probe like the messages held back, not for its own
 * backoff (the failure was the destination's), so that they all drain
 * together once it is up.
 */
void
scheduler_follow_dest(struct qmgr *q, struct qmsg *m, const char *key)
{
	struct dest *d = dest_find(q->dests, key);

	if (d && d->state == DEST_DOWN && m->next_try > d->until)
		m->next_try = d->until;
}

/* `queue flush` of m: the destinations it waits for are probed now. */
void
scheduler_probe_now(struct qmgr *q, struct qmsg *m)
{
	for (size_t i = 0; i < m->item.env.nrcpts; i++) {
		struct dest *d = dest_of(q, m, i);
		if (d)
			dest_probe_now(d, uv_now(q->loop));
	}
}
