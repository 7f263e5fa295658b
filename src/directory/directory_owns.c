/*
 * directory_owns: may a logged-in user send as this envelope sender? The
 * user's own address (as stored: joe@alias.test finds joe@example.test in
 * the SQLite backend), the same user under another spelling, or an alias
 * with the user among its targets. Only the backend's user and alias
 * lookups are asked, through the front's cache, so a MAIL after RCPTs or
 * AUTH usually costs no backend call. A backend failure is DIR_TEMPFAIL.
 */
#include <stdlib.h>
#include <strings.h>

#include "../lib/xalloc.h"
#include "directory_int.h"

/* q->addrs: [0] the user, [1] the sender; q->owner: the user as stored. */
enum { O_START, O_OWNER, O_SENDER, O_ALIAS };

static int
owns_end(struct dir_query *q, enum dir_status st)
{
	*(enum dir_status *)q->out = st;
	return Q_END;
}

/* The spelling the backend gives a user (its own), else the address. */
static const char *
stored(const struct dir_result *r, const char *address)
{
	if (r->status == DIR_OK && (r->flags & DIR_USER_LISTED) && r->address)
		return r->address;
	return address;
}

static int
target_is_user(const struct dir_query *q)
{
	for (size_t i = 0; i < q->res.ntargets; i++)
		if (strcasecmp(q->res.targets[i], q->owner) == 0 ||
		    strcasecmp(q->res.targets[i], q->addrs[0]) == 0)
			return 1;
	return 0;
}

static int
owns_step(struct dir_query *q)
{
	const char *user = q->addrs[0], *sender = q->addrs[1];

	if (q->state != O_START && q->res.status == DIR_TEMPFAIL)
		return owns_end(q, DIR_TEMPFAIL);
	switch (q->state++) {
	case O_START:
		if (strcasecmp(user, sender) == 0)
			return owns_end(q, DIR_OK);
		return dir_query_lookup(q, DK_USER, user);
	case O_OWNER:
		q->owner = xstrdup(stored(&q->res, user));
		if (strcasecmp(q->owner, sender) == 0)
			return owns_end(q, DIR_OK);
		return dir_query_lookup(q, DK_USER, sender);
	case O_SENDER:
		if (strcasecmp(stored(&q->res, sender), q->owner) == 0)
			return owns_end(q, DIR_OK);
		return dir_query_lookup(q, DK_ALIAS, sender);
	default:		/* O_ALIAS */
		return owns_end(q, q->res.status == DIR_OK &&
		    target_is_user(q) ? DIR_OK : DIR_NOTFOUND);
	}
}

int
directory_owns(struct directory *d, const char *user, const char *sender,
    enum dir_status *out, dir_done_cb cb, void *arg, struct dir_query **qp)
{
	struct dir_query *q = dir_query_new(d, owns_step, out, cb, arg);
	const char *a[2] = { user, sender };

	dir_query_addrs(q, a, 2);
	return dir_query_start(q, qp);
}
