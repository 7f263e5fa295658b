/*
 * lua_config_listen: the listen = { {name=, address=, port=, tls=, ...} }
 * section. A listener's TLS profile (ciphers, suites, minimum version) is
 * tried on an OpenSSL context while the file is read, so that a bad one
 * is a config error `indimaild -t` reports, not a failure at start.
 * Also where SMTP AUTH is offered, allowed in clear, and required.
 */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "../net/tls.h"
#include "lua_config_int.h"

static int
parse_tls_mode(lua_State *L, const char *s, const char *where)
{
	static const struct choice modes[] = { { "none", TLS_NONE },
	    { "starttls", TLS_STARTTLS }, { "implicit", TLS_IMPLICIT },
	    { NULL, 0 } };

	return cfg_choose(L, s, where, modes,
	    "tls must be \"none\", \"starttls\" or \"implicit\"");
}

static int
parse_tls_version(lua_State *L, const char *s, const char *where)
{
	static const struct choice versions[] = {
	    { "TLSv1.2", TLS1_2_VERSION }, { "TLSv1.3", TLS1_3_VERSION },
	    { NULL, 0 } };

	return cfg_choose(L, s, where, versions,
	    "must be \"TLSv1.2\" or \"TLSv1.3\"");
}

/*
 * tls_ciphers, tls_ciphersuites, tls_min_version of the listener at e,
 * tried on an OpenSSL context now, so that `indimaild -t` reports them.
 */
static void
parse_listen_tls(lua_State *L, int e, struct listen_conf *l)
{
	struct tls_profile p;
	struct buf err = BUF_INIT;

	l->tls_ciphers = cfg_opt_string(L, e, "tls_ciphers",
	    "listen[].tls_ciphers");
	l->tls_ciphersuites = cfg_opt_string(L, e, "tls_ciphersuites",
	    "listen[].tls_ciphersuites");
	lua_getfield(L, e, "tls_min_version");
	if (lua_type(L, -1) == LUA_TSTRING)
		l->tls_min_version = parse_tls_version(L, lua_tostring(L, -1),
		    "listen[].tls_min_version");
	else if (!lua_isnil(L, -1))
		cfg_bad(L, "listen[].tls_min_version", "must be a string");
	lua_pop(L, 1);
	if (l->tls == TLS_NONE && (l->tls_ciphers || l->tls_ciphersuites ||
	    l->tls_min_version))
		luaL_error(L, "bad config: listen[]: listener '%s' has TLS "
		    "settings but tls = \"none\"", l->name);
	p.ciphers = l->tls_ciphers;
	p.ciphersuites = l->tls_ciphersuites;
	p.min_version = l->tls_min_version;
	if (l->tls != TLS_NONE && tls_profile_check(&p, &err) < 0) {
		luaL_where(L, 1);	/* as luaL_error, with err freed */
		lua_pushfstring(L, "bad config: listen[].%s", buf_cstr(&err));
		lua_concat(L, 2);
		buf_free(&err);
		lua_error(L);
	}
	buf_free(&err);
}

/* A boolean key that may be absent: its value, or dflt. */
static int
opt_flag(lua_State *L, int e, const char *key, const char *where, int dflt)
{
	int absent;

	lua_getfield(L, e, key);
	absent = lua_isnil(L, -1);
	lua_pop(L, 1);
	return absent ? dflt : cfg_opt_boolean(L, e, key, where);
}

/* auth_mechs = { "plain", "login", "cram-md5", "scram-sha-256" } */
static unsigned
parse_auth_mechs(lua_State *L, int e)
{
	static const struct choice mechs[] = { { "plain", AUTH_MECH_PLAIN },
	    { "login", AUTH_MECH_LOGIN }, { "cram-md5", AUTH_MECH_CRAM_MD5 },
	    { "scram-sha-256", AUTH_MECH_SCRAM_SHA256 }, { NULL, 0 } };
	unsigned m = 0;
	char **v;
	size_t n = 0;

	if (!cfg_sub_table(L, e, "auth_mechs"))
		return AUTH_MECH_PLAIN | AUTH_MECH_LOGIN;
	cfg_string_list(L, lua_gettop(L), "listen[].auth_mechs", &v, &n, 0);
	for (size_t i = 0; i < n; i++) {
		m |= (unsigned)cfg_choose(L, v[i], "listen[].auth_mechs", mechs,
		    "must list plain, login, cram-md5 or scram-sha-256");
		free(v[i]);
	}
	free(v);
	lua_pop(L, 1);
	if (m == 0)
		cfg_bad(L, "listen[].auth_mechs", "must not be empty");
	return m;
}

/*
 * auth, auth_plaintext, require_auth, auth_mechs, sender_login_match
 * (docs/smtp.md). By default AUTH is offered on "submission" and on
 * implicit TLS, and "submission" requires it; without TLS it is refused
 * (538) unless auth_plaintext = true. A logged-in user sends as itself
 * unless sender_login_match = false.
 */
static void
parse_listen_auth(lua_State *L, int e, struct listen_conf *l)
{
	l->auth = opt_flag(L, e, "auth", "listen[].auth",
	    listen_default_auth(l));
	l->auth_plaintext = opt_flag(L, e, "auth_plaintext",
	    "listen[].auth_plaintext", 0);
	l->require_auth = opt_flag(L, e, "require_auth",
	    "listen[].require_auth", listen_default_require_auth(l));
	l->sender_login_match = opt_flag(L, e, "sender_login_match",
	    "listen[].sender_login_match", 1);
	if (l->require_auth && !l->auth)
		luaL_error(L, "bad config: listen[]: listener '%s' has "
		    "require_auth = true but auth = false", l->name);
	l->auth_mechs = parse_auth_mechs(L, e);
}

/*
 * Listener i against those before it: an explicit name (named[i]: listener i
 * has one) is used once, an address and port other than 0 once: the
 * second bind would fail, or the logs and the hooks mix two up.
 */
static void
check_duplicate(lua_State *L, const struct config *c, size_t i,
    const unsigned char *named)
{
	const struct listen_conf *l = &c->listen[i];

	for (size_t j = 0; j < i; j++) {
		const struct listen_conf *o = &c->listen[j];
		if (named[i] && strcmp(o->name, l->name) == 0)
			cfg_problem(L, "bad config: listen[%d]: name '%s' is "
			    "already used by listen[%d]", (int)i + 1, l->name,
			    (int)j + 1);
		if (l->port != 0 && o->port == l->port &&
		    strcmp(o->address, l->address) == 0)
			cfg_problem(L, "bad config: listen[%d]: %s port %d is "
			    "already used by listen[%d] ('%s')", (int)i + 1,
			    l->address, l->port, (int)j + 1, o->name);
	}
}

void
cfg_listen(lua_State *L, int t, struct config *c)
{
	static const char *keys[] = { "name", "address", "port", "tls",
	    "tls_ciphers", "tls_ciphersuites", "tls_min_version", "auth",
	    "auth_plaintext", "require_auth", "auth_mechs",
	    "sender_login_match", NULL };
	size_t n = luaL_len(L, t);
	unsigned char *named;

	if (n == 0)
		cfg_bad(L, "listen", "needs at least one listener");
	c->listen = xcalloc(n, sizeof(*c->listen));
	/* a full userdata: freed by Lua when an error unwinds us */
	named = lua_newuserdatauv(L, n, 0);
	memset(named, 0, n);
	t = lua_absindex(L, t);
	for (size_t i = 0; i < n; i++) {
		struct listen_conf *l = &c->listen[i];
		char *tls;
		int e;

		lua_rawgeti(L, t, (lua_Integer)i + 1);
		if (!lua_istable(L, -1))
			luaL_error(L, "bad config: listen[%d]: must be a table",
			    (int)i + 1);
		e = lua_gettop(L);
		c->nlisten++;
		cfg_check_keys(L, e, "listen[]", keys);
		l->name = cfg_opt_string(L, e, "name", "listen[].name");
		named[i] = l->name != NULL;
		l->address = cfg_opt_string(L, e, "address",
		    "listen[].address");
		if (l->name == NULL)
			l->name = xstrdup("smtp");
		if (l->address == NULL)
			l->address = xstrdup("127.0.0.1");
		l->port = -1;
		cfg_set_number(L, e, "port", "listen[].port", 0, 65535, 1,
		    &l->port, 0);
		if (l->port < 0)
			cfg_bad(L, "listen[].port",
			    "is required (0 = any free port)");
		l->tls = TLS_NONE;
		tls = cfg_opt_string(L, e, "tls", "listen[].tls");
		if (tls != NULL) {
			l->tls = (enum tls_mode)parse_tls_mode(L, tls,
			    "listen[].tls");
			free(tls);
		}
		parse_listen_tls(L, e, l);
		parse_listen_auth(L, e, l);
		check_duplicate(L, c, i, named);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);		/* named */
}
