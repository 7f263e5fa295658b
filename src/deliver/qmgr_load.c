/*
 * qmgr_load: messages from the queue into the table. A scan of every
 * queue at start (and every minute, for anything a lost datagram missed),
 * or the messages the SMTP workers announce by datagram. Files are read
 * and their journals applied on the pool; the loop adds what is not in
 * the table already (a tombstone counts: it must not come back).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../lib/xalloc.h"
#include "qmgr_int.h"

struct load_item {
	int		 queue;
	char		 id[QUEUE_ID_LEN + 1];
	struct qmsg	*m;		/* result */
};

struct load_job {
	uv_work_t	 w;
	struct qmgr	*q;
	int		 scan_all;
	struct load_item *items;
	size_t		 n;
};

/* A message read from the queue, with its journal applied (on the pool). */
static struct qmsg *
qmsg_new(struct qmgr *q, struct queue_item *qi)
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
	jr.hold = m->item.env.hold != NULL;	/* until `queue release` says r */
	jr.final = xcalloc(n, 1);
	q->qs.backend->journal_read(&m->item, &jr);
	for (size_t i = 0; i < m->item.env.nrcpts; i++)
		m->st[i] = jr.final[i] ? RS_DONE : RS_PENDING;
	m->hold = jr.hold;
	m->attempts = jr.attempts;
	m->retry_at = jr.retry_at;
	free(jr.final);
	return m;
}

static struct qmsg *
load_one(struct qmgr *q, int queue, const char *id)
{
	struct queue_item qi;

	if (q->qs.backend->read(&q->qs, queue, id, &qi) < 0)
		return NULL;
	return qmsg_new(q, &qi);
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
	j->items[j->n].m = qmsg_new(j->q, qi);
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
			queue_clean_done(&j->q->qs);
		queue_scan(&j->q->qs, scan_one, j);
		return;
	}
	for (size_t i = 0; i < j->n; i++)
		j->items[i].m = load_one(j->q, j->items[i].queue,
		    j->items[i].id);
}

/* Into the table, unless it is there (or a tombstone) already. */
static int
load_add(struct qmgr *q, struct qmsg *m)
{
	if (qmgr_table_find(q->table, m->item.env.id)) {
		qmsg_free(m);
		return 0;
	}
	m->next_try = uv_now(q->loop);
	if (m->retry_at > (long long)time(NULL))	/* keep the schedule */
		m->next_try += (uint64_t)(m->retry_at - time(NULL)) * 1000;
	qmgr_table_add(q->table, m);
	qmgr_maybe_done(q, m);	/* every outcome journaled, removal lost */
	return 1;
}

static void
after_load(uv_work_t *w, int status)
{
	struct load_job *j = w->data;
	struct qmgr *q = j->q;
	int added = 0;

	(void)status;
	q->io_pending--;
	for (size_t i = 0; i < j->n; i++) {
		if (j->items[i].m == NULL) {
			if (!j->scan_all)	/* a scan logs its own failures */
				log_event(LOG_WARN, "queue_file_unreadable",
				    "queue=%d qid=%s", j->items[i].queue,
				    j->items[i].id);
			continue;
		}
		added += load_add(q, j->items[i].m);
	}
	if (j->scan_all)
		log_event(LOG_INFO, "queue_scanned", "messages=%zu",
		    qmgr_table_count(q->table));
	free(j->items);
	free(j);
	if (added)
		scheduler_soon(q);
}

static void
load(struct qmgr *q, int scan_all, struct load_item *items, size_t n)
{
	struct load_job *j = xcalloc(1, sizeof(*j));

	j->w.data = j;
	j->q = q;
	j->scan_all = scan_all;
	j->items = items;
	j->n = n;
	q->io_pending++;
	uv_queue_work(q->loop, &j->w, do_load, after_load);
}

/* Every queue, with the removals a crash left in done/ first (once). */
void
qmgr_load_all(struct qmgr *q)
{
	load(q, 1, NULL, 0);
}

void
qmgr_load_one(struct qmgr *q, int queue, const char *id)
{
	struct load_item *item = xcalloc(1, sizeof(*item));

	item->queue = queue;
	snprintf(item->id, sizeof(item->id), "%s", id);
	load(q, 0, item, 1);
}

/* The datagrams waiting on fd ("QUEUE ID" each), loaded as one job. */
void
qmgr_notify(struct qmgr *q, int fd)
{
	struct load_item *items = NULL;
	size_t n = 0;
	char dgram[128];
	ssize_t len;

	while ((len = recv(fd, dgram, sizeof(dgram) - 1, MSG_DONTWAIT)) > 0) {
		int queue;
		char id[QUEUE_ID_LEN + 1];
		dgram[len] = '\0';
		if (sscanf(dgram, "%d %24s", &queue, id) != 2 || queue < 0 ||
		    queue >= q->qs.count)
			continue;
		items = xrealloc(items, (n + 1) * sizeof(*items));
		memset(&items[n], 0, sizeof(*items));
		items[n].queue = queue;
		snprintf(items[n].id, sizeof(items[n].id), "%s", id);
		n++;
	}
	if (n)
		load(q, 0, items, n);
}
