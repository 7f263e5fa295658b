/*
 * dkim_job: see dkim_job.h. A verify job owns a copy of its message, so
 * the hook that asked may go while it runs; a sign job borrows its pieces
 * from a session that waits for it (smtp_tx.c holds the session as it
 * does for the queue write). Cancelling a waiting job frees it,
 * cancelling a running one only drops its callback (a thread cannot be
 * stopped; the verification's deadline bounds it).
 */
#include <stdlib.h>
#include <string.h>

#include "../lib/diag.h"
#include "../lib/xalloc.h"
#include "dkim_job.h"

/* A message as the queue writes it: Received, header, body pieces. */
#define DKIM_JOB_PIECES_MAX	(MSG_EDIT_PIECES_MAX + 2)

struct dkim_job {
	uv_work_t	 work;
	int		 sign;
	struct dkim_key_conf key;		/* sign: borrowed strings */
	struct msg_piece p[DKIM_JOB_PIECES_MAX];
	size_t		 np;
	struct dkim_msg_limits lim;		/* verify */
	char		*msg;			/* verify: owned copy */
	size_t		 len;
	struct dkim_msg_answer a;
	dkim_job_cb	 cb;			/* NULL: cancelled */
	void		*arg;
	int		 running;
	struct dkim_job	*next;			/* waiting */
};

static struct {
	uv_loop_t	*loop;
	int		 max_running, running;
	struct dkim_job	*wait_head, **wait_tail;
} jobs;

void
dkim_jobs_setup(uv_loop_t *loop, int running)
{
	if (jobs.loop == NULL) {
		jobs.loop = loop;
		jobs.wait_tail = &jobs.wait_head;
	}
	jobs.max_running = running > 0 ? running : 1;
}

static void
job_free(struct dkim_job *j)
{
	dkim_msg_answer_free(&j->a);
	free(j->msg);
	free(j);
}

/* On a pool thread: the only code here that is not on the loop. */
static void
on_work(uv_work_t *w)
{
	struct dkim_job *j = w->data;

	if (j->sign)
		dkim_msg_sign(&j->key, j->p, j->np, &j->a);
	else
		dkim_msg_verify(&j->lim, j->msg, j->len, &j->a);
}

static void start_waiting(void);

static void
on_work_done(uv_work_t *w, int status)
{
	struct dkim_job *j = w->data;

	(void)status;
	jobs.running--;
	if (j->cb) {
		j->cb(j->arg, &j->a);
		memset(&j->a, 0, sizeof(j->a));	/* the callee's now */
	}
	job_free(j);
	start_waiting();
}

static void
start_waiting(void)
{
	while (jobs.running < jobs.max_running && jobs.wait_head) {
		struct dkim_job *j = jobs.wait_head;
		if ((jobs.wait_head = j->next) == NULL)
			jobs.wait_tail = &jobs.wait_head;
		jobs.running++;
		j->running = 1;
		j->work.data = j;
		if (uv_queue_work(jobs.loop, &j->work, on_work,
		    on_work_done) < 0)
			panic("uv_queue_work refused a DKIM job");
	}
}

static struct dkim_job *
enqueue(struct dkim_job *j, dkim_job_cb cb, void *arg)
{
	if (jobs.loop == NULL)
		panic("dkim_jobs_setup was not called");
	j->cb = cb;
	j->arg = arg;
	*jobs.wait_tail = j;
	jobs.wait_tail = &j->next;
	start_waiting();
	return j;
}

struct dkim_job *
dkim_jobs_sign(const struct dkim_key_conf *k, const struct msg_piece *p,
    size_t n, dkim_job_cb cb, void *arg)
{
	struct dkim_job *j = xcalloc(1, sizeof(*j));

	if (n > DKIM_JOB_PIECES_MAX)
		panic("DKIM job of %zu pieces", n);
	j->sign = 1;
	j->key = *k;
	memcpy(j->p, p, n * sizeof(*p));
	j->np = n;
	return enqueue(j, cb, arg);
}

struct dkim_job *
dkim_jobs_verify(const struct dkim_msg_limits *lim, const char *msg,
    size_t len, dkim_job_cb cb, void *arg)
{
	struct dkim_job *j = xcalloc(1, sizeof(*j));

	j->lim = *lim;
	j->msg = xmalloc(len ? len : 1);
	memcpy(j->msg, msg, len);
	j->len = len;
	return enqueue(j, cb, arg);
}

void
dkim_job_cancel(struct dkim_job *j)
{
	struct dkim_job **pp;

	if (j->running) {
		j->cb = NULL;		/* on_work_done frees it */
		return;
	}
	for (pp = &jobs.wait_head; *pp != j; pp = &(*pp)->next)
		;
	if ((*pp = j->next) == NULL)
		jobs.wait_tail = pp;
	job_free(j);
}
