/*
 * qmgr_table: the active set, the messages the queue manager holds whole
 * (at most delivery.active_limit; the others are qmgr_wait.c's), by id (a
 * hash table) and as the list the scheduler walks, oldest first. A
 * removed message becomes a tombstone: off the list, still found by id for
 * two minutes, so that neither a scan that listed it just before its
 * removal nor a late notification can bring it back and deliver it again.
 *
 * Beside the live list, two ready lists (local, remote) hold the messages
 * the scheduler found due with a recipient ready for that kind of job, in
 * the order they were put on, so that a pass after a job ends looks at
 * those only (scheduler.c).
 */
#include <stdlib.h>
#include <string.h>

#include "../lib/hash.h"
#include "../lib/xalloc.h"
#include "qmgr_int.h"

#define NBUCKETS 65536

struct qmgr_table {
	struct qmsg	*msgs, *last;	/* oldest first */
	struct qmsg	*tombstones;	/* removed, still in the id table */
	struct qmsg	*bucket[NBUCKETS];
	size_t		 nmsgs;
	struct qmsg	*ready_head[QREADY_KINDS], *ready_tail[QREADY_KINDS];
};

struct qmgr_table *
qmgr_table_new(void)
{
	return xcalloc(1, sizeof(struct qmgr_table));
}

static unsigned
bucket_of(const char *id)
{
	return hash_fnv1a(id) % NBUCKETS;
}

struct qmsg *
qmgr_table_find(struct qmgr_table *t, const char *id)
{
	for (struct qmsg *m = t->bucket[bucket_of(id)]; m; m = m->hnext)
		if (strcmp(m->item.env.id, id) == 0)
			return m;
	return NULL;
}

/* Where a message stands, for indimail_queue_messages. */
static enum mm_queue_state
state_of(const struct qmsg *m)
{
	if (m->hold)
		return MM_QUEUE_HELD;
	if (m->busy > 0)
		return MM_QUEUE_ACTIVE;
	return m->attempts > 0 || m->retry_at > 0 ? MM_QUEUE_DEFERRED :
	    MM_QUEUE_INCOMING;
}

/*
 * The active set is walked (it is bounded by delivery.active_limit); the
 * messages outside it are counted as they change (qmgr_wait.c).
 */
void
qmgr_table_gauges(const struct qmgr_table *t, const struct qmgr_wait *w,
    int nqueues)
{
	long n[MAIL_METRICS_QUEUES_MAX][MM_QUEUE_NSTATES];

	memset(n, 0, sizeof(n));
	qmgr_wait_counts(w, n, nqueues);
	for (const struct qmsg *m = t->msgs; m; m = m->next)
		if (!m->retired && m->item.queue >= 0 &&
		    m->item.queue < MAIL_METRICS_QUEUES_MAX)
			n[m->item.queue][state_of(m)]++;
	for (int q = 0; q < nqueues && q < MAIL_METRICS_QUEUES_MAX; q++)
		for (int st = 0; st < MM_QUEUE_NSTATES; st++)
			metric_set(mail_metrics_queue(q, (enum mm_queue_state)st),
			    n[q][st]);
}

void
qmgr_table_add(struct qmgr_table *t, struct qmsg *m)
{
	unsigned b = bucket_of(m->item.env.id);

	m->hnext = t->bucket[b];
	t->bucket[b] = m;
	m->next = NULL;
	m->prev = t->last;
	if (t->last)
		t->last->next = m;
	else
		t->msgs = m;
	t->last = m;
	t->nmsgs++;
}

struct qmsg *
qmgr_table_first(struct qmgr_table *t)
{
	return t->msgs;
}

size_t
qmgr_table_count(const struct qmgr_table *t)
{
	return t->nmsgs;
}

static void
unhash(struct qmgr_table *t, struct qmsg *m)
{
	struct qmsg **pp = &t->bucket[bucket_of(m->item.env.id)];

	while (*pp && *pp != m)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = m->hnext;
}

void
qmgr_table_ready(struct qmgr_table *t, struct qmsg *m, int kind, int on)
{
	if (m->listed[kind] == on)
		return;
	m->listed[kind] = (unsigned char)on;
	if (on) {
		m->rnext[kind] = NULL;
		m->rprev[kind] = t->ready_tail[kind];
		if (t->ready_tail[kind])
			t->ready_tail[kind]->rnext[kind] = m;
		else
			t->ready_head[kind] = m;
		t->ready_tail[kind] = m;
		return;
	}
	if (m->rprev[kind])
		m->rprev[kind]->rnext[kind] = m->rnext[kind];
	else
		t->ready_head[kind] = m->rnext[kind];
	if (m->rnext[kind])
		m->rnext[kind]->rprev[kind] = m->rprev[kind];
	else
		t->ready_tail[kind] = m->rprev[kind];
	m->rnext[kind] = m->rprev[kind] = NULL;
}

struct qmsg *
qmgr_table_ready_first(struct qmgr_table *t, int kind)
{
	return t->ready_head[kind];
}

/* Off the list of live messages and the ready lists; still found by id
 * (see tombstone). */
static void
unlist(struct qmgr_table *t, struct qmsg *m)
{
	for (int k = 0; k < QREADY_KINDS; k++)
		qmgr_table_ready(t, m, k, 0);
	if (m->prev)
		m->prev->next = m->next;
	else
		t->msgs = m->next;
	if (m->next)
		m->next->prev = m->prev;
	else
		t->last = m->prev;
	t->nmsgs--;
}

void
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

void
qmgr_table_remove(struct qmgr_table *t, struct qmsg *m)
{
	unlist(t, m);
	unhash(t, m);
}

/* The message was removed: see the head comment. */
void
qmgr_table_tombstone(struct qmgr_table *t, struct qmsg *m, uint64_t now)
{
	unlist(t, m);
	m->removed_at = now;
	m->next = t->tombstones;
	t->tombstones = m;
}

void
qmgr_table_sweep(struct qmgr_table *t, uint64_t now)
{
	for (struct qmsg **pp = &t->tombstones; *pp;) {
		struct qmsg *m = *pp;
		if (now - m->removed_at < 120 * 1000) {
			pp = &m->next;
			continue;
		}
		*pp = m->next;
		unhash(t, m);
		qmsg_free(m);
	}
}

void
qmsg_log(struct logline *l, enum log_level lvl, const char *event,
    const struct qmsg *m)
{
	log_begin(l, lvl, event);
	log_kv(l, "qid", m->item.env.id);
}
