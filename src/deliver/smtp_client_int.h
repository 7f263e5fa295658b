/*
 * smtp_client_int: what the two halves of the outgoing SMTP client share
 * (smtp_client.c: connection, greeting, EHLO, STARTTLS, AUTH;
 * smtp_client_txn.c: transactions). Not for use outside smtp_client*.c.
 */
#ifndef INDIMAIL_SMTP_CLIENT_INT_H
#define INDIMAIL_SMTP_CLIENT_INT_H

#include "../net/tls.h"
#include "smtp_client.h"

enum cstate {
	C_CONNECT, C_GREETING, C_EHLO, C_HELO, C_STARTTLS, C_TLS_HANDSHAKE,
	C_AUTH_PLAIN, C_AUTH_LOGIN_USER, C_AUTH_LOGIN_PASS, C_AUTH_LOGIN_DONE,
	C_READY, C_TXN, C_DOT, C_QUIT, C_DEAD,
};

/* Replies a pipelined transaction waits for, in order. */
enum expect { X_MAIL, X_RCPT, X_DATA };

struct smtp_client {
	uv_loop_t	*loop;
	uv_tcp_t	 tcp;
	uv_timer_t	 timer;
	uv_connect_t	 connect_req;
	int		 handles;
	enum cstate	 state;
	struct client_opts opts;
	char		*host;		/* as looked up: SNI, verification */
	char		 peer[128];	/* host[ip]:port, for messages */
	struct buf	 in;
	struct tls_conn	 tls;
	int		 tls_on;
	int		 ext_pipelining, ext_starttls, ext_8bit, ext_size;
	int		 ext_auth_plain, ext_auth_login;
	int		 authed, ehlo_again, broken, closing;
	int		 login_failed;	/* AUTH refused or not possible */
	client_ready_cb	 ready_cb;
	client_txn_cb	 txn_cb;
	void		*arg;
	struct client_txn *txn;
	size_t		 next_reply;	/* index into the expected replies */
	size_t		 nexpect;
	int		 accepted;	/* recipients the server took */
	int		 mail_failed;
	int		 clean;		/* last transaction ended at the dot */
};

/* Formats one command line, CRLF added, and writes it. */
void	client_send_line(struct smtp_client *, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Writes bytes through TLS when it is on. */
void	client_write_data(struct smtp_client *, const char *, size_t);
/* Ends the connection phase or a transaction with a connection failure. */
void	client_fail_connection(struct smtp_client *, enum result_class,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
enum result_class client_class_of(int code);
/* (Re)starts the phase timeout. */
void	client_arm(struct smtp_client *, int ms);
/* A reply while a transaction runs (C_TXN, C_DOT). */
void	client_txn_reply(struct smtp_client *, int code, const char *text);

#endif
