/*
 * qmgrd: the queue manager process. Owns the loop, the signals (SIGHUP
 * reloads, SIGTERM / SIGINT drain), the qmgr.lock that keeps a second
 * queue manager off the queue, the watchdog, the one-second timer and the
 * notify socket's poll; the queue manager itself is src/deliver/qmgr.h.
 * The timer first waits for the lock, then ticks the scheduler, and while
 * draining checks whether everything in flight has finished.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "../deliver/qmgr.h"
#include "../lib/buf.h"
#include "../lib/diag.h"
#include "../directory/directory.h"
#include "../lib/log.h"
#include "../lib/watchdog.h"
#include "../lib/xalloc.h"
#include "ctl.h"
#include "proc.h"
#include "qmgrd.h"

static struct {
	uv_loop_t	*loop;
	struct qmgr	*q;
	int		 lock_fd;	/* <queue.path>/qmgr.lock once held; else -1 */
	int		 pending_lock;	/* the same file while we wait for it */
	uv_timer_t	 tick;
	uv_poll_t	 notify;
	int		 notify_fd;
	int		 ctl_fd;	/* the master's log file on reload (ctl.h) */
	uv_signal_t	 sighup, sigterm, sigint, sigusr2;
} D;

static void
on_reload(uv_signal_t *s, int sig)
{
	struct buf err = BUF_INIT;
	struct runtime *rt;

	(void)s;
	(void)sig;
	/* the log reopened, first; a configuration only if the master's loaded */
	if (!ctl_apply(D.ctl_fd, NULL, NULL))
		return;
	watchdog_enter();
	rt = runtime_load(qmgr_runtime(D.q)->path, &err);
	watchdog_leave();
	if (rt == NULL) {
		log_event(LOG_ERROR, "reload_failed", "error=\"%s\"", buf_cstr(&err));
		buf_free(&err);
		return;
	}
	proc_log_settings(&rt->cfg);
	watchdog_set_limit(rt->cfg.timeout_watchdog);
	qmgr_reload(D.q, rt);
}

static void
maybe_exit(void)
{
	if (qmgr_drained(D.q)) {
		qmgr_close(D.q);
		log_event(LOG_INFO, "qmgr_exit", "reason=drained");
		exit(0);
	}
}

static void
on_drain_check(uv_timer_t *t)
{
	static int waited;

	(void)t;
	maybe_exit();
	if (++waited * 100 > qmgr_runtime(D.q)->cfg.timeout_drain) {
		log_event(LOG_WARN, "qmgr_exit", "reason=drain_timeout");
		exit(0);
	}
}

static void
on_term(uv_signal_t *s, int sig)
{
	(void)s;
	(void)sig;
	if (D.lock_fd < 0) {	/* never started: nothing to finish */
		log_event(LOG_INFO, "qmgr_exit", "reason=stopped_waiting_for_lock");
		exit(0);
	}
	qmgr_drain(D.q);
	uv_timer_start(&D.tick, on_drain_check, 0, 100);
}

/* A route hook is stuck: deliveries in flight are repeated by our successor. */
static void
on_watchdog(void *unused)
{
	(void)unused;
}

static void
on_tick(uv_timer_t *t)
{
	(void)t;
	qmgr_tick(D.q);
}

static void
on_notify(uv_poll_t *p, int status, int events)
{
	(void)p;
	(void)status;
	(void)events;
	qmgr_notify(D.q, D.notify_fd);
}

/* Starts delivering: only one queue manager at a time works on a queue. */
static void
start_work(void)
{
	uv_timer_stop(&D.tick);
	uv_timer_start(&D.tick, on_tick, 1000, 1000);
	uv_poll_start(&D.notify, UV_READABLE, on_notify);
	qmgr_start(D.q);
}

/*
 * The queue lock: a queue manager of an earlier master (killed with -9,
 * its children draining) may still be finishing deliveries; scanning the
 * queue before it is gone would deliver its messages a second time.
 */
static int
take_lock(int fd)
{
	return flock(fd, LOCK_EX | LOCK_NB) == 0;
}

static void
on_lock_retry(uv_timer_t *t)
{
	static int logged;

	if (!take_lock(D.pending_lock)) {
		if (!logged++)
			log_event(LOG_INFO, "qmgr_waiting", "reason=\"another queue "
			    "manager still works on this queue\"");
		return;
	}
	uv_timer_stop(t);
	D.lock_fd = D.pending_lock;
	start_work();
}

static void
open_lock(void)
{
	struct buf p = BUF_INIT;

	buf_printf(&p, "%s/qmgr.lock", qmgr_runtime(D.q)->cfg.queue_path);
	D.lock_fd = -1;
	D.pending_lock = open(buf_cstr(&p), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (D.pending_lock < 0)
		fatal("cannot open %s: %s", buf_cstr(&p), strerror(errno));
	buf_free(&p);
	uv_timer_start(&D.tick, on_lock_retry, 0, 200);
}

static void
on_usr2(uv_signal_t *s, int sig)
{
	(void)sig;
	directory_flush_loop(s->loop);
}

static void
signals_start(void)
{
	uv_signal_init(D.loop, &D.sighup);
	uv_signal_init(D.loop, &D.sigterm);
	uv_signal_init(D.loop, &D.sigint);
	uv_signal_init(D.loop, &D.sigusr2);
	uv_signal_start(&D.sigusr2, on_usr2, SIGUSR2);
	uv_signal_start(&D.sighup, on_reload, SIGHUP);
	uv_signal_start(&D.sigterm, on_term, SIGTERM);
	uv_signal_start(&D.sigint, on_term, SIGINT);
}

/* The admin CLI changed the directory: the master tells the workers. */
static void
on_directory_change(void *arg)
{
	(void)arg;
	kill(getppid(), SIGUSR2);
}

void
qmgrd_main(struct runtime *rt, int notify_fd, int ctl_fd)
{
	log_set_role("qmgr");
	signal(SIGPIPE, SIG_IGN);
	D.loop = xcalloc(1, sizeof(uv_loop_t));
	uv_loop_init(D.loop);
	D.notify_fd = notify_fd;
	D.ctl_fd = ctl_fd;
	D.q = qmgr_new(D.loop, rt);
	qmgr_on_directory_change(D.q, on_directory_change, NULL);
	uv_timer_init(D.loop, &D.tick);
	uv_poll_init(D.loop, &D.notify, notify_fd);
	signals_start();
	open_lock();
	watchdog_start(rt->cfg.timeout_watchdog, on_watchdog, NULL);
	unblock_signals();	/* blocked since the fork, see master.c */
	uv_run(D.loop, UV_RUN_DEFAULT);
	exit(0);
}
