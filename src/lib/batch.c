/*
 * batch: see batch.h. The batcher owns no memory: items are embedded in
 * the caller's structures and handed back in `done`.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "fsutil.h"
#include "xalloc.h"

struct run {
	uv_work_t	 req;
	struct batcher	*b;
	struct batch_item *items;
	size_t		 n;
};

const struct metric_family batch_size_family = {
	"indimail_group_commit_batch_size", "Items written and flushed "
	"together by one group commit (queue files, journals)",
	METRIC_HISTOGRAM, { NULL }, 0, 0,
	{ 1, 2, 4, 8, 16, 32, 64, 128, 256 }, 0 };

static struct metric batch_size;	/* resolved on first use */

static void start(struct batcher *);

static void
do_run(uv_work_t *req)
{
	struct run *r = req->data;

	r->b->work(r->items, r->n, r->b->ctx);
}

static void
after_run(uv_work_t *req, int status)
{
	struct run *r = req->data;
	struct batcher *b = r->b;

	b->done(r->items, r->n, b->ctx, status);
	free(r);
	b->running = 0;
	if (b->waiting)
		start(b);
}

static void
start(struct batcher *b)
{
	struct run *r = xcalloc(1, sizeof(*r));

	r->req.data = r;
	r->b = b;
	r->items = b->waiting;
	r->n = b->max && b->nwaiting > b->max ? b->max : b->nwaiting;
	if (r->n < b->nwaiting) {	/* the rest waits for the next batch */
		struct batch_item *last = r->items;
		for (size_t i = 1; i < r->n; i++)
			last = last->next;
		b->waiting = last->next;
		last->next = NULL;
		b->nwaiting -= r->n;
	} else {
		b->waiting = b->tail = NULL;
		b->nwaiting = 0;
	}
	b->running = 1;
	b->batches++;
	b->items += r->n;
	if (!b->uncounted)
		metric_observe(metrics_once(&batch_size, &batch_size_family,
		    NULL), r->n);
	if (uv_queue_work(b->loop, &r->req, do_run, after_run) != 0)
		after_run(&r->req, UV_ECANCELED);
}

void
batcher_add(struct batcher *b, struct batch_item *it)
{
	it->next = NULL;
	if (b->tail)
		b->tail->next = it;
	else
		b->waiting = it;
	b->tail = it;
	b->nwaiting++;
	if (!b->running)
		start(b);
}

/* Whether dev is among the first n of seen; if not, it is added. */
static int
dev_seen(dev_t *seen, size_t *n, dev_t dev)
{
	for (size_t k = 0; k < *n; k++)
		if (seen[k] == dev)
			return 1;
	seen[(*n)++] = dev;
	return 0;
}

/* syncfs() once per distinct file system among the fds; each one's in devs. */
static int
syncfs_each(const int *fds, size_t n, dev_t *devs)
{
	dev_t *seen = xcalloc(n, sizeof(dev_t));
	size_t nseen = 0;
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (fstat(fds[i], &st) < 0) {
			rc = -1;
			continue;
		}
		devs[i] = st.st_dev;
		if (dev_seen(seen, &nseen, st.st_dev))
			continue;
		if (syncfs(fds[i]) < 0)
			rc = -1;
	}
	free(seen);
	return rc;
}

int
sync_files_dev(const int *fds, size_t n, dev_t *devs)
{
	if (n == 0)
		return 0;
	return n == 1 ? fdatasync(fds[0]) : syncfs_each(fds, n, devs);
}

int
sync_files(const int *fds, size_t n)
{
	dev_t *devs = xcalloc(n ? n : 1, sizeof(dev_t));
	int rc = sync_files_dev(fds, n, devs);

	free(devs);
	return rc;
}

/*
 * One syncfs() per distinct file system among the folders: only the first
 * folder of each is opened (not every folder once per file of the group).
 */
int
sync_dirs(const char *const *dirs, const dev_t *devs, size_t n)
{
	dev_t *seen;
	size_t nseen = 0;
	int rc = 0;

	if (n == 0)
		return 0;
	if (n == 1)
		return fsync_dir(dirs[0]);
	seen = xcalloc(n, sizeof(dev_t));
	for (size_t i = 0; i < n; i++) {
		int fd;
		if (dev_seen(seen, &nseen, devs[i]))
			continue;
		if ((fd = open(dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
		    syncfs(fd) < 0)
			rc = -1;
		if (fd >= 0)
			close(fd);
	}
	free(seen);
	return rc;
}
