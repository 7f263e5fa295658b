/*
 * control: a request line to the running queue manager over its control
 * socket (<queue.path>/qmgr.sock, qmgr_control.c), used by `indimail
 * queue ...` and by the directory commands to tell the daemon at once
 * that users changed ("directory-flush").
 */
#ifndef INDIMAIL_CLI_CONTROL_H
#define INDIMAIL_CLI_CONTROL_H

#include "../lib/buf.h"

/*
 * Sends request and reads the whole answer into reply. 0, -1 when nothing
 * listens there (errno says why), -2 when the socket refuses us.
 */
int	control_request(const char *queue_path, const char *request,
	    struct buf *reply);

#endif
