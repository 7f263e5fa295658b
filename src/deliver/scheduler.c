/*
 * scheduler: which recipients start now. Walks the table for messages
 * that are due and not held, groups their ready recipients into local
 * jobs and remote jobs (one per destination and login), and keeps the
 * limits: delivery.conc_local, conc_remote and conc_domain (the count of
 * jobs per destination, which it owns). Runs soon after anything changes
 * and every second (the tick), never while draining or paused.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/xalloc.h"
#include "../mail/address.h"
#include "qmgr_int.h"

struct dcount {
	struct dcount	*next;
	char		*key;
	int		 n;
};

struct scheduler {
	struct qmgr	*q;
	int		 running_local, running_remote;
	struct dcount	*dests;
	int		 draining;
	int		 scheduled;	/* soon is started */
	uv_idle_t	 soon;
	int		 ticks;
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

static struct dcount *
dest(struct scheduler *s, const char *key, int create)
{
	struct dcount *d;

	for (d = s->dests; d; d = d->next)
		if (strcmp(d->key, key) == 0)
			return d;
	if (!create)
		return NULL;
	d = xcalloc(1, sizeof(*d));
	d->key = xstrdup(key);
	d->next = s->dests;
	s->dests = d;
	return d;
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
	s->running_remote++;
	dest(s, key, 1)->n++;
}

void
scheduler_remote_ended(struct scheduler *s, const char *key)
{
	s->running_remote--;
	dest(s, key, 1)->n--;
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

static void
schedule_remote(struct scheduler *s, struct qmsg *m)
{
	struct qmgr *q = s->q;
	struct buf key = BUF_INIT;

	for (size_t i = 0; i < m->item.env.nrcpts; i++) {
		const struct route_conf *rc;
		struct dcount *d;
		size_t *idx, n;

		if (!ready(q, m, i) || qmgr_route_is_local(q, m, i))
			continue;
		if (s->running_remote >= q->cfg->delivery.conc_remote)
			break;
		qmgr_route_dest_key(q, m, i, &rc, &key);
		d = dest(s, buf_cstr(&key), 0);
		if (d && d->n >= q->cfg->delivery.conc_domain)
			continue;
		idx = remote_batch(q, m, i, rc, buf_cstr(&key), &n);
		qmgr_remote_start(q, m, rc, buf_cstr(&key), idx, n);
	}
	buf_free(&key);
}

static void
run_queue(struct scheduler *s)
{
	struct qmgr *q = s->q;
	uint64_t now = uv_now(q->loop);

	if (s->draining || q->cfg->delivery.paused)
		return;
	for (struct qmsg *m = qmgr_table_first(q->table), *next; m; m = next) {
		next = m->next;
		if (m->hold || m->next_try > now)
			continue;
		schedule_local(s, m);
		schedule_remote(s, m);
		if (s->running_local >= q->cfg->delivery.conc_local &&
		    s->running_remote >= q->cfg->delivery.conc_remote)
			break;
	}
}

static void
on_soon(uv_idle_t *h)
{
	struct scheduler *s = h->data;

	uv_idle_stop(h);
	s->scheduled = 0;
	run_queue(s);
}

/* Runs the scheduler once the loop has nothing else to do. */
void
scheduler_soon(struct qmgr *q)
{
	struct scheduler *s = q->sched;

	if (!s->scheduled) {
		s->scheduled = 1;
		uv_idle_start(&s->soon, on_soon);
	}
}

/* Every second: due retries, idle connections, old tombstones. */
void
scheduler_tick(struct qmgr *q)
{
	struct scheduler *s = q->sched;

	run_queue(s);
	remote_sweep(q->remote, 5000);
	qmgr_table_sweep(q->table, uv_now(q->loop));
	if (++s->ticks % 60 == 0)	/* catch anything a lost datagram missed */
		qmgr_load_all(q);
}
