/*
 * reload: the log and the TLS files on SIGHUP (see reload.h).
 *
 * Once the master has dropped to the account it can neither read the TLS
 * key nor create a log file in root's folder, so before dropping it forks
 * the keeper (keeper.c), which stays root and re-opens exactly the
 * start's paths on request. The master builds new TLS contexts from the
 * files (the running ones stay if that fails), then hands each child,
 * over the ctl channel made at its fork (ctl.c), the new log descriptor
 * and the validated TLS bytes, and only then signals it; the worker
 * builds its own contexts from those bytes (smtpd.c), the admin process
 * a new HTTPS daemon from its own certificate's (admind.c). We chose this over
 * forking a new generation of workers: no session is cut at a drain
 * timeout, connection slots and counters keep their owners, and a worker
 * forked after a crash simply inherits the master's current contexts.
 * Reloads are handled one at a time by the master's loop; a child that
 * missed a signal applies every waiting message in order, the last
 * files winning.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "../net/tls.h"
#include "admind.h"
#include "keeper.h"
#include "proc.h"
#include "reload.h"

static int
same_path(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static void
log_kept(const char *event, const char *reason)
{
	struct logline l;

	log_begin(&l, LOG_WARN, event);
	log_kv(&l, "reason", reason);
	log_end(&l);
}

static void
log_failed(const char *event, const struct buf *err, const char *action)
{
	struct logline l;

	log_begin(&l, LOG_ERROR, event);
	log_kv(&l, "error", err->len ? err->data : "");
	log_kv(&l, "action", action);
	log_end(&l);
}

static void
log_tls(const char *event, const struct reload_files *f,
    const struct buf *err, size_t nlisten)
{
	struct logline l;

	log_begin(&l, err ? LOG_ERROR : LOG_INFO, event);
	if (err)
		log_kv(&l, "error", err->len ? err->data : "");
	log_kv(&l, "cert", f->cert);
	log_kv(&l, "key", f->key);
	if (err)
		log_kv(&l, "action", "keeping the running certificate");
	else
		log_kvi(&l, "listeners", (long long)nlisten);
	log_end(&l);
}

void
reload_log(const struct reload_files *f, const struct config *c,
    const struct ctl *const *to, size_t n, const struct ctl *reader)
{
	struct buf err = BUF_INIT;
	struct logline l;
	int fd, rfd;

	proc_log_settings(c);
	if (f->log && (fd = keeper_log(f->keeper, &rfd, &err)) >= 0) {
		for (size_t i = 0; i < n; i++)
			if (ctl_send_log(to[i], fd) < 0)
				log_event(LOG_WARN, "reload_log_unsent", "error=\"%s\"",
				    strerror(errno));
		if (reader && rfd >= 0 && ctl_send_log_reader(reader, rfd) < 0)
			log_event(LOG_WARN, "reload_log_unsent", "error=\"%s\"",
			    strerror(errno));
		if (rfd >= 0)
			close(rfd);
		log_use_fd(fd);
		log_begin(&l, LOG_INFO, "log_reopened");
		log_kv(&l, "file", f->log);
		log_end(&l);
	} else if (f->log)
		log_failed("reload_log_failed", &err, "lines still go to the "
		    "running file");
	if (!same_path(c->log_file, f->log))
		log_kept("reload_log_kept", "log.file changes need a restart; "
		    "lines still go where they went");
	buf_free(&err);
}

/* The master's contexts, for workers forked from now on; then the files
 * to every live worker, which builds its own. */
static void
use_tls(SSL_CTX **ctx, size_t nctx, struct listener *lst, int memfd,
    size_t lens[2], const struct ctl *const *to, size_t n)
{
	for (size_t i = 0; i < nctx; i++) {
		SSL_CTX_free(lst[i].tls_ctx);
		lst[i].tls_ctx = ctx[i];
	}
	free(ctx);
	for (size_t i = 0; i < n; i++)
		if (ctl_send_tls(to[i], memfd, lens[0], lens[1]) < 0)
			log_event(LOG_WARN, "reload_tls_unsent", "error=\"%s\"",
			    strerror(errno));
}

/* Whether the TLS files can be reloaded at all; logs why not. */
static int
tls_reloadable(const struct reload_files *f, const struct config *c,
    const struct listener *lst, size_t nlst)
{
	if (!same_path(c->tls_cert, f->cert) || !same_path(c->tls_key, f->key))
		log_kept("reload_tls_kept", "tls.cert/tls.key path changes need a "
		    "restart; the files at the running paths are read again");
	if (f->cert == NULL)
		return 0;
	if (!listen_same(lst, nlst, c)) {
		log_kept("reload_tls_kept", "the listeners changed: their TLS "
		    "contexts stay until a restart");
		return 0;
	}
	return 1;
}

void
reload_tls(const struct reload_files *f, const struct config *c,
    struct listener *lst, size_t nlst, const struct ctl *const *to, size_t n)
{
	struct buf err = BUF_INIT, cert = BUF_INIT, key = BUF_INIT;
	SSL_CTX **ctx = NULL;
	int memfd = -1;

	if (!tls_reloadable(f, c, lst, nlst))
		return;
	if (keeper_tls(f->keeper, &cert, &key, &err) == 0 &&
	    (ctx = tls_listener_ctxs(c, &cert, &key, &err)) != NULL &&
	    (memfd = ctl_tls_memfd(&cert, &key, &err)) >= 0) {
		size_t lens[2] = { cert.len, key.len };
		use_tls(ctx, c->nlisten, lst, memfd, lens, to, n);
		close(memfd);
		log_tls("reload_tls", f, NULL, c->nlisten);
	} else {
		if (ctx)
			tls_listener_ctxs_free(ctx, c->nlisten);
		log_tls("reload_tls_failed", f, &err, 0);
	}
	buf_wipe(&cert);
	buf_wipe(&key);
	buf_free(&err);
}

/* The admin table the start evaluated (the admin process keeps it). */
static struct admin_conf started_admin;

void
reload_admin_remember(const struct admin_conf *c)
{
	started_admin = *c;
	started_admin.address = c->address ? xstrdup(c->address) : NULL;
	started_admin.cert = c->cert ? xstrdup(c->cert) : NULL;
	started_admin.key = c->key ? xstrdup(c->key) : NULL;
	started_admin.tokens = c->tokens ? xstrdup(c->tokens) : NULL;
}

void
reload_admin_check(const struct admin_conf *c)
{
	const struct admin_conf *running = &started_admin;

	if (running->enabled != c->enabled || running->port != c->port ||
	    running->tls != c->tls || !same_path(running->address, c->address) ||
	    !same_path(running->cert, c->cert) || !same_path(running->key, c->key) ||
	    !same_path(running->tokens, c->tokens))
		log_kept("reload_admin_kept", "admin changes need a restart; the "
		    "admin API keeps its address, TLS mode, certificate paths "
		    "and tokens file (the files at the running paths are read "
		    "again)");
}

static void
log_admin_tls(const char *event, const struct reload_files *f,
    const struct buf *err)
{
	struct logline l;

	log_begin(&l, err ? LOG_ERROR : LOG_INFO, event);
	log_kv(&l, "name", "admin");
	if (err)
		log_kv(&l, "error", err->len ? err->data : "");
	log_kv(&l, "cert", f->admin_cert);
	log_kv(&l, "key", f->admin_key);
	if (err)
		log_kv(&l, "action", "keeping the running certificate");
	log_end(&l);
}

void
reload_admin_tls(const struct reload_files *f, const struct ctl *to)
{
	struct buf err = BUF_INIT, cert = BUF_INIT, key = BUF_INIT;
	SSL_CTX *ctx = NULL;
	int memfd = -1;

	if (f->admin_cert == NULL)
		return;
	if (keeper_admin_tls(f->keeper, &cert, &key, &err) == 0 &&
	    (ctx = tls_server_ctx_pem(&cert, &key, "admin", NULL, &err)) &&
	    (memfd = ctl_tls_memfd(&cert, &key, &err)) >= 0) {
		master_admin_use_tls(&cert, &key);	/* for a later fork */
		if (to && ctl_send_tls(to, memfd, cert.len, key.len) < 0)
			log_event(LOG_WARN, "reload_tls_unsent", "name=admin "
			    "error=\"%s\"", strerror(errno));
		close(memfd);
		log_admin_tls("reload_admin_tls", f, NULL);
	} else
		log_admin_tls("reload_tls_failed", f, &err);
	SSL_CTX_free(ctx);
	buf_wipe(&cert);
	buf_wipe(&key);
	buf_free(&err);
}
