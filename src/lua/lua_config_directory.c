/*
 * lua_config_directory: the directory = { backend=, path=, cache_ttl=,
 * negative_ttl= } section: which backend holds users and aliases
 * ("config", the default: mailboxes.users and mailboxes.aliases; or
 * "sqlite", a database file made by `indimail domain add`), and how long
 * the front caches a backend's answers (seconds; docs/directory.md).
 */
#include <lauxlib.h>
#include <stdlib.h>

#include "lua_config_int.h"

void
cfg_directory(lua_State *L, int t, struct directory_conf *d)
{
	static const char *keys[] = { "backend", "path", "cache_ttl",
	    "negative_ttl", NULL };
	static const struct choice backends[] = {
	    { "config", DIRECTORY_CONFIG }, { "sqlite", DIRECTORY_SQLITE },
	    { NULL, 0 } };
	char *name;

	cfg_check_keys(L, t, "directory", keys);
	if ((name = cfg_opt_string(L, t, "backend", "directory.backend"))) {
		lua_pushstring(L, name);	/* anchored: name can go */
		free(name);
		d->backend = cfg_choose(L, lua_tostring(L, -1),
		    "directory.backend", backends,
		    "must be \"config\" or \"sqlite\"");
		lua_pop(L, 1);
	}
	cfg_set_string(L, t, "path", "directory.path", &d->path);
	cfg_set_number(L, t, "cache_ttl", "directory.cache_ttl", 0, 86400,
	    1000, &d->cache_ttl_ms, 0);
	cfg_set_number(L, t, "negative_ttl", "directory.negative_ttl", 0,
	    86400, 1000, &d->negative_ttl_ms, 0);
	if (d->backend == DIRECTORY_SQLITE && d->path == NULL)
		cfg_bad(L, "directory.path", "is required for backend "
		    "\"sqlite\"");
}
