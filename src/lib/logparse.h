/*
 * [src/lib: generic code that knows no mail; it includes nothing outside
 * src/lib. See docs/architecture.md.]
 *
 * logparse: reads back one line that log.c wrote,
 *   2026-11-25T08:24:06.772017Z smtp[4700] info event=queued from=a@b ...
 * into its time, role, level and key=value fields, undoing log.c's quoting
 * ("..." with \" \\ \n \r \t \xHH). Values can carry a peer's bytes, so the
 * parser trusts nothing: a line that is not in that shape is refused whole.
 *
 *   struct logrec r = LOGREC_INIT;
 *   if (logrec_parse(&r, line, len) == 0)
 *           printf("%s %s\n", logrec_get(&r, "event"), logrec_get(&r, "qid"));
 *   logrec_free(&r);
 */
#ifndef INDIMAIL_LOGPARSE_H
#define INDIMAIL_LOGPARSE_H

#include <stddef.h>
#include <time.h>

#include "buf.h"

/* Fields kept per line; the rest of a longer line is ignored. */
#define LOGREC_FIELDS	64

struct logfield {
	const char	*key;
	const char	*val;	/* NUL-terminated; a \x00 in it ends it early */
	size_t		 vlen;	/* the decoded length, \x00 bytes included */
};

struct logrec {
	time_t		 when;		/* the timestamp, seconds UTC */
	const char	*role;		/* "smtp", "qmgr", ... */
	const char	*level;		/* "info", ... */
	size_t		 nf;
	struct logfield	 f[LOGREC_FIELDS];
	struct buf	 store;		/* the decoded text the pointers borrow */
};

#define LOGREC_INIT	{ 0, NULL, NULL, 0, { { NULL, NULL, 0 } }, BUF_INIT }

/* 0 and r filled, or -1: not a log line (r's fields are then undefined). */
int	logrec_parse(struct logrec *r, const char *line, size_t n);
/* The first value of key, or NULL. */
const char *logrec_get(const struct logrec *r, const char *key);
void	logrec_free(struct logrec *r);

#endif
