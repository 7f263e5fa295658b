/*
 * qmgr_int: what the queue manager's files share, and nothing else sees.
 * Each job owns its state: the message table (qmgr_table.c), the
 * scheduler's counters and destination counts (scheduler.c), the control
 * socket (qmgr_control.c). What is truly shared (loop, runtime and config,
 * queue set, directory, DNS, remote context, pool jobs in flight) is one
 * `struct qmgr`, made by qmgr_new() and passed by pointer: every job keeps
 * the pointer it was started with, so a callback needs no global to find
 * it. Everything runs on the loop thread, except where a comment says
 * "on the pool" (it then only reads the message and the queue set).
 */
#ifndef INDIMAIL_QMGR_INT_H
#define INDIMAIL_QMGR_INT_H

#include <stdint.h>
#include <uv.h>

#include "../lib/buf.h"
#include "../lib/log.h"
#include "../lua/lua_hook.h"
#include "../lua/lua_runtime.h"
#include "../mail/mail_metrics.h"
#include "../queue/queue.h"
#include "dest.h"
#include "local.h"
#include "qmgr.h"
#include "remote.h"

enum rstate { RS_PENDING, RS_BUSY, RS_DONE };

/* Where one recipient goes. ROUTE_DEFAULT: local domains locally (marked
 * so in the envelope, or in the current local_domains), routes table, else
 * MX — decided at scheduling time (qmgr_route_is_local). */
struct qroute {
	int		 decided;	/* route hook ran (or there is none) */
	int		 running;	/* route hook in flight */
	enum route_kind	 kind;
	struct route_conf relay;	/* kind == ROUTE_RELAY: owned strings */
};

struct qmsg {
	struct qmsg	*next, *prev, *hnext;
	struct queue_item item;		/* envelope and where it lies */
	unsigned char	*st;		/* enum rstate per recipient */
	struct buf	*why;		/* last temporary failure per recipient */
	char	       **mta;		/* host that gave it, or NULL */
	struct qroute	*route;		/* per recipient, from the route hook */
	int		 attempts;
	uint64_t	 next_try;	/* uv_now() milliseconds */
	int		 busy;		/* jobs and journal writes in flight */
	int		 hold;
	int		 retired;	/* moved to done/: only its removal is left */
	uint64_t	 removed_at;	/* tombstone: removed at this uv_now() */
	long long	 retry_at;	/* from the journal: Unix time of next try */
};

struct qmgr_table;
struct scheduler;
struct qmgr_control;

struct qmgr {
	uv_loop_t	*loop;
	struct runtime	*rt;
	struct config	*cfg;		/* &rt->cfg */
	struct directory *dir;		/* of cfg */
	struct queue_set qs;
	struct dns	*dns;
	struct remote_ctx *remote;
	int		 io_pending;	/* pool jobs: loads, flushes, removals, bounces */
	struct qmgr_table *table;
	struct scheduler *sched;
	struct dest_table *dests;	/* per destination: jobs and state */
	struct qmgr_control *control;
	void		(*dir_changed)(void *);
	void		*dir_changed_arg;
};

/* qmgr_table.c: messages by id, the live list, tombstones. */
struct qmgr_table *qmgr_table_new(void);
struct qmsg *qmgr_table_find(struct qmgr_table *, const char *id);
void	qmgr_table_add(struct qmgr_table *, struct qmsg *);
struct qmsg *qmgr_table_first(struct qmgr_table *);
/* Sets indimail_queue_messages from the table (queue manager's tick). */
void	qmgr_table_gauges(const struct qmgr_table *, int nqueues);
size_t	qmgr_table_count(const struct qmgr_table *);
void	qmgr_table_tombstone(struct qmgr_table *, struct qmsg *, uint64_t now);
void	qmgr_table_sweep(struct qmgr_table *, uint64_t now);
void	qmsg_free(struct qmsg *);
void	qmsg_log(struct logline *, enum log_level, const char *event,
	    const struct qmsg *);

/* qmgr_load.c: messages from the queue into the table (on the pool). */
void	qmgr_load_all(struct qmgr *);
void	qmgr_load_one(struct qmgr *, int queue, const char *id);

/* qmgr_outcome.c: results, retries, the journal, removal. */
void	qmgr_outcome(struct qmgr *, struct qmsg *, const size_t *idx,
	    struct rcpt_result *, size_t n, const char *mta,
	    const struct route_conf *, enum mm_class);
void	qmgr_journal(struct qmgr *, struct qmsg *, char kind,
	    const size_t *idx, size_t n);
void	qmgr_journal_text(struct qmgr *, struct qmsg *, struct buf *text,
	    int flush);
void	qmgr_maybe_done(struct qmgr *, struct qmsg *);

/* qmgr_bounce.c: DSNs for permanent failures (takes idx and text). */
void	qmgr_bounce(struct qmgr *, struct qmsg *, size_t *idx, char **text,
	    size_t n);

/* qmgr_local.c, qmgr_remote.c: delivery jobs (take idx). */
void	qmgr_local_start(struct qmgr *, struct qmsg *, size_t *idx, size_t n);
void	qmgr_remote_start(struct qmgr *, struct qmsg *,
	    const struct route_conf *, const char *key, size_t *idx, size_t n);

/* qmgr_route.c: the route hook and where a recipient goes. */
void	qmgr_route_rcpt(struct qmgr *, struct qmsg *, size_t i);
void	qmgr_route_forget(struct qmsg *, size_t i);
int	qmgr_route_is_local(const struct qmgr *, const struct qmsg *, size_t i);
const char *qmgr_route_dest_key(const struct qmgr *, const struct qmsg *,
	    size_t i, const struct route_conf **, struct buf *key);

/* scheduler.c: which recipients start now, and how many run. */
struct scheduler *scheduler_new(struct qmgr *);
void	scheduler_soon(struct qmgr *);
void	scheduler_tick(struct qmgr *);
void	scheduler_drain(struct scheduler *);
void	scheduler_running(const struct scheduler *, int *local, int *remote);
void	scheduler_local_started(struct scheduler *);
void	scheduler_local_ended(struct scheduler *);
void	scheduler_remote_started(struct scheduler *, const char *key);
void	scheduler_remote_ended(struct scheduler *, const char *key,
	    const struct route_conf *, enum remote_verdict, const char *reason);
/* Recipient i's destination is down: its reason (a reply); else NULL. */
const char *scheduler_held_why(const struct qmgr *, const struct qmsg *,
	    size_t i);
/* After a job of m to key: a destination down sets m's next try. */
void	scheduler_follow_dest(struct qmgr *, struct qmsg *, const char *key);
/* `queue flush`: the destinations m waits for are probed now if down. */
void	scheduler_probe_now(struct qmgr *, struct qmsg *);

/* qmgr_control.c: `indimail queue ...`; uid: the client's, -1 unknown. */
void	qmgr_control_open(struct qmgr *);
void	qmgr_command(struct qmgr *, const char *line, long uid,
	    struct buf *out);
/*
 * qmgr_admin.c: cmd (hold, release, remove, flush, requeue) on the
 * selection args, logged; 0 if cmd is none of them.
 */
int	qmgr_admin(struct qmgr *, const char *cmd, const char *args, long uid,
	    struct buf *out);

#endif
