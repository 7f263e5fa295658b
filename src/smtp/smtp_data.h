/*
 * smtp_data: the DATA phase as a byte-at-a-time state machine.
 *
 * Only <CR><LF>.<CR><LF> ends the message (the DATA command's own CRLF
 * counts as the first CRLF). Dot-stuffing is undone exactly (RFC 5321
 * §4.5.2). The message is stored with LF line ends. A bare CR, a bare LF,
 * a NUL byte or a line over the limit does not end anything: it is flagged,
 * the message is read to its real end and then rejected as a whole. No two
 * parsers can therefore disagree on where this message ends (no smuggling).
 */
#ifndef INDIMAIL_SMTP_DATA_H
#define INDIMAIL_SMTP_DATA_H

#include <stddef.h>

#include "../lib/buf.h"

enum smtp_data_flag {
	SMTP_DATA_BARE_LF	= 1 << 0,
	SMTP_DATA_BARE_CR	= 1 << 1,
	SMTP_DATA_NUL		= 1 << 2,
	SMTP_DATA_LONG_LINE	= 1 << 3,
	SMTP_DATA_TOO_BIG	= 1 << 4,
};

struct smtp_data {
	int	 state;
	int	 flags;		/* smtp_data_flag bits */
	int	 done;		/* end of data seen */
	size_t	 line_len;	/* bytes of the current line on the wire */
	size_t	 max_line;	/* longest line allowed, CRLF included */
	size_t	 max_size;	/* stop storing past this many bytes; 0 = none */
	size_t	 wire_size;	/* message bytes as sent (CRLF counted as 2) */
};

void	smtp_data_init(struct smtp_data *, size_t max_line, size_t max_size);

/*
 * Consumes bytes from p until end of data or until n is used up; appends the
 * unstuffed message to out. Returns the number of bytes consumed; bytes
 * after the end of data belong to the next command.
 */
size_t	smtp_data_feed(struct smtp_data *, const char *p, size_t n,
	    struct buf *out);

/* The reply for a message whose flags make it unacceptable, or NULL. */
const char *smtp_data_reject_reply(const struct smtp_data *);

#endif
