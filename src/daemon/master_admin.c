/*
 * master_admin: the master's side of the admin API's process (admind.h).
 * As root it binds the admin socket and reads the certificate and key
 * (root's files); the child it forks inherits both, already dropped to
 * the account. A reload's new certificate and key (reload.c) replace
 * them for a child forked later.
 *
 * Reload requests: the admin child runs as the account and must not be
 * able to do more to the master than ask for a reload, and the master's
 * loop is a sigsuspend loop without an event loop. So each admin child
 * gets one end of a SOCK_SEQPACKET socket pair made at its fork; the
 * master's end is O_ASYNC with the master as owner, so a datagram raises
 * SIGIO, which wakes sigsuspend like any other signal. The master then
 * reads every pending "reload", runs its reload() and answers "ok" or
 * "error WHY" on the same socket. Nothing else is accepted.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../admin/admin_backend.h"
#include "../lib/fsutil.h"
#include "../lib/log.h"
#include "admind.h"
#include "bootstrap.h"
#include "listen.h"

#define PEM_MAX		(1 << 20)
#define PORT_WAIT_MS	10000

static struct {
	int		 enabled;
	int		 fd;		/* the listening socket */
	int		 ctl[2];	/* [0] the master's end, [1] the child's */
	int		 log_fd;	/* the log for reading (stats); -1 */
	int		 prog[2];	/* bin/indimail, bin/indimaild, O_PATH */
	struct buf	 cert, key;	/* PEM; empty: plain HTTP */
	char		 address[64];
	int		 port;		/* as bound */
} A = { 0, -1, { -1, -1 }, -1, { -1, -1 }, BUF_INIT, BUF_INIT, "", 0 };

void
master_admin_bind(const struct boot_plan *p)
{
	struct buf err = BUF_INIT;

	if (!p->admin)
		return;
	A.fd = listen_tcp(p->admin_address, p->admin_port, PORT_WAIT_MS,
	    &A.port, &err);
	if (A.fd < 0)
		fatal("admin: %s", buf_cstr(&err));
	if (p->admin_tls && (read_small_file(p->admin_cert, PEM_MAX, &A.cert,
	    &err) < 0 || read_small_file(p->admin_key, PEM_MAX, &A.key,
	    &err) < 0))
		fatal("admin: %s", buf_cstr(&err));
	if (p->log_file)	/* log_open made it; root's */
		A.log_fd = open(p->log_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	A.prog[0] = admin_program_open("indimail");	/* as root */
	A.prog[1] = admin_program_open("indimaild");
	snprintf(A.address, sizeof(A.address), "%s", p->admin_address);
	A.enabled = 1;
	log_event(LOG_INFO, "listening", "name=admin address=%s port=%d tls=%s",
	    A.address, A.port, p->admin_tls ? "implicit" : "none");
}

int
master_admin_enabled(void)
{
	return A.enabled;
}

void
master_admin_pre_fork(void)
{
	if (A.ctl[0] >= 0)	/* the previous child's */
		close(A.ctl[0]);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, A.ctl) < 0)
		fatal("admin: socketpair: %s", strerror(errno));
	if (fcntl(A.ctl[0], F_SETOWN, getpid()) < 0 ||
	    fcntl(A.ctl[0], F_SETFL, O_ASYNC | O_NONBLOCK) < 0)
		fatal("admin: O_ASYNC: %s", strerror(errno));
}

static void
close_end(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void
master_admin_post_fork(pid_t pid)
{
	close_end(&A.ctl[1]);
	if (pid == 0)
		close_end(&A.ctl[0]);
}

void
master_admin_close(void)
{
	close_end(&A.fd);
	close_end(&A.log_fd);
	close_end(&A.ctl[0]);
	close_end(&A.ctl[1]);
	close_end(&A.prog[0]);
	close_end(&A.prog[1]);
}

void
master_admin_child(struct runtime *rt, int files_fd)
{
	struct admind_conf c = { A.fd, A.ctl[1], files_fd, A.log_fd,
	    { A.prog[0], A.prog[1] }, NULL, NULL, A.address, A.port };

	close_end(&A.ctl[0]);
	if (A.cert.len) {
		c.cert = buf_cstr(&A.cert);
		c.key = buf_cstr(&A.key);
	}
	admind_main(rt, &c);
}

void
master_admin_use_tls(const struct buf *cert, const struct buf *key)
{
	buf_wipe(&A.cert);
	buf_wipe(&A.key);
	buf_set(&A.cert, cert->data, cert->len);
	buf_set(&A.key, key->data, key->len);
}

void
master_admin_serve(int (*reload)(void))
{
	char req[ADMIN_CTL_MAX];
	const char *answer;
	ssize_t n;

	while (A.ctl[0] >= 0 && (n = recv(A.ctl[0], req, sizeof(req),
	    MSG_DONTWAIT)) > 0) {
		if (n == 6 && memcmp(req, "reload", 6) == 0) {
			log_event(LOG_INFO, "reload_requested", "by=admin_api");
			answer = reload() == 0 ? "ok" : "error the configuration "
			    "did not load (event=reload_failed in the log says why)";
		} else
			answer = "error unknown request";
		send(A.ctl[0], answer, strlen(answer), MSG_DONTWAIT | MSG_NOSIGNAL);
	}
}
