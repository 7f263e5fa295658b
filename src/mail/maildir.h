/*
 * [src/mail: what every part of the server knows about mail, whatever the
 * protocol; it includes only src/lib. See docs/architecture.md.]
 *
 * maildir: where a local address's Maildir is and how much of its quota
 * is used (Maildir++ maildirsize), the one reading shared by the RCPT
 * check (src/directory) and local delivery (src/deliver/local.c). Both
 * touch the disk: call them off the loop thread.
 */
#ifndef INDIMAIL_MAILDIR_H
#define INDIMAIL_MAILDIR_H

#include "../lib/buf.h"

/* <root>/<domain>/<local>/Maildir, lower case, appended to md. */
void	maildir_path(struct buf *md, const char *root, const char *address);
/*
 * The bytes the "size count" lines of <maildir>/maildirsize add up to
 * (the first line, the quota, is skipped). A missing file is 0 used;
 * any other failure -1 with errno.
 */
int	maildir_usage(const char *maildir, long long *used);

#endif
