/*
 * worker: one SMTP worker process: a libuv loop, its lua runtime, the
 * listeners it inherited from the master, and its sessions. Reload (SIGHUP)
 * swaps the runtime; drain (SIGTERM) stops accepting and lets transactions
 * in progress finish.
 */
#ifndef INDIMAIL_WORKER_H
#define INDIMAIL_WORKER_H

#include <openssl/ssl.h>
#include <uv.h>

#include "../lua/lua_runtime.h"
#include "../queue/queue.h"

struct dns;
struct connlimit;
struct smtp_session;

struct listener;

struct worker_listener {
	union {
		uv_tcp_t	 tcp;
		uv_pipe_t	 pipe;	/* local submission (UNIX socket) */
	} h;
	struct worker	*w;
	char		*name;
	enum tls_mode	 tls;
	SSL_CTX		*tls_ctx;	/* NULL: no TLS here */
	int		 local;		/* UNIX socket: peers are local users */
};

struct worker {
	uv_loop_t	*loop;
	int		 index;
	struct runtime	*rt;
	struct queue_set queue;
	struct dns	*dns;
	struct connlimit *conns;
	struct worker_listener *listeners;
	size_t		 nlisteners;
	struct smtp_session *sessions;	/* doubly linked */
	size_t		 nsessions;
	unsigned long	 session_counter;
	size_t		 held_bytes;	/* message and input bytes of all sessions */
	int		 draining;
	int		 notify_fd;
	uv_signal_t	 sighup, sigterm, sigint;
	uv_timer_t	 drain_timer;
	char		 readbuf[65536];
};

/*
 * Never returns: runs the worker until drained, on the listeners the
 * master bound (with their TLS contexts, loaded before it dropped
 * privileges).
 */
void	worker_main(int index, struct runtime *, const struct listener *,
	    size_t nlisteners, struct connlimit *, int notify_fd)
	    __attribute__((noreturn));
void	worker_session_gone(struct worker *);
/* Tells the queue manager a message is in the queue (best effort). */
void	worker_notify_queued(struct worker *, int queue, const char *id);

#endif
