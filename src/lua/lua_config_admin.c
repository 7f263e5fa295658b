/*
 * lua_config_admin: admin = { listen = "127.0.0.1:8443", tls = true,
 * cert=, key=, tokens= } (issue 13, docs/admin-api.md). The address is an
 * IP literal ("[::1]:8443" for IPv6); plain HTTP (tls = false) is refused
 * unless the address is a loopback one, so a token never crosses a
 * network in clear. With TLS, a certificate must be known (cert and key,
 * or tls.cert and tls.key).
 */
#include <arpa/inet.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "lua_config_int.h"

#define PORT_MAX	65535

/* "a.b.c.d:port" or "[v6]:port" into address and port: 0, or -1. */
static int
split_listen(const char *s, char **address, int *port)
{
	const char *colon = strrchr(s, ':');
	unsigned char tmp[sizeof(struct in6_addr)];
	char *end, *host;
	long p;

	if (colon == NULL)
		return -1;
	p = strtol(colon + 1, &end, 10);
	if (end == colon + 1 || *end != '\0' || p < 0 || p > PORT_MAX)
		return -1;
	if (s[0] == '[' && colon > s + 1 && colon[-1] == ']')
		host = xstrndup(s + 1, (size_t)(colon - s - 2));
	else
		host = xstrndup(s, (size_t)(colon - s));
	if (inet_pton(AF_INET, host, tmp) != 1 &&
	    inet_pton(AF_INET6, host, tmp) != 1) {
		free(host);
		return -1;
	}
	*address = host;
	*port = (int)p;
	return 0;
}

static int
loopback(const char *address)
{
	struct in_addr a4;

	if (inet_pton(AF_INET, address, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return strcmp(address, "::1") == 0;
}

void
cfg_admin(lua_State *L, int t, struct config *c)
{
	static const char *keys[] = { "listen", "tls", "cert", "key",
	    "tokens", NULL };
	struct admin_conf *a = &c->admin;
	char *listen;

	cfg_check_keys(L, t, "admin", keys);
	a->enabled = 1;
	a->port = ADMIN_DEFAULT_PORT;
	if ((listen = cfg_opt_string(L, t, "listen", "admin.listen")) != NULL &&
	    split_listen(listen, &a->address, &a->port) < 0) {
		free(listen);
		cfg_bad(L, "admin.listen", "must be IP:PORT (\"127.0.0.1:8443\", "
		    "\"[::1]:8443\")");
	}
	free(listen);
	if (a->address == NULL)
		a->address = xstrdup(ADMIN_DEFAULT_ADDRESS);
	lua_getfield(L, t, "tls");
	a->tls = lua_isnil(L, -1) ? 1 : cfg_opt_boolean(L, t, "tls", "admin.tls");
	lua_pop(L, 1);
	cfg_set_string(L, t, "cert", "admin.cert", &a->cert);
	cfg_set_string(L, t, "key", "admin.key", &a->key);
	cfg_set_string(L, t, "tokens", "admin.tokens", &a->tokens);
	if (!a->tls && !loopback(a->address))
		cfg_bad(L, "admin.tls", "false is only allowed on a loopback "
		    "address (bearer tokens would cross the network in clear)");
	if ((a->cert == NULL) != (a->key == NULL))
		cfg_bad(L, "admin", "cert and key go together");
	if (a->tls && a->cert == NULL && c->tls_cert == NULL)
		cfg_bad(L, "admin", "tls needs a certificate: admin.cert and "
		    "admin.key, or tls.cert and tls.key");
}
