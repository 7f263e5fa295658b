/*
 * lua_verdict: turns what a hook returned into a struct hook_verdict
 * (nil/true: go on; accept: the stage is over; reject/tempfail with code,
 * status and text; discard; hold and quarantine with their reason; tarpit
 * and any verdict's delay; the route verdict of the route stage), and our
 * own failures into a 451 4.3.0. Every field is read raw, so no policy
 * code runs while a verdict is read. Owns hook_verdict_init/move/free.
 */
#include <stdio.h>
#include <string.h>

#include "../lib/log.h"
#include "lua_hook_int.h"

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
	buf_free(&v->address);
}

void
hook_internal_error(struct hook_call *c, const char *what, const char *detail)
{
	struct logline l;

	log_begin(&l, LOG_ERROR, "hook_error");
	log_kv(&l, "session", c->ctx->session_id);
	if (c->ctx->queue_id)
		log_kv(&l, "qid", c->ctx->queue_id);
	log_kv(&l, "stage", hook_stage_name(c->stage));
	log_kv(&l, "policy", c->name);
	if (c->file)
		log_kv(&l, "file", c->file);
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

/* The bounds of a route's timeouts, as lua_config_delivery.c's. */
#define ROUTE_TIMEOUT_MIN	0.05
#define ROUTE_TIMEOUT_MAX	3600.0
#define MS_PER_SECOND		1000

/* Where timeouts.<name> goes in *to, or NULL for an unknown name. */
static int *
timeout_slot(struct client_timeouts *to, const char *name)
{
	if (strcmp(name, "connect") == 0)
		return &to->connect;
	if (strcmp(name, "greeting") == 0)
		return &to->greeting;
	if (strcmp(name, "command") == 0)
		return &to->command;
	if (strcmp(name, "data") == 0)
		return &to->data;
	return NULL;
}

/* One timeouts entry: key at -2, value at -1. NULL, or why not. */
static const char *
timeout_entry(lua_State *L, struct client_timeouts *to, const char **key)
{
	int *slot;
	lua_Number secs;

	*key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
	if (*key == NULL || (slot = timeout_slot(to, *key)) == NULL)
		return "is not one of connect, greeting, command, data";
	secs = lua_tonumber(L, -1);
	if (!lua_isnumber(L, -1) || !(secs >= ROUTE_TIMEOUT_MIN &&
	    secs <= ROUTE_TIMEOUT_MAX))
		return "must be a number of seconds from 0.05 to 3600";
	*slot = (int)(secs * MS_PER_SECOND + 0.5);
	return NULL;
}

const char *
hook_route_timeouts(lua_State *L, int i, struct client_timeouts *to,
    const char **key)
{
	struct client_timeouts got = { 0, 0, 0, 0 };
	const char *err = NULL;

	*key = NULL;
	i = lua_absindex(L, i);
	if (lua_isnil(L, i))
		return NULL;
	if (!lua_istable(L, i))
		return "must be a table { connect=, greeting=, command=, data= }";
	lua_pushnil(L);
	while (err == NULL && lua_next(L, i)) {
		err = timeout_entry(L, &got, key);
		lua_pop(L, 1);
	}
	if (err) {
		lua_pop(L, 1);		/* the key of the interrupted lua_next */
		return err;
	}
	*to = got;
	return NULL;
}

/* A relay route's timeouts field (verdict table t). NULL, or why not. */
static const char *
parse_route_timeouts(lua_State *co, int t, struct hook_verdict *v)
{
	const char *err, *key;

	hook_rawfield(co, t, "timeouts");
	err = hook_route_timeouts(co, -1, &v->route_timeouts, &key);
	lua_pop(co, 1);
	return err ? "a relay route's timeouts are { connect=, greeting=, "
	    "command=, data= } seconds from 0.05 to 3600" : NULL;
}

/* {action="route", route="local"|"mx"|"relay", host=, port=, ...} */
static const char *
parse_route(lua_State *co, struct hook_verdict *v)
{
	const char *kind, *host, *user, *pass, *tls;
	lua_Integer port;
	int t = lua_gettop(co) - 4;	/* the verdict table */

	hook_rawfield(co, t, "route");
	hook_rawfield(co, t, "host");
	hook_rawfield(co, t, "port");
	hook_rawfield(co, t, "auth_user");
	hook_rawfield(co, t, "auth_password");
	hook_rawfield(co, t, "tls");
	hook_rawfield(co, t, "auth_plaintext");
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
		return parse_route_timeouts(co, t, v);
	} else
		return "route must be \"local\", \"mx\" or \"relay\"";
	return NULL;
}

/* A reason or a reply text: one line of at most 400 characters. */
static int
valid_text(const char *text)
{
	return text != NULL && text[strcspn(text, "\r\n")] == '\0' &&
	    strlen(text) <= 400;
}

/* The one check of a reject (cls 5) or tempfail (4): NULL or why not. */
const char *
hook_verdict_check(int cls, lua_Integer code, const char *status,
    const char *text)
{
	if (code / 100 != cls)
		return cls == 5 ? "a reject needs a 5xx code (550)" :
		    "a tempfail needs a 4xx code (451)";
	if (status == NULL || !valid_status(status, cls))
		return cls == 5 ? "a reject's status must look like 5.7.1" :
		    "a tempfail's status must look like 4.7.1";
	if (!valid_text(text))
		return "verdict text must be one line of at most 400 characters";
	return NULL;
}

/* {delay=seconds} on any verdict (indimail.tarpit); t is the table. */
static const char *
parse_delay(lua_State *co, int t, struct hook_verdict *v)
{
	lua_Number d;

	hook_rawfield(co, t, "delay");
	if (lua_isnil(co, -1)) {
		lua_pop(co, 1);
		return NULL;
	}
	d = lua_tonumber(co, -1);
	lua_pop(co, 1);
	if (!(d >= 0 && d <= HOOK_DELAY_MAX))	/* NaN too */
		return "verdict delay must be a number of seconds from 0 to 3600";
	v->delay_ms = (uint64_t)(d * 1000 + 0.5);
	return NULL;
}

/* {action="quarantine", address=, text=reason} */
static const char *
parse_quarantine(lua_State *co, int t, const char *text,
    struct hook_verdict *v)
{
	const char *a;
	size_t n;

	hook_rawfield(co, t, "address");
	a = lua_type(co, -1) == LUA_TSTRING ? lua_tolstring(co, -1, &n) : NULL;
	if (a == NULL || n > 254 || strlen(a) != n || a[strcspn(a,
	    " \t\r\n<>,")] || strchr(a, '@') == NULL || a[0] == '@' ||
	    a[n - 1] == '@')
		return "quarantine needs an address like quarantine@example.org";
	v->action = VERDICT_QUARANTINE;
	buf_set(&v->address, a, n);
	buf_set(&v->text, text, strlen(text));
	lua_pop(co, 1);
	return NULL;
}

/* The actions without a code: accept, tarpit, discard, hold, quarantine. */
static const char *
parse_plain(lua_State *co, int t, const char *action, const char *text,
    struct hook_verdict *v)
{
	if (strcmp(action, "accept") == 0)
		v->stop = 1;
	else if (strcmp(action, "tarpit") == 0)
		return NULL;
	else if (strcmp(action, "discard") == 0)
		v->action = VERDICT_DISCARD;
	else if (strcmp(action, "hold") == 0 || strcmp(action, "quarantine")
	    == 0) {
		if (text == NULL)
			text = "by policy";
		if (!valid_text(text))
			return "a hold or quarantine reason must be one line "
			    "of at most 400 characters";
		if (action[0] == 'q')
			return parse_quarantine(co, t, text, v);
		v->action = VERDICT_HOLD;
		buf_set(&v->text, text, strlen(text));
	} else
		return "verdict action must be accept, reject, tempfail, "
		    "discard, hold, quarantine or tarpit";
	return NULL;
}

/* reject/tempfail: code, status and text must agree with the action. */
static const char *
parse_refusal(const char *action, lua_Integer code, const char *status,
    const char *text, struct hook_verdict *v)
{
	const char *err;
	int cls;

	if (strcmp(action, "reject") == 0)
		v->action = VERDICT_REJECT, cls = 5;
	else
		v->action = VERDICT_TEMPFAIL, cls = 4;
	if ((err = hook_verdict_check(cls, code, status, text)) != NULL)
		return err;
	v->code = (int)code;
	snprintf(v->status, sizeof(v->status), "%s", status);
	buf_set(&v->text, text, strlen(text));
	return NULL;
}

const char *
hook_parse_verdict(lua_State *co, int nres, struct hook_verdict *v)
{
	const char *action, *text, *status, *err;
	lua_Integer code;
	int t = lua_gettop(co);

	if (nres == 0 || lua_isnil(co, -1) ||
	    (lua_isboolean(co, -1) && lua_toboolean(co, -1)))
		return NULL;		/* go on */
	if (!lua_istable(co, -1))
		return "hook returned neither nil nor a verdict table";
	if ((err = parse_delay(co, t, v)) != NULL)
		return err;
	hook_rawfield(co, t, "action");
	hook_rawfield(co, t, "code");
	hook_rawfield(co, t, "status");
	hook_rawfield(co, t, "text");
	action = lua_tostring(co, -4);
	code = lua_tointeger(co, -3);
	status = lua_tostring(co, -2);
	text = lua_tostring(co, -1);
	if (action == NULL)
		return "verdict has no action";
	if (strcmp(action, "route") == 0)
		return parse_route(co, v);
	if (strcmp(action, "reject") == 0 || strcmp(action, "tempfail") == 0)
		return parse_refusal(action, code, status, text, v);
	return parse_plain(co, t, action, text, v);
}

/* Is the verdict one this stage can apply? NULL, or why not. */
const char *
hook_verdict_stage_error(enum hook_stage st, const struct hook_verdict *v)
{
	switch (v->action) {
	case VERDICT_ROUTE:
		return st == HOOK_ROUTE ? NULL :
		    "a route verdict is only valid in the route hook";
	case VERDICT_HOLD:
		return st >= HOOK_MAIL && st <= HOOK_MESSAGE ? NULL :
		    "hold is only valid in the mail, rcpt, data and message hooks";
	case VERDICT_QUARANTINE:
		return st >= HOOK_RCPT && st <= HOOK_MESSAGE ? NULL :
		    "quarantine is only valid in the rcpt, data and message hooks";
	default:
		break;
	}
	if (v->delay_ms && st == HOOK_ROUTE)
		return "tarpit is not valid in the route hook (no client waits)";
	return NULL;
}
