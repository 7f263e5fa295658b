/*
 * local: Maildir delivery (https://cr.yp.to/proto/maildir.html). For each
 * recipient: check that the directory has the mailbox (never create one for
 * anyone else) and its name, refuse a loop (our Delivered-To line
 * is already there, or too many Received lines), check the Maildir++ quota,
 * write tmp/<unique>, fsync, rename into new/, fsync new/, then account the
 * size in maildirsize. Runs entirely on a thread-pool thread.
 */
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../lib/batch.h"
#include "../lib/fsutil.h"
#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "../directory/directory.h"
#include "../mail/header.h"
#include "../mail/maildir.h"
#include "local.h"

/* One mailbox file being written: tmp/ → (flush) → new/ → (flush). */
struct mailfile {
	int		 fd;
	struct buf	 tmp, dst, newdir, maildir;
	size_t		 size;
};

struct local_job {
	struct batch_item item;		/* first: the batcher's link */
	uv_work_t	 prep;		/* writing its tmp files */
	struct local_params p;
	struct local_rcpt *rcpts;
	struct mailfile	*files;		/* one per recipient */
	size_t		 n;
	local_done_cb	 cb;
	void		*arg;
};

static struct batcher local_batcher;

static void
result(struct local_rcpt *r, enum result_class cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
result(struct local_rcpt *r, enum result_class cls, const char *fmt, ...)
{
	va_list ap;

	r->result.cls = cls;
	buf_clear(&r->result.text);
	va_start(ap, fmt);
	buf_vprintf(&r->result.text, fmt, ap);
	va_end(ap);
}

static int
mkdirs(const char *path)
{
	struct buf b = BUF_INIT;
	int rc = 0;

	for (const char *p = path + 1; rc == 0; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		buf_set(&b, path, (size_t)(p - path));
		if (mkdir(buf_cstr(&b), 0700) < 0 && errno != EEXIST)
			rc = -1;
		if (*p == '\0')
			break;
	}
	buf_free(&b);
	return rc;
}

/* Maildir++ usage (mail/maildir.c); maildirsize is created on first use. */
static int
quota_usage(const char *md, size_t quota, long long *used)
{
	struct buf p = BUF_INIT;
	int fd;

	if (maildir_usage(md, used) < 0)
		return -1;
	buf_printf(&p, "%s/maildirsize", md);
	fd = open(buf_cstr(&p), O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd >= 0) {
		dprintf(fd, "%zuS\n", quota);
		close(fd);
	}
	buf_free(&p);
	return 0;
}

static void
quota_add(const char *md, size_t size)
{
	struct buf p = BUF_INIT;
	int fd;

	buf_printf(&p, "%s/maildirsize", md);
	fd = open(buf_cstr(&p), O_WRONLY | O_APPEND | O_CREAT, 0600);
	if (fd >= 0) {
		dprintf(fd, "%zu 1\n", size);
		close(fd);
	}
	buf_free(&p);
}

/* Writes tmp/<unique> (not flushed yet); 0, or -1 with errno. */
static int
write_tmp(struct mailfile *f, const char *host, const struct buf *hdr,
    const char *msg, size_t len)
{
	static unsigned counter;
	struct timeval tv;
	struct iovec iov[2];
	const char *base;

	f->size = hdr->len + len;
	buf_clear(&f->tmp);
	buf_clear(&f->newdir);
	buf_clear(&f->dst);
	gettimeofday(&tv, NULL);
	buf_printf(&f->tmp, "%s/tmp/%ld.M%ldP%ldQ%u.%s,S=%zu",
	    buf_cstr(&f->maildir), (long)tv.tv_sec, (long)tv.tv_usec,
	    (long)log_pid(), __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED),
	    host, f->size);
	base = strrchr(buf_cstr(&f->tmp), '/') + 1;
	buf_printf(&f->newdir, "%s/new", buf_cstr(&f->maildir));
	buf_printf(&f->dst, "%s/%s", buf_cstr(&f->newdir), base);
	f->fd = open(buf_cstr(&f->tmp), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600);
	if (f->fd < 0)
		return -1;
	iov[0].iov_base = hdr->data;
	iov[0].iov_len = hdr->len;
	iov[1].iov_base = (void *)msg;
	iov[1].iov_len = len;
	if (write_iov(f->fd, iov, 2) < 0) {
		int e = errno;
		close(f->fd);
		f->fd = -1;
		unlink(buf_cstr(&f->tmp));
		errno = e;
		return -1;
	}
	return 0;
}

/* Whose Maildir: the address without its extension, or the address. */
static const char *
local_owner(const struct local_rcpt *r)
{
	return r->owner ? r->owner : r->address;
}

/* Refuses a recipient that must not get the message here; 1 if so. */
static int
refused(const struct local_job *j, struct local_rcpt *r, const char *msg,
    size_t len)
{
	if (r->mailbox < 0)
		result(r, RESULT_TEMP, "451 4.3.0 <%s>: the directory could not "
		    "be asked, try again later", r->address);
	else if (r->disabled)
		result(r, RESULT_PERM, "550 5.2.1 <%s>: mailbox disabled",
		    r->address);
	else if (!r->mailbox)
		result(r, RESULT_PERM, "550 5.1.1 <%s>: no such mailbox here",
		    r->address);
	else if (!directory_mailbox_name(local_owner(r)))
		result(r, RESULT_PERM, "550 5.1.3 <%s>: not a valid mailbox name "
		    "(" DIRECTORY_NAME_RULE ")", r->address);
	else if (header_count(msg, len, "Delivered-To", r->address) > 0)
		result(r, RESULT_PERM, "554 5.4.6 mail loop: the message was "
		    "already delivered to <%s>", r->address);
	else if (header_count(msg, len, "Received", NULL) +
	    header_count(msg, len, "Delivered-To", NULL) > (size_t)j->p.max_hops)
		result(r, RESULT_PERM, "554 5.4.6 too many hops (more than %d)",
		    j->p.max_hops);
	else
		return 0;
	return 1;
}

/*
 * Creates new/, cur/ and tmp/, tmp/ last: a Maildir of ours that has tmp/
 * has them all. 0, or -1 (result set).
 */
static int
maildir_create(struct local_rcpt *r, const char *md)
{
	static const char *subs[] = { "new", "cur", "tmp" };
	struct buf sub = BUF_INIT;
	int rc = 0;

	for (int i = 0; i < 3 && rc == 0; i++) {
		buf_clear(&sub);
		buf_printf(&sub, "%s/%s", md, subs[i]);
		if (mkdirs(buf_cstr(&sub)) < 0) {
			result(r, RESULT_TEMP, "451 4.2.0 cannot create %s: %s",
			    buf_cstr(&sub), strerror(errno));
			rc = -1;
		}
	}
	buf_free(&sub);
	return rc;
}

/*
 * The quota check, which needs the Maildir (maildirsize is created with
 * its quota line on first use): created unless tmp/ is there. 0, or -1
 * (result set).
 */
static int
quota_refused(struct local_rcpt *r, const char *md, size_t size)
{
	struct buf tmp = BUF_INIT;
	long long used = 0;
	int exists;

	buf_printf(&tmp, "%s/tmp", md);
	exists = access(buf_cstr(&tmp), F_OK) == 0;
	buf_free(&tmp);
	if (!exists && maildir_create(r, md) < 0)
		return -1;
	if (quota_usage(md, r->quota, &used) < 0) {
		result(r, RESULT_TEMP, "451 4.3.0 <%s>: cannot read %s/"
		    "maildirsize: %s", r->address, md, strerror(errno));
		return -1;
	}
	if (used + (long long)size > (long long)r->quota) {
		result(r, RESULT_TEMP, "452 4.2.2 <%s>: mailbox is full (quota "
		    "%zu bytes)", r->address, r->quota);
		return -1;
	}
	return 0;
}

/*
 * Checks one recipient and writes its tmp file. On success the result is
 * left for the batch to decide (after the flushes); on refusal it is set.
 * The Maildir is made when its tmp/ is missing (the mailbox's first
 * message), not probed for every message.
 */
static void
prepare_one(struct local_job *j, struct local_rcpt *r, struct mailfile *f,
    const char *msg, size_t len)
{
	struct buf md = BUF_INIT, hdr = BUF_INIT;
	int rc;

	if (refused(j, r, msg, len))
		return;
	maildir_path(&md, j->p.root, local_owner(r));
	buf_printf(&hdr, "Return-Path: <%s>\nDelivered-To: %s\n",
	    j->p.msg->env.sender, r->address);
	if (r->quota && quota_refused(r, buf_cstr(&md), hdr.len + len) < 0)
		goto out;
	buf_set(&f->maildir, md.data, md.len);
	rc = write_tmp(f, j->p.hostname, &hdr, msg, len);
	if (rc < 0 && errno == ENOENT) {
		if (maildir_create(r, buf_cstr(&md)) < 0)
			goto out;
		rc = write_tmp(f, j->p.hostname, &hdr, msg, len);
	}
	if (rc < 0) {
		result(r, RESULT_TEMP, "451 4.3.0 <%s>: cannot write the "
		    "mailbox: %s", r->address, strerror(errno));
		goto out;
	}
	result(r, RESULT_OK, "250 2.0.0 delivered to %s", buf_cstr(&md));
out:
	buf_free(&md);
	buf_free(&hdr);
}

/*
 * Reads the message part of the queue file; NULL if it cannot. Its size
 * is the one the queue read found (a queued file never changes): one
 * byte more is asked for, so a file of another size is refused (not in
 * a segment, where other records follow).
 */
static char *
read_message(const struct local_params *p, size_t *len)
{
	char *msg = xmalloc(p->msg->size + 1);
	int fd = open(p->msg->path, O_RDONLY | O_CLOEXEC);

	*len = p->msg->size;
	if (fd < 0 || pread(fd, msg, *len + !p->msg->shared,
	    (off_t)p->msg->body_offset) != (ssize_t)*len) {
		free(msg);
		msg = NULL;
	}
	if (fd >= 0)
		close(fd);
	return msg;
}

static void
prepare_job(struct local_job *j)
{
	size_t len = 0;
	char *msg = read_message(&j->p, &len);

	for (size_t i = 0; i < j->n; i++) {
		j->files[i].fd = -1;
		if (msg == NULL)
			result(&j->rcpts[i], RESULT_TEMP, "451 4.3.0 cannot read "
			    "the queued message %s", j->p.msg->path);
		else
			prepare_one(j, &j->rcpts[i], &j->files[i], msg, len);
	}
	free(msg);
}

struct pending {
	struct local_job *j;
	size_t		 k;		/* index in j->rcpts */
	struct local_rcpt *r;
	struct mailfile	*f;
};

/* Every recipient of the batch whose tmp file was written. */
static struct pending *
written(struct batch_item *items, size_t *np)
{
	struct pending *p = NULL;
	size_t n = 0;

	for (struct batch_item *it = items; it; it = it->next) {
		struct local_job *j = (struct local_job *)it;
		for (size_t k = 0; k < j->n; k++) {
			if (j->files[k].fd < 0)
				continue;
			p = xrealloc(p, (n + 1) * sizeof(*p));
			p[n].j = j;
			p[n].k = k;
			p[n].r = &j->rcpts[k];
			p[n++].f = &j->files[k];
		}
	}
	*np = n;
	return p;
}

static void
failed(struct pending *p, const char *what)
{
	result(p->r, RESULT_TEMP, "451 4.3.0 <%s>: cannot %s the mailbox: %s",
	    p->r->address, what, strerror(errno));
}

/* Tells the job's owner which of its recipients are durable now. */
static void
report_durable(struct local_job *j, struct pending *p, size_t np)
{
	size_t *ok = xcalloc(j->n ? j->n : 1, sizeof(size_t)), nok = 0;

	for (size_t i = 0; i < np; i++)
		if (p[i].j == j && p[i].f)
			ok[nok++] = p[i].k;
	if (nok && j->p.durable && j->p.durable(j->p.durable_arg, ok, nok) == 0)
		for (size_t i = 0; i < nok; i++)
			j->rcpts[ok[i]].result.journaled = 1;
	free(ok);
}

/*
 * On a pool thread, for every recipient of every job of the batch (whose
 * tmp files are written): commit them together (flush, rename into new/,
 * flush the renames: fs_commit), then account the quota.
 */
static void
deliver_batch(struct batch_item *items, size_t n, void *ctx)
{
	struct pending *p;
	struct fs_commit *c;
	size_t np;

	(void)n;
	(void)ctx;
	p = written(items, &np);
	c = xcalloc(np ? np : 1, sizeof(*c));
	for (size_t i = 0; i < np; i++) {
		c[i].fd = p[i].f->fd;
		c[i].tmp = buf_cstr(&p[i].f->tmp);
		c[i].dst = buf_cstr(&p[i].f->dst);
		c[i].dir = buf_cstr(&p[i].f->newdir);
		p[i].f->fd = -1;
	}
	fs_commit(c, np);
	for (size_t i = 0; i < np; i++) {
		if (!c[i].ok) {	/* "flush": in new/ but maybe not durable */
			errno = c[i].error;
			failed(&p[i], strcmp(c[i].step, "fsync") == 0 ?
			    "flush" : "write");
			p[i].f = NULL;
		} else if (p[i].r->quota)
			quota_add(buf_cstr(&p[i].f->maildir), p[i].f->size);
	}
	for (struct batch_item *it = items; it; it = it->next)
		report_durable((struct local_job *)it, p, np);
	free(p);
	free(c);
}

static void
batch_delivered(struct batch_item *items, size_t n, void *ctx, int status)
{
	struct batch_item *it, *next;

	(void)n;
	(void)ctx;
	for (it = items; it; it = next) {
		struct local_job *j = (struct local_job *)it;
		next = it->next;
		if (status != 0)
			for (size_t i = 0; i < j->n; i++)
				result(&j->rcpts[i], RESULT_TEMP,
				    "451 4.3.0 delivery cancelled");
		j->cb(j->arg, j->rcpts, j->n);
		for (size_t i = 0; i < j->n; i++) {
			buf_free(&j->files[i].tmp);
			buf_free(&j->files[i].dst);
			buf_free(&j->files[i].newdir);
			buf_free(&j->files[i].maildir);
		}
		free(j->files);
		free(j);
	}
}

/* A job's tmp files, on a pool thread of their own (not flushed yet). */
static void
do_prepare(uv_work_t *w)
{
	prepare_job(w->data);
}

/* Written (or refused): the job joins the next group commit. */
static void
after_prepare(uv_work_t *w, int status)
{
	struct local_job *j = w->data;

	(void)status;	/* never cancelled: uv_cancel is not used */
	batcher_add(&local_batcher, &j->item);
}

/*
 * A job's tmp files are written on a pool thread of its own, so that the
 * next batch's files are written while a batch is being flushed; the
 * batch only commits them (docs/delivery.md).
 */
void
local_deliver(uv_loop_t *loop, const struct local_params *p,
    struct local_rcpt *rcpts, size_t n, local_done_cb cb, void *arg)
{
	struct local_job *j = xcalloc(1, sizeof(*j));

	j->p = *p;
	j->rcpts = rcpts;
	j->files = xcalloc(n ? n : 1, sizeof(*j->files));
	for (size_t i = 0; i < n; i++)
		j->files[i].fd = -1;
	j->n = n;
	j->cb = cb;
	j->arg = arg;
	if (local_batcher.work == NULL) {
		local_batcher.loop = loop;
		local_batcher.work = deliver_batch;
		local_batcher.done = batch_delivered;
	}
	j->prep.data = j;
	if (uv_queue_work(loop, &j->prep, do_prepare, after_prepare) != 0) {
		prepare_job(j);		/* cannot happen (work_cb is set) */
		batcher_add(&local_batcher, &j->item);
	}
}
