/*
 * queue_wal_pending: the wal backend's unsettled messages (queue.h), what
 * it acknowledged that the queue manager may not know yet, so `queue list`,
 * mailq and `queue show` see a message from its 250 on (docs/queue.md
 * "What users see"). Every record of every segment whose message is still
 * in the queue: past the mark, read from the segment itself (the item's
 * path: the segment); under the mark, its file in mess/, or, while the
 * checkpoint has it in tmp/, the segment's copy. A record under the mark
 * with neither was delivered and removed: skipped. Reads only.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/fsutil.h"
#include "../lib/xalloc.h"
#include "queue.h"
#include "queue_wal.h"
#include "queue_wal_int.h"

/* One segment being read. */
struct pending {
	const struct queue_set *q;
	int		 qn;
	long		 pid;		/* its writer */
	const char	*path;
	struct buf	 seg;		/* the whole segment, as it is now */
	uint64_t	 mark;
	int		(*fn)(void *, struct queue_item *);
	void		*arg;
	int		 n;
};

int
wal_record_item(const struct queue_set *q, int qn, const char *path,
    const char *data, size_t n, uint64_t offset, uint64_t len,
    struct queue_item *qi)
{
	size_t max = n < QUEUE_ENVELOPE_MAX ? n : QUEUE_ENVELOPE_MAX;
	const char *end = memmem(data, max, "\n\n", 2);
	struct buf b = BUF_INIT;

	memset(qi, 0, sizeof(*qi));
	if (end == NULL || queue_envelope_parse(data, (size_t)(end - data) + 2,
	    &qi->env, &qi->body_offset) < 0)
		return -1;
	qi->size = len - qi->body_offset;
	qi->body_offset += offset;
	qi->path = xstrdup(path);
	qi->shared = 1;
	qi->queue = qn;
	queue_state_path(q, qn, qi->env.id, &b);
	qi->journal = b.data;		/* the buffer's memory moves */
	return 0;
}

/* Record r as a message item whose file is the segment. */
static int
from_segment(const struct pending *p, const struct wal_record *r,
    struct queue_item *qi)
{
	return wal_record_item(p->q, p->qn, p->path, p->seg.data + r->offset,
	    r->len, r->offset, r->len, qi);
}

/*
 * Record r under the mark: its file in mess/; else, while it is still in
 * tmp/, the segment's copy; else (delivered and gone) -1. mess/ is looked
 * at again after tmp/: the checkpoint may rename it in between.
 */
static int
settled(const struct pending *p, const struct wal_record *r,
    struct queue_item *qi)
{
	struct buf tmp = BUF_INIT;
	int rc;

	if (queue_fs.read(p->q, p->qn, r->id, qi) == 0)
		return 0;
	buf_printf(&tmp, "%s/%d/tmp/%ld.%s", p->q->path, p->qn, p->pid, r->id);
	rc = access(buf_cstr(&tmp), F_OK) == 0 ? from_segment(p, r, qi) : -1;
	buf_free(&tmp);
	return rc == 0 ? 0 : queue_fs.read(p->q, p->qn, r->id, qi);
}

/*
 * The first len bytes of fd into b: a writer may append meanwhile, what it
 * adds is not read (a record cut there ends the walk, as a torn tail).
 */
static void
read_prefix(int fd, size_t len, struct buf *b)
{
	ssize_t n;

	buf_reserve(b, len);
	while (b->len < len) {
		n = pread(fd, b->data + b->len, len - b->len, (off_t)b->len);
		if (n <= 0)
			break;
		b->len += (size_t)n;
	}
}

/*
 * Reads the segment, then its mark (none or corrupt: 0); 0 or -1. In this
 * order: a record past the mark read last was never told to anyone.
 */
static int
load(struct pending *p)
{
	struct buf mark = BUF_INIT;
	int fd = open(p->path, O_RDONLY | O_CLOEXEC), rc = -1;
	struct stat st;

	if (fd >= 0 && fstat(fd, &st) == 0) {
		read_prefix(fd, (size_t)st.st_size, &p->seg);
		rc = 0;
	}
	if (fd >= 0)
		close(fd);
	buf_printf(&mark, "%s%s", p->path, WAL_MARK_SUFFIX);
	p->mark = wal_mark_read(buf_cstr(&mark));
	buf_free(&mark);
	return rc;
}

/* fn for each record still in the queue, up to a torn tail; fn's answer. */
static int
walk_segment(struct pending *p)
{
	struct wal_record r;
	struct queue_item qi;
	uint64_t off = 0;
	int rc = 0, got;

	while (rc == 0 && wal_record_parse((unsigned char *)p->seg.data,
	    p->seg.len, off, &r)) {
		got = r.end <= p->mark ? settled(p, &r, &qi) :
		    from_segment(p, &r, &qi);
		if (got == 0) {
			p->n++;
			rc = p->fn(p->arg, &qi);
			queue_item_free(&qi);
		}
		off = r.end;
	}
	return rc;
}

/* Every segment of queue qn; fn's answer (non-zero: stop). */
static int
walk_queue(struct pending *p)
{
	struct buf dir = BUF_INIT, path = BUF_INIT;
	struct dirent *e;
	DIR *d;
	int rc = 0;

	buf_printf(&dir, "%s/%d/wal", p->q->path, p->qn);
	d = opendir(buf_cstr(&dir));
	while (d && rc == 0 && (e = readdir(d)) != NULL) {
		if ((p->pid = wal_segment_writer(e->d_name)) == 0)
			continue;
		buf_clear(&path);
		buf_printf(&path, "%s/%s", buf_cstr(&dir), e->d_name);
		p->path = buf_cstr(&path);
		buf_clear(&p->seg);
		if (load(p) == 0)
			rc = walk_segment(p);
	}
	if (d)
		closedir(d);
	buf_free(&dir);
	buf_free(&path);
	return rc;
}

int
wal_unsettled(const struct queue_set *q,
    int (*fn)(void *, struct queue_item *), void *arg)
{
	struct pending p = { .q = q, .fn = fn, .arg = arg, .seg = BUF_INIT };
	int rc = 0;

	for (p.qn = 0; rc == 0 && p.qn < q->count; p.qn++)
		rc = walk_queue(&p);
	buf_free(&p.seg);
	return rc ? -1 : p.n;
}
