/*
 * lua_config_domains: the keys of issue 11's per-domain rules and site
 * policies: domain_rules = "folder" (one DOMAIN.lua each, lua_domain.c),
 * domain_rules_limits = { instructions=, memory= } (each domain file's own
 * budgets) and policy_path = { "dir", ... } (searched by indimail.policy
 * before lua_dir/policies).
 */
#include "lua_config_int.h"

static void
cfg_domain_limits(lua_State *L, int t, struct config *c)
{
	static const char *keys[] = { "instructions", "memory", NULL };

	cfg_check_keys(L, t, "domain_rules_limits", keys);
	cfg_set_number(L, t, "instructions", "domain_rules_limits.instructions",
	    1000, 1e12, 1, &c->domain_instructions, 2);
	cfg_set_number(L, t, "memory", "domain_rules_limits.memory", 1 << 18,
	    1e12, 1, &c->domain_memory, 1);
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
