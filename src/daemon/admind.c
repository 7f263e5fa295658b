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
#include "ctl.h"

static struct admin_runner *runner_of_stats;

/* The log reopened after a rotation, for the stats route (ctl.h). */
static void
on_log_reader(int fd)
{
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	admin_backend_log(runner_of_stats, fd);
}

static void
wait_signals(struct admin_server *s, int files_fd)
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
			ctl_apply(files_fd, NULL, NULL);	/* the log reopened */
			admin_server_reload_tokens(s);
			continue;
		}
		log_event(LOG_INFO, "admin_stop", "signal=%d", sig);
		admin_server_stop(s);
		exit(0);
	}
}

static void
log_started(const struct admind_conf *ac, const char *tokens)
{
	struct logline l;

	log_begin(&l, LOG_INFO, "admin_start");
	log_kv(&l, "address", ac->address);
	log_kvi(&l, "port", ac->port);
	log_kv(&l, "tls", ac->cert ? "yes" : "no");
	log_kv(&l, "tokens", tokens);
	log_kvi(&l, "pid", (long long)getpid());
	log_end(&l);
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
	fcntl(ac->files_fd, F_SETFD, FD_CLOEXEC);
	if (ac->log_fd >= 0)
		fcntl(ac->log_fd, F_SETFD, FD_CLOEXEC);
	admin_tokens_path(rt->cfg.admin.tokens, rt->path, &tokens);
	admin_backend_init(&be, &runner, rt->path, ac->ctl_fd, ac->log_fd,
	    ac->prog_fd);
	runner_of_stats = &runner;
	ctl_on_log_reader(on_log_reader);
	sc.tokens_path = buf_cstr(&tokens);
	sc.be = &be;
	if ((s = admin_server_start(&sc, &err)) == NULL) {
		struct logline l;
		log_begin(&l, LOG_ERROR, "admin_failed");
		log_kv(&l, "error", buf_cstr(&err));
		log_end(&l);
		exit(1);
	}
	log_started(ac, buf_cstr(&tokens));
	wait_signals(s, ac->files_fd);
}
