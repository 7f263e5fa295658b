/*
 * [src/net: network plumbing on the loop (TLS, DNS, connection counts);
 * it includes only src/lib and src/mail. See docs/architecture.md.]
 *
 * rspamd: a non-blocking rspamd client on libuv. One check = one TCP
 * connection to rspamd's normal worker: POST /checkv2 with the envelope
 * in headers and the message as the body (rspamd_wire.c writes the head
 * and reads the reply). A timer bounds the connect and the whole check.
 * The answer always comes later, on the loop, unless rspamd_check fails
 * at once; rspamd_cancel stops a check and no callback follows.
 */
#ifndef INDIMAIL_RSPAMD_H
#define INDIMAIL_RSPAMD_H

#include <stdint.h>
#include <uv.h>

#include "../lib/buf.h"
#include "rspamd_wire.h"

struct rspamd_target {
	const char	*host;		/* an IPv4/IPv6 address */
	int		 port;
	uint64_t	 timeout_ms;	/* the whole check, connect included */
};

struct rspamd_result {
	struct rspamd_reply *reply;	/* NULL: an error; the callback may take
					 * its memory (moving it out, zeroed) */
	const char	*error;			/* what went wrong */
	uint64_t	 ms;
};

typedef void (*rspamd_done_cb)(void *arg, const struct rspamd_result *);

struct rspamd_check;

/*
 * Starts checking data[0..len), which must stay as it is until the
 * callback or rspamd_cancel (the envelope's strings are copied). NULL and
 * why in err when the address is not one or the connect cannot start.
 */
struct rspamd_check *rspamd_check(uv_loop_t *, const struct rspamd_target *,
	    const struct rspamd_envelope *, const char *data, size_t len,
	    rspamd_done_cb, void *arg, struct buf *err);
/* Stops the check: its callback is not called; its memory goes later. */
void	rspamd_cancel(struct rspamd_check *);

#endif
