/*
 * local: delivery into Maildirs (<root>/<domain>/<local>/Maildir) on the
 * thread pool: Return-Path and Delivered-To added, loop detection,
 * Maildir++ quota (maildirsize), tmp → new with fsync before and after.
 */
#ifndef INDIMAIL_LOCAL_H
#define INDIMAIL_LOCAL_H

#include <uv.h>

#include "../queue/queue.h"
#include "smtp_client.h"

struct local_rcpt {
	const char	*address;	/* as Delivered-To says it */
	const char	*owner;		/* whose Maildir, NULL: address's */
	int		 mailbox;	/* 1 it exists; 0 no (5.1.1); -1 unknown (4.3.0) */
	int		 disabled;	/* the user's mailbox is disabled (5.2.1) */
	size_t		 quota;		/* 0: none */
	struct rcpt_result result;
};

struct local_job;
typedef void (*local_done_cb)(void *arg, struct local_rcpt *, size_t n);

struct local_params {
	const char	*root;
	const char	*hostname;
	const struct queue_item *msg;	/* borrowed: envelope and location */
	int		 max_hops;
	/*
	 * Called on the pool thread the moment the mail of rcpts[ok[0..nok)]
	 * is durable, so the caller can record it before anything else can
	 * happen (0: it did; those results are then marked journaled). May
	 * be NULL.
	 */
	int		(*durable)(void *arg, const size_t *ok, size_t nok);
	void		*durable_arg;
};

/* rcpts stay owned by the caller; cb runs on the loop thread. */
void	local_deliver(uv_loop_t *, const struct local_params *,
	    struct local_rcpt *, size_t n, local_done_cb, void *arg);

#endif
