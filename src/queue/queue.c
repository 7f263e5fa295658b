/*
 * queue: queue folders, ids, envelope format and scanning. Ids are unique
 * per host: seconds, microseconds, pid and a per-process counter, in
 * upper-case hex (24 characters), so they also sort by arrival time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "queue.h"

static int
mkdir_p(const char *path, struct buf *err)
{
	if (mkdir(path, 0750) == 0 || errno == EEXIST)
		return 0;
	buf_printf(err, "cannot create %s: %s", path, strerror(errno));
	return -1;
}

int
queue_set_init(struct queue_set *q, const char *path, int count, int split,
    struct buf *err)
{
	struct buf p = BUF_INIT;
	int rc = 0;

	memset(q, 0, sizeof(*q));
	q->path = xstrdup(path);
	q->count = count;
	q->split = split;
	rc |= mkdir_p(path, err);
	for (int i = 0; rc == 0 && i < count; i++) {
		buf_clear(&p);
		buf_printf(&p, "%s/%d", path, i);
		rc |= mkdir_p(buf_cstr(&p), err);
		buf_printf(&p, "/tmp");
		rc |= rc ? 0 : mkdir_p(buf_cstr(&p), err);
		buf_clear(&p);
		buf_printf(&p, "%s/%d/done", path, i);
		rc |= rc ? 0 : mkdir_p(buf_cstr(&p), err);
		for (int h = 0; rc == 0 && h < split; h++) {
			static const char *sub[] = { "mess", "state" };
			for (int k = 0; k < 2 && rc == 0; k++) {
				buf_clear(&p);
				buf_printf(&p, "%s/%d/%s", path, i, sub[k]);
				rc |= mkdir_p(buf_cstr(&p), err);
				buf_printf(&p, "/%d", h);
				rc |= rc ? 0 : mkdir_p(buf_cstr(&p), err);
			}
		}
	}
	buf_free(&p);
	return rc ? -1 : 0;
}

void
queue_set_free(struct queue_set *q)
{
	free(q->path);
	q->path = NULL;
}

void
queue_new_id(char out[QUEUE_ID_LEN + 1])
{
	static unsigned counter;
	struct timeval tv;

	gettimeofday(&tv, NULL);
	snprintf(out, QUEUE_ID_LEN + 1, "%09llX%05lX%06lX%04X",
	    (unsigned long long)tv.tv_sec & 0xfffffffffULL,
	    (unsigned long)tv.tv_usec, (unsigned long)getpid() & 0xffffff,
	    counter++ & 0xffff);
}

int
queue_hash(const char *id, int split)
{
	unsigned h = 5381;

	for (; *id; id++)
		h = h * 33 + (unsigned char)*id;
	return (int)(h % (unsigned)split);
}

/* The queue with the fewest writes in flight; ties go round-robin. */
int
queue_pick(struct queue_set *q)
{
	int best = q->next % q->count;

	for (int k = 0; k < q->count; k++) {
		int i = (q->next + k) % q->count;
		if (q->inflight[i] < q->inflight[best])
			best = i;
	}
	q->next = (best + 1) % q->count;
	return best;
}

/*
 * A tmp file "<pid>.<id>" whose writer still runs (a worker of a killed
 * master, draining): it is about to become a message, or be removed.
 */
static int
writer_alive(const char *name)
{
	long pid = atol(name);

	return pid > 0 && pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 ||
	    errno == EPERM);
}

/*
 * Removes the files of <queue>/N/<sub> of every queue for which doomed()
 * says so; returns how many went.
 */
static int
clean_folder(const struct queue_set *q, const char *sub,
    int (*doomed)(const char *name, long arg), long arg)
{
	struct buf p = BUF_INIT, f = BUF_INIT;
	int removed = 0;

	for (int i = 0; i < q->count; i++) {
		DIR *d;
		struct dirent *e;

		buf_clear(&p);
		buf_printf(&p, "%s/%d/%s", q->path, i, sub);
		if ((d = opendir(buf_cstr(&p))) == NULL)
			continue;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.' || !doomed(e->d_name, arg))
				continue;
			buf_clear(&f);
			buf_printf(&f, "%s/%s", buf_cstr(&p), e->d_name);
			removed += unlink(buf_cstr(&f)) == 0;
		}
		closedir(d);
	}
	buf_free(&p);
	buf_free(&f);
	return removed;
}

/* tmp/<pid>.<id>: of that pid, or (pid 0) of a writer no longer running. */
static int
tmp_doomed(const char *name, long pid)
{
	char prefix[32];

	if (pid == 0)
		return !writer_alive(name);
	snprintf(prefix, sizeof(prefix), "%ld.", pid);
	return strncmp(name, prefix, strlen(prefix)) == 0;
}

static int
always(const char *name, long unused)
{
	(void)name;
	(void)unused;
	return 1;
}

int
queue_clean_tmp(const struct queue_set *q, long pid)
{
	return clean_folder(q, "tmp", tmp_doomed, pid);
}

/*
 * Values are written with %XX for '%', control bytes and DEL. Appends the
 * line to b unless b is NULL; returns its size either way, so that sizes
 * and files come from this one serialiser.
 */
static size_t
put_field(struct buf *b, const char *key, const char *v)
{
	size_t n;

	if (v == NULL)
		return 0;
	n = strlen(key) + 2;		/* key, SP, ..., LF */
	if (b)
		buf_printf(b, "%s ", key);
	n += buf_escape(b, v, NULL);
	if (b)
		buf_appendc(b, '\n');
	return n;
}

static size_t
put_rcpt(struct buf *b, const char *rcpt, const char *orcpt)
{
	size_t n = put_field(b, "rcpt", rcpt);

	if (orcpt && strcmp(orcpt, rcpt))
		n += put_field(b, "orcpt", orcpt);
	return n;
}

static size_t
put_env(struct buf *b, const char *key, const char *val)
{
	struct buf kv = BUF_INIT;
	size_t n;

	buf_printf(&kv, "%s=%s", key, val);
	n = put_field(b, "env", buf_cstr(&kv));
	buf_free(&kv);
	return n;
}

/* The envelope serialiser: appends to b unless NULL; returns the size. */
static size_t
put_envelope(const struct queue_envelope *e, struct buf *b)
{
	char received[32];
	size_t n = 6;		/* "IMQ1\n" and the empty line that ends it */

	snprintf(received, sizeof(received), "%lld", (long long)e->received);
	if (b)
		buf_appends(b, "IMQ1\n");
	n += put_field(b, "id", e->id);
	n += put_field(b, "received", received);
	n += put_field(b, "ip", e->ip);
	n += put_field(b, "helo", e->helo);
	n += put_field(b, "listener", e->listener);
	n += put_field(b, "tls", e->tls);
	n += put_field(b, "auth", e->auth_user);
	n += put_field(b, "body", e->body);
	n += put_field(b, "sender", e->sender);
	for (size_t i = 0; i < e->nrcpts; i++)
		n += put_rcpt(b, e->rcpts[i], e->orcpts ? e->orcpts[i] : NULL);
	for (size_t i = 0; i < e->nenv; i++)
		n += put_env(b, e->env_key[i], e->env_val[i]);
	if (b)
		buf_appendc(b, '\n');
	return n;
}

void
queue_envelope_format(const struct queue_envelope *e, struct buf *b)
{
	put_envelope(e, b);
}

size_t
queue_envelope_size(const struct queue_envelope *e)
{
	return put_envelope(e, NULL);
}

size_t
queue_envelope_rcpt_size(const char *rcpt, const char *orcpt)
{
	return put_rcpt(NULL, rcpt, orcpt);
}

static char *
decode(const char *v, size_t n)
{
	char *out = xmalloc(n + 1);

	buf_unescape(out, v, n);
	return out;
}

/*
 * Room for one more in an array of n pointers that doubles: it is full when
 * n is 0 or a power of two. Tens of thousands of recipients cost a few
 * dozen reallocations, not one each.
 */
static void *
grow(void *a, size_t n)
{
	if ((n & (n - 1)) == 0)
		a = xrealloc(a, (n ? 2 * n : 1) * sizeof(char *));
	return a;
}

static int
parse_envelope(const char *d, size_t len, struct queue_info *qi)
{
	size_t i = 0;

	memset(qi, 0, sizeof(*qi));
	if (len < 5 || memcmp(d, "IMQ1\n", 5) != 0)
		return -1;
	i = 5;
	while (i < len && d[i] != '\n') {
		const char *nl = memchr(d + i, '\n', len - i), *sp;
		size_t ll;
		char *v;

		if (nl == NULL)
			return -1;
		ll = (size_t)(nl - (d + i));
		sp = memchr(d + i, ' ', ll);
		if (sp == NULL)
			return -1;
		v = decode(sp + 1, (size_t)(nl - sp - 1));
		if (strncmp(d + i, "id ", 3) == 0)
			snprintf(qi->id, sizeof(qi->id), "%s", v);
		else if (strncmp(d + i, "received ", 9) == 0)
			qi->received = atoll(v);
		else if (strncmp(d + i, "sender ", 7) == 0 && !qi->sender) {
			qi->sender = v;
			v = NULL;
		} else if (strncmp(d + i, "ip ", 3) == 0 && !qi->ip) {
			qi->ip = v;
			v = NULL;
		} else if (strncmp(d + i, "helo ", 5) == 0 && !qi->helo) {
			qi->helo = v;
			v = NULL;
		} else if (strncmp(d + i, "body ", 5) == 0 && !qi->body) {
			qi->body = v;
			v = NULL;
		} else if (strncmp(d + i, "rcpt ", 5) == 0) {
			qi->rcpts = grow(qi->rcpts, qi->nrcpts);
			qi->orcpts = grow(qi->orcpts, qi->nrcpts);
			qi->rcpts[qi->nrcpts] = v;
			qi->orcpts[qi->nrcpts++] = xstrdup(v);
			v = NULL;
		} else if (strncmp(d + i, "env ", 4) == 0 && strchr(v, '=')) {
			char *eq = strchr(v, '=');
			if (strncmp(v, "INDIMAIL_BOUNCE=", 16) == 0)
				qi->bounce_level = atoi(v + 16);
			qi->env_key = xrealloc(qi->env_key, (qi->nenv + 1) *
			    sizeof(char *));
			qi->env_val = xrealloc(qi->env_val, (qi->nenv + 1) *
			    sizeof(char *));
			qi->env_key[qi->nenv] = xstrndup(v, (size_t)(eq - v));
			qi->env_val[qi->nenv++] = xstrdup(eq + 1);
		} else if (strncmp(d + i, "orcpt ", 6) == 0 && qi->nrcpts) {
			free(qi->orcpts[qi->nrcpts - 1]);
			qi->orcpts[qi->nrcpts - 1] = v;
			v = NULL;
		}
		free(v);
		i += ll + 1;
	}
	if (i >= len || qi->sender == NULL)
		return -1;
	qi->body_offset = i + 1;
	qi->size = len - qi->body_offset;
	return 0;
}

int
queue_envelope_parse(const char *d, size_t len, struct queue_info *qi)
{
	if (parse_envelope(d, len, qi) == 0)
		return 0;
	queue_info_free(qi);		/* what was parsed before the error */
	return -1;
}

void
queue_info_free(struct queue_info *qi)
{
	free(qi->sender);
	free(qi->ip);
	free(qi->helo);
	free(qi->body);
	free(qi->path);
	for (size_t i = 0; i < qi->nrcpts; i++) {
		free(qi->rcpts[i]);
		free(qi->orcpts[i]);
	}
	free(qi->rcpts);
	free(qi->orcpts);
	for (size_t i = 0; i < qi->nenv; i++) {
		free(qi->env_key[i]);
		free(qi->env_val[i]);
	}
	free(qi->env_key);
	free(qi->env_val);
	memset(qi, 0, sizeof(*qi));
}

void
queue_mess_path(const struct queue_set *q, int qn, const char *id,
    struct buf *b)
{
	buf_printf(b, "%s/%d/mess/%d/%s", q->path, qn, queue_hash(id, q->split),
	    id);
}

void
queue_done_path(const struct queue_set *q, int qn, const char *id,
    struct buf *b)
{
	buf_printf(b, "%s/%d/done/%s", q->path, qn, id);
}

int
queue_clean_done(const struct queue_set *q)
{
	return clean_folder(q, "done", always, 0);
}

void
queue_state_path(const struct queue_set *q, int qn, const char *id,
    struct buf *b)
{
	buf_printf(b, "%s/%d/state/%d/%s", q->path, qn,
	    queue_hash(id, q->split), id);
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

int
queue_read_info(const char *path, int qn, struct queue_info *qi)
{
	struct stat st;
	struct buf b = BUF_INIT;
	size_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && (len = read_envelope(fd, &b)) > 0)
		rc = queue_envelope_parse(b.data, len, qi);
	close(fd);
	buf_free(&b);
	if (rc == 0) {
		qi->size = (size_t)st.st_size - qi->body_offset;
		qi->path = xstrdup(path);
		qi->queue = qn;
	}
	return rc;
}

int
queue_scan(const struct queue_set *q, int (*fn)(void *, struct queue_info *),
    void *arg)
{
	struct buf dir = BUF_INIT, f = BUF_INIT;
	int n = 0, rc;

	for (int i = 0; i < q->count; i++)
		for (int h = 0; h < q->split; h++) {
			DIR *d;
			struct dirent *e;

			buf_clear(&dir);
			buf_printf(&dir, "%s/%d/mess/%d", q->path, i, h);
			if ((d = opendir(buf_cstr(&dir))) == NULL)
				continue;
			while ((e = readdir(d)) != NULL) {
				struct queue_info qi;
				if (e->d_name[0] == '.')
					continue;
				buf_clear(&f);
				buf_printf(&f, "%s/%s", buf_cstr(&dir), e->d_name);
				if (queue_read_info(buf_cstr(&f), i, &qi) < 0) {
					/* never skipped silently: an admin must look */
					log_event(LOG_WARN, "queue_file_unreadable",
					    "path=%s", buf_cstr(&f));
					continue;
				}
				n++;
				rc = fn(arg, &qi);
				queue_info_free(&qi);
				if (rc != 0) {
					closedir(d);
					goto out;
				}
			}
			closedir(d);
		}
out:
	buf_free(&dir);
	buf_free(&f);
	return n;
}

void
queue_format_entry(struct buf *b, const char *id, long long age, size_t size,
    const char *sender, int held)
{
	char a[32];

	if (age < 120)
		snprintf(a, sizeof(a), "%llds", age);
	else if (age < 7200)
		snprintf(a, sizeof(a), "%lldm", age / 60);
	else if (age < 172800)
		snprintf(a, sizeof(a), "%lldh", age / 3600);
	else
		snprintf(a, sizeof(a), "%lldd", age / 86400);
	buf_printf(b, "%-24s %4s %9zu  <%s>%s\n", id, a, size, sender,
	    held ? "  (held)" : "");
}
