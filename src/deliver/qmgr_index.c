/*
 * qmgr_index: the retry index, <queue.path>/retry.idx, an append-only file
 * so that a start knows when each message is due without reading its
 * envelope or journal (docs/queue.md "The retry index"). Three kinds of
 * line:
 *   ID UNIXTIME        a deferral: ID is due then;
 *   ID @KEY RECEIVED   ID was parked on destination KEY (down); RECEIVED:
 *                      its envelope's time, for its lifetime;
 *   @KEY UNIXTIME      destination KEY's next probe, appended when it
 *                      changes while messages are parked on KEY.
 * A start parks those messages on KEY again, down until its last probe
 * time (qmgr_index_restore), so it reads none of them.
 * It is a hint: the journal's `t` record stays the truth. A message
 * missing from the index (a lost append, or a crash before it) is due at
 * once and its journal then gives its schedule; a deferral's line is
 * written after its journal record, so the index can lag, never run ahead.
 * A parked message has no journal record: its line may say later than
 * true only by what the stopped queue manager would have waited anyway,
 * its destination's probe (at most delivery.dead_destination.max). Read
 * and rewritten (only the lines of messages still queued and not yet due,
 * as "ID UNIXTIME") on the pool at start; appended on the loop thread;
 * rewritten from what the queue manager knows once it holds
 * INDEX_COMPACT_RATIO lines per message (the loop writes its lines as it
 * makes them, the pool closes and renames).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/siphash.h"
#include "../lib/xalloc.h"
#include "qmgr_int.h"

#define INDEX_NAME	"retry.idx"
#define INDEX_COMPACT_MIN	1000	/* lines before a rewrite is considered */
#define INDEX_COMPACT_RATIO	4	/* lines per known message that trigger it */
#define INDEX_KEY_MAX	400	/* a longer destination key is not indexed */
#define INDEX_LINE_MAX	(QUEUE_ID_LEN + INDEX_KEY_MAX + 32)
#define INDEX_DEST_BUCKETS	4096

/* While starting: a destination's last "@KEY UNIXTIME". */
struct index_dest {
	struct index_dest *next;
	long long	 at;		/* 0: no line for it */
	int		 kept;		/* a parked message kept refers to it */
	char		 key[];
};

struct index_line {
	char		 id[QUEUE_ID_LEN + 1];
	uint32_t	 seq;		/* line number: the last one wins */
	long long	 at;		/* due (parked: its destination's probe) */
	long long	 received;	/* parked: the envelope's, for lifetimes */
	struct index_dest *dest;	/* "ID @KEY RECEIVED": parked on KEY */
};

struct qmgr_index {
	struct index_line *v;		/* set once read: the loop looks up */
	size_t		 n;
	size_t		 kept, parked;	/* lines rewritten, with a destination */
	struct index_dest *bucket[INDEX_DEST_BUCKETS];
	struct siphash_key hkey;	/* keys come from recipients' domains */
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

/*
 * The lines a start can use: a message parked on a destination with a
 * probe time (due then, or at once if it is past: it waits for the probe
 * all the same), or due later. A parked line whose destination has no
 * probe line, like a line due already, is dropped: due now.
 */
static void
settle(struct qmgr_index *x)
{
	long long now = (long long)time(NULL);
	size_t k = 0;

	for (size_t i = 0; i < x->n; i++) {
		struct index_line *l = &x->v[i];
		if (l->dest && l->dest->at > 0)
			l->at = l->dest->at;
		else {
			l->dest = NULL;		/* no probe line: as if not parked */
			if (l->at <= now)
				continue;
		}
		x->v[k++] = *l;
	}
	x->n = k;
}

struct qmgr_index *
qmgr_index_empty(void)
{
	struct qmgr_index *x = xcalloc(1, sizeof(*x));

	if (siphash_key_random(&x->hkey) < 0)	/* no getrandom: still spread */
		x->hkey = (struct siphash_key){ (uint64_t)time(NULL),
		    (uint64_t)(uintptr_t)x };
	return x;
}

/* The destination of key, made if new. */
static struct index_dest *
dest_intern(struct qmgr_index *x, const char *key)
{
	size_t h = siphash24(&x->hkey, key, strlen(key)) % INDEX_DEST_BUCKETS;
	struct index_dest *d;

	for (d = x->bucket[h]; d; d = d->next)
		if (strcmp(d->key, key) == 0)
			return d;
	d = xcalloc(1, sizeof(*d) + strlen(key) + 1);
	strcpy(d->key, key);
	d->next = x->bucket[h];
	x->bucket[h] = d;
	return d;
}

/*
 * One line into l (0), or a destination's line applied to x (1), or a
 * torn or unknown line (-1).
 */
static int
parse_line(const char *line, struct qmgr_index *x, struct index_line *l)
{
	char a[INDEX_KEY_MAX + 2], b[INDEX_KEY_MAX + 2];
	long long at;
	int n = sscanf(line, "%401s %401s %lld", a, b, &l->received);

	if (n < 2)
		return -1;
	if (a[0] == '@') {
		if (sscanf(b, "%lld", &at) != 1)
			return -1;
		dest_intern(x, a + 1)->at = at;
		return 1;
	}
	if (strlen(a) > QUEUE_ID_LEN)
		return -1;
	strcpy(l->id, a);
	l->at = 0;
	l->dest = NULL;
	if (b[0] == '@' && n == 3)
		l->dest = dest_intern(x, b + 1);
	else if (b[0] == '@' || sscanf(b, "%lld", &l->at) != 1)
		return -1;
	return 0;
}

/* On the pool: the index as it is on disk (empty if there is none). */
struct qmgr_index *
qmgr_index_read(const struct queue_set *qs)
{
	struct qmgr_index *x = qmgr_index_empty();
	struct buf p = BUF_INIT;
	char line[INDEX_LINE_MAX];
	size_t cap = 0;
	FILE *f;

	index_path(qs, "", &p);
	f = fopen(buf_cstr(&p), "r");
	buf_free(&p);
	while (f && fgets(line, sizeof(line), f)) {
		struct index_line l;
		if (parse_line(line, x, &l) != 0)
			continue;	/* a destination's, or a torn last line */
		if (x->n == cap) {
			cap = cap ? cap * 2 : 1024;
			x->v = xrealloc(x->v, cap * sizeof(*x->v));
		}
		l.seq = (uint32_t)x->n;
		x->v[x->n++] = l;
	}
	if (f)
		fclose(f);
	if (x->n > 0)	/* qsort of a NULL array, even empty, is undefined */
		qsort(x->v, x->n, sizeof(*x->v), by_id_then_seq);
	keep_last(x);
	settle(x);
	return x;
}

/*
 * The Unix time id is due at, 0 if the index does not know it; parked:
 * *key is its destination (else NULL), *received its envelope's.
 */
long long
qmgr_index_find(const struct qmgr_index *x, const char *id, const char **key,
    long long *received)
{
	const struct index_line *l = x->n ? bsearch(id, x->v, x->n,
	    sizeof(*x->v), by_id) : NULL;

	*key = l && l->dest ? l->dest->key : NULL;
	*received = l ? l->received : 0;
	return l ? l->at : 0;
}

/* The lines read (after the last of each id, and settle()). */
size_t
qmgr_index_lines(const struct qmgr_index *x)
{
	return x->n;
}

/* Lines rewritten at start: messages due later, and parked (*parked). */
size_t
qmgr_index_count(const struct qmgr_index *x, size_t *parked)
{
	if (parked)
		*parked = x->parked;
	return x->kept;
}

void
qmgr_index_free(struct qmgr_index *x)
{
	if (x == NULL)
		return;
	for (size_t i = 0; i < INDEX_DEST_BUCKETS; i++)
		for (struct index_dest *d = x->bucket[i], *next; d; d = next) {
			next = d->next;
			free(d);
		}
	free(x->v);
	free(x);
}

/* The probe lines of the destinations that lines kept refer to. */
static void
keep_dests(const struct qmgr_index *x, FILE *out)
{
	for (size_t i = 0; i < INDEX_DEST_BUCKETS; i++)
		for (struct index_dest *d = x->bucket[i]; d; d = d->next)
			if (d->kept)
				fprintf(out, "@%s %lld\n", d->key, d->at);
}

/*
 * A rewrite (the start's, or one while running) writes its lines through
 * a stream's buffer into <index>.new, as it makes them (a million parked
 * messages: 60 MB of lines, never held at once), then renames the file
 * over the index.
 */
#define INDEX_WRITE_BUF	(64 << 10)

/* <index>.new for a rewrite's lines; NULL and errno. */
static FILE *
rewrite_open(const struct queue_set *qs)
{
	struct buf tmp = BUF_INIT;
	int fd, e;
	FILE *out = NULL;

	index_path(qs, ".new", &tmp);
	fd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0640);
	if (fd >= 0 && (out = fdopen(fd, "w")) == NULL) {
		e = errno;
		close(fd);
		errno = e;
	}
	if (out)
		setvbuf(out, NULL, _IOFBF, INDEX_WRITE_BUF);
	buf_free(&tmp);
	return out;
}

/* The error of a rewrite's writes so far: 0, or the last one's. */
static int
rewrite_error(FILE *out)
{
	return ferror(out) ? (errno ? errno : EIO) : 0;
}

/*
 * A rewrite's end: out (NULL: it could not be opened) closed and renamed
 * over the index, unless err (a write's, or the open's) says otherwise.
 * Returns 0, or the errno of what failed, logged (event=retry_index_failed),
 * the new file removed and the old index left in place.
 */
static int
rewrite_finish(const struct queue_set *qs, FILE *out, int err)
{
	struct buf tmp = BUF_INIT, p = BUF_INIT;

	index_path(qs, ".new", &tmp);
	index_path(qs, "", &p);
	if (out == NULL && err == 0)
		err = EIO;
	if (out && fclose(out) != 0 && err == 0)
		err = errno;
	if (err == 0 && rename(buf_cstr(&tmp), buf_cstr(&p)) < 0)
		err = errno;
	if (err) {
		log_event(LOG_WARN, "retry_index_failed", "path=%s error=\"%s\"",
		    buf_cstr(&tmp), strerror(err));
		unlink(buf_cstr(&tmp));
	}
	buf_free(&tmp);
	buf_free(&p);
	return err;
}

/*
 * On the pool at start: the lines of the listed messages (listed[] says
 * which index lines were) in a new file renamed over the old one, written
 * as they are made (a million parked messages: 60 MB not held at once).
 * x is not changed but for what the loop does not read (the counts, which
 * destinations are kept), as the loop looks lines up meanwhile.
 */
void
qmgr_index_compact(const struct queue_set *qs, struct qmgr_index *x,
    const unsigned char *listed)
{
	FILE *out = rewrite_open(qs);
	int err = out ? 0 : errno;

	for (size_t i = 0; out && i < x->n; i++) {
		const struct index_line *l = &x->v[i];
		if (!listed[i])
			continue;
		x->kept++;
		if (l->dest) {
			x->parked++;
			l->dest->kept = 1;
			fprintf(out, "%s @%s %lld\n", l->id, l->dest->key,
			    l->received);
		} else
			fprintf(out, "%s %lld\n", l->id, l->at);
	}
	if (out) {
		keep_dests(x, out);
		err = rewrite_error(out);
	}
	if (rewrite_finish(qs, out, err) != 0)
		x->kept = x->parked = 0;
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

/*
 * At start, on the loop: e, whose last line parked it on key until Unix
 * time `at`, is parked on that destination again, down until then (its
 * probe, at once if `at` is past), so that a restart reads none of the
 * messages a destination down holds; due at once if the destination is
 * up already.
 */
void
qmgr_index_restore(struct qmgr *q, struct qwait *e, const char *key,
    long long at, long long received)
{
	uint64_t now = uv_now(q->loop);
	long long wall = (long long)time(NULL);
	uint64_t until = at > wall ? now + (uint64_t)(at - wall) * 1000 : now;
	struct dest *d = dest_restore(q->dests, key, until, now);

	e->received = received;
	if (d->state != DEST_DOWN) {
		qmgr_wait_set(q->wait, e, now, e->flags);
		return;
	}
	if (d->until == until)
		d->indexed = until;	/* the start's rewrite has its line */
	d->held++;
	qmgr_wait_park(q->wait, e, d);
}

/* ---- the rewrite while running --------------------------------------------- */

struct compact_job {
	uv_work_t	 w;
	struct qmgr	*q;
	FILE		*out;		/* <index>.new (rewrite_open) */
	int		 failed;	/* errno of what failed, or 0 */
	size_t		 lines;
	uint64_t	 now;
	long long	 wall;
};

/* Unix time of loop time `at` (rounded up), given now in both clocks. */
static long long
wall_of(uint64_t at, uint64_t now, long long wall)
{
	return wall + (at > now ? (long long)((at - now + 999) / 1000) : 0);
}

/* A key that fits a line: not too long, no blank in it. */
static int
indexable(const char *key)
{
	return key[0] && strlen(key) <= INDEX_KEY_MAX &&
	    strpbrk(key, " \t\r\n") == NULL;
}

static void
snapshot_entry(struct qwait *e, void *arg)
{
	struct compact_job *j = arg;

	if (e->parked && indexable(e->parked->key)) {
		fprintf(j->out, "%s @%s %lld\n", e->id, e->parked->key,
		    e->received);
		j->lines++;
	} else if (e->due > j->now && !(e->flags & QW_JOURNAL)) {
		fprintf(j->out, "%s %lld\n", e->id,
		    wall_of(e->due, j->now, j->wall));
		j->lines++;
	}
}

/* The probe of a destination down (or probing: past, at once) that
 * messages are parked on. */
static void
snapshot_dest(struct dest *d, void *arg)
{
	struct compact_job *j = arg;

	if (d->nparked && d->state != DEST_UP && indexable(d->key)) {
		fprintf(j->out, "@%s %lld\n", d->key,
		    wall_of(d->until, j->now, j->wall));
		j->lines++;
	}
}

/* Lines appended during a rewrite are lost: each is written again. */
static void
forget_indexed(struct dest *d, void *arg)
{
	(void)arg;
	d->indexed = 0;
}

/* On the pool: the rest of the lines out, the new index in place. */
static void
do_compact(uv_work_t *w)
{
	struct compact_job *j = w->data;

	j->failed = rewrite_finish(&j->q->qs, j->out, j->failed);
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
	if (j->failed) {	/* logged; the old index stays, a rewrite
				 * after as many lines */
		free(j);
		return;
	}
	qmgr_index_reopen(q);
	dest_each(q->dests, forget_indexed, NULL);
	log_event(LOG_INFO, "retry_index_compacted", "lines=%zu", j->lines);
	free(j);
}

/*
 * The index from the messages known now that are due later or parked:
 * the loop writes the lines (they read its state), the pool finishes.
 */
static void
compact(struct qmgr *q)
{
	struct compact_job *j = xcalloc(1, sizeof(*j));

	j->w.data = j;
	j->q = q;
	q->index_compacting = 1;
	q->io_pending++;
	if ((j->out = rewrite_open(&q->qs)) == NULL) {
		j->failed = rewrite_finish(&q->qs, NULL, errno);
		after_compact(&j->w, 0);
		return;
	}
	j->now = uv_now(q->loop);
	j->wall = (long long)time(NULL);
	qmgr_wait_each(q->wait, snapshot_entry, j);
	dest_each(q->dests, snapshot_dest, j);
	for (struct qmsg *m = qmgr_table_first(q->table); m; m = m->next)
		if (m->retry_at > j->wall) {
			fprintf(j->out, "%s %lld\n", m->item.env.id,
			    m->retry_at);
			j->lines++;
		}
	j->failed = rewrite_error(j->out);	/* ENOSPC, EIO: the pool logs */
	uv_queue_work(q->loop, &j->w, do_compact, after_compact);
}

/* The start's rewrite is done (x: the lines it kept): rewrites may follow. */
void
qmgr_index_started(struct qmgr *q, const struct qmgr_index *x)
{
	q->index_lines = x->kept;
	q->index_compacting = 0;
}

/* On the loop: one line (a lost one only means an early try). */
static void
append(struct qmgr *q, const char *line, int n)
{
	if (q->index_fd < 0) {
		struct buf p = BUF_INIT;
		index_path(&q->qs, "", &p);
		q->index_fd = open(buf_cstr(&p), O_WRONLY | O_APPEND | O_CREAT |
		    O_CLOEXEC, 0640);
		buf_free(&p);
	}
	if (n < 0 || n >= INDEX_LINE_MAX || q->index_fd < 0 ||
	    write(q->index_fd, line, (size_t)n) != n)
		log_event(LOG_DEBUG, "retry_index_failed", "line=\"%.*s\"",
		    n > 1 ? n - 1 : 0, line);
	if (++q->index_lines > INDEX_COMPACT_MIN && !q->index_compacting &&
	    q->index_lines > INDEX_COMPACT_RATIO * (qmgr_table_count(q->table) +
	    qmgr_wait_count(q->wait)))
		compact(q);
}

/* A deferral: id is due at Unix time `at`. */
void
qmgr_index_append(struct qmgr *q, const char *id, long long at)
{
	char line[INDEX_LINE_MAX];

	append(q, line, snprintf(line, sizeof(line), "%s %lld\n", id, at));
}

/* Destination d, down, has messages parked: its probe, if it moved. */
void
qmgr_index_dest(struct qmgr *q, struct dest *d)
{
	char line[INDEX_LINE_MAX];

	if (d->state != DEST_DOWN || d->indexed == d->until ||
	    !indexable(d->key))
		return;
	d->indexed = d->until;
	append(q, line, snprintf(line, sizeof(line), "@%s %lld\n", d->key,
	    wall_of(d->until, uv_now(q->loop), (long long)time(NULL))));
}

/* e leaves the active set parked on d: due when d's probe is. */
void
qmgr_index_park(struct qmgr *q, const struct qwait *e, struct dest *d)
{
	char line[INDEX_LINE_MAX];

	if (!indexable(d->key))
		return;
	qmgr_index_dest(q, d);
	append(q, line, snprintf(line, sizeof(line), "%s @%s %lld\n", e->id,
	    d->key, e->received));
}

/* The file was replaced: the next append opens the new one. */
void
qmgr_index_reopen(struct qmgr *q)
{
	if (q->index_fd >= 0)
		close(q->index_fd);
	q->index_fd = -1;
}
