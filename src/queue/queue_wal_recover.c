/*
 * queue_wal_recover: what a dead writer's segments still owe the queue
 * (docs/queue.md "The wal backend", "Recovery"). The master runs it at
 * start for every writer no longer running, and for one worker when it
 * dies, before tmp/ is cleaned. For each segment <pid>.<seq>:
 *
 *   records up to the mark: their files were flushed in tmp/ before the
 *     mark moved; one still in tmp/ is renamed into mess/ (the rest are in
 *     mess/ already, or delivered and gone: never written again)
 *   records past the mark: written to tmp/, flushed together, the mark
 *     moved past them, renamed into mess/
 *   a torn or corrupt tail (the walk stops there): never acknowledged
 *   the renames flushed, then the segment and its mark removed.
 *
 * A segment shorter than its mark is one whose removal (every record out,
 * its blocks being freed) was cut: only removed. A record whose id is in
 * the segment's dead list (<pid>.<seq>.dead, written by the segment
 * backend's queue manager, queue_segment.c) was delivered or removed: never
 * written out, whatever the backend is now.
 *
 * Every step can be cut by a crash and run again: nothing reaches mess/
 * that the mark does not cover, so a replay never revives a delivered
 * message.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/batch.h"
#include "../lib/fsutil.h"
#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "queue.h"
#include "queue_wal.h"
#include "queue_wal_int.h"

/* One segment being recovered. */
struct recovery {
	const struct queue_set *q;
	int		 qn;
	long		 pid;		/* its writer */
	const char	*path, *mark_path;
	struct buf	 seg;		/* the whole segment */
	char		(*dead)[QUEUE_ID_LEN + 1];	/* its dead list, sorted */
	size_t		 ndead;
	uint64_t	 mark;
	void		(*found)(void *, int, const char *);
	void		*arg;
	int		 moved, replayed;
	int		 error;		/* errno of the step that failed */
};

static void
tmp_path(const struct recovery *r, const char *id, struct buf *b)
{
	buf_clear(b);
	buf_printf(b, "%s/%d/tmp/%ld.%s", r->q->path, r->qn, r->pid, id);
}

static int
cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, QUEUE_ID_LEN);
}

size_t
wal_dead_read(const char *segment, char (**ids)[QUEUE_ID_LEN + 1])
{
	struct buf path = BUF_INIT, data = BUF_INIT, err = BUF_INIT;
	size_t n = 0, cap = 0, off = 0;
	char id[QUEUE_ID_LEN + 1];

	*ids = NULL;
	buf_printf(&path, "%s%s", segment, WAL_DEAD_SUFFIX);
	if (read_small_file(buf_cstr(&path), WAL_SEGMENT_MAX, &data, &err) == 0)
		while (wal_dead_next((unsigned char *)data.data, data.len, &off,
		    id)) {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				*ids = xrealloc(*ids, cap * sizeof(**ids));
			}
			memcpy((*ids)[n++], id, sizeof(id));
		}
	if (n)
		qsort(*ids, n, sizeof(**ids), cmp_id);
	buf_free(&path);
	buf_free(&data);
	buf_free(&err);
	return n;
}

uint64_t
wal_mark_read(const char *mark_path)
{
	struct buf m = BUF_INIT, err = BUF_INIT;
	uint64_t off = 0;

	if (read_small_file(mark_path, WAL_MARK_SIZE, &m, &err) < 0 ||
	    wal_mark_decode((unsigned char *)m.data, m.len, &off) < 0)
		off = 0;
	buf_free(&m);
	buf_free(&err);
	return off;
}

/* Whether id is in the segment's dead list. */
static int
dead(const struct recovery *r, const char *id)
{
	return r->ndead > 0 && bsearch(id, r->dead, r->ndead,
	    sizeof(*r->dead), cmp_id) != NULL;
}

/* Reads the whole segment and its mark (none or corrupt: 0). */
static int
load(struct recovery *r)
{
	struct buf err = BUF_INIT;
	int fd = open(r->path, O_RDONLY | O_CLOEXEC), rc;
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	rc = read_small_fd(fd, r->path, (size_t)st.st_size, &r->seg, &err);
	close(fd);
	r->ndead = wal_dead_read(r->path, &r->dead);
	r->mark = wal_mark_read(r->mark_path);
	buf_free(&err);
	return rc;
}

/* Into mess/, told to the caller. */
static int
move_in(struct recovery *r, const char *id, const char *tmp)
{
	struct buf dst = BUF_INIT;
	int rc;

	queue_mess_path(r->q, r->qn, id, &dst);
	rc = rename(tmp, buf_cstr(&dst));
	if (rc == 0) {
		r->moved++;
		if (r->found)
			r->found(r->arg, r->qn, id);
	} else
		log_event(LOG_ERROR, "wal_recover_failed", "qid=%s step=rename "
		    "error=\"%s\"", id, strerror(errno));
	buf_free(&dst);
	return rc;
}

/* Writes one record past the mark to tmp/; the open fd, or -1. */
static int
write_out(struct recovery *r, const struct wal_record *w, struct buf *tmp)
{
	struct iovec iov = { r->seg.data + w->offset, w->len };
	int fd;

	tmp_path(r, w->id, tmp);
	fd = open(buf_cstr(tmp), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0640);
	if (fd >= 0 && write_iov(fd, &iov, 1) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* The records the mark covers: what is still in tmp/ goes to mess/. */
static uint64_t
finish_marked(struct recovery *r)
{
	struct buf tmp = BUF_INIT;
	struct wal_record w;
	uint64_t off = 0;

	while (off < r->mark && wal_record_parse((unsigned char *)r->seg.data,
	    r->seg.len, off, &w) && w.end <= r->mark) {
		tmp_path(r, w.id, &tmp);
		if (access(buf_cstr(&tmp), F_OK) == 0)
			move_in(r, w.id, buf_cstr(&tmp));
		off = w.end;
	}
	buf_free(&tmp);
	return off;
}

/* Moves the mark to end, durably, after the files it covers are flushed. */
static int
write_mark(struct recovery *r, const int *fds, size_t n, uint64_t end)
{
	unsigned char m[WAL_MARK_SIZE];
	int fd, rc;

	if (sync_files(fds, n) < 0)
		return -1;
	wal_mark_encode(m, end);
	fd = open(r->mark_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	rc = pwrite(fd, m, sizeof(m), 0) == (ssize_t)sizeof(m) &&
	    fdatasync(fd) == 0 ? 0 : -1;
	close(fd);
	return rc;
}

/* The records past the mark, up to a torn tail: written, marked, moved. */
static int
replay(struct recovery *r, uint64_t from)
{
	struct wal_record *ws = NULL, w;
	int *fds = NULL, rc = 0;
	size_t n = 0;
	struct buf tmp = BUF_INIT;
	uint64_t off = from;

	while (rc == 0 && wal_record_parse((unsigned char *)r->seg.data,
	    r->seg.len, off, &w)) {
		if (dead(r, w.id)) {	/* delivered or removed */
			off = w.end;
			continue;
		}
		ws = xrealloc(ws, (n + 1) * sizeof(*ws));
		fds = xrealloc(fds, (n + 1) * sizeof(*fds));
		ws[n] = w;
		if ((fds[n] = write_out(r, &w, &tmp)) < 0)
			rc = -1;
		else
			n++;
		off = w.end;
	}
	if (off < r->seg.len)
		log_event(LOG_WARN, "wal_torn_tail", "path=%s offset=%llu "
		    "bytes=%llu", r->path, (unsigned long long)off,
		    (unsigned long long)(r->seg.len - off));
	if (rc == 0 && n > 0)
		rc = write_mark(r, fds, n, off);
	if (rc < 0)
		r->error = errno;
	for (size_t i = 0; i < n; i++) {
		close(fds[i]);
		tmp_path(r, ws[i].id, &tmp);
		if (rc == 0 && move_in(r, ws[i].id, buf_cstr(&tmp)) == 0)
			r->replayed++;
	}
	free(ws);
	free(fds);
	buf_free(&tmp);
	return rc;
}

/* syncfs() of the file system path is on. */
static int
flush_fs(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = syncfs(fd);
	close(fd);
	return rc;
}

/* One segment; 0 when it is done with and removed. */
static int
recover_segment(struct recovery *r)
{
	uint64_t off;
	int rc;

	if (load(r) < 0) {
		log_event(LOG_ERROR, "wal_recover_failed", "path=%s error=\"%s\"",
		    r->path, strerror(errno));
		return -1;
	}
	off = finish_marked(r);
	/* shorter than its mark: a removal cut short (every record was out) */
	rc = r->seg.len < r->mark ? 0 : replay(r, off);
	/* the renames durable before the segment that could redo them goes */
	if (rc == 0 && (r->moved == 0 || flush_fs(r->path) == 0)) {
		struct buf d = BUF_INIT;
		unlink(r->path);
		unlink(r->mark_path);
		buf_printf(&d, "%s%s", r->path, WAL_DEAD_SUFFIX);
		unlink(buf_cstr(&d));
		buf_free(&d);
	} else
		rc = -1;
	if (rc == 0)
		log_event(LOG_INFO, "wal_recovered", "path=%s writer=%ld "
		    "moved=%d replayed=%d", r->path, r->pid, r->moved,
		    r->replayed);
	else
		log_event(LOG_ERROR, "wal_recovered", "path=%s writer=%ld "
		    "moved=%d replayed=%d kept=1 error=\"%s\"", r->path,
		    r->pid, r->moved, r->replayed, strerror(r->error ?
		    r->error : errno));
	buf_free(&r->seg);
	free(r->dead);
	return rc;
}

long
wal_segment_writer(const char *name)
{
	char *end;
	long pid = strtol(name, &end, 10);

	if (pid <= 0 || *end != '.')
		return 0;
	strtoul(end + 1, &end, 10);
	return *end == '\0' ? pid : 0;
}

static int
wanted(const char *name, long pid)
{
	long w = wal_segment_writer(name);

	if (w == 0)
		return 0;
	return pid ? w == pid : !queue_writer_alive(name);
}

/* Every wanted segment of queue qn; how many messages went to mess/. */
static int
recover_queue(const struct queue_set *q, int qn, long pid,
    void (*found)(void *, int, const char *), void *arg)
{
	struct buf dir = BUF_INIT, p = BUF_INIT, m = BUF_INIT;
	struct dirent *e;
	DIR *d;
	int moved = 0;

	buf_printf(&dir, "%s/%d/wal", q->path, qn);
	if ((d = opendir(buf_cstr(&dir))) == NULL) {
		buf_free(&dir);
		return 0;
	}
	while ((e = readdir(d)) != NULL) {
		struct recovery r = { .q = q, .qn = qn, .found = found,
		    .arg = arg };
		if (!wanted(e->d_name, pid))
			continue;
		buf_clear(&p);
		buf_clear(&m);
		buf_printf(&p, "%s/%s", buf_cstr(&dir), e->d_name);
		buf_printf(&m, "%s%s", buf_cstr(&p), WAL_MARK_SUFFIX);
		r.path = buf_cstr(&p);
		r.mark_path = buf_cstr(&m);
		r.pid = wal_segment_writer(e->d_name);
		recover_segment(&r);
		moved += r.moved;
	}
	closedir(d);
	buf_free(&dir);
	buf_free(&p);
	buf_free(&m);
	return moved;
}

int
queue_wal_recover(const struct queue_set *q, long pid,
    void (*found)(void *, int queue, const char *id), void *arg)
{
	int moved = 0;

	if (q->backend == &queue_segment)	/* the messages' home: kept */
		return 0;
	for (int i = 0; i < q->count; i++)
		moved += recover_queue(q, i, pid, found, arg);
	return moved;
}
