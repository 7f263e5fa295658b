/*
 * qmgr: the queue manager's shared context (struct qmgr, qmgr_int.h) and
 * what qmgrd calls. State per message lives in memory (rebuilt at start
 * from the queue and each message's state journal) and on disk in the
 * journal the queue keeps for it (src/queue/queue_journal.c): final
 * outcomes, held / released, and the retry schedule. Only the decisions
 * are made in src/deliver; the files qmgr_*.c and scheduler.c each own one
 * job.
 */
#include "../directory/directory.h"
#include "../lib/diag.h"
#include "../lib/xalloc.h"
#include "../net/dns.h"
#include "qmgr_int.h"

struct qmgr *
qmgr_new(uv_loop_t *loop, struct runtime *rt)
{
	struct qmgr *q = xcalloc(1, sizeof(*q));
	struct buf err = BUF_INIT;

	q->loop = loop;
	q->rt = rt;
	q->cfg = &rt->cfg;
	q->dir = directory_get(q->loop, q->cfg);
	if (queue_set_init(&q->qs, q->cfg->queue_path, q->cfg->queue_count,
	    q->cfg->queue_split, &err) < 0)
		fatal("queue: %s", buf_cstr(&err));
	/* the wal backend's messages are files by the time the queue manager
	 * hears of them (queue_fs reads them); the segment backend's stay
	 * records in their segments */
	if (q->cfg->queue_backend == QUEUE_BACKEND_SEGMENT)
		q->qs.backend = &queue_segment;
	if ((q->dns = dns_new(q->loop, q->cfg->dns_servers,
	    q->cfg->dns_timeout_ms, &err)) == NULL)
		fatal("dns: %s", buf_cstr(&err));
	q->remote = remote_ctx_new(q->loop, q->dns, q->cfg);
	hook_set_env(q->loop, q->dns);
	q->table = qmgr_table_new();
	q->wait = qmgr_wait_new();
	q->index_fd = -1;
	q->index_compacting = 1;	/* until the start has rewritten it */
	q->dests = dest_table_new();
	q->sched = scheduler_new(q);
	return q;
}

void
qmgr_start(struct qmgr *q)
{
	qmgr_control_open(q);
	log_event(LOG_INFO, "qmgr_start", "queues=%d", q->qs.count);
	qmgr_load_all(q);
}

void
qmgr_tick(struct qmgr *q)
{
	qmgr_compact_tick(q);
	scheduler_tick(q);
	qmgr_table_gauges(q->table, q->wait, q->qs.count);
	qmgr_dests_gauges(q);
}

void
qmgr_reload(struct qmgr *q, struct runtime *rt)
{
	directory_put(q->dir);	/* lookups in flight keep it (and their job its config) */
	runtime_unref(q->rt);
	q->rt = rt;
	q->cfg = &rt->cfg;
	q->dir = directory_get(q->loop, q->cfg);
	remote_ctx_set_config(q->remote, q->cfg);
	log_event(LOG_INFO, "reloaded", NULL);
	scheduler_soon(q);
}

struct runtime *
qmgr_runtime(const struct qmgr *q)
{
	return q->rt;
}

void
qmgr_drain(struct qmgr *q)
{
	int local, remote;

	q->draining = 1;	/* nothing new: no compaction round either */
	scheduler_drain(q->sched);
	scheduler_running(q->sched, &local, &remote);
	log_event(LOG_INFO, "draining", "local=%d remote=%d io=%d",
	    local, remote, q->io_pending);
}

/*
 * Drained: no delivery runs and no journal flush, removal, bounce or load
 * is still on the thread pool (exiting earlier would drop them).
 */
int
qmgr_drained(const struct qmgr *q)
{
	int local, remote;

	scheduler_running(q->sched, &local, &remote);
	return local == 0 && remote == 0 && q->io_pending == 0;
}

void
qmgr_close(struct qmgr *q)
{
	remote_sweep(q->remote, 0);
}
