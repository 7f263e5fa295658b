/*
 * testmod_spf: the Lua 5.4 module "indimail_spf" that
 * tests/integration/spf_conformance_spec.lua loads. It runs spf_check
 * (src/net/spf.c), the very function the daemon's thread-pool jobs run,
 * in the calling thread, so the RFC 7208 test suite reaches libspf2 and
 * our DNS layer with any client address (the daemon only ever sees
 * 127.0.0.1 in a spec). Stack effects are given as [-arguments, +results].
 */
#include <lauxlib.h>
#include <lua.h>

#include "../../src/net/spf.h"

#define MS	1000

static const char *
opt_field(lua_State *L, const char *k)
{
	const char *v;

	lua_getfield(L, 1, k);
	v = luaL_optstring(L, -1, NULL);
	lua_pop(L, 1);
	return v;
}

static int
opt_ms(lua_State *L, const char *k, double dflt_s)
{
	double v;

	lua_getfield(L, 1, k);
	v = luaL_optnumber(L, -1, dflt_s);
	lua_pop(L, 1);
	return (int)(v * MS);
}

/*
 * check{ ip=, helo=, sender=, receiver=, servers=, timeout=, dns_timeout= }
 * [-1, +2]: result, { comment=, explanation=, header=, domain=, identity= }
 */
static int
l_check(lua_State *L)
{
	struct spf_limits lim = { .void_max = SPF_VOID_MAX };
	struct spf_query q;
	struct spf_answer a;
	char why[128];

	luaL_checktype(L, 1, LUA_TTABLE);
	if (spf_dns_servers_parse(opt_field(L, "servers"), &lim.servers, why,
	    sizeof(why)) < 0)
		return luaL_error(L, "servers: %s", why);
	lim.timeout_ms = opt_ms(L, "timeout", 20);
	lim.dns_timeout_ms = opt_ms(L, "dns_timeout", 5);
	q.ip = luaL_checkstring(L, (lua_getfield(L, 1, "ip"), -1));
	q.helo = opt_field(L, "helo");
	q.sender = opt_field(L, "sender");
	q.receiver = opt_field(L, "receiver");
	spf_check(&lim, &q, &a);
	lua_pushstring(L, spf_result_name(a.result));
	lua_createtable(L, 0, 5);
	lua_pushstring(L, a.comment);
	lua_setfield(L, -2, "comment");
	lua_pushstring(L, a.explanation);
	lua_setfield(L, -2, "explanation");
	lua_pushstring(L, a.header);
	lua_setfield(L, -2, "header");
	lua_pushstring(L, a.domain);
	lua_setfield(L, -2, "domain");
	lua_pushstring(L, a.identity);
	lua_setfield(L, -2, "identity");
	spf_answer_free(&a);
	return 2;
}

int luaopen_indimail_spf(lua_State *);

int
luaopen_indimail_spf(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{ "check", l_check }, { NULL, NULL },
	};

	luaL_newlib(L, funcs);
	return 1;
}
