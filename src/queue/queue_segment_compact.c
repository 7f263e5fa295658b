/*
 * queue_segment_compact: the segment backend's compaction (docs/queue.md
 * "Compaction"). A segment stays until every record in it is dead, so a
 * few messages deferred for days would keep their whole segments (up to
 * 64 MiB each). Once a segment takes no more records and has been idle
 * long enough, its live records are written out as message files in mess/
 * (the fs backend's files: the queue manager reads a file first), and
 * then marked dead, so that the segment goes:
 *
 *   1. each record's payload copied to tmp/<pid>.<id>
 *   2. the group flushed, renamed into mess/<h>/<id>, the folders flushed
 *      (fs_commit: two flushes for the group)
 *   3. each id appended to its segment's dead list; a segment whose
 *      records are now all dead is removed
 *
 * A crash after 2 leaves a message both as a file and as a live record:
 * the listing at start takes the file and writes the record's id to the
 * dead list (queue_segment.c), so it is delivered once. A crash before 2
 * leaves files in tmp/, which the master removes.
 *
 * Which segments: idle (no append) for COMPACT_SPARSE_S with a quarter or
 * less of its bytes live, or idle for COMPACT_OLD_S whatever is live. So
 * the segments of a queue hold at most about four times the bytes of
 * their live messages once things settle, and a message deferred for an
 * hour lives in a file of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/buf.h"
#include "../lib/testhook.h"
#include "../lib/fsutil.h"
#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "queue_segment_int.h"
#include "queue_wal.h"
#include "queue_wal_int.h"

#define COMPACT_SPARSE_S	300
#define COMPACT_OLD_S		3600
#define MOVE_CHUNK		256	/* files flushed together */

/*
 * A test hook: INDIMAIL_TEST_COMPACT_AFTER_S=N makes both ages N seconds,
 * =N,M the sparse one N and the other M (docs/architecture.md).
 */
static void
ages(long *sparse, long *old)
{
	const char *e = getenv("INDIMAIL_TEST_COMPACT_AFTER_S");
	char *end;

	*sparse = COMPACT_SPARSE_S;
	*old = COMPACT_OLD_S;
	if (e && *e) {
		*sparse = *old = strtol(e, &end, 10);
		if (*end == ',')
			*old = strtol(end + 1, NULL, 10);
	}
}

/* Whether s is to be compacted now: idle and sparse, or idle long. */
static int
due(const struct seg_file *s, time_t now, long sparse, long old)
{
	struct stat st;
	long idle;

	if (!s->complete || s->ndead >= s->nrecs || stat(s->path, &st) < 0)
		return 0;
	idle = (long)(now - st.st_mtime);
	return idle >= old || (idle >= sparse && s->live_bytes * 4 <= s->scanned);
}

static void
move_delay(void)
{
	static struct test_hook delay = TEST_HOOK(
	    "INDIMAIL_TEST_MOVE_DELAY_MS", 0);

	test_hook_hold(&delay);
}

static void
moves_add(struct queue_moves *mv, int qn, const char *id)
{
	if (mv->n == mv->cap) {
		mv->cap = mv->cap ? mv->cap * 2 : 64;
		mv->m = xrealloc(mv->m, mv->cap * sizeof(*mv->m));
	}
	mv->m[mv->n].queue = qn;
	snprintf(mv->m[mv->n].id, sizeof(mv->m[mv->n].id), "%s", id);
	mv->m[mv->n].moved = 0;
	mv->n++;
}

void
queue_segment_compactable(size_t max, struct queue_moves *mv)
{
	time_t now = time(NULL);
	long sparse, old;

	ages(&sparse, &old);
	pthread_mutex_lock(&seg_ix.mu);
	seg_take_retired();
	for (struct seg_file *s = seg_ix.segs; s && mv->n < max; s = s->next) {
		if (!due(s, now, sparse, old))
			continue;
		mv->segments++;
		for (size_t i = 0; i < s->nrecs && mv->n < max; i++)
			if (!seg_rec_at(s, i)->dead)
				moves_add(mv, s->qn, seg_rec_at(s, i)->id);
	}
	pthread_mutex_unlock(&seg_ix.mu);
}

void
queue_moves_free(struct queue_moves *mv)
{
	free(mv->m);
	memset(mv, 0, sizeof(*mv));
}

/* One message being written out: its record and its files. */
struct move {
	struct queue_move *m;
	char		*seg;		/* the segment's path */
	uint64_t	 offset, len;
	struct buf	 tmp, dst, dir;
};

/* Where m's record lies, if it is live; 0 or -1. */
static int
locate(struct move *mo)
{
	struct seg_rec *r;
	int rc = -1;

	pthread_mutex_lock(&seg_ix.mu);
	if ((r = seg_find(mo->m->id)) != NULL && !r->dead &&
	    r->seg->qn == mo->m->queue) {
		mo->seg = xstrdup(r->seg->path);
		mo->offset = r->offset;
		mo->len = r->len;
		rc = 0;
	}
	pthread_mutex_unlock(&seg_ix.mu);
	return rc;
}

/* Step 1: the record copied to tmp/; the open file, or -1 (logged). */
static int
copy_out(const struct queue_set *q, struct move *mo)
{
	int in, out = -1;
	char *slash;

	buf_printf(&mo->tmp, "%s/%d/tmp/%ld.%s", q->path, mo->m->queue,
	    (long)log_pid(), mo->m->id);
	queue_mess_path(q, mo->m->queue, mo->m->id, &mo->dst);
	buf_set(&mo->dir, mo->dst.data, mo->dst.len);
	if ((slash = strrchr(mo->dir.data, '/')) != NULL) {
		*slash = '\0';
		mo->dir.len = (size_t)(slash - mo->dir.data);
	}
	if ((in = open(mo->seg, O_RDONLY | O_CLOEXEC)) >= 0 &&
	    (out = open(buf_cstr(&mo->tmp), O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC, 0640)) >= 0 &&
	    wal_copy_range(in, (off_t)mo->offset, out, mo->len) < 0) {
		close(out);
		out = -1;
		unlink(buf_cstr(&mo->tmp));
	}
	if (out < 0)
		log_event(LOG_WARN, "segment_compact_failed", "qid=%s step=copy "
		    "segment=%s error=\"%s\"", mo->m->id, mo->seg,
		    strerror(errno));
	if (in >= 0)
		close(in);
	return out;
}

/*
 * Step 3 for the messages whose files are in mess/: their records dead.
 * One already dead was superseded meanwhile by a listing that found its
 * file (queue_segment.c), or its segment is gone with it: the file is the
 * message. A record whose dead-list line cannot be written keeps the
 * message: its file goes again (else the queue would hold it twice).
 */
static size_t
bury(struct move *mo, const struct fs_commit *c, size_t n)
{
	size_t moved = 0;

	pthread_mutex_lock(&seg_ix.mu);
	for (size_t i = 0; i < n; i++) {
		struct seg_rec *r = seg_find(mo[i].m->id);
		char *path;
		int rc = 0;
		if (!c[i].ok)
			continue;
		if (r && !r->dead) {
			path = seg_sibling(r->seg, WAL_DEAD_SUFFIX);
			if ((rc = seg_append_dead(&r->seg->dead_fd, path,
			    r->id)) == 0)
				seg_set_dead(r);
			free(path);
		}
		if (rc < 0) {
			log_event(LOG_WARN, "segment_compact_failed", "qid=%s "
			    "step=dead error=\"%s\"", mo[i].m->id,
			    strerror(errno));
			unlink(c[i].dst);
			continue;
		}
		mo[i].m->moved = 1;
		moved++;
	}
	for (size_t i = 0; i < n; i++) {	/* a segment now all dead goes */
		struct seg_rec *r = seg_find(mo[i].m->id);
		if (r && mo[i].m->moved)
			seg_maybe_drop(r->seg);
	}
	pthread_mutex_unlock(&seg_ix.mu);
	return moved;
}

static size_t
move_chunk(const struct queue_set *q, struct queue_move *m, size_t n)
{
	struct move *mo = xcalloc(n, sizeof(*mo));
	struct fs_commit *c = xcalloc(n, sizeof(*c));
	size_t k = 0, moved;

	for (size_t i = 0; i < n; i++) {
		int fd;
		mo[k].m = &m[i];
		if (locate(&mo[k]) < 0)
			continue;	/* removed, or moved, meanwhile */
		if ((fd = copy_out(q, &mo[k])) < 0) {
			free(mo[k].seg);
			buf_free(&mo[k].tmp);
			buf_free(&mo[k].dst);
			buf_free(&mo[k].dir);
			memset(&mo[k], 0, sizeof(mo[k]));
			continue;
		}
		c[k].fd = fd;
		c[k].tmp = buf_cstr(&mo[k].tmp);
		c[k].dst = buf_cstr(&mo[k].dst);
		c[k].dir = buf_cstr(&mo[k].dir);
		k++;
	}
	fs_commit(c, k);
	for (size_t i = 0; i < k; i++)
		if (!c[i].ok)
			log_event(LOG_WARN, "segment_compact_failed", "qid=%s "
			    "step=%s path=%s error=\"%s\"", mo[i].m->id,
			    c[i].step ? c[i].step : "commit",
			    c[i].path ? c[i].path : c[i].dst,
			    strerror(c[i].error));
	move_delay();
	moved = bury(mo, c, k);
	for (size_t i = 0; i < k; i++) {
		free(mo[i].seg);
		buf_free(&mo[i].tmp);
		buf_free(&mo[i].dst);
		buf_free(&mo[i].dir);
	}
	free(mo);
	free(c);
	return moved;
}

size_t
queue_segment_move(const struct queue_set *q, struct queue_moves *mv)
{
	size_t moved = 0;

	for (size_t i = 0; i < mv->n; i += MOVE_CHUNK)
		moved += move_chunk(q, mv->m + i,
		    mv->n - i < MOVE_CHUNK ? mv->n - i : MOVE_CHUNK);
	return moved;
}
