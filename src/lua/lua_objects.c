/*
 * lua_objects: the objects a hook is given. session, tx and tx.rcpts are
 * read-only userdata over a table: the configuration's state keeps the
 * session's for the whole session and the transaction's for the whole
 * transaction (the caller's refs, ctx->session_obj and ctx->tx_obj), and
 * brings them up to date at each stage; a domain's state, and the queue
 * manager, build them afresh for each stage. Reading works as on a table
 * (pairs, ipairs, #), writing any field raises an error naming it, but
 * for session.relay and tx.relay (a policy's relay grant, in the stages
 * that allow it). Their other writable parts are tables inside: tx.env
 * (read back after the hook, raw, and must stay names to single-line
 * strings) and session.notes / tx.notes (in the kept objects only, so
 * they last as long). msg is a userdata whose methods read the message
 * through src/mail/header.c and refuse to work once the stage is over.
 */
#include <string.h>
#include <strings.h>

#include "../mail/header.h"
#include "lua_hook_int.h"

struct msg_ud {
	struct hook_call *call;		/* NULL once the stage is over */
};

static void
setstr(lua_State *L, const char *k, const char *v)
{
	if (v) {
		lua_pushstring(L, v);
		lua_setfield(L, -2, k);
	}
}

/* t.k = v, or nil for NULL (a kept object's field that went). */
void
hook_set_string(lua_State *L, const char *k, const char *v)
{
	if (v)
		lua_pushstring(L, v);
	else
		lua_pushnil(L);
	lua_setfield(L, -2, k);
}

static void
setint(lua_State *L, const char *k, lua_Integer v)
{
	lua_pushinteger(L, v);
	lua_setfield(L, -2, k);
}

static void
setbool(lua_State *L, const char *k, int v)
{
	lua_pushboolean(L, v);
	lua_setfield(L, -2, k);
}

/* ---- read-only objects ------------------------------------------------ */

struct ro_obj {
	const char	*kind;		/* "session", "tx", "tx.rcpts" */
	const char *const *fields;	/* what it may hold, for the errors */
};

static const char *const session_fields[] = { "id", "ip", "port", "local_ip",
	"local_port", "listener", "helo", "esmtp", "tls", "tls_version",
	"tls_cipher", "auth_user", "relay", "notes", NULL };
static const char *const tx_fields[] = { "id", "sender", "rcpts",
	"size_hint", "env", "notes", "relay", "add_rcpt", "remove_rcpt",
	"set_rcpts", "set_sender", NULL };

/* Pushes the table behind object 1. [-0, +1] */
static void
ro_table(lua_State *L)
{
	luaL_checkudata(L, 1, "indimail.object");
	lua_getiuservalue(L, 1, 1);
}

/*
 * __index, run for every field a hook reads. It is reached only by
 * indexing an object of ro_wrap (the metatable cannot be read: __metatable
 * is false and there is no debug library), so it skips luaL_checkudata's
 * registry lookup by name.
 */
static int
ro_index(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TUSERDATA);
	lua_getiuservalue(L, 1, 1);
	lua_pushvalue(L, 2);
	lua_rawget(L, -2);
	return 1;
}

/* May this stage write session.relay (tx 0) or tx.relay (tx 1)? */
static int
relay_writable(enum hook_stage stage, int tx)
{
	if (tx)
		return stage == HOOK_MAIL;
	return stage <= HOOK_MAIL;	/* connect, helo, auth, mail */
}

/* Sets the relay field of the object behind registry ref. [-0, +0] */
static void
set_relay_field(lua_State *L, int ref, int on)
{
	if (ref == LUA_NOREF)
		return;
	lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
	lua_getiuservalue(L, -1, 1);
	lua_pushboolean(L, on);
	lua_setfield(L, -2, "relay");
	lua_pop(L, 2);
}

/*
 * session.relay = b / tx.relay = b: a policy grants (or takes back its own
 * grant of) relaying; both objects then read the effective answer.
 */
static int
relay_write(lua_State *L, const struct ro_obj *o)
{
	struct hook_call *c = hook_current_call();
	int tx = strcmp(o->kind, "tx") == 0, on;

	if (lua_type(L, 3) != LUA_TBOOLEAN)
		return luaL_error(L, "field 'relay' of %s must be true or "
		    "false, not %s", o->kind, luaL_typename(L, 3));
	if (c == NULL || c->ctx->relay_grant == NULL ||
	    !relay_writable(c->stage, tx))
		return luaL_error(L, "field 'relay' of %s can be set only in "
		    "the %s", o->kind, tx ? "mail stage" :
		    "connect, helo, auth and mail stages");
	on = c->ctx->relay_grant(c->ctx->relay_arg, tx, lua_toboolean(L, 3),
	    c->name);
	c->ctx->relay = on;
	set_relay_field(L, c->session_ref, on);
	set_relay_field(L, c->tx_ref, on);
	return 0;
}

static int
ro_newindex(lua_State *L)
{
	struct ro_obj *o = luaL_checkudata(L, 1, "indimail.object");
	const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) :
	    NULL;

	if (k && strcmp(k, "relay") == 0 && o->fields != NULL)
		return relay_write(L, o);
	for (size_t i = 0; k && o->fields && o->fields[i]; i++)
		if (strcmp(k, o->fields[i]) == 0)
			return luaL_error(L, "field '%s' of %s is read-only%s",
			    k, o->kind, strcmp(k, "notes") == 0 ? " (set "
			    "values inside it)" : "");
	if (o->fields == NULL)
		return luaL_error(L, "%s is read-only", o->kind);
	return luaL_error(L, "%s has no field '%s' (a hook's own values go "
	    "in %s.notes)", o->kind, k ? k : luaL_typename(L, 2), o->kind);
}

static int
ro_len(lua_State *L)
{
	ro_table(L);
	lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
	return 1;
}

/* The iterator of pairs(obj): next() over its table. */
static int
ro_next(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 2);
	if (lua_next(L, 1))
		return 2;
	lua_pushnil(L);
	return 1;
}

/* pairs(obj) -> ro_next, its table, nil */
static int
ro_pairs(lua_State *L)
{
	lua_pushcfunction(L, ro_next);
	ro_table(L);
	lua_pushnil(L);
	return 3;
}

static int
ro_tostring(lua_State *L)
{
	struct ro_obj *o = luaL_checkudata(L, 1, "indimail.object");

	lua_pushstring(L, o->kind);
	return 1;
}

/* Wraps the table on top of L in a read-only object. [-1, +1] */
static void
ro_wrap(lua_State *L, const char *kind, const char *const *fields)
{
	static const luaL_Reg mt[] = {
		{ "__index", ro_index }, { "__newindex", ro_newindex },
		{ "__len", ro_len }, { "__pairs", ro_pairs },
		{ "__tostring", ro_tostring }, { NULL, NULL },
	};
	struct ro_obj *o = lua_newuserdatauv(L, sizeof(*o), 1);

	o->kind = kind;
	o->fields = fields;
	if (luaL_newmetatable(L, "indimail.object")) {
		luaL_setfuncs(L, mt, 0);
		lua_pushboolean(L, 0);		/* getmetatable gives false */
		lua_setfield(L, -2, "__metatable");
	}
	lua_setmetatable(L, -2);
	lua_rotate(L, -2, 1);			/* table on top */
	lua_setiuservalue(L, -2, 1);
}

/* t.notes = a new table, for a kept object (it lives as long). [-0, +0] */
static void
set_notes(lua_State *L, int kept)
{
	if (kept) {
		lua_newtable(L);
		lua_setfield(L, -2, "notes");
	}
}

void
hook_ref_release(struct runtime *rt, int *ref)
{
	if (*ref != HOOK_NO_OBJECT)
		luaL_unref(rt->L, LUA_REGISTRYINDEX, *ref);
	*ref = HOOK_NO_OBJECT;
}

/* The fields of session that change during a session. [-0, +0] */
static void
session_update(lua_State *L, const struct hook_ctx *c)
{
	hook_set_string(L, "helo", c->helo);
	setbool(L, "esmtp", c->esmtp);
	setbool(L, "tls", c->tls);
	hook_set_string(L, "tls_version", c->tls_version);
	hook_set_string(L, "tls_cipher", c->tls_cipher);
	hook_set_string(L, "auth_user", c->auth_user);
	setbool(L, "relay", c->relay);
}

/* A new session object on top of L (kept: with notes). [-0, +1] */
static void
session_new(lua_State *L, const struct hook_ctx *c, int kept)
{
	lua_createtable(L, 0, 14);
	setstr(L, "id", c->session_id);
	setstr(L, "ip", c->ip);
	setint(L, "port", c->port);
	setstr(L, "local_ip", c->local_ip);
	setint(L, "local_port", c->local_port);
	setstr(L, "listener", c->listener);
	session_update(L, c);
	set_notes(L, kept);
	ro_wrap(L, "session", session_fields);
}

/*
 * The object built afresh (kept NULL: a new ref for the caller), or the
 * kept one made or brought up to date: *kept, made on first use.
 */
static int
kept_object(lua_State *L, const struct hook_ctx *c, int *kept,
    void (*make)(lua_State *, const struct hook_ctx *, int),
    void (*update)(lua_State *, const struct hook_ctx *))
{
	if (kept == NULL) {
		make(L, c, 0);
		return luaL_ref(L, LUA_REGISTRYINDEX);
	}
	if (*kept == HOOK_NO_OBJECT) {
		make(L, c, 1);
		*kept = luaL_ref(L, LUA_REGISTRYINDEX);
		return *kept;
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, *kept);
	lua_getiuservalue(L, -1, 1);	/* the table behind it */
	update(L, c);
	lua_pop(L, 2);
	return *kept;
}

int
hook_session_object(lua_State *L, const struct hook_ctx *c)
{
	return kept_object(L, c, c->session_obj, session_new, session_update);
}

/* t.rcpts = the ctx's recipients, read-only. [-0, +0] */
static void
set_rcpts(lua_State *L, const struct hook_ctx *c)
{
	lua_createtable(L, (int)c->nrcpts, 0);
	for (size_t i = 0; i < c->nrcpts; i++) {
		lua_pushstring(L, c->rcpts[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	ro_wrap(L, "tx.rcpts", NULL);
	lua_setfield(L, -2, "rcpts");
}

/*
 * A kept tx's rcpts (t on top) as the ctx's: the recipients accepted since
 * are appended; anything else (an edit by a domain's hook) makes a new
 * list. [-0, +0]
 */
static void
sync_rcpts(lua_State *L, const struct hook_ctx *c)
{
	size_t n, i;

	hook_rawfield(L, -1, "rcpts");
	lua_getiuservalue(L, -1, 1);
	n = lua_rawlen(L, -1);
	for (i = 0; i < n && i < c->nrcpts; i++) {
		int same = lua_rawgeti(L, -1, (lua_Integer)i + 1) ==
		    LUA_TSTRING && strcmp(lua_tostring(L, -1), c->rcpts[i]) == 0;
		lua_pop(L, 1);
		if (!same)
			break;
	}
	for (; i == n && i < c->nrcpts; i++, n++) {
		lua_pushstring(L, c->rcpts[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_pop(L, 2);
	if (i != n || n != c->nrcpts)
		set_rcpts(L, c);
}

/* t.env = the ctx's variables (a new table). [-0, +0] */
static void
set_env(lua_State *L, const struct hook_ctx *c)
{
	lua_createtable(L, 0, c->env ? (int)c->env->n : 0);
	for (size_t i = 0; c->env && i < c->env->n; i++)
		setstr(L, c->env->key[i], c->env->val[i]);
	lua_setfield(L, -2, "env");
}

/* Does the table on top hold exactly the ctx's variables? [-0, +0] */
static int
env_same(lua_State *L, const struct envvars *e)
{
	size_t n = 0, i;
	int same = 1;

	lua_pushnil(L);
	while (same && lua_next(L, -2)) {
		same = lua_type(L, -2) == LUA_TSTRING &&
		    lua_type(L, -1) == LUA_TSTRING;
		for (i = 0; same && i < e->n; i++)
			if (strcmp(e->key[i], lua_tostring(L, -2)) == 0)
				break;
		same = same && i < e->n &&
		    strcmp(e->val[i], lua_tostring(L, -1)) == 0;
		n++;
		lua_pop(L, same ? 1 : 2);
	}
	return same && n == e->n;
}

/* A kept tx's env (t on top): kept while it holds the ctx's. [-0, +0] */
static void
sync_env(lua_State *L, const struct hook_ctx *c)
{
	static const struct envvars none = { NULL, NULL, 0 };
	int same;

	hook_rawfield(L, -1, "env");
	same = lua_type(L, -1) == LUA_TTABLE &&
	    env_same(L, c->env ? c->env : &none);
	lua_pop(L, 1);
	if (!same)
		set_env(L, c);
}

/* The fields of tx that change during a transaction. [-0, +0] */
static void
tx_update(lua_State *L, const struct hook_ctx *c)
{
	hook_set_string(L, "id", c->queue_id);
	hook_set_string(L, "sender", c->sender);
	setbool(L, "relay", c->relay);
	if (c->size_hint)
		setint(L, "size_hint", (lua_Integer)c->size_hint);
	else {
		lua_pushnil(L);
		lua_setfield(L, -2, "size_hint");
	}
	sync_rcpts(L, c);
	sync_env(L, c);
}

void
hook_tx_refresh(lua_State *L, struct hook_call *c)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->tx_ref);
	lua_getiuservalue(L, -1, 1);	/* the table behind tx */
	lua_pushstring(L, c->ctx->sender ? c->ctx->sender : "");
	lua_setfield(L, -2, "sender");
	set_rcpts(L, c->ctx);
	lua_pop(L, 2);
}

/* A new tx object on top of L (kept: with notes). [-0, +1] */
static void
tx_new(lua_State *L, const struct hook_ctx *c, int kept)
{
	lua_createtable(L, 0, 12);
	setstr(L, "id", c->queue_id);
	setstr(L, "sender", c->sender);
	setbool(L, "relay", c->relay);
	if (c->size_hint)
		setint(L, "size_hint", (lua_Integer)c->size_hint);
	set_rcpts(L, c);
	hook_edit_tx_methods(L);	/* they raise outside data and message */
	set_env(L, c);
	set_notes(L, kept);
	ro_wrap(L, "tx", tx_fields);
}

int
hook_tx_object(lua_State *L, const struct hook_ctx *c)
{
	return kept_object(L, c, c->tx_obj, tx_new, tx_update);
}

const char *
hook_read_env(lua_State *L, struct hook_call *c)
{
	struct envvars fresh = { NULL, NULL, 0 };
	const char *err = NULL;

	if (c->ctx->env == NULL || c->tx_ref == LUA_NOREF)
		return NULL;
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->tx_ref);
	lua_getiuservalue(L, -1, 1);	/* the table behind tx */
	lua_remove(L, -2);
	hook_rawfield(L, -1, "env");
	if (!lua_istable(L, -1)) {
		lua_pop(L, 2);
		return "tx.env must stay a table";
	}
	if (env_same(L, c->ctx->env)) {	/* the hook left it as it was */
		lua_pop(L, 2);
		return NULL;
	}
	lua_pushnil(L);
	while (err == NULL && lua_next(L, -2)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ?
		    lua_tostring(L, -2) : NULL;
		const char *v = (lua_type(L, -1) == LUA_TSTRING ||
		    lua_type(L, -1) == LUA_TNUMBER) ? lua_tostring(L, -1) :
		    lua_type(L, -1) == LUA_TBOOLEAN ?
		    (lua_toboolean(L, -1) ? "1" : "0") : NULL;
		if (k == NULL || v == NULL || k[strcspn(k, "=\r\n \t")] ||
		    v[strcspn(v, "\r\n")] || strlen(v) != lua_rawlen(L, -1))
			err = "tx.env keys must be names and values single-line strings";
		else
			envvars_set(&fresh, k, v);
		lua_pop(L, 1);
	}
	lua_pop(L, err ? 3 : 2);	/* key left by the interrupted lua_next */
	if (err) {
		envvars_free(&fresh);
		return err;
	}
	envvars_free(c->ctx->env);
	*c->ctx->env = fresh;
	return NULL;
}

/* ---- message object: header(name), headers(), text(), body(), size() --- */

struct hook_call *
hook_msg_call(lua_State *L)
{
	struct msg_ud *m = luaL_checkudata(L, 1, "indimail.message");

	if (m->call == NULL)
		luaL_error(L, "message object used after its hook finished");
	return m->call;
}

/*
 * Pushes a field's value unfolded and trimmed. The value is built in a
 * luaL_Buffer, so a memory error raised by Lua leaks nothing.
 */
static void
push_value(lua_State *L, const struct header_field *f)
{
	luaL_Buffer b;
	char *p = luaL_buffinitsize(L, &b, f->value_len);

	luaL_pushresultsize(&b, header_unfold(p, f->value, f->value_len));
}

/* msg:header(name) -> value or nil (first match, case-insensitive) */
static int
m_header(lua_State *L)
{
	struct hook_call *c = hook_msg_call(L);
	size_t want, pos = 0;
	const char *w = luaL_checklstring(L, 2, &want);
	struct header_field f;

	while (header_next(c->ctx->message->data, c->ctx->header_len, &pos, &f))
		if (header_name_is(&f, w, want)) {
			push_value(L, &f);
			return 1;
		}
	lua_pushnil(L);
	return 1;
}

/* msg:headers() -> { {name=, value=}, ... } in message order */
static int
m_headers(lua_State *L)
{
	struct hook_call *c = hook_msg_call(L);
	const char *m = c->ctx->message->data;
	size_t pos = 0;
	struct header_field f;
	lua_Integer i = 0;

	lua_newtable(L);
	while (header_next(m, c->ctx->header_len, &pos, &f)) {
		lua_createtable(L, 0, 2);
		lua_pushlstring(L, f.name, f.name_len);
		lua_setfield(L, -2, "name");
		push_value(L, &f);
		lua_setfield(L, -2, "value");
		lua_rawseti(L, -2, ++i);
	}
	return 1;
}

/* msg:text() -> the whole message (message stage only) */
static int
m_text(lua_State *L)
{
	struct hook_call *c = hook_msg_call(L);

	if (c->stage != HOOK_MESSAGE)
		return luaL_error(L, "msg:text() is only available in the message hook");
	lua_pushlstring(L, c->ctx->message->data, c->ctx->message->len);
	return 1;
}

/* msg:body() -> the body after the blank line (message stage only) */
static int
m_body(lua_State *L)
{
	struct hook_call *c = hook_msg_call(L);
	size_t h = c->ctx->header_len;
	const struct buf *m = c->ctx->message;

	if (c->stage != HOOK_MESSAGE)
		return luaL_error(L, "msg:body() is only available in the message hook");
	if (h < m->len && m->data[h] == '\n')
		h++;
	lua_pushlstring(L, m->data + h, m->len > h ? m->len - h : 0);
	return 1;
}

/* msg:size() -> bytes received so far */
static int
m_size(lua_State *L)
{
	struct hook_call *c = hook_msg_call(L);

	lua_pushinteger(L, (lua_Integer)c->ctx->message->len);
	return 1;
}

int
hook_make_msg(lua_State *L, struct hook_call *c)
{
	static const luaL_Reg methods[] = {
		{ "header", m_header }, { "headers", m_headers },
		{ "text", m_text }, { "body", m_body }, { "size", m_size },
		{ NULL, NULL },
	};
	struct msg_ud *m = lua_newuserdatauv(L, sizeof(*m), 0);

	m->call = c;
	if (luaL_newmetatable(L, "indimail.message")) {
		luaL_newlib(L, methods);
		hook_edit_msg_methods(L);
		hook_dkim_msg_methods(L);
		lua_setfield(L, -2, "__index");
	}
	lua_setmetatable(L, -2);
	return luaL_ref(L, LUA_REGISTRYINDEX);
}

void
hook_msg_detach(lua_State *L, int ref)
{
	struct msg_ud *m;

	if (ref == LUA_NOREF)
		return;
	lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
	m = lua_touserdata(L, -1);
	m->call = NULL;
	lua_pop(L, 1);
}
