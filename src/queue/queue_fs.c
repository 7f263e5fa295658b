/*
 * queue_fs: the queue backend of plain files (docs/queue.md): the durable
 * write with group commit, reading and scanning envelopes, retiring a
 * message to done/ and removing it; its journal is queue_journal.c.
 *
 * The write path, with group commit. Messages that finish while a batch is
 * being written form the next batch, and a batch costs two flushes however
 * many messages it holds. A batch of one:
 *
 *   1. open  Q/tmp/<pid>.<id> (O_EXCL), write envelope, Received, message
 *   2. fdatasync the file
 *   3. rename it to Q/mess/<h>/<id>            atomic: all or nothing
 *   4. fsync(Q/mess/<h>)
 *
 * A larger batch writes in place, without the renames (their folder
 * updates were a tenth of the server's time at 100 sessions):
 *
 *   1. open  Q/mess/<h>/<id> (O_EXCL, mode QUEUE_FILE_WRITING), write
 *   2. syncfs() per file system                 the data are durable
 *   3. fchmod each to QUEUE_FILE_MODE            now a complete message
 *   4. syncfs() per file system                 the modes and names too
 *
 * Only after step 4 does the loop thread send "250 ... queued as <id>" for
 * each message of the batch. A crash before 3 leaves tmp files that
 * indimaild removes (by pid when a worker dies, all of them at start), or
 * files in mess/ still marked as being written, which no reader takes for
 * a message and the queue manager removes once their writer is gone. A
 * complete message is always whole: its data were flushed before its
 * rename or its mode change. Everything here runs on the libuv thread
 * pool, one batch at a time per process, so the event loop never waits for
 * the disk.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../lib/batch.h"
#include "../lib/diag.h"
#include "../lib/fsutil.h"
#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "queue.h"

struct write_job {
	struct batch_item item;		/* first: the batcher's link */
	struct queue_set *qs;
	int		 qn;
	char		 id[QUEUE_ID_LEN + 1];
	struct buf	 envelope;
	size_t		 npieces;
	queue_write_cb	 cb;
	void		*arg;
	int		 ok;
	int		 fd;
	struct buf	 tmp, dir, dst;
	const char	*made;		/* the file created: tmp or dst */
	struct buf	 error;
	uint64_t	 started;
	struct msg_piece pieces[];	/* npieces of them */
};

static void
fail(struct write_job *j, const char *step, const char *path)
{
	if (j->error.len == 0)
		buf_printf(&j->error, "%s %s: %s", step, path, strerror(errno));
	j->ok = 0;
}

/*
 * Step 1 for one job: its file written but not yet flushed, under tmp/
 * (a batch of one) or in place in mess/, marked as being written.
 */
static void
write_file(struct write_job *j, int in_place)
{
	struct iovec iov[1 + QUEUE_PIECES_MAX];
	const char *path;

	buf_printf(&j->tmp, "%s/%d/tmp/%ld.%s", j->qs->path, j->qn,
	    (long)log_pid(), j->id);
	buf_printf(&j->dir, "%s/%d/mess/%d", j->qs->path, j->qn,
	    queue_hash(j->id, j->qs->split));
	buf_printf(&j->dst, "%s/%s", buf_cstr(&j->dir), j->id);
	if (j->envelope.len > QUEUE_ENVELOPE_MAX) {	/* could not be read back */
		buf_printf(&j->error, "envelope of %zu bytes is over the "
		    "%d-byte limit", j->envelope.len, QUEUE_ENVELOPE_MAX);
		return;
	}
	path = in_place ? buf_cstr(&j->dst) : buf_cstr(&j->tmp);
	j->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    in_place ? QUEUE_FILE_WRITING : QUEUE_FILE_MODE);
	if (j->fd < 0) {
		fail(j, "create", path);
		return;
	}
	j->made = path;
	iov[0].iov_base = j->envelope.data;
	iov[0].iov_len = j->envelope.len;
	for (size_t i = 0; i < j->npieces; i++) {
		iov[1 + i].iov_base = (void *)j->pieces[i].data;
		iov[1 + i].iov_len = j->pieces[i].len;
	}
	j->ok = 1;
	if (write_iov(j->fd, iov, 1 + (int)j->npieces) < 0)
		fail(j, "write", path);
}

/* A job whose file could not be written: nothing of it stays. */
static void
drop_file(struct write_job *j)
{
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	if (j->made)
		unlink(j->made);
}

/* Runs on a pool thread: steps 1 to 4 for every job of the batch. */
static void
write_batch(struct batch_item *items, size_t n, void *ctx)
{
	struct fs_commit *c = xcalloc(n, sizeof(*c));
	struct write_job **jobs = xcalloc(n, sizeof(*jobs));
	size_t nc = 0;
	int in_place = n > 1;

	(void)ctx;
	for (struct batch_item *it = items; it; it = it->next) {
		struct write_job *j = (struct write_job *)it;
		write_file(j, in_place);
		if (!j->ok) {
			drop_file(j);
			continue;
		}
		c[nc].fd = j->fd;
		c[nc].tmp = buf_cstr(&j->tmp);
		c[nc].dst = buf_cstr(&j->dst);
		c[nc].dir = buf_cstr(&j->dir);
		j->fd = -1;
		jobs[nc++] = j;
	}
	if (in_place)
		fs_commit_in_place(c, nc, QUEUE_FILE_MODE);
	else
		fs_commit(c, nc);
	for (size_t k = 0; k < nc; k++)
		if (!c[k].ok) {
			errno = c[k].error;
			fail(jobs[k], c[k].step, c[k].path);
		}
	free(c);
	free(jobs);
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

static int
fs_write(uv_loop_t *loop, struct queue_set *qs, const struct envelope *e,
    const struct msg_piece *pieces, size_t npieces, queue_write_cb cb,
    void *arg)
{
	struct write_job *j;

	if (npieces > QUEUE_PIECES_MAX)
		panic("queue write of %zu pieces", npieces);
	j = xcalloc(1, sizeof(*j) + npieces * sizeof(*pieces));

	j->qs = qs;
	j->qn = queue_pick(qs);
	j->fd = -1;
	qs->inflight[j->qn]++;
	snprintf(j->id, sizeof(j->id), "%s", e->id);
	queue_envelope_format(e, &j->envelope);
	memcpy(j->pieces, pieces, npieces * sizeof(*pieces));
	j->npieces = npieces;
	j->cb = cb;
	j->arg = arg;
	j->started = uv_hrtime();
	if (qs->writer.work == NULL) {
		qs->writer.loop = loop;
		qs->writer.work = write_batch;
		qs->writer.done = batch_written;
		qs->writer.max = BATCH_MAX;	/* a file open per message */
	}
	batcher_add(&qs->writer, &j->item);
	return QUEUE_WRITE_PENDING;
}

/*
 * Reads the start of a queue file into b until it holds the envelope's
 * empty line, in growing chunks: a large envelope is read whole, the
 * message only as far as the last chunk reached. Returns the envelope's
 * length, or 0 when the file has none within QUEUE_ENVELOPE_MAX bytes.
 */
static size_t
read_envelope(int fd, struct buf *b)
{
	size_t chunk = 65536, from = 0;
	const char *end;
	ssize_t n;

	while (b->len < QUEUE_ENVELOPE_MAX) {
		if (chunk > QUEUE_ENVELOPE_MAX - b->len)
			chunk = QUEUE_ENVELOPE_MAX - b->len;
		buf_reserve(b, chunk);
		n = pread(fd, b->data + b->len, chunk, (off_t)b->len);
		if (n <= 0)
			return 0;
		b->len += (size_t)n;
		b->data[b->len] = '\0';
		if ((end = memmem(b->data + from, b->len - from, "\n\n", 2)))
			return (size_t)(end - b->data) + 2;
		from = b->len - 1;	/* the empty line may straddle chunks */
		chunk *= 2;
	}
	return 0;
}

/* Reads one message's envelope (never its message); 0 or -1. */
static int
read_path(const struct queue_set *q, const char *path, int qn,
    struct queue_item *qi)
{
	struct stat st;
	struct buf b = BUF_INIT;
	size_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;

	memset(qi, 0, sizeof(*qi));
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	if (QUEUE_FILE_INCOMPLETE(st.st_mode)) {
		close(fd);
		errno = EINPROGRESS;	/* not a message (yet) */
		return -1;
	}
	if ((len = read_envelope(fd, &b)) > 0)
		rc = queue_envelope_parse(b.data, len, &qi->env,
		    &qi->body_offset);
	close(fd);
	buf_free(&b);
	if (rc < 0)
		return -1;
	qi->size = (size_t)st.st_size - qi->body_offset;
	qi->path = xstrdup(path);
	qi->queue = qn;
	queue_state_path(q, qn, qi->env.id, &b);
	qi->journal = b.data;		/* the buffer's memory moves */
	return 0;
}

static int
fs_read(const struct queue_set *q, int qn, const char *id,
    struct queue_item *qi)
{
	struct buf p = BUF_INIT;
	int rc;

	queue_mess_path(q, qn, id, &p);
	rc = read_path(q, buf_cstr(&p), qn, qi);
	buf_free(&p);
	return rc;
}

/*
 * The ids of folder mess/<h> of queue qn. A name that is no id, or not
 * one of this folder, is logged (never skipped silently) and left there.
 */
static int
list_folder(const struct queue_set *q, const char *dir, int qn, int h,
    int (*fn)(void *, int, const char *), void *arg)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int n = 0, rc = 0;

	while (d && rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (strlen(e->d_name) > QUEUE_ID_LEN ||
		    queue_hash(e->d_name, q->split) != h) {
			log_event(LOG_WARN, "queue_file_unreadable",
			    "path=%s/%s reason=\"not a queue id of this "
			    "folder\"", dir, e->d_name);
			continue;
		}
		n++;
		rc = fn(arg, qn, e->d_name);
	}
	if (d)
		closedir(d);
	return rc ? -1 : n;
}

static int
fs_list(const struct queue_set *q, int (*fn)(void *, int, const char *),
    void *arg)
{
	struct buf dir = BUF_INIT;
	int n = 0, k = 0;

	for (int i = 0; k >= 0 && i < q->count; i++)
		for (int h = 0; k >= 0 && h < q->split; h++) {
			buf_clear(&dir);
			buf_printf(&dir, "%s/%d/mess/%d", q->path, i, h);
			k = list_folder(q, buf_cstr(&dir), i, h, fn, arg);
			n += k >= 0 ? k : 0;
		}
	buf_free(&dir);
	return k < 0 ? -1 : n;
}

/* fs_scan over fs_list: each listed id read whole, for fn. */
struct scan_ctx {
	const struct queue_set *q;
	int		(*fn)(void *, struct queue_item *);
	void		*arg;
	int		 n;
	struct buf	 path;
};

static int
scan_one(void *arg, int qn, const char *id)
{
	struct scan_ctx *c = arg;
	struct queue_item qi;
	int rc;

	buf_clear(&c->path);
	queue_mess_path(c->q, qn, id, &c->path);
	if (read_path(c->q, buf_cstr(&c->path), qn, &qi) < 0) {
		if (errno != EINPROGRESS)	/* else being written */
			log_event(LOG_WARN, "queue_file_unreadable", "path=%s",
			    buf_cstr(&c->path));	/* never skipped silently */
		return 0;
	}
	c->n++;
	rc = c->fn(c->arg, &qi);
	queue_item_free(&qi);
	return rc;
}

static int
fs_scan(const struct queue_set *q, int (*fn)(void *, struct queue_item *),
    void *arg)
{
	struct scan_ctx c = { q, fn, arg, 0, BUF_INIT };

	(void)fs_list(q, scan_one, &c);
	buf_free(&c.path);
	return c.n;
}

/* mess/ → done/: one rename, so nothing can deliver the message again. */
static int
fs_retire(const struct queue_set *q, const struct queue_item *qi,
    char **newpath)
{
	struct buf p = BUF_INIT;
	int e;

	queue_done_path(q, qi->queue, qi->env.id, &p);
	if (rename(qi->path, buf_cstr(&p)) < 0) {
		e = errno;
		buf_free(&p);
		errno = e;
		return -1;
	}
	*newpath = p.data;		/* the buffer's memory moves */
	return 0;
}

/*
 * The message first, so a crash leaves at most a stray journal; then the
 * journal, unless the journal read found none and none was written since.
 * A message that stays keeps its journal: what it says was delivered is
 * not delivered again (and local delivery retires it instead).
 */
static int
fs_remove(const struct queue_item *qi)
{
	if (unlink(qi->path) < 0 && errno != ENOENT)
		return -1;
	queue_journal_remove(qi);
	return 0;
}

const struct queue_backend queue_fs = {
	.name = "fs",
	.write = fs_write,
	.read = fs_read,
	.scan = fs_scan,
	.journal_append = queue_journal_append,
	.journal_flush = queue_journal_flush,
	.journal_read = queue_journal_read,
	.retire = fs_retire,
	.remove = fs_remove,
	.list = fs_list,
};
