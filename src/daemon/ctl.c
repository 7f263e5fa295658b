/*
 * ctl: messages from the master to a child (see ctl.h). Three kinds with
 * one descriptor, and one without:
 *   "log"               the log file, opened again by the keeper;
 *   "logread"           the same file for reading (to the admin process);
 *   "tls CERTLEN KEYLEN" a memfd holding the certificate then the key;
 *   "config"            the master loaded the new configuration.
 * The master validated the TLS bytes (it built its own contexts from
 * them) before sending, so a child only fails here on a resource error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/fdpass.h"
#include "../lib/fsutil.h"
#include "../lib/log.h"
#include "ctl.h"
#include "keeper.h"

#define CTL_MSG_MAX	64

int
ctl_open(struct ctl *c, struct buf *err)
{
	int sv[2];

	c->master = c->child = -1;
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0) {
		buf_printf(err, "socketpair: %s", strerror(errno));
		return -1;
	}
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	c->master = sv[0];
	c->child = sv[1];
	return 0;
}

void
ctl_close_child(struct ctl *c)
{
	if (c->child >= 0)
		close(c->child);
	c->child = -1;
}

void
ctl_close(struct ctl *c)
{
	ctl_close_child(c);
	if (c->master >= 0)
		close(c->master);
	c->master = -1;
}

int
ctl_send_log(const struct ctl *c, int log_fd)
{
	return fdpass_send(c->master, "log", 3, &log_fd, 1);
}

int
ctl_send_log_reader(const struct ctl *c, int read_fd)
{
	return fdpass_send(c->master, "logread", 7, &read_fd, 1);
}

static ctl_fd_fn log_reader;

void
ctl_on_log_reader(ctl_fd_fn fn)
{
	log_reader = fn;
}

int
ctl_send_config(const struct ctl *c)
{
	return fdpass_send(c->master, "config", 6, NULL, 0);
}

int
ctl_send_tls(const struct ctl *c, int memfd, size_t cert_len, size_t key_len)
{
	char msg[CTL_MSG_MAX];
	int n = snprintf(msg, sizeof(msg), "tls %zu %zu", cert_len, key_len);

	return fdpass_send(c->master, msg, (size_t)n, &memfd, 1);
}

int
ctl_tls_memfd(const struct buf *cert, const struct buf *key, struct buf *err)
{
	int fd = memfd_create("indimail-tls", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || write(fd, cert->data, cert->len) != (ssize_t)cert->len ||
	    write(fd, key->data, key->len) != (ssize_t)key->len ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK |
	    F_SEAL_SEAL) < 0) {
		buf_printf(err, "memfd: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Reads the memfd's cert and key (pread: every child shares its offset). */
static void
apply_tls(int fd, const char *msg, ctl_tls_fn on_tls, void *arg)
{
	struct buf cert = BUF_INIT, key = BUF_INIT;
	size_t cl, kl;

	if (sscanf(msg, "tls %zu %zu", &cl, &kl) != 2 || cl > KEEPER_TLS_MAX ||
	    kl > KEEPER_TLS_MAX)
		return;
	buf_reserve(&cert, cl + 1);
	buf_reserve(&key, kl + 1);
	if (pread(fd, cert.data, cl, 0) == (ssize_t)cl &&
	    pread(fd, key.data, kl, (off_t)cl) == (ssize_t)kl) {
		cert.len = cl;
		key.len = kl;
		on_tls(arg, &cert, &key);
	} else
		log_event(LOG_ERROR, "reload_tls_failed", "error=\"cannot read "
		    "the master's TLS files: %s\"", strerror(errno));
	buf_wipe(&cert);
	buf_wipe(&key);
}

int
ctl_apply(int fd, ctl_tls_fn on_tls, void *arg)
{
	char msg[CTL_MSG_MAX];
	int fds[FDPASS_MAX], nfds, config = 0;
	ssize_t n;

	while ((n = fdpass_recv(fd, msg, sizeof(msg) - 1, fds, &nfds)) > 0) {
		msg[n] = '\0';
		if (strcmp(msg, "config") == 0)
			config = 1;
		if (nfds == 1 && strcmp(msg, "log") == 0) {
			log_use_fd(fds[0]);
			continue;	/* the log owns it now */
		}
		if (nfds == 1 && log_reader && strcmp(msg, "logread") == 0) {
			log_reader(fds[0]);
			continue;	/* the reader owns it now */
		}
		if (nfds == 1 && on_tls && strncmp(msg, "tls ", 4) == 0)
			apply_tls(fds[0], msg, on_tls, arg);
		while (nfds > 0)
			close(fds[--nfds]);
	}
	return config;
}
