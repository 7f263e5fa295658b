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

#include "../lib/batch.h"
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

/* The scheduler's ready lists (qmgr_table_ready): a recipient ready for a
 * local job, or for a remote one. */
enum { QREADY_LOCAL, QREADY_REMOTE, QREADY_KINDS };

struct qmsg {
	struct qmsg	*next, *prev, *hnext;
	struct qmsg	*rnext[QREADY_KINDS], *rprev[QREADY_KINDS];
	unsigned char	 listed[QREADY_KINDS];	/* on that ready list */
	struct queue_item item;		/* envelope and where it lies */
	unsigned char	*st;		/* enum rstate per recipient */
	struct buf	*why;		/* last temporary failure per recipient */
	char	       **mta;		/* host that gave it, or NULL */
	struct qroute	*route;		/* per recipient, from the route hook */
	int		 attempts;
	uint64_t	 next_try;	/* uv_now() milliseconds */
	int		 busy;		/* jobs and journal writes in flight */
	int		 hold;
	int		 retired;	/* only its removal is left (in done/, or settled) */
	int		 settled;	/* retired in mess/: delivered by a local job */
	uint64_t	 removed_at;	/* tombstone: removed at this uv_now() */
	long long	 retry_at;	/* from the journal: Unix time of next try */
};

/* A message outside the active set (qmgr_wait.c): about 80 bytes. */
enum {
	QW_HELD = 1, QW_DEFERRED = 2, QW_LOADING = 4,
	QW_JOURNAL = 8,		/* due: unknown until its journal is read */
	QW_MOVING = 16,		/* out of its segment into a file (qmgr_compact.c) */
};
struct qwait {
	struct qwait	*hnext;		/* id hash chain */
	struct qwait	*pnext, *pprev;	/* parked: its destination's list */
	struct dest	*parked;	/* that destination, or NULL */
	uint64_t	 due;		/* uv_now() milliseconds */
	long long	 received;	/* Unix time, 0: not read yet */
	uint32_t	 heap;		/* slot in the due heap */
	uint8_t		 queue;
	uint8_t		 flags;		/* QW_* */
	char		 id[QUEUE_ID_LEN + 1];
};

struct qmgr_table;
struct qmgr_wait;
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
	struct batcher	 removals;	/* messages removed (qmgr_outcome.c) */
	struct qmgr_table *table;	/* the active set */
	struct qmgr_wait *wait;		/* the other messages, compact */
	int		 loading;	/* entries being loaded into the table */
	int		 index_fd;	/* the retry index, -1 until appended */
	size_t		 index_lines;	/* in it, about */
	int		 index_compacting;	/* its rewrite is on the pool */
	int		 sweeping;	/* the segment sweep or its compaction runs */
	int		 compacting;	/* messages moved out of their segments */
	int		 walks;		/* control commands' walks (qmgr_disk.c) */
	int		 draining;	/* qmgr_drain: finishing, starting nothing */
	unsigned	 ticks;		/* seconds, for the sweep */
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
void	qmgr_table_gauges(const struct qmgr_table *,
	    const struct qmgr_wait *, int nqueues);
size_t	qmgr_table_count(const struct qmgr_table *);
/* Out of the table, to be freed by the caller (evicted, not removed). */
void	qmgr_table_remove(struct qmgr_table *, struct qmsg *);
void	qmgr_table_tombstone(struct qmgr_table *, struct qmsg *, uint64_t now);
/* On (on 1) or off ready list `kind` (QREADY_*), in the order put on. */
void	qmgr_table_ready(struct qmgr_table *, struct qmsg *, int kind, int on);
struct qmsg *qmgr_table_ready_first(struct qmgr_table *, int kind);
void	qmgr_table_sweep(struct qmgr_table *, uint64_t now);
void	qmsg_free(struct qmsg *);
void	qmsg_log(struct logline *, enum log_level, const char *event,
	    const struct qmsg *);

/* qmgr_wait.c: the messages outside the active set (see its head). */
struct qmgr_wait *qmgr_wait_new(void);
struct qwait *qmgr_wait_find(const struct qmgr_wait *, const char *id);
size_t	qmgr_wait_count(const struct qmgr_wait *);
struct qwait *qmgr_wait_add(struct qmgr_wait *, int queue, const char *id,
	    uint64_t due, unsigned flags);
void	qmgr_wait_set(struct qmgr_wait *, struct qwait *, uint64_t due,
	    unsigned flags);
void	qmgr_wait_park(struct qmgr_wait *, struct qwait *, struct dest *);
/* Being moved (on 1): not loaded meanwhile; a parked entry stays parked. */
void	qmgr_wait_moving(struct qmgr_wait *, struct qwait *, int on);
void	qmgr_wait_wake_all(struct qmgr_wait *, struct dest *, uint64_t now);
void	qmgr_wait_wake_one(struct qmgr_wait *, struct dest *, uint64_t now);
/* Wakes d's parked messages received before `before` (Unix time). */
void	qmgr_wait_wake_old(struct qmgr_wait *, struct dest *, long long before,
	    uint64_t now);
struct qwait *qmgr_wait_due(const struct qmgr_wait *, uint64_t now);
void	qmgr_wait_del(struct qmgr_wait *, struct qwait *);
void	qmgr_wait_each(struct qmgr_wait *, void (*)(struct qwait *, void *),
	    void *);
void	qmgr_wait_counts(const struct qmgr_wait *,
	    long n[MAIL_METRICS_QUEUES_MAX][MM_QUEUE_NSTATES], int nqueues);

/* qmgr_index.c: the retry index (see its head). */
struct qmgr_index;
struct qmgr_index *qmgr_index_read(const struct queue_set *);
struct qmgr_index *qmgr_index_empty(void);
long long qmgr_index_find(const struct qmgr_index *, const char *id,
	    const char **key, long long *received);
size_t	qmgr_index_lines(const struct qmgr_index *);
size_t	qmgr_index_count(const struct qmgr_index *, size_t *parked);
void	qmgr_index_mark(const struct qmgr_index *, const char *id,
	    unsigned char *listed);
void	qmgr_index_compact(const struct queue_set *, struct qmgr_index *,
	    const unsigned char *listed);
void	qmgr_index_free(struct qmgr_index *);
void	qmgr_index_append(struct qmgr *, const char *id, long long at);
void	qmgr_index_dest(struct qmgr *, struct dest *);
void	qmgr_index_park(struct qmgr *, const struct qwait *, struct dest *);
void	qmgr_index_restore(struct qmgr *, struct qwait *, const char *key,
	    long long at, long long received);
void	qmgr_index_reopen(struct qmgr *);
void	qmgr_index_started(struct qmgr *, const struct qmgr_index *);

/* qmgr_load.c: messages from the queue into the table (on the pool). */
/* The message id of queue, read with its journal applied (blocks). */
struct qmsg *qmgr_read(struct qmgr *, int queue, const char *id);
/* The message of qi (which it takes), its journal applied (blocks). */
struct qmsg *qmsg_new(struct qmgr *, struct queue_item *qi);
/* A worker's notification "QUEUE ID": a new message, due now. */
void	qmgr_announced(struct qmgr *, const char *line);
/* A message queued here (a bounce): due now. */
void	qmgr_load_one(struct qmgr *, int queue, const char *id);
void	qmgr_load_all(struct qmgr *);
/* Loads due entries while the active set has room. */
void	qmgr_fill(struct qmgr *);
/* Is the active set short of room for messages that are due? */
int	qmgr_pressure(struct qmgr *);
/* m (idle) leaves the active set for a compact entry; parked on d if set. */
void	qmgr_evict(struct qmgr *, struct qmsg *, struct dest *d);
int	qmgr_evictable(const struct qmsg *);

/* qmgr_compact.c: the segment backend's sweep and compaction (each tick). */
void	qmgr_compact_tick(struct qmgr *);

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
/* m's recipients or due time changed (a job ended, a route was decided, it
 * was loaded): its place on the ready lists, then a short pass soon (only
 * the pass when m is NULL). */
void	scheduler_changed(struct qmgr *, struct qmsg *);
/* m (idle) leaves the active set, parked on the destination that alone
 * holds it back, if one does. */
void	scheduler_evict(struct qmgr *, struct qmsg *);
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

/* qmgr_disk.c: commands on messages outside the active set (its head). */
typedef void (*qmgr_disk_fn)(struct qmgr *, struct qmsg *, struct qwait *,
	    void *);
typedef void (*qmgr_disk_end_fn)(struct qmgr *, void *);
void	qmgr_disk_walk(struct qmgr *, const char (*ids)[QUEUE_ID_LEN + 1],
	    size_t nids, qmgr_disk_fn, qmgr_disk_end_fn, void *arg);
void	qmgr_disk_adopt(struct qmgr *, struct qmsg *, struct qwait *);

/* qmgr_unsettled.c: what a listing adds from the backend (its head). */
struct qmgr_unsettled;
typedef void (*qmgr_unsettled_fn)(struct qmgr *, struct qmgr_unsettled *,
	    void *);
void	qmgr_unsettled_read(struct qmgr *, const char *only,
	    qmgr_unsettled_fn done, void *arg);
void	qmgr_unsettled_shown(struct qmgr_unsettled *, const char *id);
void	qmgr_unsettled_rest(struct qmgr *, struct qmgr_unsettled *,
	    void (*fn)(struct qmgr *, struct qmsg *, void *), void *arg);

/* qmgr_dests.c: the destination table shown (its head), and its gauge. */
void	qmgr_dests_command(struct qmgr *, int down_only, struct buf *out);
void	qmgr_dests_gauges(struct qmgr *);

/*
 * qmgr_control.c: `indimail queue ...`; uid: the client's, -1 unknown.
 * The answer goes to reply(arg, out), now or once disk was read.
 */
typedef void (*qmgr_reply_fn)(void *arg, struct buf *out);
void	qmgr_control_open(struct qmgr *);
void	qmgr_command(struct qmgr *, const char *line, long uid,
	    qmgr_reply_fn reply, void *arg);
/*
 * qmgr_admin.c: cmd (hold, release, remove, flush, requeue) on the
 * selection args, logged and answered; 0 if cmd is none of them.
 */
int	qmgr_admin(struct qmgr *, const char *cmd, const char *args, long uid,
	    qmgr_reply_fn reply, void *arg);

#endif
