/*
 * maildir: the Maildir of a local address and its Maildir++ usage
 * (maildirsize: a quota line, then one "bytes count" line per delivery
 * or removal). Reads only; local delivery (src/deliver/local.c) creates
 * and appends to the file.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "maildir.h"

void
maildir_path(struct buf *md, const char *root, const char *address)
{
	const char *at = strrchr(address, '@');

	if (at == NULL)
		at = address + strlen(address);
	buf_printf(md, "%s/", root);
	for (const char *p = *at ? at + 1 : at; *p; p++)
		buf_appendc(md, (char)tolower((unsigned char)*p));
	buf_appendc(md, '/');
	for (const char *p = address; p < at; p++)
		buf_appendc(md, (char)tolower((unsigned char)*p));
	buf_appends(md, "/Maildir");
}

int
maildir_usage(const char *maildir, long long *used)
{
	struct buf p = BUF_INIT;
	char line[128];
	long long bytes, count;
	FILE *f;
	int e = 0;

	*used = 0;
	buf_printf(&p, "%s/maildirsize", maildir);
	f = fopen(buf_cstr(&p), "r");
	e = f ? 0 : errno;
	buf_free(&p);
	if (f == NULL) {
		errno = e;
		return e == ENOENT ? 0 : -1;
	}
	if (fgets(line, sizeof(line), f) != NULL)	/* the quota line */
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "%lld %lld", &bytes, &count) == 2)
				*used += bytes;
	if (ferror(f))
		e = errno ? errno : EIO;
	fclose(f);		/* read only: nothing to lose */
	errno = e;
	return e ? -1 : 0;
}
