/*
 * qmgr_list: every queue's ids, listed at start and when the master says
 * a worker died (qmgr_notify). The listing runs on the pool and hands the
 * ids to the loop in batches of LIST_BATCH (an async handle); there each
 * becomes a compact entry (qmgr_wait.c), due now unless the retry index
 * (qmgr_index.c) says later, or parked again on a destination that was
 * down. At most LIST_AHEAD batches wait for the loop, the pool waiting
 * when there are more: a listing of millions holds a few hundred KiB of
 * ids at a time, not every id twice (docs/queue.md "The active set").
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/xalloc.h"
#include "qmgr_int.h"

#define LIST_BATCH	4096	/* ids handed to the loop at once */
#define LIST_AHEAD	4	/* batches handed over and not yet taken */

struct list_batch {
	struct list_batch *next;
	size_t		 n;
	struct {
		int	 queue;
		char	 id[QUEUE_ID_LEN + 1];
	} v[LIST_BATCH];
};

struct list_job {
	uv_work_t	 w;
	uv_async_t	 async;		/* a batch is ready */
	struct qmgr	*q;
	pthread_mutex_t	 mu;		/* guards ready, tail, nready */
	pthread_cond_t	 taken;
	struct list_batch *ready, **tail;
	size_t		 nready;
	struct list_batch *cur;		/* being filled, on the pool */
	/* read on the pool before the listing; looked up by the loop, while
	 * the pool marks which lines were listed and rewrites the file */
	struct qmgr_index *index;
	unsigned char	*listed;	/* the pool's */
	size_t		 n;		/* ids taken in, the loop's */
	int		 first;		/* the start's, not a worker's death */
};

/* ---- on the pool --------------------------------------------------------- */

/* The batch being filled to the loop; waits while LIST_AHEAD are there. */
static void
hand_over(struct list_job *j)
{
	struct list_batch *b = j->cur;

	if (b == NULL)
		return;
	j->cur = NULL;
	if (j->listed)
		for (size_t i = 0; i < b->n; i++)
			qmgr_index_mark(j->index, b->v[i].id, j->listed);
	pthread_mutex_lock(&j->mu);
	while (j->nready >= LIST_AHEAD)
		pthread_cond_wait(&j->taken, &j->mu);
	*j->tail = b;
	j->tail = &b->next;
	j->nready++;
	pthread_mutex_unlock(&j->mu);
	uv_async_send(&j->async);
}

static int
list_one(void *arg, int queue, const char *id)
{
	struct list_job *j = arg;
	struct list_batch *b = j->cur;

	if (b == NULL) {
		b = j->cur = xmalloc(sizeof(*b));
		b->next = NULL;
		b->n = 0;
	}
	b->v[b->n].queue = queue;
	snprintf(b->v[b->n].id, sizeof(b->v[b->n].id), "%s", id);
	if (++b->n == LIST_BATCH)
		hand_over(j);
	return 0;
}

/*
 * At start: the removals a crash left in done/, the retry index read,
 * every id, the index rewritten with the lines of the ids listed. On a
 * worker's death: the ids only (what it did not announce is due now).
 */
static void
do_list(uv_work_t *w)
{
	struct list_job *j = w->data;

	if (j->first) {
		queue_clean_done(&j->q->qs);
		j->index = qmgr_index_read(&j->q->qs);
		j->listed = xcalloc(qmgr_index_lines(j->index) + 1, 1);
	} else
		j->index = qmgr_index_empty();
	queue_list(&j->q->qs, list_one, j);
	hand_over(j);
	if (j->first) {
		qmgr_index_compact(&j->q->qs, j->index, j->listed);
		free(j->listed);
	}
}

/* ---- on the loop --------------------------------------------------------- */

/*
 * A listed message: an entry due when the index says (now if it does not
 * know), parked again if a destination down held it (qmgr_index_restore).
 */
static void
listed_entry(struct qmgr *q, const struct qmgr_index *x, int queue,
    const char *id, uint64_t now, long long wall)
{
	const char *key;
	long long received, at = qmgr_index_find(x, id, &key, &received);
	uint64_t due = at > wall ? now + (uint64_t)(at - wall) * 1000 : now;
	struct qwait *e;

	if (qmgr_table_find(q->table, id))
		return;
	e = qmgr_wait_add(q->wait, queue, id, due,
	    at ? QW_DEFERRED : QW_JOURNAL);
	if (e && key)
		qmgr_index_restore(q, e, key, at, received);
}

/* The batches handed over: entries. */
static void
take(struct list_job *j)
{
	uint64_t now = uv_now(j->q->loop);
	long long wall = (long long)time(NULL);
	struct list_batch *b, *next;

	pthread_mutex_lock(&j->mu);
	b = j->ready;
	j->ready = NULL;
	j->tail = &j->ready;
	j->nready = 0;
	pthread_cond_signal(&j->taken);
	pthread_mutex_unlock(&j->mu);
	for (; b; b = next) {
		next = b->next;
		for (size_t i = 0; i < b->n; i++)
			listed_entry(j->q, j->index, b->v[i].queue, b->v[i].id,
			    now, wall);
		j->n += b->n;
		free(b);
	}
}

static void
on_ready(uv_async_t *a)
{
	take(a->data);
}

static void
free_job(uv_handle_t *h)
{
	struct list_job *j = h->data;

	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->taken);
	free(j);
}

static void
after_list(uv_work_t *w, int status)
{
	struct list_job *j = w->data;
	struct qmgr *q = j->q;
	size_t later, parked;

	(void)status;
	q->io_pending--;
	take(j);			/* the last batches */
	if (j->first) {
		qmgr_index_reopen(q);	/* compacted: a new file */
		qmgr_index_started(q, j->index);
	}
	later = qmgr_index_count(j->index, &parked);
	log_event(LOG_INFO, "queue_scanned", "messages=%zu due_later=%zu "
	    "parked=%zu active_limit=%d", j->n, later - parked, parked,
	    q->cfg->delivery.active_limit);
	qmgr_index_free(j->index);
	if (j->first)		/* the index's memory (a million lines: 56 MB),
				 * freed here and on the pool, back to the
				 * system: not held by malloc all the while */
		malloc_trim(0);
	uv_close((uv_handle_t *)&j->async, free_job);	/* frees j */
	qmgr_fill(q);
}

void
qmgr_load_all(struct qmgr *q)
{
	static int started;
	struct list_job *j = xcalloc(1, sizeof(*j));

	j->w.data = j;
	j->async.data = j;
	j->q = q;
	j->tail = &j->ready;
	j->first = !started++;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->taken, NULL);
	uv_async_init(q->loop, &j->async, on_ready);
	q->io_pending++;
	uv_queue_work(q->loop, &j->w, do_list, after_list);
}
