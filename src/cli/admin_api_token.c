/*
 * admin_api_token: `indimail admin token add NAME --scopes a,b,...`,
 * `indimail admin token list` and `indimail admin token remove NAME`, the
 * bearer tokens of the admin HTTP API (docs/admin-api.md). A new token is
 * printed once and only its SHA-256 is kept, in the tokens file (admin.
 * tokens, default "admin-tokens" beside the configuration), written as
 * root:<user> 0640 so that the admin process (the account) can read it
 * and nobody else. The running admin process sees a change by itself.
 */
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../admin/admin_token.h"
#include "../lua/lua_runtime.h"
#include "admin.h"

static int
usage(void)
{
	return admin_fail(EX_USAGE, "usage: indimail admin token add NAME "
	    "--scopes SCOPE,... | list | remove NAME");
}

/* root:<user's group> when run as root with a user = configured. */
static gid_t
file_group(const struct config *c)
{
	struct passwd *pw;

	if (geteuid() != 0 || c->user == NULL ||
	    (pw = getpwnam(c->user)) == NULL)
		return (gid_t)-1;
	return pw->pw_gid;
}

static int
token_add(struct admin_tokens *t, int argc, char **argv, struct buf *err)
{
	unsigned char hash[ADMIN_HASH_BYTES];
	struct buf token = BUF_INIT;
	unsigned scopes;

	if (argc != 4 || strcmp(argv[2], "--scopes") != 0)
		return usage();
	if (admin_scopes_parse(argv[3], &scopes, err) < 0 || scopes == 0)
		return admin_fail(EX_USAGE, "--scopes: %s", err->len ?
		    buf_cstr(err) : "give at least one scope");
	if (admin_token_new(&token, hash) < 0)
		return admin_fail(EX_OSERR, "getrandom failed");
	if (admin_tokens_add(t, argv[1], scopes, hash, err) < 0) {
		buf_wipe(&token);
		return admin_fail(EX_CANTCREAT, "%s", buf_cstr(err));
	}
	printf("%s\n", buf_cstr(&token));
	buf_wipe(&token);
	return 0;
}

static void
token_list(const struct admin_tokens *t, int json)
{
	struct buf out = BUF_INIT, scopes = BUF_INIT;

	buf_appends(&out, json ? "[" : "");
	for (size_t i = 0; i < t->n; i++) {
		buf_clear(&scopes);
		admin_scopes_format(t->v[i].scopes, &scopes);
		if (json) {
			buf_appends(&out, i ? ",{\"name\":" : "{\"name\":");
			admin_json_str(&out, t->v[i].name);
			buf_appends(&out, ",\"scopes\":");
			admin_json_str(&out, buf_cstr(&scopes));
			buf_appendc(&out, '}');
		} else
			buf_printf(&out, "%s\t%s\n", t->v[i].name,
			    buf_cstr(&scopes));
	}
	buf_appends(&out, json ? "]\n" : "");
	fputs(buf_cstr(&out), stdout);
	buf_free(&out);
	buf_free(&scopes);
}

/* argv: "token" VERB ... */
static int
token_command(const struct config *c, const char *path, int json, int argc,
    char **argv)
{
	struct admin_tokens t;
	struct buf err = BUF_INIT;
	int rc = 0;

	if (admin_tokens_load(path, &t, &err) < 0)
		return admin_fail(EX_DATAERR, "%s", buf_cstr(&err));
	if (strcmp(argv[1], "list") == 0 && argc == 2)
		token_list(&t, json);
	else if (strcmp(argv[1], "add") == 0)
		rc = token_add(&t, argc - 1, argv + 1, &err);
	else if (strcmp(argv[1], "remove") == 0 && argc == 3)
		rc = admin_tokens_remove(&t, argv[2]) == 0 ? 0 :
		    admin_fail(EX_NOUSER, "no token named %s", argv[2]);
	else
		rc = usage();
	if (rc == 0 && strcmp(argv[1], "list") != 0 &&
	    admin_tokens_save(path, &t, file_group(c), &err) < 0)
		rc = admin_fail(EX_CANTCREAT, "%s", buf_cstr(&err));
	admin_tokens_free(&t);
	buf_free(&err);
	return rc;
}

int
admin_api_main(const char *config, int json, int argc, char **argv)
{
	struct buf err = BUF_INIT, path = BUF_INIT;
	struct runtime *rt;
	int rc;

	if (argc < 3 || strcmp(argv[1], "token") != 0)
		return usage();
	if ((rt = runtime_load(config, &err)) == NULL) {
		rc = admin_fail(EX_CONFIG, "%s", buf_cstr(&err));
		buf_free(&err);
		return rc;
	}
	admin_tokens_path(rt->cfg.admin.tokens, rt->path, &path);
	rc = token_command(&rt->cfg, buf_cstr(&path), json, argc - 1, argv + 1);
	buf_free(&path);
	runtime_unref(rt);
	return rc;
}
