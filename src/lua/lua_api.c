/*
 * lua_api: registration side of the Lua API. Hooks are kept in
 * registry["indimail.hooks"][stage] as an ordered list of {name=, fn=};
 * they run in that order and the first verdict other than "go on" wins.
 */
#include <ctype.h>
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "lua_api.h"
#include "lua_counter.h"
#include "lua_hook_int.h"
#include "lua_runtime.h"
#include "lua_sandbox.h"

#ifndef INDIMAIL_LUA_DIR
#define INDIMAIL_LUA_DIR "/usr/share/indimail/lua"
#endif

static struct runtime *
get_runtime(lua_State *L)
{
	struct runtime *rt;

	lua_getfield(L, LUA_REGISTRYINDEX, "indimail.runtime");
	rt = lua_touserdata(L, -1);
	lua_pop(L, 1);
	return rt;
}

static const char *
lua_dir(struct runtime *rt)
{
	return rt->cfg.lua_dir ? rt->cfg.lua_dir : INDIMAIL_LUA_DIR;
}

static int
stage_index(const char *s)
{
	for (int i = 0; i < HOOK_NSTAGES; i++)
		if (strcmp(s, hook_stage_name(i)) == 0)
			return i;
	return -1;
}

/* "connect, helo, ..., route": every stage, for error messages. */
static const char *
stage_list(void)
{
	static char list[128];

	if (list[0] == '\0')
		for (int i = 0; i < HOOK_NSTAGES; i++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list),
			    "%s%s", i ? ", " : "", hook_stage_name(i));
	return list;
}

/* Appends {name=, fn=} to the stage list. Stack effect: (fn) -> () */
static void
add_hook(lua_State *L, int stage, const char *name)
{
	lua_getfield(L, LUA_REGISTRYINDEX, "indimail.hooks");
	lua_getfield(L, -1, hook_stage_name(stage));
	lua_createtable(L, 0, 2);
	lua_pushstring(L, name);
	lua_setfield(L, -2, "name");
	lua_pushvalue(L, -4);
	lua_setfield(L, -2, "fn");
	lua_rawseti(L, -2, luaL_len(L, -2) + 1);
	lua_pop(L, 3);
}

/* indimail.config{...} -> () */
static int
l_config(lua_State *L)
{
	struct runtime *rt = get_runtime(L);

	if (rt->domain)
		return luaL_error(L, "indimail.config{} is not available in "
		    "the rules of a domain");
	lua_getfield(L, LUA_REGISTRYINDEX, "indimail.configured");
	if (lua_toboolean(L, -1))
		return luaL_error(L, "indimail.config{} may be called only once");
	lua_pop(L, 1);
	lua_config_read(L, &rt->cfg);
	lua_pushboolean(L, 1);
	lua_setfield(L, LUA_REGISTRYINDEX, "indimail.configured");
	/* policies may require() helpers from lua/stdlib */
	lua_getglobal(L, "package");
	lua_pushfstring(L, "%s/stdlib/?.lua;", lua_dir(rt));
	lua_getfield(L, -2, "path");
	lua_concat(L, 2);
	lua_setfield(L, -2, "path");
	lua_pop(L, 1);
	return 0;
}

/* indimail.hook(stage, fn [, name]) -> () */
static int
l_hook(lua_State *L)
{
	const char *stage = luaL_checkstring(L, 1);
	const char *name = luaL_optstring(L, 3, "config");
	int s = stage_index(stage);

	luaL_checktype(L, 2, LUA_TFUNCTION);
	sandbox_check_loading(L, "indimail.hook");
	if (s < 0)
		return luaL_error(L, "unknown hook stage '%s' (stages are %s)",
		    stage, stage_list());
	lua_pushvalue(L, 2);
	add_hook(L, s, name);
	return 0;
}

/*
 * Every function of a policy's hook table t is a stage or setup, and every
 * stage is a function: a misspelt "rctp" would otherwise never run. The
 * error names the function's own file and line. Stack effect: none.
 */
static void
policy_check_stages(lua_State *L, int t, const char *policy)
{
	lua_Debug ar;

	lua_pushnil(L);
	while (lua_next(L, t)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ?
		    lua_tostring(L, -2) : NULL;
		int s = k ? stage_index(k) : -1;
		if (k && s >= 0 && !lua_isfunction(L, -1))
			luaL_error(L, "policy '%s': hook '%s' must be a "
			    "function, not a %s", policy, k, luaL_typename(L, -1));
		if (k && s < 0 && strcmp(k, "setup") != 0 &&
		    lua_isfunction(L, -1)) {
			lua_pushvalue(L, -1);
			lua_getinfo(L, ">S", &ar);
			luaL_error(L, "policy '%s': unknown hook stage '%s' "
			    "(function at %s:%d; stages are %s)", policy, k,
			    ar.short_src, ar.linedefined, stage_list());
		}
		lua_pop(L, 1);
	}
}

/*
 * Pushes the file of policy name: the first policy_path folder holding
 * NAME.lua (logged: a site's file replaces the shipped one), else
 * lua_dir/policies/NAME.lua. [-0, +1]
 */
static const char *
policy_file(lua_State *L, struct runtime *rt, const char *name)
{
	const char *file = NULL;

	for (size_t i = 0; i < rt->cfg.npolicy_path && file == NULL; i++) {
		file = lua_pushfstring(L, "%s/%s.lua", rt->cfg.policy_path[i],
		    name);
		if (access(file, R_OK) != 0) {
			lua_pop(L, 1);
			file = NULL;
		}
	}
	if (file != NULL)
		log_event(LOG_INFO, "policy_file", "policy=%s file=%s", name,
		    file);
	else
		file = lua_pushfstring(L, "%s/policies/%s.lua", lua_dir(rt),
		    name);
	return file;
}

/* indimail.policy(name [, settings]) -> () */
static int
l_policy(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	struct runtime *rt = get_runtime(L);

	for (const char *p = name; *p; p++)
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) &&
		    *p != '_')
			return luaL_error(L, "bad policy name '%s'", name);
	sandbox_check_loading(L, "indimail.policy");
	if (lua_isnoneornil(L, 2)) {
		lua_settop(L, 1);
		lua_newtable(L);
	}
	luaL_checktype(L, 2, LUA_TTABLE);
	policy_file(L, rt, name);
	if (luaL_loadfilex(L, lua_tostring(L, -1), "t") != LUA_OK)
		return luaL_error(L, "policy '%s': %s", name, lua_tostring(L, -1));
	lua_check_note_source(L, lua_tostring(L, -2));
	lua_call(L, 0, 1);			/* P */
	if (!lua_istable(L, -1))
		return luaL_error(L, "policy '%s' must return a table", name);
	lua_getfield(L, -1, "setup");
	if (lua_isfunction(L, -1)) {
		lua_pushvalue(L, 2);
		lua_call(L, 1, 1);
		if (lua_istable(L, -1))
			lua_replace(L, -2);	/* setup returned the hooks */
		else
			lua_pop(L, 1);
	} else
		lua_pop(L, 1);
	if (lua_api_add_stages(L, lua_gettop(L), name) == 0)
		return luaL_error(L, "policy '%s' defines no hook", name);
	return 0;
}

int
lua_api_add_stages(lua_State *L, int t, const char *name)
{
	int found = 0;

	t = lua_absindex(L, t);
	policy_check_stages(L, t, name);
	for (int s = 0; s < HOOK_NSTAGES; s++) {
		lua_getfield(L, t, hook_stage_name(s));
		if (lua_isfunction(L, -1)) {
			add_hook(L, s, name);
			found++;
		} else
			lua_pop(L, 1);
	}
	return found;
}

/* Builds {action=, code=, status=, text=}. */
static int
verdict(lua_State *L, const char *action, int defcode, const char *defstatus,
    const char *deftext)
{
	const char *text = luaL_optstring(L, 1, deftext);
	lua_Integer code = luaL_optinteger(L, 2, defcode);
	const char *status = luaL_optstring(L, 3, defstatus);
	const char *why;

	if (defcode >= 400 && (why = hook_verdict_check(defcode / 100, code,
	    status, text)) != NULL)
		return luaL_error(L, "indimail.%s('%s', %d, '%s'): %s", action,
		    text, (int)code, status, why);
	lua_createtable(L, 0, 4);
	lua_pushstring(L, action);
	lua_setfield(L, -2, "action");
	lua_pushinteger(L, code);
	lua_setfield(L, -2, "code");
	lua_pushstring(L, status);
	lua_setfield(L, -2, "status");
	lua_pushstring(L, text);
	lua_setfield(L, -2, "text");
	return 1;
}

/* indimail.reject([text [, code [, status]]]) -> verdict */
static int
l_reject(lua_State *L)
{
	return verdict(L, "reject", 550, "5.7.1", "Rejected by policy");
}

/* indimail.tempfail([text [, code [, status]]]) -> verdict */
static int
l_tempfail(lua_State *L)
{
	return verdict(L, "tempfail", 451, "4.7.1", "Try again later");
}

/* indimail.accept() / indimail.discard() -> verdict */
static int
l_accept(lua_State *L)
{
	lua_settop(L, 0);
	return verdict(L, "accept", 250, "2.0.0", "Ok");
}

static int
l_discard(lua_State *L)
{
	lua_settop(L, 0);
	return verdict(L, "discard", 250, "2.0.0", "Ok");
}

/* Builds {action=, text=reason}. */
static void
held_verdict(lua_State *L, const char *action, const char *why)
{
	lua_createtable(L, 0, 3);
	lua_pushstring(L, action);
	lua_setfield(L, -2, "action");
	lua_pushstring(L, why);
	lua_setfield(L, -2, "text");
}

/* indimail.hold([reason]) -> {action="hold", text=reason} */
static int
l_hold(lua_State *L)
{
	held_verdict(L, "hold", luaL_optstring(L, 1, "by policy"));
	return 1;
}

/* indimail.quarantine(address [, reason]) -> verdict */
static int
l_quarantine(lua_State *L)
{
	const char *addr = luaL_checkstring(L, 1);

	held_verdict(L, "quarantine", luaL_optstring(L, 2, "by policy"));
	lua_pushstring(L, addr);
	lua_setfield(L, -2, "address");
	return 1;
}

/* indimail.tarpit(seconds) -> {action="tarpit", delay=seconds} */
static int
l_tarpit(lua_State *L)
{
	lua_Number d = luaL_checknumber(L, 1);

	lua_createtable(L, 0, 2);
	lua_pushstring(L, "tarpit");
	lua_setfield(L, -2, "action");
	lua_pushnumber(L, d);
	lua_setfield(L, -2, "delay");
	return 1;
}

/* Builds {action="route", route=kind, ...}. */
static int
route_verdict(lua_State *L, const char *kind)
{
	lua_createtable(L, 0, 7);
	lua_pushstring(L, "route");
	lua_setfield(L, -2, "action");
	lua_pushstring(L, kind);
	lua_setfield(L, -2, "route");
	return 1;
}

/* indimail.route_local() / indimail.route_mx() -> verdict */
static int
l_route_local(lua_State *L)
{
	return route_verdict(L, "local");
}

static int
l_route_mx(lua_State *L)
{
	return route_verdict(L, "mx");
}

/* A bad opts.timeouts raises, naming the field. [-0, +0] */
static void
check_route_timeouts(lua_State *L, int opts)
{
	struct client_timeouts to;
	const char *err, *key;

	if (!lua_istable(L, opts))
		return;
	lua_getfield(L, opts, "timeouts");
	if ((err = hook_route_timeouts(L, -1, &to, &key)) != NULL)
		luaL_error(L, "indimail.route_relay: timeouts%s%s %s",
		    key ? "." : "", key ? key : "", err);
	lua_pop(L, 1);
}

/*
 * indimail.route_relay(host, port [, {auth_user=, auth_password=, tls=,
 * auth_plaintext=, timeouts=}])
 */
static const char *const route_relay_opts[] = { "auth_user",
	"auth_password", "tls", "auth_plaintext", "timeouts", NULL };

void
hook_check_opts(lua_State *L, int t, const char *fn, const char *const *names)
{
	for (lua_pushnil(L); lua_next(L, t) != 0; lua_pop(L, 1)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ?
		    lua_tostring(L, -2) : NULL;
		size_t i = 0;

		while (k && names[i] && strcmp(k, names[i]) != 0)
			i++;
		if (k == NULL || names[i] == NULL)
			luaL_error(L, "%s: unknown option %s", fn,
			    k ? k : luaL_typename(L, -2));
	}
}

static int
l_route_relay(lua_State *L)
{
	const char *host = luaL_checkstring(L, 1);
	lua_Integer port = luaL_optinteger(L, 2, 25);

	if (lua_istable(L, 3))
		hook_check_opts(L, 3, "indimail.route_relay", route_relay_opts);
	check_route_timeouts(L, 3);
	route_verdict(L, "relay");
	lua_pushstring(L, host);
	lua_setfield(L, -2, "host");
	lua_pushinteger(L, port);
	lua_setfield(L, -2, "port");
	if (lua_istable(L, 3))
		for (size_t i = 0; route_relay_opts[i]; i++) {
			lua_getfield(L, 3, route_relay_opts[i]);
			lua_setfield(L, -2, route_relay_opts[i]);
		}
	return 1;
}

/*
 * indimail.log(event [, fields]) -> () ; fields: table of key=value. From
 * a hook the line starts with the session id and, once known, the qid.
 */
static int
l_log(lua_State *L)
{
	const char *event = luaL_checkstring(L, 1);
	const struct hook_ctx *ctx;
	struct logline l;

	log_begin(&l, LOG_INFO, event);
	if ((ctx = hook_current_ctx()) != NULL) {	/* grep one story */
		if (ctx->session_id)
			log_kv(&l, "session", ctx->session_id);
		if (ctx->queue_id)
			log_kv(&l, "qid", ctx->queue_id);
	}
	if (lua_istable(L, 2)) {
		lua_pushnil(L);
		while (lua_next(L, 2)) {
			if (lua_type(L, -2) == LUA_TSTRING) {
				size_t n;
				const char *v = luaL_tolstring(L, -1, &n);
				log_kvn(&l, lua_tostring(L, -3), v, n);
				lua_pop(L, 1);
			}
			lua_pop(L, 1);
		}
	}
	log_end(&l);
	return 0;
}

void
lua_api_open(lua_State *L, struct runtime *rt)
{
	static const luaL_Reg fns[] = {
		{ "config", l_config }, { "hook", l_hook },
		{ "policy", l_policy }, { "reject", l_reject },
		{ "tempfail", l_tempfail }, { "accept", l_accept },
		{ "discard", l_discard }, { "log", l_log },
		{ "route_local", l_route_local }, { "route_mx", l_route_mx },
		{ "route_relay", l_route_relay }, { "hold", l_hold },
		{ "quarantine", l_quarantine }, { "tarpit", l_tarpit },
		{ NULL, NULL },
	};

	lua_pushlightuserdata(L, rt);
	lua_setfield(L, LUA_REGISTRYINDEX, "indimail.runtime");
	lua_createtable(L, 0, HOOK_NSTAGES);
	for (int s = 0; s < HOOK_NSTAGES; s++) {
		lua_newtable(L);
		lua_setfield(L, -2, hook_stage_name(s));
	}
	lua_setfield(L, LUA_REGISTRYINDEX, "indimail.hooks");
	luaL_newlib(L, fns);
	lua_setglobal(L, "indimail");
	lua_hook_api_open(L);
	lua_counter_open(L);
	lua_regex_open(L);
	lua_directory_open(L);
	lua_spf_open(L);
	lua_dkim_open(L);
	lua_dmarc_open(L);
	lua_clamd_open(L);
	lua_bogofilter_open(L);
	lua_rspamd_open(L);
	lua_submit_open(L);
	lua_authres_open(L);
}

int
lua_api_finish(lua_State *L, struct runtime *rt, struct buf *err)
{
	(void)rt;
	lua_getfield(L, LUA_REGISTRYINDEX, "indimail.configured");
	if (!lua_toboolean(L, -1)) {
		lua_pop(L, 1);
		buf_printf(err, "%s: the file never calls indimail.config{...}",
		    rt->path);
		return -1;
	}
	lua_pop(L, 1);
	return 0;
}
