/*
 * master_boot: the start-up steps of the master (master.c's master_run),
 * in order: the plan (evaluated as the account when root), the TCP
 * listeners bound, the TLS files read as root, the drop to the account,
 * then the listeners finished (TLS contexts, the local submission socket).
 * Each step is fatal on failure: nothing is serving yet.
 */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/fsutil.h"
#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "../net/tls.h"
#include "bootstrap.h"
#include "keeper.h"
#include "listen.h"
#include "master_int.h"
#include "proc.h"

/* How long a new master waits for a port its predecessor's orphans hold. */
#define PORT_WAIT_MS	10000

static const char *
tls_name(enum tls_mode t)
{
	return t == TLS_NONE ? "none" : t == TLS_STARTTLS ? "starttls" :
	    "implicit";
}

struct listener *
master_bind_tcp(const struct boot_plan *p, size_t *nlst)
{
	struct buf err = BUF_INIT;
	struct listener *lst = xcalloc(p->nlisten + 1, sizeof(*lst));

	*nlst = 0;	/* room for the local submission socket after them */
	for (size_t i = 0; i < p->nlisten; i++) {
		struct listener *l = &lst[(*nlst)++];
		int port;

		l->name = xstrdup(p->listen[i].name);
		l->address = xstrdup(p->listen[i].address);
		l->port = p->listen[i].port;
		l->tls = p->listen[i].tls;
		l->fd = listen_tcp(l->address, l->port, PORT_WAIT_MS, &port, &err);
		if (l->fd < 0)
			fatal("listener %s: %s", l->name, buf_cstr(&err));
		log_event(LOG_INFO, "listening", "name=%s address=%s port=%d tls=%s",
		    l->name, l->address, port, tls_name(l->tls));
	}
	return lst;
}

void
master_finish_listeners(const struct config *c, const struct buf *cert,
    const struct buf *key, struct listener *lst, size_t *nlst)
{
	struct buf err = BUF_INIT;
	SSL_CTX **ctxs = tls_listener_ctxs(c, cert, key, &err);

	if (ctxs == NULL)
		fatal("%s", buf_cstr(&err));
	for (size_t i = 0; i < *nlst; i++)
		lst[i].tls_ctx = ctxs[i];	/* kept for the process's life */
	free(ctxs);
	if (c->submit_socket) {
		struct listener *l = &lst[*nlst];
		l->name = xstrdup("local");
		l->path = xstrdup(c->submit_socket);
		l->tls = TLS_NONE;
		if ((l->fd = listen_unix(l->path, &err)) < 0)
			fatal("local submission: %s", buf_cstr(&err));
		(*nlst)++;
		log_event(LOG_INFO, "listening", "name=local path=%s", l->path);
	}
	buf_free(&err);
}

struct passwd *
master_service_account(const char *name)
{
	struct passwd *pw = getpwnam(name);

	if (pw == NULL)
		fatal("user %s does not exist (indimaild -u USER names the "
		    "account to run as; tools/ensure-account creates indimail)",
		    name);
	if (pw->pw_uid == 0)
		fatal("user %s is root: indimaild needs an unprivileged account",
		    name);
	return pw;
}

struct runtime *
master_make_plan(const char *path, const struct passwd *pw,
    struct boot_plan *p)
{
	struct buf err = BUF_INIT;
	struct runtime *rt;

	if (pw == NULL) {
		if ((rt = runtime_load(path, &err)) == NULL)
			fatal("%s", buf_cstr(&err));
		boot_plan_from_config(&rt->cfg, p);
		return rt;
	}
	if (boot_plan_unprivileged(path, pw, BOOT_LOAD_SECONDS, 0, p, &err) < 0)
		fatal("%s", buf_cstr(&err));
	if (p->user && strcmp(p->user, pw->pw_name) != 0)
		fatal("user: the configuration names %s, but indimaild runs as "
		    "%s (-u)", p->user, pw->pw_name);
	return NULL;
}

void
master_read_tls_files(const struct boot_plan *p, struct buf *cert, struct buf *key)
{
	struct buf err = BUF_INIT;

	if (p->tls_cert == NULL)
		return;
	if (read_small_file(p->tls_cert, KEEPER_TLS_MAX, cert, &err) < 0 ||
	    read_small_file(p->tls_key, KEEPER_TLS_MAX, key, &err) < 0)
		fatal("tls: %s", buf_cstr(&err));
}

struct runtime *
master_become(const char *path, const struct passwd *pw,
    const struct boot_plan *p)
{
	struct buf err = BUF_INIT;
	struct boot_plan now;
	struct runtime *rt;

	if (drop_to(pw, &err) < 0)
		fatal("%s", buf_cstr(&err));
	log_event(LOG_INFO, "privileges_dropped", "user=%s uid=%ld", pw->pw_name,
	    (long)pw->pw_uid);
	if ((rt = runtime_load(path, &err)) == NULL)
		fatal("%s", buf_cstr(&err));
	boot_plan_from_config(&rt->cfg, &now);
	if (!boot_plan_equal(&now, p))
		fatal("%s changed while indimaild started (listeners, TLS files "
		    "or log differ between two loads)", path);
	boot_plan_free(&now);
	return rt;
}
