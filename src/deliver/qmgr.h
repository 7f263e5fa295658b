/*
 * qmgr: the queue manager process. Learns of new messages from the SMTP
 * workers (a datagram per message), scans every queue at start, and moves
 * each recipient to delivered, deferred (retried with a growing backoff) or
 * bounced. Answers `indimail queue ...` on a control socket.
 */
#ifndef INDIMAIL_QMGR_H
#define INDIMAIL_QMGR_H

#include <uv.h>

#include "../lib/buf.h"
#include "../lua/lua_runtime.h"

/* Never returns. notify_fd: the read end of the workers' datagrams. */
void	qmgr_main(struct runtime *, int notify_fd) __attribute__((noreturn));

/* Answers one control request ("list", "show ID", ...) into out. */
void	qmgr_command(const char *line, struct buf *out);
/* Listens on <queue_path>/qmgr.sock (qmgr_control.c). */
void	qmgr_control_open(uv_loop_t *, const char *queue_path);

#endif
