/*
 * local: Maildir delivery (https://cr.yp.to/proto/maildir.html). For each
 * recipient: check the mailbox name, refuse a loop (our Delivered-To line
 * is already there, or too many Received lines), check the Maildir++ quota,
 * write tmp/<unique>, fsync, rename into new/, fsync new/, then account the
 * size in maildirsize. Runs entirely on a thread-pool thread.
 */
#include <ctype.h>
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

#include "../core/fsutil.h"
#include "../core/xalloc.h"
#include "local.h"

struct local_job {
	uv_work_t	 req;
	struct local_params p;
	struct local_rcpt *rcpts;
	size_t		 n;
	local_done_cb	 cb;
	void		*arg;
};

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

/* Local parts we turn into folder names: no '/', no leading '.'. */
static int
safe_name(const char *s, size_t n)
{
	if (n == 0 || s[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || strchr("._+-=", s[i])) ||
		    (unsigned char)s[i] >= 128)
			return 0;
	return 1;
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

/* Counts header lines "name: value" (value compared if given). */
static int
count_header(const char *msg, size_t len, const char *name, const char *value)
{
	size_t nl = strlen(name), i = 0;
	int n = 0;

	while (i < len && msg[i] != '\n') {
		const char *eol = memchr(msg + i, '\n', len - i);
		size_t ll = eol ? (size_t)(eol - (msg + i)) : len - i;
		if (ll > nl && strncasecmp(msg + i, name, nl) == 0 &&
		    msg[i + nl] == ':') {
			const char *v = msg + i + nl + 1;
			size_t vl = ll - nl - 1;
			while (vl && (*v == ' ' || *v == '\t'))
				v++, vl--;
			if (value == NULL || (vl == strlen(value) &&
			    strncasecmp(v, value, vl) == 0))
				n++;
		}
		i += ll + 1;
	}
	return n;
}

/* Maildir++ usage from maildirsize (created on first use). */
static long long
quota_usage(const char *md, size_t quota)
{
	struct buf p = BUF_INIT;
	char line[128];
	long long used = 0, bytes, count;
	FILE *f;

	buf_printf(&p, "%s/maildirsize", md);
	if ((f = fopen(buf_cstr(&p), "r")) == NULL) {
		int fd = open(buf_cstr(&p), O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd >= 0) {
			dprintf(fd, "%zuS\n", quota);
			close(fd);
		}
		buf_free(&p);
		return 0;
	}
	if (fgets(line, sizeof(line), f) != NULL)	/* the quota line */
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "%lld %lld", &bytes, &count) == 2)
				used += bytes;
	fclose(f);
	buf_free(&p);
	return used;
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

/* tmp → fsync → new → fsync(new). Returns 0 or -1 with errno. */
static int
store(const char *md, const char *host, const struct buf *hdr,
    const char *msg, size_t len)
{
	static unsigned counter;
	struct buf tmp = BUF_INIT, dst = BUF_INIT, dir = BUF_INIT;
	struct timeval tv;
	struct iovec iov[2];
	size_t size = hdr->len + len;
	int fd, rc = -1;

	gettimeofday(&tv, NULL);
	buf_printf(&tmp, "%s/tmp/%ld.M%ldP%ldQ%u.%s,S=%zu", md, (long)tv.tv_sec,
	    (long)tv.tv_usec, (long)getpid(),
	    __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED), host, size);
	buf_printf(&dst, "%s/new/%s", md, strrchr(buf_cstr(&tmp), '/') + 1);
	buf_printf(&dir, "%s/new", md);
	fd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd >= 0) {
		iov[0].iov_base = hdr->data;
		iov[0].iov_len = hdr->len;
		iov[1].iov_base = (void *)msg;
		iov[1].iov_len = len;
		if (write_iov(fd, iov, 2) == 0 && fsync(fd) == 0 &&
		    close(fd) == 0 && rename(buf_cstr(&tmp), buf_cstr(&dst)) == 0 &&
		    fsync_dir(buf_cstr(&dir)) == 0)
			rc = 0;
		else {
			int e = errno;
			close(fd);
			unlink(buf_cstr(&tmp));
			errno = e;
		}
	}
	buf_free(&tmp);
	buf_free(&dst);
	buf_free(&dir);
	return rc;
}

static void
deliver_one(struct local_job *j, struct local_rcpt *r, const char *msg,
    size_t len)
{
	const char *at = strrchr(r->address, '@');
	struct buf md = BUF_INIT, hdr = BUF_INIT, sub = BUF_INIT;
	size_t ll = at ? (size_t)(at - r->address) : 0;

	if (at == NULL || !safe_name(r->address, ll)) {
		result(r, RESULT_PERM, "550 5.1.3 <%s>: mailbox name not supported",
		    r->address);
		return;
	}
	if (count_header(msg, len, "Delivered-To", r->address) > 0) {
		result(r, RESULT_PERM, "554 5.4.6 mail loop: the message was "
		    "already delivered to <%s>", r->address);
		return;
	}
	if (count_header(msg, len, "Received", NULL) +
	    count_header(msg, len, "Delivered-To", NULL) > j->p.max_hops) {
		result(r, RESULT_PERM, "554 5.4.6 too many hops (more than %d)",
		    j->p.max_hops);
		return;
	}
	buf_printf(&md, "%s/", j->p.root);
	for (const char *p = at + 1; *p; p++)
		buf_appendc(&md, (char)tolower((unsigned char)*p));
	buf_appendc(&md, '/');
	for (size_t i = 0; i < ll; i++)	/* mailbox names are case-blind */
		buf_appendc(&md, (char)tolower((unsigned char)r->address[i]));
	buf_appends(&md, "/Maildir");
	buf_printf(&hdr, "Return-Path: <%s>\nDelivered-To: %s\n", j->p.sender,
	    r->address);
	for (int i = 0; i < 3; i++) {
		static const char *subs[] = { "tmp", "new", "cur" };
		buf_clear(&sub);
		buf_printf(&sub, "%s/%s", buf_cstr(&md), subs[i]);
		if (mkdirs(buf_cstr(&sub)) < 0) {
			result(r, RESULT_TEMP, "451 4.2.0 cannot create %s: %s",
			    buf_cstr(&sub), strerror(errno));
			goto out;
		}
	}
	if (r->quota && (size_t)quota_usage(buf_cstr(&md), r->quota) +
	    hdr.len + len > r->quota) {
		result(r, RESULT_TEMP, "452 4.2.2 <%s>: mailbox is full (quota "
		    "%zu bytes)", r->address, r->quota);
		goto out;
	}
	if (store(buf_cstr(&md), j->p.hostname, &hdr, msg, len) < 0) {
		result(r, RESULT_TEMP, "451 4.3.0 <%s>: cannot write the "
		    "mailbox: %s", r->address, strerror(errno));
		goto out;
	}
	if (r->quota)
		quota_add(buf_cstr(&md), hdr.len + len);
	result(r, RESULT_OK, "250 2.0.0 delivered to %s", buf_cstr(&md));
out:
	buf_free(&md);
	buf_free(&hdr);
	buf_free(&sub);
}

static void
do_local(uv_work_t *req)
{
	struct local_job *j = req->data;
	struct stat st;
	char *msg = NULL;
	size_t len = 0;
	int fd = open(j->p.path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0 && fstat(fd, &st) == 0 &&
	    (size_t)st.st_size >= j->p.body_offset) {
		len = (size_t)st.st_size - j->p.body_offset;
		msg = xmalloc(len + 1);
		if (pread(fd, msg, len, (off_t)j->p.body_offset) != (ssize_t)len) {
			free(msg);
			msg = NULL;
		}
	}
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; i < j->n; i++) {
		if (msg == NULL)
			result(&j->rcpts[i], RESULT_TEMP, "451 4.3.0 cannot read "
			    "the queued message %s", j->p.path);
		else
			deliver_one(j, &j->rcpts[i], msg, len);
	}
	free(msg);
}

static void
after_local(uv_work_t *req, int status)
{
	struct local_job *j = req->data;

	(void)status;
	j->cb(j->arg, j->rcpts, j->n);
	free(j);
}

void
local_deliver(uv_loop_t *loop, const struct local_params *p,
    struct local_rcpt *rcpts, size_t n, local_done_cb cb, void *arg)
{
	struct local_job *j = xcalloc(1, sizeof(*j));

	j->req.data = j;
	j->p = *p;
	j->rcpts = rcpts;
	j->n = n;
	j->cb = cb;
	j->arg = arg;
	uv_queue_work(loop, &j->req, do_local, after_local);
}
