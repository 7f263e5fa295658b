/*
 * Allocation wrappers that abort on out-of-memory (Postfix's mymalloc idea),
 * and panic() for corrupted invariants. Nothing else in the tree calls
 * malloc directly, so no call site has to handle NULL.
 */
#ifndef INDIMAIL_XALLOC_H
#define INDIMAIL_XALLOC_H

#include <stddef.h>
#include <stdlib.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
void	 panic(const char *fmt, ...)
	    __attribute__((noreturn, format(printf, 1, 2)));

#endif
