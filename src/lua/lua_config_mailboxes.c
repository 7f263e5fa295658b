/*
 * lua_config_mailboxes: the mailboxes = { root=, postmaster=, users=,
 * aliases= } section: local users (with quotas and password hashes) and
 * aliases, each checked to be a user@domain address (an alias key may be
 * @domain, a catch-all). A password is only ever a crypt(3) hash that
 * libcrypt rates current (yescrypt, SHA-512-crypt, bcrypt...): a plaintext
 * or a legacy hash is a config error naming the user.
 */
#include <crypt.h>
#include <lauxlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "../mail/address.h"
#include "lua_config_int.h"

static int
valid_address(const char *a)
{
	const char *at = strrchr(a, '@');

	return at && at > a && address_valid_domain(at + 1, strlen(at + 1));
}

#define CRYPT_ALPHABET \
	"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

/* "$id$...$hash" of a method libcrypt supports and does not call legacy. */
static int
valid_hash(const char *h)
{
	const char *last = strrchr(h, '$');

	if (h[0] != '$' || last == NULL || last[1] == '\0')
		return 0;
	if (strspn(last + 1, CRYPT_ALPHABET) != strlen(last + 1))
		return 0;
	return crypt_checksalt(h) == CRYPT_SALT_OK;
}

/* The user table at e: address, quota, password, no_relay. */
static void
parse_user(lua_State *L, int e, struct mailbox_user *u, int i)
{
	static const char *keys[] = { "address", "quota", "password",
	    "no_relay", NULL };

	cfg_check_keys(L, e, "mailboxes.users[]", keys);
	u->address = cfg_opt_string(L, e, "address",
	    "mailboxes.users[].address");
	cfg_set_number(L, e, "quota", "mailboxes.users[].quota", 0, 1e15, 1,
	    &u->quota, 1);
	u->secret = cfg_opt_string(L, e, "password",
	    "mailboxes.users[].password");
	u->no_relay = cfg_opt_boolean(L, e, "no_relay",
	    "mailboxes.users[].no_relay");
	if (u->secret && !valid_hash(u->secret))
		luaL_error(L, "bad config: mailboxes.users[%d] (%s): password "
		    "must be a crypt(3) hash, e.g. from `openssl passwd -6` "
		    "(SHA-512-crypt) or a yescrypt \"$y$...\" string, not the "
		    "password itself nor a legacy hash ($1$, $5$, DES)", i,
		    u->address ? u->address : "?");
}

static void
parse_users(lua_State *L, int t, struct delivery_conf *d)
{
	size_t n = luaL_len(L, t);

	d->users_listed = 1;
	d->users = xcalloc(n ? n : 1, sizeof(*d->users));
	for (size_t i = 0; i < n; i++) {
		struct mailbox_user *u = &d->users[i];
		lua_rawgeti(L, t, (lua_Integer)i + 1);
		if (lua_type(L, -1) == LUA_TSTRING)
			u->address = xstrdup(lua_tostring(L, -1));
		else if (lua_istable(L, -1))
			parse_user(L, lua_gettop(L), u, (int)i + 1);
		d->nusers++;
		if (u->address == NULL || !valid_address(u->address))
			luaL_error(L, "bad config: mailboxes.users[%d]: needs a "
			    "user@domain address", (int)i + 1);
		lua_pop(L, 1);
	}
}

/* aliases: ["info@x"] = "a@x" | { "a@x", "b@y" }; ["@x"] is a catch-all */
static void
parse_aliases(lua_State *L, int t, struct delivery_conf *d)
{
	lua_pushnil(L);
	while (lua_next(L, t)) {
		struct alias *a;
		const char *k = lua_type(L, -2) == LUA_TSTRING ?
		    lua_tostring(L, -2) : NULL;
		if (k == NULL || (k[0] != '@' && !valid_address(k)))
			luaL_error(L, "bad config: mailboxes.aliases: keys are "
			    "user@domain or @domain (catch-all)");
		d->aliases = xrealloc(d->aliases, (d->naliases + 1) *
		    sizeof(*d->aliases));
		a = &d->aliases[d->naliases++];
		memset(a, 0, sizeof(*a));
		a->address = xstrdup(k);
		if (lua_type(L, -1) == LUA_TSTRING) {
			a->targets = xcalloc(1, sizeof(char *));
			a->targets[a->ntargets++] = xstrdup(lua_tostring(L, -1));
		} else if (lua_istable(L, -1))
			cfg_string_list(L, lua_gettop(L), "mailboxes.aliases",
			    &a->targets, &a->ntargets, 0);
		else
			luaL_error(L, "bad config: mailboxes.aliases['%s']: "
			    "must be an address or a list", k);
		for (size_t i = 0; i < a->ntargets; i++)
			if (!valid_address(a->targets[i]))
				luaL_error(L, "bad config: mailboxes.aliases['%s']: "
				    "'%s' is not an address", k, a->targets[i]);
		lua_pop(L, 1);
	}
}

void
cfg_mailboxes(lua_State *L, int t, struct delivery_conf *d)
{
	static const char *keys[] = { "root", "users", "aliases", "postmaster",
	    NULL };

	cfg_check_keys(L, t, "mailboxes", keys);
	cfg_set_string(L, t, "root", "mailboxes.root", &d->maildir_root);
	cfg_set_string(L, t, "postmaster", "mailboxes.postmaster",
	    &d->postmaster);
	if (cfg_sub_table(L, t, "users")) {
		parse_users(L, lua_gettop(L), d);
		lua_pop(L, 1);
	}
	if (cfg_sub_table(L, t, "aliases")) {
		parse_aliases(L, lua_gettop(L), d);
		lua_pop(L, 1);
	}
}
