/*
 * qmgr_admin: the control socket's commands that change the queue — hold,
 * release, remove, flush, requeue — on a selection (src/queue/
 * queue_select.h: ids, ALL, filters) resolved here against the table, so
 * ALL on a large queue is one request. Each acts through the queue
 * manager's own paths (the journal, the scheduler, the route table) and
 * logs one line: event=admin action= selection= count= failed= ids= by=uid.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/xalloc.h"
#include "../queue/queue_select.h"
#include "qmgr_int.h"

#define LOG_IDS_MAX	100	/* ids named in the log line; the rest counted */

struct problems {
	struct buf	 text;		/* one line each */
	size_t		 n;
};

/* 1: done, 0: nothing to do for it, -1: a problem was noted. */
typedef int (*action_fn)(struct qmgr *, struct qmsg *, struct problems *);

static void
problem(struct problems *p, const char *id, const char *why)
{
	buf_printf(&p->text, "%s %s\n", why, id);
	p->n++;
}

static int
set_hold(struct qmgr *q, struct qmsg *m, int hold)
{
	struct buf j = BUF_INIT;

	if (m->hold == hold)
		return 1;
	m->hold = hold;
	m->next_try = 0;
	if (!hold)	/* tried at once, as before it was held */
		scheduler_probe_now(q, m);
	queue_journal_hold(&j, hold);
	qmgr_journal_text(q, m, &j, 1);
	return 1;
}

static int
act_hold(struct qmgr *q, struct qmsg *m, struct problems *p)
{
	(void)p;
	return set_hold(q, m, 1);
}

static int
act_release(struct qmgr *q, struct qmsg *m, struct problems *p)
{
	(void)p;
	return set_hold(q, m, 0);
}

static int
act_flush(struct qmgr *q, struct qmsg *m, struct problems *p)
{
	(void)p;
	if (m->hold)
		return 0;
	m->next_try = 0;
	scheduler_probe_now(q, m);	/* a destination down: its probe now */
	return 1;
}

/* Every pending recipient final ('x'), unless a delivery runs. */
static int
act_remove(struct qmgr *q, struct qmsg *m, struct problems *p)
{
	size_t *idx = xcalloc(m->item.env.nrcpts, sizeof(size_t)), k = 0;
	int rc = 1;

	for (size_t i = 0; i < m->item.env.nrcpts; i++)
		if (m->st[i] == RS_PENDING)
			idx[k++] = i;
	if (k < m->item.env.nrcpts && m->busy) {
		problem(p, m->item.env.id, "being delivered, try again:");
		rc = -1;
	} else {
		for (size_t i = 0; i < k; i++)
			m->st[idx[i]] = RS_DONE;
		qmgr_journal(q, m, 'x', idx, k);
		qmgr_maybe_done(q, m);
	}
	free(idx);
	return rc;
}

/* The route hook runs again for every pending recipient, soon. */
static int
act_requeue(struct qmgr *q, struct qmsg *m, struct problems *p)
{
	(void)q;
	(void)p;
	for (size_t i = 0; i < m->item.env.nrcpts; i++)
		if (m->st[i] == RS_PENDING && !m->route[i].running)
			qmgr_route_forget(m, i);
	if (!m->hold)
		m->next_try = 0;
	return 1;
}

static const struct action {
	const char	*name;
	action_fn	 fn;
	int		 all_by_default;	/* no selection: every message */
} actions[] = {
	{ "hold", act_hold, 0 },
	{ "release", act_release, 0 },
	{ "remove", act_remove, 0 },
	{ "flush", act_flush, 1 },
	{ "requeue", act_requeue, 0 },
};

static int
selected(const struct queue_select *s, struct qmsg *m)
{
	return queue_select_match(s, &m->item.env, m->st, RS_DONE,
	    (long long)time(NULL) - m->item.env.received);
}

static int
listed(struct qmsg **v, size_t n, const struct qmsg *m)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == m)
			return 1;
	return 0;
}

/* The messages s names, in an array (the table may change under a walk). */
static struct qmsg **
resolve(struct qmgr *q, const struct queue_select *s, size_t *n,
    struct problems *p)
{
	struct qmsg **v, *m;

	*n = 0;
	if (s->nids && !s->all) {
		v = xcalloc(s->nids, sizeof(*v));
		for (size_t i = 0; i < s->nids; i++) {
			m = qmgr_table_find(q->table, s->ids[i]);
			if (m == NULL || m->removed_at)
				problem(p, s->ids[i], "no message in the queue:");
			else if (selected(s, m) && !listed(v, *n, m))
				v[(*n)++] = m;
		}
		return v;
	}
	v = xcalloc(qmgr_table_count(q->table) + 1, sizeof(*v));
	for (m = qmgr_table_first(q->table); m; m = m->next)
		if (selected(s, m))
			v[(*n)++] = m;
	return v;
}

static void
log_admin(const char *action, const struct queue_select *s,
    const struct buf *ids, size_t done, size_t failed, long uid)
{
	struct buf sel = BUF_INIT;
	struct logline l;

	queue_select_filters(s, &sel);
	if (s->nids && !s->all)
		buf_printf(&sel, " ids=%zu", s->nids);
	log_begin(&l, LOG_INFO, "admin");
	log_kv(&l, "action", action);
	log_kv(&l, "selection", sel.len ? buf_cstr(&sel) + 1 : "");
	log_kvi(&l, "count", (long long)done);
	log_kvi(&l, "failed", (long long)failed);
	log_kvn(&l, "ids", ids->data ? ids->data : "", ids->len);
	if (done > LOG_IDS_MAX)
		log_kvi(&l, "ids_more", (long long)(done - LOG_IDS_MAX));
	log_kvi(&l, "by", uid);
	log_end(&l);
	buf_free(&sel);
}

/* "ok N"; "error WHY" for one failure alone; else the failures, then "error N done, K failed". */
static void
answer(struct buf *out, size_t done, struct problems *p)
{
	if (p->n == 0)
		buf_printf(out, "ok %zu\n", done);
	else if (p->n == 1 && done == 0)
		buf_printf(out, "error %s", buf_cstr(&p->text));
	else
		buf_printf(out, "%serror %zu done, %zu failed\n",
		    buf_cstr(&p->text), done, p->n);
}

static void
run(struct qmgr *q, const struct action *a, const struct queue_select *s,
    long uid, struct buf *out)
{
	struct problems p = { BUF_INIT, 0 };
	struct buf ids = BUF_INIT;
	size_t n, done = 0;
	struct qmsg **v = resolve(q, s, &n, &p);

	for (size_t i = 0; i < n; i++) {
		if (a->fn(q, v[i], &p) <= 0)
			continue;
		if (done++ < LOG_IDS_MAX)
			buf_printf(&ids, "%s%s", ids.len ? "," : "",
			    v[i]->item.env.id);
	}
	scheduler_soon(q);
	log_admin(a->name, s, &ids, done, p.n, uid);
	answer(out, done, &p);
	free(v);
	buf_free(&ids);
	buf_free(&p.text);
}

int
qmgr_admin(struct qmgr *q, const char *cmd, const char *args, long uid,
    struct buf *out)
{
	const struct action *a = NULL;
	struct queue_select s;
	struct buf err = BUF_INIT;

	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strcmp(cmd, actions[i].name) == 0)
			a = &actions[i];
	if (a == NULL)
		return 0;
	if (queue_select_parse(args, &s, &err) < 0)
		buf_printf(out, "error %s\n", buf_cstr(&err));
	else if (queue_select_none(&s) && !a->all_by_default)
		buf_printf(out, "error %s which messages? queue ids, ALL, or "
		    "from=, to=, domain=, older=\n", cmd);
	else {
		if (queue_select_none(&s))
			s.all = 1;
		run(q, a, &s, uid, out);
	}
	queue_select_free(&s);
	buf_free(&err);
	return 1;
}
