/*
 * qmgr_remote: remote delivery jobs. One job is one SMTP transaction
 * (remote.c) for recipients of one message that share a destination (a
 * relay, or a domain's MX) and a login; the scheduler counts the jobs per
 * destination and in all, and learns from each job's verdict whether
 * the destination is down (dest.c).
 */
#include <stdlib.h>

#include "../lib/xalloc.h"
#include "../mail/address.h"
#include "qmgr_int.h"

struct rjob {
	struct qmgr	*q;
	struct qmsg	*m;
	struct runtime	*rt;
	size_t		*idx;
	struct remote_req req;
	char		*key;
};

/* The first recipient's failure: what the destination answered. */
static const char *
failure_text(const struct remote_req *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->results[i].cls != RESULT_OK)
			return buf_cstr(&r->results[i].text);
	return "";
}

static void
on_remote_done(void *arg, struct remote_req *r)
{
	struct rjob *j = arg;
	struct qmgr *q = j->q;
	struct qmsg *m = j->m;

	scheduler_remote_ended(q->sched, j->key, r->route, r->verdict,
	    failure_text(r));
	j->m->busy--;
	qmgr_outcome(q, j->m, j->idx, r->results, r->n,
	    r->mta[0] ? r->mta : NULL, r->route,
	    r->route ? MM_RELAY : MM_REMOTE);
	scheduler_follow_dest(q, j->m, j->key);
	for (size_t i = 0; i < r->n; i++)
		buf_free(&r->results[i].text);
	free(r->results);
	free(r->rcpts);
	free(j->idx);
	free(j->key);
	runtime_unref(j->rt);
	free(j);
	scheduler_changed(q, m);
}

/* Sends recipients idx[] (taken) of m to destination key by route rc. */
void
qmgr_remote_start(struct qmgr *q, struct qmsg *m, const struct route_conf *rc,
    const char *key, size_t *idx, size_t n)
{
	struct rjob *j = xcalloc(1, sizeof(*j));
	struct remote_req *r = &j->req;

	j->q = q;
	j->m = m;
	j->rt = q->rt;
	runtime_ref(q->rt);
	j->idx = idx;
	j->key = xstrdup(key);
	r->domain = address_domain(m->item.env.rcpts[idx[0]]);
	r->route = rc;
	r->msg = &m->item;
	r->n = n;
	r->rcpts = xcalloc(n, sizeof(char *));
	r->results = xcalloc(n, sizeof(*r->results));
	for (size_t i = 0; i < n; i++) {
		r->rcpts[i] = m->item.env.rcpts[idx[i]];
		m->st[idx[i]] = RS_BUSY;
	}
	m->busy++;
	scheduler_remote_started(q->sched, key);
	remote_deliver(q->remote, r, on_remote_done, j);
}
