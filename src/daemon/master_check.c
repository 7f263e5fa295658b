/*
 * master_check: `indimaild -t` and `-T` (master.h). Root evaluates the
 * file only in a child running as the account (bootstrap.c), as at start;
 * the checks themselves are config_check's (src/lua/lua_config_check.c),
 * shared with `indimail config check`.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../lib/buf.h"
#include "../lua/lua_runtime.h"
#include "bootstrap.h"
#include "master.h"

/* config_check's eval when root: the plan from a child running as the account. */
static int
eval_as_account(const char *path, void *arg, struct config_check_found *f,
    struct buf *err)
{
	struct boot_plan p;

	if (boot_plan_unprivileged(path, arg, BOOT_LOAD_SECONDS, 1, &p,
	    err) < 0)
		return -1;
	f->nlisten = p.nlisten;
	f->tls_cert = p.tls_cert;	/* the plan's strings move */
	f->tls_key = p.tls_key;
	p.tls_cert = p.tls_key = NULL;
	boot_plan_free(&p);
	return 0;
}

/* -T: an eval that forgets the TLS files, so they are not read. */
struct eval_no_tls {
	config_check_eval *eval;
	void		*arg;
};

static int
eval_without_tls(const char *path, void *arg, struct config_check_found *f,
    struct buf *err)
{
	const struct eval_no_tls *e = arg;
	int rc = e->eval(path, e->arg, f, err);

	free(f->tls_cert);
	free(f->tls_key);
	f->tls_cert = f->tls_key = NULL;
	return rc;
}

int
master_check(const char *path, const char *user, int tls_files)
{
	struct buf out = BUF_INIT;
	struct passwd *pw = NULL;
	struct eval_no_tls e;
	int rc;

	if (geteuid() == 0 && (pw = getpwnam(user)) == NULL) {
		fprintf(stderr, "indimaild: user %s does not exist\n", user);
		return 1;
	}
	e.eval = pw ? eval_as_account : config_check_eval_here;
	e.arg = pw;
	rc = tls_files ? config_check(path, e.eval, e.arg, &out) :
	    config_check(path, eval_without_tls, &e, &out);
	fprintf(rc ? stderr : stdout, "indimaild: %s\n", buf_cstr(&out));
	buf_free(&out);
	return rc;
}
