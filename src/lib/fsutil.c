/*
 * fsutil: see fsutil.h. Every function may block: callers run them on the
 * libuv thread pool (or in a tool), never on a loop thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <string.h>
#include <sys/stat.h>

#include "batch.h"
#include "buf.h"
#include "xalloc.h"
#include "fsutil.h"

int
write_iov(int fd, struct iovec *iov, int n)
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

int
fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc, e;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	e = errno;
	close(fd);
	errno = e;
	return rc;
}

int
read_small_fd(int fd, const char *name, size_t max, struct buf *out,
    struct buf *err)
{
	char tmp[8192];
	ssize_t n;

	while ((n = read(fd, tmp, sizeof(tmp))) > 0 && out->len + (size_t)n <= max)
		buf_append(out, tmp, (size_t)n);
	if (n < 0)
		buf_printf(err, "cannot read %s: %s", name, strerror(errno));
	else if (n > 0)
		buf_printf(err, "%s is larger than %zu bytes", name, max);
	explicit_bzero(tmp, sizeof(tmp));	/* it may have held a key */
	return n == 0 ? 0 : -1;
}

int
read_small_file(const char *path, size_t max, struct buf *out, struct buf *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), rc;

	if (fd < 0) {
		buf_printf(err, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	rc = read_small_fd(fd, path, max, out, err);
	close(fd);
	return rc;
}

static void
commit_failed(struct fs_commit *c, const char *step, const char *path)
{
	c->ok = 0;
	c->step = step;
	c->path = path;
	c->error = errno;
}

/*
 * Closes and renames each file once the group's data are flushed; the
 * folders renamed into, and their file systems (a file's: a rename does
 * not cross file systems), into dirs and ddevs.
 */
static size_t
commit_renames(struct fs_commit *c, size_t n, int synced, const dev_t *devs,
    const char **dirs, dev_t *ddevs)
{
	size_t nd = 0;

	for (size_t i = 0; i < n; i++) {
		c[i].ok = 1;
		if (close(c[i].fd) < 0)
			commit_failed(&c[i], "close", c[i].tmp);
		else if (!synced)
			commit_failed(&c[i], "flush", c[i].tmp);
		else if (rename(c[i].tmp, c[i].dst) < 0)
			commit_failed(&c[i], "rename", c[i].dst);
		c[i].fd = -1;
		if (c[i].ok) {
			ddevs[nd] = devs[i];
			dirs[nd++] = c[i].dir;
		} else
			unlink(c[i].tmp);
	}
	return nd;
}

/* What a group commit of n files works with: their fds, folders, devices. */
struct group {
	int		*fds;
	const char	**dirs;
	dev_t		*devs, *ddevs;
};

/* Returns whether the first flush, the files' data, succeeded. */
static int
group_flush(struct fs_commit *c, size_t n, struct group *g)
{
	size_t sz = n ? n : 1;

	g->fds = xcalloc(sz, sizeof(int));
	g->dirs = xcalloc(sz, sizeof(char *));
	g->devs = xcalloc(sz, sizeof(dev_t));
	g->ddevs = xcalloc(sz, sizeof(dev_t));
	for (size_t i = 0; i < n; i++)
		g->fds[i] = c[i].fd;
	return sync_files_dev(g->fds, n, g->devs) == 0;
}

static void
group_free(struct group *g)
{
	free(g->fds);
	free(g->dirs);
	free(g->devs);
	free(g->ddevs);
}

void
fs_commit(struct fs_commit *c, size_t n)
{
	struct group g;
	int synced = group_flush(c, n, &g);
	size_t nd = commit_renames(c, n, synced, g.devs, g.dirs, g.ddevs);

	if (sync_dirs(g.dirs, g.ddevs, nd) < 0)	/* the renames may not be durable */
		for (size_t i = 0; i < n; i++)
			if (c[i].ok) {
				commit_failed(&c[i], "fsync", c[i].dir);
				unlink(c[i].dst);
			}
	group_free(&g);
}

/*
 * The second flush of files made ready in place: their modes and names
 * (one file: fsync of it and of its folder, whose devs are not needed).
 */
static int
flush_ready(const int *fds, const char **dirs, const dev_t *devs, size_t n)
{
	if (n == 1 && fsync(fds[0]) < 0)
		return -1;
	return sync_dirs(dirs, devs, n);
}

void
fs_commit_in_place(struct fs_commit *c, size_t n, mode_t ready)
{
	struct group g;
	int synced = group_flush(c, n, &g);
	size_t nr = 0;

	for (size_t i = 0; i < n; i++) {	/* the data are durable: ready */
		c[i].ok = 1;
		if (!synced)
			commit_failed(&c[i], "flush", c[i].dst);
		else if (fchmod(c[i].fd, ready) < 0)
			commit_failed(&c[i], "chmod", c[i].dst);
		if (c[i].ok) {		/* nr <= i: g.fds[i] is read no more */
			g.fds[nr] = c[i].fd;
			g.ddevs[nr] = g.devs[i];
			g.dirs[nr++] = c[i].dir;
		}
	}
	if (flush_ready(g.fds, g.dirs, g.ddevs, nr) < 0)
		for (size_t i = 0; i < n; i++)
			if (c[i].ok)
				commit_failed(&c[i], "fsync", c[i].dir);
	for (size_t i = 0; i < n; i++) {
		if (close(c[i].fd) < 0 && c[i].ok)
			commit_failed(&c[i], "close", c[i].dst);
		c[i].fd = -1;
		if (!c[i].ok)
			unlink(c[i].dst);
	}
	group_free(&g);
}
