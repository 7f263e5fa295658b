/*
 * listen: the listening sockets of one indimaild, fixed at start. The
 * master binds them (TCP ones as root, the local submission socket after
 * dropping privileges) and every worker it ever forks inherits this same
 * set, whatever a later reload says (listener changes need a restart).
 */
#ifndef INDIMAIL_LISTEN_H
#define INDIMAIL_LISTEN_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "../lib/buf.h"
#include "../mail/config.h"

struct listener {
	char		*name;
	char		*address;	/* TCP: as configured */
	int		 port;		/* TCP: as configured (0: any) */
	char		*path;		/* UNIX socket path; NULL for TCP */
	enum tls_mode	 tls;
	SSL_CTX		*tls_ctx;	/* NULL when the listener has no TLS */
	int		 fd;
};

/*
 * Binds address:port and listens (port 0: any free port). A port still
 * held by a dying predecessor is retried for up to wait_ms. Returns the fd
 * and the bound port in *bound, or -1 with the reason in err.
 */
int	listen_tcp(const char *address, int port, int wait_ms, int *bound,
	    struct buf *err);
/* A UNIX stream socket at path, mode 0666 (any local user may submit). */
int	listen_unix(const char *path, struct buf *err);
/* 1 when the configuration asks for exactly these TCP listeners. */
int	listen_same(const struct listener *, size_t n, const struct config *);

#endif
