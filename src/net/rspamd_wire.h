/*
 * [src/net: network plumbing on the loop (TLS, DNS, connection counts);
 * it includes only src/lib and src/mail. See docs/architecture.md.]
 *
 * rspamd_wire: the bytes of rspamd's HTTP protocol (rspamd.com/doc/
 * developers/protocol.html): the request head of POST /checkv2 with the
 * envelope in headers (IP, Helo, From, one Rcpt per recipient, Queue-Id,
 * User, Password), and the reply: an HTTP/1.x status line and headers,
 * a body of Content-Length bytes (or up to EOF), which is JSON read with
 * jansson (action, score, required_score, symbols, subject). Pure: no
 * I/O, fuzzed by fuzz/fuzz_rspamd_reply.c.
 */
#ifndef INDIMAIL_RSPAMD_WIRE_H
#define INDIMAIL_RSPAMD_WIRE_H

#include <stddef.h>

#include "../lib/buf.h"

/* A reply longer than this (head and body) is not one we read. */
#define RSPAMD_REPLY_MAX	(256 * 1024)
/* The longest action, symbol name or subject kept (the rest is cut). */
#define RSPAMD_TEXT_MAX		200
/* Symbols kept from one reply (rspamd rarely gives more than 30). */
#define RSPAMD_SYMBOLS_MAX	100

/* What the request says about the message (NULL fields are left out). */
struct rspamd_envelope {
	const char	*ip, *helo, *from, *queue_id, *user, *password;
	char	       **rcpts;
	size_t		 nrcpts;
	size_t		 length;	/* of the message, the body */
};

struct rspamd_symbol {
	char		*name;
	double		 score;
};

/* A reply read: every string printable ASCII, at most RSPAMD_TEXT_MAX. */
struct rspamd_reply {
	char		*action;	/* "no action", "reject", ... */
	double		 score, required_score;
	char		*subject;	/* for "rewrite subject", or NULL */
	struct rspamd_symbol *symbols;
	size_t		 nsymbols;
};

/*
 * Appends the request head (up to the blank line) for host to out. Header
 * values with a CR or LF are left out (a peer's HELO is not trusted).
 */
void	rspamd_request_head(struct buf *out, const char *host,
	    const struct rspamd_envelope *);

/*
 * Looks at the reply bytes p[0..n) read so far (eof: the peer closed).
 * 1: complete, *body and *body_len set (the HTTP status in *status);
 * 0: more is needed; -1: not a reply we read, why in err.
 */
int	rspamd_http_parse(const char *p, size_t n, int eof, int *status,
	    const char **body, size_t *body_len, struct buf *err);

/* Reads the JSON body into r: 0, or -1 with why in err (r is empty). */
int	rspamd_reply_parse(const char *body, size_t n, struct rspamd_reply *r,
	    struct buf *err);
void	rspamd_reply_free(struct rspamd_reply *);

#endif
