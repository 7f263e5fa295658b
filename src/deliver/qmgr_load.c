/*
 * qmgr_load: messages from the queue into the active set (the table),
 * at most delivery.active_limit of them (docs/queue.md "The active set").
 * At start the queue is listed, not read (qmgr_list.c): every id becomes
 * a compact entry (qmgr_wait.c). A message the SMTP workers announce
 * becomes one too. Due entries are loaded
 * (envelope read, journal applied, on the pool) in batches while the
 * table has room; when it has none and entries are due, idle
 * messages that are not due leave it again (qmgr_evict). There is no
 * periodic rescan: the notifications cannot be lost (docs/delivery.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../lib/testhook.h"
#include "../lib/xalloc.h"
#include "qmgr_int.h"

#define LOAD_BATCH	512	/* envelopes read by one pool job */
/* A file still being written by its running writer is read again then. */
#define WRITING_RETRY_MS	1000

struct load_item {
	int		 queue;
	char		 id[QUEUE_ID_LEN + 1];
	uint64_t	 due;		/* its entry's: flush, release, the index */
	int		 journal;	/* QW_JOURNAL: the journal's schedule */
	struct qmsg	*m;		/* result */
	int		 writing;	/* no result: its file is being written */
	int		 dropped;	/* and its writer died: removed */
};

struct load_job {
	uv_work_t	 w;
	struct qmgr	*q;
	struct load_item *items;
	size_t		 n;
	unsigned	 delay_ms;	/* the specs' INDIMAIL_TEST_LOAD_DELAY_MS */
};


/* A message read from the queue, with its journal applied (on the pool). */
struct qmsg *
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

struct qmsg *
qmgr_read(struct qmgr *q, int queue, const char *id)
{
	struct queue_item qi;

	if (q->qs.backend->read(&q->qs, queue, id, &qi) < 0)
		return NULL;
	return qmsg_new(q, &qi);
}

/* ---- loading due entries --------------------------------------------------- */

static void
do_load(uv_work_t *w)
{
	struct load_job *j = w->data;

	if (j->delay_ms) {
		struct timespec ts = { j->delay_ms / 1000,
		    (long)(j->delay_ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	}
	for (size_t i = 0; i < j->n; i++) {
		struct load_item *it = &j->items[i];
		it->m = qmgr_read(j->q, it->queue, it->id);
		it->writing = it->m == NULL && errno == EINPROGRESS;
		if (it->writing && !queue_id_writer_alive(it->id)) {
			struct buf p = BUF_INIT;
			queue_mess_path(&j->q->qs, it->queue, it->id, &p);
			it->dropped = unlink(buf_cstr(&p)) == 0;
			it->writing = it->dropped;	/* else: unreadable */
			buf_free(&p);
		}
	}
}

/*
 * Into the table, unless it is there (or a tombstone) already. Due when
 * its entry was: that knows more than the journal's `t` line (a flush, a
 * release, a probe), and no less (the index or the journal set it);
 * unless the entry did not know (QW_JOURNAL: missing from the index).
 */
static void
load_add(struct qmgr *q, struct qmsg *m, const struct load_item *it)
{
	long long wall = (long long)time(NULL);

	if (qmgr_table_find(q->table, m->item.env.id)) {
		qmsg_free(m);
		return;
	}
	m->next_try = it->due;
	if (it->journal && m->retry_at > wall)	/* keep the schedule */
		m->next_try = uv_now(q->loop) +
		    (uint64_t)(m->retry_at - wall) * 1000;
	qmgr_table_add(q->table, m);
	qmgr_maybe_done(q, m);	/* every outcome journaled, removal lost */
	scheduler_changed(q, m);
}

/* Never skipped silently; it stays in the queue for an admin to see. */
static void
log_unreadable(struct qmgr *q, const struct load_item *it)
{
	struct buf p = BUF_INIT;

	queue_mess_path(&q->qs, it->queue, it->id, &p);
	log_event(LOG_WARN, "queue_file_unreadable", "path=%s qid=%s",
	    buf_cstr(&p), it->id);
	buf_free(&p);
}

static void
after_load(uv_work_t *w, int status)
{
	struct load_job *j = w->data;
	struct qmgr *q = j->q;

	(void)status;
	q->io_pending--;
	q->loading -= (int)j->n;
	for (size_t i = 0; i < j->n; i++) {
		struct load_item *it = &j->items[i];
		struct qwait *e = qmgr_wait_find(q->wait, it->id);
		if (e && it->writing && !it->dropped) {	/* its writer's */
			qmgr_wait_set(q->wait, e, uv_now(q->loop) +
			    WRITING_RETRY_MS, e->flags & ~QW_LOADING);
			continue;
		}
		if (e)
			qmgr_wait_del(q->wait, e);
		if (it->m)
			load_add(q, it->m, it);
		else if (it->dropped)
			log_event(LOG_INFO, "queue_incomplete_removed",
			    "qid=%s reason=\"its writer died before it was "
			    "complete\"", it->id);
		else if (!it->writing)
			log_unreadable(q, it);
	}
	free(j->items);
	free(j);
	/* under pressure a full pass moves out what is not due (its head) */
	if (qmgr_pressure(q))
		scheduler_soon(q);
	else
		scheduler_changed(q, NULL);
}

/* Room in the active set: the limit less the table and the loads. */
static size_t
room(struct qmgr *q)
{
	long n = (long)q->cfg->delivery.active_limit -
	    (long)qmgr_table_count(q->table) - q->loading;

	return n > 0 ? (size_t)n : 0;
}

/*
 * A test hook: INDIMAIL_TEST_LOAD_DELAY_MS in the environment makes every
 * load job wait that long on the pool first, so the specs can hold a load
 * open while a control command walks the queue (qmgr_disk.c).
 */
static unsigned
load_delay_ms(void)
{
	static struct test_hook delay = TEST_HOOK(
	    "INDIMAIL_TEST_LOAD_DELAY_MS", 0);

	return test_hook_ms(&delay);
}

/*
 * Due entries into the table while it has room. Not while delivery is
 * paused: nothing would be delivered, and reading every envelope that
 * arrives would only cost CPU (the mail waits, listed, in entries); the
 * scheduler fills the table again when a reload resumes delivery.
 */
void
qmgr_fill(struct qmgr *q)
{
	uint64_t now = uv_now(q->loop);
	struct qwait *e;

	if (q->cfg->delivery.paused)
		return;
	while (room(q) > 0 && qmgr_wait_due(q->wait, now)) {
		size_t n = 0, max = room(q) < LOAD_BATCH ? room(q) : LOAD_BATCH;
		struct load_job *j = xcalloc(1, sizeof(*j));

		j->items = xcalloc(max, sizeof(*j->items));
		while (n < max && (e = qmgr_wait_due(q->wait, now)) != NULL) {
			j->items[n].queue = e->queue;
			j->items[n].due = e->due;
			j->items[n].journal = e->flags & QW_JOURNAL;
			snprintf(j->items[n].id, sizeof(j->items[n].id), "%s",
			    e->id);
			qmgr_wait_set(q->wait, e, e->due, e->flags | QW_LOADING);
			n++;
		}
		j->w.data = j;
		j->q = q;
		j->n = n;
		j->delay_ms = load_delay_ms();
		q->loading += (int)n;
		q->io_pending++;
		uv_queue_work(q->loop, &j->w, do_load, after_load);
	}
}

int
qmgr_pressure(struct qmgr *q)
{
	return qmgr_table_count(q->table) + (size_t)q->loading >
	    (size_t)q->cfg->delivery.active_limit ||
	    (room(q) == 0 && qmgr_wait_due(q->wait, uv_now(q->loop)));
}

/* ---- leaving the active set ------------------------------------------------ */

/* Nothing runs for m and it is still in the queue. */
int
qmgr_evictable(const struct qmsg *m)
{
	return m->busy == 0 && !m->retired && m->removed_at == 0;
}

void
qmgr_evict(struct qmgr *q, struct qmsg *m, struct dest *d)
{
	unsigned flags = (m->hold ? QW_HELD : 0) |
	    (m->attempts > 0 || m->retry_at > 0 ? QW_DEFERRED : 0);
	struct qwait *e;

	qmgr_table_remove(q->table, m);
	e = qmgr_wait_add(q->wait, m->item.queue, m->item.env.id, m->next_try,
	    flags);
	if (e) {
		e->received = m->item.env.received;
		if (d && d->state != DEST_UP && !m->hold) {
			qmgr_wait_park(q->wait, e, d);
			qmgr_index_park(q, e, d);
		}
	}
	qmsg_free(m);
}

/* ---- notifications ----------------------------------------------------------- */

/* A message a worker announced ("QUEUE ID"): due now. */
void
qmgr_announced(struct qmgr *q, const char *line)
{
	int queue;
	char id[QUEUE_ID_LEN + 1];

	if (sscanf(line, "%d %24s", &queue, id) != 2 || queue < 0 ||
	    queue >= q->qs.count)
		return;
	if (qmgr_table_find(q->table, id) == NULL)
		qmgr_wait_add(q->wait, queue, id, uv_now(q->loop), 0);
}

/* One line of a datagram. */
static void
notify_line(struct qmgr *q, const char *line, int *scan)
{
	if (strcmp(line, QMGR_NOTIFY_SCAN) == 0)
		*scan = 1;
	else
		qmgr_announced(q, line);
}

void
qmgr_notify(struct qmgr *q, int fd)
{
	char dgram[QMGR_NOTIFY_MAX + 1];
	ssize_t len;
	int scan = 0;

	while ((len = recv(fd, dgram, QMGR_NOTIFY_MAX, MSG_DONTWAIT)) > 0) {
		char *line = dgram, *nl;
		dgram[len] = '\0';
		while ((nl = strchr(line, '\n')) != NULL) {
			*nl = '\0';
			notify_line(q, line, &scan);
			line = nl + 1;
		}
		if (*line)	/* one line without its newline */
			notify_line(q, line, &scan);
	}
	if (scan)
		qmgr_load_all(q);
	qmgr_fill(q);
}

/* A message queued by the queue manager itself (a bounce). */
void
qmgr_load_one(struct qmgr *q, int queue, const char *id)
{
	if (qmgr_table_find(q->table, id) == NULL)
		qmgr_wait_add(q->wait, queue, id, uv_now(q->loop), 0);
	qmgr_fill(q);
}
