/*
 * qmgr_bounce: permanent failures. A bounce (DSN) to the sender, a double
 * bounce to the postmaster if the message was itself a bounce, or a log
 * line only if it was a double bounce. The DSN is built on the pool from
 * the original header section, its recipient expanded through the
 * directory, and queued like any message; only once it is queued are the
 * failures journaled ('b'), so a crash repeats a bounce, never loses one.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../directory/directory.h"
#include "../lib/xalloc.h"
#include "../mail/header.h"
#include "bounce.h"
#include "qmgr_int.h"

struct bounce_job {
	uv_work_t	 w;
	struct qmgr	*q;
	struct qmsg	*m;
	size_t		*idx;		/* failed recipients */
	char	       **text;
	size_t		 n;
	int		 level;		/* of the bounce we create */
	char		 id[QUEUE_ID_LEN + 1];
	struct buf	 dsn;
	char		*rcpt;
	struct runtime	*rt;		/* keeps the expansion's config */
	struct expansion x;		/* rcpt through the aliases */
};

/* The original header section, at most 64 KiB (NULL if unreadable). */
static char *
read_headers(const struct qmsg *m, size_t *hlen)
{
	char *hdrs = NULL;
	int fd = open(m->item.path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		char *buf = xmalloc(65537);
		size_t max = m->item.shared && m->item.size < 65536 ?
		    m->item.size : 65536;
		ssize_t n = pread(fd, buf, max, (off_t)m->item.body_offset);
		if (n > 0) {
			buf[n] = '\0';
			header_end(buf, (size_t)n, 0, hlen);
			hdrs = buf;
		} else
			free(buf);
		close(fd);
	}
	return hdrs;
}

static void
do_bounce_build(uv_work_t *w)
{
	struct bounce_job *j = w->data;
	struct qmsg *m = j->m;
	struct bounce_rcpt *br = xcalloc(j->n, sizeof(*br));
	size_t hlen = 0;
	char *hdrs = read_headers(m, &hlen);

	for (size_t i = 0; i < j->n; i++) {
		br[i].rcpt = m->item.env.rcpts[j->idx[i]];
		br[i].orcpt = envelope_orcpt(&m->item.env, j->idx[i]);
		br[i].text = j->text[i];
		br[i].remote_mta = m->mta[j->idx[i]];
	}
	bounce_build(j->q->cfg->hostname, &m->item.env, j->level - 1, br, j->n,
	    hdrs ? hdrs : "", hlen, &j->dsn);
	free(hdrs);
	free(br);
}

static void
bounce_job_free(struct bounce_job *j)
{
	for (size_t i = 0; i < j->n; i++)
		free(j->text[i]);
	free(j->text);
	free(j->idx);
	buf_free(&j->dsn);
	free(j->rcpt);
	free(j);
}

static void
on_bounce_queued(void *arg, int ok, const char *error, double secs, int queue)
{
	struct bounce_job *j = arg;
	struct qmgr *q = j->q;
	struct qmsg *m = j->m;
	struct logline l;

	(void)secs;
	m->busy--;
	q->io_pending--;
	qmsg_log(&l, ok ? LOG_INFO : LOG_ERROR, ok ? "bounce_queued" :
	    "bounce_failed", m);
	log_kv(&l, "bounce_qid", j->id);
	log_kv(&l, "to", j->rcpt);
	log_kvi(&l, "level", j->level);
	if (!ok)
		log_kv(&l, "error", error);
	log_end(&l);
	if (!ok) {	/* try the whole thing again later */
		for (size_t i = 0; i < j->n; i++)
			m->st[j->idx[i]] = RS_PENDING;
		m->next_try = uv_now(q->loop) + 60000;
		bounce_job_free(j);
		return;
	}
	qmgr_journal(q, m, 'b', j->idx, j->n);
	qmgr_load_one(q, queue, j->id);
	bounce_job_free(j);
	qmgr_maybe_done(q, m);
}

/* The directory failed: the bounce is tried again later, like a failed write. */
static void
bounce_unexpanded(struct bounce_job *j)
{
	expansion_free(&j->x);
	runtime_unref(j->rt);
	j->rt = NULL;
	on_bounce_queued(j, 0, "directory lookup failed", 0, -1);
}

/*
 * Queues the DSN built on the pool, once its recipient is expanded (j->x):
 * from the null sender, to the sender (through its aliases) or the
 * postmaster, marked with its bounce level.
 */
static void
bounce_queue(struct bounce_job *j)
{
	struct envelope e;
	char *key = "INDIMAIL_BOUNCE", val[4];

	snprintf(val, sizeof(val), "%d", j->level);
	memset(&e, 0, sizeof(e));
	queue_new_id(j->id);
	if (j->x.status == DIR_TEMPFAIL) {	/* local or not: unknown yet */
		bounce_unexpanded(j);
		return;
	}
	snprintf(e.id, sizeof(e.id), "%s", j->id);
	e.received = time(NULL);
	e.ip = "127.0.0.1";
	e.helo = j->q->cfg->hostname;
	e.listener = "bounce";
	e.sender = "";
	/* A sender that is an alias gets its bounce through the alias. */
	if (j->x.status == DIR_OK) {
		e.rcpts = j->x.rcpt;
		e.orcpts = j->x.orcpt;
		e.local = j->x.local;	/* routed as the directory said */
		e.nrcpts = j->x.n;
	} else {
		e.rcpts = &j->rcpt;	/* a loop (refused at config load) */
		e.nrcpts = 1;
	}
	e.vars.key = &key;
	e.vars.val = (char *[]){ val };
	e.vars.n = 1;
	e.bounce_level = j->level;
	queue_write(j->q->loop, &j->q->qs, &e, &(struct msg_piece){ j->dsn.data,
	    j->dsn.len }, 1, on_bounce_queued, j);
	expansion_free(&j->x);	/* queue_write keeps the envelope it formatted */
	runtime_unref(j->rt);
	j->rt = NULL;
}

static void
on_bounce_expanded(void *arg)
{
	bounce_queue(arg);
}

static void
after_bounce_build(uv_work_t *w, int status)
{
	struct bounce_job *j = w->data;

	(void)status;
	j->rt = j->q->rt;	/* q->dir's config, until the expansion ends */
	runtime_ref(j->rt);
	if (directory_expand(j->q->dir, &j->rcpt, 1, &j->x, on_bounce_expanded,
	    j, NULL) == DIR_DONE)
		bounce_queue(j);
}

/* A double bounce: logged and journaled ('x'), nothing is sent. */
static void
bounce_drop(struct qmgr *q, struct qmsg *m, size_t *idx, char **text,
    size_t n)
{
	struct logline l;

	qmsg_log(&l, LOG_WARN, "double_bounce_dropped", m);
	log_end(&l);
	qmgr_journal(q, m, 'x', idx, n);
	for (size_t i = 0; i < n; i++)
		free(text[i]);
	free(text);
	free(idx);
}

/* Permanent failures of recipients idx[] (see the head comment). */
void
qmgr_bounce(struct qmgr *q, struct qmsg *m, size_t *idx, char **text,
    size_t n)
{
	struct bounce_job *j;
	int level = m->item.env.bounce_level >= 2 ? 3 :
	    m->item.env.sender[0] == '\0' ? 2 : 1;

	for (size_t i = 0; i < n; i++) {
		struct logline l;
		qmsg_log(&l, LOG_INFO, "failed", m);
		log_kv(&l, "to", m->item.env.rcpts[idx[i]]);
		log_kv(&l, "reply", text[i]);
		log_end(&l);
		m->st[idx[i]] = RS_DONE;
	}
	if (level == 3) {
		bounce_drop(q, m, idx, text, n);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->w.data = j;
	j->q = q;
	j->m = m;
	j->idx = idx;
	j->text = text;
	j->n = n;
	j->level = level;
	j->rcpt = xstrdup(level == 1 ? m->item.env.sender :
	    q->cfg->delivery.postmaster);
	m->busy++;
	q->io_pending++;
	uv_queue_work(q->loop, &j->w, do_bounce_build, after_bounce_build);
}
