/*
 * admin_route_queue: the queue's routes, through `indimail queue ...`
 * (the queue manager's control socket, docs/queue.md). A listing is read
 * back from the command's text (one line per message, then one indented
 * line per recipient) into JSON and filtered here by from, to, domain,
 * older_than and state; the actions on ids or on filters are the CLI's;
 * the destinations are the CLI's JSON as it is.
 * Queue ids are checked (letters and digits) before they reach argv.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../mail/envelope.h"
#include "../queue/queue_select.h"
#include "admin_route_int.h"

#define QUEUE_ARGS_MAX	16
#define RCPT_INDENT	"    "

/* "ID AGE SIZE  <sender>[  (held)]" into a new message object, or NULL. */
static json_t *
parse_entry(const char *line)
{
	char id[ENVELOPE_ID_LEN + 2], age[16];
	const char *lt = strchr(line, '<'), *gt = strrchr(line, '>');
	unsigned long long size;

	if (lt == NULL || gt == NULL || gt < lt ||
	    sscanf(line, "%25s %15s %llu", id, age, &size) != 3)
		return NULL;
	return json_pack("{s:s,s:s,s:I,s:I,s:s%,s:b,s:[]}", "id", id, "age",
	    age, "age_seconds", (json_int_t)queue_age_parse(age), "size",
	    (json_int_t)size, "sender", lt + 1, (size_t)(gt - lt - 1), "held",
	    strstr(gt, "(held)") != NULL, "recipients");
}

/* "    STATE <addr>[ attempts=N ...][ last_error="..."]" into m. */
static void
parse_rcpt(json_t *m, const char *line)
{
	char state[16];
	const char *lt = strchr(line, '<'), *gt = lt ? strchr(lt, '>') : NULL;
	const char *a = strstr(line, " attempts="), *e = strstr(line,
	    " last_error=\"");
	json_t *r;

	if (gt == NULL || sscanf(line, "%15s", state) != 1)
		return;
	r = json_pack("{s:s,s:s%}", "state", state, "address", lt + 1,
	    (size_t)(gt - lt - 1));
	if (a)
		json_object_set_new(r, "attempts", json_integer(atoi(a + 10)));
	if (e && strlen(e + 13) > 0)
		json_object_set_new(r, "last_error", json_stringn(e + 13,
		    strlen(e + 13) - (e[strlen(e) - 1] == '"')));
	json_array_append_new(json_object_get(m, "recipients"), r);
}

json_t *
route_queue_parse(const char *text)
{
	json_t *list = json_array(), *m = NULL;
	const char *line = text;

	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		char *l = strndup(line, n);
		if (l && strncmp(l, RCPT_INDENT, 4) == 0 && m)
			parse_rcpt(m, l + 4);
		else if (l && isalnum((unsigned char)l[0]) &&
		    strncmp(l, "ID ", 3) != 0 && (m = parse_entry(l)) != NULL)
			json_array_append_new(list, m);
		free(l);
		line = nl ? nl + 1 : NULL;
	}
	return list;
}

/* ---- filters -------------------------------------------------------------- */

struct filter {
	const char	*from, *to, *domain, *state;
	long long	 older;		/* seconds; 0 none */
};

static int
rcpt_matches(json_t *m, const struct filter *f)
{
	json_t *r;
	size_t i;

	json_array_foreach(json_object_get(m, "recipients"), i, r) {
		const char *a = json_string_value(json_object_get(r, "address"));
		const char *at = a ? strrchr(a, '@') : NULL;
		const char *st = json_string_value(json_object_get(r, "state"));
		if ((f->to == NULL || (a && strcasecmp(a, f->to) == 0)) &&
		    (f->domain == NULL || (at && strcasecmp(at + 1,
		    f->domain) == 0)) && (f->state == NULL ||
		    strcmp(f->state, "held") == 0 || (st && strcmp(st,
		    f->state) == 0)))
			return 1;
	}
	return 0;
}

static int
keep(json_t *m, const struct filter *f)
{
	const char *from = json_string_value(json_object_get(m, "sender"));

	if (f->from && (from == NULL || strcasecmp(from, f->from) != 0))
		return 0;
	if (f->older && json_integer_value(json_object_get(m,
	    "age_seconds")) < f->older)
		return 0;
	if (f->state && strcmp(f->state, "held") == 0 &&
	    !json_is_true(json_object_get(m, "held")))
		return 0;
	return rcpt_matches(m, f);
}

static int
read_filter(struct admin_ctx *c, struct filter *f)
{
	const char *older = c->req->query(c->req->query_arg, "older_than");

	f->from = c->req->query(c->req->query_arg, "from");
	f->to = c->req->query(c->req->query_arg, "to");
	f->domain = c->req->query(c->req->query_arg, "domain");
	f->state = c->req->query(c->req->query_arg, "state");
	f->older = 0;
	if (older && (f->older = queue_age_parse(older)) <= 0) {
		admin_route_error(c->res, 400, "older_than: give 90s, 30m, 2h, "
		    "3d or 1w");
		return -1;
	}
	if (f->state && strcmp(f->state, "held") && strcmp(f->state,
	    "pending") && strcmp(f->state, "active") && strcmp(f->state,
	    "queued")) {
		admin_route_error(c->res, 400, "state: held, pending, active "
		    "or queued");
		return -1;
	}
	return 0;
}

void
route_queue_list(struct admin_ctx *c)
{
	const char *args[] = { "queue", "list", NULL };
	struct buf out = BUF_INIT;
	struct filter f;
	json_t *all, *kept, *m;
	size_t i;

	if (read_filter(c, &f) < 0 || route_cli(c, args, NULL, &out,
	    NULL) < 0) {
		buf_free(&out);
		return;
	}
	all = route_queue_parse(buf_cstr(&out));
	kept = json_array();
	json_array_foreach(all, i, m)
		if (keep(m, &f))
			json_array_append(kept, m);
	json_decref(all);
	route_json(c, 200, kept);
	buf_free(&out);
}

/*
 * The destinations the queue manager knows (`queue destinations --json`);
 * ?state=down: only those not up (down or probing).
 */
void
route_queue_destinations(struct admin_ctx *c)
{
	const char *state = c->req->query(c->req->query_arg, "state");
	const char *args[] = { "queue", "destinations", "--json", NULL, NULL };
	struct buf out = BUF_INIT;
	json_t *list;

	if (state && strcmp(state, "down") != 0) {
		admin_route_error(c->res, 400, "state: only down");
		return;
	}
	if (state)
		args[3] = "--down";
	if (route_cli(c, args, NULL, &out, &list) == 0)
		route_json(c, 200, list);
	buf_free(&out);
}

/* ---- one message, and actions ------------------------------------------- */

static int
id_ok(struct admin_ctx *c, const char *id)
{
	size_t n = strlen(id);

	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]))
			n = 0;
	if (n == 0 || n > ENVELOPE_ID_LEN) {
		admin_route_error(c->res, 400, "not a queue id: letters and "
		    "digits, at most %d", ENVELOPE_ID_LEN);
		return 0;
	}
	return 1;
}

void
route_queue_show(struct admin_ctx *c)
{
	const char *args[] = { "queue", "show", c->param[0], NULL };
	struct buf out = BUF_INIT;
	json_t *list;

	if (id_ok(c, c->param[0]) && route_cli(c, args, NULL, &out, NULL) == 0) {
		list = route_queue_parse(buf_cstr(&out));
		if (json_array_size(list) == 1)
			route_json(c, 200, json_incref(json_array_get(list, 0)));
		else
			admin_route_error(c->res, 404, "no message in the "
			    "queue: %s", c->param[0]);
		json_decref(list);
	}
	buf_free(&out);
}

/* Runs `queue ARGS` and answers {"ok": true, "result": its line}. */
static void
act(struct admin_ctx *c, const char *const *args)
{
	struct buf out = BUF_INIT;

	if (route_cli(c, args, NULL, &out, NULL) == 0) {
		while (out.len && out.data[out.len - 1] == '\n')
			out.data[--out.len] = '\0';
		route_ok(c, 200, "result", buf_cstr(&out));
	}
	buf_free(&out);
}

/* remove: also "remove" (the bulk form); status: when it is none. */
static int
action_ok(struct admin_ctx *c, const char *a, int remove, int status)
{
	if (strcmp(a, "hold") == 0 || strcmp(a, "release") == 0 ||
	    strcmp(a, "flush") == 0 || strcmp(a, "requeue") == 0 ||
	    (remove && strcmp(a, "remove") == 0))
		return 1;
	admin_route_error(c->res, status, "no action %s: hold, release, "
	    "flush, requeue%s", a, remove ? ", remove" : "");
	return 0;
}

void
route_queue_remove(struct admin_ctx *c)
{
	const char *args[] = { "queue", "remove", c->param[0], NULL };

	if (id_ok(c, c->param[0]))
		act(c, args);
}

void
route_queue_act(struct admin_ctx *c)
{
	const char *args[] = { "queue", c->param[1], c->param[0], NULL };

	if (id_ok(c, c->param[0]) && action_ok(c, c->param[1], 0, 404))
		act(c, args);
}

/* {"action": "hold", "from": ..., "to":, "domain":, "older_than":, "all":} */
void
route_queue_bulk(struct admin_ctx *c)
{
	static const char *keys[][2] = { { "from", "--from" }, { "to", "--to" },
	    { "domain", "--domain" }, { "older_than", "--older-than" } };
	const char *args[QUEUE_ARGS_MAX] = { "queue" }, *a, *v;
	int n = 2, bad = 0, all;

	if (route_need_body(c) < 0 ||
	    ((a = route_body_string(c, "action", &bad)) == NULL && bad))
		return;
	if (a == NULL) {
		admin_route_error(c->res, 400, "body: \"action\" is required");
		return;
	}
	if (!action_ok(c, a, 1, 400))
		return;
	args[1] = a;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if ((v = route_body_string(c, keys[i][0], &bad)) == NULL && bad)
			return;
		if (v)
			args[n++] = keys[i][1], args[n++] = v;
	}
	all = json_is_true(json_object_get(c->body, "all"));
	if (all)
		args[n++] = "ALL";
	if (n == 2)
		admin_route_error(c->res, 400, "body: which messages? give "
		    "from, to, domain, older_than or \"all\": true");
	else
		act(c, args);
}
