/*
 * directory_quota: the RCPT-time quota check of a listed user with a
 * quota. The usage is the Maildir++ maildirsize that local delivery keeps
 * (read by mail/maildir.c), read on the libuv thread pool because it
 * touches the disk; a missing file is no usage. The query waits for it as
 * for a backend (Q_WAIT); a query that goes away lets go of the work,
 * which then frees itself (directory_auth.c's pattern).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "../mail/maildir.h"
#include "directory_int.h"

struct dir_quota_work {
	uv_work_t	 req;
	struct dir_query *q;		/* NULL: the query went away */
	struct buf	 maildir;
	long long	 quota, size;	/* the user's; the declared message */
	long long	 used;		/* the thread's answers */
	int		 error;		/* errno; 0: read (or no file) */
};

static void
work_free(struct dir_quota_work *w)
{
	buf_free(&w->maildir);
	free(w);
}

static void
on_work(uv_work_t *req)
{
	struct dir_quota_work *w = req->data;

	w->error = maildir_usage(buf_cstr(&w->maildir), &w->used) < 0 ?
	    errno : 0;
}

/*
 * Full: the declared size does not fit, or (nothing declared) not even
 * one more byte does.
 */
static enum dir_lookup
verdict(const struct dir_quota_work *w, int status)
{
	if (status != 0)
		return DIR_LOOKUP_FAILED;
	if (w->error) {
		log_event(LOG_WARN, "quota_error", "maildir=%s error=\"%s\"",
		    buf_cstr((struct buf *)&w->maildir), strerror(w->error));
		return DIR_LOOKUP_FAILED;
	}
	if (w->used >= w->quota || w->used + w->size > w->quota)
		return DIR_OVER_QUOTA;
	return DIR_LOCAL_USER;
}

/* On the loop: the usage is known; answer, unless the query went away. */
static void
on_work_done(uv_work_t *req, int status)
{
	struct dir_quota_work *w = req->data;
	struct dir_query *q = w->q;

	if (q == NULL) {
		work_free(w);
		return;
	}
	q->quota = NULL;
	*(enum dir_lookup *)q->out = verdict(w, status);
	work_free(w);
	dir_query_done(q);
}

void
dir_quota_release(struct dir_query *q)
{
	struct dir_quota_work *w = q->quota;

	q->quota = NULL;
	w->q = NULL;		/* on_work_done frees it */
	uv_cancel((uv_req_t *)&w->req);
}

int
dir_quota_check(struct dir_query *q, const char *owner, size_t quota)
{
	struct dir_quota_work *w = xcalloc(1, sizeof(*w));

	w->req.data = w;
	w->q = q;
	w->quota = (long long)quota;
	w->size = (long long)q->size;
	maildir_path(&w->maildir, q->d->cfg->delivery.maildir_root, owner);
	if (uv_queue_work(q->d->loop, &w->req, on_work, on_work_done) != 0) {
		work_free(w);
		*(enum dir_lookup *)q->out = DIR_LOOKUP_FAILED;
		return Q_END;
	}
	q->quota = w;
	return Q_WAIT;
}
