/*
 * keeper: root's helper for reloads (see keeper.h). Forked before the
 * master drops privileges, it closes every other descriptor and answers
 * two requests on a seqpacket socket, one at a time, until the master
 * closes it:
 *   "tls" → "ok" with the certificate and key files open for reading,
 *   "admintls" → the same for the admin API's (admin.cert, admin.key),
 *   "log" → "ok" with the log file open for appending (log.c's checks:
 *           a root-owned folder, no symlink, a single link), and the same
 *           file open for reading (the admin API's stats read it),
 *   or "error TEXT".
 * It only ever opens the paths the start evaluated: a path from a later
 * configuration is the account's choice, and root must not read for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/fdpass.h"
#include "../lib/fsutil.h"
#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "keeper.h"

/* How long the master waits for an answer. */
#define KEEPER_WAIT_MS	5000
#define KEEPER_MSG_MAX	512

struct keeper {
	char	*cert, *key, *log;	/* NULL: none at start */
	char	*admin_cert, *admin_key;	/* NULL: no admin TLS at start */
};

static void
reply_error(int sock, struct buf *why)
{
	struct buf m = BUF_INIT;

	buf_printf(&m, "error %s", buf_cstr(why));
	if (m.len > KEEPER_MSG_MAX)
		m.len = KEEPER_MSG_MAX;
	(void)fdpass_send(sock, m.data, m.len, NULL, 0);
	buf_free(&m);
}

static int
open_read(const char *path, struct buf *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		buf_printf(err, "cannot read %s: %s", path, strerror(errno));
	return fd;
}

/* A certificate and its key (what: the setting, for the error). */
static void
answer_tls(int sock, const char *cert, const char *key, const char *what)
{
	struct buf err = BUF_INIT;
	int fd[2] = { -1, -1 };

	if (cert == NULL)
		buf_printf(&err, "no %s at start", what);
	else if ((fd[0] = open_read(cert, &err)) >= 0)
		fd[1] = open_read(key, &err);
	if (fd[1] >= 0)
		(void)fdpass_send(sock, "ok", 2, fd, 2);
	else
		reply_error(sock, &err);
	for (int i = 0; i < 2; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	buf_free(&err);
}

static void
answer_log(const struct keeper *k, int sock)
{
	struct buf err = BUF_INIT;
	int fd[2] = { k->log ? log_file_open(k->log, &err) : -1, -1 };

	if (fd[0] >= 0) {
		fd[1] = open(k->log, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
		(void)fdpass_send(sock, "ok", 2, fd, fd[1] >= 0 ? 2 : 1);
		close(fd[0]);
		if (fd[1] >= 0)
			close(fd[1]);
	} else
		reply_error(sock, &err);	/* empty: no log file */
	buf_free(&err);
}

static void
keeper_main(const struct keeper *k, int sock)
{
	char msg[16];
	int fds[FDPASS_MAX], nfds;
	struct pollfd p = { sock, POLLIN, 0 };
	ssize_t n;

	for (;;) {
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			_exit(1);
		n = fdpass_recv(sock, msg, sizeof(msg), fds, &nfds);
		while (nfds > 0)
			close(fds[--nfds]);
		if (n == 0 || (n < 0 && errno != EAGAIN))
			_exit(0);	/* the master is gone */
		if (n == 3 && memcmp(msg, "tls", 3) == 0)
			answer_tls(sock, k->cert, k->key, "tls.cert");
		else if (n == 8 && memcmp(msg, "admintls", 8) == 0)
			answer_tls(sock, k->admin_cert, k->admin_key,
			    "admin.cert");
		else if (n == 3 && memcmp(msg, "log", 3) == 0)
			answer_log(k, sock);
	}
}

static pid_t keeper_pid;	/* of this process's keeper; 0: none */

static char *
dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

int
keeper_start(const struct boot_plan *p)
{
	struct keeper k = { dup_or_null(p->tls_cert), dup_or_null(p->tls_key),
	    dup_or_null(p->log_file), NULL, NULL };
	int sv[2];
	pid_t pid;

	if (p->admin && p->admin_tls) {
		k.admin_cert = dup_or_null(p->admin_cert);
		k.admin_key = dup_or_null(p->admin_key);
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ||
	    (pid = fork()) < 0) {
		log_event(LOG_ERROR, "keeper_failed", "error=\"%s\"",
		    strerror(errno));
		return -1;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGHUP, SIG_IGN);
		signal(SIGINT, SIG_IGN);
		signal(SIGUSR2, SIG_IGN);
		if (sv[1] > 3)
			close_range(3, (unsigned)sv[1] - 1, 0);
		close_range((unsigned)sv[1] + 1, ~0U, 0);
		keeper_main(&k, sv[1]);
	}
	close(sv[1]);
	keeper_pid = pid;
	log_event(LOG_INFO, "keeper_started", "pid=%ld", (long)pid);
	return sv[0];
}

/* Root's process cannot be signalled by the account: its socket's end is
 * the keeper's signal. A second is plenty for it to see the EOF. */
void
keeper_stop(int sock)
{
	if (sock >= 0)
		close(sock);
	for (int i = 0; keeper_pid > 0 && i < 100; i++) {
		if (waitpid(keeper_pid, NULL, WNOHANG) != 0)
			keeper_pid = 0;
		else
			usleep(10 * 1000);
	}
}

/* Sends a request and waits for the answer (bounded). */
static int
ask(int sock, const char *req, int *fds, int *nfds, struct buf *err)
{
	struct pollfd p = { sock, POLLIN, 0 };
	char msg[KEEPER_MSG_MAX + 1];
	ssize_t n;

	*nfds = 0;
	if (sock < 0 || fdpass_send(sock, req, strlen(req), NULL, 0) < 0) {
		buf_printf(err, "the keeper process is gone (%s): restart "
		    "indimaild", sock < 0 ? "not started" : strerror(errno));
		return -1;
	}
	if (poll(&p, 1, KEEPER_WAIT_MS) != 1 ||
	    (n = fdpass_recv(sock, msg, sizeof(msg) - 1, fds, nfds)) <= 0) {
		buf_appends(err, "the keeper process did not answer");
		return -1;
	}
	msg[n] = '\0';
	if (n == 2 && memcmp(msg, "ok", 2) == 0)
		return 0;
	buf_appends(err, strncmp(msg, "error ", 6) == 0 ? msg + 6 : msg);
	while (*nfds > 0)
		close(fds[--*nfds]);
	return -1;
}

/* The answer to "tls" or "admintls" read into cert and key. */
static int
ask_tls(int sock, const char *req, struct buf *cert, struct buf *key,
    struct buf *err)
{
	int fds[FDPASS_MAX], nfds, rc = -1;

	if (ask(sock, req, fds, &nfds, err) < 0)
		return -1;
	if (nfds == 2 && read_small_fd(fds[0], "tls.cert", KEEPER_TLS_MAX, cert,
	    err) == 0 && read_small_fd(fds[1], "tls.key", KEEPER_TLS_MAX, key,
	    err) == 0)
		rc = 0;
	else if (nfds != 2)
		buf_appends(err, "the keeper sent no TLS files");
	while (nfds > 0)
		close(fds[--nfds]);
	return rc;
}

int
keeper_tls(int sock, struct buf *cert, struct buf *key, struct buf *err)
{
	return ask_tls(sock, "tls", cert, key, err);
}

int
keeper_admin_tls(int sock, struct buf *cert, struct buf *key,
    struct buf *err)
{
	return ask_tls(sock, "admintls", cert, key, err);
}

int
keeper_log(int sock, int *read_fd, struct buf *err)
{
	int fds[FDPASS_MAX], nfds;

	*read_fd = -1;
	if (ask(sock, "log", fds, &nfds, err) < 0)
		return -1;
	if (nfds == 2)		/* FDPASS_MAX: never more */
		*read_fd = fds[--nfds];
	if (nfds == 0)
		buf_appends(err, "the keeper sent no log file");
	return nfds == 1 ? fds[0] : -1;
}
