/*
 * queue_segment_index: the segment backend's index of one process, id ->
 * (segment, offset, length), and what it knows of each segment: how far
 * its records are read, which are dead (its dead list), whether it takes
 * more. Filled by reading the segments' new records (CRC checked, up to a
 * torn or unfinished tail) when an id is not in it, and the dead lists
 * after them. A segment that takes no more records and whose records are
 * all dead is removed here. Callers hold seg_ix.mu.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/buf.h"
#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "queue_segment_int.h"
#include "queue_wal.h"
#include "queue_wal_int.h"

#define READ_CHUNK	((size_t)1 << 20)

struct seg_index seg_ix = { PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0, 0 };

/* ---- the index ----------------------------------------------------------- */

static size_t
hash(const char *id)
{
	size_t h = 5381;

	for (; *id; id++)
		h = h * 33 + (unsigned char)*id;
	return h;
}

struct seg_rec *
seg_find(const char *id)
{
	struct seg_rec *r;

	if (seg_ix.cap == 0)
		return NULL;
	for (r = seg_ix.tab[hash(id) & (seg_ix.cap - 1)]; r; r = r->hnext)
		if (strcmp(r->id, id) == 0)
			return r;
	return NULL;
}

static void
grow(void)
{
	size_t cap = seg_ix.cap ? seg_ix.cap * 2 : 1024;
	struct seg_rec **tab = xcalloc(cap, sizeof(*tab));

	for (size_t i = 0; i < seg_ix.cap; i++)
		for (struct seg_rec *r = seg_ix.tab[i], *next; r; r = next) {
			next = r->hnext;
			r->hnext = tab[hash(r->id) & (cap - 1)];
			tab[hash(r->id) & (cap - 1)] = r;
		}
	free(seg_ix.tab);
	seg_ix.tab = tab;
	seg_ix.cap = cap;
}

static void
unhash(struct seg_rec *r)
{
	struct seg_rec **p = &seg_ix.tab[hash(r->id) & (seg_ix.cap - 1)];

	while (*p && *p != r)
		p = &(*p)->hnext;
	if (*p) {
		*p = r->hnext;
		seg_ix.n--;
	}
}

static void
add_rec(struct seg_file *s, const struct wal_record *w, uint64_t base)
{
	struct seg_rec *r;

	if (seg_find(w->id))	/* a record written again (recovery): once */
		return;
	if (w->len > UINT32_MAX) {	/* limits.message_size is 1 GiB at most */
		log_event(LOG_ERROR, "segment_record_unindexed", "qid=%s "
		    "segment=%s size=%llu reason=\"over 4 GiB: the segment "
		    "is kept\"", w->id, s->path, (unsigned long long)w->len);
		s->unindexed = 1;
		return;
	}
	if (seg_ix.n >= seg_ix.cap)
		grow();
	if (s->nrecs == s->nchunks * SEG_CHUNK) {
		s->chunk = xrealloc(s->chunk, (s->nchunks + 1) *
		    sizeof(*s->chunk));
		s->chunk[s->nchunks++] = xmalloc(SEG_CHUNK * sizeof(*r));
	}
	r = seg_rec_at(s, s->nrecs++);
	memset(r, 0, sizeof(*r));
	memcpy(r->id, w->id, sizeof(r->id));
	r->seg = s;
	r->offset = base + w->offset;
	r->len = (uint32_t)w->len;
	r->hnext = seg_ix.tab[hash(r->id) & (seg_ix.cap - 1)];
	seg_ix.tab[hash(r->id) & (seg_ix.cap - 1)] = r;
	seg_ix.n++;
	s->live_bytes += WAL_HEADER + r->len;
}

void
seg_set_dead(struct seg_rec *r)
{
	if (!r->dead) {
		r->dead = 1;
		r->seg->ndead++;
		r->seg->live_bytes -= WAL_HEADER + r->len;
	}
}

/*
 * s was cut back to size (a write batch that failed is cut off, its
 * clients told 451): the records read past it were never acknowledged.
 */
static void
cut_back(struct seg_file *s, uint64_t size)
{
	struct seg_rec *r;

	/* in order of offset: those past size are the last ones */
	while (s->nrecs > 0) {
		r = seg_rec_at(s, s->nrecs - 1);
		if (r->offset + r->len <= size)
			break;
		if (r->dead)
			s->ndead--;
		else
			s->live_bytes -= WAL_HEADER + r->len;
		unhash(r);
		s->nrecs--;
	}
	r = s->nrecs ? seg_rec_at(s, s->nrecs - 1) : NULL;
	s->scanned = r ? r->offset + r->len : 0;
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
char *
seg_sibling(const struct seg_file *s, const char *suffix)
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
		if ((r = seg_find(ids[i])) != NULL && r->seg == s)
			seg_set_dead(r);
	free(ids);
}

static struct seg_file *
segment(const char *dir, const char *name, int qn)
{
	struct seg_file *s;
	struct buf path = BUF_INIT;
	char *mark;

	buf_printf(&path, "%s/%s", dir, name);
	for (s = seg_ix.segs; s; s = s->next)
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
	mark = seg_sibling(s, WAL_MARK_SUFFIX);
	s->scanned = wal_mark_read(mark);
	free(mark);
	s->next = seg_ix.segs;
	seg_ix.segs = s;
	return s;
}

static int sealed(const struct seg_file *);

/*
 * New records and dead ids of every segment of queue qn; with only_sealed,
 * of those that take no more records (the sweep: a worker's current
 * segment, which grows, is read when a message in it is).
 */
void
seg_refresh(const struct queue_set *q, int qn, int only_sealed)
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

	for (const struct seg_file *o = seg_ix.segs; o; o = o->next)
		if (o->qn == s->qn && o->pid == s->pid && o->seq > s->seq)
			return 1;
	snprintf(name, sizeof(name), "%ld", s->pid);
	return !queue_writer_alive(name);
}

/* A sealed segment, read since, whose records are all dead goes. */
void
seg_maybe_drop(struct seg_file *s)
{
	struct seg_file **p;
	char *path;

	/* complete: a record appended after the last read would be missed */
	if (!s->complete || s->ndead < s->nrecs || s->npinned > 0 ||
	    s->unindexed)
		return;
	if (s->dead_fd >= 0)
		close(s->dead_fd);
	/* its unfinished tail, if any, was never acknowledged */
	unlink(s->path);
	path = seg_sibling(s, WAL_DEAD_SUFFIX);
	unlink(path);
	free(path);
	path = seg_sibling(s, WAL_MARK_SUFFIX);
	unlink(path);
	free(path);
	log_event(LOG_INFO, "segment_removed", "path=%s records=%zu", s->path,
	    s->nrecs);
	for (size_t i = 0; i < s->nrecs; i++)
		unhash(seg_rec_at(s, i));
	for (size_t i = 0; i < s->nchunks; i++)
		free(s->chunk[i]);
	for (p = &seg_ix.segs; *p != s; p = &(*p)->next)
		;
	*p = s->next;
	free(s->chunk);
	free(s->path);
	free(s);
}
