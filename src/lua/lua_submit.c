/*
 * lua_submit: indimail.submit{ from =, to = {...}, header = {{name, value},
 * ...}, body = } for message hooks: a policy (the autoresponder) sends a
 * new message. It is built here (Date and Message-ID ours, the caller's
 * fields in order, MIME text/plain if none given, the body with LF line
 * ends) and handed to the SMTP session (struct hook_tx_edit's submit),
 * which queues it through the same durable write after the message being
 * received is queued, with its own Received line. Everything is checked
 * and bounded; a bad argument or a refusal raises an error naming the
 * field, and nothing is submitted.
 */
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "../lib/log.h"
#include "../mail/msg_edit.h"
#include "lua_api.h"
#include "lua_hook_int.h"

#define SUBMIT_RCPTS_MAX	16	/* to = { ... } */
#define SUBMIT_FIELDS_MAX	32	/* header = { ... } */
#define SUBMIT_BODY_MAX		(64 * 1024)	/* bytes of body */
#define SUBMIT_LINE_MAX		998	/* RFC 5322 2.1.1 */
#define SUBMIT_ID_BYTES		12	/* random bytes of a Message-ID */

/* Fields the submission sets itself: refused from the caller. */
static const char *const own_fields[] = { "Date", "Message-ID", "Received",
	"Return-Path", NULL };

/* The running message hook's call, or an error naming the rule. */
static struct hook_call *
submit_call(lua_State *L)
{
	struct hook_call *c = hook_current_call();

	if (c == NULL || c->co != L)
		luaL_error(L, "indimail.submit can only be called from a hook "
		    "(not at load time, not in a nested coroutine)");
	if (c->stage != HOOK_MESSAGE)
		luaL_error(L, "indimail.submit cannot be used in the %s hook "
		    "(message hook only)", hook_stage_name(c->stage));
	if (c->ctx->tx_edit == NULL || c->ctx->tx_edit->submit == NULL)
		luaL_error(L, "indimail.submit: no transaction to submit from");
	return c;
}

/* t.to as an array of strings on the Lua stack's storage. */
static size_t
get_rcpts(lua_State *L, const char *rcpts[SUBMIT_RCPTS_MAX])
{
	size_t n;

	if (lua_getfield(L, 1, "to") != LUA_TTABLE)
		luaL_error(L, "indimail.submit: to must be a list of addresses");
	n = (size_t)luaL_len(L, -1);
	if (n == 0 || n > SUBMIT_RCPTS_MAX)
		luaL_error(L, "indimail.submit: to needs 1 to %d addresses",
		    SUBMIT_RCPTS_MAX);
	for (size_t i = 0; i < n; i++) {
		lua_rawgeti(L, -1, (lua_Integer)i + 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "indimail.submit: to[%d] is not an "
			    "address", (int)i + 1);
		rcpts[i] = lua_tostring(L, -1);
		lua_pop(L, 1);		/* the table keeps it alive */
	}
	return n;
}

static int
own_field(const char *name)
{
	for (int i = 0; own_fields[i]; i++)
		if (strcasecmp(name, own_fields[i]) == 0)
			return 1;
	return 0;
}

/* One {name, value} of t.header, checked, appended to out. */
static void
add_field(lua_State *L, int i, struct buf *out, int *has_from, int *has_mime)
{
	size_t nn, vn;
	const char *name, *v, *err;

	if (lua_rawgeti(L, -1, i) != LUA_TTABLE)
		luaL_error(L, "indimail.submit: header[%d] is not {name, value}",
		    i);
	lua_rawgeti(L, -1, 1);
	lua_rawgeti(L, -2, 2);
	name = lua_tolstring(L, -2, &nn);
	v = lua_tolstring(L, -1, &vn);
	if (name == NULL || v == NULL)
		luaL_error(L, "indimail.submit: header[%d] is not {name, value}",
		    i);
	if ((err = msg_edit_check_name(name, nn)) != NULL ||
	    (err = msg_edit_check_value(v, vn)) != NULL)
		luaL_error(L, "indimail.submit: header[%d]: %s", i, err);
	if (own_field(name))
		luaL_error(L, "indimail.submit: header[%d]: %s is set by "
		    "indimail.submit", i, name);
	*has_from |= strcasecmp(name, "From") == 0;
	*has_mime |= strncasecmp(name, "Content-", 8) == 0;
	buf_printf(out, "%s: %s\n", name, v);
	lua_pop(L, 3);
}

/* Date and Message-ID (random@hostname), as our own submissions get. */
static void
add_own_fields(struct buf *out, const char *hostname)
{
	unsigned char r[SUBMIT_ID_BYTES];
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	buf_printf(out, "Date: %s\nMessage-ID: <", date);
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		memset(r, 0, sizeof(r));	/* the time still differs */
	for (size_t i = 0; i < sizeof(r); i++)
		buf_printf(out, "%02x", r[i]);
	buf_printf(out, ".%lld@%s>\n", (long long)now, hostname);
}

/* Fields of t.header; From is required. */
static void
get_fields(lua_State *L, struct buf *out)
{
	int n, has_from = 0, has_mime = 0;

	if (lua_getfield(L, 1, "header") != LUA_TTABLE)
		luaL_error(L, "indimail.submit: header must be a list of "
		    "{name, value}");
	n = (int)luaL_len(L, -1);
	if (n > SUBMIT_FIELDS_MAX)
		luaL_error(L, "indimail.submit: more than %d header fields",
		    SUBMIT_FIELDS_MAX);
	for (int i = 1; i <= n; i++)
		add_field(L, i, out, &has_from, &has_mime);
	if (!has_from)
		luaL_error(L, "indimail.submit: header needs a From field");
	if (!has_mime)
		buf_appends(out, "MIME-Version: 1.0\nContent-Type: text/plain; "
		    "charset=utf-8\nContent-Transfer-Encoding: 8bit\n");
	lua_pop(L, 1);
}

/* t.body with LF line ends, lines of at most 998 bytes, no NUL or bare CR. */
static void
get_body(lua_State *L, struct buf *out)
{
	size_t n, line = 0;
	const char *b;

	lua_getfield(L, 1, "body");
	if ((b = lua_tolstring(L, -1, &n)) == NULL || n > SUBMIT_BODY_MAX)
		luaL_error(L, "indimail.submit: body must be a string of at "
		    "most %d bytes", SUBMIT_BODY_MAX);
	buf_appendc(out, '\n');
	for (size_t i = 0; i < n; i++) {
		if (b[i] == '\r' && i + 1 < n && b[i + 1] == '\n')
			continue;
		if (b[i] == '\0' || b[i] == '\r' || ++line > SUBMIT_LINE_MAX)
			luaL_error(L, "indimail.submit: body has a NUL, a bare "
			    "CR or a line over %d bytes", SUBMIT_LINE_MAX);
		line = b[i] == '\n' ? 0 : line;
		buf_appendc(out, b[i]);
	}
	if (n && out->data[out->len - 1] != '\n')
		buf_appendc(out, '\n');
	lua_pop(L, 1);
}

static int
msgbuf_gc(lua_State *L)
{
	buf_free(lua_touserdata(L, 1));
	return 0;
}

/* A buffer the collector frees, so an error raised while building it
 * leaks nothing. [-0, +1] */
static struct buf *
new_msgbuf(lua_State *L)
{
	struct buf *b = lua_newuserdatauv(L, sizeof(*b), 0);

	*b = (struct buf)BUF_INIT;
	if (luaL_newmetatable(L, "indimail.submit.buf")) {
		lua_pushcfunction(L, msgbuf_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	return b;
}

/* indimail.submit{ from=, to=, header=, body= } -> true  (message hook) */
static int
l_submit(lua_State *L)
{
	struct hook_call *c = submit_call(L);
	const char *rcpts[SUBMIT_RCPTS_MAX], *from, *err;
	struct buf *msg;
	size_t n;

	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	msg = new_msgbuf(L);			/* 2 */
	lua_getfield(L, 1, "from");		/* 3 */
	if ((from = lua_tostring(L, 3)) == NULL)
		luaL_error(L, "indimail.submit: from must be an address (\"\" "
		    "for <>)");
	n = get_rcpts(L, rcpts);		/* 4: to, kept for its strings */
	add_own_fields(msg, c->main->cfg.hostname);
	get_fields(L, msg);
	get_body(L, msg);
	err = c->ctx->tx_edit->submit(c->ctx->tx_edit_arg, from, rcpts, n,
	    msg, c->name);
	buf_free(msg);
	if (err)
		return luaL_error(L, "indimail.submit: %s", err);
	lua_pushboolean(L, 1);
	return 1;
}

void
lua_submit_open(lua_State *L)
{
	lua_getglobal(L, "indimail");
	lua_pushcfunction(L, l_submit);
	lua_setfield(L, -2, "submit");
	lua_pop(L, 1);
}
