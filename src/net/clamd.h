/*
 * [src/net: network plumbing on the loop (TLS, DNS, connection counts);
 * it includes only src/lib and src/mail. See docs/architecture.md.]
 *
 * clamd: a non-blocking clamd client on libuv. One scan = one connection
 * (a unix socket or an IP address and port): "zINSTREAM\0", the data in
 * chunks of CLAMD_CHUNK_MAX, a zero-length chunk, the reply up to its NUL
 * (clamd_wire.c reads it). A timer bounds the connect and the whole scan.
 * The answer always comes later, on the loop, unless clamd_scan fails at
 * once; clamd_cancel stops a scan and no callback follows.
 */
#ifndef INDIMAIL_CLAMD_H
#define INDIMAIL_CLAMD_H

#include <stdint.h>
#include <uv.h>

#include "../lib/buf.h"
#include "clamd_wire.h"

struct clamd_target {
	const char	*socket;	/* a unix socket path, or NULL */
	const char	*host;		/* else an IPv4/IPv6 address */
	int		 port;
	uint64_t	 connect_ms;	/* for the connection */
	uint64_t	 timeout_ms;	/* for the whole scan */
};

struct clamd_result {
	enum clamd_verdict verdict;
	const char	*text;		/* the virus name or what went wrong */
	uint64_t	 ms;		/* how long the scan took */
};

typedef void (*clamd_done_cb)(void *arg, const struct clamd_result *);

struct clamd_scan;

/*
 * Starts scanning data[0..len), which must stay as it is until the
 * callback or clamd_cancel. 0 and *out set, or -1 with why in err (an
 * address that is not one, a socket path too long, a refused connect).
 */
int	clamd_scan(uv_loop_t *, const struct clamd_target *, const char *data,
	    size_t len, clamd_done_cb, void *arg, struct clamd_scan **out,
	    struct buf *err);
/* Stops the scan: its callback is not called; its memory goes later. */
void	clamd_cancel(struct clamd_scan *);

#endif
