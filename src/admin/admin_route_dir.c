/*
 * admin_route_dir: the directory's routes (domains, users, aliases), each
 * one bin/indimail command of docs/directory.md with --json: the CLI
 * checks the input, hashes passwords (read from its stdin, never from
 * argv, which other local users can see) and tells the running daemon to
 * forget its cached answers. Whatever the client sent comes after "--"
 * or as an option's value.
 */
#include <stdio.h>
#include <string.h>

#include "admin_route_int.h"

#define ARGS_MAX	16	/* of one bin/indimail command */
#define TARGETS_MAX	3	/* alias targets bin/indimail takes at once */
#define QUOTA_TEXT	32

/* Runs args; answers status with its JSON (show/list) or {"ok":true}. */
static void
run(struct admin_ctx *c, const char *const *args, const char *input,
    int status, int want_json)
{
	struct buf out = BUF_INIT;
	json_t *v = NULL;

	if (route_cli(c, args, input, &out, want_json ? &v : NULL) == 0) {
		if (want_json)
			route_json(c, status, v);
		else
			route_ok(c, status, NULL, NULL);
	}
	buf_free(&out);
}

void
route_domains_list(struct admin_ctx *c)
{
	const char *args[] = { "domain", "list", NULL };

	run(c, args, NULL, 200, 1);
}

void
route_domains_add(struct admin_ctx *c)
{
	const char *args[ARGS_MAX] = { "domain", "add" }, *d, *pm, *of;
	int n = 2, bad = 0;

	if (route_need_body(c) < 0)
		return;
	d = route_body_string(c, "domain", &bad);
	pm = route_body_string(c, "postmaster", &bad);
	of = route_body_string(c, "alias_of", &bad);
	if (bad)
		return;
	if (d == NULL) {
		admin_route_error(c->res, 400, "body: \"domain\" is required");
		return;
	}
	if (pm)
		args[n++] = "--postmaster", args[n++] = pm;
	if (of)
		args[n++] = "--alias-of", args[n++] = of;
	args[n++] = "--";
	args[n++] = d;
	run(c, args, NULL, 201, 0);
}

void
route_domain_show(struct admin_ctx *c)
{
	const char *args[] = { "domain", "show", "--", c->param[0], NULL };

	run(c, args, NULL, 200, 1);
}

void
route_domain_del(struct admin_ctx *c)
{
	const char *args[] = { "domain", "del", "--", c->param[0], NULL };

	run(c, args, NULL, 200, 0);
}

void
route_users_list(struct admin_ctx *c)
{
	const char *args[] = { "user", "list", "--", c->param[0], NULL };

	run(c, args, NULL, 200, 1);
}

/* "password" of the body as a line for --password-stdin: 0, or -1. */
static int
password_line(struct admin_ctx *c, const char *pw, struct buf *line)
{
	if (strchr(pw, '\n') || strchr(pw, '\r')) {
		admin_route_error(c->res, 400, "body: \"password\" must be "
		    "one line");
		return -1;
	}
	buf_printf(line, "%s\n", pw);
	return 0;
}

/* "quota": a number of bytes or a string ("2M"): its text, or NULL. */
static const char *
quota_text(struct admin_ctx *c, char *tmp, size_t n, int *bad)
{
	json_t *q = json_object_get(c->body, "quota");

	if (q == NULL || json_is_null(q))
		return NULL;
	if (json_is_integer(q)) {
		snprintf(tmp, n, "%lld", (long long)json_integer_value(q));
		return tmp;
	}
	return route_body_string(c, "quota", bad);
}

void
route_user_add(struct admin_ctx *c)
{
	const char *args[ARGS_MAX] = { "user", "add", "--password-stdin" };
	const char *local, *pw, *quota;
	struct buf addr = BUF_INIT, line = BUF_INIT;
	char tmp[QUOTA_TEXT];
	int n = 3, bad = 0;

	if (route_need_body(c) < 0)
		return;
	local = route_body_string(c, "local", &bad);
	pw = route_body_string(c, "password", &bad);
	quota = quota_text(c, tmp, sizeof(tmp), &bad);
	if (bad)
		return;
	if (local == NULL || pw == NULL) {
		admin_route_error(c->res, 400, "body: \"local\" and "
		    "\"password\" are required");
		return;
	}
	if (password_line(c, pw, &line) == 0) {
		buf_printf(&addr, "%s@%s", local, c->param[0]);
		if (quota)
			args[n++] = "--quota", args[n++] = quota;
		args[n++] = "--";
		args[n++] = buf_cstr(&addr);
		run(c, args, buf_cstr(&line), 201, 0);
	}
	buf_wipe(&line);
	buf_free(&addr);
}

void
route_user_show(struct admin_ctx *c)
{
	const char *args[] = { "user", "show", "--", c->param[0], NULL };

	run(c, args, NULL, 200, 1);
}

void
route_user_del(struct admin_ctx *c)
{
	const char *args[] = { "user", "del", "--", c->param[0], NULL };

	run(c, args, NULL, 200, 0);
}

/* flags = { disabled=, no_smtp=, ... } as bin/indimail's options. */
static int
flag_args(struct admin_ctx *c, const char **args, int n)
{
	static const struct { const char *key, *on, *off; } f[] = {
	    { "disabled", "--disable", "--enable" },
	    { "no_smtp", "--no-smtp", "--smtp" },
	    { "no_imap", "--no-imap", "--imap" },
	    { "no_pop", "--no-pop", "--pop" },
	    { "no_relay", "--no-relay", "--relay" } };

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		json_t *v = json_object_get(c->body, f[i].key);
		if (v == NULL)
			continue;
		if (!json_is_boolean(v)) {
			admin_route_error(c->res, 400, "body: \"%s\" must be "
			    "true or false", f[i].key);
			return -1;
		}
		args[n++] = json_is_true(v) ? f[i].on : f[i].off;
	}
	return n;
}

/* PATCH: "password" (user passwd), then "quota" and the flags (user mod). */
void
route_user_mod(struct admin_ctx *c)
{
	const char *args[ARGS_MAX] = { "user", "mod" }, *quota, *pw;
	const char *pargs[] = { "user", "passwd", "--password-stdin", "--",
	    c->param[0], NULL };
	struct buf line = BUF_INIT, out = BUF_INIT;
	char tmp[QUOTA_TEXT];
	int n = 2, bad = 0;

	if (route_need_body(c) < 0)
		return;
	pw = route_body_string(c, "password", &bad);
	quota = quota_text(c, tmp, sizeof(tmp), &bad);
	if (bad || (n = flag_args(c, args, n)) < 0)
		return;
	if (quota)
		args[n++] = "--quota", args[n++] = quota;
	if (pw == NULL && n == 2)
		admin_route_error(c->res, 400, "body: nothing to change (give "
		    "password, quota or a flag)");
	else if (pw == NULL || (password_line(c, pw, &line) == 0 &&
	    route_cli(c, pargs, buf_cstr(&line), &out, NULL) == 0)) {
		args[n++] = "--";
		args[n++] = c->param[0];
		if (n > 4)
			run(c, args, NULL, 200, 0);
		else
			route_ok(c, 200, NULL, NULL);
	}
	buf_wipe(&line);
	buf_free(&out);
}

void
route_aliases_list(struct admin_ctx *c)
{
	const char *args[] = { "alias", "list", NULL };

	run(c, args, NULL, 200, 1);
}

void
route_alias_show(struct admin_ctx *c)
{
	const char *args[] = { "alias", "list", "--", c->param[0], NULL };

	run(c, args, NULL, 200, 1);
}

void
route_alias_add(struct admin_ctx *c)
{
	const char *args[ARGS_MAX] = { "alias", "add", "--" }, *alias;
	json_t *t;
	size_t i;
	int bad = 0, n = 3;

	if (route_need_body(c) < 0 ||
	    ((alias = route_body_string(c, "alias", &bad)) == NULL && bad))
		return;
	t = json_object_get(c->body, "targets");
	if (alias == NULL || !json_is_array(t) || json_array_size(t) == 0 ||
	    json_array_size(t) > TARGETS_MAX) {
		admin_route_error(c->res, 400, "body: \"alias\" and \"targets\" "
		    "(1 to %d addresses) are required", TARGETS_MAX);
		return;
	}
	args[n++] = alias;
	for (i = 0; i < json_array_size(t); i++) {
		json_t *v = json_array_get(t, i);
		if (!json_is_string(v) || strlen(json_string_value(v)) !=
		    json_string_length(v)) {
			admin_route_error(c->res, 400, "body: \"targets\" must "
			    "hold strings");
			return;
		}
		args[n++] = json_string_value(v);
	}
	run(c, args, NULL, 201, 0);
}

/* DELETE /v1/aliases/{alias}[?target=ADDRESS]: one target, or all. */
void
route_alias_del(struct admin_ctx *c)
{
	const char *target = c->req->query(c->req->query_arg, "target");
	const char *args[] = { "alias", "del", "--", c->param[0], target, NULL };

	run(c, args, NULL, 200, 0);
}
