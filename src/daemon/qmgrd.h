/*
 * qmgrd: the queue manager process, forked by the master. Runs the
 * delivery code of src/deliver (qmgr.h) on its own loop once it holds
 * <queue.path>/qmgr.lock; reloads on SIGHUP, drains on SIGTERM.
 */
#ifndef INDIMAIL_QMGRD_H
#define INDIMAIL_QMGRD_H

#include "../lua/lua_runtime.h"

/* Never returns. notify_fd: the read end of the workers' datagrams. */
/* ctl_fd: the child's end of its ctl channel (ctl.h). */
void	qmgrd_main(struct runtime *, int notify_fd, int ctl_fd)
	    __attribute__((noreturn));

#endif
