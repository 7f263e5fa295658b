/*
 * directory_config: the configuration as a directory backend. Users are
 * mailboxes.users (with mailboxes.users not given, every name is a mailbox
 * of a local domain), aliases are mailboxes.aliases ("@domain" is a
 * catch-all), domains are local_domains. It answers from memory, so always
 * DIR_DONE, except under the INDIMAIL_DIRECTORY_DEFER=1 test hook: then
 * the answer is computed at once and handed over on the next loop turn.
 */
#include <stdlib.h>
#include <string.h>
#include <stddef.h>

#include "../lib/xalloc.h"
#include "directory_backend.h"

/* An answer held back for the next loop iteration (test hook). */
struct cfg_op {
	struct cfg_dir	*h;
	struct cfg_op	*next, **prevp;
	unsigned long	 turn;		/* the idle turn it was queued in */
	struct dir_result r;
	dir_backend_cb	 cb;
	void		*arg;
};

struct cfg_dir {
	const struct config *c;
	uv_idle_t	 idle;		/* defer: delivers ops */
	int		 defer;
	unsigned long	 turn;
	struct cfg_op	*ops, **tail;	/* FIFO */
};

static void *
cfg_open(uv_loop_t *loop, const struct config *c, unsigned *flags)
{
	struct cfg_dir *h = xcalloc(1, sizeof(*h));
	const char *e = getenv("INDIMAIL_DIRECTORY_DEFER");

	h->c = c;
	h->tail = &h->ops;
	h->defer = loop && e && strcmp(e, "1") == 0;
	*flags = h->defer ? 0 : DIR_BACKEND_MEMORY;
	if (h->defer) {
		uv_idle_init(loop, &h->idle);
		h->idle.data = h;
	}
	return h;
}

static void
on_idle_closed(uv_handle_t *hd)
{
	free(hd->data);
}

static void
cfg_close(void *hp)
{
	struct cfg_dir *h = hp;

	if (h->defer)
		uv_close((uv_handle_t *)&h->idle, on_idle_closed);
	else
		free(h);
}

static void
op_unlink(struct cfg_op *op)
{
	struct cfg_dir *h = op->h;

	*op->prevp = op->next;
	if (op->next)
		op->next->prevp = op->prevp;
	else
		h->tail = op->prevp;
	if (h->ops == NULL)
		uv_idle_stop(&h->idle);
}

/* Delivers the answers queued before this turn; later ones wait a turn. */
static void
on_idle(uv_idle_t *idle)
{
	struct cfg_dir *h = idle->data;
	unsigned long now = h->turn++;
	struct cfg_op *op;

	while ((op = h->ops) != NULL && op->turn <= now) {
		op_unlink(op);
		op->cb(op->arg, &op->r);
		dir_result_free(&op->r);
		free(op);
	}
}

/* The answer in *r: now, or (test hook) on the next loop iteration. */
static int
answer(struct cfg_dir *h, struct dir_result *r, dir_backend_cb cb, void *arg,
    void **opp)
{
	struct cfg_op *op;

	if (!h->defer)
		return DIR_DONE;
	op = xcalloc(1, sizeof(*op));
	op->h = h;
	op->turn = h->turn;
	op->r = *r;
	dir_result_init(r);
	op->cb = cb;
	op->arg = arg;
	op->prevp = h->tail;
	*h->tail = op;
	h->tail = &op->next;
	if (h->ops == op)
		uv_idle_start(&h->idle, on_idle);
	*opp = op;
	return DIR_PENDING;
}

static void
cfg_cancel(void *opp)
{
	struct cfg_op *op = opp;

	op_unlink(op);
	dir_result_free(&op->r);
	free(op);
}

/* ---- lookups ------------------------------------------------------------- */

static int
cfg_domain(void *hp, const char *domain, struct dir_result *r,
    dir_backend_cb cb, void *arg, void **opp)
{
	struct cfg_dir *h = hp;

	dir_result_init(r);
	r->status = config_is_local_domain(h->c, domain) ? DIR_OK :
	    DIR_NOTFOUND;
	return answer(h, r, cb, arg, opp);
}

static int
cfg_user(void *hp, const char *address, struct dir_result *r,
    dir_backend_cb cb, void *arg, void **opp)
{
	struct cfg_dir *h = hp;
	const struct mailbox_user *u = config_find_user(h->c, address);

	dir_result_init(r);
	r->status = u || !h->c->delivery.users_listed ? DIR_OK : DIR_NOTFOUND;
	if (u) {
		r->address = xstrdup(u->address);
		r->flags = DIR_USER_LISTED | (u->no_relay ? DIR_USER_NO_RELAY :
		    0);
		r->quota = u->quota;
		r->secret = u->secret ? xstrdup(u->secret) : NULL;
	} else if (r->status == DIR_OK)
		r->address = xstrdup(address);
	return answer(h, r, cb, arg, opp);
}

static int
cfg_alias(void *hp, const char *address, struct dir_result *r,
    dir_backend_cb cb, void *arg, void **opp)
{
	struct cfg_dir *h = hp;
	const struct alias *a = config_find_alias(h->c, address);

	dir_result_init(r);
	r->status = a ? DIR_OK : DIR_NOTFOUND;
	if (a) {
		r->targets = xcalloc(a->ntargets + 1, sizeof(char *));
		for (size_t i = 0; i < a->ntargets; i++)
			r->targets[i] = xstrdup(a->targets[i]);
		r->ntargets = a->ntargets;
	}
	return answer(h, r, cb, arg, opp);
}

/* The configuration knows no hosts: every user lives here. */
static int
cfg_host(void *hp, const char *address, struct dir_result *r,
    dir_backend_cb cb, void *arg, void **opp)
{
	(void)address;
	dir_result_init(r);
	return answer(hp, r, cb, arg, opp);
}

const struct directory_backend directory_backend_config = {
	.name = "config",
	.open = cfg_open,
	.close = cfg_close,
	.domain = cfg_domain,
	.user = cfg_user,
	.alias = cfg_alias,
	.host = cfg_host,
	.cancel = cfg_cancel,
};
