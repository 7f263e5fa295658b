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
 * on the loop thread by each deferral.
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
}

/* The file was replaced: the next append opens the new one. */
void
qmgr_index_reopen(struct qmgr *q)
{
	if (q->index_fd >= 0)
		close(q->index_fd);
	q->index_fd = -1;
}
