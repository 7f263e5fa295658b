/*
 * directory: the front of the directory. Owns the registry of directories
 * (one per loop and configuration, shared by reference), the query engine
 * that runs a lookup state machine over the backend (through the cache for
 * backends not in memory), the RCPT decision, whether a domain is local
 * and the mailbox checks. The rules live here: postmaster@any local domain
 * and the bare "Postmaster" (RFC 5321 4.5.1) are accepted and go to
 * mailboxes.postmaster, a mailbox of its own; "@domain" aliases catch what
 * nothing else takes. The password check is directory_auth.c.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/xalloc.h"
#include "../mail/address.h"
#include "directory_int.h"

/* The backends in enum directory_kind's order; the configuration picks. */
static const struct directory_backend *const backends[] = {
	&directory_backend_config,
	&directory_backend_sqlite,
	&directory_backend_mariadb,
};

static struct directory *registry;

/* ---- results ------------------------------------------------------------- */

void
dir_result_init(struct dir_result *r)
{
	memset(r, 0, sizeof(*r));
	r->status = DIR_NOTFOUND;
}

void
dir_result_free(struct dir_result *r)
{
	free(r->address);
	free(r->secret);
	free(r->scram);
	free(r->cram);
	free(r->host);
	dir_vacation_free(r->vacation);
	for (size_t i = 0; i < r->ntargets; i++)
		free(r->targets[i]);
	free(r->targets);
	dir_result_init(r);
}

struct dir_vacation *
dir_vacation_copy(const struct dir_vacation *v)
{
	struct dir_vacation *c = xcalloc(1, sizeof(*c));

	*c = *v;
	c->subject = v->subject ? xstrdup(v->subject) : NULL;
	c->message = xstrdup(v->message);
	return c;
}

void
dir_vacation_free(struct dir_vacation *v)
{
	if (v == NULL)
		return;
	free(v->subject);
	free(v->message);
	free(v);
}

void
dir_result_copy(struct dir_result *dst, const struct dir_result *src)
{
	*dst = *src;
	dst->address = src->address ? xstrdup(src->address) : NULL;
	dst->secret = src->secret ? xstrdup(src->secret) : NULL;
	dst->scram = src->scram ? xstrdup(src->scram) : NULL;
	dst->cram = src->cram ? xstrdup(src->cram) : NULL;
	dst->host = src->host ? xstrdup(src->host) : NULL;
	dst->vacation = src->vacation ? dir_vacation_copy(src->vacation) : NULL;
	dst->targets = src->ntargets ? xcalloc(src->ntargets,
	    sizeof(char *)) : NULL;
	for (size_t i = 0; i < src->ntargets; i++)
		dst->targets[i] = xstrdup(src->targets[i]);
}

/* ---- directories --------------------------------------------------------- */

struct directory *
dir_new(uv_loop_t *loop, const struct config *c)
{
	struct directory *d = xcalloc(1, sizeof(*d));

	d->loop = loop;
	d->cfg = c;
	d->be = backends[loop ? c->directory.backend : 0];	/* check: config */
	d->h = d->be->open(loop, c, &d->flags);
	if (!(d->flags & DIR_BACKEND_MEMORY))
		d->cache = dir_cache_new(c);
	d->refs = 1;
	return d;
}

void
dir_unref(struct directory *d)
{
	struct directory **pp;

	if (--d->refs > 0)
		return;
	for (pp = &registry; d->registered && *pp; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	d->be->close(d->h);
	if (d->cache)
		dir_cache_free(d->cache);
	free(d);
}

struct directory *
directory_get(uv_loop_t *loop, const struct config *c)
{
	struct directory *d;

	for (d = registry; d; d = d->next)
		if (d->loop == loop && d->cfg == c) {
			d->refs++;
			return d;
		}
	d = dir_new(loop, c);
	d->registered = 1;
	d->next = registry;
	registry = d;
	return d;
}

void
directory_put(struct directory *d)
{
	if (d)
		dir_unref(d);
}

void
directory_flush(struct directory *d)
{
	if (d->cache)
		dir_cache_flush(d->cache);
}

void
directory_flush_loop(uv_loop_t *loop)
{
	for (struct directory *d = registry; d; d = d->next)
		if (d->loop == loop)
			directory_flush(d);
}

/* ---- the query engine ---------------------------------------------------- */

struct dir_query *
dir_query_new(struct directory *d, int (*step)(struct dir_query *), void *out,
    dir_done_cb cb, void *arg)
{
	struct dir_query *q = xcalloc(1, sizeof(*q));

	q->d = d;
	d->refs++;
	q->step = step;
	q->out = out;
	q->cb = cb;
	q->arg = arg;
	dir_result_init(&q->res);
	return q;
}

void
dir_query_free(struct dir_query *q)
{
	for (size_t i = 0; q->addrs_owned && i < q->naddrs; i++)
		free(q->addrs[i]);
	if (q->addrs_owned)
		free(q->addrs);
	while (q->nst > 0) {
		struct xframe *f = &q->st[--q->nst];
		free(f->addr);
		for (size_t k = 0; k < f->ntargets; k++)
			free(f->targets[k]);
		free(f->targets);
	}
	free(q->st);
	free(q->key);
	free(q->owner);
	if (q->work)
		dir_auth_release(q);
	if (q->quota)
		dir_quota_release(q);
	dir_result_free(&q->res);
	dir_unref(q->d);
	free(q);
}

static int
run(struct dir_query *q)
{
	int rc;

	while ((rc = q->step(q)) == Q_AGAIN)
		;
	return rc;
}

/* The query waits: the caller's addresses may go, keep copies. */
static void
own_addrs(struct dir_query *q)
{
	char **a = xcalloc(q->naddrs ? q->naddrs : 1, sizeof(char *));

	for (size_t i = 0; i < q->naddrs; i++)
		a[i] = xstrdup(q->addrs[i]);
	q->addrs = a;
	q->addrs_owned = 1;
}

int
dir_query_start(struct dir_query *q, struct dir_query **qp)
{
	if (run(q) == Q_END) {
		dir_query_free(q);
		if (qp)
			*qp = NULL;
		return DIR_DONE;
	}
	own_addrs(q);
	if (qp)
		*qp = q;
	return DIR_PENDING;
}

static void
cache_put(struct dir_query *q)
{
	if (q->d->cache)
		dir_cache_put(q->d->cache, uv_now(q->d->loop), q->kind, q->key,
		    &q->res);
}

void
dir_query_done(struct dir_query *q)
{
	dir_done_cb cb = q->cb;
	void *arg = q->arg;

	dir_query_free(q);
	cb(arg);
}

/* The backend answered later: go on from where the query stopped. */
static void
on_backend(void *arg, struct dir_result *r)
{
	struct dir_query *q = arg;

	q->op = NULL;
	dir_result_free(&q->res);
	q->res = *r;
	dir_result_init(r);		/* the backend frees an empty shell */
	cache_put(q);
	if (run(q) == Q_END)
		dir_query_done(q);
}

int
dir_query_lookup(struct dir_query *q, enum dir_kind kind, const char *key)
{
	struct directory *d = q->d;
	dir_backend_lookup fn = kind == DK_DOMAIN ? d->be->domain :
	    kind == DK_USER ? d->be->user : kind == DK_HOST ? d->be->host :
	    d->be->alias;

	dir_result_free(&q->res);
	if (fn == NULL)		/* a backend without hosts */
		return Q_AGAIN;
	if (d->cache && dir_cache_get(d->cache, uv_now(d->loop), kind, key,
	    &q->res))
		return Q_AGAIN;
	if (d->cache) {		/* for cache_put, now or when it answers */
		free(q->key);
		q->key = xstrdup(key);
	}
	q->kind = kind;
	if (fn(d->h, key, &q->res, on_backend, q, &q->op) == DIR_PENDING)
		return Q_WAIT;
	cache_put(q);
	return Q_AGAIN;
}

/* The catch-all "@domain" of dom (on the stack: it runs per recipient). */
int
dir_query_catchall(struct dir_query *q, const char *dom)
{
	char key[DIR_DOMAIN_KEY];
	size_t n = strlen(dom);
	struct buf b = BUF_INIT;
	int rc;

	if (n + 2 <= sizeof(key)) {
		key[0] = '@';
		memcpy(key + 1, dom, n + 1);
		return dir_query_lookup(q, DK_ALIAS, key);
	}
	buf_printf(&b, "@%s", dom);
	rc = dir_query_lookup(q, DK_ALIAS, buf_cstr(&b));
	buf_free(&b);
	return rc;
}

void
directory_cancel(struct dir_query *q)
{
	if (q == NULL)
		return;
	if (q->op)
		q->d->be->cancel(q->op);
	dir_query_free(q);
}

/* ---- rules --------------------------------------------------------------- */

int
dir_is_postmaster(const char *address)
{
	return strncasecmp(address, "postmaster", 10) == 0 &&
	    (address[10] == '\0' || address[10] == '@');
}

int
dir_is_postmaster_address(const struct directory *d, const char *address)
{
	const char *pm = d->cfg->delivery.postmaster;

	return pm && strcasecmp(address, pm) == 0;
}

/* The local part must be a safe folder name: no '/', no leading '.'. */
int
directory_mailbox_name(const char *address)
{
	const char *at = strrchr(address, '@');
	size_t n = at ? (size_t)(at - address) : 0;

	if (n == 0 || address[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)address[i];
		if (ch >= 128 || !(isalnum(ch) || strchr("._+-=", ch)))
			return 0;
	}
	return 1;
}

/* ---- address extensions ------------------------------------------------ */

/* The local part's first delimiter character, or NULL: no extension. */
static const char *
ext_start(const struct directory *d, const char *addr)
{
	const char *delim = d->cfg->directory.extension_delimiter;
	const char *at = strrchr(addr, '@');
	size_t n = at ? (size_t)(at - addr) : strlen(addr);
	size_t k;

	if (*delim == '\0')
		return NULL;
	k = strcspn(addr, delim);
	return k > 0 && k < n ? addr + k : NULL;	/* "+tag@": none */
}

int
dir_base_address(const struct directory *d, const char *addr, struct buf *b)
{
	const char *x = ext_start(d, addr), *at = strrchr(addr, '@');

	if (x == NULL)
		return 0;
	buf_set(b, addr, (size_t)(x - addr));
	if (at)
		buf_appends(b, at);
	return 1;
}

void
dir_extended_address(const struct directory *d, const char *user,
    const char *addr, struct buf *b)
{
	const char *x = ext_start(d, addr), *at = strrchr(addr, '@');
	const char *uat = strrchr(user, '@');

	buf_set(b, user, uat ? (size_t)(uat - user) : strlen(user));
	if (x)
		buf_append(b, x, at ? (size_t)(at - x) : strlen(x));
	if (uat)
		buf_appends(b, uat);
}

/* dir_query_lookup of addr without its extension; 0: it has none. */
static int
lookup_base(struct dir_query *q, enum dir_kind kind, const char *addr,
    int *rc)
{
	struct buf b = BUF_INIT;

	if (!dir_base_address(q->d, addr, &b))
		return 0;
	*rc = dir_query_lookup(q, kind, buf_cstr(&b));
	buf_free(&b);
	return 1;
}

/* ---- RCPT ---------------------------------------------------------------- */

enum { R_START, R_DOMAIN, R_USER, R_ALIAS, R_BASE_USER, R_BASE_ALIAS,
    R_CATCHALL };

static int
rcpt_end(struct dir_query *q, enum dir_lookup v)
{
	*(enum dir_lookup *)q->out = v;
	return Q_END;
}

/* Neither a user nor an alias: a mailbox, unknown, or a bad name. */
static int
rcpt_final(struct dir_query *q)
{
	const char *a = q->addrs[0];

	if (q->i == 0)		/* the user lookup said no mailbox */
		return rcpt_end(q, DIR_UNKNOWN);
	return rcpt_end(q, directory_mailbox_name(a) ? DIR_LOCAL_USER :
	    DIR_BAD_NAME);
}

static int
listed(const struct dir_result *r)
{
	return r->status == DIR_OK && (r->flags & DIR_USER_LISTED);
}

/* A listed user (q->res): disabled, full, or a mailbox. */
static int
rcpt_user(struct dir_query *q)
{
	const struct dir_result *r = &q->res;

	if (r->flags & DIR_USER_DISABLED)
		return rcpt_end(q, DIR_DISABLED);
	if (r->quota == 0 || q->d->loop == NULL || r->address == NULL ||
	    q->d->cfg->delivery.maildir_root == NULL)
		return rcpt_end(q, DIR_LOCAL_USER);
	return dir_quota_check(q, r->address, r->quota);
}

/* No user, no alias: the catch-all "@dom", or the end. */
static int
rcpt_catchall(struct dir_query *q, const char *dom)
{
	if (dom == NULL)
		return rcpt_final(q);
	q->state = R_CATCHALL;
	return dir_query_catchall(q, dom);
}

/* The address itself is no alias: joe+tag@ is joe@'s, if joe is someone. */
static int
rcpt_no_alias(struct dir_query *q, const char *a, const char *dom)
{
	int rc;

	if (q->i == 0 && lookup_base(q, DK_USER, a, &rc)) {
		q->state = R_BASE_USER;
		return rc;
	}
	return rcpt_catchall(q, dom);
}

/* q->i: the address has a mailbox (a user, or the postmaster address). */
static int
rcpt_step(struct dir_query *q)
{
	const char *a = q->addrs[0], *dom = address_domain(a);
	int rc = Q_AGAIN;

	if (q->state != R_START && q->res.status == DIR_TEMPFAIL)
		return rcpt_end(q, DIR_LOOKUP_FAILED);
	switch (q->state++) {
	case R_START:
		return dom ? dir_query_lookup(q, DK_DOMAIN, dom) : Q_AGAIN;
	case R_DOMAIN:
		if (dom && q->res.status != DIR_OK)
			return rcpt_end(q, DIR_NOT_LOCAL);
		return dir_query_lookup(q, DK_USER, a);
	case R_USER:
		if (listed(&q->res))
			return rcpt_user(q);
		q->i = q->res.status == DIR_OK ||
		    dir_is_postmaster_address(q->d, a);
		return dir_query_lookup(q, DK_ALIAS, a);
	case R_ALIAS:
		if (q->res.status == DIR_OK || dir_is_postmaster(a))
			return rcpt_end(q, DIR_ALIAS);
		return rcpt_no_alias(q, a, dom);
	case R_BASE_USER:
		if (listed(&q->res))
			return rcpt_user(q);
		lookup_base(q, DK_ALIAS, a, &rc);
		return rc;
	case R_BASE_ALIAS:
		if (q->res.status == DIR_OK)
			return rcpt_end(q, DIR_ALIAS);
		return rcpt_catchall(q, dom);
	default:		/* R_CATCHALL */
		if (q->res.status == DIR_OK)
			return rcpt_end(q, DIR_ALIAS);
		return rcpt_final(q);
	}
}

void
dir_query_addrs(struct dir_query *q, const char *const *a, size_t n)
{
	q->addrs = (char **)a;
	q->naddrs = n;
}

int
directory_lookup(struct directory *d, const char *address, size_t size,
    enum dir_lookup *out, dir_done_cb cb, void *arg, struct dir_query **qp)
{
	struct dir_query *q = dir_query_new(d, rcpt_step, out, cb, arg);

	dir_query_addrs(q, &address, 1);
	q->size = size;
	q->res.status = DIR_OK;
	return dir_query_start(q, qp);
}

/* ---- domains ------------------------------------------------------------- */

static int
domain_step(struct dir_query *q)
{
	enum dir_status *out = q->out;

	if (q->state++ == 0)
		return dir_query_lookup(q, DK_DOMAIN, q->addrs[0]);
	*out = q->res.status == DIR_OK || q->res.status == DIR_TEMPFAIL ?
	    q->res.status : DIR_NOTFOUND;
	return Q_END;
}

int
directory_domain(struct directory *d, const char *domain,
    enum dir_status *out, dir_done_cb cb, void *arg, struct dir_query **qp)
{
	struct dir_query *q = dir_query_new(d, domain_step, out, cb, arg);

	dir_query_addrs(q, &domain, 1);
	return dir_query_start(q, qp);
}

/* ---- mailboxes ----------------------------------------------------------- */

enum { M_START, M_EXACT, M_BASE };

/* The answer for addrs[i]: its own, or (base) without its extension. */
static void
mailbox_set(struct dir_query *q, int base)
{
	struct dir_mailbox *m = &((struct dir_mailbox *)q->out)[q->i];
	const struct dir_result *r = &q->res;
	int user = listed(r);

	m->status = r->status;
	m->has = user || (!base && (r->status == DIR_OK ||
	    dir_is_postmaster_address(q->d, q->addrs[q->i])));
	m->disabled = user && (r->flags & DIR_USER_DISABLED);
	m->quota = user ? r->quota : 0;
	if (base && user && r->address)
		m->owner = xstrdup(r->address);
}

/* The address itself has a mailbox, or cannot be told. */
static int
mailbox_exact(struct dir_query *q)
{
	return q->res.status != DIR_NOTFOUND ||
	    dir_is_postmaster_address(q->d, q->addrs[q->i]);
}

static int
mailbox_step(struct dir_query *q)
{
	int rc;

	if (q->state == M_EXACT && !mailbox_exact(q) &&
	    lookup_base(q, DK_USER, q->addrs[q->i], &rc)) {
		q->state = M_BASE;
		return rc;
	}
	if (q->state != M_START) {
		mailbox_set(q, q->state == M_BASE);
		q->i++;
	}
	if (q->i == q->naddrs)
		return Q_END;
	q->state = M_EXACT;
	return dir_query_lookup(q, DK_USER, q->addrs[q->i]);
}

int
directory_mailboxes(struct directory *d, const char *const *addresses,
    size_t n, struct dir_mailbox *out, dir_done_cb cb, void *arg,
    struct dir_query **qp)
{
	struct dir_query *q = dir_query_new(d, mailbox_step, out, cb, arg);

	memset(out, 0, n * sizeof(*out));
	dir_query_addrs(q, addresses, n);
	return dir_query_start(q, qp);
}

void
directory_mailboxes_free(struct dir_mailbox *m, size_t n)
{
	for (size_t i = 0; m && i < n; i++) {
		free(m[i].owner);
		m[i].owner = NULL;
	}
}
