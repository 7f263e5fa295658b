/*
 * lua_edit: the methods that edit a message before it is queued, for the
 * hooks of the data and message stages. msg:add_header, remove_header,
 * replace_header, append_text and filter_body record into the session's
 * msg_edit (src/mail/msg_edit.c, mime_text.c, body_filter.c); tx:add_rcpt, remove_rcpt,
 * set_rcpts and set_sender ask the session (struct hook_tx_edit), which
 * keeps the envelope ceiling. Nothing is applied here: the queue write
 * applies it all, so the edited message is what becomes durable. A bad
 * argument or a refused edit raises an error (the hook's 451).
 */
#include <string.h>
#include <strings.h>

#include "../lib/log.h"
#include "../mail/body_filter.h"
#include "../mail/mime_text.h"
#include "../mail/msg_edit.h"
#include "lua_hook_int.h"

/* Raises unless the call's stage may edit (append_text: message only). */
static void
check_stage(lua_State *L, struct hook_call *c, const char *what, int body)
{
	if (c->stage == HOOK_MESSAGE || (!body && c->stage == HOOK_DATA))
		return;
	luaL_error(L, "%s cannot be used in the %s hook (%s)", what,
	    hook_stage_name(c->stage), body ? "message hook only" :
	    "data and message hooks only");
}

/* One "edit" line per edit: kind, then what it named. */
static void
log_edit(struct hook_call *c, const char *kind, const char *k,
    const char *v, long long count)
{
	struct logline l;

	log_begin(&l, LOG_INFO, "edit");
	log_kv(&l, "session", c->ctx->session_id);
	if (c->ctx->queue_id)
		log_kv(&l, "qid", c->ctx->queue_id);
	log_kv(&l, "policy", c->name);
	log_kv(&l, "kind", kind);
	if (k && v)
		log_kv(&l, k, v);
	if (count >= 0)
		log_kvi(&l, "count", count);
	log_end(&l);
}

/* The message hook's call, checked for stage, and arg 2 as a header name. */
static struct hook_call *
msg_edit_call(lua_State *L, const char *what, const char **name, size_t *n)
{
	struct hook_call *c = hook_msg_call(L);
	const char *err;

	check_stage(L, c, what, 0);
	*name = luaL_checklstring(L, 2, n);
	if ((err = msg_edit_check_name(*name, *n)) != NULL)
		luaL_error(L, "%s: %s", what, err);
	return c;
}

static const char *
check_value(lua_State *L, const char *what, size_t *n)
{
	const char *v = luaL_checklstring(L, 3, n), *err;

	if ((err = msg_edit_check_value(v, *n)) != NULL)
		luaL_error(L, "%s: %s", what, err);
	return v;
}

/* msg:add_header(name, value [, "prepend"|"append"|"trace"]) -> () */
static int
m_add_header(lua_State *L)
{
	static const char *const where[] = { "prepend", "append", "trace",
	    NULL };
	static const char *const event[] = { "header_prepend",
	    "header_append", "header_trace" };
	size_t n, vn;
	const char *name, *v, *err;
	struct hook_call *c = msg_edit_call(L, "msg:add_header()", &name, &n);
	int pos;

	v = check_value(L, "msg:add_header()", &vn);
	pos = luaL_checkoption(L, 4, "prepend", where);
	err = pos == 2 ? msg_edit_add_trace(c->ctx->edit, name, n, v, vn) :
	    msg_edit_add(c->ctx->edit, c->ctx->message->data,
	    c->ctx->header_len, name, n, v, vn, pos == 1);
	if (err)
		return luaL_error(L, "msg:add_header(): %s", err);
	log_edit(c, event[pos], "name", name, -1);
	return 0;
}

/* msg:remove_header(name) -> count */
static int
m_remove_header(lua_State *L)
{
	size_t n, count;
	const char *name;
	struct hook_call *c = msg_edit_call(L, "msg:remove_header()", &name, &n);

	msg_edit_remove(c->ctx->edit, c->ctx->message->data,
	    c->ctx->header_len, name, n, &count);
	log_edit(c, "header_remove", "name", name, (long long)count);
	lua_pushinteger(L, (lua_Integer)count);
	return 1;
}

/* msg:replace_header(name, value) -> how many there were (0: added) */
static int
m_replace_header(lua_State *L)
{
	size_t n, vn, count;
	const char *name, *v, *err;
	struct hook_call *c = msg_edit_call(L, "msg:replace_header()", &name,
	    &n);

	v = check_value(L, "msg:replace_header()", &vn);
	err = msg_edit_replace(c->ctx->edit, c->ctx->message->data,
	    c->ctx->header_len, name, n, v, vn, &count);
	if (err)
		return luaL_error(L, "msg:replace_header(): %s", err);
	log_edit(c, "header_replace", "name", name, (long long)count);
	lua_pushinteger(L, (lua_Integer)count);
	return 1;
}

/* Renders and records the insertion at each point; returns how many. */
static size_t
insert_points(lua_State *L, struct hook_call *c, const struct mime_text *mt,
    const char *text, const char *html)
{
	const struct buf *m = c->ctx->message;
	struct buf t = BUF_INIT;
	const char *err = NULL;
	size_t done = 0;

	if (c->ctx->edit->nins + mt->n > MSG_EDIT_INSERTS_MAX)
		err = "a message takes at most 16 body insertions";
	for (size_t i = 0; err == NULL && i < mt->n; i++, done++) {
		buf_clear(&t);
		mime_text_render(&mt->pt[i], m->data, m->len, text, html, &t);
		err = msg_edit_insert(c->ctx->edit, mt->pt[i].off, t.data, t.len);
	}
	buf_free(&t);
	if (err)
		luaL_error(L, "msg:append_text(): %s", err);
	return done;
}

static const char *
check_text(lua_State *L, int arg, int opt)
{
	const char *t, *err;
	size_t n;

	if (opt && lua_isnoneornil(L, arg))
		return NULL;
	t = luaL_checklstring(L, arg, &n);
	if ((err = mime_text_check(t, n)) != NULL)
		luaL_error(L, "msg:append_text(): %s", err);
	return t;
}

/*
 * msg:append_text(text [, html]) -> parts changed, and when 0 why:
 * "signed" (multipart/signed or encrypted: left intact), "encoded" (text
 * parts in base64 only) or "no text part".
 */
static int
m_append_text(lua_State *L)
{
	struct hook_call *c = hook_msg_call(L);
	const char *text, *html;
	struct mime_text mt;
	size_t n;

	check_stage(L, c, "msg:append_text()", 1);
	text = check_text(L, 2, 0);
	html = check_text(L, 3, 1);
	mime_text_find(c->ctx->message->data, c->ctx->message->len,
	    c->ctx->header_len, &mt);
	n = insert_points(L, c, &mt, text, html);
	log_edit(c, "append_text", "result", n ? "appended" : mt.is_signed ?
	    "signed" : mt.skipped ? "encoded" : "no text part", (long long)n);
	lua_pushinteger(L, (lua_Integer)n);
	if (n)
		return 1;
	lua_pushstring(L, mt.is_signed ? "signed" : mt.skipped ? "encoded" :
	    "no text part");
	return 2;
}

/* ---- msg:filter_body ---------------------------------------------------- */

/* One chunk for the policy's function (pcall'd by on_chunk). */
struct chunk_arg {
	const struct body_part *p;
	const char	*data;
	size_t		 n;
	int		 last;
};

/* A read-only table: an empty proxy whose metatable reads data at -1. */
static void
push_readonly(lua_State *L)
{
	lua_newtable(L);			/* data, proxy */
	lua_insert(L, -2);
	lua_newtable(L);			/* proxy, data, mt */
	lua_insert(L, -2);
	lua_setfield(L, -2, "__index");
	lua_pushliteral(L, "read-only");
	lua_setfield(L, -2, "__metatable");
	luaL_loadstring(L, "error('the part table of msg:filter_body() is "
	    "read-only', 2)");
	lua_setfield(L, -2, "__newindex");
	lua_setmetatable(L, -2);
}

/* [fn, arg] -> [fn(chunk, part)] : run under lua_pcall */
static int
call_filter(lua_State *L)
{
	const struct chunk_arg *a = lua_touserdata(L, 2);

	lua_settop(L, 1);
	lua_pushlstring(L, a->data, a->n);
	lua_createtable(L, 0, 4);
	lua_pushstring(L, a->p->type);
	lua_setfield(L, -2, "type");
	lua_pushstring(L, a->p->charset);
	lua_setfield(L, -2, "charset");
	lua_pushinteger(L, a->p->index);
	lua_setfield(L, -2, "index");
	lua_pushboolean(L, a->last);
	lua_setfield(L, -2, "last");
	push_readonly(L);
	lua_call(L, 2, 1);
	return 1;
}

/*
 * body_filter_fn: calls the function (stack index 2 of L, the method's
 * argument). An error stays on top of L for m_filter_body to raise once
 * the walk freed what it holds (nothing of C is unwound by Lua).
 */
static int
on_chunk(void *arg, const struct body_part *p, const char *chunk, size_t n,
    int last, struct buf *out)
{
	lua_State *L = arg;
	struct chunk_arg a = { p, chunk, n, last };
	const char *r;
	size_t rn;

	lua_pushcfunction(L, call_filter);
	lua_pushvalue(L, 2);
	lua_pushlightuserdata(L, &a);
	if (lua_pcall(L, 2, 1, 0) != LUA_OK)
		return -1;
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return 0;
	}
	if (lua_type(L, -1) != LUA_TSTRING) {
		lua_pushfstring(L, "msg:filter_body(): the function returned a "
		    "%s (a string or nil replaces or keeps a chunk)",
		    luaL_typename(L, -1));
		return -1;
	}
	r = lua_tolstring(L, -1, &rn);
	buf_set(out, r, rn);
	lua_pop(L, 1);
	return 1;
}

/* opts (arg 3): { types = { "text/plain", ... } }; anything else raises. */
static void
read_opts(lua_State *L, struct body_filter *f)
{
	if (lua_isnoneornil(L, 3))
		return;
	luaL_checktype(L, 3, LUA_TTABLE);
	lua_pushnil(L);
	while (lua_next(L, 3)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING ||
		    strcmp(lua_tostring(L, -1), "types") != 0)
			luaL_error(L, "msg:filter_body(): unknown option (only "
			    "'types')");
	}
	if (lua_getfield(L, 3, "types") != LUA_TTABLE)
		luaL_error(L, "msg:filter_body(): opts.types must be a list");
	for (lua_Integer i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
		const char *t = lua_tostring(L, -1);
		if (lua_type(L, -1) != LUA_TSTRING || strncasecmp(t, "text/", 5))
			luaL_error(L, "msg:filter_body(): opts.types[%d] is not a "
			    "text/* type", (int)i);
		if (f->ntypes == BODY_FILTER_TYPES_MAX)
			luaL_error(L, "msg:filter_body(): at most 16 types");
		f->types[f->ntypes++] = t;	/* held by opts */
		lua_pop(L, 1);
	}
}

/* Moves the walk's ranges into the edit; NULL or why not. */
static const char *
filter_commit(struct hook_call *c, struct body_filter *f, int rc)
{
	if (rc < 0)
		return buf_cstr(&f->err);
	return msg_edit_replace_body(c->ctx->edit, &f->rep, f->max);
}

/*
 * msg:filter_body(fn [, opts]) -> parts changed, parts filtered. fn(chunk,
 * part) returns a replacement or nil (body_filter.h); an error in fn, or a
 * refused replacement, raises and leaves the message as it was.
 */
static int
m_filter_body(lua_State *L)
{
	struct hook_call *c = hook_msg_call(L);
	const struct buf *m = c->ctx->message;
	struct body_filter f;
	const char *err;
	int rc;

	check_stage(L, c, "msg:filter_body()", 1);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	body_filter_init(&f);
	read_opts(L, &f);
	lua_settop(L, 3);
	f.max = c->main->cfg.max_message_size;
	f.fn = on_chunk;
	f.arg = L;
	rc = body_filter_run(&f, m->data, m->len);
	if (rc < 0 && f.err.len == 0) {		/* fn's error, on top */
		body_filter_free(&f);
		return lua_error(L);
	}
	if ((err = filter_commit(c, &f, rc)) != NULL) {
		lua_pushfstring(L, "msg:filter_body(): %s", err);
		body_filter_free(&f);
		return lua_error(L);
	}
	log_edit(c, "filter_body", "result", f.changed ? "changed" :
	    f.sealed ? "signed" : "unchanged", (long long)f.changed);
	lua_pushinteger(L, (lua_Integer)f.changed);
	lua_pushinteger(L, (lua_Integer)f.parts);
	body_filter_free(&f);
	return 2;
}

/* ---- msg:parts ---------------------------------------------------------- */

static const char *const cte_names[] = { "7bit", "8bit", "binary",
    "quoted-printable", "base64", "unknown" };

/* body_leaf_fn: appends { type, charset, encoding, filename, size, signed }
 * to the list at the top of L. */
static void
on_leaf(void *arg, const struct mime_entity *en, size_t body_len, int sealed)
{
	lua_State *L = arg;

	lua_createtable(L, 0, 6);
	lua_pushstring(L, en->type);
	lua_setfield(L, -2, "type");
	lua_pushstring(L, en->charset);
	lua_setfield(L, -2, "charset");
	lua_pushstring(L, cte_names[en->cte]);
	lua_setfield(L, -2, "encoding");
	if (en->filename[0]) {
		lua_pushstring(L, en->filename);
		lua_setfield(L, -2, "filename");
	}
	lua_pushinteger(L, (lua_Integer)body_len);
	lua_setfield(L, -2, "size");
	lua_pushboolean(L, sealed);
	lua_setfield(L, -2, "signed");
	lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
}

/*
 * msg:parts() -> { { type=, charset=, encoding=, filename=, size=,
 * signed= }, ... }: every leaf part of the message in order (message hook
 * only), to depth 5, those inside multipart/signed or encrypted too.
 */
static int
m_parts(lua_State *L)
{
	struct hook_call *c = hook_msg_call(L);
	const struct buf *m = c->ctx->message;
	struct body_filter f;

	check_stage(L, c, "msg:parts()", 1);
	lua_newtable(L);
	body_filter_init(&f);
	f.leaf = on_leaf;
	f.arg = L;
	body_filter_run(&f, m->data, m->len);
	body_filter_free(&f);
	return 1;
}

void
hook_edit_msg_methods(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "add_header", m_add_header },
		{ "remove_header", m_remove_header },
		{ "replace_header", m_replace_header },
		{ "append_text", m_append_text },
		{ "filter_body", m_filter_body }, { "parts", m_parts },
		{ NULL, NULL },
	};

	luaL_setfuncs(L, fns, 0);
}

/* ---- envelope ---------------------------------------------------------- */

/* The running call, if object 1 is its tx and its stage may edit. */
static struct hook_call *
tx_call(lua_State *L, const char *what)
{
	struct hook_call *c = hook_current_call();

	if (c == NULL || c->tx_ref == LUA_NOREF)
		luaL_error(L, "%s: no transaction", what);
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->tx_ref);
	if (!lua_rawequal(L, 1, -1))
		luaL_error(L, "%s: call it on this hook's tx (tx:%s)", what,
		    what + 3);
	lua_pop(L, 1);
	check_stage(L, c, what, 0);
	if (c->ctx->tx_edit == NULL)
		luaL_error(L, "%s: the transaction cannot be edited here", what);
	return c;
}

/* Raises err, or refreshes tx and logs the edit. */
static void
tx_done(lua_State *L, struct hook_call *c, const char *what, const char *err,
    const char *kind, const char *addr, long long count)
{
	if (err)
		luaL_error(L, "%s: %s", what, err);
	hook_tx_refresh(L, c);
	log_edit(c, kind, "address", addr, count);
}

/* tx:add_rcpt(address) -> () */
static int
t_add_rcpt(lua_State *L)
{
	struct hook_call *c = tx_call(L, "tx:add_rcpt()");
	const char *a = luaL_checkstring(L, 2);
	const struct hook_ctx *x = c->ctx;

	tx_done(L, c, "tx:add_rcpt()", x->tx_edit->add_rcpt(x->tx_edit_arg, a),
	    "rcpt_add", a, -1);
	return 0;
}

/* tx:remove_rcpt(address) -> 1 if it was there, else 0 */
static int
t_remove_rcpt(lua_State *L)
{
	struct hook_call *c = tx_call(L, "tx:remove_rcpt()");
	const char *a = luaL_checkstring(L, 2);
	const struct hook_ctx *x = c->ctx;
	size_t count = 0;
	const char *err = x->tx_edit->remove_rcpt(x->tx_edit_arg, a, &count);

	tx_done(L, c, "tx:remove_rcpt()", err, "rcpt_remove", a,
	    (long long)count);
	lua_pushinteger(L, (lua_Integer)count);
	return 1;
}

/* tx:set_rcpts({address, ...}) -> () */
static int
t_set_rcpts(lua_State *L)
{
	struct hook_call *c = tx_call(L, "tx:set_rcpts()");
	const struct hook_ctx *x = c->ctx;
	lua_Integer n;
	const char **v;

	luaL_checktype(L, 2, LUA_TTABLE);
	n = luaL_len(L, 2);
	luaL_argcheck(L, n >= 1 && n <= 100000, 2, "1 to 100000 addresses");
	v = lua_newuserdatauv(L, (size_t)n * sizeof(*v), 0);	/* freed by GC */
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_rawgeti(L, 2, i) != LUA_TSTRING)
			return luaL_error(L, "tx:set_rcpts(): entry %d is not a "
			    "string", (int)i);
		v[i - 1] = lua_tostring(L, -1);
		lua_pop(L, 1);		/* still held by the table */
	}
	tx_done(L, c, "tx:set_rcpts()", x->tx_edit->set_rcpts(x->tx_edit_arg,
	    v, (size_t)n), "rcpts_set", NULL, (long long)n);
	return 0;
}

/* tx:set_sender(address or "") -> () */
static int
t_set_sender(lua_State *L)
{
	struct hook_call *c = tx_call(L, "tx:set_sender()");
	const char *a = luaL_checkstring(L, 2);
	const struct hook_ctx *x = c->ctx;

	tx_done(L, c, "tx:set_sender()", x->tx_edit->set_sender(
	    x->tx_edit_arg, a), "sender_set", a, -1);
	return 0;
}

void
hook_edit_tx_methods(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "add_rcpt", t_add_rcpt }, { "remove_rcpt", t_remove_rcpt },
		{ "set_rcpts", t_set_rcpts }, { "set_sender", t_set_sender },
		{ NULL, NULL },
	};

	luaL_setfuncs(L, fns, 0);
}
