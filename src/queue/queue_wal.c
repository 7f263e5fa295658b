/*
 * queue_wal: the write-ahead segment backend (docs/queue.md "The wal
 * backend"). A worker appends each group of accepted messages to its
 * segment of the queue, <queue>/N/wal/<pid>.<seq>, as records (queue_wal.h)
 * with one writev and one fdatasync, and the 250s go out. Behind them, on
 * the thread pool, the checkpoint (queue_wal_ckpt.c) writes each record out
 * as the message file the queue manager reads, moves the segment's mark
 * past it and only then tells the queue manager: whatever it may deliver
 * can never be replayed by recovery (queue_wal_recover.c), which writes out
 * what lies past the mark when a worker dies. This file: segments (made
 * durable before their first record, sealed when full), the appends and
 * their flush, the backend's table.
 *
 * A write batch goes to one queue, the next in turn that takes records
 * (wal_pick), so that it costs one append and one flush however many
 * queues there are.
 *
 * Threads: one write batch and one checkpoint batch run at a time (each a
 * batcher). current[] and next_qn are touched by the write batch only;
 * writing by the loop thread only; pending, retired
 * and removing by the loop thread only; failed by the checkpoint, read by
 * the write batch (atomic); failing[] counted on the loop thread, read by
 * the write batch and wal_pick (atomic).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../lib/batch.h"
#include "../lib/diag.h"
#include "../lib/fsutil.h"
#include "../lib/log.h"
#include "../lib/testhook.h"
#include "../lib/xalloc.h"
#include "queue.h"
#include "queue_wal.h"
#include "queue_wal_int.h"

/* Segment names tried when <pid>.<seq> is taken (a reused pid's leftover). */
#define WAL_NAME_TRIES	100

struct wal_job {
	struct batch_item item;		/* first: the batcher's link */
	struct queue_set *qs;
	int		 qn;
	char		 id[QUEUE_ID_LEN + 1];
	struct buf	 envelope;
	size_t		 npieces;
	unsigned char	 header[WAL_HEADER];
	queue_write_cb	 cb;
	void		*arg;
	int		 ok;
	struct buf	 error;
	uint64_t	 started;
	struct wal_segment *seg;
	uint64_t	 offset, len;	/* the payload in seg */
	struct msg_piece pieces[];	/* npieces of them */
};

void
wal_segment_free(struct wal_segment *s)
{
	if (s->fd >= 0)
		close(s->fd);
	if (s->mark_fd >= 0)
		close(s->mark_fd);
	free(s->path);
	free(s->mark_path);
	free(s);
}

static long
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec;
}

/* Creates the segment and its mark (0), then makes both names durable. */
static int
segment_create(struct wal_segment *s, const char *dir)
{
	unsigned char m[WAL_MARK_SIZE];

	s->fd = open(s->path, O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC,
	    0640);
	if (s->fd < 0)
		return -1;
	s->mark_fd = open(s->mark_path, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC, 0640);
	wal_mark_encode(m, 0);
	if (s->mark_fd < 0 || pwrite(s->mark_fd, m, sizeof(m), 0) !=
	    (ssize_t)sizeof(m) || fsync_dir(dir) < 0) {
		unlink(s->path);
		unlink(s->mark_path);
		return -2;
	}
	return 0;
}

/* A new segment of queue qn, durable before its first record; or NULL. */
static struct wal_segment *
segment_open(struct queue_set *qs, int qn, struct buf *err)
{
	struct wal_segment *s = NULL;
	struct buf dir = BUF_INIT, p = BUF_INIT;
	int rc = -1;

	buf_printf(&dir, "%s/%d/wal", qs->path, qn);
	for (int k = 0; k < WAL_NAME_TRIES && rc == -1; k++) {
		if (s)
			wal_segment_free(s);
		s = xcalloc(1, sizeof(*s));
		s->fd = s->mark_fd = -1;
		s->qn = qn;
		buf_clear(&p);
		buf_printf(&p, "%s/%ld.%u", buf_cstr(&dir), (long)getpid(),
		    qs->wal->seq++);
		s->path = xstrdup(buf_cstr(&p));
		buf_appends(&p, WAL_MARK_SUFFIX);
		s->mark_path = xstrdup(buf_cstr(&p));
		s->created = now_s();
		if ((rc = segment_create(s, buf_cstr(&dir))) == -1 &&
		    errno != EEXIST)
			rc = -2;
	}
	if (rc != 0) {
		buf_printf(err, "create segment %s: %s", s->path,
		    strerror(errno));
		wal_segment_free(s);
		s = NULL;
	}
	buf_free(&dir);
	buf_free(&p);
	return s;
}

/*
 * How old a segment may grow: WAL_SEGMENT_AGE_S, or a test hook's
 * INDIMAIL_TEST_SEGMENT_AGE_S (docs/architecture.md, with the others).
 */
static long
segment_age_max(void)
{
	static struct test_hook age = TEST_HOOK("INDIMAIL_TEST_SEGMENT_AGE_S",
	    WAL_SEGMENT_AGE_S);

	return test_hook(&age);
}

/*
 * The segment this batch appends to in queue qn: a full or old one is
 * sealed.
 */
static struct wal_segment *
segment_current(struct queue_set *qs, int qn, struct buf *err)
{
	struct queue_wal *w = qs->wal;
	struct wal_segment *s = w->current[qn];

	if (s && (s->sealed || atomic_load(&s->failed) ||
	    s->size >= WAL_SEGMENT_MAX ||
	    now_s() - s->created >= segment_age_max())) {
		s->sealed = 1;
		s->next_sealed = w->sealed;
		w->sealed = s;
		w->current[qn] = s = NULL;
	}
	if (s == NULL && atomic_load(&w->failing[qn]) >= WAL_FAILING_MAX)
		buf_printf(err, "queue %d: %d segments wait for a failed "
		    "checkpoint (event=wal_checkpoint_failed), no new one until "
		    "a retry gets their records out", qn, WAL_FAILING_MAX);
	else if (s == NULL)
		s = w->current[qn] = segment_open(qs, qn, err);
	return s;
}

/* The record's header and iovecs: header, envelope, the pieces. */
static size_t
record_iov(struct wal_job *j, uint64_t at, struct iovec *iov)
{
	uint32_t crc = wal_crc(0, j->envelope.data, j->envelope.len);
	size_t n = 0;

	j->len = j->envelope.len;
	for (size_t i = 0; i < j->npieces; i++) {
		crc = wal_crc(crc, j->pieces[i].data, j->pieces[i].len);
		j->len += j->pieces[i].len;
	}
	wal_header(j->header, j->id, j->len, crc);
	j->offset = at + WAL_HEADER;
	iov[n++] = (struct iovec){ j->header, WAL_HEADER };
	iov[n++] = (struct iovec){ j->envelope.data, j->envelope.len };
	for (size_t i = 0; i < j->npieces; i++)
		iov[n++] = (struct iovec){ (void *)j->pieces[i].data,
		    j->pieces[i].len };
	return n;
}

/* Appends every iovec, IOV_MAX at a time (one writev for most batches). */
static int
append_all(int fd, struct iovec *iov, size_t n)
{
	for (size_t k = 0; k < n; k += IOV_MAX)
		if (write_iov(fd, iov + k, (int)(n - k < IOV_MAX ? n - k :
		    IOV_MAX)) < 0)
			return -1;
	return 0;
}

/* Whether the batch writes j's record: not an envelope over the limit. */
static int
job_takes(const struct wal_job *j)
{
	return j->envelope.len <= QUEUE_ENVELOPE_MAX;
}

/* A write batch in queue qn's current segment. */
struct wal_append {
	struct wal_segment *seg;
	uint64_t	 end;		/* where the batch's records end */
	int		 ok;
	struct buf	 err;
};

/* Appends the records of the batch's jobs to queue qn's segment. */
static void
append_batch(struct queue_set *qs, int qn, struct batch_item *items,
    struct wal_append *a)
{
	struct iovec *iov;
	struct wal_segment *s = segment_current(qs, qn, &a->err);
	size_t niov = 0, room = 0;

	for (struct batch_item *it = items; it; it = it->next)
		room += 2 + ((struct wal_job *)it)->npieces;	/* record_iov's */
	iov = xcalloc(room, sizeof(*iov));

	a->seg = s;
	a->end = s ? s->size : 0;
	for (struct batch_item *it = items; s && it; it = it->next) {
		struct wal_job *j = (struct wal_job *)it;
		if (!job_takes(j))
			continue;
		niov += record_iov(j, a->end, iov + niov);
		a->end = j->offset + j->len;
	}
	a->ok = s && append_all(s->fd, iov, niov) == 0;
	if (!a->ok && s)
		buf_printf(&a->err, "append to %s: %s", s->path,
		    strerror(errno));
	free(iov);
}

/* Waits for the batch's records to be durable; tells each job. */
static void
flush_batch(struct wal_append *a, struct batch_item *items)
{
	struct wal_segment *s = a->seg;

	if (a->ok && fdatasync(s->fd) < 0) {
		buf_printf(&a->err, "flush %s: %s", s->path, strerror(errno));
		a->ok = 0;
	}
	if (s && !a->ok) {	/* nothing of the batch may stay */
		if (ftruncate(s->fd, (off_t)s->size) < 0)
			log_event(LOG_WARN, "wal_truncate_failed", "path=%s",
			    s->path);
		s->sealed = 1;
	}
	for (struct batch_item *it = items; it; it = it->next) {
		struct wal_job *j = (struct wal_job *)it;
		if (!job_takes(j))
			continue;
		j->ok = a->ok;
		j->seg = s;
		if (!a->ok)
			buf_set(&j->error, a->err.data, a->err.len);
	}
	if (a->ok)
		s->size = a->end;
	buf_free(&a->err);
}

/*
 * The queue of the next write batch: the next in turn, unless it takes no
 * new segment and another does. Pool thread (one write batch at a time).
 */
static int
wal_pick(struct queue_set *qs)
{
	struct queue_wal *w = qs->wal;
	int qn = w->next_qn % qs->count;

	w->next_qn = (qn + 1) % qs->count;
	for (int k = 0; k < qs->count; k++) {
		int i = (qn + k) % qs->count;
		if (atomic_load(&w->failing[i]) < WAL_FAILING_MAX)
			return i;
	}
	return qn;		/* refused there as anywhere */
}

/*
 * The specs' INDIMAIL_TEST_WRITE_DELAY_MS (docs/architecture.md, with the
 * others): each write batch held that long first, so that the messages
 * that arrive meanwhile form the next one.
 */
static void
write_delay(void)
{
	static struct test_hook delay = TEST_HOOK(
	    "INDIMAIL_TEST_WRITE_DELAY_MS", 0);

	test_hook_hold(&delay);
}

/*
 * Runs on a pool thread: the batch's records appended to one queue's
 * segment, and flushed.
 */
static void
write_batch(struct batch_item *items, size_t n, void *ctx)
{
	struct queue_set *qs = ctx;
	struct wal_append a;
	int qn = wal_pick(qs), records = 0;

	write_delay();

	(void)n;		/* the jobs' list is enough */
	for (struct batch_item *it = items; it; it = it->next) {
		struct wal_job *j = (struct wal_job *)it;
		j->qn = qn;
		if (job_takes(j))
			records++;
		else
			buf_printf(&j->error, "envelope of %zu bytes is over "
			    "the %d-byte limit", j->envelope.len,
			    QUEUE_ENVELOPE_MAX);
	}
	if (records == 0)
		return;
	memset(&a, 0, sizeof(a));
	append_batch(qs, qn, items, &a);
	flush_batch(&a, items);
}

/* Runs on the loop thread: the records are durable, the 250s can go. */
static void
batch_written(struct batch_item *items, size_t n, void *ctx, int status)
{
	struct batch_item *it, *next;

	(void)n;
	for (it = items; it; it = next) {
		struct wal_job *j = (struct wal_job *)it;
		double secs = (double)(uv_hrtime() - j->started) / 1e9;
		next = it->next;
		if (status != 0 && j->ok) {
			j->ok = 0;
			buf_appends(&j->error, "write cancelled");
		}
		if (j->ok && j->qs->backend == &queue_segment)
			wal_announce(j->qs, j->qn, j->id);
		else if (j->ok)
			wal_checkpoint_add(j->qs, j->seg, j->qn, j->id,
			    j->offset, j->len);
		j->qs->wal->writing--;
		j->cb(j->arg, j->ok, j->ok ? NULL : buf_cstr(&j->error), secs,
		    j->qn);
		buf_free(&j->envelope);
		buf_free(&j->error);
		free(j);
	}
	wal_retire_sealed(ctx);
}

static void
wal_start(uv_loop_t *loop, struct queue_set *qs)
{
	qs->wal = xcalloc(1, sizeof(*qs->wal));
	qs->writer.loop = loop;
	qs->writer.work = write_batch;
	qs->writer.done = batch_written;
	qs->writer.ctx = qs;
	wal_checkpoint_init(loop, qs);
}

int
wal_write(uv_loop_t *loop, struct queue_set *qs, const struct envelope *e,
    const struct msg_piece *pieces, size_t npieces, queue_write_cb cb,
    void *arg)
{
	struct wal_job *j;

	if (npieces > QUEUE_PIECES_MAX)
		panic("queue write of %zu pieces", npieces);
	j = xcalloc(1, sizeof(*j) + npieces * sizeof(*pieces));
	if (qs->wal == NULL)
		wal_start(loop, qs);
	j->qs = qs;
	j->qn = -1;		/* the batch's queue (write_batch) */
	qs->wal->writing++;
	snprintf(j->id, sizeof(j->id), "%s", e->id);
	queue_envelope_format(e, &j->envelope);
	memcpy(j->pieces, pieces, npieces * sizeof(*pieces));
	j->npieces = npieces;
	j->cb = cb;
	j->arg = arg;
	j->started = uv_hrtime();
	batcher_add(&qs->writer, &j->item);
	return QUEUE_WRITE_PENDING;
}

/* Writes, checkpoints or removals still running. */
int
wal_busy(const struct queue_set *qs)
{
	const struct queue_wal *w = qs->wal;

	if (w == NULL)
		return 0;
	return w->writing > 0 || w->checkpoint.running ||
	    w->checkpoint.waiting != NULL || w->removals > 0 || w->news != NULL;
}

/* Once checkpointed, a message is a queue_fs file: read and retired so. */
static int
wal_read(const struct queue_set *q, int qn, const char *id,
    struct queue_item *qi)
{
	return queue_fs.read(q, qn, id, qi);
}

static int
wal_scan(const struct queue_set *q, int (*fn)(void *, struct queue_item *),
    void *arg)
{
	return queue_fs.scan(q, fn, arg);
}

static int
wal_retire(const struct queue_set *q, const struct queue_item *qi,
    char **newpath)
{
	return queue_fs.retire(q, qi, newpath);
}

static int
wal_remove(const struct queue_item *qi)
{
	return queue_fs.remove(qi);
}

const struct queue_backend queue_wal = {
	.name = "wal",
	.write = wal_write,
	.read = wal_read,
	.scan = wal_scan,
	.journal_append = queue_journal_append,
	.journal_flush = queue_journal_flush,
	.journal_read = queue_journal_read,
	.retire = wal_retire,
	.remove = wal_remove,
	.announces = 1,
	.busy = wal_busy,
	.unsettled = wal_unsettled,
};
