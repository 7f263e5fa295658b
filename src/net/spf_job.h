/*
 * [src/net: network plumbing on the loop (TLS, DNS, connection counts);
 * it includes only src/lib and src/mail. See docs/architecture.md.]
 *
 * spf_job: SPF checks (spf.h) for the loop, on libuv's thread pool. At
 * most `running` checks hold pool threads at once (the pool has 4 by
 * default, and the queue's writes and the directory need theirs); the
 * others wait in order on the loop. Answers are kept in a per-process
 * cache for cache_ttl seconds, keyed by (client ip, sender, HELO); a
 * temperror is never kept. Everything but the check itself runs on the
 * loop thread.
 */
#ifndef INDIMAIL_SPF_JOB_H
#define INDIMAIL_SPF_JOB_H

#include <uv.h>

#include "spf.h"

enum { SPF_JOB_DONE, SPF_JOB_PENDING };

struct spf_jobs;
struct spf_job;
/* On the loop thread; a is the caller's to read, not to keep. */
typedef void (*spf_job_cb)(void *arg, const struct spf_answer *a);

struct spf_jobs *spf_jobs_new(uv_loop_t *, int running, size_t cache_size,
	    int cache_ttl_s);
/* Later checks obey these (a reload); checks under way keep theirs. */
void	spf_jobs_configure(struct spf_jobs *, int running, int cache_ttl_s);
/*
 * DONE: *out holds a cached answer (the caller frees it). PENDING: cb is
 * called once later, unless spf_job_cancel(*jobp) is called first.
 */
int	spf_jobs_check(struct spf_jobs *, const struct spf_limits *,
	    const struct spf_query *, struct spf_answer *out, spf_job_cb cb,
	    void *arg, struct spf_job **jobp);
void	spf_job_cancel(struct spf_job *);
/* A deep copy of a (for the cache and the callers). */
void	spf_answer_copy(struct spf_answer *dst, const struct spf_answer *a);

#endif
