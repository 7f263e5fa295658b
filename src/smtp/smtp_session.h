/*
 * smtp_session: one SMTP connection, from accept to close. Owns the TCP
 * handle, the optional TLS layer, the input/output buffers and the current
 * transaction. Input is processed only while no hook or queue write is in
 * flight, which is what makes pipelining and yielding hooks safe.
 */
#ifndef INDIMAIL_SMTP_SESSION_H
#define INDIMAIL_SMTP_SESSION_H

#include <uv.h>

struct worker;
struct worker_listener;

/* Accepts one connection from the listener; logs and drops on error. */
void	smtp_session_accept(struct worker_listener *);
/* Drain: idle sessions get 421 now, busy ones after their transaction. */
void	smtp_session_drain_all(struct worker *);
/*
 * The watchdog is about to recycle the worker (a hook is stuck): every
 * session gets a last 421 written straight to its socket. Runs on the
 * watchdog's thread while the loop thread is stuck; arg is the worker.
 */
void	smtp_session_watchdog(void *worker);

#endif
