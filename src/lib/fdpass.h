/*
 * [src/lib: generic code that knows no mail; it includes nothing outside
 * src/lib. See docs/architecture.md.]
 *
 * fdpass: one message with open descriptors (SCM_RIGHTS) over a Unix
 * datagram or seqpacket socket; indimaild's master hands its children a
 * reopened log file and its new TLS files this way (src/daemon/ctl.c).
 *
 *   int fds[FDPASS_MAX], nfds;
 *   fdpass_send(sock, "log", 3, &fd, 1);
 *   n = fdpass_recv(sock, msg, sizeof(msg) - 1, fds, &nfds);
 */
#ifndef INDIMAIL_FDPASS_H
#define INDIMAIL_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

/* Descriptors per message, at most. */
#define FDPASS_MAX	2

/* Sends msg (n >= 1 bytes) with nfds descriptors: 0, or -1 and errno. */
int	fdpass_send(int sock, const char *msg, size_t n, const int *fds,
	    int nfds);
/*
 * Receives one message without waiting: its length (0: the peer closed),
 * or -1 and errno (EAGAIN: none waiting). The descriptors that came with
 * it (close-on-exec) are in fds, their count in *nfds; any beyond
 * FDPASS_MAX are closed.
 */
ssize_t	fdpass_recv(int sock, char *msg, size_t cap, int *fds, int *nfds);

#endif
