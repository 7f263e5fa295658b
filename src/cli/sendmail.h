/*
 * src/cli owns the command-line programs: bin/indimail (the admin tool,
 * indimail.c) and bin/sendmail (the injector, the files below). They sit
 * on top, like src/daemon, but never include it or src/deliver.
 *
 * sendmail.h: what the four files of bin/sendmail share. sendmail.c reads
 * the options and checks addresses; sendmail_input.c reads the message
 * from standard input into a spool; sendmail_mime.c is the GMime side
 * (address lists, long-line re-encoding, the wire format); sendmail_smtp.c
 * speaks SMTP over the local submission socket. Functions that can fail
 * say why on stderr and return a sysexits.h code (0: success).
 */
#ifndef INDIMAIL_SENDMAIL_H
#define INDIMAIL_SENDMAIL_H

#include <stddef.h>
#include <sysexits.h>

#include <gmime/gmime.h>

#include "../lib/buf.h"

#define WIRE_LINE	998	/* longest line on the wire, CRLF not counted */

enum sendmail_mode {
	MODE_SEND,		/* -bm: a message from standard input */
	MODE_SMTP,		/* -bs: SMTP on standard input and output */
	MODE_VERIFY,		/* -bv */
	MODE_LIST,		/* -bp, mailq */
	MODE_FLUSH,		/* -q */
	MODE_ALIASES,		/* -bi, -I, newaliases */
};

struct addr_list {
	char		**v;
	size_t		  n;
};

struct opts {
	enum sendmail_mode mode;
	int		 from_headers;	/* -t */
	int		 dot_is_data;	/* -i, -oi */
	int		 verbose;	/* -v */
	int		 body8;		/* -B8BITMIME */
	const char	*sender;	/* -f, -r */
	const char	*fullname;	/* -F */
	struct addr_list rcpts;		/* the command line's */
};

/* The message read from standard input, spooled whole (memory, then file). */
struct message {
	GMimeStream	*spool;		/* header section, blank line, body; LF ends */
	struct addr_list rcpts;		/* from To, Cc, Bcc with -t */
	int		 has_from, has_date, has_msgid, has_mime;
	int		 has_8bit;
	int		 reencode;	/* a body line over WIRE_LINE, or a NUL */
};

/* sendmail.c */
int	 sendmail_error(int code, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	 addr_list_add(struct addr_list *, const char *);
void	 addr_list_free(struct addr_list *);
int	 addr_valid(const char *addr, int sender);
void	 addr_quote(struct buf *, const char *);

/* sendmail_input.c */
int	 input_read(const struct opts *, struct message *);

/* sendmail_mime.c */
int	 mime_recipients(const char *field, const char *value,
	    struct addr_list *);
void	 mime_headers(struct buf *, const struct message *, const char *from,
	    const char *fullname, const char *host);
int	 mime_send(struct message *, const struct buf *extra, int fd);

/* sendmail_smtp.c */
int	 smtp_submit(const struct opts *, const char *socket_path,
	    const char *login, struct message *);
int	 smtp_verify(const struct opts *, const char *socket_path,
	    const char *login);
int	 smtp_stdio(const char *socket_path);

#endif
