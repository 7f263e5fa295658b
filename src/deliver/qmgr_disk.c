/*
 * qmgr_disk: the control commands' walk over messages outside the active
 * set. A snapshot of their ids is read from the queue in batches of
 * DISK_BATCH on the pool (envelope and journal, as a load does), and each
 * message read is handed to the command on the loop, batch after batch,
 * so `queue list` or `hold ALL domain=...` on a million messages neither
 * blocks the loop nor holds them all in memory at once. A message loaded
 * into the active set meanwhile is handed over from there (entry NULL); one
 * gone (delivered, removed) is skipped. One whose load into the active set
 * is under way when its batch comes back waits for that load (rounds of
 * LOADING_WAIT_MS after the last batch), and is then handed over from the
 * table, or with its entry if the load left it waiting. A walk does not
 * read while the segment backend's compaction moves messages (its copies
 * would be of where they were: qmgr_compact.c), and none starts while a
 * walk runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "qmgr_int.h"

#define DISK_BATCH	256
#define LOADING_WAIT_MS	10
#define LOADING_ROUNDS	500	/* 5 s for a load, then it is left out */

struct disk_id {
	int		 queue;
	char		 id[QUEUE_ID_LEN + 1];
	struct qmsg	*m;
};

struct disk_walk {
	uv_work_t	 w;
	uv_timer_t	 timer;			/* waiting for loads */
	struct qmgr	*q;
	struct disk_id	*ids;
	size_t		 n, cap, pos, end;	/* this batch: ids[pos..end) */
	struct disk_id	*loading;		/* read while being loaded */
	size_t		 nloading, caploading;
	int		 rounds;
	qmgr_disk_fn	 fn;
	qmgr_disk_end_fn end_fn;
	void		*arg;
};

static void
snapshot_one(struct qwait *e, void *arg)
{
	struct disk_walk *dw = arg;

	if (dw->n == dw->cap) {
		dw->cap = dw->cap ? dw->cap * 2 : DISK_BATCH;
		dw->ids = xrealloc(dw->ids, dw->cap * sizeof(*dw->ids));
	}
	dw->ids[dw->n].queue = e->queue;
	snprintf(dw->ids[dw->n].id, sizeof(dw->ids[dw->n].id), "%s", e->id);
	dw->ids[dw->n].m = NULL;
	dw->n++;
}

static void
do_batch(uv_work_t *w)
{
	struct disk_walk *dw = w->data;

	for (size_t i = dw->pos; i < dw->end; i++)
		dw->ids[i].m = qmgr_read(dw->q, dw->ids[i].queue, dw->ids[i].id);
}

static void next_batch(struct disk_walk *);

static void
wait_for_load(struct disk_walk *dw, const struct disk_id *d)
{
	if (dw->nloading == dw->caploading) {
		dw->caploading = dw->caploading ? dw->caploading * 2 : 16;
		dw->loading = xrealloc(dw->loading,
		    dw->caploading * sizeof(*dw->loading));
	}
	dw->loading[dw->nloading++] = *d;
}

/*
 * One message read: from the table if it is there now, else from disk;
 * one still being loaded waits for its load (its copy kept meanwhile).
 */
static void
hand_over(struct disk_walk *dw, struct disk_id *d)
{
	struct qmgr *q = dw->q;
	struct qmsg *tm = qmgr_table_find(q->table, d->id);
	struct qwait *e = qmgr_wait_find(q->wait, d->id);

	if (tm && tm->removed_at == 0) {
		if (d->m)
			qmsg_free(d->m);
		dw->fn(q, tm, NULL, dw->arg);
	} else if (d->m && e && (e->flags & (QW_LOADING | QW_MOVING)) &&
	    dw->rounds < LOADING_ROUNDS)
		wait_for_load(dw, d);
	else if (d->m && e && !(e->flags & (QW_LOADING | QW_MOVING)))
		dw->fn(q, d->m, e, dw->arg);
	else if (d->m) {	/* gone, or its load never ended */
		if (e)
			log_event(LOG_WARN, "queue_walk_skipped", "qid=%s "
			    "reason=\"still loading after %d ms\"", d->id,
			    LOADING_ROUNDS * LOADING_WAIT_MS);
		qmsg_free(d->m);
	}
}

static void
after_batch(uv_work_t *w, int status)
{
	struct disk_walk *dw = w->data;

	(void)status;
	dw->q->io_pending--;
	for (size_t i = dw->pos; i < dw->end; i++)
		hand_over(dw, &dw->ids[i]);
	dw->pos = dw->end;
	next_batch(dw);
}

static void
free_walk(uv_handle_t *h)
{
	struct disk_walk *dw = h->data;

	free(dw->loading);
	free(dw->ids);
	free(dw);
}

/* A round: those whose load was under way, handed over again. */
static void
on_loading_wait(uv_timer_t *t)
{
	struct disk_walk *dw = t->data;
	struct disk_id *ids = dw->loading;
	size_t n = dw->nloading;

	dw->loading = NULL;
	dw->nloading = dw->caploading = 0;
	dw->rounds++;
	for (size_t i = 0; i < n; i++)
		hand_over(dw, &ids[i]);
	free(ids);
	next_batch(dw);
}

static void
on_compact_wait(uv_timer_t *t)
{
	next_batch(t->data);
}

static void
next_batch(struct disk_walk *dw)
{
	if (dw->q->compacting) {	/* its moves first (qmgr_compact.c) */
		uv_timer_start(&dw->timer, on_compact_wait, LOADING_WAIT_MS, 0);
		return;
	}
	if (dw->pos >= dw->n && dw->nloading > 0) {
		uv_timer_start(&dw->timer, on_loading_wait, LOADING_WAIT_MS, 0);
		return;
	}
	if (dw->pos >= dw->n) {
		dw->q->walks--;
		dw->end_fn(dw->q, dw->arg);
		uv_close((uv_handle_t *)&dw->timer, free_walk);
		return;
	}
	dw->end = dw->pos + DISK_BATCH < dw->n ? dw->pos + DISK_BATCH : dw->n;
	dw->q->io_pending++;
	uv_queue_work(dw->q->loop, &dw->w, do_batch, after_batch);
}

/*
 * fn(q, m, e, arg) for every message outside the active set (m read from
 * disk, fn's to free or keep; e its entry; or e NULL and m the table's,
 * loaded meanwhile), or only for the nids ids if ids is not NULL; then
 * end_fn(q, arg).
 */
void
qmgr_disk_walk(struct qmgr *q, const char (*ids)[QUEUE_ID_LEN + 1],
    size_t nids, qmgr_disk_fn fn, qmgr_disk_end_fn end_fn, void *arg)
{
	struct disk_walk *dw = xcalloc(1, sizeof(*dw));
	struct qwait *e;

	dw->w.data = dw;
	uv_timer_init(q->loop, &dw->timer);
	dw->timer.data = dw;
	dw->q = q;
	dw->fn = fn;
	dw->end_fn = end_fn;
	dw->arg = arg;
	q->walks++;
	if (ids == NULL)
		qmgr_wait_each(q->wait, snapshot_one, dw);
	for (size_t i = 0; ids && i < nids; i++)
		if ((e = qmgr_wait_find(q->wait, ids[i])) != NULL)
			snapshot_one(e, dw);
	next_batch(dw);
}

/*
 * m, read for a command, joins the active set in place of its entry e
 * (the command changes it; if it is then idle and not due, the next walk
 * of the scheduler under pressure moves it out again).
 */
void
qmgr_disk_adopt(struct qmgr *q, struct qmsg *m, struct qwait *e)
{
	m->next_try = e->due;
	if (e->flags & QW_HELD)
		m->hold = 1;
	qmgr_wait_del(q->wait, e);
	qmgr_table_add(q->table, m);
}
