/*
 * listen: binding the listening sockets. TCP sockets get SO_REUSEADDR so
 * a restart never waits for TIME_WAIT; a port that another process still
 * listens on (orphans of a killed master finishing their work) is retried
 * for a bounded time before giving up.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "listen.h"

static int
bind_once(const struct addrinfo *ai)
{
	int fd, one = 1;

	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
		return fd;
	one = errno;
	close(fd);
	errno = one;
	return -1;
}

int
listen_tcp(const char *address, int port, int wait_ms, int *bound,
    struct buf *err)
{
	struct addrinfo hints, *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char serv[16], num[NI_MAXSERV];
	int fd, rc, waited = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
	snprintf(serv, sizeof(serv), "%d", port);
	if ((rc = getaddrinfo(address, serv, &hints, &ai)) != 0) {
		buf_printf(err, "address %s: %s", address, gai_strerror(rc));
		return -1;
	}
	while ((fd = bind_once(ai)) < 0 && errno == EADDRINUSE &&
	    waited < wait_ms) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		waited += 100;
	}
	if (fd < 0)
		buf_printf(err, "cannot listen on %s port %d: %s", address, port,
		    strerror(errno));
	freeaddrinfo(ai);
	if (fd < 0)
		return -1;
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, num, sizeof(num),
	    NI_NUMERICSERV);
	*bound = atoi(num);
	return fd;
}

int
listen_unix(const char *path, struct buf *err)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		buf_printf(err, "socket path %s is too long", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	/* A socket left by an earlier run; never anything else. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(path, 0666) < 0 || listen(fd, 256) < 0) {
		buf_printf(err, "cannot listen on %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int
listen_same(const struct listener *l, size_t n, const struct config *c)
{
	size_t tcp = 0, local = 0;

	for (size_t i = 0; i < n; i++) {
		const struct listen_conf *lc;
		if (l[i].path) {
			if (c->submit_socket == NULL ||
			    strcmp(c->submit_socket, l[i].path) != 0)
				return 0;
			local++;
			continue;
		}
		if (tcp >= c->nlisten)
			return 0;
		lc = &c->listen[tcp++];
		if (strcmp(lc->name, l[i].name) || strcmp(lc->address,
		    l[i].address) || lc->port != l[i].port || lc->tls != l[i].tls)
			return 0;
	}
	return tcp == c->nlisten && local == (c->submit_socket != NULL);
}
