/*
 * smtp_client: one outgoing SMTP connection on the libuv loop: connect
 * (optionally from a bound local address), greeting, EHLO (HELO fallback),
 * STARTTLS (opportunistic or verified), AUTH PLAIN/LOGIN, then any number
 * of transactions with PIPELINING when the server offers it. Every phase
 * has its own timeout. Results are classed OK / TEMP / PERM per recipient.
 */
#ifndef INDIMAIL_SMTP_CLIENT_H
#define INDIMAIL_SMTP_CLIENT_H

#include <openssl/ssl.h>
#include <uv.h>

#include "../lib/buf.h"
#include "../mail/config.h"

enum result_class { RESULT_OK, RESULT_TEMP, RESULT_PERM };

struct client_opts {
	const char	*helo;
	int		 tls;		/* enum client_tls */
	SSL_CTX		*tls_ctx;
	const char	*auth_user, *auth_password;
	int		 auth_plaintext;	/* AUTH allowed without TLS */
	const char	*route;		/* "route x.test (h:port)": messages */
	const char	*bind_address;
	struct client_timeouts timeouts;	/* ms */
};

struct rcpt_result {
	enum result_class cls;
	struct buf	 text;		/* the server's reply, or our reason */
	int		 journaled;	/* already recorded by the delivery itself */
};

struct client_txn {
	const char	*sender;
	char	       **rcpts;
	size_t		 nrcpts;
	const struct buf *wire;		/* CRLF lines, dot-stuffed, ".\r\n" end */
	size_t		 size;		/* for SIZE= */
	int		 body8;		/* BODY=8BITMIME */
	struct rcpt_result *results;	/* nrcpts entries, filled */
	int		 closing;	/* set: the server replied 421 */
	int		 mail_deferred;	/* set: MAIL FROM got a 4xx */
};

struct smtp_client;

/* status: RESULT_OK when ready for a transaction; else why in text. */
typedef void (*client_ready_cb)(void *arg, struct smtp_client *,
	    enum result_class, const char *text);
typedef void (*client_txn_cb)(void *arg, struct smtp_client *);

struct smtp_client *smtp_client_open(uv_loop_t *, const struct sockaddr *,
	    const char *host_name, const struct client_opts *,
	    client_ready_cb, void *arg);
/* Runs a transaction; results land in txn->results, then cb. */
void	smtp_client_send(struct smtp_client *, struct client_txn *,
	    client_txn_cb, void *arg);
/* True if the connection can carry another transaction. */
int	smtp_client_reusable(const struct smtp_client *);
/* Sends QUIT (if possible) and frees the connection later. */
void	smtp_client_close(struct smtp_client *);
/* The connection failed at AUTH: the route's login, not the server. */
int	smtp_client_login_failed(const struct smtp_client *);
const char *smtp_client_peer(const struct smtp_client *);
int	smtp_client_tls(const struct smtp_client *);

/* LF message → CRLF, dot-stuffed, terminated wire form. */
void	smtp_client_wire(const char *msg, size_t len, struct buf *out);

#endif
