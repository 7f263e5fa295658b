/*
 * remote: delivers one message to the recipients of one destination: a
 * domain's MX hosts (RFC 5321 5.1: preference order, implicit MX, null MX
 * RFC 7505) or a configured relay host. Tries each address until one
 * accepts the connection, reuses idle connections to the same destination.
 */
#ifndef INDIMAIL_REMOTE_H
#define INDIMAIL_REMOTE_H

#include <uv.h>

#include "../mail/config.h"
#include "../queue/queue.h"
#include "smtp_client.h"

struct dns;
struct remote_ctx;

/*
 * What one attempt learned about its destination, beyond its recipients'
 * results (src/deliver/dest.c decides whether the destination is down).
 */
enum remote_verdict {
	REMOTE_NO_VERDICT,	/* nothing against it (delivered, 5xx, ...) */
	REMOTE_UNREACHABLE,	/* no address gave a session: connect, greeting,
				 * TLS, or the MX lookup failed (a refused
				 * login is the route's: no verdict) */
	REMOTE_CLOSING,		/* a 421 reply during the transaction */
	REMOTE_MAIL_DEFERRED,	/* a 4xx reply to MAIL FROM */
};

struct remote_req {
	const char	*domain;	/* recipient domain (MX lookups) */
	const struct route_conf *route;	/* relay host, or NULL for MX */
	const struct queue_item *msg;	/* borrowed: envelope and location */
	char	       **rcpts;		/* those of msg this request is for */
	size_t		 n;
	struct rcpt_result *results;	/* n entries, filled */
	char		 mta[160];	/* the host that answered last */
	enum remote_verdict verdict;	/* set by remote_deliver */
};

typedef void (*remote_done_cb)(void *arg, struct remote_req *);

struct remote_ctx *remote_ctx_new(uv_loop_t *, struct dns *,
	    const struct config *);
void	remote_ctx_set_config(struct remote_ctx *, const struct config *);
void	remote_deliver(struct remote_ctx *, struct remote_req *,
	    remote_done_cb, void *arg);
/* Closes idle connections older than max_idle_ms (all with 0). */
void	remote_sweep(struct remote_ctx *, uint64_t max_idle_ms);

#endif
