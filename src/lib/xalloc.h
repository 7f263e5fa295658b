/*
 * [src/lib: generic code that knows no mail; it includes nothing outside
 * src/lib. See docs/architecture.md.]
 *
 * Allocation wrappers that panic on out-of-memory (Postfix's mymalloc
 * idea). Nothing else in the tree calls
 * malloc directly, so no call site has to handle NULL.
 */
#ifndef INDIMAIL_XALLOC_H
#define INDIMAIL_XALLOC_H

#include <stddef.h>
#include <stdlib.h>

#include "diag.h"

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);

#endif
