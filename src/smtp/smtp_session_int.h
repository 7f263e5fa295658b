/*
 * smtp_session_int: the session struct and the functions the files of
 * src/smtp share about it (private to src/smtp). smtp_session.c owns the
 * state (its head comment draws the diagram); smtp_io.c the socket, TLS
 * glue, timers and tarpit; smtp_commands.c the command table; smtp_auth.c
 * AUTH and smtp_auth_limit.c its limits across workers; smtp_sender.c
 * who may use which sender and who may relay;
 * smtp_tx.c the transaction up to the queue; smtp_message.c the DATA phase;
 * smtp_log.c the log lines; smtp_server.c the server's session list.
 */
#ifndef INDIMAIL_SMTP_SESSION_INT_H
#define INDIMAIL_SMTP_SESSION_INT_H

#include <arpa/inet.h>

#include "../directory/directory.h"
#include "../lib/log.h"
#include "../lua/lua_counter.h"
#include "../lua/lua_hook.h"
#include "../mail/mail_metrics.h"
#include "../mail/msg_edit.h"
#include "smtp_data.h"
#include "smtp_parse.h"
#include "smtp_server.h"

/* What the session is doing now (see smtp_session.c). */
enum smtp_state {
	ST_CONNECT,	/* accepted: the greeting waits for the connect hook */
	ST_COMMAND,	/* reading command lines */
	ST_LONGLINE,	/* dropping an over-long command line up to its LF */
	ST_HOOK,	/* a policy hook runs; input waits, then `resume` */
	ST_TARPIT,	/* a reply is held back; input waits, then `resume` */
	ST_LOOKUP,	/* the directory is asked; input waits, then `resume` */
	ST_AUTH,	/* after AUTH's 334: the next line is the client's answer */
	ST_DATA,	/* reading the message after 354 */
	ST_QUEUE,	/* the queue write runs; input waits */
	ST_QUIT,	/* last replies flushing, then shutdown and close */
	ST_CLOSED,	/* handles closing; freed once closed and unqueued */
};

/* How far the transaction has got. */
enum smtp_tx { TX_NONE, TX_MAIL, TX_RCPT, TX_DATA };

typedef void (*after_hook_fn)(struct smtp_session *, struct hook_verdict *);

struct smtp_submission;

struct smtp_session {
	struct smtp_server *srv;
	struct smtp_listener *listener;
	struct smtp_session *prev, *next;
	struct runtime	*rt;		/* referenced for the session's life */
	union {
		uv_tcp_t	 tcp;
		uv_pipe_t	 pipe;	/* local submission */
	} h;
	uv_timer_t	 timer;		/* timeouts and deadlines */
	uv_timer_t	 tarpit;	/* holds a reply back (harvesting) */
	int		 handles_open;
	int		 queue_holds;	/* the queue writer has a pointer to us */
	char		 id[32];
	char		 ip[INET6_ADDRSTRLEN], local_ip[INET6_ADDRSTRLEN];
	int		 port, local_port;
	long		 uid;		/* local submission: the peer's uid; else -1 */
	struct sockaddr_storage peer;
	int		 counted;	/* holds a connlimit slot */
	enum smtp_state	 state;
	enum smtp_state	 resume;	/* where ST_HOOK, ST_TARPIT, ST_LOOKUP return */
	int		 errors;
	int		 junk;		/* NOOP, HELP, VRFY, RSET since the last message */
	int		 bad_rcpts;	/* refused recipients this session */
	uint64_t	 deadline;	/* uv_now() by which the phase must end; 0: none */
	size_t		 charged;	/* bytes counted in srv->held_bytes */
	struct buf	 in, out;
	struct tls_conn	 tls;
	int		 tls_on;
	int		 reading;	/* uv_read_start is in effect */
	int		 peer_eof;	/* the client half-closed its side */
	struct hook_call *hook;
	struct hook_ctx	 ctx;
	struct hook_holds holds;	/* counts held until close (lua_counter.h) */
	enum hook_stage	 hook_stage;
	after_hook_fn	 after;
	/* session */
	char		*helo;
	int		 esmtp;
	int		 relay;		/* relay_from or the local socket */
	int		 relay_grant;	/* session.relay = true by a policy */
	enum hook_stage	 relay_grant_stage;	/* ... in this stage */
	int		 discard_session;
	int		 session_obj;	/* the session object (lua_hook.h ref) */
	uint64_t	 hook_delay;	/* ms the next reply waits (indimail.tarpit) */
	/* transaction */
	enum smtp_tx	 tx;
	struct buf	 sender;
	char		**rcpts;
	size_t		 nrcpts;
	size_t		 rcpt_bytes;	/* their lines in the queued envelope */
	struct smtp_mail_arg mail;
	struct smtp_rcpt_arg rcpt;
	struct envvars	 env;
	int		 discard;
	int		 tx_obj;	/* the tx object (lua_hook.h ref) */
	int		 tx_relay_grant;	/* tx.relay = true by a policy */
	struct buf	 hold;		/* why a hook held it; empty: not held */
	struct buf	 quarantine;	/* the quarantine address; empty: none */
	struct buf	 quarantine_why;
	char		 qid[QUEUE_ID_LEN + 1];
	struct expansion expanded;	/* recipients after aliases */
	struct directory *dir;		/* of the session's configuration */
	struct dir_query *dirq;		/* directory lookup in flight */
	enum dir_lookup	 rcpt_dir;	/* its answer for the RCPT */
	/* AUTH (smtp_auth.c) */
	const struct listen_conf *lconf;	/* NULL: no AUTH (local socket) */
	char		*auth_user;	/* logged in as; NULL: not */
	char		*auth_try;	/* the user being checked */
	int		 auth_step;	/* what the next ST_AUTH line answers */
	struct dir_auth	 auth_result;	/* the directory's answer */
	int		 auth_no_relay;	/* the user may not relay */
	enum dir_status	 sender_owned;	/* directory_owns' answer (MAIL) */
	enum dir_status	 sender_local;	/* directory_domain's, for the sender */
	int		 auth_failures;	/* 535s in this session */
	int		 auth_hold;	/* the 535 just queued waits (tarpit) */
	struct smtp_sasl *sasl;		/* CRAM-MD5 / SCRAM exchange (smtp_sasl.c) */
	long		 auth_ip_fails;	/* the client's shared count after it */
	/* the message (DATA) */
	struct smtp_data data;
	struct buf	 msg;
	struct buf	 received;
	size_t		 header_len;
	int		 headers_done;	/* the data hook has been started */
	int		 over_budget;	/* DATA dropped: the server's memory budget */
	size_t		 scanned;	/* header-end search done up to here */
	struct hook_verdict data_verdict;	/* from the data hook */
	struct msg_edit	 edit;		/* the hooks' edits, applied at commit */
	/* indimail.submit (smtp_submit.c): queued after the message */
	struct smtp_submission *subs;
	size_t		 nsubs, isub;
	struct expansion sub_exp;	/* the one being queued, expanded */
	char		 sub_qid[QUEUE_ID_LEN + 1];
	int		 header_applied;	/* edited header is in received */
	/* DKIM (smtp_dkim.c): the signature the queue write puts on top */
	struct buf	 dkim_field;
	void		(*dkim_next)(struct smtp_session *);
};

/* smtp_tx.c: the message as the queue stores it, without a signature:
 * Received (with the edited header section), then body pieces. */
size_t	smtp_tx_pieces(struct smtp_session *, struct msg_piece *);
/* smtp_dkim.c: signs the message if a policy asked, then next(s); a
 * failure to sign is a 451 unless the policy said sign_failure="pass". */
void	smtp_dkim_sign(struct smtp_session *,
	    void (*next)(struct smtp_session *));

/* Input kept while a hook or the queue is busy before reading pauses. */
#define INPUT_BACKLOG	(256 * 1024)
/*
 * Replies not yet taken by the client before reading (and answering)
 * pauses: a client that never reads cannot make us buffer without bound.
 */
#define OUTPUT_HIGH	(64 * 1024)
/* An AUTH command or answer line, CRLF included (RFC 4954 4). */
#define SMTP_AUTH_LINE_MAX	12288
/* Longest a tarpit holds one reply back. */
#define TARPIT_MAX_MS	(30 * 1000)

/* The configuration the session started with (a reload applies to new
 * sessions; an open one finishes under the rules it began with). */
static inline struct config *
smtp_cfg(struct smtp_session *s)
{
	return &s->rt->cfg;
}

/* smtp_session.c: the state machine */
void	smtp_process_input(struct smtp_session *);
void	smtp_run_hooks(struct smtp_session *, enum hook_stage, after_hook_fn);
int	smtp_verdict_allows(struct smtp_session *, struct hook_verdict *);
int	smtp_busy(const struct smtp_session *);
void	smtp_session_close(struct smtp_session *, const char *why);
void	smtp_session_accept(struct smtp_listener *);
void	smtp_session_drain(struct smtp_session *);

/* smtp_io.c: socket, TLS glue, timers, tarpit */
void	smtp_reply(struct smtp_session *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	smtp_flush(struct smtp_session *);
void	smtp_flush_and_close(struct smtp_session *);
size_t	smtp_output_pending(struct smtp_session *);
void	smtp_update_reading(struct smtp_session *);
void	smtp_charge(struct smtp_session *);
void	smtp_deadline(struct smtp_session *, int ms, int idle_ms);
void	smtp_command_turn(struct smtp_session *);
int	smtp_tarpit(struct smtp_session *);
void	smtp_last_words(struct smtp_session *, const struct buf *line);

/* smtp_commands.c: the command table */
void	smtp_command_handle(struct smtp_session *, const char *line,
	    size_t len);
void	smtp_refuse(struct smtp_session *, const char *cmd, const char *why);

/* smtp_auth.c: SMTP AUTH (RFC 4954) */
void	smtp_auth_init(struct smtp_session *);
int	smtp_auth_offered(const struct smtp_session *);
const char *smtp_auth_required(const struct smtp_session *);
const char *smtp_auth_check(struct smtp_session *, const struct smtp_command *);
int	smtp_auth_proceed(struct smtp_session *, const struct smtp_command *);
void	smtp_auth_response(struct smtp_session *, const char *line, size_t len);
void	smtp_auth_abort(struct smtp_session *);
void	smtp_auth_reset(struct smtp_session *);
uint64_t smtp_auth_delay(struct smtp_session *);
int	smtp_auth_plausible(const char *user, size_t n);
void	smtp_auth_failed(struct smtp_session *, const char *why);
void	smtp_auth_granted(struct smtp_session *);
void	smtp_auth_tempfail(struct smtp_session *);
void	smtp_auth_mech_names(const struct smtp_session *, struct buf *);

/* smtp_sasl.c: CRAM-MD5 and SCRAM-SHA-256 */
int	smtp_sasl_start(struct smtp_session *, enum dir_mech, int has_ir);
void	smtp_sasl_response(struct smtp_session *, const char *m, size_t n);
void	smtp_sasl_free(struct smtp_session *);

/*
 * smtp_sender.c: MAIL FROM ownership, local senders, no-relay users, the
 * policies' relay grants. MAIL
 * asks the directory (smtp_sender_lookup: DIR_DONE, or DIR_PENDING and
 * cb(s) later), then smtp_sender_refused replies to a refusal, resets the
 * transaction and returns 1.
 */
int	smtp_sender_lookup(struct smtp_session *, dir_done_cb);
int	smtp_sender_refused(struct smtp_session *);
int	smtp_may_relay(const struct smtp_session *);
int	smtp_relay_denied(struct smtp_session *);
/* session.relay / tx.relay writes (hook_ctx.relay_grant; arg: session). */
int	smtp_relay_grant(void *arg, int tx, int on, const char *policy);
/* STARTTLS: a grant given after the connect hook is forgotten. */
void	smtp_relay_forget(struct smtp_session *);

/* smtp_auth_limit.c: failed AUTH counted across workers (auth_fail_limit) */
int	smtp_auth_locked(struct smtp_session *, const char *user);
void	smtp_auth_count_failure(struct smtp_session *, const char *user);
uint64_t smtp_auth_shared_delay(struct smtp_session *);

/* smtp_tx.c: the transaction, its envelope and the commit */
void	smtp_tx_reset(struct smtp_session *);
void	smtp_tx_end(struct smtp_session *);
void	smtp_tx_add_rcpt(struct smtp_session *);
int	smtp_tx_envelope_full(struct smtp_session *, const char *rcpt);
/* Would the envelope with recipients of rcpt_bytes fit the queue? */
int	smtp_tx_envelope_fits(struct smtp_session *, size_t rcpt_bytes);
void	smtp_tx_commit(struct smtp_session *);
/* hold / quarantine verdicts: remembered for the commit. */
void	smtp_tx_hold(struct smtp_session *, const struct hook_verdict *);

/* smtp_edit.c: the envelope edits of the data and message hooks */
extern const struct hook_tx_edit smtp_tx_edit;
/* NULL if a is an address RCPT TO (sender: MAIL FROM) takes, else why. */
const char *smtp_edit_check_address(const char *a, int sender);

/* smtp_submit.c: indimail.submit's messages, queued after the message */
const char *smtp_submit_add(void *arg, const char *sender,
	    const char *const *rcpts, size_t n, struct buf *msg,
	    const char *policy);
/* The message is queued: 1 if submissions go on (they end the
 * transaction), 0 if there are none to queue. */
int	smtp_submit_start(struct smtp_session *);
void	smtp_submit_free(struct smtp_session *);

/* smtp_message.c: the DATA phase */
void	smtp_message_start(struct smtp_session *);
void	smtp_message_feed(struct smtp_session *);

/* smtp_log.c */
void	smtp_log_session(struct smtp_session *, struct logline *,
	    enum log_level, const char *event);
void	smtp_log_verdict(struct smtp_session *, const struct hook_verdict *);
void	smtp_log_reject(struct smtp_session *, const char *cmd, const char *why);
void	smtp_log_queued(struct smtp_session *, const char *event, double secs);

/* smtp_server.c: the server's list of sessions */
void	smtp_server_enter(struct smtp_server *);
void	smtp_server_link(struct smtp_server *, struct smtp_session *);
void	smtp_server_unlink(struct smtp_server *, struct smtp_session *);
void	smtp_server_gone(struct smtp_server *);

#endif
