/*
 * lua_api: the `indimail` table seen by etc/indimail.lua and policies:
 * config{}, policy(name, settings), hook(stage, fn [, name]), the verdict
 * makers accept/reject/tempfail/discard, log(event, fields), dns.lookup
 * (which yields; see lua_hook.c) and regex.compile (lua_regex.c).
 */
#ifndef INDIMAIL_LUA_API_H
#define INDIMAIL_LUA_API_H

#include <lua.h>

#include "../lib/buf.h"
#include "../mail/config.h"

struct runtime;

void	lua_api_open(lua_State *, struct runtime *);
int	lua_api_finish(lua_State *, struct runtime *, struct buf *err);
/*
 * Registers the stage functions of the hook table at t under name (a
 * policy's, a domain file's); raises on a misspelt stage. Returns how many.
 */
int	lua_api_add_stages(lua_State *, int t, const char *name);
int	lua_config_parse(lua_State *, struct config *);
void	lua_hook_api_open(lua_State *);	/* adds indimail.dns.* */
void	lua_regex_open(lua_State *);	/* adds indimail.regex.* */
void	lua_directory_open(lua_State *);	/* adds indimail.directory.* */
void	lua_spf_open(lua_State *);	/* adds indimail.spf.* */
void	lua_dkim_open(lua_State *);	/* adds indimail.dkim.* */
void	lua_dmarc_open(lua_State *);	/* adds indimail.dmarc.* */
void	lua_clamd_open(lua_State *);	/* adds indimail.clamd.scan */
void	lua_bogofilter_open(lua_State *);	/* indimail.bogofilter.classify */
void	lua_rspamd_open(lua_State *);	/* adds indimail.rspamd.check */
void	lua_submit_open(lua_State *);	/* adds indimail.submit */
void	lua_authres_open(lua_State *);	/* adds indimail.authres.parse */
int	lua_authres_parse(lua_State *);	/* it (testmod.c loads it too) */
/* lua_check.c: lua_config_parse of the table at index 1, protected, whose
 * "bad config" error is raised as FILE:LINE of the offending key. */
void	lua_config_read(lua_State *, struct config *);
/* lua_check_report.c: this load notes its problems in r and goes on. */
struct check_report;
void	lua_check_collect(lua_State *, struct check_report *r);
/* lua_check.c: a policy file runtime_check reads too. */
void	lua_check_note_source(lua_State *, const char *path);

#endif
