/*
 * admind: see admind.h. The process's own threads are libmicrohttpd's
 * (admin_server.c); the main thread only waits for signals with sigwait,
 * which is why every signal stays blocked from the fork on (the server's
 * threads inherit that mask, so SIGHUP and SIGTERM always come here).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "../admin/admin_backend.h"
#include "../admin/admin_server.h"
#include "../admin/admin_token.h"
#include "../lib/log.h"
#include "admind.h"

static void
wait_signals(struct admin_server *s)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			admin_server_reload_tokens(s);
			continue;
		}
		log_event(LOG_INFO, "admin_stop", "signal=%d", sig);
		admin_server_stop(s);
		exit(0);
	}
}

void
admind_main(struct runtime *rt, const struct admind_conf *ac)
{
	struct admin_server_conf sc = { ac->listen_fd, ac->cert, ac->key, NULL,
	    NULL };
	static struct admin_runner runner;
	static struct admin_backend be;
	struct buf tokens = BUF_INIT, err = BUF_INIT;
	struct admin_server *s;

	log_set_role("admin");
	signal(SIGPIPE, SIG_IGN);
	fcntl(ac->listen_fd, F_SETFD, FD_CLOEXEC);	/* not for bin/indimail */
	fcntl(ac->ctl_fd, F_SETFD, FD_CLOEXEC);
	if (ac->log_fd >= 0)
		fcntl(ac->log_fd, F_SETFD, FD_CLOEXEC);
	admin_tokens_path(rt->cfg.admin.tokens, rt->path, &tokens);
	admin_backend_init(&be, &runner, rt->path, ac->ctl_fd, ac->log_fd);
	sc.tokens_path = buf_cstr(&tokens);
	sc.be = &be;
	if ((s = admin_server_start(&sc, &err)) == NULL) {
		log_event(LOG_ERROR, "admin_failed", "error=\"%s\"", buf_cstr(&err));
		exit(1);
	}
	log_event(LOG_INFO, "admin_start", "address=%s port=%d tls=%s "
	    "tokens=%s pid=%ld", ac->address, ac->port, ac->cert ? "yes" : "no",
	    buf_cstr(&tokens), (long)getpid());
	wait_signals(s);
}
