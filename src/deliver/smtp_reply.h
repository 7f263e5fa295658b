/*
 * smtp_reply: pure parsing of what a remote SMTP server says: complete
 * (multi-line) replies and the EHLO keywords. No I/O, no state: fuzzed by
 * fuzz/fuzz_reply.c and used by smtp_client.c.
 */
#ifndef INDIMAIL_SMTP_REPLY_H
#define INDIMAIL_SMTP_REPLY_H

#include <stddef.h>

#include "../lib/buf.h"

#define SMTP_REPLY_MAX	(64 * 1024)	/* longer replies are a protocol error */

enum ehlo_cap {
	EHLO_PIPELINING	= 1 << 0,
	EHLO_STARTTLS	= 1 << 1,
	EHLO_8BITMIME	= 1 << 2,
	EHLO_SIZE	= 1 << 3,
	EHLO_AUTH_PLAIN	= 1 << 4,
	EHLO_AUTH_LOGIN	= 1 << 5,
};

/*
 * Looks for one complete reply at the start of p[0..n). Returns the bytes
 * it spans (text gets its lines joined by '\n', CRs removed, and *code its
 * code: 100-599, or 0 when malformed: not three digits, mixed codes), 0 if
 * more input is needed, -1 if the reply grew past SMTP_REPLY_MAX.
 */
long	smtp_reply_parse(const char *p, size_t n, int *code, struct buf *text);

/* enum ehlo_cap bits of an EHLO reply text (first line is the greeting). */
unsigned smtp_ehlo_caps(const char *text);

#endif
