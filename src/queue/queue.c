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

#include "../core/log.h"
#include "../core/xalloc.h"
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

int
queue_clean_tmp(const struct queue_set *q, long pid)
{
	struct buf p = BUF_INIT, f = BUF_INIT;
	char prefix[32];
	int removed = 0;

	snprintf(prefix, sizeof(prefix), "%ld.", pid);
	for (int i = 0; i < q->count; i++) {
		DIR *d;
		struct dirent *e;

		buf_clear(&p);
		buf_printf(&p, "%s/%d/tmp", q->path, i);
		if ((d = opendir(buf_cstr(&p))) == NULL)
			continue;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			if (pid && strncmp(e->d_name, prefix, strlen(prefix)))
				continue;
			if (!pid && writer_alive(e->d_name))
				continue;
			buf_clear(&f);
			buf_printf(&f, "%s/%s", buf_cstr(&p), e->d_name);
			if (unlink(buf_cstr(&f)) == 0)
				removed++;
		}
		closedir(d);
	}
	buf_free(&p);
	buf_free(&f);
	return removed;
}

/* Values are written with %XX for '%', control bytes and DEL. */
static void
put_field(struct buf *b, const char *key, const char *v)
{
	if (v == NULL)
		return;
	buf_printf(b, "%s ", key);
	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;
		if (c < 0x20 || c == 0x7f || c == '%')
			buf_printf(b, "%%%02X", c);
		else
			buf_appendc(b, (char)c);
	}
	buf_appendc(b, '\n');
}

void
queue_envelope_format(const struct queue_envelope *e, struct buf *b)
{
	buf_appends(b, "IMQ1\n");
	put_field(b, "id", e->id);
	buf_printf(b, "received %lld\n", (long long)e->received);
	put_field(b, "ip", e->ip);
	put_field(b, "helo", e->helo);
	put_field(b, "listener", e->listener);
	put_field(b, "tls", e->tls);
	put_field(b, "auth", e->auth_user);
	put_field(b, "body", e->body);
	put_field(b, "sender", e->sender);
	for (size_t i = 0; i < e->nrcpts; i++) {
		put_field(b, "rcpt", e->rcpts[i]);
		if (e->orcpts && e->orcpts[i] && strcmp(e->orcpts[i], e->rcpts[i]))
			put_field(b, "orcpt", e->orcpts[i]);
	}
	for (size_t i = 0; i < e->nenv; i++) {
		struct buf kv = BUF_INIT;
		buf_printf(&kv, "%s=%s", e->env_key[i], e->env_val[i]);
		put_field(b, "env", buf_cstr(&kv));
		buf_free(&kv);
	}
	buf_appendc(b, '\n');
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static char *
decode(const char *v, size_t n)
{
	char *out = xmalloc(n + 1), *o = out;

	for (size_t i = 0; i < n; i++) {
		if (v[i] == '%' && i + 2 < n &&
		    hexval(v[i + 1]) >= 0 && hexval(v[i + 2]) >= 0) {
			*o++ = (char)(hexval(v[i + 1]) * 16 + hexval(v[i + 2]));
			i += 2;
		} else
			*o++ = v[i];
	}
	*o = '\0';
	return out;
}

int
queue_envelope_parse(const char *d, size_t len, struct queue_info *qi)
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
			qi->rcpts = xrealloc(qi->rcpts,
			    (qi->nrcpts + 1) * sizeof(char *));
			qi->orcpts = xrealloc(qi->orcpts,
			    (qi->nrcpts + 1) * sizeof(char *));
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
queue_state_path(const struct queue_set *q, int qn, const char *id,
    struct buf *b)
{
	buf_printf(b, "%s/%d/state/%d/%s", q->path, qn,
	    queue_hash(id, q->split), id);
}

/* Reads the envelope part of one message file (first 64 KiB at most). */
int
queue_read_info(const char *path, int qn, struct queue_info *qi)
{
	struct stat st;
	char *data;
	ssize_t n;
	size_t want;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	want = (size_t)st.st_size < 65536 ? (size_t)st.st_size : 65536;
	data = xmalloc(want + 1);
	n = pread(fd, data, want, 0);
	close(fd);
	rc = n < 0 ? -1 : queue_envelope_parse(data, (size_t)n, qi);
	free(data);
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
