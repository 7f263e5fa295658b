/*
 * [src/lib: generic code that knows no mail; it includes nothing outside
 * src/lib. See docs/architecture.md.]
 *
 * buf: a growable byte buffer that knows its length. Every byte that comes
 * from a peer lives in one of these; nothing is copied into fixed arrays.
 * Allocation failure aborts (see xalloc.h), so callers never check for NULL.
 * Its memory may move out (p = b.data, the caller then frees p) only from a
 * buffer nothing was consumed from (skip == 0).
 */
#ifndef INDIMAIL_BUF_H
#define INDIMAIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char	*data;	/* always NUL-terminated when cap > 0 */
	size_t	 len;
	size_t	 cap;	/* bytes from data to the end of the allocation */
	size_t	 skip;	/* consumed bytes before data: the allocation is
			 * data - skip, skip + cap bytes */
};

#define BUF_INIT { NULL, 0, 0, 0 }

void	buf_reserve(struct buf *, size_t extra);
void	buf_append(struct buf *, const void *, size_t);
void	buf_appends(struct buf *, const char *);
void	buf_appendc(struct buf *, char);
void	buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	buf_vprintf(struct buf *, const char *, va_list);
void	buf_set(struct buf *, const void *, size_t);
void	buf_consume(struct buf *, size_t n);	/* drop n bytes from the front:
					 * O(1), moved up when room runs out */
void	buf_clear(struct buf *);		/* len = 0, keeps memory */
void	buf_free(struct buf *);			/* releases memory */
void	buf_wipe(struct buf *);			/* zeroes it, then buf_free */
const char *buf_cstr(struct buf *);		/* "" for an empty buffer */
/*
 * Appends v with control bytes, DEL, '%' and every byte of `also` written
 * as %XX (upper-case hex): a value that can sit in a line-based format of
 * ours. b may be NULL; returns the bytes it takes either way.
 */
size_t	buf_escape(struct buf *, const char *v, const char *also);
/* Decodes %XX in src[0..n) into dst (n + 1 bytes; may be src); its length. */
size_t	buf_unescape(char *dst, const char *src, size_t n);

#endif
