/*
 * qmgr_compact: the queue manager's side of the segment backend's upkeep
 * (docs/queue.md "The segment backend", "Compaction"). Every SWEEP_TICKS
 * seconds, on the pool: segments whose records are all dead go
 * (queue_segment_sweep), and the messages of segments due for compaction
 * are listed (queue_segment_compactable). Back on the loop, each listed
 * message is claimed: an idle one in the active set leaves it for its
 * entry (scheduler_evict: parked if its destination is down), and its
 * entry is marked moving (QW_MOVING: not loaded until the move ends; a
 * parked one stays parked). A message that is busy (a job, a bounce, its
 * removal) or being loaded is left for a later round. Then, on the pool,
 * the claimed ones are written out as files (queue_segment_move), and
 * their entries are released: from then on they are read from mess/.
 *
 * Nothing else holds a copy of a claimed message's item: the active set
 * does not have it, and the control commands' walks (qmgr_disk.c), which
 * read messages outside the active set, do not run at the same time: a
 * round is not started while a walk runs, and a walk waits for a round to
 * end before it reads.
 */
#include <stdlib.h>

#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "qmgr_int.h"

#define SWEEP_TICKS	10		/* seconds between rounds */
#define COMPACT_MAX	20000		/* messages claimed per round */

struct compact_job {
	uv_work_t	 w;
	struct qmgr	*q;
	struct queue_moves mv;
	size_t		 moved;
};

/*
 * A test hook: INDIMAIL_TEST_COMPACT_AFTER_S (queue_segment_compact.c)
 * also makes a round every second.
 */
static unsigned
sweep_ticks(void)
{
	const char *e = getenv("INDIMAIL_TEST_COMPACT_AFTER_S");

	return e && *e ? 1 : SWEEP_TICKS;
}

static void
job_done(struct compact_job *j)
{
	j->q->io_pending--;
	j->q->sweeping = 0;
	queue_moves_free(&j->mv);
	free(j);
}

static void
do_move(uv_work_t *w)
{
	struct compact_job *j = w->data;

	j->moved = queue_segment_move(&j->q->qs, &j->mv);
}

/* The moves are over: the entries are loaded again when due, from mess/. */
static void
after_move(uv_work_t *w, int status)
{
	struct compact_job *j = w->data;
	struct qmgr *q = j->q;

	(void)status;
	for (size_t i = 0; i < j->mv.n; i++) {
		struct qwait *e = qmgr_wait_find(q->wait, j->mv.m[i].id);
		if (e && (e->flags & QW_MOVING))
			qmgr_wait_moving(q->wait, e, 0);
	}
	log_event(LOG_INFO, "segment_compacted", "messages=%zu moved=%zu "
	    "segments=%zu", j->mv.n, j->moved, j->mv.segments);
	q->compacting = 0;
	job_done(j);
	scheduler_changed(q, NULL);
}

/* Whether id can be moved now; if so its entry is marked moving. */
static int
claim(struct qmgr *q, const char *id)
{
	struct qmsg *m = qmgr_table_find(q->table, id);
	struct qwait *e;

	if (m && !qmgr_evictable(m))
		return 0;
	if (m)
		scheduler_evict(q, m);
	e = qmgr_wait_find(q->wait, id);
	if (e == NULL || (e->flags & (QW_LOADING | QW_MOVING)))
		return 0;
	qmgr_wait_moving(q->wait, e, 1);
	return 1;
}

static void
after_plan(uv_work_t *w, int status)
{
	struct compact_job *j = w->data;
	struct qmgr *q = j->q;
	size_t k = 0;

	(void)status;
	/* a control command's walk may hold copies: the next round */
	for (size_t i = 0; q->walks == 0 && i < j->mv.n; i++)
		if (claim(q, j->mv.m[i].id))
			j->mv.m[k++] = j->mv.m[i];
	j->mv.n = k;
	if (k == 0) {
		job_done(j);
		return;
	}
	q->compacting = 1;
	log_event(LOG_DEBUG, "segment_compacting", "messages=%zu", k);
	uv_queue_work(q->loop, &j->w, do_move, after_move);
}

static void
do_plan(uv_work_t *w)
{
	struct compact_job *j = w->data;

	queue_segment_sweep(&j->q->qs);
	queue_segment_compactable(COMPACT_MAX, &j->mv);
}

void
qmgr_compact_tick(struct qmgr *q)
{
	struct compact_job *j;

	if (q->qs.backend != &queue_segment || q->sweeping || q->draining ||
	    ++q->ticks % sweep_ticks() != 0)
		return;
	j = xcalloc(1, sizeof(*j));
	j->w.data = j;
	j->q = q;
	q->sweeping = 1;
	q->io_pending++;
	uv_queue_work(q->loop, &j->w, do_plan, after_plan);
}
