/*
 * lua_hook: the coroutine hook runner and the yielding API.
 *
 * One hook_call runs the hooks of one stage for one session. Each hook gets
 * a fresh coroutine whose extra space points back at the call, so a C API
 * function can start async work, count it in pending_ops and lua_yield; the
 * completion stores its result in the call and resumes. The call is freed
 * only when it is finished (or cancelled) AND no async work is in flight,
 * so late completions never touch freed memory.
 */
#include <lauxlib.h>
#include <string.h>

#include "../lib/log.h"
#include "../lib/watchdog.h"
#include "../lib/xalloc.h"
#include "../net/dns.h"
#include "lua_api.h"
#include "lua_budget.h"
#include "lua_hook.h"

struct dns_pending {
	int		 ready;
	enum dns_type	 type;
	enum dns_status	 status;
	char		*error;
	struct dns_answer *answers;
	size_t		 n;
};

struct hook_call {
	struct runtime	*rt;
	enum hook_stage	 stage;
	int		 index;		/* hook being run */
	const char	*name;
	struct hook_ctx	*ctx;
	lua_State	*co;
	int		 co_ref, session_ref, tx_ref, msg_ref;
	struct budget	 budget;	/* instructions of the running hook */
	int		 pending_ops;	/* async operations in flight */
	int		 running;	/* inside lua_resume */
	int		 finished;	/* verdict given or cancelled */
	int		 async;		/* hook_run already returned PENDING */
	int		 timer_init;
	uv_timer_t	 timer;
	struct dns_pending dns;
	hook_done_cb	 cb;
	void		*arg;
	struct hook_verdict v;
};

struct msg_ud {
	struct hook_call *call;		/* NULL once the stage is over */
};

static uv_loop_t *hook_loop;
static struct dns *hook_dns;

static int step(struct hook_call *, int nargs);

void
hook_set_env(uv_loop_t *loop, struct dns *dns)
{
	hook_loop = loop;
	hook_dns = dns;
}

void
hook_verdict_init(struct hook_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->action = VERDICT_ACCEPT;
	v->code = 250;
	v->route_tls = -1;
	snprintf(v->status, sizeof(v->status), "2.0.0");
}

void
hook_verdict_move(struct hook_verdict *dst, struct hook_verdict *src)
{
	*dst = *src;			/* the buffers change owner */
	hook_verdict_init(src);
}

void
hook_verdict_free(struct hook_verdict *v)
{
	buf_free(&v->text);
	buf_free(&v->route_host);
	buf_free(&v->route_user);
	buf_free(&v->route_password);
}

/* ---- building the objects hooks see ------------------------------------ */

static void
setstr(lua_State *L, const char *k, const char *v)
{
	if (v) {
		lua_pushstring(L, v);
		lua_setfield(L, -2, k);
	}
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

/* Pushes t[k] raw: read after the hook returned, so no policy code may run. */
static void
rawfield(lua_State *L, int t, const char *k)
{
	t = lua_absindex(L, t);
	lua_pushstring(L, k);
	lua_rawget(L, t);
}

static int
make_session(lua_State *L, const struct hook_ctx *c)
{
	lua_createtable(L, 0, 14);
	setstr(L, "id", c->session_id);
	setstr(L, "ip", c->ip);
	setint(L, "port", c->port);
	setstr(L, "local_ip", c->local_ip);
	setint(L, "local_port", c->local_port);
	setstr(L, "listener", c->listener);
	setstr(L, "helo", c->helo);
	setbool(L, "esmtp", c->esmtp);
	setbool(L, "tls", c->tls);
	setstr(L, "tls_version", c->tls_version);
	setstr(L, "tls_cipher", c->tls_cipher);
	setstr(L, "auth_user", c->auth_user);
	setbool(L, "relay", c->relay);
	return luaL_ref(L, LUA_REGISTRYINDEX);
}

static int
make_tx(lua_State *L, const struct hook_ctx *c)
{
	lua_createtable(L, 0, 6);
	setstr(L, "id", c->queue_id);
	setstr(L, "sender", c->sender);
	if (c->size_hint)
		setint(L, "size_hint", (lua_Integer)c->size_hint);
	lua_createtable(L, (int)c->nrcpts, 0);
	for (size_t i = 0; i < c->nrcpts; i++) {
		lua_pushstring(L, c->rcpts[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "rcpts");
	lua_createtable(L, 0, c->env ? (int)c->env->n : 0);
	for (size_t i = 0; c->env && i < c->env->n; i++)
		setstr(L, c->env->key[i], c->env->val[i]);
	lua_setfield(L, -2, "env");
	return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Copies tx.env back into ctx->env. Returns NULL or an error text. */
static const char *
read_env(lua_State *L, struct hook_call *c)
{
	struct envvars fresh = { NULL, NULL, 0 };
	const char *err = NULL;

	if (c->ctx->env == NULL || c->tx_ref == LUA_NOREF)
		return NULL;
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->tx_ref);
	rawfield(L, -1, "env");
	if (!lua_istable(L, -1)) {
		lua_pop(L, 2);
		return "tx.env must stay a table";
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

static struct hook_call *
check_msg(lua_State *L)
{
	struct msg_ud *m = luaL_checkudata(L, 1, "indimail.message");

	if (m->call == NULL)
		luaL_error(L, "message object used after its hook finished");
	return m->call;
}

/* Finds the next header field; returns 0 at the end of the section. */
static int
next_field(const char *p, size_t len, size_t *pos, const char **name,
    size_t *nlen, const char **val, size_t *vlen)
{
	size_t i = *pos, colon, end;

	if (i >= len || p[i] == '\n')
		return 0;
	for (colon = i; colon < len && p[colon] != ':' && p[colon] != '\n';
	    colon++)
		;
	for (end = colon; end < len; end++)	/* value runs over folds */
		if (p[end] == '\n' && (end + 1 >= len ||
		    (p[end + 1] != ' ' && p[end + 1] != '\t')))
			break;
	*name = p + i;
	*nlen = colon - i;
	if (colon < end && p[colon] == ':') {
		*val = p + colon + 1;
		*vlen = end - colon - 1;
	} else {
		*val = "";
		*vlen = 0;
	}
	*pos = end < len ? end + 1 : len;
	return 1;
}

/* Pushes a header value unfolded and trimmed. */
static void
push_value(lua_State *L, const char *v, size_t n)
{
	luaL_Buffer b;

	while (n && (*v == ' ' || *v == '\t'))
		v++, n--;
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	luaL_buffinit(L, &b);
	for (size_t i = 0; i < n; i++)
		if (v[i] != '\n')
			luaL_addchar(&b, v[i]);
	luaL_pushresult(&b);
}

/* msg:header(name) -> value or nil (first match, case-insensitive) */
static int
m_header(lua_State *L)
{
	struct hook_call *c = check_msg(L);
	size_t want, pos = 0, nl, vl;
	const char *w = luaL_checklstring(L, 2, &want), *n, *v;
	const struct buf *m = c->ctx->message;

	while (next_field(m->data, c->ctx->header_len, &pos, &n, &nl, &v, &vl))
		if (nl == want && strncasecmp(n, w, nl) == 0) {
			push_value(L, v, vl);
			return 1;
		}
	lua_pushnil(L);
	return 1;
}

/* msg:headers() -> { {name=, value=}, ... } in message order */
static int
m_headers(lua_State *L)
{
	struct hook_call *c = check_msg(L);
	size_t pos = 0, nl, vl;
	const char *n, *v;
	const struct buf *m = c->ctx->message;
	lua_Integer i = 0;

	lua_newtable(L);
	while (next_field(m->data, c->ctx->header_len, &pos, &n, &nl, &v, &vl)) {
		lua_createtable(L, 0, 2);
		lua_pushlstring(L, n, nl);
		lua_setfield(L, -2, "name");
		push_value(L, v, vl);
		lua_setfield(L, -2, "value");
		lua_rawseti(L, -2, ++i);
	}
	return 1;
}

/* msg:text() -> the whole message (message stage only) */
static int
m_text(lua_State *L)
{
	struct hook_call *c = check_msg(L);

	if (c->stage != HOOK_MESSAGE)
		return luaL_error(L, "msg:text() is only available in the message hook");
	lua_pushlstring(L, c->ctx->message->data, c->ctx->message->len);
	return 1;
}

/* msg:body() -> the body after the blank line (message stage only) */
static int
m_body(lua_State *L)
{
	struct hook_call *c = check_msg(L);
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
	struct hook_call *c = check_msg(L);

	lua_pushinteger(L, (lua_Integer)c->ctx->message->len);
	return 1;
}

static int
make_msg(lua_State *L, struct hook_call *c)
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
		lua_setfield(L, -2, "__index");
	}
	lua_setmetatable(L, -2);
	return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* ---- verdicts ---------------------------------------------------------- */

static void
internal_error(struct hook_call *c, const char *what, const char *detail)
{
	struct logline l;

	log_begin(&l, LOG_ERROR, "hook_error");
	log_kv(&l, "session", c->ctx->session_id);
	if (c->ctx->queue_id)
		log_kv(&l, "qid", c->ctx->queue_id);
	log_kv(&l, "stage", hook_stage_name(c->stage));
	log_kv(&l, "policy", c->name);
	log_kv(&l, "error", what);
	if (detail)
		log_kv(&l, "traceback", detail);
	log_end(&l);
	c->v.action = VERDICT_TEMPFAIL;
	c->v.code = 451;
	c->v.internal = 1;
	snprintf(c->v.status, sizeof(c->v.status), "4.3.0");
	buf_set(&c->v.text, "Internal policy error, try again later", 38);
	snprintf(c->v.policy, sizeof(c->v.policy), "%s", c->name);
}

static int
valid_status(const char *s, int cls)
{
	int a, b, n = 0;

	if (sscanf(s, "%d.%d.%d%n", &a, &a, &b, &n) != 3 || s[n] != '\0')
		return 0;
	return s[0] == '0' + cls && s[1] == '.';
}

/* {action="route", route="local"|"mx"|"relay", host=, port=, ...} */
static const char *
parse_route(lua_State *co, struct hook_verdict *v)
{
	const char *kind, *host, *user, *pass, *tls;
	lua_Integer port;
	int t = lua_gettop(co) - 4;	/* the verdict table */

	rawfield(co, t, "route");
	rawfield(co, t, "host");
	rawfield(co, t, "port");
	rawfield(co, t, "auth_user");
	rawfield(co, t, "auth_password");
	rawfield(co, t, "tls");
	rawfield(co, t, "auth_plaintext");
	kind = lua_tostring(co, -7);
	host = lua_tostring(co, -6);
	port = lua_tointeger(co, -5);
	user = lua_tostring(co, -4);
	pass = lua_tostring(co, -3);
	tls = lua_tostring(co, -2);
	v->action = VERDICT_ROUTE;
	if (kind && strcmp(kind, "local") == 0)
		v->route = ROUTE_LOCAL;
	else if (kind && strcmp(kind, "mx") == 0)
		v->route = ROUTE_MX;
	else if (kind && strcmp(kind, "relay") == 0) {
		if (host == NULL || *host == '\0' || host[strcspn(host, " \r\n")])
			return "a relay route needs a host";
		if (port < 1 || port > 65535)
			return "a relay route needs a port between 1 and 65535";
		v->route = ROUTE_RELAY;
		buf_set(&v->route_host, host, strlen(host));
		v->route_port = (int)port;
		if (user)
			buf_set(&v->route_user, user, strlen(user));
		if (pass)
			buf_set(&v->route_password, pass, strlen(pass));
		if (tls)	/* a typo must not weaken the route */
			v->route_tls = strcmp(tls, "none") == 0 ? 0 :
			    strcmp(tls, "opportunistic") == 0 ? 1 :
			    strcmp(tls, "verify") == 0 ? 2 : -2;
		if (v->route_tls == -2)
			return "a relay route's tls must be \"none\", "
			    "\"opportunistic\" or \"verify\"";
		if (!lua_isnil(co, -1) && !lua_isboolean(co, -1))
			return "a relay route's auth_plaintext must be true "
			    "or false";
		v->route_auth_plaintext = lua_toboolean(co, -1);
	} else
		return "route must be \"local\", \"mx\" or \"relay\"";
	return NULL;
}

/* Reads the value a hook returned (top of co). Returns NULL or an error. */
static const char *
parse_verdict(lua_State *co, int nres, struct hook_verdict *v)
{
	const char *action, *text, *status;
	lua_Integer code;
	int cls;

	if (nres == 0 || lua_isnil(co, -1) ||
	    (lua_isboolean(co, -1) && lua_toboolean(co, -1)))
		return NULL;		/* accept */
	if (!lua_istable(co, -1))
		return "hook returned neither nil nor a verdict table";
	rawfield(co, -1, "action");
	rawfield(co, -2, "code");
	rawfield(co, -3, "status");
	rawfield(co, -4, "text");
	action = lua_tostring(co, -4);
	code = lua_tointeger(co, -3);
	status = lua_tostring(co, -2);
	text = lua_tostring(co, -1);
	if (action == NULL)
		return "verdict has no action";
	if (strcmp(action, "accept") == 0)
		return NULL;
	if (strcmp(action, "discard") == 0) {
		v->action = VERDICT_DISCARD;
		return NULL;
	}
	if (strcmp(action, "route") == 0)
		return parse_route(co, v);
	if (strcmp(action, "reject") == 0)
		v->action = VERDICT_REJECT, cls = 5;
	else if (strcmp(action, "tempfail") == 0)
		v->action = VERDICT_TEMPFAIL, cls = 4;
	else
		return "verdict action must be accept, reject, tempfail or discard";
	if (code / 100 != cls)
		return "verdict code does not match its action (5xx reject, 4xx tempfail)";
	if (status == NULL || !valid_status(status, cls))
		return "verdict status must look like 5.7.1 (reject) or 4.7.1 (tempfail)";
	if (text == NULL || text[strcspn(text, "\r\n")] || strlen(text) > 400)
		return "verdict text must be one line of at most 400 characters";
	v->code = (int)code;
	snprintf(v->status, sizeof(v->status), "%s", status);
	buf_set(&v->text, text, strlen(text));
	return NULL;
}

/* ---- running ----------------------------------------------------------- */

static void
release_co(struct hook_call *c)
{
	if (c->co_ref != LUA_NOREF) {
		*(struct hook_call **)lua_getextraspace(c->co) = NULL;
		luaL_unref(c->rt->L, LUA_REGISTRYINDEX, c->co_ref);
		c->co_ref = LUA_NOREF;
		c->co = NULL;
	}
}

static void
on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Frees the call if nothing can reach it any more. */
static void
maybe_free(struct hook_call *c)
{
	struct msg_ud *m;
	lua_State *L = c->rt->L;

	if (!c->finished || c->pending_ops > 0 || c->running)
		return;
	release_co(c);
	if (c->msg_ref != LUA_NOREF) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, c->msg_ref);
		m = lua_touserdata(L, -1);
		m->call = NULL;
		lua_pop(L, 1);
	}
	luaL_unref(L, LUA_REGISTRYINDEX, c->msg_ref);
	luaL_unref(L, LUA_REGISTRYINDEX, c->tx_ref);
	luaL_unref(L, LUA_REGISTRYINDEX, c->session_ref);
	runtime_unref(c->rt);
	free(c->dns.error);
	for (size_t i = 0; i < c->dns.n; i++)
		free(c->dns.answers[i].value);
	free(c->dns.answers);
	hook_verdict_free(&c->v);
	if (c->timer_init)
		uv_close((uv_handle_t *)&c->timer, on_timer_closed);
	else
		free(c);
}

/* Delivers the verdict to the session (async case only). */
static void
finish(struct hook_call *c)
{
	c->finished = 1;
	if (c->timer_init)
		uv_timer_stop(&c->timer);
	if (c->async && c->cb)
		c->cb(c->arg, &c->v);
}

static void
on_hook_timeout(uv_timer_t *t)
{
	struct hook_call *c = t->data;

	if (c->finished)
		return;
	internal_error(c, "hook exceeded its time budget", NULL);
	finish(c);
	maybe_free(c);
}

/* Starts hook c->index in a new coroutine and pushes its arguments. */
static int
start_hook(struct hook_call *c)
{
	lua_State *L = c->rt->L, *co;
	int nargs = 1;

	co = lua_newthread(L);
	c->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	c->co = co;
	*(struct hook_call **)lua_getextraspace(co) = c;
	budget_start(&c->budget, c->rt->cfg.hook_instructions);
	c->name = runtime_push_hook(c->rt, c->stage, c->index);
	lua_xmove(L, co, 1);
	lua_rawgeti(co, LUA_REGISTRYINDEX, c->session_ref);
	switch (c->stage) {
	case HOOK_CONNECT:
		break;
	case HOOK_HELO:
		lua_pushstring(co, c->ctx->helo);
		nargs = 2;
		break;
	case HOOK_RCPT:
	case HOOK_ROUTE:
		lua_rawgeti(co, LUA_REGISTRYINDEX, c->tx_ref);
		lua_pushstring(co, c->ctx->rcpt);
		nargs = 3;
		break;
	case HOOK_DATA:
	case HOOK_MESSAGE:
		lua_rawgeti(co, LUA_REGISTRYINDEX, c->tx_ref);
		lua_rawgeti(co, LUA_REGISTRYINDEX, c->msg_ref);
		nargs = 3;
		break;
	default:
		lua_rawgeti(co, LUA_REGISTRYINDEX, c->tx_ref);
		nargs = 2;
	}
	return nargs;
}

/* A hook ended normally: read its verdict and tx.env. 1 = stage over. */
static int
hook_returned(struct hook_call *c, int nres)
{
	const char *err = parse_verdict(c->co, nres, &c->v);

	if (err == NULL && (c->v.action == VERDICT_ROUTE) != 0 &&
	    c->stage != HOOK_ROUTE)
		err = "a route verdict is only valid in the route hook";
	if (err == NULL)
		err = read_env(c->co, c);
	if (err) {
		internal_error(c, err, NULL);
		return 1;
	}
	snprintf(c->v.policy, sizeof(c->v.policy), "%s", c->name);
	return c->v.action != VERDICT_ACCEPT;
}

static void
hook_failed(struct hook_call *c, int status)
{
	lua_State *L = c->rt->L;
	const char *msg = lua_tostring(c->co, -1);

	luaL_traceback(L, c->co, msg ? msg : "error object is not a string", 0);
	internal_error(c, status == LUA_ERRMEM ? "out of memory" : "hook raised an error",
	    lua_tostring(L, -1));
	lua_pop(L, 1);
}

static int push_dns_result(struct hook_call *);

/*
 * Resumes the current coroutine with nargs values on its stack and keeps
 * going through the remaining hooks. Returns HOOK_DONE or HOOK_PENDING.
 */
static int
step(struct hook_call *c, int nargs)
{
	for (;;) {
		int nres = 0, status;

		if (c->co == NULL) {
			if (c->index >= c->rt->nhooks[c->stage])
				return HOOK_DONE;
			nargs = start_hook(c);
		}
		c->running = 1;
		budget_enter(&c->budget);	/* co has the count hook of L */
		watchdog_enter();	/* stuck in C (string.find): recycled */
		status = lua_resume(c->co, c->rt->L, nargs, &nres);
		watchdog_leave();
		budget_leave();
		c->running = 0;
		if (c->budget.spent) {
			internal_error(c, "instruction budget exceeded", NULL);
			return HOOK_DONE;
		}
		if (status == LUA_YIELD) {
			if (c->pending_ops == 0 && !c->dns.ready) {
				internal_error(c, "hook yielded outside an "
				    "indimail API call", NULL);
				return HOOK_DONE;
			}
			lua_pop(c->co, nres);
			if (!c->dns.ready)
				return HOOK_PENDING;
			nargs = push_dns_result(c);
			continue;
		}
		if (status != LUA_OK) {
			hook_failed(c, status);
			return HOOK_DONE;
		}
		if (hook_returned(c, nres))
			return HOOK_DONE;
		lua_settop(c->co, 0);
		release_co(c);
		c->index++;
		hook_verdict_free(&c->v);
		hook_verdict_init(&c->v);
	}
}

int
hook_run(struct runtime *rt, enum hook_stage stage, struct hook_ctx *ctx,
    struct hook_verdict *v, hook_done_cb cb, void *arg, struct hook_call **callp)
{
	struct hook_call *c;

	hook_verdict_init(v);
	*callp = NULL;
	if (rt->nhooks[stage] == 0)
		return HOOK_DONE;
	c = xcalloc(1, sizeof(*c));
	c->rt = rt;
	runtime_ref(rt);
	c->stage = stage;
	c->ctx = ctx;
	c->cb = cb;
	c->arg = arg;
	c->co_ref = c->tx_ref = c->msg_ref = LUA_NOREF;
	hook_verdict_init(&c->v);
	c->session_ref = make_session(rt->L, ctx);
	if (stage >= HOOK_MAIL)
		c->tx_ref = make_tx(rt->L, ctx);
	if (stage == HOOK_DATA || stage == HOOK_MESSAGE)
		c->msg_ref = make_msg(rt->L, c);
	if (step(c, 0) == HOOK_DONE) {
		c->finished = 1;
		hook_verdict_move(v, &c->v);
		maybe_free(c);
		return HOOK_DONE;
	}
	c->async = 1;
	*callp = c;
	if (hook_loop) {
		uv_timer_init(hook_loop, &c->timer);
		c->timer.data = c;
		c->timer_init = 1;
		uv_timer_start(&c->timer, on_hook_timeout,
		    (uint64_t)rt->cfg.timeout_hook, 0);
	}
	return HOOK_PENDING;
}

void
hook_cancel(struct hook_call *c)
{
	if (c == NULL || c->finished)
		return;
	c->cb = NULL;
	finish(c);
	maybe_free(c);
}

/* Continues a call after an async completion. */
static void
resume_call(struct hook_call *c)
{
	int nargs;

	if (c->finished) {
		maybe_free(c);
		return;
	}
	if (c->running)
		return;		/* completed synchronously; step() picks it up */
	nargs = push_dns_result(c);
	if (step(c, nargs) == HOOK_DONE) {
		finish(c);
		maybe_free(c);
	}
}

/* ---- indimail.dns.lookup(name [, type]) -------------------------------- */

static void
on_dns(void *arg, const struct dns_result *r)
{
	struct hook_call *c = arg;

	c->pending_ops--;
	c->dns.ready = 1;
	c->dns.status = r->status;
	c->dns.error = r->error ? xstrdup(r->error) : NULL;
	c->dns.n = r->n;
	c->dns.answers = xcalloc(r->n ? r->n : 1, sizeof(*r->answers));
	for (size_t i = 0; i < r->n; i++) {
		c->dns.answers[i].value = xstrdup(r->answers[i].value);
		c->dns.answers[i].preference = r->answers[i].preference;
	}
	resume_call(c);
}

static int
cmp_mx(const void *a, const void *b)
{
	return ((const struct dns_answer *)a)->preference -
	    ((const struct dns_answer *)b)->preference;
}

/* Pushes (answers, "ok"|"nodata"|"nxdomain") or (nil, "tempfail: why"). */
static int
push_dns_result(struct hook_call *c)
{
	static const char *st[] = { "ok", "nodata", "nxdomain" };
	lua_State *co = c->co;
	struct dns_pending *d = &c->dns;

	d->ready = 0;
	if (d->status == DNS_TEMPFAIL) {
		lua_pushnil(co);
		lua_pushfstring(co, "tempfail: %s", d->error ? d->error : "?");
	} else {
		if (d->type == DNS_MX)
			qsort(d->answers, d->n, sizeof(*d->answers), cmp_mx);
		lua_createtable(co, (int)d->n, 0);
		for (size_t i = 0; i < d->n; i++) {
			if (d->type == DNS_MX) {
				lua_createtable(co, 0, 2);
				setint(co, "preference", d->answers[i].preference);
				setstr(co, "host", d->answers[i].value);
			} else
				lua_pushstring(co, d->answers[i].value);
			lua_rawseti(co, -2, (lua_Integer)i + 1);
		}
		lua_pushstring(co, st[d->status]);
	}
	for (size_t i = 0; i < d->n; i++)
		free(d->answers[i].value);
	free(d->answers);
	free(d->error);
	memset(d, 0, sizeof(*d));
	return 2;
}

/* indimail.dns.lookup(name [, type="A"]) -> answers, status  (yields) */
static int
l_dns_lookup(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	const char *type = luaL_optstring(L, 2, "A");
	struct hook_call *c = *(struct hook_call **)lua_getextraspace(L);
	enum dns_type t;

	if (dns_type_parse(type, &t) < 0)
		return luaL_error(L, "unknown DNS type '%s' (A, AAAA, MX, TXT, PTR)", type);
	if (c == NULL || c->co != L)
		return luaL_error(L, "indimail.dns.lookup can only be called "
		    "from a hook (not at load time, not in a nested coroutine)");
	if (hook_dns == NULL)
		return luaL_error(L, "no DNS resolver in this process");
	c->pending_ops++;
	c->dns.type = t;
	dns_query(hook_dns, name, t, on_dns, c);
	return lua_yield(L, 0);
}

void
lua_hook_api_open(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "lookup", l_dns_lookup }, { NULL, NULL },
	};

	lua_getglobal(L, "indimail");
	luaL_newlib(L, fns);
	lua_setfield(L, -2, "dns");
	lua_pop(L, 1);
}
