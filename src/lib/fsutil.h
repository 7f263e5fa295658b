/*
 * [src/lib: generic code that knows no mail; it includes nothing outside
 * src/lib. See docs/architecture.md.]
 *
 * fsutil: the file-system primitives durable writers share: writing a
 * whole iovec despite short writes and EINTR, fsync of a directory (what
 * makes a rename durable), and the commit of files written under a
 * temporary name (flush, rename, flush the renames) as one group.
 */
#ifndef INDIMAIL_FSUTIL_H
#define INDIMAIL_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Writes every byte of iov[0..n); 0, or -1 with errno. Modifies iov. */
int	write_iov(int fd, struct iovec *iov, int n);
/* Reads a whole small file (at most max bytes); 0, or -1 with why in err. */
struct buf;
int	read_small_file(const char *path, size_t max, struct buf *out,
	    struct buf *err);
/* The same from an open descriptor (from its offset); name for errors. */
int	read_small_fd(int fd, const char *name, size_t max, struct buf *out,
	    struct buf *err);
/* fsync(2) of a directory by path; 0, or -1 with errno. */
int	fsync_dir(const char *path);

/*
 * A file written under tmp, to become durable as dst (in the folder dir,
 * on the same file system). fs_commit fills ok; on failure step names what
 * failed ("close", "flush", "rename", "chmod" or "fsync"), path its file
 * (tmp, dst or dir) and error its errno, and the file is gone from tmp and
 * dst.
 */
struct fs_commit {
	int		 fd;		/* open and written; fs_commit closes it */
	const char	*tmp, *dst, *dir;
	int		 ok;
	const char	*step, *path;
	int		 error;
};
/*
 * tmp -> fdatasync -> rename -> fsync(dir) for n files at once: two
 * flushes for the group (sync_files, sync_dirs), however many files.
 */
void	fs_commit(struct fs_commit *, size_t n);
/*
 * For files created in place as dst (tmp unused) with a mode that marks
 * them incomplete: flush -> fchmod(ready) -> flush. Two flushes for the
 * group, no rename; a file that failed is unlinked. The second flush is
 * syncfs() per file system, or fsync(file) and fsync(dir) for one file.
 */
void	fs_commit_in_place(struct fs_commit *, size_t n, mode_t ready);

#endif
