/*
 * smtpd: one SMTP worker process: a libuv loop, its lua runtime, the queue
 * set, DNS, and an SMTP server (src/smtp) on the listeners it inherited
 * from the master. Reload (SIGHUP) swaps the runtime; drain (SIGTERM)
 * stops accepting and lets transactions in progress finish.
 */
#ifndef INDIMAIL_WORKER_H
#define INDIMAIL_WORKER_H

#include <uv.h>

#include "../directory/directory.h"
#include "../queue/queue.h"
#include "../smtp/smtp_server.h"

struct listener;

struct worker {
	struct smtp_server srv;		/* loop, runtime, sessions */
	struct queue_set queue;
	/*
	 * The directory of the current configuration, held by the process so
	 * that a backend's connections and cache outlive idle moments (each
	 * session holds its own reference too).
	 */
	struct directory *dir;
	int		 notify_fd;
	struct notify_sender *notify;	/* on notify_fd (notify.h) */
	/* the master's channel (ctl.h), the bound listeners, and
	 * the TLS files it sent, kept until the new configuration is in. */
	int		 ctl_fd;
	const struct listener *ls;
	size_t		 nls;
	struct buf	 tls_cert, tls_key;
	int		 tls_pending;
	uv_signal_t	 sighup, sigterm, sigint, sigusr2;
	uv_timer_t	 drain_timer;
	uv_timer_t	 exit_timer;	/* the queue's work to finish */
};

/*
 * Never returns: runs the worker until drained, on the listeners the
 * master bound (with their TLS contexts, loaded before it dropped
 * privileges; a reload brings new ones over ctl_fd, see smtpd.c).
 */
void	worker_main(int index, struct runtime *, const struct listener *,
	    size_t nlisteners, struct connlimit *, struct counter_table *,
	    int notify_fd, int ctl_fd)
	    __attribute__((noreturn));

#endif
