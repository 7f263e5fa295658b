/*
 * fsutil: the two file-system primitives durable writers share: writing a
 * whole iovec despite short writes and EINTR, and fsync of a directory
 * (what makes a rename durable).
 */
#ifndef INDIMAIL_FSUTIL_H
#define INDIMAIL_FSUTIL_H

#include <sys/uio.h>

/* Writes every byte of iov[0..n); 0, or -1 with errno. Modifies iov. */
int	write_iov(int fd, struct iovec *iov, int n);
/* Reads a whole small file (at most max bytes); 0, or -1 with why in err. */
struct buf;
int	read_small_file(const char *path, size_t max, struct buf *out,
	    struct buf *err);
/* fsync(2) of a directory by path; 0, or -1 with errno. */
int	fsync_dir(const char *path);

#endif
