/*
 * qmgr_local: local delivery jobs. The directory says which recipients
 * have a mailbox (and their quota), then local.c writes the Maildir files
 * on the pool. Its durable hook, still on the pool, records the
 * deliveries the moment they are durable: it retires the message when
 * the job completes it, or appends "d" records to the journal.
 */
#include <stdlib.h>
#include <string.h>

#include "../directory/directory.h"
#include "../lib/xalloc.h"
#include "qmgr_int.h"

struct ljob {
	struct qmgr	*q;
	struct qmsg	*m;
	struct runtime	*rt;
	size_t		*idx;
	struct local_rcpt *r;
	size_t		 n;
	int		 completes;	/* the job's recipients are all that is left */
	int		 settled;	/* it completed the message: all delivered */
	const char	**addrs;	/* of r[], for the directory */
	struct dir_mailbox *mb;		/* its answers */
};

static void
on_local_done(void *arg, struct local_rcpt *r, size_t n)
{
	struct ljob *j = arg;
	struct qmgr *q = j->q;
	struct qmsg *m = j->m;
	struct rcpt_result *res = xcalloc(n, sizeof(*res));

	for (size_t i = 0; i < n; i++)
		res[i] = r[i].result;
	scheduler_local_ended(q->sched);
	j->m->busy--;
	if (j->settled)		/* qmgr_outcome's qmgr_maybe_done removes it */
		j->m->retired = j->m->settled = 1;
	qmgr_outcome(q, j->m, j->idx, res, n, NULL, NULL, MM_LOCAL);
	for (size_t i = 0; i < n; i++)
		buf_free(&res[i].text);
	free(res);
	free(j->r);
	free(j->idx);
	directory_mailboxes_free(j->mb, n);	/* r[].owner pointed there */
	free(j->mb);
	free(j->addrs);
	runtime_unref(j->rt);
	free(j);
	scheduler_changed(q, m);
}

/*
 * Local delivery's durable hook, on a pool thread, the moment the job's
 * Maildir files are durable (ok[] of its recipients). A job that completes
 * its message, every recipient delivered, records nothing: the message is
 * settled, and its removal (qmgr_maybe_done) is a pool job of its own once
 * the batch has ended. Removing it here held every job of the batch (and
 * so the next batch) behind one unlink per message, each freeing blocks:
 * 80 µs apiece on a file system mounted with `discard`, 40 % of the batch
 * (docs/delivery.md). Until the removal, a crash delivers it once more, as
 * it did between the flush and the unlink here. Otherwise "d i" records
 * go into the journal. The item and the index array do not change while
 * the job runs.
 */
static int
local_durable(void *arg, const size_t *ok, size_t nok)
{
	struct ljob *j = arg;
	const struct queue_backend *qb = j->q->qs.backend;
	struct buf b = BUF_INIT;
	int rc;

	if (nok == j->n && j->completes) {
		j->settled = 1;
		return 0;
	}
	for (size_t k = 0; k < nok; k++)
		queue_journal_final(&b, 'd', j->idx[ok[k]]);
	rc = b.len ? qb->journal_append(&j->m->item, &b) : 0;
	buf_free(&b);
	return rc;
}

/* Every recipient still open is in this job, and nothing else runs. */
static int
job_completes(const struct qmsg *m, size_t n)
{
	size_t open = 0;

	for (size_t i = 0; i < m->item.env.nrcpts; i++)
		open += m->st[i] != RS_DONE;
	return m->busy == 0 && open == n;
}

/* The directory told which recipients have a mailbox: deliver. */
static void
local_start(struct ljob *j)
{
	const struct config *c = &j->rt->cfg;	/* the job's, as the lookup */
	struct local_params p;

	for (size_t i = 0; i < j->n; i++) {
		j->r[i].mailbox = j->mb[i].status == DIR_TEMPFAIL ? -1 :
		    j->mb[i].has;
		j->r[i].disabled = j->mb[i].disabled;
		j->r[i].quota = j->mb[i].quota;
		j->r[i].owner = j->mb[i].owner;
	}
	memset(&p, 0, sizeof(p));
	p.root = c->delivery.maildir_root;
	p.hostname = c->hostname;
	p.msg = &j->m->item;
	p.max_hops = c->delivery.max_hops;
	p.durable = local_durable;
	p.durable_arg = j;
	local_deliver(j->q->loop, &p, j->r, j->n, on_local_done, j);
}

static void
on_local_looked_up(void *arg)
{
	local_start(arg);
}

/* Delivers recipients idx[] (taken) of m to their Maildirs. */
void
qmgr_local_start(struct qmgr *q, struct qmsg *m, size_t *idx, size_t n)
{
	struct ljob *j = xcalloc(1, sizeof(*j));

	j->q = q;
	j->m = m;
	j->rt = q->rt;
	runtime_ref(q->rt);
	j->idx = idx;
	j->n = n;
	j->r = xcalloc(n, sizeof(*j->r));
	j->completes = job_completes(m, n);
	j->addrs = xcalloc(n, sizeof(char *));
	j->mb = xcalloc(n, sizeof(*j->mb));
	for (size_t i = 0; i < n; i++) {
		j->r[i].address = j->addrs[i] = m->item.env.rcpts[idx[i]];
		m->st[idx[i]] = RS_BUSY;
	}
	m->busy++;
	scheduler_local_started(q->sched);
	if (directory_mailboxes(q->dir, j->addrs, n, j->mb, on_local_looked_up,
	    j, NULL) == DIR_DONE)
		local_start(j);
}
