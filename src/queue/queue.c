/*
 * queue: queue folders, ids, paths and the cleaning of tmp/ and done/, and
 * the calls that go to the set's backend. Ids are unique per host: seconds,
 * microseconds, pid and a per-process counter, in upper-case hex (24
 * characters), so they also sort by arrival time.
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
#include "../mail/config.h"
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
	q->backend = &queue_fs;
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
		buf_clear(&p);
		buf_printf(&p, "%s/%d/wal", path, i);
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

/* In a queue id, after the 9 + 5 digits of the time: the writer's pid. */
#define ID_PID_AT	14

void
queue_new_id(char out[QUEUE_ID_LEN + 1])
{
	static unsigned counter;
	struct timeval tv;

	gettimeofday(&tv, NULL);
	snprintf(out, QUEUE_ID_LEN + 1, "%09llX%05lX%06lX%04X",
	    (unsigned long long)tv.tv_sec & 0xfffffffffULL,
	    (unsigned long)tv.tv_usec, (unsigned long)log_pid() & 0xffffff,
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
 * A zombie: killed, not yet reaped (its parent, a killed master, is gone
 * and whoever inherits it may be slow to reap, or never). It writes
 * nothing any more: /proc/<pid>/stat says state Z (or X).
 */
static int
zombie(long pid)
{
	char path[64], stat[256], *close_paren;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	n = fread(stat, 1, sizeof(stat) - 1, f);
	fclose(f);
	stat[n] = '\0';
	/* "pid (comm) S ...": comm may hold anything, the state follows the last ')' */
	close_paren = strrchr(stat, ')');
	return close_paren && close_paren[1] == ' ' &&
	    (close_paren[2] == 'Z' || close_paren[2] == 'X');
}

/* Whether another process pid runs (a zombie does not). */
static int
pid_alive(long pid)
{
	return pid > 0 && pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 ||
	    errno == EPERM) && !zombie(pid);
}

/*
 * A tmp file "<pid>.<id>" (or a segment "<pid>.<seq>") whose writer still
 * runs (a worker of a killed master, draining): it is about to become a
 * message, or be removed.
 */
int
queue_writer_alive(const char *name)
{
	return pid_alive(atol(name));
}

int
queue_id_writer_alive(const char *id)
{
	char hex[7];
	long pid;

	if (strlen(id) != QUEUE_ID_LEN)
		return 0;
	memcpy(hex, id + ID_PID_AT, 6);
	hex[6] = '\0';
	pid = strtol(hex, NULL, 16);
	return pid == (long)(log_pid() & 0xffffff) || pid_alive(pid);
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
		return !queue_writer_alive(name);
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

const struct queue_backend *
queue_backend_of(int kind)
{
	return kind == QUEUE_BACKEND_WAL ? &queue_wal :
	    kind == QUEUE_BACKEND_SEGMENT ? &queue_segment : &queue_fs;
}

int
queue_write(uv_loop_t *loop, struct queue_set *q, const struct envelope *e,
    const struct msg_piece *pieces, size_t npieces, queue_write_cb cb,
    void *arg)
{
	return q->backend->write(loop, q, e, pieces, npieces, cb, arg);
}

int
queue_scan(const struct queue_set *q, int (*fn)(void *, struct queue_item *),
    void *arg)
{
	return q->backend->scan(q, fn, arg);
}

struct list_by_scan {
	int	(*fn)(void *, int, const char *);
	void	*arg;
};

static int
list_one(void *arg, struct queue_item *qi)
{
	struct list_by_scan *l = arg;

	return l->fn(l->arg, qi->queue, qi->env.id);
}

int
queue_list(const struct queue_set *q,
    int (*fn)(void *, int queue, const char *id), void *arg)
{
	struct list_by_scan l = { fn, arg };

	if (q->backend->list)
		return q->backend->list(q, fn, arg);
	return q->backend->scan(q, list_one, &l);
}
