/*
 * lua_domain: loads the folder of per-domain rules (DOMAIN.lua each, in
 * name order) into separate runtimes, keeps a file that fails as an error
 * entry, carries a good version over a broken one at reload, and says
 * which domains' hooks a stage runs: the recipient's domain (rcpt), every
 * recipient domain of the transaction (data, message) and, on submission,
 * the authenticated user's domain (mail, rcpt, data, message); each once.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "../mail/address.h"
#include "lua_domain.h"
#include "lua_runtime.h"

#ifndef INDIMAIL_LUA_DIR
#define INDIMAIL_LUA_DIR "/usr/share/indimail/lua"
#endif

void
domain_rules_prepare(lua_State *L, struct runtime *rt)
{
	lua_getglobal(L, "package");
	lua_pushfstring(L, "%s/stdlib/?.lua", rt->cfg.lua_dir ?
	    rt->cfg.lua_dir : INDIMAIL_LUA_DIR);
	lua_setfield(L, -2, "path");
	lua_pop(L, 1);
}

/* "example.com.lua" -> "example.com" (lowercase), or NULL. */
static char *
file_domain(const char *name)
{
	size_t n = strlen(name);
	char *d;

	if (n <= 4 || strcmp(name + n - 4, ".lua") != 0 || name[0] == '.')
		return NULL;
	d = xstrndup(name, n - 4);
	for (char *p = d; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (!address_valid_domain(d, n - 4)) {
		free(d);
		return NULL;
	}
	return d;
}

static void
log_rule(const struct domain_rule *r)
{
	struct logline l;

	log_begin(&l, r->rt ? LOG_INFO : LOG_ERROR, r->rt ?
	    "domain_rules_loaded" : "domain_rules_failed");
	log_kv(&l, "domain", r->domain);
	log_kv(&l, "file", r->file);
	if (r->error)
		log_kv(&l, "error", r->error);
	log_end(&l);
}

static void
load_rule(struct domain_rule *r, const struct config *cfg)
{
	struct buf err = BUF_INIT;

	r->rt = runtime_load_domain(r->file, r->domain, cfg, &err);
	if (r->rt == NULL)
		r->error = xstrdup(buf_cstr(&err));
	buf_free(&err);
	log_rule(r);
}

static int
by_domain(const void *a, const void *b)
{
	return strcmp(((const struct domain_rule *)a)->domain,
	    ((const struct domain_rule *)b)->domain);
}

/* Adds an entry per DOMAIN.lua of the open folder, unloaded. */
static void
scan(DIR *d, const char *dir, struct domain_rules *rs)
{
	struct dirent *e;
	struct buf b = BUF_INIT;

	while ((e = readdir(d)) != NULL) {
		char *dom = file_domain(e->d_name);
		struct domain_rule *r;
		if (dom == NULL)
			continue;
		rs->v = xrealloc(rs->v, (rs->n + 1) * sizeof(*rs->v));
		r = memset(&rs->v[rs->n++], 0, sizeof(*r));
		r->domain = dom;
		buf_clear(&b);
		buf_printf(&b, "domain:%s", dom);
		r->label = xstrdup(buf_cstr(&b));
		buf_clear(&b);
		buf_printf(&b, "%s/%s", dir, e->d_name);
		r->file = xstrdup(buf_cstr(&b));
	}
	buf_free(&b);
}

int
domain_rules_load(struct runtime *main, struct buf *err)
{
	const char *dir = main->cfg.domain_rules;
	struct domain_rules *rs;
	DIR *d;

	if (dir == NULL)
		return 0;
	if ((d = opendir(dir)) == NULL) {
		buf_printf(err, "domain_rules: %s: %s", dir, strerror(errno));
		return -1;
	}
	rs = main->domains = xcalloc(1, sizeof(*rs));
	scan(d, dir, rs);
	closedir(d);
	if (rs->n)
		qsort(rs->v, rs->n, sizeof(*rs->v), by_domain);
	for (size_t i = 0; i < rs->n; i++)
		load_rule(&rs->v[i], &main->cfg);
	return 0;
}

void
domain_rules_free(struct domain_rules *rs)
{
	if (rs == NULL)
		return;
	for (size_t i = 0; i < rs->n; i++) {
		if (rs->v[i].rt)
			runtime_unref(rs->v[i].rt);
		free(rs->v[i].domain);
		free(rs->v[i].label);
		free(rs->v[i].file);
		free(rs->v[i].error);
	}
	free(rs->v);
	free(rs);
}

static const struct domain_rule *
find(const struct domain_rules *rs, const char *domain)
{
	if (rs == NULL || domain == NULL)
		return NULL;
	for (size_t i = 0; i < rs->n; i++)
		if (strcasecmp(rs->v[i].domain, domain) == 0)
			return &rs->v[i];
	return NULL;
}

void
domain_rules_inherit(struct runtime *fresh, const struct runtime *old)
{
	for (size_t i = 0; fresh->domains && i < fresh->domains->n; i++) {
		struct domain_rule *r = &fresh->domains->v[i];
		const struct domain_rule *o = find(old->domains, r->domain);
		if (r->rt != NULL || o == NULL || o->rt == NULL)
			continue;
		r->rt = o->rt;		/* the running version stays */
		runtime_ref(r->rt);
		log_event(LOG_WARN, "domain_rules_kept", "domain=%s "
		    "reason=the_new_file_failed_to_load", r->domain);
	}
}

void
domain_rules_check(const struct runtime *rt, struct check_report *r)
{
	for (size_t i = 0; rt->domains && i < rt->domains->n; i++) {
		const struct domain_rule *d = &rt->domains->v[i];
		if (d->rt == NULL && strncmp(d->error, d->file,
		    strlen(d->file)) == 0)
			check_report_add(r, d->error);	/* FILE:LINE: why */
		else if (d->rt == NULL)
			check_report_addf(r, "%s: %s", d->file, d->error);
	}
}

/* The domain of an address (after its last '@'), or NULL. */
static const char *
domain_of(const char *addr)
{
	const char *at = addr ? strrchr(addr, '@') : NULL;

	return at && at[1] ? at + 1 : NULL;
}

/* Appends r to out[0..*n) unless it is there already. */
static void
add(const struct domain_rule **out, size_t *n, const struct domain_rule *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < *n; i++)
		if (out[i] == r)
			return;
	out[(*n)++] = r;
}

size_t
domain_rules_select(const struct runtime *rt, enum hook_stage s,
    const struct hook_ctx *ctx, const struct domain_rule ***out)
{
	const struct domain_rules *rs = rt->domains;
	const struct domain_rule **v;
	size_t n = 0;

	*out = NULL;
	if (rs == NULL || rs->n == 0 || s < HOOK_MAIL || s > HOOK_MESSAGE)
		return 0;
	v = xcalloc(ctx->nrcpts + 2, sizeof(*v));
	if (s == HOOK_RCPT)
		add(v, &n, find(rs, domain_of(ctx->rcpt)));
	for (size_t i = 0; s >= HOOK_DATA && i < ctx->nrcpts; i++)
		add(v, &n, find(rs, domain_of(ctx->rcpts[i])));
	add(v, &n, find(rs, domain_of(ctx->auth_user)));
	if (n == 0)
		free(v);
	else
		*out = v;
	return n;
}
