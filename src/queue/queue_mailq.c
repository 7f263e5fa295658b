/*
 * queue_mailq: the queue as Postfix's mailq prints it, for bin/mailq
 * (`indimail queue mailq`), whether the queue manager or the CLI reading
 * the folders lists it. A message is a line (id, status, size, arrival,
 * sender), then its recipients not yet final, indented, each deferral
 * reason in parentheses above the recipients it applies to.
 */
#include <string.h>
#include <time.h>

#include "queue.h"

#define MAILQ_RCPT_INDENT	41	/* recipients start under the sender */
#define MAILQ_REASON_WIDTH	76	/* reasons end in column 78 */
#define MAILQ_DATE_WIDTH	20	/* "Mon Jan  1 12:00:00 " of asctime */

void
queue_mailq_message(struct buf *b, int first, const char *id, char status,
    size_t size, time_t received, const char *sender)
{
	char date[32];
	struct tm tm;

	if (first)
		buf_appends(b, QUEUE_MAILQ_HEADER);
	else
		buf_appendc(b, '\n');
	if (localtime_r(&received, &tm) == NULL ||
	    asctime_r(&tm, date) == NULL)
		strcpy(date, "??");
	buf_printf(b, "%-10s%c%8zu %*.*s %s\n", id, status, size,
	    MAILQ_DATE_WIDTH, MAILQ_DATE_WIDTH, date,
	    *sender ? sender : "MAILER-DAEMON");
}

void
queue_mailq_rcpt(struct buf *b, const char *rcpt, const char *why,
    const char **last_why)
{
	int pad;

	if (why && *why && (*last_why == NULL || strcmp(*last_why, why) != 0)) {
		pad = MAILQ_REASON_WIDTH - (int)strlen(why);
		buf_printf(b, "%*s(%s)\n", pad > 0 ? pad : 0, "", why);
		*last_why = why;
	}
	buf_printf(b, "%*s%s\n", MAILQ_RCPT_INDENT, "", rcpt);
}

void
queue_mailq_total(struct buf *b, unsigned long long bytes, size_t count)
{
	if (count == 0)
		buf_appends(b, "Mail queue is empty\n");
	else
		buf_printf(b, "\n-- %llu Kbytes in %zu Request%s.\n",
		    bytes / 1024, count, count == 1 ? "" : "s");
}
