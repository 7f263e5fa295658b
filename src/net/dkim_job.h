/*
 * [src/net: network plumbing on the loop (TLS, DNS, connection counts);
 * it includes only src/lib and src/mail. See docs/architecture.md.]
 *
 * dkim_job: DKIM signing and verifying (dkim.h) for the loop, on libuv's
 * thread pool. One table per process: at most `running` jobs hold pool
 * threads at once (the queue's writes and the directory need theirs); the
 * others wait in order on the loop. Everything but the work itself runs
 * on the loop thread.
 */
#ifndef INDIMAIL_DKIM_JOB_H
#define INDIMAIL_DKIM_JOB_H

#include <uv.h>

#include "dkim.h"

struct dkim_job;
/* On the loop thread; a is the callee's to keep (it frees it). */
typedef void (*dkim_job_cb)(void *arg, struct dkim_msg_answer *a);

/* The process's table (made on first call); later calls set the cap. */
void	dkim_jobs_setup(uv_loop_t *, int running);
/*
 * Signs the message p[0..n) with k. Borrowed: k's strings and the bytes
 * of the pieces must stay until cb (or cancel); the array is copied.
 */
struct dkim_job *dkim_jobs_sign(const struct dkim_key_conf *k,
	    const struct msg_piece *p, size_t n, dkim_job_cb, void *arg);
/* Verifies msg[0..len) (copied) within lim (copied). */
struct dkim_job *dkim_jobs_verify(const struct dkim_msg_limits *lim,
	    const char *msg, size_t len, dkim_job_cb, void *arg);
/* cb is not called; a job that runs finishes alone and is freed then. */
void	dkim_job_cancel(struct dkim_job *);

#endif
