/*
 * admin_route_int: what the route files share (private to src/admin): the
 * context of one request, the reply helpers and the CLI runner. Each
 * handler answers through ctx->res; admin_route.c has the table.
 */
#ifndef INDIMAIL_ADMIN_ROUTE_INT_H
#define INDIMAIL_ADMIN_ROUTE_INT_H

#include <jansson.h>

#include "admin_route.h"

#define ROUTE_PARAMS_MAX	2

struct admin_ctx {
	const struct admin_backend *be;
	const struct admin_request *req;
	struct admin_response *res;
	const char	*param[ROUTE_PARAMS_MAX];	/* {x} of the path */
	json_t		*body;		/* the JSON object, or NULL */
};

typedef void (*admin_handler)(struct admin_ctx *);

/* The reply: a JSON value (stolen) with status. */
void	route_json(struct admin_ctx *, int status, json_t *);
/* {"ok": true, ...what} with status. */
void	route_ok(struct admin_ctx *, int status, const char *key,
	    const char *value);
/*
 * Runs bin/indimail with args. 0 with *out filled (its stdout, and the
 * parsed JSON when json is not NULL: null for no output), or -1 when the
 * error response is already set (status from the exit code).
 */
int	route_cli(struct admin_ctx *, const char *const *args,
	    const char *input, struct buf *out, json_t **json);
/* A string member of the body: its value, NULL if absent (or an error
 * set and NULL with *bad = 1 when it is not a string). */
const char *route_body_string(struct admin_ctx *, const char *key, int *bad);
/* The body must be a JSON object: 0, or -1 with a 400 set. */
int	route_need_body(struct admin_ctx *);

/* admin_route_dir.c: domains, users, aliases */
void	route_domains_list(struct admin_ctx *);
void	route_domains_add(struct admin_ctx *);
void	route_domain_show(struct admin_ctx *);
void	route_domain_del(struct admin_ctx *);
void	route_users_list(struct admin_ctx *);
void	route_user_add(struct admin_ctx *);
void	route_user_show(struct admin_ctx *);
void	route_user_mod(struct admin_ctx *);
void	route_user_del(struct admin_ctx *);
void	route_aliases_list(struct admin_ctx *);
void	route_alias_add(struct admin_ctx *);
void	route_alias_show(struct admin_ctx *);
void	route_alias_del(struct admin_ctx *);

/* admin_route_queue.c: the queue */
void	route_queue_list(struct admin_ctx *);
void	route_queue_show(struct admin_ctx *);
void	route_queue_remove(struct admin_ctx *);
void	route_queue_act(struct admin_ctx *);
void	route_queue_bulk(struct admin_ctx *);
void	route_queue_destinations(struct admin_ctx *);
/* `indimail queue list|show` text into a JSON array of messages. */
json_t	*route_queue_parse(const char *text);

#endif
