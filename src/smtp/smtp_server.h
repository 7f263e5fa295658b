/*
 * smtp_server: what src/smtp owns, and what a process that serves SMTP
 * gives it. src/smtp owns the server side of SMTP: the listeners' accept,
 * every session from accept to close (state machine, commands, DATA, the
 * commit to the queue), the list of open sessions and their counters, and
 * the memory budget of message bytes. The process (src/daemon/smtpd.c)
 * owns the loop, the runtime it swaps on reload, the queue set, DNS,
 * signals, the drain timer, the watchdog thread and its notify socket: it
 * fills the first block of struct smtp_server and learns of events through
 * the two callbacks.
 */
#ifndef INDIMAIL_SMTP_SERVER_H
#define INDIMAIL_SMTP_SERVER_H

#include <openssl/ssl.h>
#include <uv.h>

#include "../lib/metrics.h"
#include "../lua/lua_runtime.h"
#include "../net/tls.h"
#include "../queue/queue.h"

struct dns;
struct connlimit;
struct counter_table;
struct smtp_session;
struct smtp_server;

/* One listening socket (TCP, or a UNIX socket for local submission). */
struct smtp_listener {
	union {
		uv_tcp_t	 tcp;
		uv_pipe_t	 pipe;	/* local submission (UNIX socket) */
	} h;
	struct smtp_server *server;
	char		*name;
	enum tls_mode	 tls;
	SSL_CTX		*tls_ctx;	/* NULL: no TLS here */
	int		 local;		/* UNIX socket: peers are local users */
	struct metric	 connections, accepted;	/* set by smtp_listener_open */
};

struct smtp_server {
	/* Filled by the process. rt may be swapped (reload): new sessions
	 * take a reference to the runtime current when they start. */
	uv_loop_t	*loop;
	int		 index;		/* our slot in the connection limits */
	struct runtime	*rt;
	struct queue_set *queue;
	struct dns	*dns;
	struct connlimit *conns;
	/* Counts every worker shares (failed AUTH, smtp_auth.c); NULL: AUTH
	 * goes without the shared limit (no master, as in some specs). */
	struct counter_table *counters;
	struct smtp_listener *listeners;
	size_t		 nlisteners;
	/* A message was queued: tell the queue manager (best effort). */
	void		(*queued)(struct smtp_server *, int queue, const char *id);
	/* Draining, and the last session is gone. */
	void		(*drained)(struct smtp_server *);
	void		*arg;		/* the process's */

	/* Owned by src/smtp. */
	struct smtp_session *sessions;	/* doubly linked */
	size_t		 nsessions;
	unsigned long	 session_counter;
	size_t		 held_bytes;	/* message and input bytes of all sessions */
	int		 draining;
	char		 readbuf[65536];
};

/* Listens on l (its name, tls and local filled) over fd; 0 or a uv error. */
int	smtp_listener_open(struct smtp_server *, struct smtp_listener *, int fd);
/*
 * Drain: the listeners close, idle sessions get 421 now, busy ones after
 * their transaction; drained() is called when the last one is gone.
 */
void	smtp_server_drain(struct smtp_server *);
/*
 * The watchdog is about to recycle the process (a hook is stuck): every
 * session gets a last 421 written straight to its socket. Runs on the
 * watchdog's thread while the loop thread is stuck; arg is the server.
 */
void	smtp_server_watchdog(void *server);

#endif
