/*
 * directory_entry: the facts a policy may ask the directory for (Lua's
 * indimail.directory): a user, an alias, a domain, the host holding a
 * user. One backend lookup each, through the front's cache. What leaves
 * here never holds a secret: the password hash and the SASL secrets of a
 * user stay in the backend's result, which is freed here. A user whose
 * hostcntrl host is this one (the config's hostname) has no other host.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/xalloc.h"
#include "directory_int.h"

static const enum dir_kind entry_kind[] = {
	[DIR_ENTRY_USER] = DK_USER, [DIR_ENTRY_ALIAS] = DK_ALIAS,
	[DIR_ENTRY_DOMAIN] = DK_DOMAIN, [DIR_ENTRY_HOST] = DK_HOST,
};

void
dir_entry_free(struct dir_entry *e)
{
	free(e->address);
	free(e->host);
	dir_vacation_free(e->vacation);
	for (size_t i = 0; i < e->ntargets; i++)
		free(e->targets[i]);
	free(e->targets);
	memset(e, 0, sizeof(*e));
	e->status = DIR_NOTFOUND;
}

/* Takes what a policy may see of q->res (no secret is copied). */
static void
entry_user(struct dir_entry *e, struct dir_result *r)
{
	if (!(r->flags & DIR_USER_LISTED)) {
		e->status = DIR_NOTFOUND;	/* "every name": no one listed */
		return;
	}
	e->address = r->address;
	r->address = NULL;
	e->host = r->host;
	r->host = NULL;
	e->quota = r->quota;
	e->vacation = r->vacation;
	r->vacation = NULL;
	e->flags = (r->flags & DIR_USER_DISABLED ? DIR_ENTRY_DISABLED : 0) |
	    (r->flags & DIR_USER_NO_SMTP ? DIR_ENTRY_NO_SMTP : 0) |
	    (r->flags & DIR_USER_NO_RELAY ? DIR_ENTRY_NO_RELAY : 0);
}

static void
entry_host(const struct directory *d, struct dir_entry *e,
    struct dir_result *r)
{
	const char *me = d->cfg->hostname;

	if (r->host == NULL || (me && strcasecmp(r->host, me) == 0)) {
		e->status = DIR_NOTFOUND;	/* it lives here */
		return;
	}
	e->host = r->host;
	r->host = NULL;
	e->address = r->address;
	r->address = NULL;
	e->port = r->port > 0 ? r->port : 25;
}

static int
entry_step(struct dir_query *q)
{
	struct dir_entry *e = q->out;
	struct dir_result *r = &q->res;

	if (q->state++ == 0)
		return dir_query_lookup(q, entry_kind[q->i], q->addrs[0]);
	e->status = r->status == DIR_OK || r->status == DIR_TEMPFAIL ?
	    r->status : DIR_NOTFOUND;
	if (e->status != DIR_OK)
		return Q_END;
	if (q->i == DIR_ENTRY_USER)
		entry_user(e, r);
	else if (q->i == DIR_ENTRY_HOST)
		entry_host(q->d, e, r);
	else if (q->i == DIR_ENTRY_ALIAS) {
		e->targets = r->targets;
		e->ntargets = r->ntargets;
		r->targets = NULL;
		r->ntargets = 0;
	}
	return Q_END;
}

int
directory_entry(struct directory *d, enum dir_entry_kind kind,
    const char *key, struct dir_entry *out, dir_done_cb cb, void *arg,
    struct dir_query **qp)
{
	struct dir_query *q = dir_query_new(d, entry_step, out, cb, arg);

	memset(out, 0, sizeof(*out));
	out->status = DIR_NOTFOUND;
	q->i = (size_t)kind;
	dir_query_addrs(q, &key, 1);
	return dir_query_start(q, qp);
}
