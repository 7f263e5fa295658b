/*
 * qmgr_unsettled: for list, mailq and show, the messages the workers
 * acknowledged that this queue manager may not have been told of yet: the
 * queue backend's unsettled (queue.h; the wal backend's records before and
 * just after their checkpoint, docs/queue.md "What users see"). They are
 * read on the pool before the listing walks the table and the disk, and
 * kept sorted by id; the listing marks those it shows itself, and shows
 * the others at its end. So a message is listed once from its 250 on,
 * whether it was announced before, during or after the listing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "qmgr_int.h"

struct qmgr_unsettled {
	uv_work_t	 w;
	struct qmgr	*q;
	const struct queue_backend *backend;
	struct qmsg	**m;
	unsigned char	*shown;
	size_t		 n, cap;
	char		 only[QUEUE_ID_LEN + 1];	/* show: this id, else "" */
	qmgr_unsettled_fn done;
	void		*arg;
};

/* The backend's fn (on the pool): one message, kept unless filtered out. */
static int
collect(void *arg, struct queue_item *qi)
{
	struct qmgr_unsettled *u = arg;

	if (u->only[0] && strcmp(qi->env.id, u->only) != 0)
		return 0;
	if (u->n == u->cap) {
		u->cap = u->cap ? u->cap * 2 : 16;
		u->m = xrealloc(u->m, u->cap * sizeof(*u->m));
	}
	u->m[u->n++] = qmsg_new(u->q, qi);
	return 0;
}

static int
by_id(const void *a, const void *b)
{
	return strcmp((*(struct qmsg *const *)a)->item.env.id,
	    (*(struct qmsg *const *)b)->item.env.id);
}

static void
do_read(uv_work_t *w)
{
	struct qmgr_unsettled *u = w->data;

	(void)u->backend->unsettled(&u->q->qs, collect, u);
	if (u->n)
		qsort(u->m, u->n, sizeof(*u->m), by_id);
	u->shown = xcalloc(u->n ? u->n : 1, 1);
}

static void
after_read(uv_work_t *w, int status)
{
	struct qmgr_unsettled *u = w->data;

	(void)status;
	u->q->io_pending--;
	u->done(u->q, u, u->arg);
}

/*
 * Reads the unsettled messages (only those of id only, if not NULL), then
 * done(q, u, arg) on the loop; at once when the backend has none to give.
 */
void
qmgr_unsettled_read(struct qmgr *q, const char *only, qmgr_unsettled_fn done,
    void *arg)
{
	struct qmgr_unsettled *u = xcalloc(1, sizeof(*u));

	u->w.data = u;
	u->q = q;
	u->backend = queue_backend_of(q->cfg->queue_backend);
	u->done = done;
	u->arg = arg;
	if (only)
		snprintf(u->only, sizeof(u->only), "%s", only);
	if (u->backend->unsettled == NULL) {
		u->shown = xcalloc(1, 1);
		done(q, u, arg);
		return;
	}
	q->io_pending++;
	uv_queue_work(q->loop, &u->w, do_read, after_read);
}

/* The listing showed id itself. */
void
qmgr_unsettled_shown(struct qmgr_unsettled *u, const char *id)
{
	size_t lo = 0, hi = u->n, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(id, u->m[mid]->item.env.id)) == 0) {
			u->shown[mid] = 1;
			return;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
}

/* fn(q, m, arg) for each message the listing did not show, then frees u. */
void
qmgr_unsettled_rest(struct qmgr *q, struct qmgr_unsettled *u,
    void (*fn)(struct qmgr *, struct qmsg *, void *), void *arg)
{
	for (size_t i = 0; i < u->n; i++) {
		if (!u->shown[i])
			fn(q, u->m[i], arg);
		qmsg_free(u->m[i]);
	}
	free(u->m);
	free(u->shown);
	free(u);
}
