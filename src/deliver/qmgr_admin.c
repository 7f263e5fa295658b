/*
 * qmgr_admin: the control socket's commands that change the queue — hold,
 * release, remove, flush, requeue — on a selection (src/queue/
 * queue_select.h: ids, ALL, filters) resolved here against the table, so
 * ALL on a large queue is one request, and against the messages outside
 * the active set by reading them in batches (qmgr_disk.c): one selected
 * joins the active set to be acted on. Each acts through the queue
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
/* The same on m read from disk, outside the active set (entry e). */
typedef int (*entry_fn)(struct qmgr *, struct qmsg *, struct qwait *);

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

/* ---- on messages outside the active set: their entry changes ------------ */

/* Held or released by its journal (appended; no flush: see docs/queue.md). */
static int
entry_set_hold(struct qmgr *q, struct qmsg *m, struct qwait *e, int hold)
{
	struct buf j = BUF_INIT;
	unsigned flags = (hold ? e->flags | QW_HELD : e->flags & ~QW_HELD) &
	    ~QW_JOURNAL;	/* its due time is ours now */

	if (m->hold != hold) {
		queue_journal_hold(&j, hold);
		if (q->qs.backend->journal_append(&m->item, &j) < 0)
			log_event(LOG_ERROR, "journal_failed", "qid=%s path=%s",
			    e->id, m->item.journal);
		buf_free(&j);
	}
	if (!hold && e->parked)	/* tried at once, as before it was held */
		dest_probe_now(e->parked, uv_now(q->loop));
	qmgr_wait_set(q->wait, e, hold ? e->due : uv_now(q->loop), flags);
	return 1;
}

static int
entry_hold(struct qmgr *q, struct qmsg *m, struct qwait *e)
{
	return entry_set_hold(q, m, e, 1);
}

static int
entry_release(struct qmgr *q, struct qmsg *m, struct qwait *e)
{
	return entry_set_hold(q, m, e, 0);
}

/* flush and requeue: due now (the route hook runs when it is loaded). */
static int
entry_due_now(struct qmgr *q, struct qmsg *m, struct qwait *e)
{
	if (m->hold)
		return 0;
	if (e->parked)
		dest_probe_now(e->parked, uv_now(q->loop));
	qmgr_wait_set(q->wait, e, uv_now(q->loop), e->flags & ~QW_JOURNAL);
	return 1;
}

static const struct action {
	const char	*name;
	action_fn	 fn;
	entry_fn	 entry;		/* NULL: the message joins the table */
	int		 all_by_default;	/* no selection: every message */
} actions[] = {
	{ "hold", act_hold, entry_hold, 0 },
	{ "release", act_release, entry_release, 0 },
	{ "remove", act_remove, NULL, 0 },
	{ "flush", act_flush, entry_due_now, 1 },
	{ "requeue", act_requeue, entry_due_now, 0 },
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

/* One admin request while it reads messages from disk. */
struct admin_run {
	const struct action *a;
	struct queue_select s;		/* owned */
	struct problems	 p;
	struct buf	 ids;		/* those done, for the log */
	size_t		 done;
	long		 uid;
	qmgr_reply_fn	 reply;
	void		*arg;
	char		(*disk)[QUEUE_ID_LEN + 1];	/* ids outside the table */
	size_t		 ndisk;
};

/*
 * The messages of the table s names, in an array (the table may change
 * under a walk); ids known only outside it go to r->disk.
 */
static struct qmsg **
resolve(struct qmgr *q, struct admin_run *r, size_t *n)
{
	const struct queue_select *s = &r->s;
	struct qmsg **v, *m;

	*n = 0;
	if (s->nids && !s->all) {
		v = xcalloc(s->nids, sizeof(*v));
		r->disk = xcalloc(s->nids, sizeof(*r->disk));
		for (size_t i = 0; i < s->nids; i++) {
			m = qmgr_table_find(q->table, s->ids[i]);
			if (m && m->removed_at == 0) {
				if (selected(s, m) && !listed(v, *n, m))
					v[(*n)++] = m;
			} else if (qmgr_wait_find(q->wait, s->ids[i]))
				memcpy(r->disk[r->ndisk++], s->ids[i],
				    QUEUE_ID_LEN + 1);
			else
				problem(&r->p, s->ids[i],
				    "no message in the queue:");
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
count_done(struct admin_run *r, int rc, const char *id)
{
	if (rc <= 0)
		return;
	if (r->done++ < LOG_IDS_MAX)
		buf_printf(&r->ids, "%s%s", r->ids.len ? "," : "", id);
}

static void
act(struct qmgr *q, struct admin_run *r, struct qmsg *m)
{
	count_done(r, r->a->fn(q, m, &r->p), m->item.env.id);
}

/*
 * A message read from disk, if selected: its entry changes, or (remove)
 * it joins the active set to go through the usual removal.
 */
static void
act_disk(struct qmgr *q, struct qmsg *m, struct qwait *e, void *arg)
{
	struct admin_run *r = arg;

	if (e == NULL) {	/* the table's, loaded meanwhile */
		if (selected(&r->s, m))
			act(q, r, m);
	} else if (!selected(&r->s, m))
		qmsg_free(m);
	else if (r->a->entry) {
		count_done(r, r->a->entry(q, m, e), m->item.env.id);
		qmsg_free(m);
	} else {
		qmgr_disk_adopt(q, m, e);
		act(q, r, m);
	}
}

static void
run_end(struct qmgr *q, void *arg)
{
	struct admin_run *r = arg;
	struct buf out = BUF_INIT;

	scheduler_soon(q);
	log_admin(r->a->name, &r->s, &r->ids, r->done, r->p.n, r->uid);
	answer(&out, r->done, &r->p);
	r->reply(r->arg, &out);
	queue_select_free(&r->s);
	buf_free(&r->ids);
	buf_free(&r->p.text);
	free(r->disk);
	free(r);
}

/* The table's messages now, then those outside it as they are read. */
static void
run(struct qmgr *q, struct admin_run *r)
{
	size_t n;
	struct qmsg **v = resolve(q, r, &n);

	for (size_t i = 0; i < n; i++)
		act(q, r, v[i]);
	free(v);
	if (r->s.nids && !r->s.all)
		qmgr_disk_walk(q, (const char (*)[QUEUE_ID_LEN + 1])r->disk,
		    r->ndisk, act_disk, run_end, r);
	else
		qmgr_disk_walk(q, NULL, 0, act_disk, run_end, r);
}

int
qmgr_admin(struct qmgr *q, const char *cmd, const char *args, long uid,
    qmgr_reply_fn reply, void *arg)
{
	const struct action *a = NULL;
	struct admin_run *r;
	struct buf err = BUF_INIT, out = BUF_INIT;

	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strcmp(cmd, actions[i].name) == 0)
			a = &actions[i];
	if (a == NULL)
		return 0;
	r = xcalloc(1, sizeof(*r));
	if (queue_select_parse(args, &r->s, &err) < 0)
		buf_printf(&out, "error %s\n", buf_cstr(&err));
	else if (queue_select_none(&r->s) && !a->all_by_default)
		buf_printf(&out, "error %s which messages? queue ids, ALL, or "
		    "from=, to=, domain=, older=\n", cmd);
	else {
		if (queue_select_none(&r->s))
			r->s.all = 1;
		r->a = a;
		r->uid = uid;
		r->reply = reply;
		r->arg = arg;
		run(q, r);
		buf_free(&err);
		return 1;
	}
	reply(arg, &out);
	queue_select_free(&r->s);
	free(r);
	buf_free(&err);
	return 1;
}
