/*
 * lua_hook_int: what the files of the hook runner share (lua_hook.c runs
 * the stage, lua_verdict.c reads verdicts, lua_objects.c builds session,
 * tx and msg, lua_dns.c, lua_directory.c, lua_spf.c, lua_clamd.c and
 * lua_bogofilter.c, lua_rspamd.c are the yielding indimail.dns,
 * indimail.directory, indimail.spf, indimail.clamd, indimail.bogofilter
 * and indimail.rspamd bindings). Private to
 * src/lua: everything else uses lua_hook.h.
 */
#ifndef INDIMAIL_LUA_HOOK_INT_H
#define INDIMAIL_LUA_HOOK_INT_H

#include <lauxlib.h>

#include "../directory/directory.h"
#include "../net/bogofilter.h"
#include "../net/clamd.h"
#include "../net/dkim_job.h"
#include "../net/dns.h"
#include "../net/rspamd.h"
#include "../net/spf_job.h"
#include "lua_budget.h"
#include "lua_hook.h"

struct dns_batch;
struct dmarc_check;

/* The answer of the DNS query a hook is waiting for. */
struct dns_pending {
	enum dns_type	 type;
	enum dns_status	 status;
	char		*error;
	struct dns_answer *answers;
	size_t		 n;
	struct dns_batch *batch;	/* indimail.dns.lookup_all's queries */
};

struct domain_rule;

struct hook_call {
	struct runtime	*rt;		/* whose hooks run now */
	struct runtime	*main;		/* the configuration's */
	const struct domain_rule **chain;	/* domains to run after it */
	size_t		 nchain, ichain;
	enum hook_stage	 stage;
	int		 index;		/* hook being run */
	const char	*name;
	const char	*file;		/* the domain file running, for logs */
	struct hook_ctx	*ctx;
	lua_State	*co;
	int		 co_ref, session_ref, tx_ref, msg_ref;
	int		 session_kept, tx_kept;	/* the ref is the ctx's */
	int		 nargs;		/* what a guarded step pushed on co */
	const char	*verdict_err;	/* why the hook's verdict is unusable */
	struct budget	 budget;	/* instructions of the running hook */
	uint64_t	 delay_ms;	/* tarpits of the stage's hooks so far */
	uint64_t	 started_ns;	/* uv_hrtime() at hook_run */
	int		 pending_ops;	/* async operations in flight */
	int		 running;	/* inside lua_resume */
	int		 finished;	/* verdict given or cancelled */
	int		 async;		/* hook_run already returned PENDING */
	int		 timer_init;
	uv_timer_t	 timer;
	struct dns_pending dns;
	/* the answer a yielding API waited for is in: push it, return the
	 * number of results (NULL: nothing to push yet) */
	int		(*push)(struct hook_call *);
	/* indimail.directory (lua_directory.c) */
	struct directory *dir;		/* taken on first use */
	struct dir_query *dirq;		/* the lookup in flight */
	int		 dir_kind;	/* enum dir_entry_kind */
	struct dir_entry dent;		/* its answer */
	/* indimail.spf (lua_spf.c) */
	struct spf_job	*spfq;		/* the check in flight */
	struct spf_answer spfa;		/* its answer */
	/* indimail.clamd (lua_clamd.c) */
	struct clamd_scan *clamq;	/* the scan in flight */
	int		 clam_verdict;	/* enum clamd_verdict */
	struct buf	 clam_text;	/* its virus name or error */
	uint64_t	 clam_ms;
	/* indimail.bogofilter (lua_bogofilter.c) */
	struct bogofilter_run *bogoq;	/* the child in flight */
	int		 bogo_class;	/* enum bogofilter_class */
	double		 bogo_score;
	struct buf	 bogo_text;	/* its X-Bogosity value or error */
	uint64_t	 bogo_ms;
	/* indimail.rspamd (lua_rspamd.c) */
	struct rspamd_check *rspq;	/* the check in flight */
	struct rspamd_reply rsp_reply;	/* its answer, moved here */
	int		 rsp_ok;	/* rsp_reply holds one */
	struct buf	 rsp_error;
	uint64_t	 rsp_ms;
	/* indimail.dkim (lua_dkim.c) */
	struct dkim_job	*dkimq;		/* the verification in flight */
	struct dkim_msg_answer *dkima;	/* its answer */
	/* indimail.dmarc (lua_dmarc.c) */
	struct dmarc_check *dmarcq;	/* the check in flight or answered */
	hook_done_cb	 cb;
	void		*arg;
	struct hook_verdict v;
};

/*
 * Pushes t[k] raw: read after the hook returned, so no policy code may run.
 * [-0, +1]
 */
static inline void
hook_rawfield(lua_State *L, int t, const char *k)
{
	t = lua_absindex(L, t);
	lua_pushstring(L, k);
	lua_rawget(L, t);
}

/* The longest delay a verdict may ask for, in seconds (limits.tarpit_max
 * bounds what the SMTP side waits). */
#define HOOK_DELAY_MAX	3600

/* lua_hook.c: continues a call after an async completion (c->push set). */
void	hook_resume(struct hook_call *);
/* The loop of the process's hooks (hook_set_env), or NULL. */
uv_loop_t *hook_get_loop(void);
/* The session of the hook running now (in lua_resume), or NULL. */
const struct hook_ctx *hook_current_ctx(void);
struct hook_call *hook_current_call(void);

/* lua_verdict.c */
/* Makes c's verdict a 451 4.3.0 (our fault) and logs what and detail. */
void	hook_internal_error(struct hook_call *, const char *what,
	    const char *detail);
/* Reads the value a hook returned (top of co). Returns NULL or an error. */
const char *hook_parse_verdict(lua_State *co, int nres, struct hook_verdict *);
/* A reject (cls 5) or tempfail (cls 4): NULL if valid, else why not. */
const char *hook_verdict_check(int cls, lua_Integer code, const char *status,
	    const char *text);
const char *hook_verdict_stage_error(enum hook_stage, const struct hook_verdict *);
/*
 * A relay route's timeouts = { connect=, greeting=, command=, data= }
 * (seconds, as the config's routes) at index i into *to (ms); nil leaves
 * *to as it is. NULL, or why not (*key: the field at fault, or NULL).
 * Reads raw: no policy code runs.
 */
/* Raises "fn: unknown option K" for a key of the table at t (an absolute
 * index) that is not in names (NULL-terminated): no option is ignored. */
void	hook_check_opts(lua_State *, int t, const char *fn,
	    const char *const *names);
const char *hook_route_timeouts(lua_State *, int i, struct client_timeouts *to,
	    const char **key);

/*
 * lua_objects.c: each leaves nothing on L and returns a registry ref:
 * session and tx the ctx keeps (ctx->session_obj, ctx->tx_obj; made or
 * brought up to date), else a new one the caller releases; msg always new.
 */
/* t.k = v (the table on top), or nil for NULL: a binding's answer fields. */
void	hook_set_string(lua_State *, const char *k, const char *v);
int	hook_session_object(lua_State *, const struct hook_ctx *);
int	hook_tx_object(lua_State *, const struct hook_ctx *);
int	hook_make_msg(lua_State *, struct hook_call *);
/* Makes the msg object (registry ref) unusable once the stage is over. */
void	hook_msg_detach(lua_State *, int ref);
/* Copies tx.env back into ctx->env. Returns NULL or an error text. */
const char *hook_read_env(lua_State *, struct hook_call *);
/* The call behind msg object 1 (raises once its hook finished). */
struct hook_call *hook_msg_call(lua_State *);
/* tx.sender and tx.rcpts read again from the ctx (after an edit). */
void	hook_tx_refresh(lua_State *, struct hook_call *);

/* lua_edit.c: the editing methods, set into the table on top of L */
void	hook_edit_msg_methods(lua_State *);
void	hook_edit_tx_methods(lua_State *);

/* lua_dns.c */
void	hook_dns_set(struct dns *);
/* Pushes the waited-for answer on c->co and clears it; returns 2. */
int	hook_dns_result(struct hook_call *);
/* Pushes lookup_all's answers on c->co and clears them; returns 1. */
int	hook_dns_batch_result(struct hook_call *);
/* Frees what a DNS answer holds (a call's dns, once it is freed). */
void	hook_dns_clear(struct dns_pending *);
/* The process's resolver (hook_dns_set), or NULL. */
struct dns *hook_dns_get(void);

/* lua_directory.c: a finished call stops its lookup; a freed one lets go. */
void	hook_dir_cancel(struct hook_call *);
void	hook_dir_release(struct hook_call *);

/* lua_spf.c: the same for an SPF check. */
void	hook_spf_cancel(struct hook_call *);
void	hook_spf_release(struct hook_call *);
/* lua_clamd.c: a finished call stops its scan. */
void	hook_clamd_cancel(struct hook_call *);
/* lua_bogofilter.c: a finished call kills its bogofilter child. */
void	hook_bogofilter_cancel(struct hook_call *);
/* lua_rspamd.c: a finished call stops its check. */
void	hook_rspamd_cancel(struct hook_call *);
/* lua_dkim.c: the same for a DKIM verification; msg:dkim_sign. */
void	hook_dkim_cancel(struct hook_call *);
void	hook_dkim_release(struct hook_call *);
void	hook_dkim_msg_methods(lua_State *);
/* lua_dmarc.c: a freed call lets its check go (its query cannot be
 * recalled: the answer finds the call finished). */
void	hook_dmarc_release(struct hook_call *);

#endif
