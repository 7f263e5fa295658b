/*
 * lua_directory: indimail.directory.user/alias/domain/host(key), the
 * directory's answers for policies (directory_entry), from hooks only.
 * An answer the directory has at once (the cache, the configuration) is
 * returned without yielding; otherwise the lookup is counted in the call's
 * pending_ops, the coroutine yields and on_entry resumes it. A call that
 * ends while it waits (session closed, timeout) cancels the lookup. Never
 * a secret: directory_entry hands over none. A failure: nil, "tempfail: ...".
 */
#include <string.h>

#include "lua_api.h"
#include "lua_hook_int.h"

static const char *const entry_names[] = { "user", "alias", "domain", "host" };

void
hook_dir_cancel(struct hook_call *c)
{
	if (c->dirq == NULL)
		return;
	directory_cancel(c->dirq);
	c->dirq = NULL;
	c->pending_ops--;
}

void
hook_dir_release(struct hook_call *c)
{
	dir_entry_free(&c->dent);
	directory_put(c->dir);
	c->dir = NULL;
}

/* user.vacation = { subject=, message=, from=, until=, interval= }. */
static void
push_vacation(lua_State *L, const struct dir_vacation *v)
{
	lua_createtable(L, 0, 5);
	lua_pushstring(L, v->subject);	/* NULL: absent */
	lua_setfield(L, -2, "subject");
	lua_pushstring(L, v->message);
	lua_setfield(L, -2, "message");
	lua_pushinteger(L, (lua_Integer)v->from);
	lua_setfield(L, -2, "from");
	lua_pushinteger(L, (lua_Integer)v->until);
	lua_setfield(L, -2, "until");
	lua_pushinteger(L, (lua_Integer)v->interval);
	lua_setfield(L, -2, "interval");
	lua_setfield(L, -2, "vacation");
}

static void
push_user(lua_State *L, const struct dir_entry *e)
{
	static const struct { unsigned flag; const char *name; } f[] = {
		{ DIR_ENTRY_DISABLED, "disabled" },
		{ DIR_ENTRY_NO_SMTP, "no_smtp" },
		{ DIR_ENTRY_NO_RELAY, "no_relay" },
	};

	lua_createtable(L, 0, 7);
	lua_pushstring(L, e->address);
	lua_setfield(L, -2, "address");
	lua_pushinteger(L, (lua_Integer)e->quota);
	lua_setfield(L, -2, "quota");
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		lua_pushboolean(L, (e->flags & f[i].flag) != 0);
		lua_setfield(L, -2, f[i].name);
	}
	lua_pushstring(L, e->host);	/* NULL: nil, the field is absent */
	lua_setfield(L, -2, "host");
	if (e->vacation)		/* off: the field is absent */
		push_vacation(L, e->vacation);
}

static void
push_host(lua_State *L, const struct dir_entry *e)
{
	lua_createtable(L, 0, 3);
	lua_pushstring(L, e->host);
	lua_setfield(L, -2, "host");
	lua_pushstring(L, e->address);
	lua_setfield(L, -2, "address");
	lua_pushinteger(L, e->port);
	lua_setfield(L, -2, "port");
}

static void
push_found(lua_State *L, int kind, const struct dir_entry *e)
{
	if (kind == DIR_ENTRY_USER)
		push_user(L, e);
	else if (kind == DIR_ENTRY_HOST)
		push_host(L, e);
	else {
		lua_createtable(L, (int)e->ntargets, 0);
		for (size_t i = 0; i < e->ntargets; i++) {
			lua_pushstring(L, e->targets[i]);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
	}
}

/* Pushes the answer in c->dent on c->co and frees it; returns 1 or 2. */
static int
push_entry(struct hook_call *c)
{
	lua_State *L = c->co;
	int n = 1;

	if (c->dent.status == DIR_TEMPFAIL) {
		lua_pushnil(L);
		lua_pushfstring(L, "tempfail: directory %s lookup failed",
		    entry_names[c->dir_kind]);
		n = 2;
	} else if (c->dir_kind == DIR_ENTRY_DOMAIN)
		lua_pushboolean(L, c->dent.status == DIR_OK);
	else if (c->dent.status == DIR_OK)
		push_found(L, c->dir_kind, &c->dent);
	else
		lua_pushnil(L);
	dir_entry_free(&c->dent);
	return n;
}

static void
on_entry(void *arg)
{
	struct hook_call *c = arg;

	c->dirq = NULL;
	c->pending_ops--;
	c->push = push_entry;
	hook_resume(c);
}

/* The call running this coroutine, or an error naming the function. */
static struct hook_call *
dir_call(lua_State *L, int kind)
{
	struct hook_call *c = *(struct hook_call **)lua_getextraspace(L);

	if (c == NULL || c->co != L)
		luaL_error(L, "indimail.directory.%s can only be called from a "
		    "hook (not at load time, not in a nested coroutine)",
		    entry_names[kind]);
	return c;
}

static int
dir_lookup(lua_State *L, int kind, const char *key)
{
	struct hook_call *c = dir_call(L, kind);

	if (c->dir == NULL)
		c->dir = directory_get(hook_get_loop(), &c->main->cfg);
	c->dir_kind = kind;
	if (directory_entry(c->dir, kind, key, &c->dent, on_entry, c,
	    &c->dirq) == DIR_DONE)
		return push_entry(c);
	c->pending_ops++;
	return lua_yield(L, 0);
}

/* indimail.directory.user(address) -> {address=, quota=, vacation=, ...} | nil  (yields) */
static int
l_dir_user(lua_State *L)
{
	return dir_lookup(L, DIR_ENTRY_USER, luaL_checkstring(L, 1));
}

/* indimail.directory.alias(address) -> { target, ... } | nil  (yields) */
static int
l_dir_alias(lua_State *L)
{
	return dir_lookup(L, DIR_ENTRY_ALIAS, luaL_checkstring(L, 1));
}

/* indimail.directory.domain(name) -> true | false  (yields) */
static int
l_dir_domain(lua_State *L)
{
	return dir_lookup(L, DIR_ENTRY_DOMAIN, luaL_checkstring(L, 1));
}

/*
 * indimail.directory.host(address | user table | nil) -> {host=, address=,
 * port=} | nil  (yields); nil in, nil out: host(user(x)) needs no check.
 */
static int
l_dir_host(lua_State *L)
{
	dir_call(L, DIR_ENTRY_HOST);
	if (lua_isnoneornil(L, 1)) {
		lua_pushnil(L);
		return 1;
	}
	if (lua_istable(L, 1)) {
		lua_getfield(L, 1, "address");
		lua_replace(L, 1);
	}
	return dir_lookup(L, DIR_ENTRY_HOST, luaL_checkstring(L, 1));
}

void
lua_directory_open(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "user", l_dir_user }, { "alias", l_dir_alias },
		{ "domain", l_dir_domain }, { "host", l_dir_host },
		{ NULL, NULL },
	};

	lua_getglobal(L, "indimail");
	luaL_newlib(L, fns);
	lua_setfield(L, -2, "directory");
	lua_pop(L, 1);
}
