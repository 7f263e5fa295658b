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
 * when an id is not in it, and the dead lists after them
 * (queue_segment_index.c). A message still live in an idle segment is
 * moved out to a message file (queue_segment_compact.c); a file in mess/
 * is read, listed and removed as queue_fs does.
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
#include "queue_segment_int.h"
#include "queue_wal_int.h"

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
	pthread_mutex_lock(&seg_ix.mu);
	if ((r = seg_find(id)) == NULL) {
		seg_refresh(q, qn, 0);
		r = seg_find(id);
	}
	if (r && !r->dead && r->seg->qn == qn)
		rc = item_of(q, r, qi);
	pthread_mutex_unlock(&seg_ix.mu);
	if (rc < 0)
		errno = ENOENT;
	return rc;
}

/*
 * The ids of the message files the listing found first (sorted): a live
 * record with one of them is a compaction cut short after its file was
 * in mess/ (queue_segment_compact.c), and the file is the message.
 */
struct file_ids {
	char		(*id)[QUEUE_ID_LEN + 1];
	size_t		 n, cap;
	int		(*list_fn)(void *, int, const char *);
	int		(*scan_fn)(void *, struct queue_item *);
	void		*arg;
};

static void
file_add(struct file_ids *f, const char *id)
{
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 256;
		f->id = xrealloc(f->id, f->cap * sizeof(*f->id));
	}
	snprintf(f->id[f->n++], QUEUE_ID_LEN + 1, "%s", id);
}

static int
file_listed(void *arg, int qn, const char *id)
{
	struct file_ids *f = arg;

	file_add(f, id);
	return f->list_fn(f->arg, qn, id);
}

static int
file_scanned(void *arg, struct queue_item *qi)
{
	struct file_ids *f = arg;

	file_add(f, qi->env.id);
	return f->scan_fn(f->arg, qi);
}

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

/*
 * r has a file in mess/: its record is dead, in its dead list too if this
 * process owns the segment (the queue manager, not a tool run as root,
 * which would leave a dead list the queue manager cannot append to).
 */
static void
supersede(struct seg_rec *r)
{
	struct stat st;
	char *path;

	seg_set_dead(r);
	if (stat(r->seg->path, &st) < 0 || st.st_uid != geteuid())
		return;
	path = seg_sibling(r->seg, WAL_DEAD_SUFFIX);
	if (seg_append_dead(&r->seg->dead_fd, path, r->id) == 0)
		log_event(LOG_INFO, "segment_record_superseded", "qid=%s "
		    "segment=%s reason=\"its message file is in mess/\"",
		    r->id, r->seg->path);
	free(path);
}

/*
 * The live records of every queue, LIVE_CHUNK at a time: the index lock
 * is held for a chunk, not while the caller's function runs (it may read
 * a message), and a listing of millions holds one chunk of ids, not all.
 * The segments are those there when it began (refreshed then); one
 * removed meanwhile had nothing live left.
 */
#define LIVE_CHUNK	1024

struct live_walk {
	struct file_ids	*files;
	char		**paths;	/* the segments, when it began */
	size_t		 npaths, p, i;	/* next: record i of paths[p] */
	int		 qn[LIVE_CHUNK];
	char		 id[LIVE_CHUNK][QUEUE_ID_LEN + 1];
};

static void
live_begin(struct live_walk *w, const struct queue_set *q,
    struct file_ids *files)
{
	size_t n = 0;

	memset(w, 0, sizeof(*w));
	w->files = files;
	if (files->n)
		qsort(files->id, files->n, sizeof(*files->id), cmp_id);
	pthread_mutex_lock(&seg_ix.mu);
	seg_take_retired();		/* a retired message is listed no more */
	for (int i = 0; i < q->count; i++)
		seg_refresh(q, i, 0);
	for (struct seg_file *s = seg_ix.segs; s; s = s->next)
		n++;
	w->paths = xcalloc(n ? n : 1, sizeof(*w->paths));
	for (struct seg_file *s = seg_ix.segs; s; s = s->next)
		w->paths[w->npaths++] = xstrdup(s->path);
	pthread_mutex_unlock(&seg_ix.mu);
}

static struct seg_file *
segment_of(const char *path)
{
	for (struct seg_file *s = seg_ix.segs; s; s = s->next)
		if (strcmp(s->path, path) == 0)
			return s;
	return NULL;
}

/* The next live ids into w->qn and w->id: how many (0: no more). */
static size_t
live_next(struct live_walk *w)
{
	size_t k = 0;

	pthread_mutex_lock(&seg_ix.mu);
	for (; k < LIVE_CHUNK && w->p < w->npaths; w->p++, w->i = 0) {
		struct seg_file *s = segment_of(w->paths[w->p]);
		for (; s && k < LIVE_CHUNK && w->i < s->nrecs; w->i++) {
			struct seg_rec *r = seg_rec_at(s, w->i);
			if (r->dead)
				continue;
			if (w->files->n && bsearch(r->id, w->files->id,
			    w->files->n, sizeof(*w->files->id), cmp_id)) {
				supersede(r);
				continue;
			}
			w->qn[k] = s->qn;
			memcpy(w->id[k], r->id, sizeof(w->id[k]));
			k++;
		}
		if (k == LIVE_CHUNK)
			break;		/* on with this segment next time */
	}
	pthread_mutex_unlock(&seg_ix.mu);
	return k;
}

static void
live_end(struct live_walk *w)
{
	for (size_t i = 0; i < w->npaths; i++)
		free(w->paths[i]);
	free(w->paths);
	free(w->files->id);
}

static int
seg_list(const struct queue_set *q, int (*fn)(void *, int, const char *),
    void *arg)
{
	struct file_ids files = { .list_fn = fn, .arg = arg };
	struct live_walk *w;
	int n = queue_fs.list(q, file_listed, &files), rc = 0;
	size_t k;

	if (n < 0) {
		free(files.id);
		return -1;
	}
	w = xmalloc(sizeof(*w));
	live_begin(w, q, &files);
	while (rc == 0 && (k = live_next(w)) > 0)
		for (size_t i = 0; rc == 0 && i < k; i++, n++)
			rc = fn(arg, w->qn[i], w->id[i]);
	live_end(w);
	free(w);
	return rc ? -1 : n;
}

static int
seg_scan(const struct queue_set *q, int (*fn)(void *, struct queue_item *),
    void *arg)
{
	struct file_ids files = { .scan_fn = fn, .arg = arg };
	struct live_walk *w = xmalloc(sizeof(*w));
	struct queue_item qi;
	int n = queue_fs.scan(q, file_scanned, &files), rc = 0;
	size_t k;

	live_begin(w, q, &files);
	while (rc == 0 && (k = live_next(w)) > 0)
		for (size_t i = 0; rc == 0 && i < k; i++) {
			struct seg_rec *r;
			int got = -1;
			pthread_mutex_lock(&seg_ix.mu);
			if ((r = seg_find(w->id[i])) != NULL && !r->dead)
				got = item_of(q, r, &qi);
			pthread_mutex_unlock(&seg_ix.mu);
			if (got == 0) {
				n++;
				rc = fn(arg, &qi);
				queue_item_free(&qi);
			}
		}
	live_end(w);
	free(w);
	return n;
}

/* ---- done with ----------------------------------------------------------- */

/* Whether qi lies in a segment rather than in its own file. */
static int
in_segment(const struct queue_item *qi)
{
	return qi->shared;
}

int
seg_append_dead(int *fd, const char *path, const char *id)
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
	seg_set_dead(r);
	if (!r->pinned) {
		r->pinned = 1;
		r->seg->npinned++;
	}
}

/* Index mutex held: the ids retired since, dead and pinned. */
void
seg_take_retired(void)
{
	struct seg_rec *r;

	pthread_mutex_lock(&retired.mu);
	for (size_t i = 0; i < retired.n; i++)
		if ((r = seg_find(retired.id[i])) != NULL)
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

	pthread_mutex_lock(&seg_ix.mu);
	seg_take_retired();
	if ((r = seg_find(qi->env.id)) == NULL) {
		pthread_mutex_unlock(&seg_ix.mu);
		return 0;	/* its segment is gone: dead long ago */
	}
	s = r->seg;
	if (!r->dead) {
		path = seg_sibling(s, WAL_DEAD_SUFFIX);
		rc = seg_append_dead(&s->dead_fd, path, r->id);
		free(path);
		if (rc == 0)
			seg_set_dead(r);
	}
	if (rc == 0 && r->pinned) {
		r->pinned = 0;
		s->npinned--;
	}
	if (rc == 0)
		seg_maybe_drop(s);
	pthread_mutex_unlock(&seg_ix.mu);
	return rc;
}

/* Sealed segments whose records are all dead go (the queue manager's). */
void
queue_segment_sweep(const struct queue_set *q)
{
	pthread_mutex_lock(&seg_ix.mu);
	seg_take_retired();
	for (int i = 0; i < q->count; i++)
		seg_refresh(q, i, 1);
	for (struct seg_file *s = seg_ix.segs, *next; s; s = next) {
		next = s->next;
		seg_maybe_drop(s);
	}
	pthread_mutex_unlock(&seg_ix.mu);
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
	rc = seg_append_dead(&fd, buf_cstr(&path), qi->env.id);
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
