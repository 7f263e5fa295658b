/*
 * qmgr_dests: what the destination table (dest.c) holds, shown. The
 * control command `destinations` (`indimail queue destinations`) answers
 * one line per destination the queue manager knows, most messages waiting
 * first, then "ok N"; each line is
 *   KEY STATE WINDOW PER_DOMAIN RUNNING ACTIVE PARKED FAILURES SINCE UNTIL[ REASON]
 * ACTIVE: messages of the active set with a recipient waiting for it
 * (counted by a walk of the set, bounded by delivery.active_limit);
 * PARKED: those outside it parked on it (qmgr_wait.c). SINCE and UNTIL
 * are Unix times, 0 when it is up (UNTIL 0 also while its probe runs);
 * REASON, the reply that marked it down, ends the line. Keys and reasons
 * come from peers: any byte outside printable ASCII (and a space in a
 * key) is '?', so a line splits cleanly and its JSON is plain ASCII.
 * And the indimail_destinations gauge, by state, set every second.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/xalloc.h"
#include "qmgr_int.h"

struct dest_list {
	struct dest	**v;
	size_t		 n, cap;
	int		 down_only;	/* "destinations down": not up only */
};

static void
unlisted(struct dest *d, void *arg)
{
	(void)arg;
	d->listed = 0;
	d->listed_by = NULL;
}

/* Counts m once for each destination one of its recipients waits for. */
static void
count_message(struct qmgr *q, struct qmsg *m, struct buf *key)
{
	const struct route_conf *rc;
	struct dest *d;

	for (size_t i = 0; i < m->item.env.nrcpts; i++) {
		if (m->st[i] != RS_PENDING || qmgr_route_is_local(q, m, i))
			continue;
		d = dest_find(q->dests, qmgr_route_dest_key(q, m, i, &rc, key));
		if (d && d->listed_by != m) {
			d->listed_by = m;
			d->listed++;
		}
	}
}

static void
count_active(struct qmgr *q)
{
	struct buf key = BUF_INIT;

	dest_each(q->dests, unlisted, NULL);
	for (struct qmsg *m = qmgr_table_first(q->table); m; m = m->next)
		if (!m->retired)
			count_message(q, m, &key);
	buf_free(&key);
}

static void
collect(struct dest *d, void *arg)
{
	struct dest_list *l = arg;

	if (l->down_only && d->state == DEST_UP)
		return;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = d;
}

/* Most messages waiting first, then by key. */
static int
by_waiting(const void *a, const void *b)
{
	const struct dest *x = *(struct dest *const *)a;
	const struct dest *y = *(struct dest *const *)b;
	size_t wx = x->listed + x->nparked, wy = y->listed + y->nparked;

	if (wx != wy)
		return wx > wy ? -1 : 1;
	return strcmp(x->key, y->key);
}

/* s with every byte outside printable ASCII, and space if !spaces, '?'. */
static void
append_clean(struct buf *out, const char *s, int spaces)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		buf_appendc(out, c > ' ' && c < 0x7f ? (char)c :
		    c == ' ' && spaces ? ' ' : '?');
	}
}

/* A uv_now() time as Unix time. */
static long long
unix_time(uint64_t at, uint64_t now)
{
	return (long long)time(NULL) + ((long long)at - (long long)now) / 1000;
}

static void
describe_dest(const struct qmgr *q, const struct dest *d, struct buf *out)
{
	const struct delivery_conf *dc = &q->cfg->delivery;
	struct dest_conf c = { dc->conc_initial, dc->conc_domain, dc->dead };
	uint64_t now = uv_now(q->loop);
	int up = d->state == DEST_UP;

	append_clean(out, d->key, 0);
	buf_printf(out, " %s %d %d %d %zu %zu %d %lld %lld",
	    dest_state_name(d), dest_window(d, &c), c.max, d->running,
	    d->listed, d->nparked, d->failures,
	    up ? 0LL : unix_time(d->since, now),
	    d->state == DEST_DOWN ? unix_time(d->until, now) : 0LL);
	if (!up && d->why) {
		buf_appendc(out, ' ');
		append_clean(out, d->why, 1);
	}
	buf_appendc(out, '\n');
}

void
qmgr_dests_command(struct qmgr *q, int down_only, struct buf *out)
{
	struct dest_list l = { NULL, 0, 0, down_only };

	count_active(q);
	dest_each(q->dests, collect, &l);
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), by_waiting);
	for (size_t i = 0; i < l.n; i++)
		describe_dest(q, l.v[i], out);
	buf_printf(out, "ok %zu\n", l.n);
	free(l.v);
}

static void
count_state(struct dest *d, void *arg)
{
	long *n = arg;

	switch (d->state) {
	case DEST_UP:
		n[d->mail_deferred ? MM_DEST_SUSPECT : MM_DEST_UP]++;
		break;
	case DEST_DOWN:
		n[MM_DEST_DOWN]++;
		break;
	case DEST_PROBING:
		n[MM_DEST_PROBING]++;
		break;
	}
}

void
qmgr_dests_gauges(struct qmgr *q)
{
	long n[MM_DEST_NSTATES] = { 0 };

	dest_each(q->dests, count_state, n);
	for (int st = 0; st < MM_DEST_NSTATES; st++)
		metric_set(mail_metrics_destinations((enum mm_dest_state)st),
		    n[st]);
}
