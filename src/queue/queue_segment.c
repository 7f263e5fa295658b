/*
 * queue_segment: the segment backend (docs/queue.md "The segment
 * backend"). Workers write as the wal backend does (queue_wal.c: records
 * appended to <queue>/N/wal/<pid>.<seq>, one fdatasync per batch), but no
 * record is ever written out as a message file: the queue manager reads
 * each message from its segment, and the segment is the message's home
 * until every recipient is final.
 *
 * A message done with (removed) has its id appended to <segment>.dead;
 * a segment that takes no more records (its writer gone, or a later
 * segment of the same writer there) and whose records are all dead is
 * removed with its mark and its dead list. Ids are found through an index
 * per process, id -> (segment, offset, length), filled by reading the
 * segments' new records (CRC checked, up to a torn or unfinished tail)
 * when an id is not in it, and the dead lists after them.
 *
 * Threads: the backend's functions run on the pool, several at once; one
 * mutex guards the index, file reads included. retire runs on the loop
 * thread (the queue manager's outcome) and never takes it: it writes its
 * dead-list line and leaves the id for the next removal to take in.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/fsutil.h"
#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "queue.h"
#include "queue_wal.h"
#include "queue_wal_int.h"

#define READ_CHUNK	((size_t)1 << 20)

struct seg_file;

struct seg_rec {
	char		 id[QUEUE_ID_LEN + 1];
	struct seg_file	*seg;
	uint64_t	 offset, len;	/* the payload */
	int		 dead;
	int		 pinned;	/* retired, not yet removed (this process) */
	struct seg_rec	*hnext;
};

struct seg_file {
	char		*path;
	int		 qn;
	long		 pid;
	unsigned long	 seq;
	uint64_t	 scanned;	/* records read up to here */
	int		 dead_read;	/* its dead list read (once: only the
					 * queue manager appends to it) */
	int		 dead_fd;	/* open for appends, or -1 */
	int		 complete;	/* read after it was sealed: every
					 * record it will ever hold is known */
	struct seg_rec	**recs;
	size_t		 nrecs, cap, ndead, npinned;
	struct seg_file	*next;
};

static struct {
	pthread_mutex_t	 mu;
	struct seg_file	*segs;
	struct seg_rec	**tab;
	size_t		 cap, n;
} ix = { PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0, 0 };

/* ---- the index ----------------------------------------------------------- */

static size_t
hash(const char *id)
{
	size_t h = 5381;

	for (; *id; id++)
		h = h * 33 + (unsigned char)*id;
	return h;
}

static struct seg_rec *
find(const char *id)
{
	struct seg_rec *r;

	if (ix.cap == 0)
		return NULL;
	for (r = ix.tab[hash(id) & (ix.cap - 1)]; r; r = r->hnext)
		if (strcmp(r->id, id) == 0)
			return r;
	return NULL;
}

static void
grow(void)
{
	size_t cap = ix.cap ? ix.cap * 2 : 1024;
	struct seg_rec **tab = xcalloc(cap, sizeof(*tab));

	for (size_t i = 0; i < ix.cap; i++)
		for (struct seg_rec *r = ix.tab[i], *next; r; r = next) {
			next = r->hnext;
			r->hnext = tab[hash(r->id) & (cap - 1)];
			tab[hash(r->id) & (cap - 1)] = r;
		}
	free(ix.tab);
	ix.tab = tab;
	ix.cap = cap;
}

static void
unhash(struct seg_rec *r)
{
	struct seg_rec **p = &ix.tab[hash(r->id) & (ix.cap - 1)];

	while (*p && *p != r)
		p = &(*p)->hnext;
	if (*p) {
		*p = r->hnext;
		ix.n--;
	}
}

static void
add_rec(struct seg_file *s, const struct wal_record *w, uint64_t base)
{
	struct seg_rec *r;

	if (find(w->id))	/* a record written again (recovery): once */
		return;
	if (ix.n >= ix.cap)
		grow();
	r = xcalloc(1, sizeof(*r));
	memcpy(r->id, w->id, sizeof(r->id));
	r->seg = s;
	r->offset = base + w->offset;
	r->len = w->len;
	r->hnext = ix.tab[hash(r->id) & (ix.cap - 1)];
	ix.tab[hash(r->id) & (ix.cap - 1)] = r;
	ix.n++;
	if (s->nrecs == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->recs = xrealloc(s->recs, s->cap * sizeof(*s->recs));
	}
	s->recs[s->nrecs++] = r;
}

static void
set_dead(struct seg_rec *r)
{
	if (!r->dead) {
		r->dead = 1;
		r->seg->ndead++;
	}
}

/*
 * s was cut back to size (a write batch that failed is cut off, its
 * clients told 451): the records read past it were never acknowledged.
 */
static void
cut_back(struct seg_file *s, uint64_t size)
{
	size_t k = 0;

	s->scanned = 0;
	for (size_t i = 0; i < s->nrecs; i++) {
		struct seg_rec *r = s->recs[i];
		if (r->offset + r->len > size) {
			if (r->dead)
				s->ndead--;
			unhash(r);
			free(r);
			continue;
		}
		if (r->offset + r->len > s->scanned)
			s->scanned = r->offset + r->len;
		s->recs[k++] = r;
	}
	s->nrecs = k;
}

/* The records appended to s since the last read, up to an unfinished one. */
static void
read_records(struct seg_file *s)
{
	int fd = open(s->path, O_RDONLY | O_CLOEXEC);
	unsigned char *b = NULL;
	size_t have = 0, cap = 0;
	struct stat st;

	if (fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size < s->scanned)
		cut_back(s, (uint64_t)st.st_size);
	if (fd < 0 || fstat(fd, &st) < 0 || (uint64_t)st.st_size <= s->scanned) {
		if (fd >= 0)
			close(fd);
		return;
	}
	for (;;) {
		struct wal_record w;
		uint64_t off = 0;
		ssize_t k;

		if (cap - have < READ_CHUNK) {
			cap = have + READ_CHUNK;
			b = xrealloc(b, cap);
		}
		k = pread(fd, b + have, cap - have, (off_t)(s->scanned + have));
		if (k <= 0)
			break;
		have += (size_t)k;
		while (wal_record_parse(b, have, off, &w)) {
			add_rec(s, &w, s->scanned);
			off = w.end;
		}
		s->scanned += off;	/* what is left: part of a record */
		memmove(b, b + off, have - off);
		have -= off;
	}
	free(b);
	close(fd);
}

/* One of s's files: its path and suffix, to free. */
static char *
sibling(const struct seg_file *s, const char *suffix)
{
	struct buf b = BUF_INIT;

	buf_printf(&b, "%s%s", s->path, suffix);
	return b.data;		/* the buffer's memory moves */
}

/* s's dead list, once its records are read. */
static void
read_dead(struct seg_file *s)
{
	char (*ids)[QUEUE_ID_LEN + 1];
	struct seg_rec *r;
	size_t n;

	if (s->dead_read)
		return;
	s->dead_read = 1;
	n = wal_dead_read(s->path, &ids);
	for (size_t i = 0; i < n; i++)
		if ((r = find(ids[i])) != NULL && r->seg == s)
			set_dead(r);
	free(ids);
}

static struct seg_file *
segment(const char *dir, const char *name, int qn)
{
	struct seg_file *s;
	struct buf path = BUF_INIT;
	char *mark;

	buf_printf(&path, "%s/%s", dir, name);
	for (s = ix.segs; s; s = s->next)
		if (strcmp(s->path, buf_cstr(&path)) == 0) {
			buf_free(&path);
			return s;
		}
	s = xcalloc(1, sizeof(*s));
	s->path = xstrdup(buf_cstr(&path));
	buf_free(&path);
	s->dead_fd = -1;
	s->qn = qn;
	s->pid = wal_segment_writer(name);
	s->seq = strtoul(strchr(name, '.') + 1, NULL, 10);
	/* what a wal backend's checkpoint wrote out (a queue that used it
	 * before) is files: not read from here. This backend moves no mark. */
	mark = sibling(s, WAL_MARK_SUFFIX);
	s->scanned = wal_mark_read(mark);
	free(mark);
	s->next = ix.segs;
	ix.segs = s;
	return s;
}

static int sealed(const struct seg_file *);

/*
 * New records and dead ids of every segment of queue qn; with only_sealed,
 * of those that take no more records (the sweep: a worker's current
 * segment, which grows, is read when a message in it is).
 */
static void
refresh(const struct queue_set *q, int qn, int only_sealed)
{
	struct buf dir = BUF_INIT;
	struct dirent *e;
	int was_sealed;
	DIR *d;

	buf_printf(&dir, "%s/%d/wal", q->path, qn);
	if ((d = opendir(buf_cstr(&dir))) != NULL) {
		while ((e = readdir(d)) != NULL) {
			struct seg_file *s;
			if (wal_segment_writer(e->d_name) == 0)
				continue;
			s = segment(buf_cstr(&dir), e->d_name, qn);
			was_sealed = sealed(s);
			if (only_sealed && !was_sealed)
				continue;
			read_records(s);
			read_dead(s);
			s->complete |= was_sealed;
		}
		closedir(d);
	}
	buf_free(&dir);
}

/* Takes no more records: its writer is gone, or wrote a later one. */
static int
sealed(const struct seg_file *s)
{
	char name[32];

	for (const struct seg_file *o = ix.segs; o; o = o->next)
		if (o->qn == s->qn && o->pid == s->pid && o->seq > s->seq)
			return 1;
	snprintf(name, sizeof(name), "%ld", s->pid);
	return !queue_writer_alive(name);
}

/* A sealed segment, read since, whose records are all dead goes. */
static void
maybe_drop(struct seg_file *s)
{
	struct seg_file **p;
	char *path;

	/* complete: a record appended after the last read would be missed */
	if (!s->complete || s->ndead < s->nrecs || s->npinned > 0)
		return;
	if (s->dead_fd >= 0)
		close(s->dead_fd);
	/* its unfinished tail, if any, was never acknowledged */
	unlink(s->path);
	path = sibling(s, WAL_DEAD_SUFFIX);
	unlink(path);
	free(path);
	path = sibling(s, WAL_MARK_SUFFIX);
	unlink(path);
	free(path);
	log_event(LOG_INFO, "segment_removed", "path=%s records=%zu", s->path,
	    s->nrecs);
	for (size_t i = 0; i < s->nrecs; i++) {
		unhash(s->recs[i]);
		free(s->recs[i]);
	}
	for (p = &ix.segs; *p != s; p = &(*p)->next)
		;
	*p = s->next;
	free(s->recs);
	free(s->path);
	free(s);
}

/* ---- reading ------------------------------------------------------------- */

/* r's message as an item whose file is its segment; 0 or -1. */
static int
item_of(const struct queue_set *q, const struct seg_rec *r,
    struct queue_item *qi)
{
	size_t max = r->len < QUEUE_ENVELOPE_MAX ? r->len : QUEUE_ENVELOPE_MAX;
	int fd = open(r->seg->path, O_RDONLY | O_CLOEXEC), rc = -1;
	struct buf b = BUF_INIT;

	/* up to its envelope's end, 64 KiB at a time */
	while (fd >= 0 && b.len < max &&
	    (b.len == 0 || !memmem(b.data, b.len, "\n\n", 2))) {
		size_t want = max - b.len < 65536 ? max - b.len : 65536;
		ssize_t k;
		buf_reserve(&b, want);
		if ((k = pread(fd, b.data + b.len, want,
		    (off_t)(r->offset + b.len))) <= 0)
			break;
		b.len += (size_t)k;
	}
	if (fd >= 0)
		close(fd);
	if (b.len > 0)
		rc = wal_record_item(q, r->seg->qn, r->seg->path, b.data, b.len,
		    r->offset, r->len, qi);
	else
		memset(qi, 0, sizeof(*qi));
	buf_free(&b);
	return rc;
}

static int
seg_read(const struct queue_set *q, int qn, const char *id,
    struct queue_item *qi)
{
	struct seg_rec *r;
	int rc = -1;

	/* a file first: a message of another backend, or one being written
	 * (EINPROGRESS: no message yet, as queue_fs says) */
	if ((rc = queue_fs.read(q, qn, id, qi)) == 0 || errno == EINPROGRESS)
		return rc;
	pthread_mutex_lock(&ix.mu);
	if ((r = find(id)) == NULL) {
		refresh(q, qn, 0);
		r = find(id);
	}
	if (r && !r->dead && r->seg->qn == qn)
		rc = item_of(q, r, qi);
	pthread_mutex_unlock(&ix.mu);
	if (rc < 0)
		errno = ENOENT;
	return rc;
}

static void take_retired(void);

/* The live records of every queue, as (queue, id); refreshed first. */
struct idlist {
	int		*qn;
	char		(*id)[QUEUE_ID_LEN + 1];
	size_t		 n;
};

static void
live_ids(const struct queue_set *q, struct idlist *l)
{
	size_t k = 0;

	pthread_mutex_lock(&ix.mu);
	take_retired();		/* a retired message is listed no more */
	for (int i = 0; i < q->count; i++)
		refresh(q, i, 0);
	l->qn = xcalloc(ix.n ? ix.n : 1, sizeof(*l->qn));
	l->id = xcalloc(ix.n ? ix.n : 1, sizeof(*l->id));
	for (struct seg_file *s = ix.segs; s; s = s->next)
		for (size_t i = 0; i < s->nrecs; i++)
			if (!s->recs[i]->dead) {
				l->qn[k] = s->qn;
				memcpy(l->id[k], s->recs[i]->id,
				    sizeof(l->id[k]));
				k++;
			}
	l->n = k;
	pthread_mutex_unlock(&ix.mu);
}

static int
seg_list(const struct queue_set *q, int (*fn)(void *, int, const char *),
    void *arg)
{
	struct idlist l;
	int n = queue_fs.list(q, fn, arg), rc = 0;

	if (n < 0)
		return -1;
	live_ids(q, &l);
	for (size_t i = 0; rc == 0 && i < l.n; i++)
		rc = fn(arg, l.qn[i], l.id[i]);
	free(l.qn);
	free(l.id);
	return rc ? -1 : n + (int)l.n;
}

static int
seg_scan(const struct queue_set *q, int (*fn)(void *, struct queue_item *),
    void *arg)
{
	struct idlist l;
	struct queue_item qi;
	int n = queue_fs.scan(q, fn, arg), rc = 0;

	live_ids(q, &l);
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		struct seg_rec *r;
		int got = -1;
		pthread_mutex_lock(&ix.mu);
		if ((r = find(l.id[i])) != NULL && !r->dead)
			got = item_of(q, r, &qi);
		pthread_mutex_unlock(&ix.mu);
		if (got == 0) {
			n++;
			rc = fn(arg, &qi);
			queue_item_free(&qi);
		}
	}
	free(l.qn);
	free(l.id);
	return n;
}

/* ---- done with ----------------------------------------------------------- */

/* Whether qi lies in a segment rather than in its own file. */
static int
in_segment(const struct queue_item *qi)
{
	return qi->shared;
}

/* Appends "id\n" to the dead list at path; 0 or -1. */
static int
append_dead(int *fd, const char *path, const char *id)
{
	char line[QUEUE_ID_LEN + 2];

	snprintf(line, sizeof(line), "%s\n", id);
	if (*fd < 0)
		*fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	return *fd >= 0 && write(*fd, line, QUEUE_ID_LEN + 1) ==
	    QUEUE_ID_LEN + 1 ? 0 : -1;
}

/*
 * Ids retired (their dead-list line written) on the loop thread, which
 * never waits for the index's mutex (held over file reads): taken into
 * the index, dead and pinned, by the next removal on the pool.
 */
static struct {
	pthread_mutex_t	 mu;
	char		(*id)[QUEUE_ID_LEN + 1];
	size_t		 n, cap;
} retired = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 };

static void
pin(struct seg_rec *r)
{
	set_dead(r);
	if (!r->pinned) {
		r->pinned = 1;
		r->seg->npinned++;
	}
}

/* Index mutex held: the ids retired since, dead and pinned. */
static void
take_retired(void)
{
	struct seg_rec *r;

	pthread_mutex_lock(&retired.mu);
	for (size_t i = 0; i < retired.n; i++)
		if ((r = find(retired.id[i])) != NULL)
			pin(r);
	retired.n = 0;
	pthread_mutex_unlock(&retired.mu);
}

/*
 * A removed message's record dead: its line appended to the dead list
 * (not flushed, as fs does not flush its unlink: power loss may mean a
 * delivery again, kill -9 cannot) unless its retirement wrote it, then its
 * segment removed if that was its last live record.
 */
static int
kill_record(const struct queue_item *qi)
{
	struct seg_rec *r;
	struct seg_file *s;
	char *path;
	int rc = 0;

	pthread_mutex_lock(&ix.mu);
	take_retired();
	if ((r = find(qi->env.id)) == NULL) {
		pthread_mutex_unlock(&ix.mu);
		return 0;	/* its segment is gone: dead long ago */
	}
	s = r->seg;
	if (!r->dead) {
		path = sibling(s, WAL_DEAD_SUFFIX);
		rc = append_dead(&s->dead_fd, path, r->id);
		free(path);
		if (rc == 0)
			set_dead(r);
	}
	if (rc == 0 && r->pinned) {
		r->pinned = 0;
		s->npinned--;
	}
	if (rc == 0)
		maybe_drop(s);
	pthread_mutex_unlock(&ix.mu);
	return rc;
}

/* Sealed segments whose records are all dead go (the queue manager's). */
void
queue_segment_sweep(const struct queue_set *q)
{
	pthread_mutex_lock(&ix.mu);
	take_retired();
	for (int i = 0; i < q->count; i++)
		refresh(q, i, 1);
	for (struct seg_file *s = ix.segs, *next; s; s = next) {
		next = s->next;
		maybe_drop(s);
	}
	pthread_mutex_unlock(&ix.mu);
}

static int
seg_remove(const struct queue_item *qi)
{
	if (!in_segment(qi))
		return queue_fs.remove(qi);
	if (kill_record(qi) < 0)
		return -1;
	queue_journal_remove(qi);
	return 0;
}

/*
 * Out of the live queue in one step, on the loop thread: for a record, its
 * dead-list line (nothing delivers it again); it stays readable (a bounce
 * may read it) until its removal, which takes it into the index.
 */
static int
seg_retire(const struct queue_set *q, const struct queue_item *qi,
    char **newpath)
{
	struct buf path = BUF_INIT;
	int fd = -1, rc;

	if (!in_segment(qi))
		return queue_fs.retire(q, qi, newpath);
	buf_printf(&path, "%s%s", qi->path, WAL_DEAD_SUFFIX);
	rc = append_dead(&fd, buf_cstr(&path), qi->env.id);
	if (fd >= 0)
		close(fd);
	buf_free(&path);
	if (rc < 0)
		return -1;
	pthread_mutex_lock(&retired.mu);
	if (retired.n == retired.cap) {
		retired.cap = retired.cap ? retired.cap * 2 : 64;
		retired.id = xrealloc(retired.id, retired.cap * sizeof(*retired.id));
	}
	snprintf(retired.id[retired.n++], QUEUE_ID_LEN + 1, "%s", qi->env.id);
	pthread_mutex_unlock(&retired.mu);
	*newpath = xstrdup(qi->path);
	return 0;
}

const struct queue_backend queue_segment = {
	.name = "segment",
	.write = wal_write,
	.read = seg_read,
	.scan = seg_scan,
	.journal_append = queue_journal_append,
	.journal_flush = queue_journal_flush,
	.journal_read = queue_journal_read,
	.retire = seg_retire,
	.remove = seg_remove,
	.list = seg_list,
	.announces = 1,
	.busy = wal_busy,
};
