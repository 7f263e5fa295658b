/*
 * [src/admin: the admin HTTP API (docs/admin-api.md). See
 * docs/architecture.md.]
 *
 * admin_route: the API's routes, apart from HTTP. A request (method, path,
 * query, body, the caller's scopes) becomes a response (status, JSON body)
 * through a table of routes; what a route does goes through the backend's
 * functions, so the router can be fuzzed with a fake one
 * (fuzz/fuzz_admin_route.c). HTTP itself is libmicrohttpd's
 * (admin_server.c), tokens are admin_token.c's.
 */
#ifndef INDIMAIL_ADMIN_ROUTE_H
#define INDIMAIL_ADMIN_ROUTE_H

#include <stddef.h>

#include "../lib/buf.h"

#define ADMIN_BODY_MAX	(64 * 1024)	/* a request body; more: 413 */

struct admin_backend {
	/*
	 * bin/indimail -c CONFIG --json ARGS... (args NULL-ended; input its
	 * stdin or NULL): the exit status, or -1 with why in err.
	 */
	int	(*cli)(void *arg, const char *const *args, const char *input,
		    struct buf *out, struct buf *err);
	/* bin/indimaild -T on the configuration: exit status, or -1. */
	int	(*check)(void *arg, struct buf *out, struct buf *err);
	/* The master reloads the configuration: 0, or -1 with why. */
	int	(*reload)(void *arg, struct buf *err);
	/* `indimail stats --since since` over the log: exit status, or -1. */
	int	(*stats)(void *arg, const char *since, struct buf *out,
		    struct buf *err);
	void	(*metrics)(void *arg, struct buf *out);
	void	*arg;
};

struct admin_request {
	const char	*method, *path;	/* the path URL-decoded */
	/* A query argument's value, or NULL. */
	const char	*(*query)(void *arg, const char *key);
	void		*query_arg;
	const char	*body;
	size_t		 body_len;
	unsigned	 scopes;	/* the caller's token's */
};

struct admin_response {
	int		 status;
	const char	*content_type;
	struct buf	 body;
};

/* Answers req into res (res->body empty at the call, to buf_free). */
void	admin_route(const struct admin_backend *, const struct admin_request *,
	    struct admin_response *);
/* An error response: status and {"error": "why"}. */
void	admin_route_error(struct admin_response *, int status,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
