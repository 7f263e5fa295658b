/*
 * lua_hook: runs every hook of one stage, in order, each inside its own
 * coroutine. A hook that calls a waiting API (indimail.dns.lookup) yields;
 * the loop resumes it when the answer arrives. The first verdict that is
 * not "go on" (nil, true, a tarpit) ends the stage, indimail.accept()
 * included; tarpit delays add up over the stage. Errors, budget overruns and malformed verdicts
 * become a 451 4.3.0 tempfail with the traceback in the log.
 */
#ifndef INDIMAIL_LUA_HOOK_H
#define INDIMAIL_LUA_HOOK_H

#include <stdint.h>
#include <uv.h>

#include "../lib/buf.h"
#include "../mail/envelope.h"
#include "lua_runtime.h"

struct dns;
struct hook_holds;
struct msg_edit;

/*
 * Envelope edits (tx:add_rcpt() ...), done by the SMTP session on its own
 * transaction: each returns NULL, or why it refused (nothing changed), and
 * on success updates the ctx's sender, rcpts and nrcpts.
 */
struct hook_tx_edit {
	const char *(*add_rcpt)(void *arg, const char *addr);
	const char *(*remove_rcpt)(void *arg, const char *addr, size_t *count);
	const char *(*set_rcpts)(void *arg, const char *const *addrs, size_t n);
	const char *(*set_sender)(void *arg, const char *addr);
	/*
	 * indimail.submit (message stage, lua_submit.c): a new message from
	 * sender ("" is <>) to rcpts, queued after this one is; takes msg's
	 * bytes (header section, blank line, body; LF line ends); policy
	 * names who asked, for the logs.
	 */
	const char *(*submit)(void *arg, const char *sender,
	    const char *const *rcpts, size_t n, struct buf *msg,
	    const char *policy);
};

enum verdict_action { VERDICT_ACCEPT, VERDICT_REJECT, VERDICT_TEMPFAIL,
	VERDICT_DISCARD, VERDICT_ROUTE,
	VERDICT_HOLD,		/* queued, not delivered until released */
	VERDICT_QUARANTINE	/* queued for the quarantine address only */
};

enum route_kind { ROUTE_DEFAULT, ROUTE_LOCAL, ROUTE_MX, ROUTE_RELAY };

struct hook_verdict {
	enum verdict_action action;
	int		 code;		/* SMTP reply code */
	char		 status[16];	/* enhanced status, "5.7.1" */
	struct buf	 text;
	char		 policy[64];	/* name of the hook that decided */
	int		 internal;	/* 1: our fault (error, budget, bad verdict) */
	int		 stop;		/* indimail.accept(): later hooks skipped */
	uint64_t	 delay_ms;	/* tarpit: the reply waits (whole stage) */
	struct buf	 address;	/* quarantine: where the message goes */
	/* route stage only (VERDICT_ROUTE) */
	enum route_kind	 route;
	struct buf	 route_host;
	int		 route_port;
	struct buf	 route_user, route_password;
	int		 route_tls;	/* enum client_tls; -1 = default */
	int		 route_auth_plaintext;	/* AUTH allowed without TLS */
	struct client_timeouts route_timeouts;	/* ms; 0: delivery.timeouts */
};

/* Everything a hook can see; filled by the SMTP session. */
struct hook_ctx {
	const char	*session_id;
	const char	*ip, *local_ip, *listener;
	int		 port, local_port;
	const char	*helo;		/* NULL before HELO/EHLO */
	int		 esmtp, tls, relay;
	const char	*tls_version, *tls_cipher;
	const char	*auth_user;
	const char	*queue_id;	/* transaction id, once known */
	const char	*sender;	/* NULL outside a transaction */
	char	       **rcpts;
	size_t		 nrcpts;
	const char	*rcpt;		/* the one being checked (rcpt stage) */
	uint64_t	 size_hint;	/* SIZE= of MAIL, 0 if none */
	struct envvars	*env;		/* in/out: tx.env */
	const struct buf *message;	/* data/message stages */
	size_t		 header_len;	/* bytes of the header section */
	struct hook_holds *holds;	/* the session's (lua_counter.h); NULL: none */
	/* data/message stages (NULL elsewhere): msg and tx edits (lua_edit.c) */
	struct msg_edit	*edit;
	const struct hook_tx_edit *tx_edit;
	void		*tx_edit_arg;
	/*
	 * The session and tx objects: registry refs kept by the caller, the
	 * session's for the session, the transaction's for the transaction
	 * (HOOK_NO_OBJECT: not made yet), brought up to date at each stage
	 * and released with hook_ref_release. Their notes tables live in
	 * them. NULL: built for the stage, without notes (queue manager).
	 */
	int		*session_obj, *tx_obj;
	/*
	 * A policy's write of session.relay (tx = 0) or tx.relay (tx = 1)
	 * in a stage that allows it (lua_objects.c checks which): the SMTP
	 * session records and logs the grant and returns the effective
	 * answer, which becomes `relay`. NULL: no grants here (queue manager).
	 */
	int		(*relay_grant)(void *arg, int tx, int on, const char *policy);
	void		*relay_arg;
};

enum { HOOK_DONE, HOOK_PENDING };
#define HOOK_NO_OBJECT	(-2)	/* LUA_NOREF: no kept object yet */

typedef void (*hook_done_cb)(void *arg, struct hook_verdict *);
struct hook_call;

/* Process-wide environment for yielding APIs (set once per worker). */
void	hook_set_env(uv_loop_t *, struct dns *);

/*
 * Runs the hooks. HOOK_DONE: *v holds the verdict, cb will not be called.
 * HOOK_PENDING: cb(arg, verdict) will be called later from the loop, unless
 * hook_cancel(*callp) is called first. ctx must stay valid until then.
 */
int	hook_run(struct runtime *, enum hook_stage, struct hook_ctx *,
	    struct hook_verdict *v, hook_done_cb cb, void *arg,
	    struct hook_call **callp);
void	hook_cancel(struct hook_call *);
/* The master, after mail_metrics_start: every stage's duration series. */
void	hook_metrics_start(void);
/* Frees a kept object (*ref, in rt's state) and resets *ref. */
void	hook_ref_release(struct runtime *, int *ref);
void	hook_verdict_init(struct hook_verdict *);
void	hook_verdict_free(struct hook_verdict *);
/* dst takes src's buffers; src is left empty (accept). */
void	hook_verdict_move(struct hook_verdict *dst, struct hook_verdict *src);

#endif
