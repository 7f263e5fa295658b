/*
 * qmgr_index: the retry index, <queue.path>/retry.idx, an append-only file
 * of "ID UNIXTIME" lines, one per deferral, so that a start knows when
 * each message is due without reading its envelope or journal
 * (docs/queue.md "The retry index"). It is a hint: the journal's `t`
 * record stays the truth. A message missing from the index (a lost
 * append, or a crash before it) is due at once and its journal then gives
 * its schedule; a line is written after its journal record, so the index
 * can lag, never run ahead. Read and rewritten (only the lines of
 * messages still queued and not yet due) on the pool at start; appended
 * on the loop thread by each deferral; rewritten from what the queue
 * manager knows once it holds INDEX_COMPACT_RATIO lines per message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/xalloc.h"
#include "qmgr_int.h"

#define INDEX_NAME	"retry.idx"
#define INDEX_COMPACT_MIN	1000	/* lines before a rewrite is considered */
#define INDEX_COMPACT_RATIO	4	/* lines per known message that trigger it */

struct index_line {
	char		 id[QUEUE_ID_LEN + 1];
	long long	 at;
	size_t		 seq;		/* line number: the last one wins */
};

struct qmgr_index {
	struct index_line *v;
	size_t		 n;
};

static void
index_path(const struct queue_set *qs, const char *suffix, struct buf *p)
{
	buf_printf(p, "%s/%s%s", qs->path, INDEX_NAME, suffix);
}

static int
by_id_then_seq(const void *a, const void *b)
{
	const struct index_line *x = a, *y = b;
	int c = strcmp(x->id, y->id);

	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static int
by_id(const void *key, const void *elem)
{
	return strcmp(key, ((const struct index_line *)elem)->id);
}

/* Keeps the last line of each id (the array is sorted by id, then seq). */
static void
keep_last(struct qmgr_index *x)
{
	size_t k = 0;

	for (size_t i = 0; i < x->n; i++) {
		if (k > 0 && strcmp(x->v[k - 1].id, x->v[i].id) == 0)
			k--;
		x->v[k++] = x->v[i];
	}
	x->n = k;
}

struct qmgr_index *
qmgr_index_empty(void)
{
	return xcalloc(1, sizeof(struct qmgr_index));
}

/* On the pool: the index as it is on disk (empty if there is none). */
struct qmgr_index *
qmgr_index_read(const struct queue_set *qs)
{
	struct qmgr_index *x = xcalloc(1, sizeof(*x));
	struct buf p = BUF_INIT;
	char line[80];
	size_t cap = 0;
	FILE *f;

	index_path(qs, "", &p);
	f = fopen(buf_cstr(&p), "r");
	buf_free(&p);
	while (f && fgets(line, sizeof(line), f)) {
		struct index_line l;
		if (sscanf(line, "%24s %lld", l.id, &l.at) != 2)
			continue;	/* a torn last line */
		if (x->n == cap) {
			cap = cap ? cap * 2 : 1024;
			x->v = xrealloc(x->v, cap * sizeof(*x->v));
		}
		l.seq = x->n;
		x->v[x->n++] = l;
	}
	if (f)
		fclose(f);
	if (x->n > 0)	/* qsort of a NULL array, even empty, is undefined */
		qsort(x->v, x->n, sizeof(*x->v), by_id_then_seq);
	keep_last(x);
	return x;
}

/* The Unix time id is due at, 0 if the index does not know it. */
long long
qmgr_index_find(const struct qmgr_index *x, const char *id)
{
	const struct index_line *l = x->n ? bsearch(id, x->v, x->n,
	    sizeof(*x->v), by_id) : NULL;

	return l ? l->at : 0;
}

size_t
qmgr_index_count(const struct qmgr_index *x)
{
	return x->n;
}

void
qmgr_index_free(struct qmgr_index *x)
{
	if (x == NULL)
		return;
	free(x->v);
	free(x);
}

/*
 * On the pool at start: keeps the lines of the listed messages (listed[]
 * says which index lines were) that are due later, in a new file renamed
 * over the old one; x shrinks to them.
 */
void
qmgr_index_compact(const struct queue_set *qs, struct qmgr_index *x,
    const unsigned char *listed)
{
	struct buf tmp = BUF_INIT, p = BUF_INIT, out = BUF_INIT;
	long long now = (long long)time(NULL);
	size_t k = 0;
	int fd;

	for (size_t i = 0; i < x->n; i++)
		if (listed[i] && x->v[i].at > now) {
			buf_printf(&out, "%s %lld\n", x->v[i].id, x->v[i].at);
			x->v[k++] = x->v[i];
		}
	x->n = k;
	index_path(qs, ".new", &tmp);
	index_path(qs, "", &p);
	fd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0640);
	if (fd >= 0 && write(fd, out.data ? out.data : "", out.len) ==
	    (ssize_t)out.len && close(fd) == 0)
		rename(buf_cstr(&tmp), buf_cstr(&p));
	else {
		if (fd >= 0)
			close(fd);
		log_event(LOG_WARN, "retry_index_failed", "path=%s error=\"%s\"",
		    buf_cstr(&tmp), strerror(errno));
	}
	buf_free(&tmp);
	buf_free(&p);
	buf_free(&out);
}

/* Marks in listed[] the index line of id, if there is one. */
void
qmgr_index_mark(const struct qmgr_index *x, const char *id,
    unsigned char *listed)
{
	const struct index_line *l = x->n ? bsearch(id, x->v, x->n,
	    sizeof(*x->v), by_id) : NULL;

	if (l)
		listed[l - x->v] = 1;
}

/* ---- the rewrite while running --------------------------------------------- */

struct compact_job {
	uv_work_t	 w;
	struct qmgr	*q;
	struct buf	 text;		/* the new index */
	size_t		 lines;
	uint64_t	 now;
	long long	 wall;
};

static void
snapshot_entry(struct qwait *e, void *arg)
{
	struct compact_job *j = arg;

	if (e->due > j->now && !(e->flags & QW_JOURNAL)) {
		buf_printf(&j->text, "%s %lld\n", e->id,
		    j->wall + (long long)((e->due - j->now) / 1000));
		j->lines++;
	}
}

static void
do_compact(uv_work_t *w)
{
	struct compact_job *j = w->data;
	struct buf tmp = BUF_INIT, p = BUF_INIT;
	int fd;

	index_path(&j->q->qs, ".new", &tmp);
	index_path(&j->q->qs, "", &p);
	fd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0640);
	if (fd >= 0 && write(fd, j->text.data ? j->text.data : "",
	    j->text.len) == (ssize_t)j->text.len && close(fd) == 0)
		rename(buf_cstr(&tmp), buf_cstr(&p));
	else if (fd >= 0)
		close(fd);
	buf_free(&tmp);
	buf_free(&p);
}

static void
after_compact(uv_work_t *w, int status)
{
	struct compact_job *j = w->data;
	struct qmgr *q = j->q;

	(void)status;
	q->io_pending--;
	q->index_compacting = 0;
	q->index_lines = j->lines;	/* lines appended meanwhile: lost (a hint) */
	qmgr_index_reopen(q);
	log_event(LOG_INFO, "retry_index_compacted", "lines=%zu", j->lines);
	buf_free(&j->text);
	free(j);
}

/* The index from the messages known now that are due later, on the pool. */
static void
compact(struct qmgr *q)
{
	struct compact_job *j = xcalloc(1, sizeof(*j));

	j->w.data = j;
	j->q = q;
	j->now = uv_now(q->loop);
	j->wall = (long long)time(NULL);
	qmgr_wait_each(q->wait, snapshot_entry, j);
	for (struct qmsg *m = qmgr_table_first(q->table); m; m = m->next)
		if (m->retry_at > j->wall) {
			buf_printf(&j->text, "%s %lld\n", m->item.env.id,
			    m->retry_at);
			j->lines++;
		}
	q->index_compacting = 1;
	q->io_pending++;
	uv_queue_work(q->loop, &j->w, do_compact, after_compact);
}

/* The start's rewrite is done (x: the lines it kept): rewrites may follow. */
void
qmgr_index_started(struct qmgr *q, const struct qmgr_index *x)
{
	q->index_lines = x->n;
	q->index_compacting = 0;
}

/* On the loop: one deferral's line (a lost one only means an early try). */
void
qmgr_index_append(struct qmgr *q, const char *id, long long at)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "%s %lld\n", id, at);

	if (q->index_fd < 0) {
		struct buf p = BUF_INIT;
		index_path(&q->qs, "", &p);
		q->index_fd = open(buf_cstr(&p), O_WRONLY | O_APPEND | O_CREAT |
		    O_CLOEXEC, 0640);
		buf_free(&p);
	}
	if (q->index_fd < 0 || write(q->index_fd, line, (size_t)n) != n)
		log_event(LOG_DEBUG, "retry_index_failed", "qid=%s", id);
	if (++q->index_lines > INDEX_COMPACT_MIN && !q->index_compacting &&
	    q->index_lines > INDEX_COMPACT_RATIO * (qmgr_table_count(q->table) +
	    qmgr_wait_count(q->wait)))
		compact(q);
}

/* The file was replaced: the next append opens the new one. */
void
qmgr_index_reopen(struct qmgr *q)
{
	if (q->index_fd >= 0)
		close(q->index_fd);
	q->index_fd = -1;
}
