/*
 * qmgr: the queue manager, as the process src/daemon/qmgrd.c runs it.
 * src/deliver owns everything between a message in the queue and its
 * outcome: the table of messages (rebuilt from the queue and each
 * message's journal at start), the scheduler, local and remote delivery,
 * retries, bounces, the route hook and the control socket for `indimail
 * queue ...`. The process (signals, the qmgr.lock, the watchdog, the
 * notify socket, the timer) belongs to qmgrd, which calls in here.
 */
#ifndef INDIMAIL_QMGR_H
#define INDIMAIL_QMGR_H

#include <uv.h>

#include "../lua/lua_runtime.h"

struct qmgr;

/* The queue set, DNS and remote context of rt (taken); fatal on error. */
struct qmgr *qmgr_new(uv_loop_t *, struct runtime *rt);
/* The queue is ours (qmgr.lock held): control socket, then a full scan. */
void	qmgr_start(struct qmgr *);
/* Every second while working: see scheduler_tick. */
void	qmgr_tick(struct qmgr *);
/*
 * The notify socket (src/daemon/notify.c): datagrams of at most
 * QMGR_NOTIFY_MAX bytes, lines "QUEUE ID" (a message queued) or
 * QMGR_NOTIFY_SCAN (the master: list the queue's ids again).
 */
#define QMGR_NOTIFY_MAX		4096
#define QMGR_NOTIFY_SCAN	"scan"
/* The datagrams waiting on fd. */
void	qmgr_notify(struct qmgr *, int fd);
/* Swaps in a new runtime (taken); jobs in flight keep theirs. */
void	qmgr_reload(struct qmgr *, struct runtime *rt);
/*
 * "directory-flush" on the control socket (the admin CLI changed users):
 * the queue manager forgets its cached answers and calls fn(arg), which
 * tells the other processes.
 */
void	qmgr_on_directory_change(struct qmgr *, void (*fn)(void *), void *arg);
struct runtime *qmgr_runtime(const struct qmgr *);
/* Starts no more deliveries (logs what still runs). */
void	qmgr_drain(struct qmgr *);
/* No delivery runs and nothing is on the thread pool. */
int	qmgr_drained(const struct qmgr *);
/* Closes idle remote connections, before exit. */
void	qmgr_close(struct qmgr *);

#endif
