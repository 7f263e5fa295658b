/*
 * lua_config_domains: the keys of issue 11's per-domain rules and site
 * policies: domain_rules = "folder" (one DOMAIN.lua each, lua_domain.c),
 * domain_rules_limits = { instructions=, memory=, max = { ... },
 * domains = { ["DOMAIN"] = { instructions=, memory= } } } (each domain
 * file's budgets: a default, a site maximum no value may pass, and a
 * domain's own) and policy_path = { "dir", ... } (searched by
 * indimail.policy before lua_dir/policies).
 */
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../lib/xalloc.h"
#include "../mail/address.h"
#include "lua_config_int.h"

#define MIN_INSTRUCTIONS	1000
#define MIN_MEMORY		(1 << 18)
#define MAX_SETTABLE		1e12	/* what max itself may say */

/* Reads t's instructions= and memory= (within [MIN, c's max]) into *l. */
static void
read_pair(lua_State *L, int t, const char *where, const struct config *c,
    struct domain_limit *l)
{
	char key[256];

	snprintf(key, sizeof(key), "%s.instructions", where);
	cfg_set_number(L, t, "instructions", key, MIN_INSTRUCTIONS,
	    (double)c->domain_max.instructions, 1, &l->instructions, 2);
	snprintf(key, sizeof(key), "%s.memory", where);
	cfg_set_number(L, t, "memory", key, MIN_MEMORY,
	    (double)c->domain_max.memory, 1, &l->memory, 1);
}

/* max = { instructions=, memory= }: the site maximum. */
static void
read_max(lua_State *L, int t, struct config *c)
{
	static const char *keys[] = { "instructions", "memory", NULL };

	if (!cfg_sub_table(L, t, "max"))
		return;
	cfg_check_keys(L, lua_gettop(L), "domain_rules_limits.max", keys);
	cfg_set_number(L, lua_gettop(L), "instructions",
	    "domain_rules_limits.max.instructions", MIN_INSTRUCTIONS,
	    MAX_SETTABLE, 1, &c->domain_max.instructions, 2);
	cfg_set_number(L, lua_gettop(L), "memory",
	    "domain_rules_limits.max.memory", MIN_MEMORY, MAX_SETTABLE, 1,
	    &c->domain_max.memory, 1);
	lua_pop(L, 1);
}

/* The domain's file is in the domain_rules folder, or a config error. */
static void
check_domain(lua_State *L, const char *d, const char *where,
    const struct config *c)
{
	char file[4096];

	if (!address_valid_domain(d, strlen(d)) || strpbrk(d, "ABCDEFGHIJKLM"
	    "NOPQRSTUVWXYZ"))
		cfg_bad(L, where, "not a lowercase domain name");
	if (c->domain_rules == NULL)
		cfg_bad(L, where, "needs domain_rules (the folder of its file)");
	snprintf(file, sizeof(file), "%s/%s.lua", c->domain_rules, d);
	if (access(file, F_OK) != 0)
		luaL_error(L, "bad config: %s: there is no '%s'", where, file);
}

/* domains = { ["DOMAIN"] = { instructions=, memory= }, ... } */
static void
read_domains(lua_State *L, int t, struct config *c)
{
	static const char *keys[] = { "instructions", "memory", NULL };
	char where[512];

	lua_pushnil(L);
	while (lua_next(L, t)) {
		const char *d = lua_type(L, -2) == LUA_TSTRING ?
		    lua_tostring(L, -2) : "?";
		struct domain_limit *l;
		snprintf(where, sizeof(where), "domain_rules_limits.domains['%s']",
		    d);
		if (lua_type(L, -2) != LUA_TSTRING || !lua_istable(L, -1))
			cfg_bad(L, where, "must be [\"DOMAIN\"] = { instructions=, "
			    "memory= }");
		check_domain(L, d, where, c);
		cfg_check_keys(L, lua_gettop(L), where, keys);
		c->domain_limits = xrealloc(c->domain_limits,
		    (c->ndomain_limits + 1) * sizeof(*c->domain_limits));
		l = &c->domain_limits[c->ndomain_limits++];
		l->domain = xstrdup(d);
		l->instructions = c->domain_default.instructions;
		l->memory = c->domain_default.memory;
		read_pair(L, lua_gettop(L), where, c, l);
		lua_pop(L, 1);
	}
}

static void
cfg_domain_limits(lua_State *L, int t, struct config *c)
{
	static const char *keys[] = { "instructions", "memory", "max",
	    "domains", NULL };

	cfg_check_keys(L, t, "domain_rules_limits", keys);
	read_max(L, t, c);
	if (c->domain_default.instructions > c->domain_max.instructions)
		c->domain_default.instructions = c->domain_max.instructions;
	if (c->domain_default.memory > c->domain_max.memory)
		c->domain_default.memory = c->domain_max.memory;
	read_pair(L, t, "domain_rules_limits", c, &c->domain_default);
	if (cfg_sub_table(L, t, "domains")) {
		read_domains(L, lua_gettop(L), c);
		lua_pop(L, 1);
	}
}

void
cfg_domain_rules(lua_State *L, int t, struct config *c)
{
	cfg_set_string(L, t, "domain_rules", "domain_rules", &c->domain_rules);
	if (cfg_sub_table(L, t, "domain_rules_limits")) {
		cfg_domain_limits(L, lua_gettop(L), c);
		lua_pop(L, 1);
	}
	if (cfg_sub_table(L, t, "policy_path")) {
		cfg_string_list(L, lua_gettop(L), "policy_path",
		    &c->policy_path, &c->npolicy_path, 0);
		lua_pop(L, 1);
	}
}
