/*
 * queue_write: the durable path from memory to the queue, with group
 * commit. Messages that finish while a batch is being written form the next
 * batch, and a batch costs two flushes however many messages it holds:
 *
 *   1. open  Q/tmp/<pid>.<id> (O_EXCL), write envelope, Received, message
 *   2. flush the files        batch of 1: fdatasync; more: syncfs()
 *   3. rename each to Q/mess/<h>/<id>          atomic: all or nothing
 *   4. flush the renames      batch of 1: fsync(dir); more: syncfs()
 *
 * Only after step 4 does the loop thread send "250 ... queued as <id>" for
 * each message of the batch. A crash before 3 leaves tmp files that
 * indimaild removes (by pid when a worker dies, all of them at start); a
 * message in mess/ is always complete because its data were flushed before
 * its rename. Everything here runs on the libuv thread pool, one batch at a
 * time per process, so the event loop never waits for the disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../core/fsutil.h"
#include "../core/xalloc.h"
#include "queue.h"

struct write_job {
	struct write_job *next;
	struct queue_set *qs;
	int		 qn;
	char		 id[QUEUE_ID_LEN + 1];
	struct buf	 envelope;
	const struct buf *hdr, *msg;
	queue_write_cb	 cb;
	void		*arg;
	int		 ok;
	int		 fd;
	struct buf	 tmp, dir, dst;
	struct buf	 error;
	uint64_t	 started;
};

struct batch {
	uv_work_t	 req;
	struct queue_set *qs;
	struct write_job *jobs;
	size_t		 n;
};

static void
fail(struct write_job *j, const char *step, const char *path)
{
	if (j->error.len == 0)
		buf_printf(&j->error, "%s %s: %s", step, path, strerror(errno));
	j->ok = 0;
}

/* Step 1 for one job: the tmp file, written but not yet flushed. */
static void
write_tmp(struct write_job *j)
{
	struct iovec iov[3];

	buf_printf(&j->tmp, "%s/%d/tmp/%ld.%s", j->qs->path, j->qn,
	    (long)getpid(), j->id);
	buf_printf(&j->dir, "%s/%d/mess/%d", j->qs->path, j->qn,
	    queue_hash(j->id, j->qs->split));
	buf_printf(&j->dst, "%s/%s", buf_cstr(&j->dir), j->id);
	j->fd = open(buf_cstr(&j->tmp), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0640);
	if (j->fd < 0) {
		fail(j, "create", buf_cstr(&j->tmp));
		return;
	}
	iov[0].iov_base = j->envelope.data;
	iov[0].iov_len = j->envelope.len;
	iov[1].iov_base = j->hdr->data;
	iov[1].iov_len = j->hdr->len;
	iov[2].iov_base = j->msg->data;
	iov[2].iov_len = j->msg->len;
	j->ok = 1;
	if (write_iov(j->fd, iov, 3) < 0)
		fail(j, "write", buf_cstr(&j->tmp));
}

/* Flushes what the batch wrote (files or renames); -1 if that failed. */
static int
flush(struct batch *b, int renames)
{
	struct write_job *j = b->jobs;
	int fd, rc;

	if (b->n == 1)
		return renames ? fsync_dir(buf_cstr(&j->dir)) : fdatasync(j->fd);
	/* One flush for the whole file system: the point of group commit. */
	if ((fd = open(b->qs->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = syncfs(fd);
	close(fd);
	return rc;
}

static void
discard(struct write_job *j)
{
	unlink(buf_cstr(&j->tmp));
}

static void
do_batch(uv_work_t *req)
{
	struct batch *b = req->data;
	struct write_job *j;
	int flushed;

	for (j = b->jobs; j; j = j->next)
		write_tmp(j);
	flushed = flush(b, 0) == 0;
	for (j = b->jobs; j; j = j->next) {
		if (j->fd >= 0 && close(j->fd) < 0)
			fail(j, "close", buf_cstr(&j->tmp));
		j->fd = -1;
		if (!flushed && j->ok)
			fail(j, "flush", buf_cstr(&j->tmp));
		if (!j->ok)
			discard(j);
		else if (rename(buf_cstr(&j->tmp), buf_cstr(&j->dst)) < 0) {
			fail(j, "rename", buf_cstr(&j->dst));
			discard(j);
		}
	}
	if (flush(b, 1) == 0)
		return;
	/* The renames may not be durable: refuse them all. */
	for (j = b->jobs; j; j = j->next)
		if (j->ok) {
			fail(j, "fsync", buf_cstr(&j->dir));
			unlink(buf_cstr(&j->dst));
		}
}

static void start_batch(struct queue_set *);

static void
after_batch(uv_work_t *req, int status)
{
	struct batch *b = req->data;
	struct queue_set *qs = b->qs;
	struct write_job *j, *next;

	for (j = b->jobs; j; j = next) {
		double secs = (double)(uv_hrtime() - j->started) / 1e9;
		next = j->next;
		if (status == UV_ECANCELED && j->ok) {
			j->ok = 0;
			buf_appends(&j->error, "write cancelled");
		}
		qs->inflight[j->qn]--;
		j->cb(j->arg, j->ok, j->ok ? NULL : buf_cstr(&j->error), secs,
		    j->qn);
		buf_free(&j->envelope);
		buf_free(&j->error);
		buf_free(&j->tmp);
		buf_free(&j->dir);
		buf_free(&j->dst);
		free(j);
	}
	free(b);
	qs->batch_running = 0;
	if (qs->waiting)
		start_batch(qs);
}

/* Turns every waiting job into one batch on the thread pool. */
static void
start_batch(struct queue_set *qs)
{
	struct batch *b = xcalloc(1, sizeof(*b));

	b->req.data = b;
	b->qs = qs;
	b->jobs = qs->waiting;
	b->n = qs->nwaiting;
	qs->waiting = qs->waiting_tail = NULL;
	qs->nwaiting = 0;
	qs->batch_running = 1;
	qs->batches++;
	qs->batched += b->n;
	if (uv_queue_work(qs->loop, &b->req, do_batch, after_batch) != 0) {
		for (struct write_job *j = b->jobs; j; j = j->next)
			buf_appends(&j->error, "cannot queue the write");
		after_batch(&b->req, 0);
	}
}

void
queue_write(uv_loop_t *loop, struct queue_set *qs,
    const struct queue_envelope *e, const struct buf *hdr,
    const struct buf *msg, queue_write_cb cb, void *arg)
{
	struct write_job *j = xcalloc(1, sizeof(*j));

	j->qs = qs;
	j->qn = queue_pick(qs);
	j->fd = -1;
	qs->inflight[j->qn]++;
	snprintf(j->id, sizeof(j->id), "%s", e->id);
	queue_envelope_format(e, &j->envelope);
	j->hdr = hdr;
	j->msg = msg;
	j->cb = cb;
	j->arg = arg;
	j->started = uv_hrtime();
	qs->loop = loop;
	if (qs->waiting_tail)
		qs->waiting_tail->next = j;
	else
		qs->waiting = j;
	qs->waiting_tail = j;
	qs->nwaiting++;
	if (!qs->batch_running)
		start_batch(qs);
}
