/*
 * queue_wal_ckpt: the checkpoint of the wal backend (docs/queue.md "The wal
 * backend", steps 4 to 9), behind the 250s on the thread pool: each durable
 * record written out as tmp/<pid>.<id>, the group flushed, the segment's
 * mark moved past it (fdatasync), the files renamed into mess/, and only
 * then the queue manager told, in order and without dropping a notice when
 * its queue is full. A segment that takes no more records goes once all
 * of them are out. A record whose checkpoint failed is logged once
 * (event=wal_checkpoint_failed) and tried again with its segment's later
 * records, in order, after a delay that doubles up to a minute; after
 * WAL_CKPT_TRIES the segment is left to recovery (at the next start, or
 * when its worker dies), as its mark cannot pass a record not written out.
 */
#include <errno.h>
#include <fcntl.h>
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

/* How soon a full notification queue is tried again. */
#define WAL_ANNOUNCE_RETRY_MS	2
/* Bytes per read when the kernel cannot copy a range between files. */
#define WAL_COPY_CHUNK	65536
/* A failed checkpoint's retry: after 1 s, doubled each time up to 60 s. */
#define WAL_CKPT_RETRY_MS	1000
#define WAL_CKPT_RETRY_MAX_MS	60000
/* Tries of one record before its segment is left to recovery (~6 min). */
#define WAL_CKPT_TRIES		12
/* A retry waits this long for its segment's records still in a batch. */
#define WAL_CKPT_SETTLE_MS	100

struct wal_ckpt {
	struct batch_item item;
	struct queue_set *qs;
	struct wal_segment *seg;
	int		 qn;
	char		 id[QUEUE_ID_LEN + 1];
	uint64_t	 offset, len;
	int		 ok, fd;
	struct buf	 tmp, dst;
	int		 tries;		/* checkpoints of it that failed */
	const char	*step;		/* what failed (NULL: another record) */
	int		 err;		/* and its errno */
};

struct wal_removal {
	uv_work_t	 req;
	struct queue_set *qs;
	struct wal_segment *seg;
};

/*
 * The copy of a record's payload into its message file: by the kernel
 * where it can, else read and written.
 */
int
wal_copy_range(int in, off_t off, int out, uint64_t len)
{
	char b[WAL_COPY_CHUNK];

	while (len > 0) {
		ssize_t k = copy_file_range(in, &off, out, NULL, len, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno != EXDEV && errno != ENOSYS &&
		    errno != EINVAL && errno != EOPNOTSUPP)
			return -1;
		if (k <= 0) {	/* no kernel copy here: read and write */
			k = pread(in, b, len < sizeof(b) ? len : sizeof(b), off);
			if (k <= 0 || write(out, b, (size_t)k) != k)
				return -1;
			off += k;
		}
		len -= (uint64_t)k;
	}
	return 0;
}

/* Notes what failed for c's log line; returns -1. */
static int
ckpt_fail(struct wal_ckpt *c, const char *step)
{
	c->step = step;
	c->err = errno;
	return -1;
}

/* Step 1 of the checkpoint for one record: its tmp file, not flushed. */
static int
copy_out(struct wal_ckpt *c)
{
	buf_clear(&c->tmp);
	buf_clear(&c->dst);
	buf_printf(&c->tmp, "%s/%d/tmp/%ld.%s", c->qs->path, c->qn,
	    (long)log_pid(), c->id);
	queue_mess_path(c->qs, c->qn, c->id, &c->dst);
	c->fd = open(buf_cstr(&c->tmp), O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC, 0640);
	if (c->fd < 0)
		return ckpt_fail(c, "open");
	if (wal_copy_range(c->seg->fd, (off_t)c->offset, c->fd, c->len) < 0)
		return ckpt_fail(c, "copy");
	return 0;
}

/* Whether a later record of the batch is in the same segment. */
static int
later_in_batch(struct wal_ckpt **cs, size_t n, size_t i)
{
	for (size_t k = i + 1; k < n; k++)
		if (cs[k]->seg == cs[i]->seg)
			return 1;
	return 0;
}

/* Marks every segment of the batch checkpointed up to its last record. */
static void
mark_segments(struct wal_ckpt **cs, size_t n, int flushed)
{
	unsigned char m[WAL_MARK_SIZE];
	int *fds = xcalloc(n ? n : 1, sizeof(int));
	size_t nf = 0;

	for (size_t i = 0; i < n; i++) {
		struct wal_segment *s = cs[i]->seg;
		if (!flushed || !cs[i]->ok)
			atomic_store(&s->failed, 1);
		if (later_in_batch(cs, n, i))
			continue;	/* the mark goes at its last record */
		wal_mark_encode(m, cs[i]->offset + cs[i]->len);
		if (atomic_load(&s->failed))
			continue;
		if (pwrite(s->mark_fd, m, sizeof(m), 0) != (ssize_t)sizeof(m)) {
			ckpt_fail(cs[i], "mark");
			atomic_store(&s->failed, 1);
		} else
			fds[nf++] = s->mark_fd;
	}
	if (sync_files(fds, nf) < 0)
		for (size_t i = 0; i < n; i++)
			atomic_store(&cs[i]->seg->failed, 1);
	free(fds);
}

/* Step 4: into mess/ (the mark covers them: recovery would do it too). */
static void
move_in(struct wal_ckpt **cs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct wal_ckpt *c = cs[i];
		if (atomic_load(&c->seg->failed))
			c->ok = 0;
		else if (rename(buf_cstr(&c->tmp), buf_cstr(&c->dst)) < 0) {
			ckpt_fail(c, "rename");
			atomic_store(&c->seg->failed, 1);
			c->ok = 0;
		}
		if (!c->ok && !atomic_load(&c->seg->failed))
			unlink(buf_cstr(&c->tmp));
	}
}

/*
 * Runs on a pool thread: the message files of the batch's records,
 * flushed together, then the marks, then the renames. A segment any step
 * failed for keeps its records for recovery: its mark never moves again.
 */
static void
checkpoint_batch(struct batch_item *items, size_t n, void *ctx)
{
	struct wal_ckpt **cs = xcalloc(n ? n : 1, sizeof(*cs));
	int *fds = xcalloc(n ? n : 1, sizeof(int));
	size_t nc = 0, nf = 0;
	int flushed;

	(void)ctx;
	for (struct batch_item *it = items; it; it = it->next) {
		struct wal_ckpt *c = (struct wal_ckpt *)it;
		c->step = NULL;
		c->fd = -1;
		c->ok = !atomic_load(&c->seg->failed) && copy_out(c) == 0;
		if (c->fd >= 0)
			fds[nf++] = c->fd;
		cs[nc++] = c;
	}
	flushed = sync_files(fds, nf) == 0;
	for (size_t i = 0; i < nf; i++)
		if (close(fds[i]) < 0)
			flushed = 0;
	for (size_t i = 0; !flushed && i < nc; i++)
		if (cs[i]->ok)
			ckpt_fail(cs[i], "flush");
	mark_segments(cs, nc, flushed);
	move_in(cs, nc);
	free(cs);
	free(fds);
}

static void maybe_remove(struct queue_set *, struct wal_segment *);
static void on_retry(uv_timer_t *);
static void again_add(struct queue_set *, struct wal_ckpt *);

/*
 * Tells the queue manager, in order, until its queue is full: then again
 * a moment later (a burst of a large checkpoint must not be dropped).
 */
static void
tell_news(struct queue_set *qs)
{
	struct queue_wal *w = qs->wal;
	struct wal_news *n;

	while ((n = w->news) != NULL) {
		if (qs->announce(qs->announce_arg, n->qn, n->id) < 0) {
			uv_timer_start(&w->retry, on_retry,
			    WAL_ANNOUNCE_RETRY_MS, 0);
			return;
		}
		w->news = n->next;
		free(n);
	}
	w->news_tail = NULL;
}

static void
on_retry(uv_timer_t *t)
{
	tell_news(t->data);
}

static void
news_add(struct queue_set *qs, int qn, const char *id)
{
	struct queue_wal *w = qs->wal;
	struct wal_news *n = xcalloc(1, sizeof(*n));

	n->qn = qn;
	snprintf(n->id, sizeof(n->id), "%s", id);
	if (w->news_tail)
		w->news_tail->next = n;
	else
		w->news = n;
	w->news_tail = n;
}

static void
add_news(struct queue_set *qs, const struct wal_ckpt *c)
{
	news_add(qs, c->qn, c->id);
}

void
wal_announce(struct queue_set *qs, int qn, const char *id)
{
	if (qs->announce == NULL)
		return;
	news_add(qs, qn, id);
	if (!uv_is_active((uv_handle_t *)&qs->wal->retry))
		tell_news(qs);
}

/* c is done with, written out or left to recovery. */
static void
ckpt_free(struct queue_set *qs, struct wal_ckpt *c)
{
	c->seg->pending--;
	maybe_remove(qs, c->seg);
	buf_free(&c->tmp);
	buf_free(&c->dst);
	free(c);
}

/* Once per message, at its first failure. */
static void
log_failed(struct wal_ckpt *c)
{
	struct logline l;
	struct buf why = BUF_INIT;

	if (c->step == NULL)
		buf_appends(&why, "another record of its segment failed");
	else if (c->err)
		buf_printf(&why, "%s %s: %s", c->step, buf_cstr(&c->tmp),
		    strerror(c->err));
	else
		buf_appends(&why, c->step);
	log_begin(&l, LOG_ERROR, "wal_checkpoint_failed");
	log_kv(&l, "qid", c->id);
	log_kv(&l, "error", buf_cstr(&why));
	log_kv(&l, "segment", c->seg->path);
	log_end(&l);
	buf_free(&why);
}

/* No retry left for s: recovery writes its records out. */
static void
abandon(struct wal_segment *s)
{
	if (s->abandoned)
		return;
	s->abandoned = 1;
	log_event(LOG_ERROR, "wal_checkpoint_abandoned", "segment=%s "
	    "tries=%d", s->path, WAL_CKPT_TRIES);
}

/* c was not written out: logged once, tried again, or given up. */
static void
ckpt_failed(struct queue_set *qs, struct wal_ckpt *c)
{
	if (!c->seg->failing) {
		c->seg->failing = 1;
		atomic_fetch_add(&qs->wal->failing[c->seg->qn], 1);
	}
	if (c->tries++ == 0)
		log_failed(c);
	if (c->tries >= WAL_CKPT_TRIES)
		abandon(c->seg);
	if (c->seg->abandoned)
		ckpt_free(qs, c);
	else
		again_add(qs, c);
}

/* Runs on the loop thread: the queue manager may now see the messages. */
static void
checkpointed(struct batch_item *items, size_t n, void *ctx, int status)
{
	struct queue_set *qs = ctx;
	struct batch_item *it, *next;

	(void)n;
	for (it = items; it; it = next) {
		struct wal_ckpt *c = (struct wal_ckpt *)it;
		next = it->next;
		if (status != 0) {	/* never ran: its mark must not move */
			atomic_store(&c->seg->failed, 1);
			c->ok = 0;
			c->step = "queue_work";
			c->err = 0;
		}
		if (!c->ok) {
			ckpt_failed(qs, c);
			continue;
		}
		if (qs->announce)
			add_news(qs, c);
		ckpt_free(qs, c);
	}
	if (!uv_is_active((uv_handle_t *)&qs->wal->retry))
		tell_news(qs);
}

void
wal_checkpoint_add(struct queue_set *qs, struct wal_segment *seg, int qn,
    const char *id, uint64_t offset, uint64_t len)
{
	struct wal_ckpt *c = xcalloc(1, sizeof(*c));

	c->qs = qs;
	c->seg = seg;
	c->qn = qn;
	c->fd = -1;
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->offset = offset;
	c->len = len;
	seg->pending++;
	if (seg->again > 0 && !seg->abandoned)	/* after those, in order */
		again_add(qs, c);
	else
		batcher_add(&qs->wal->checkpoint, &c->item);
}

/* ---- the retry of failed checkpoints ------------------------------------- */

static void on_again(uv_timer_t *);

static uint64_t
again_delay(int tries)
{
	uint64_t ms = WAL_CKPT_RETRY_MS << (tries > 1 ? (tries < 8 ?
	    tries - 1 : 7) : 0);

	return ms < WAL_CKPT_RETRY_MAX_MS ? ms : WAL_CKPT_RETRY_MAX_MS;
}

/* c waits for its retry, after its segment's records that wait already. */
static void
again_add(struct queue_set *qs, struct wal_ckpt *c)
{
	struct queue_wal *w = qs->wal;

	c->item.next = NULL;
	if (w->again_tail)
		w->again_tail->next = &c->item;
	else
		w->again = &c->item;
	w->again_tail = &c->item;
	c->seg->again++;
	if (!uv_is_active((uv_handle_t *)&w->again_timer))
		uv_timer_start(&w->again_timer, on_again,
		    again_delay(c->tries), 0);
}

/* No record of s is in a batch: all of them wait here (or it is given up). */
static int
settled(const struct wal_segment *s)
{
	return s->abandoned || s->pending == s->again;
}

/*
 * The records waiting go back to the checkpoint, in order, once none of
 * their segments has another in a batch (they would pass the mark).
 */
static void
on_again(uv_timer_t *t)
{
	struct queue_set *qs = t->data;
	struct queue_wal *w = qs->wal;
	struct batch_item *it, *next, *list = w->again;

	for (it = list; it; it = it->next)
		if (!settled(((struct wal_ckpt *)it)->seg)) {
			uv_timer_start(t, on_again, WAL_CKPT_SETTLE_MS, 0);
			return;
		}
	w->again = w->again_tail = NULL;
	for (it = list; it; it = next) {
		struct wal_ckpt *c = (struct wal_ckpt *)it;
		next = it->next;
		c->seg->again--;
		if (c->seg->abandoned) {
			ckpt_free(qs, c);
			continue;
		}
		atomic_store(&c->seg->failed, 0);
		batcher_add(&w->checkpoint, it);
	}
}

/*
 * A segment's blocks are freed a few MiB at a time before its unlink: a
 * 64 MiB file freed in one go (with online discard, one long run of trims)
 * held the accept path's flushes behind it for tens of milliseconds. Cut
 * short by a crash, the segment is shorter than its mark, which recovery
 * takes for a removal under way (every record was out).
 */
#define WAL_SHRINK_STEP ((off_t)4 << 20)

static void
shrink(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return;
	for (off_t size = st.st_size; size > 0;) {
		size = size > WAL_SHRINK_STEP ? size - WAL_SHRINK_STEP : 0;
		if (ftruncate(fd, size) < 0)
			return;
	}
}

/* Pool thread: the renames durable first, then the segment goes. */
static void
removal_run(uv_work_t *req)
{
	struct wal_removal *r = req->data;
	struct wal_segment *s = r->seg;

	if (syncfs(s->fd) < 0) {
		log_event(LOG_WARN, "wal_segment_kept", "path=%s error=\"%s\"",
		    s->path, strerror(errno));
		return;
	}
	shrink(s->fd);
	unlink(s->path);
	unlink(s->mark_path);	/* a mark without its segment means nothing */
}

/* Loop thread: s is done with here (removed, or kept for recovery). */
static void
segment_gone(struct queue_set *qs, struct wal_segment *s)
{
	if (s->failing)
		atomic_fetch_sub(&qs->wal->failing[s->qn], 1);
	wal_segment_free(s);
}

static void
removal_done(uv_work_t *req, int status)
{
	struct wal_removal *r = req->data;

	(void)status;		/* not run: recovery removes the segment */
	r->qs->wal->removals--;
	segment_gone(r->qs, r->seg);
	free(r);
}

/* A segment that takes no more records and has all of them out goes. */
static void
maybe_remove(struct queue_set *qs, struct wal_segment *s)
{
	struct wal_removal *r;

	if (!s->retired || s->pending > 0)
		return;
	if (qs->backend == &queue_segment) {	/* the queue manager's now */
		segment_gone(qs, s);
		return;
	}
	if (atomic_load(&s->failed)) {	/* recovery writes it out */
		log_event(LOG_WARN, "wal_segment_kept", "path=%s "
		    "reason=checkpoint_failed", s->path);
		segment_gone(qs, s);
		return;
	}
	r = xcalloc(1, sizeof(*r));
	r->req.data = r;
	r->qs = qs;
	r->seg = s;
	qs->wal->removals++;
	if (uv_queue_work(qs->writer.loop, &r->req, removal_run,
	    removal_done) != 0)
		removal_done(&r->req, UV_ECANCELED);
}

void
wal_retire_sealed(struct queue_set *qs)
{
	struct wal_segment *s = qs->wal->sealed, *next;

	qs->wal->sealed = NULL;
	for (; s; s = next) {
		next = s->next_sealed;
		s->retired = 1;
		maybe_remove(qs, s);
	}
}

void
wal_checkpoint_init(uv_loop_t *loop, struct queue_set *qs)
{
	qs->wal->checkpoint.loop = loop;
	qs->wal->checkpoint.work = checkpoint_batch;
	qs->wal->checkpoint.done = checkpointed;
	qs->wal->checkpoint.ctx = qs;
	qs->wal->checkpoint.max = BATCH_MAX;	/* a file open per record */
	uv_timer_init(loop, &qs->wal->retry);
	qs->wal->retry.data = qs;
	uv_unref((uv_handle_t *)&qs->wal->retry);
	uv_timer_init(loop, &qs->wal->again_timer);
	qs->wal->again_timer.data = qs;
	uv_unref((uv_handle_t *)&qs->wal->again_timer);
}
