/*
 * [src/admin: the admin HTTP API (docs/admin-api.md). See
 * docs/architecture.md.]
 *
 * admin_server: the HTTP side of the admin API, libmicrohttpd over a
 * listening socket the master bound, TLS by GnuTLS from PEM in memory.
 * It reads the body (at most ADMIN_BODY_MAX), finds the bearer's token,
 * hands the request to admin_route and writes one audit line per change.
 */
#ifndef INDIMAIL_ADMIN_SERVER_H
#define INDIMAIL_ADMIN_SERVER_H

#include "../lib/buf.h"
#include "admin_route.h"

struct admin_server_conf {
	int		 fd;		/* listening, bound by the master */
	const char	*cert, *key;	/* PEM text; NULL: plain HTTP */
	const char	*tokens_path;	/* re-read when it changes */
	const struct admin_backend *be;
};

struct admin_server;

/* Starts serving on its own threads: the server, or NULL with why. */
struct admin_server *admin_server_start(const struct admin_server_conf *,
	    struct buf *err);
/* Reads the tokens file again now (SIGHUP). */
void	admin_server_reload_tokens(struct admin_server *);
/*
 * New connections get this certificate and key (PEM text) from now on,
 * those open keep theirs: 0, 1 when they are the running ones (or the
 * server has no TLS), or -1 with why in err and the running ones kept.
 */
int	admin_server_swap_tls(struct admin_server *, const char *cert,
	    const char *key, struct buf *err);
/*
 * Stops the daemon a swap replaced once its connections ended (or it
 * had long enough); 1 while one is left: call again soon.
 */
int	admin_server_tick(struct admin_server *);
void	admin_server_stop(struct admin_server *);

#endif
