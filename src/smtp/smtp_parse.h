/*
 * smtp_parse: the pure functions that turn one SMTP command line (already
 * framed, CRLF removed) into a command and its arguments. No I/O, no state:
 * this is what the fuzzers and the unit specs exercise directly.
 *
 * Errors are returned as a complete reply text ("501 5.5.4 ...") so every
 * rejection reads the same wherever it is produced.
 */
#ifndef INDIMAIL_SMTP_PARSE_H
#define INDIMAIL_SMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/buf.h"

enum smtp_cmd {
	SMTP_CMD_UNKNOWN = 0,
	SMTP_CMD_HELO, SMTP_CMD_EHLO, SMTP_CMD_MAIL, SMTP_CMD_RCPT,
	SMTP_CMD_DATA, SMTP_CMD_RSET, SMTP_CMD_NOOP, SMTP_CMD_QUIT,
	SMTP_CMD_VRFY, SMTP_CMD_EXPN, SMTP_CMD_HELP, SMTP_CMD_STARTTLS,
	SMTP_CMD_AUTH, SMTP_CMD_ETRN, SMTP_CMD_BDAT,
	SMTP_CMD_HTTP,		/* GET, HEAD, POST, PUT, CONNECT: not SMTP at all */
};

struct smtp_command {
	enum smtp_cmd	 cmd;
	const char	*line;		/* the whole line, as received */
	size_t		 linelen;
	const char	*verb;		/* points into the line */
	size_t		 verblen;
	const char	*arg;		/* after the verb and one space; may be "" */
	size_t		 arglen;
};

enum smtp_body { SMTP_BODY_NONE, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };

struct smtp_mail_arg {
	struct buf	 path;		/* "" for the null sender <> */
	int		 has_size;
	uint64_t	 size;
	enum smtp_body	 body;
};

struct smtp_rcpt_arg {
	struct buf	 path;		/* "Postmaster" alone is allowed */
	int		 postmaster;	/* <postmaster> without a domain */
};

/* Returns 0 and fills cmd; -1 with *reply set when the line is unusable. */
int	smtp_parse_command(const char *line, size_t len,
	    struct smtp_command *cmd, const char **reply);

/* HELO/EHLO argument: a domain or address literal. */
int	smtp_parse_helo(const char *arg, size_t len, const char **reply);

/* "FROM:<path> [params]" for MAIL; path buffers are caller-owned. */
int	smtp_parse_mail(const char *arg, size_t len,
	    struct smtp_mail_arg *out, const char **reply);
int	smtp_parse_rcpt(const char *arg, size_t len,
	    struct smtp_rcpt_arg *out, const char **reply);

/*
 * An AUTH PLAIN message (RFC 4616), already base64-decoded:
 * [authzid] NUL authcid NUL passwd. The spans point into m; -1 when the
 * two NUL separators are not there. The password may still hold a NUL:
 * the caller refuses that as malformed credentials.
 */
struct smtp_plain {
	const char	*authz, *user, *pass;
	size_t		 authzlen, userlen, passlen;
};
int	smtp_parse_plain(const char *m, size_t len, struct smtp_plain *out);

#endif
