/*
 * fdpass: SCM_RIGHTS messages (see fdpass.h). The receiver never keeps a
 * descriptor it did not ask for: extra ones are closed, and a truncated
 * control message (MSG_CTRUNC) loses nothing the sender cannot resend.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdpass.h"

int
fdpass_send(int sock, const char *msg, size_t n, const int *fds, int nfds)
{
	char ctl[CMSG_SPACE(sizeof(int) * FDPASS_MAX)];
	struct iovec iov = { (void *)msg, n };
	struct msghdr mh;
	struct cmsghdr *c;

	if (nfds < 0 || nfds > FDPASS_MAX) {
		errno = EINVAL;
		return -1;
	}
	memset(&mh, 0, sizeof(mh));
	memset(ctl, 0, sizeof(ctl));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds > 0) {
		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	while (sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

/* Keeps up to FDPASS_MAX of the descriptors in c, closes the others. */
static void
take_fds(struct cmsghdr *c, int *fds, int *nfds)
{
	size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	int fd;

	for (size_t i = 0; i < n; i++) {
		memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
		if (*nfds < FDPASS_MAX)
			fds[(*nfds)++] = fd;
		else
			close(fd);
	}
}

ssize_t
fdpass_recv(int sock, char *msg, size_t cap, int *fds, int *nfds)
{
	char ctl[CMSG_SPACE(sizeof(int) * FDPASS_MAX * 2)];
	struct iovec iov = { msg, cap };
	struct msghdr mh;
	struct cmsghdr *c;
	ssize_t n;

	*nfds = 0;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl;
	mh.msg_controllen = sizeof(ctl);
	while ((n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)) < 0)
		if (errno != EINTR)
			return -1;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			take_fds(c, fds, nfds);
	return n;
}
