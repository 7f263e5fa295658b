/*
 * lua_config_dkim: the dkim = { keys=, jobs=, timeout= } section. Each
 * key names its selector, its file and its algorithm; the file is read
 * here, at load, by whoever loads the configuration (root at start), so
 * the workers never open it: it must not be readable by others (like
 * directory.password_file), and it must load in libopendkim, so a bad key
 * stops the start, not the first message (docs/policies/dkim.md).
 */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/buf.h"
#include "../lib/fsutil.h"
#include "../lib/xalloc.h"
#include "../mail/address.h"
#include "../net/dkim.h"
#include "lua_config_int.h"

/* The key file's text; refused if others may read it. */
static char *
read_key(lua_State *L, const char *path, const char *where)
{
	struct buf b = BUF_INIT, err = BUF_INIT;
	struct stat st;
	const char *why = NULL;
	char *key;

	if (stat(path, &st) == 0 && (st.st_mode & S_IROTH))
		why = "may be read by anyone (chmod 0600 or 0640, root-owned)";
	else if (read_small_file(path, DKIM_MSG_KEY_MAX, &b, &err) < 0)
		why = buf_cstr(&err);
	if (why) {
		lua_pushfstring(L, "%s: %s", path, why);
		buf_wipe(&b);
		buf_free(&err);
		cfg_bad(L, where, lua_tostring(L, -1));
	}
	key = xstrndup(b.data ? b.data : "", b.len);
	buf_wipe(&b);
	return key;
}

static const struct choice algorithms[] = {
	{ "rsa-sha256", 0 }, { "ed25519-sha256", 1 }, { NULL, 0 },
};

/* One keys[domain] = { selector=, key_file=, algorithm= } at t. */
static void
parse_key(lua_State *L, int t, const char *domain, struct dkim_key_conf *k)
{
	static const char *allowed[] = { "selector", "key_file", "algorithm",
	    NULL };
	char where[300], *file, *alg;
	const char *why;

	snprintf(where, sizeof(where), "dkim.keys[\"%s\"]", domain);
	cfg_check_keys(L, t, where, allowed);
	k->domain = xstrdup(domain);
	cfg_set_string(L, t, "selector", where, &k->selector);
	if (k->selector == NULL || strpbrk(k->selector, " ;\t\r\n") ||
	    !address_valid_domain(k->selector, strlen(k->selector)))
		cfg_bad(L, where, "selector must be a DNS label, as s2026");
	if ((alg = cfg_opt_string(L, t, "algorithm", where)) != NULL) {
		k->ed25519 = cfg_choose(L, alg, where, algorithms,
		    "rsa-sha256 or ed25519-sha256");
		free(alg);
	}
	if ((file = cfg_opt_string(L, t, "key_file", where)) == NULL)
		cfg_bad(L, where, "key_file is required");
	lua_pushstring(L, file);
	k->key_file = file;		/* config_free frees it */
	k->key = read_key(L, lua_tostring(L, -1), where);
	lua_pop(L, 1);
	if ((why = dkim_msg_key_check(k)) != NULL)
		cfg_bad(L, where, why);
}

static void
parse_keys(lua_State *L, int t, struct config *c)
{
	lua_pushnil(L);
	while (lua_next(L, t) != 0) {
		const char *d = lua_type(L, -2) == LUA_TSTRING ?
		    lua_tostring(L, -2) : NULL;
		if (d == NULL || !address_valid_domain(d, strlen(d)))
			cfg_bad(L, "dkim.keys", "keys are domains, as "
			    "[\"example.com\"] = { ... }");
		if (!lua_istable(L, -1))
			cfg_bad(L, "dkim.keys", "each domain's value is a table");
		c->dkim_keys = xrealloc(c->dkim_keys, (c->ndkim_keys + 1) *
		    sizeof(*c->dkim_keys));
		memset(&c->dkim_keys[c->ndkim_keys], 0, sizeof(*c->dkim_keys));
		parse_key(L, lua_gettop(L), d, &c->dkim_keys[c->ndkim_keys++]);
		lua_pop(L, 1);
	}
}

void
cfg_dkim(lua_State *L, int t, struct config *c)
{
	static const char *k[] = { "keys", "jobs", "timeout", NULL };

	if (!cfg_sub_table(L, t, "dkim"))
		return;
	cfg_check_keys(L, lua_gettop(L), "dkim", k);
	cfg_set_number(L, -1, "jobs", "dkim.jobs", 1, 64, 1, &c->dkim_jobs, 0);
	cfg_set_number(L, -1, "timeout", "dkim.timeout", 0.1, 600, 1000,
	    &c->dkim_timeout_ms, 0);
	if (cfg_sub_table(L, lua_gettop(L), "keys")) {
		parse_keys(L, lua_gettop(L), c);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}
