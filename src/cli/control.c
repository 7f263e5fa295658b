/*
 * control: one request to the queue manager's control socket and its
 * whole answer (control.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"

int
control_request(const char *queue_path, const char *request,
    struct buf *reply)
{
	struct sockaddr_un sun;
	char tmp[4096];
	ssize_t n;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/qmgr.sock",
	    queue_path) >= sizeof(sun.sun_path))
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    write(fd, request, strlen(request)) < 0 || write(fd, "\n", 1) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return e == EACCES || e == EPERM ? -2 : -1;
	}
	while ((n = read(fd, tmp, sizeof(tmp))) > 0)
		buf_append(reply, tmp, (size_t)n);
	close(fd);
	return 0;
}
