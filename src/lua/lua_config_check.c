/*
 * lua_config_check: the one configuration check behind `indimaild -t` and
 * `indimail config check`. The file is evaluated (by the caller's eval:
 * here, or by indimaild as root in a child running as the account), every
 * problem gathered into one report ("file:line: what" lines, then "N
 * problems"); then the TLS certificate and key are loaded as the caller
 * (root reads them at start, the workers never can).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/fsutil.h"
#include "../lib/xalloc.h"
#include "../net/tls.h"
#include "lua_runtime.h"

#define TLS_FILE_MAX	(1 << 20)

struct runtime *
runtime_load_checked(const char *path, struct buf *err)
{
	struct check_report r = { BUF_INIT, 0 };
	struct runtime *rt = runtime_load_checking(path, &r);

	if (rt && runtime_check(rt, &r) > 0) {
		runtime_unref(rt);
		rt = NULL;
	}
	if (rt == NULL) {
		check_report_close(&r);
		buf_appends(err, buf_cstr(&r.text));
	}
	check_report_free(&r);
	return rt;
}

int
config_check_eval_here(const char *path, void *arg,
    struct config_check_found *f, struct buf *err)
{
	struct runtime *rt = runtime_load_checked(path, err);

	(void)arg;
	if (rt == NULL)
		return -1;
	f->nlisten = rt->cfg.nlisten;
	f->tls_cert = rt->cfg.tls_cert ? xstrdup(rt->cfg.tls_cert) : NULL;
	f->tls_key = rt->cfg.tls_key ? xstrdup(rt->cfg.tls_key) : NULL;
	runtime_unref(rt);
	return 0;
}

/* The certificate and key load together into a server context. */
static int
check_tls_pair(const struct config_check_found *f, struct buf *err)
{
	struct buf cert = BUF_INIT, key = BUF_INIT;
	SSL_CTX *ctx = NULL;

	if (f->tls_cert == NULL)
		return 0;
	if (read_small_file(f->tls_cert, TLS_FILE_MAX, &cert, err) == 0 &&
	    read_small_file(f->tls_key, TLS_FILE_MAX, &key, err) == 0)
		ctx = tls_server_ctx_pem(&cert, &key, f->tls_cert, NULL, err);
	buf_free(&cert);
	buf_wipe(&key);
	if (ctx == NULL)
		return -1;
	SSL_CTX_free(ctx);
	return 0;
}

int
config_check(const char *path, config_check_eval *eval, void *arg,
    struct buf *out)
{
	struct config_check_found f = { NULL, NULL, 0 };
	struct buf err = BUF_INIT;
	int rc = 1;

	if (eval(path, arg, &f, out) < 0)
		goto done;
	if (check_tls_pair(&f, &err) < 0) {
		buf_printf(out, "%s: %s", path, buf_cstr(&err));
		goto done;
	}
	buf_printf(out, "%s: configuration OK (%zu listeners)", path,
	    f.nlisten);
	rc = 0;
done:
	free(f.tls_cert);
	free(f.tls_key);
	buf_free(&err);
	return rc;
}
