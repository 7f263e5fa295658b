/*
 * queue_write: the durable path from memory to the queue, with group
 * commit. Messages that finish while a batch is being written form the next
 * batch, and a batch costs two flushes however many messages it holds:
 *
 *   1. open  Q/tmp/<pid>.<id> (O_EXCL), write envelope, Received, message
 *   2. flush the files        batch of 1: fdatasync; more: syncfs() per fs
 *   3. rename each to Q/mess/<h>/<id>          atomic: all or nothing
 *   4. flush the renames      batch of 1: fsync(dir); more: syncfs() per fs
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

#include "../lib/batch.h"
#include "../lib/fsutil.h"
#include "../lib/xalloc.h"
#include "queue.h"

struct write_job {
	struct batch_item item;		/* first: the batcher's link */
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
	if (j->envelope.len > QUEUE_ENVELOPE_MAX) {	/* could not be read back */
		buf_printf(&j->error, "envelope of %zu bytes is over the "
		    "%d-byte limit", j->envelope.len, QUEUE_ENVELOPE_MAX);
		return;
	}
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

/* Runs on a pool thread: steps 1 to 4 for every job of the batch. */
static void
write_batch(struct batch_item *items, size_t n, void *ctx)
{
	struct write_job *j;
	int *fds = xcalloc(n, sizeof(int)), synced;
	const char **dirs = xcalloc(n, sizeof(char *));
	size_t nf = 0, nd = 0;

	(void)ctx;
	for (struct batch_item *it = items; it; it = it->next) {
		j = (struct write_job *)it;
		write_tmp(j);
		if (j->ok)
			fds[nf++] = j->fd;
	}
	synced = sync_files(fds, nf) == 0;
	for (struct batch_item *it = items; it; it = it->next) {
		j = (struct write_job *)it;
		if (j->fd >= 0 && close(j->fd) < 0)
			fail(j, "close", buf_cstr(&j->tmp));
		j->fd = -1;
		if (!synced && j->ok)
			fail(j, "flush", buf_cstr(&j->tmp));
		if (j->ok && rename(buf_cstr(&j->tmp), buf_cstr(&j->dst)) < 0)
			fail(j, "rename", buf_cstr(&j->dst));
		if (!j->ok)
			unlink(buf_cstr(&j->tmp));
		else
			dirs[nd++] = buf_cstr(&j->dir);
	}
	if (sync_dirs(dirs, nd) < 0)	/* the renames may not be durable */
		for (struct batch_item *it = items; it; it = it->next) {
			j = (struct write_job *)it;
			if (j->ok) {
				fail(j, "fsync", buf_cstr(&j->dir));
				unlink(buf_cstr(&j->dst));
			}
		}
	free(fds);
	free(dirs);
}

/* Runs on the loop thread: tells every session of the batch. */
static void
batch_written(struct batch_item *items, size_t n, void *ctx, int status)
{
	struct batch_item *it, *next;

	(void)n;
	(void)ctx;
	for (it = items; it; it = next) {
		struct write_job *j = (struct write_job *)it;
		double secs = (double)(uv_hrtime() - j->started) / 1e9;
		next = it->next;
		if (status != 0 && j->ok) {
			j->ok = 0;
			buf_appends(&j->error, "write cancelled");
		}
		j->qs->inflight[j->qn]--;
		j->cb(j->arg, j->ok, j->ok ? NULL : buf_cstr(&j->error), secs,
		    j->qn);
		buf_free(&j->envelope);
		buf_free(&j->error);
		buf_free(&j->tmp);
		buf_free(&j->dir);
		buf_free(&j->dst);
		free(j);
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
	if (qs->writer.work == NULL) {
		qs->writer.loop = loop;
		qs->writer.work = write_batch;
		qs->writer.done = batch_written;
	}
	batcher_add(&qs->writer, &j->item);
}
