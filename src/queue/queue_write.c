/*
 * queue_write: the durable path from memory to the queue, run on the libuv
 * thread pool so the loop never waits for the disk:
 *
 *   1. open  Q/tmp/<pid>.<id>  (O_EXCL)        invisible to everyone
 *   2. write envelope, Received: header, message
 *   3. fdatasync(file), close
 *   4. rename to Q/mess/<h>/<id>               atomic: all or nothing
 *   5. fsync(Q/mess/<h>)                       the rename itself is durable
 *
 * Only after step 5 does the loop thread send "250 ... queued as <id>".
 * A crash before 4 leaves a tmp file that indimaild removes (by pid when a
 * worker dies, all of them at start); after 5 the message is complete.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../core/xalloc.h"
#include "queue.h"

struct write_job {
	uv_work_t	 req;
	struct queue_set *qs;
	int		 qn;
	char		 id[QUEUE_ID_LEN + 1];
	struct buf	 envelope;
	const struct buf *hdr, *msg;
	queue_write_cb	 cb;
	void		*arg;
	int		 ok;
	struct buf	 error;
	uint64_t	 started;
};

static int
write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++, n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

static int
fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static void
fail(struct write_job *j, const char *step, const char *path)
{
	buf_printf(&j->error, "%s %s: %s", step, path, strerror(errno));
}

static void write_file(struct write_job *, const char *, const char *,
    const char *);

/* Runs on a thread-pool thread: touches only the job. */
static void
do_write(uv_work_t *req)
{
	struct write_job *j = req->data;
	struct buf tb = BUF_INIT, db = BUF_INIT, fb = BUF_INIT;

	buf_printf(&tb, "%s/%d/tmp/%ld.%s", j->qs->path, j->qn,
	    (long)getpid(), j->id);
	buf_printf(&db, "%s/%d/mess/%d", j->qs->path, j->qn,
	    queue_hash(j->id, j->qs->split));
	buf_printf(&fb, "%s/%s", buf_cstr(&db), j->id);
	write_file(j, buf_cstr(&tb), buf_cstr(&db), buf_cstr(&fb));
	buf_free(&tb);
	buf_free(&db);
	buf_free(&fb);
}

static void
write_file(struct write_job *j, const char *tmp, const char *dir,
    const char *dst)
{
	struct iovec iov[3];
	int fd;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0) {
		fail(j, "create", tmp);
		return;
	}
	iov[0].iov_base = j->envelope.data;
	iov[0].iov_len = j->envelope.len;
	iov[1].iov_base = j->hdr->data;
	iov[1].iov_len = j->hdr->len;
	iov[2].iov_base = j->msg->data;
	iov[2].iov_len = j->msg->len;
	if (write_all(fd, iov, 3) < 0) {
		fail(j, "write", tmp);
		goto bad;
	}
	if (fdatasync(fd) < 0) {
		fail(j, "fdatasync", tmp);
		goto bad;
	}
	if (close(fd) < 0) {
		fd = -1;
		fail(j, "close", tmp);
		goto bad;
	}
	fd = -1;
	if (rename(tmp, dst) < 0) {
		fail(j, "rename", dst);
		goto bad;
	}
	if (fsync_dir(dir) < 0) {
		/* The file is in place but maybe not durable: still refuse. */
		fail(j, "fsync", dir);
		unlink(dst);
		return;
	}
	j->ok = 1;
	return;
bad:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
}

static void
after_write(uv_work_t *req, int status)
{
	struct write_job *j = req->data;
	double secs = (double)(uv_hrtime() - j->started) / 1e9;

	j->qs->inflight[j->qn]--;
	if (status == UV_ECANCELED)
		buf_appends(&j->error, "write cancelled");
	j->cb(j->arg, j->ok, j->ok ? NULL : buf_cstr(&j->error), secs, j->qn);
	buf_free(&j->envelope);
	buf_free(&j->error);
	free(j);
}

void
queue_write(uv_loop_t *loop, struct queue_set *qs,
    const struct queue_envelope *e, const struct buf *hdr,
    const struct buf *msg, queue_write_cb cb, void *arg)
{
	struct write_job *j = xcalloc(1, sizeof(*j));

	j->req.data = j;
	j->qs = qs;
	j->qn = queue_pick(qs);
	qs->inflight[j->qn]++;
	snprintf(j->id, sizeof(j->id), "%s", e->id);
	queue_envelope_format(e, &j->envelope);
	j->hdr = hdr;
	j->msg = msg;
	j->cb = cb;
	j->arg = arg;
	j->started = uv_hrtime();
	if (uv_queue_work(loop, &j->req, do_write, after_write) != 0) {
		buf_appends(&j->error, "cannot queue the write");
		after_write(&j->req, 0);
	}
}
