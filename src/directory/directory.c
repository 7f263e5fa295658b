/*
 * directory: configuration-backed users and aliases. An alias maps an
 * address to other addresses (local or remote: a forward); "@domain" is
 * the catch-all of a domain; postmaster of any local domain (and the bare
 * "Postmaster") goes to mailboxes.postmaster, which is a mailbox of its own
 * unless it is a user or an alias. With mailboxes.users listed, only the
 * users and the postmaster address are mailboxes; without, every local part
 * that directory_mailbox_name() accepts is one.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "../lib/xalloc.h"
#include "../mail/address.h"
#include "directory.h"

static const struct alias *
catchall(const struct config *c, const char *domain)
{
	struct buf key = BUF_INIT;
	const struct alias *a;

	buf_printf(&key, "@%s", domain);
	a = config_find_alias(c, buf_cstr(&key));
	buf_free(&key);
	return a;
}

/* postmaster@<any domain> or the bare "Postmaster" (RFC 5321 4.5.1). */
static int
is_postmaster(const char *address)
{
	return strncasecmp(address, "postmaster", 10) == 0 &&
	    (address[10] == '\0' || address[10] == '@');
}

/* mailboxes.postmaster itself. */
static int
is_postmaster_address(const struct config *c, const char *address)
{
	return c->delivery.postmaster &&
	    strcasecmp(address, c->delivery.postmaster) == 0;
}

static int
is_remote(const struct config *c, const char *address)
{
	const char *dom = address_domain(address);

	return dom && !config_is_local_domain(c, dom);
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

int
directory_has_mailbox(const struct config *c, const char *address)
{
	return !c->delivery.users_listed || config_find_user(c, address) ||
	    is_postmaster_address(c, address);
}

enum dir_lookup
directory_lookup(const struct config *c, const char *address)
{
	const char *dom = address_domain(address);

	if (is_remote(c, address))
		return DIR_NOT_LOCAL;
	if (config_find_user(c, address))
		return DIR_LOCAL_USER;
	if (config_find_alias(c, address) || is_postmaster(address) ||
	    (dom && catchall(c, dom)))
		return DIR_ALIAS;
	if (!directory_has_mailbox(c, address))
		return DIR_UNKNOWN;
	return directory_mailbox_name(address) ? DIR_LOCAL_USER : DIR_BAD_NAME;
}

static void
add(struct expansion *e, const char *rcpt, const char *orcpt)
{
	for (size_t i = 0; i < e->n; i++)
		if (strcasecmp(e->rcpt[i], rcpt) == 0)
			return;
	e->rcpt = xrealloc(e->rcpt, (e->n + 1) * sizeof(char *));
	e->orcpt = xrealloc(e->orcpt, (e->n + 1) * sizeof(char *));
	e->rcpt[e->n] = xstrdup(rcpt);
	e->orcpt[e->n] = xstrdup(orcpt);
	e->n++;
}

static int expand_one(const struct config *, const char *, const char *,
    int, int, struct expansion *);

/* caught: the targets of a catch-all are not caught by it again. */
static int
expand_alias(const struct config *c, const struct alias *a, const char *orcpt,
    int depth, int caught, struct expansion *e)
{
	for (size_t i = 0; i < a->ntargets; i++)
		if (expand_one(c, a->targets[i], orcpt, depth + 1, caught, e) < 0)
			return -1;
	return 0;
}

static int
expand_one(const struct config *c, const char *addr, const char *orcpt,
    int depth, int caught, struct expansion *e)
{
	const struct alias *a;
	const struct mailbox_user *u;
	const char *dom = address_domain(addr);

	if (depth > 10)
		return -1;
	if (is_remote(c, addr))
		add(e, addr, orcpt);		/* a forward */
	else if ((u = config_find_user(c, addr)) != NULL)
		add(e, u->address, orcpt);	/* the user's own spelling */
	else if ((a = config_find_alias(c, addr)) != NULL)
		return expand_alias(c, a, orcpt, depth, 0, e);
	else if (is_postmaster_address(c, addr))
		add(e, c->delivery.postmaster, orcpt);	/* a mailbox of its own */
	else if (is_postmaster(addr))
		return expand_one(c, c->delivery.postmaster, orcpt, depth + 1, 0,
		    e);
	else if (!caught && dom && (a = catchall(c, dom)) != NULL)
		return expand_alias(c, a, orcpt, depth, 1, e);
	else
		add(e, addr, orcpt);	/* a mailbox, or unknown: delivery refuses */
	return 0;
}

int
directory_expand(const struct config *c, char **rcpts, size_t n,
    struct expansion *e)
{
	memset(e, 0, sizeof(*e));
	for (size_t i = 0; i < n; i++)
		if (expand_one(c, rcpts[i], rcpts[i], 0, 0, e) < 0)
			return -1;
	return 0;
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
	memset(e, 0, sizeof(*e));
}

/* ---- configuration check ------------------------------------------------ */

/* Why final address f cannot receive mail, or NULL. */
static const char *
final_problem(const struct config *c, const char *f)
{
	if (is_remote(c, f))
		return NULL;
	if (!directory_has_mailbox(c, f))
		return "is not a mailbox (neither a user, an alias nor the "
		    "postmaster)";
	if (!directory_mailbox_name(f))
		return "is not a mailbox name (" DIRECTORY_NAME_RULE ")";
	return NULL;
}

/* Everywhere `what` (named `where` in errors) leads must receive mail. */
static int
check_leads(const struct config *c, const char *where, const char *what,
    int caught, struct buf *err)
{
	struct expansion x;
	const char *why = NULL, *bad = NULL;

	memset(&x, 0, sizeof(x));
	if (expand_one(c, what, what, 1, caught, &x) < 0)
		why = "leads to an alias loop";
	for (size_t i = 0; why == NULL && i < x.n; i++)
		if ((why = final_problem(c, x.rcpt[i])) != NULL)
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
check_aliases(const struct config *c, struct buf *err)
{
	struct buf where = BUF_INIT;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < c->delivery.naliases; i++) {
		const struct alias *a = &c->delivery.aliases[i];
		buf_clear(&where);
		buf_printf(&where, "mailboxes.aliases['%s']", a->address);
		for (size_t k = 0; rc == 0 && k < a->ntargets; k++)
			rc = check_leads(c, buf_cstr(&where), a->targets[k],
			    a->address[0] == '@', err);
	}
	buf_free(&where);
	return rc;
}

int
directory_check(const struct config *c, struct buf *err)
{
	for (size_t i = 0; i < c->delivery.nusers; i++)
		if (!directory_mailbox_name(c->delivery.users[i].address)) {
			buf_printf(err, "mailboxes.users: '%s' is not a mailbox "
			    "name (" DIRECTORY_NAME_RULE ")",
			    c->delivery.users[i].address);
			return -1;
		}
	if (c->delivery.postmaster && check_leads(c, "mailboxes.postmaster",
	    c->delivery.postmaster, 0, err) < 0)
		return -1;
	return check_aliases(c, err);
}
