/*
 * directory_expand: aliases, catch-alls and the postmaster into final
 * recipients, a depth-first walk kept on an explicit stack so that any
 * lookup may wait for the backend. Order of the results: the order of the
 * walk; each final address once (without case), marked local when the
 * backend found its domain local (so the queue manager needs not ask);
 * more than 10 levels is a loop. The configuration check at load runs the
 * same walk, synchronously.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/xalloc.h"
#include "../mail/address.h"
#include "directory_int.h"

#define MAX_DEPTH	10

enum { X_START, X_DOMAIN, X_USER, X_ALIAS, X_BASE_USER, X_BASE_ALIAS,
    X_CATCHALL, X_TARGETS, X_DONE };

static void
add(struct expansion *e, const char *rcpt, const char *orcpt, int local)
{
	for (size_t i = 0; i < e->n; i++)
		if (strcasecmp(e->rcpt[i], rcpt) == 0)
			return;
	e->rcpt = xrealloc(e->rcpt, (e->n + 1) * sizeof(char *));
	e->orcpt = xrealloc(e->orcpt, (e->n + 1) * sizeof(char *));
	e->local = xrealloc(e->local, e->n + 1);
	e->rcpt[e->n] = xstrdup(rcpt);
	e->orcpt[e->n] = xstrdup(orcpt);
	e->local[e->n] = local != 0;
	e->n++;
}

void
expansion_free(struct expansion *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->rcpt[i]);
		free(e->orcpt[i]);
	}
	free(e->rcpt);
	free(e->orcpt);
	free(e->local);
	memset(e, 0, sizeof(*e));
}

static void
push(struct dir_query *q, const char *addr, size_t orcpt, int depth,
    int caught)
{
	struct xframe *f;

	if (q->nst == q->capst) {
		q->capst = q->capst ? q->capst * 2 : 8;
		q->st = xrealloc(q->st, q->capst * sizeof(*q->st));
	}
	f = &q->st[q->nst++];
	memset(f, 0, sizeof(*f));
	f->addr = xstrdup(addr);
	f->orcpt = orcpt;
	f->depth = depth;
	f->caught = caught;
}

static int
pop(struct dir_query *q)
{
	struct xframe *f = &q->st[--q->nst];

	free(f->addr);
	for (size_t k = 0; k < f->ntargets; k++)
		free(f->targets[k]);
	free(f->targets);
	return Q_AGAIN;
}

/* The frame on top becomes final: add it, and it is done. */
static int
final_as(struct dir_query *q, const char *rcpt, int local)
{
	struct xframe *f = &q->st[q->nst - 1];

	add(q->out, rcpt, q->addrs[f->orcpt], local);
	return pop(q);
}

/*
 * Past X_DOMAIN every final address is in a local domain (or has none);
 * it is marked only when local_domains, which the queue manager routes
 * by, does not list the domain (a domain of the database).
 */
static int
final(struct dir_query *q, const char *rcpt)
{
	const char *dom = strrchr(rcpt, '@');

	return final_as(q, rcpt, dom &&
	    !config_is_local_domain(q->d->cfg, dom + 1));
}

static int
end_with(struct dir_query *q, enum dir_status why)
{
	((struct expansion *)q->out)->status = why;
	return Q_END;
}

/* The alias answer moves into the frame; its targets come next. */
static int
take_targets(struct dir_query *q, int caught)
{
	struct xframe *f = &q->st[q->nst - 1];

	f->targets = q->res.targets;
	f->ntargets = q->res.ntargets;
	q->res.targets = NULL;
	q->res.ntargets = 0;
	f->child_caught = caught;
	f->state = X_TARGETS;
	return Q_AGAIN;
}

/* Nothing else took it: a catch-all, or a mailbox (or unknown). */
static int
catchall(struct dir_query *q, struct xframe *f, const char *dom)
{
	if (f->caught || dom == NULL)
		return final(q, f->addr);	/* a mailbox, or unknown */
	f->state = X_CATCHALL;
	return dir_query_catchall(q, dom);
}

/* joe+tag@ without a mailbox of its own: joe@ (a user or an alias). */
static int
base_lookup(struct dir_query *q, struct xframe *f, enum dir_kind kind,
    int next, const char *dom)
{
	struct buf b = BUF_INIT;
	int rc;

	if (f->exact_has || !dir_base_address(q->d, f->addr, &b))
		return catchall(q, f, dom);
	f->state = next;
	rc = dir_query_lookup(q, kind, buf_cstr(&b));
	buf_free(&b);
	return rc;
}

/* The user joe@ for joe+tag@: final as the user spells it, tag kept. */
static int
final_extended(struct dir_query *q, struct xframe *f)
{
	struct buf b = BUF_INIT;
	int rc;

	dir_extended_address(q->d, q->res.address, f->addr, &b);
	rc = final(q, buf_cstr(&b));
	buf_free(&b);
	return rc;
}

/* Not a user, not an alias: the postmaster, an extension, a catch-all. */
static int
after_alias(struct dir_query *q, struct xframe *f, const char *dom)
{
	const char *pm = q->d->cfg->delivery.postmaster;

	if (dir_is_postmaster_address(q->d, f->addr))
		return final(q, pm);		/* a mailbox of its own */
	if (dir_is_postmaster(f->addr)) {
		f->state = X_DONE;
		push(q, pm, f->orcpt, f->depth + 1, 0);
		return Q_AGAIN;
	}
	return base_lookup(q, f, DK_USER, X_BASE_USER, dom);
}

/* caught: the targets of a catch-all are not caught by it again. */
static int
frame_step(struct dir_query *q, struct xframe *f)
{
	const char *dom = address_domain(f->addr);

	if (f->state >= X_DOMAIN && f->state <= X_CATCHALL &&
	    q->res.status == DIR_TEMPFAIL)	/* the lookup just made */
		return end_with(q, DIR_TEMPFAIL);
	switch (f->state) {
	case X_START:
		if (f->depth > MAX_DEPTH)
			return end_with(q, DIR_LOOP);
		f->state = X_DOMAIN;
		q->res.status = DIR_OK;
		return dom ? dir_query_lookup(q, DK_DOMAIN, dom) : Q_AGAIN;
	case X_DOMAIN:
		if (dom && q->res.status != DIR_OK)
			return final_as(q, f->addr, 0);	/* a forward */
		f->state = X_USER;
		return dir_query_lookup(q, DK_USER, f->addr);
	case X_USER:
		if (q->res.status == DIR_OK && (q->res.flags & DIR_USER_LISTED))
			return final(q, q->res.address); /* its own spelling */
		f->exact_has = q->res.status == DIR_OK;
		f->state = X_ALIAS;
		return dir_query_lookup(q, DK_ALIAS, f->addr);
	case X_ALIAS:
		if (q->res.status == DIR_OK)
			return take_targets(q, 0);
		return after_alias(q, f, dom);
	case X_BASE_USER:
		if (q->res.status == DIR_OK && (q->res.flags & DIR_USER_LISTED))
			return final_extended(q, f);
		return base_lookup(q, f, DK_ALIAS, X_BASE_ALIAS, dom);
	case X_BASE_ALIAS:
		if (q->res.status == DIR_OK)
			return take_targets(q, 0);
		return catchall(q, f, dom);
	case X_CATCHALL:
		if (q->res.status == DIR_OK)
			return take_targets(q, 1);
		return final(q, f->addr);
	case X_TARGETS:
		if (f->next == f->ntargets)
			return pop(q);
		f->next++;	/* before push: it may move the frames */
		push(q, f->targets[f->next - 1], f->orcpt, f->depth + 1,
		    f->child_caught);
		return Q_AGAIN;
	default:		/* X_DONE */
		return pop(q);
	}
}

static int
expand_step(struct dir_query *q)
{
	if (q->nst == 0) {
		if (q->i == q->naddrs)
			return end_with(q, DIR_OK);
		push(q, q->addrs[q->i], q->i, q->first_depth, q->first_caught);
		q->i++;
	}
	return frame_step(q, &q->st[q->nst - 1]);
}

static int
expand_from(struct directory *d, char **rcpts, size_t n, int depth,
    int caught, struct expansion *out, dir_done_cb cb, void *arg,
    struct dir_query **qp)
{
	struct dir_query *q = dir_query_new(d, expand_step, out, cb, arg);

	memset(out, 0, sizeof(*out));
	dir_query_addrs(q, (const char *const *)rcpts, n);
	q->first_depth = depth;
	q->first_caught = caught;
	return dir_query_start(q, qp);
}

int
directory_expand(struct directory *d, char **rcpts, size_t n,
    struct expansion *out, dir_done_cb cb, void *arg, struct dir_query **qp)
{
	return expand_from(d, rcpts, n, 0, 0, out, cb, arg, qp);
}

/* ---- configuration check ------------------------------------------------- */

/* A listed user, or one with an extension (joe+tag@ of joe@). */
static int
is_user(const struct directory *d, const char *f)
{
	struct buf b = BUF_INIT;
	int rc = config_find_user(d->cfg, f) != NULL;

	if (!rc && dir_base_address(d, f, &b))
		rc = config_find_user(d->cfg, buf_cstr(&b)) != NULL;
	buf_free(&b);
	return rc;
}

/*
 * Why final address f cannot receive mail, or NULL. The check runs on the
 * configuration alone, so a domain only in a database counts as remote.
 */
static const char *
final_problem(const struct directory *d, const char *f)
{
	const struct config *c = d->cfg;
	const char *dom = address_domain(f);

	if (dom && !config_is_local_domain(c, dom))
		return NULL;
	if (c->delivery.users_listed && !is_user(d, f) &&
	    !(c->delivery.postmaster && strcasecmp(f, c->delivery.postmaster)
	    == 0))
		return "is not a mailbox (neither a user, an alias nor the "
		    "postmaster)";
	if (!directory_mailbox_name(f))
		return "is not a mailbox name (" DIRECTORY_NAME_RULE ")";
	return NULL;
}

/*
 * Test hook: INDIMAIL_DIRECTORY_LOOPS=1 lets a configuration with an alias
 * loop load, so a spec can reach the 451 that a loop in a database backend
 * (which no load-time check sees) causes at the end of DATA.
 */
static int
loops_allowed(void)
{
	const char *e = getenv("INDIMAIL_DIRECTORY_LOOPS");

	return e && strcmp(e, "1") == 0;
}

/* Everywhere `what` (named `where` in errors) leads must receive mail. */
static int
check_leads(struct directory *d, const char *where, const char *what,
    int caught, struct buf *err)
{
	struct expansion x;
	const char *why = NULL, *bad = NULL;
	char *one = (char *)what;

	expand_from(d, &one, 1, 1, caught, &x, NULL, NULL, NULL);
	if (x.status != DIR_OK && !loops_allowed())
		why = "leads to an alias loop";
	for (size_t i = 0; why == NULL && i < x.n; i++)
		if ((why = final_problem(d, x.rcpt[i])) != NULL)
			bad = x.rcpt[i];
	if (bad && strcasecmp(bad, what) != 0)
		buf_printf(err, "%s: '%s' leads to '%s', which %s", where, what,
		    bad, why);
	else if (why)
		buf_printf(err, "%s: '%s' %s", where, what, why);
	expansion_free(&x);
	return why ? -1 : 0;
}

static int
check_aliases(struct directory *d, struct buf *err)
{
	const struct config *c = d->cfg;
	struct buf where = BUF_INIT;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < c->delivery.naliases; i++) {
		const struct alias *a = &c->delivery.aliases[i];
		buf_clear(&where);
		buf_printf(&where, "mailboxes.aliases['%s']", a->address);
		for (size_t k = 0; rc == 0 && k < a->ntargets; k++)
			rc = check_leads(d, buf_cstr(&where), a->targets[k],
			    a->address[0] == '@', err);
	}
	buf_free(&where);
	return rc;
}

static int
check_users(const struct config *c, struct buf *err)
{
	for (size_t i = 0; i < c->delivery.nusers; i++)
		if (!directory_mailbox_name(c->delivery.users[i].address)) {
			buf_printf(err, "mailboxes.users: '%s' is not a mailbox "
			    "name (" DIRECTORY_NAME_RULE ")",
			    c->delivery.users[i].address);
			return -1;
		}
	return 0;
}

/* The walk of the check runs on the config backend, without a loop. */
int
directory_check(const struct config *c, struct buf *err)
{
	struct directory *d;
	int rc;

	if (check_users(c, err) < 0)
		return -1;
	d = dir_new(NULL, c);
	rc = c->delivery.postmaster ? check_leads(d, "mailboxes.postmaster",
	    c->delivery.postmaster, 0, err) : 0;
	if (rc == 0)
		rc = check_aliases(d, err);
	dir_unref(d);
	return rc;
}
