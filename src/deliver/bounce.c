/*
 * bounce: builds multipart/report (RFC 6522) messages with a
 * message/delivery-status part (RFC 3464): one per-recipient block with
 * Final-Recipient, Original-Recipient, Action, Status, Remote-MTA and
 * Diagnostic-Code, then the original headers as text/rfc822-headers.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bounce.h"

static void
rfc5322_date(long long t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	localtime_r(&tt, &tm);
	strftime(out, n, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

void
bounce_status(const char *text, char *out, size_t n)
{
	int a, b, c, k;

	for (const char *p = text; *p; p++) {
		if ((p == text || p[-1] == ' ') && (*p == '4' || *p == '5') &&
		    sscanf(p, "%1d.%3d.%3d%n", &a, &b, &c, &k) == 3 &&
		    (p[k] == ' ' || p[k] == '\0' || p[k] == '\n')) {
			snprintf(out, n, "%d.%d.%d", a, b, c);
			return;
		}
	}
	snprintf(out, n, "%s", text[0] == '4' ? "4.0.0" : "5.0.0");
}

/* One line of a reply, safe for a header field. */
static void
one_line(struct buf *b, const char *text)
{
	for (; *text; text++)
		buf_appendc(b, *text == '\n' || *text == '\r' ? ' ' : *text);
}

/* The DSN's header section and its human-readable part. */
static void
put_notification(struct buf *out, const char *host, const struct envelope *e,
    int level, const char *now)
{
	const char *to = level == 0 ? e->sender : "postmaster";

	buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\n"
	    "To: <%s>\nSubject: %s\nDate: %s\n"
	    "Message-ID: <%s.bounce@%s>\nAuto-Submitted: auto-replied\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\n"
	    "\tboundary=\"%s/%s\"\n\n"
	    "This is a MIME-encapsulated message.\n\n",
	    host, to, level == 0 ?
	    "Undelivered Mail Returned to Sender" :
	    "Postmaster notify: undeliverable bounce", now, e->id,
	    host, e->id, host);
	buf_printf(out, "--%s/%s\nContent-Description: Notification\n"
	    "Content-Type: text/plain; charset=us-ascii\n\n"
	    "This is the mail system at host %s.\n\n"
	    "Your message could not be delivered to one or more recipients.\n"
	    "It is attached below (headers only).\n\n",
	    e->id, host, host);
}

/* The per-recipient fields of message/delivery-status (RFC 3464 2.3). */
static void
put_recipient(struct buf *out, const struct bounce_rcpt *r, const char *now)
{
	char status[16];

	bounce_status(r->text, status, sizeof(status));
	buf_printf(out, "\nFinal-Recipient: rfc822; %s\n", r->rcpt);
	if (r->orcpt && strcmp(r->orcpt, r->rcpt) != 0)
		buf_printf(out, "Original-Recipient: rfc822; %s\n", r->orcpt);
	buf_printf(out, "Action: failed\nStatus: %s\n", status);
	if (r->remote_mta)	/* "host[ip]:port": the name only */
		buf_printf(out, "Remote-MTA: dns; %.*s\n",
		    (int)strcspn(r->remote_mta, "["), r->remote_mta);
	buf_appends(out, isdigit((unsigned char)r->text[0]) ?
	    "Diagnostic-Code: smtp; " : "Diagnostic-Code: x-indimail; ");
	one_line(out, r->text);
	buf_printf(out, "\nLast-Attempt-Date: %s\n", now);
}

void
bounce_build(const char *host, const struct envelope *e, int level,
    const struct bounce_rcpt *r, size_t n, const char *hdrs, size_t hlen,
    struct buf *out)
{
	char now[64], arrival[64];

	rfc5322_date((long long)time(NULL), now, sizeof(now));
	rfc5322_date((long long)e->received, arrival, sizeof(arrival));
	put_notification(out, host, e, level, now);
	for (size_t i = 0; i < n; i++) {
		buf_printf(out, "<%s>: ", r[i].rcpt);
		one_line(out, r[i].text);
		buf_appends(out, "\n");
	}
	buf_printf(out, "\n--%s/%s\nContent-Description: Delivery report\n"
	    "Content-Type: message/delivery-status\n\n"
	    "Reporting-MTA: dns; %s\nX-Indimail-Queue-ID: %s\n"
	    "X-Original-Sender: rfc822; %s\nArrival-Date: %s\n",
	    e->id, host, host, e->id, e->sender[0] ? e->sender : "<>", arrival);
	for (size_t i = 0; i < n; i++)
		put_recipient(out, &r[i], now);
	buf_printf(out, "\n--%s/%s\nContent-Description: Undelivered Message "
	    "Headers\nContent-Type: text/rfc822-headers\n\n", e->id, host);
	buf_append(out, hdrs, hlen);
	if (hlen && hdrs[hlen - 1] != '\n')
		buf_appendc(out, '\n');
	buf_printf(out, "\n--%s/%s--\n", e->id, host);
}
