/*
 * bounce: RFC 3464 delivery status notifications. A bounce goes to the
 * envelope sender with the null sender, carries the original header
 * section, and is marked so that its own failure becomes a double bounce
 * to the postmaster, whose failure is only logged.
 */
#ifndef INDIMAIL_BOUNCE_H
#define INDIMAIL_BOUNCE_H

#include <stddef.h>

#include "../lib/buf.h"
#include "../mail/envelope.h"

struct bounce_rcpt {
	const char	*rcpt, *orcpt;
	const char	*text;		/* the reply or our reason */
	const char	*remote_mta;	/* NULL for local delivery */
};

/*
 * Builds the DSN message (LF line ends) into out, about the message of
 * envelope e (its id, arrival and sender). level: 0 when e is normal mail
 * (the DSN goes to its sender), 1 when it is a bounce (to the postmaster).
 */
void	bounce_build(const char *hostname, const struct envelope *e, int level,
	    const struct bounce_rcpt *, size_t n, const char *orig_headers,
	    size_t hlen, struct buf *out);
/* The enhanced status code found in a reply, or the default for its class. */
void	bounce_status(const char *text, char *out, size_t n);

#endif
