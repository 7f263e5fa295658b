/*
 * fsutil: see fsutil.h. Both functions may block: callers run them on the
 * libuv thread pool, never on a loop thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <string.h>
#include <sys/stat.h>

#include "buf.h"
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
read_small_file(const char *path, size_t max, struct buf *out, struct buf *err)
{
	char tmp[8192];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		buf_printf(err, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	while ((n = read(fd, tmp, sizeof(tmp))) > 0 && out->len + (size_t)n <= max)
		buf_append(out, tmp, (size_t)n);
	if (n < 0)
		buf_printf(err, "cannot read %s: %s", path, strerror(errno));
	else if (n > 0)
		buf_printf(err, "%s is larger than %zu bytes", path, max);
	close(fd);
	return n == 0 ? 0 : -1;
}
