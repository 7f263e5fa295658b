/*
 * spf_job: see spf_job.h. A job owns copies of its query's strings, so
 * the session that asked may go while its check runs: cancelling a job
 * that waits frees it, cancelling one that runs only drops its callback
 * (the thread cannot be stopped; the check's deadline bounds it). The
 * cache is direct-mapped (a slot per hash, the newer answer wins): small,
 * bounded, no eviction list, and a worker sees the same senders again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "spf_job.h"

struct spf_job {
	uv_work_t	 work;
	struct spf_jobs	*jobs;
	struct spf_limits lim;
	char		*ip, *helo, *sender, *receiver;
	struct spf_answer a;
	spf_job_cb	 cb;		/* NULL: cancelled */
	void		*arg;
	int		 running;
	struct spf_job	*next;		/* waiting */
};

struct cache_slot {
	char		*key;		/* NULL: empty */
	uint64_t	 expires_ms;
	struct spf_answer a;
};

struct spf_jobs {
	uv_loop_t	*loop;
	int		 max_running, running, ttl_s;
	struct spf_job	*wait_head, **wait_tail;
	struct cache_slot *slots;
	size_t		 nslots;
};

static char *
dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

void
spf_answer_copy(struct spf_answer *d, const struct spf_answer *a)
{
	*d = *a;
	d->domain = dup_or_null(a->domain);
	d->comment = dup_or_null(a->comment);
	d->explanation = dup_or_null(a->explanation);
	d->header = dup_or_null(a->header);
}

struct spf_jobs *
spf_jobs_new(uv_loop_t *loop, int running, size_t cache_size, int cache_ttl_s)
{
	struct spf_jobs *j = xcalloc(1, sizeof(*j));

	j->loop = loop;
	j->wait_tail = &j->wait_head;
	j->nslots = cache_size;
	j->slots = cache_size ? xcalloc(cache_size, sizeof(*j->slots)) : NULL;
	spf_jobs_configure(j, running, cache_ttl_s);
	return j;
}

void
spf_jobs_configure(struct spf_jobs *j, int running, int cache_ttl_s)
{
	j->max_running = running > 0 ? running : 1;
	j->ttl_s = cache_ttl_s;
}

/* "ip\nsender\nhelo": none of them holds a line end. */
static char *
cache_key(const struct spf_query *q)
{
	size_t n = strlen(q->ip) + 3 + (q->sender ? strlen(q->sender) : 0) +
	    (q->helo ? strlen(q->helo) : 0);
	char *k = xmalloc(n);

	snprintf(k, n, "%s\n%s\n%s", q->ip, q->sender ? q->sender : "",
	    q->helo ? q->helo : "");
	return k;
}

static struct cache_slot *
cache_slot(struct spf_jobs *j, const char *key)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a */

	for (const char *p = key; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return &j->slots[h % j->nslots];
}

static int
cache_get(struct spf_jobs *j, const struct spf_query *q, struct spf_answer *out)
{
	char *key;
	struct cache_slot *s;
	int hit;

	if (j->nslots == 0 || j->ttl_s <= 0)
		return 0;
	key = cache_key(q);
	s = cache_slot(j, key);
	hit = s->key && strcmp(s->key, key) == 0 && s->expires_ms > uv_now(j->loop);
	if (hit)
		spf_answer_copy(out, &s->a);
	free(key);
	return hit;
}

static void
cache_put(struct spf_jobs *j, const struct spf_job *job)
{
	struct spf_query q = { job->ip, job->helo, job->sender, NULL };
	struct cache_slot *s;
	char *key;

	if (j->nslots == 0 || j->ttl_s <= 0 || job->a.result == SPF_R_TEMPERROR)
		return;
	key = cache_key(&q);
	s = cache_slot(j, key);
	free(s->key);
	spf_answer_free(&s->a);
	s->key = key;
	s->expires_ms = uv_now(j->loop) + (uint64_t)j->ttl_s * 1000;
	spf_answer_copy(&s->a, &job->a);
}

static void
job_free(struct spf_job *job)
{
	spf_answer_free(&job->a);
	free(job->ip);
	free(job->helo);
	free(job->sender);
	free(job->receiver);
	free(job);
}

/* On a pool thread: the only code here that is not on the loop. */
static void
on_work(uv_work_t *w)
{
	struct spf_job *job = w->data;
	struct spf_query q = { job->ip, job->helo, job->sender, job->receiver };

	spf_check(&job->lim, &q, &job->a);
}

static void start_waiting(struct spf_jobs *);

static void
on_work_done(uv_work_t *w, int status)
{
	struct spf_job *job = w->data;
	struct spf_jobs *j = job->jobs;

	j->running--;
	if (status == 0)
		cache_put(j, job);
	if (job->cb)
		job->cb(job->arg, &job->a);
	job_free(job);
	start_waiting(j);
}

static void
start(struct spf_jobs *j, struct spf_job *job)
{
	j->running++;
	job->running = 1;
	job->work.data = job;
	if (uv_queue_work(j->loop, &job->work, on_work, on_work_done) < 0) {
		job->a.result = SPF_R_TEMPERROR;	/* cannot happen: no cb */
		on_work_done(&job->work, -1);
	}
}

static void
start_waiting(struct spf_jobs *j)
{
	while (j->running < j->max_running && j->wait_head) {
		struct spf_job *job = j->wait_head;
		if ((j->wait_head = job->next) == NULL)
			j->wait_tail = &j->wait_head;
		start(j, job);
	}
}

int
spf_jobs_check(struct spf_jobs *j, const struct spf_limits *lim,
    const struct spf_query *q, struct spf_answer *out, spf_job_cb cb,
    void *arg, struct spf_job **jobp)
{
	struct spf_job *job;

	*jobp = NULL;
	if (cache_get(j, q, out))
		return SPF_JOB_DONE;
	job = xcalloc(1, sizeof(*job));
	job->jobs = j;
	job->lim = *lim;
	job->ip = xstrdup(q->ip);
	job->helo = dup_or_null(q->helo);
	job->sender = dup_or_null(q->sender);
	job->receiver = dup_or_null(q->receiver);
	job->cb = cb;
	job->arg = arg;
	*jobp = job;
	*j->wait_tail = job;
	j->wait_tail = &job->next;
	start_waiting(j);
	return SPF_JOB_PENDING;
}

void
spf_job_cancel(struct spf_job *job)
{
	struct spf_jobs *j = job->jobs;
	struct spf_job **pp;

	if (job->running) {
		job->cb = NULL;		/* on_work_done frees it */
		return;
	}
	for (pp = &j->wait_head; *pp != job; pp = &(*pp)->next)
		;
	if ((*pp = job->next) == NULL)
		j->wait_tail = pp;
	job_free(job);
}
