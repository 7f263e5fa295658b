/*
 * admin_route: the table of routes and the dispatch (admin_route.h), the
 * reply helpers every route uses, and the small routes (config check and
 * reload, stats, /metrics). A path is matched segment by segment against
 * each route's pattern, "{name}" taking one segment; a known path with
 * another method is 405, an unknown one 404, a route whose scope the
 * token lacks 403. Errors are {"error": "why"}.
 *
 * Directory, queue and stats operations run bin/indimail's own commands
 * (through the backend, admin_spawn.c), as IndiMail's indisrvr ran its
 * tools: validation, password hashing, the daemon's cache flush and the
 * queue manager's control socket stay in one place, and a slow database
 * or queue manager costs one child process, killed at its time limit.
 * User input only ever follows "--" or is an option's value, so it can
 * never be read as an option.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "admin_route_int.h"
#include "admin_token.h"

#define SEGMENTS_MAX	8	/* of a path we route */
#define SINCE_MAX	32	/* --since's value */

static void route_config_check(struct admin_ctx *);
static void route_config_reload(struct admin_ctx *);
static void route_stats(struct admin_ctx *);
static void route_metrics(struct admin_ctx *);

/*
 * Every route. docs/admin-api.yaml must describe each one
 * (tests/integration/admin_api_spec.lua reads this table).
 */
static const struct route {
	const char	*method, *pattern;
	unsigned	 scope;
	admin_handler	 fn;
} routes[] = {
	{ "GET", "/v1/domains", SCOPE_DOMAINS_READ, route_domains_list },
	{ "POST", "/v1/domains", SCOPE_DOMAINS_WRITE, route_domains_add },
	{ "GET", "/v1/domains/{domain}", SCOPE_DOMAINS_READ, route_domain_show },
	{ "DELETE", "/v1/domains/{domain}", SCOPE_DOMAINS_WRITE, route_domain_del },
	{ "GET", "/v1/domains/{domain}/users", SCOPE_USERS_READ, route_users_list },
	{ "POST", "/v1/domains/{domain}/users", SCOPE_USERS_WRITE, route_user_add },
	{ "GET", "/v1/users/{address}", SCOPE_USERS_READ, route_user_show },
	{ "PATCH", "/v1/users/{address}", SCOPE_USERS_WRITE, route_user_mod },
	{ "DELETE", "/v1/users/{address}", SCOPE_USERS_WRITE, route_user_del },
	{ "GET", "/v1/aliases", SCOPE_ALIASES_READ, route_aliases_list },
	{ "POST", "/v1/aliases", SCOPE_ALIASES_WRITE, route_alias_add },
	{ "GET", "/v1/aliases/{alias}", SCOPE_ALIASES_READ, route_alias_show },
	{ "DELETE", "/v1/aliases/{alias}", SCOPE_ALIASES_WRITE, route_alias_del },
	{ "GET", "/v1/queue", SCOPE_QUEUE_READ, route_queue_list },
	{ "POST", "/v1/queue/actions", SCOPE_QUEUE_WRITE, route_queue_bulk },
	{ "GET", "/v1/queue/destinations", SCOPE_QUEUE_READ,
	    route_queue_destinations },
	{ "GET", "/v1/queue/{id}", SCOPE_QUEUE_READ, route_queue_show },
	{ "DELETE", "/v1/queue/{id}", SCOPE_QUEUE_WRITE, route_queue_remove },
	{ "POST", "/v1/queue/{id}/{action}", SCOPE_QUEUE_WRITE, route_queue_act },
	{ "GET", "/v1/config/check", SCOPE_CONFIG_READ, route_config_check },
	{ "POST", "/v1/config/reload", SCOPE_CONFIG_WRITE, route_config_reload },
	{ "GET", "/v1/stats", SCOPE_STATS_READ, route_stats },
	{ "GET", "/metrics", SCOPE_METRICS, route_metrics },
};

#define NROUTES	(sizeof(routes) / sizeof(routes[0]))

/* ---- replies ------------------------------------------------------------- */

void
admin_route_error(struct admin_response *res, int status, const char *fmt, ...)
{
	struct buf why = BUF_INIT;
	json_t *o;
	char *text;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&why, fmt, ap);
	va_end(ap);
	o = json_pack("{s:s}", "error", buf_cstr(&why));
	text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	buf_clear(&res->body);
	buf_appends(&res->body, text ? text : "{\"error\":\"?\"}");
	buf_appendc(&res->body, '\n');
	res->status = status;
	res->content_type = "application/json";
	free(text);
	json_decref(o);
	buf_free(&why);
}

void
route_json(struct admin_ctx *c, int status, json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	buf_clear(&c->res->body);
	buf_appends(&c->res->body, text ? text : "null");
	buf_appendc(&c->res->body, '\n');
	c->res->status = status;
	c->res->content_type = "application/json";
	free(text);
	json_decref(v);
}

void
route_ok(struct admin_ctx *c, int status, const char *key, const char *value)
{
	json_t *o = json_pack("{s:b}", "ok", 1);

	if (key)
		json_object_set_new(o, key, json_string(value));
	route_json(c, status, o);
}

/* The CLI's "indimail: why" on stderr, without the prefix and newline. */
static const char *
cli_reason(struct buf *err)
{
	const char *s = buf_cstr(err), *nl;

	if (strncmp(s, "indimail: ", 10) == 0)
		s += 10;
	if ((nl = strrchr(s, '\n')) != NULL && nl[1] == '\0')
		err->data[nl - err->data] = '\0';
	return *s ? s : "the command failed";
}

/* sysexits(3) of bin/indimail (docs/directory.md) as HTTP statuses. */
static int
cli_status(int code, const char *why)
{
	switch (code) {
	case EX_USAGE:
	case EX_DATAERR:
		return 400;
	case EX_NOUSER:
	case EX_NOHOST:
		return 404;
	case EX_CANTCREAT:
		return 409;
	case 1:		/* the queue commands */
		if (strstr(why, "no message in the queue"))
			return 404;
		return strstr(why, "queue manager") || strcasestr(why,
		    "permission") ? 503 : 400;
	case EX_CONFIG:
	case EX_SOFTWARE:
		return 500;
	default:
		return 503;
	}
}

int
route_cli(struct admin_ctx *c, const char *const *args, const char *input,
    struct buf *out, json_t **json)
{
	struct buf err = BUF_INIT;
	json_error_t jerr;
	int code = c->be->cli(c->be->arg, args, input, out, &err);

	if (code != 0) {
		const char *why = code < 0 ? buf_cstr(&err) : cli_reason(&err);
		admin_route_error(c->res, code < 0 ? 503 : cli_status(code, why),
		    "%s", why);
		buf_free(&err);
		return -1;
	}
	buf_free(&err);
	if (json == NULL)
		return 0;
	*json = out->len == 0 ? json_null() : json_loadb(out->data, out->len,
	    JSON_DECODE_ANY, &jerr);
	if (*json == NULL) {
		admin_route_error(c->res, 500, "bin/indimail's output is not "
		    "JSON: %s", jerr.text);
		return -1;
	}
	return 0;
}

const char *
route_body_string(struct admin_ctx *c, const char *key, int *bad)
{
	json_t *v = c->body ? json_object_get(c->body, key) : NULL;

	if (v == NULL || json_is_null(v))
		return NULL;
	if (!json_is_string(v) || strlen(json_string_value(v)) !=
	    json_string_length(v)) {
		admin_route_error(c->res, 400, "body: \"%s\" must be a string "
		    "(without NUL)", key);
		*bad = 1;
		return NULL;
	}
	return json_string_value(v);
}

int
route_need_body(struct admin_ctx *c)
{
	if (c->body != NULL)
		return 0;
	admin_route_error(c->res, 400, "body: a JSON object is required");
	return -1;
}

/* ---- small routes -------------------------------------------------------- */

static void
route_config_check(struct admin_ctx *c)
{
	struct buf out = BUF_INIT, err = BUF_INIT;
	int code = c->be->check(c->be->arg, &out, &err);

	if (code < 0)
		admin_route_error(c->res, 503, "%s", buf_cstr(&err));
	else {
		buf_append(&out, err.data, err.len);	/* -t's problems */
		route_json(c, 200, json_pack("{s:b,s:s}", "ok", code == 0,
		    "report", buf_cstr(&out)));
	}
	buf_free(&out);
	buf_free(&err);
}

static void
route_config_reload(struct admin_ctx *c)
{
	struct buf err = BUF_INIT;

	if (c->be->reload(c->be->arg, &err) == 0)
		route_ok(c, 200, "reload", "done");
	else
		admin_route_error(c->res, 409, "reload refused: %s",
		    buf_cstr(&err));
	buf_free(&err);
}

/* --since: "24h", "7d", "2026-11-25[T08:00[:00]]"; stats.c checks it. */
static int
since_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= SINCE_MAX && s[0] != '-' &&
	    strspn(s, "0123456789smhdwT:-") == n;
}

static void
route_stats(struct admin_ctx *c)
{
	const char *since = c->req->query(c->req->query_arg, "since");
	struct buf out = BUF_INIT, err = BUF_INIT;
	int code;

	since = since ? since : "24h";
	if (!since_ok(since))
		admin_route_error(c->res, 400, "since: give 24h, 7d or "
		    "YYYY-MM-DD[THH:MM]");
	else if ((code = c->be->stats(c->be->arg, since, &out, &err)) == 0)
		route_json(c, 200, json_pack("{s:s,s:s}", "since", since,
		    "report", buf_cstr(&out)));
	else
		admin_route_error(c->res, code == EX_USAGE ? 400 : 503, "%s",
		    code < 0 ? buf_cstr(&err) : cli_reason(&err));
	buf_free(&out);
	buf_free(&err);
}

static void
route_metrics(struct admin_ctx *c)
{
	buf_clear(&c->res->body);
	c->be->metrics(c->be->arg, &c->res->body);
	c->res->status = 200;
	c->res->content_type = "text/plain; version=0.0.4";
}

/* ---- dispatch ------------------------------------------------------------ */

/* Splits path at '/' into at most max segments (in place): the count. */
static size_t
split(char *path, char **seg, size_t max)
{
	size_t n = 0;
	char *save = NULL;

	for (char *s = strtok_r(path, "/", &save); s;
	    s = strtok_r(NULL, "/", &save)) {
		if (n == max)
			return max + 1;
		seg[n++] = s;
	}
	return n;
}

/* Does pattern match the segments? Fills param[]. */
static int
match(const char *pattern, char **seg, size_t n, const char **param)
{
	char copy[64], *pseg[SEGMENTS_MAX];
	size_t np, k = 0;

	snprintf(copy, sizeof(copy), "%s", pattern);
	if ((np = split(copy, pseg, SEGMENTS_MAX)) != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (pseg[i][0] == '{' && k < ROUTE_PARAMS_MAX)
			param[k++] = seg[i];
		else if (strcmp(pseg[i], seg[i]) != 0)
			return 0;
	}
	return 1;
}

/* The route for method and path: NULL with *known set if the path is. */
static const struct route *
find(const char *method, char *path, const char **param, int *known)
{
	char *seg[SEGMENTS_MAX];
	size_t n = split(path, seg, SEGMENTS_MAX);

	*known = 0;
	if (n > SEGMENTS_MAX)
		return NULL;
	for (size_t i = 0; i < NROUTES; i++)
		if (match(routes[i].pattern, seg, n, param)) {
			if (strcmp(routes[i].method, method) == 0)
				return &routes[i];
			*known = 1;
		}
	return NULL;
}

static int
parse_body(struct admin_ctx *c)
{
	json_error_t jerr;

	if (c->req->body_len == 0)
		return 0;
	c->body = json_loadb(c->req->body, c->req->body_len,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (c->body == NULL) {
		admin_route_error(c->res, 400, "body: not JSON: %s (line %d, "
		    "column %d)", jerr.text, jerr.line, jerr.column);
		return -1;
	}
	if (!json_is_object(c->body)) {
		admin_route_error(c->res, 400, "body: must be a JSON object");
		return -1;
	}
	return 0;
}

void
admin_route(const struct admin_backend *be, const struct admin_request *req,
    struct admin_response *res)
{
	struct admin_ctx c = { be, req, res, { NULL, NULL }, NULL };
	struct buf path = BUF_INIT;
	const struct route *r;
	int known;

	buf_printf(&path, "%s/", req->path);	/* never empty */
	r = find(req->method, path.data, c.param, &known);
	if (r == NULL && known)
		admin_route_error(res, 405, "method %s not allowed here",
		    req->method);
	else if (r == NULL)
		admin_route_error(res, 404, "no such resource");
	else if ((req->scopes & r->scope) != r->scope)
		admin_route_error(res, 403, "this token lacks the scope %s",
		    admin_scope_name(__builtin_ctz(r->scope)));
	else if (req->body_len > ADMIN_BODY_MAX)
		admin_route_error(res, 413, "body over %d bytes", ADMIN_BODY_MAX);
	else if (parse_body(&c) == 0)
		r->fn(&c);
	json_decref(c.body);
	buf_free(&path);
}
