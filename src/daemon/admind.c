/*
 * admind: see admind.h. The process's own threads are libmicrohttpd's
 * (admin_server.c); the main thread only waits for signals with sigwait,
 * which is why every signal stays blocked from the fork on (the server's
 * threads inherit that mask, so SIGHUP and SIGTERM always come here).
 * On SIGHUP it applies what the master sent over the ctl channel (the log
 * reopened, a new certificate: reload.c) and re-reads the tokens; while
 * a daemon replaced by a new certificate drains, it also wakes every
 * ADMIN_TICK_MS to stop it once done (admin_server.c).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../admin/admin_backend.h"
#include "../admin/admin_server.h"
#include "../admin/admin_token.h"
#include "../lib/log.h"
#include "admind.h"
#include "ctl.h"

#define ADMIN_TICK_MS	200

static struct admin_runner *runner_of_stats;

/* The master's last certificate and key of this SIGHUP (ctl.h). */
static struct buf new_cert = BUF_INIT, new_key = BUF_INIT;
static int tls_pending;

/* The log reopened after a rotation, for the stats route (ctl.h). */
static void
on_log_reader(int fd)
{
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	admin_backend_log(runner_of_stats, fd);
}

static void
stash_tls(void *arg, const struct buf *cert, const struct buf *key)
{
	(void)arg;
	buf_wipe(&new_cert);
	buf_wipe(&new_key);
	buf_set(&new_cert, cert->data, cert->len);
	buf_set(&new_key, key->data, key->len);
	tls_pending = 1;
}

/* New connections get the stashed certificate; a refusal keeps the old. */
static void
swap_tls(struct admin_server *s)
{
	struct buf err = BUF_INIT;
	int rc = admin_server_swap_tls(s, buf_cstr(&new_cert),
	    buf_cstr(&new_key), &err);

	if (rc < 0)
		log_event(LOG_ERROR, "reload_tls_failed", "name=admin "
		    "error=\"%s\" action=\"keeping the running certificate\"",
		    buf_cstr(&err));
	else if (rc == 0)
		log_event(LOG_INFO, "admin_tls_swapped", "pid=%ld",
		    (long)getpid());
	buf_wipe(&new_cert);
	buf_wipe(&new_key);
	tls_pending = 0;
	buf_free(&err);
}

static void
on_hup(struct admin_server *s, int files_fd)
{
	ctl_apply(files_fd, stash_tls, NULL);	/* the log, a certificate */
	if (tls_pending)
		swap_tls(s);
	admin_server_reload_tokens(s);
}

/* The next signal; every ADMIN_TICK_MS while a replaced daemon drains. */
static int
next_signal(struct admin_server *s, const sigset_t *set)
{
	struct timespec tick = { 0, ADMIN_TICK_MS * 1000000L };
	int sig;

	if (admin_server_tick(s))
		return sigtimedwait(set, NULL, &tick);
	return sigwait(set, &sig) == 0 ? sig : -1;
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
		if ((sig = next_signal(s, &set)) < 0)
			continue;	/* a tick, or EINTR */
		if (sig == SIGHUP) {
			on_hup(s, files_fd);
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
