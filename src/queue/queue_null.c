/*
 * queue_null: the backend that accepts every message and keeps nothing. A
 * transaction a hook discarded is "queued" here: the client gets its 250
 * and no byte reaches the disk. It holds no message, so it has nothing to
 * read, scan, journal, retire or remove.
 */
#include <errno.h>

#include "queue.h"

static int
null_write(uv_loop_t *loop, struct queue_set *q, const struct envelope *e,
    const struct msg_piece *pieces, size_t npieces, queue_write_cb cb,
    void *arg)
{
	(void)loop, (void)q, (void)e, (void)pieces, (void)npieces, (void)cb;
	(void)arg;
	return QUEUE_WRITE_DONE;	/* nothing to wait for: cb is not called */
}

static int
null_read(const struct queue_set *q, int qn, const char *id,
    struct queue_item *qi)
{
	(void)q, (void)qn, (void)id, (void)qi;
	errno = ENOENT;
	return -1;
}

static int
null_scan(const struct queue_set *q, int (*fn)(void *, struct queue_item *),
    void *arg)
{
	(void)q, (void)fn, (void)arg;
	return 0;
}

static int
null_journal(struct queue_item *qi, const struct buf *text)
{
	(void)qi, (void)text;
	return 0;
}

static int
null_item(const struct queue_item *qi)
{
	(void)qi;
	return 0;
}

static int
null_journal_read(struct queue_item *qi, struct queue_journal *j)
{
	(void)qi, (void)j;
	return 0;
}

static int
null_retire(const struct queue_set *q, const struct queue_item *qi,
    char **newpath)
{
	(void)q, (void)qi, (void)newpath;
	errno = ENOENT;
	return -1;
}

const struct queue_backend queue_null = {
	.name = "null",
	.write = null_write,
	.read = null_read,
	.scan = null_scan,
	.journal_append = null_journal,
	.journal_flush = null_item,
	.journal_read = null_journal_read,
	.retire = null_retire,
	.remove = null_item,
};
