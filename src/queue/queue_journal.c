/*
 * queue_journal: the state journal of a queued message (docs/delivery.md),
 * an append-only file of final outcomes and schedule, one record a line:
 *
 *   d <i>   recipient i delivered          b <i>   bounce for i queued
 *   x <i>   i failed, bounce dropped       h / r   held / released
 *   t <n> <time>  n attempts so far, next try at <time>
 *
 * Its format and its file I/O live here; what to record and when is the
 * queue manager's decision (src/deliver/qmgr.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "queue.h"

void
queue_journal_final(struct buf *b, char kind, size_t rcpt)
{
	buf_printf(b, "%c %zu\n", kind, rcpt);
}

void
queue_journal_hold(struct buf *b, int hold)
{
	buf_appends(b, hold ? "h\n" : "r\n");
}

void
queue_journal_retry(struct buf *b, int attempts, long long at)
{
	buf_printf(b, "t %d %lld\n", attempts, at);
}

/*
 * Appends records with one write(2): once it has returned, they survive
 * kill -9 of the caller (not yet power loss: see queue_journal_flush).
 */
int
queue_journal_append(struct queue_item *qi, const struct buf *text)
{
	int fd = open(qi->journal, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0640);
	ssize_t n;

	__atomic_store_n(&qi->no_journal, 0, __ATOMIC_RELAXED);
	if (fd < 0)
		return -1;
	n = write(fd, text->data, text->len);
	close(fd);
	return n == (ssize_t)text->len ? 0 : -1;
}

/* Power loss: the records already written become durable here. */
int
queue_journal_flush(const struct queue_item *qi)
{
	int fd = open(qi->journal, O_WRONLY | O_CLOEXEC), ok;

	ok = fd >= 0 && fdatasync(fd) == 0;
	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

static void
read_record(const char *line, const struct queue_item *qi,
    struct queue_journal *j)
{
	unsigned long i;

	if (line[0] == 'h')
		j->hold = 1;
	else if (line[0] == 'r')
		j->hold = 0;
	else if (strchr("dbx", line[0]) && sscanf(line + 1, "%lu", &i) == 1 &&
	    i < qi->env.nrcpts && j->final)
		j->final[i] = 1;
	else if (line[0] == 't')	/* the last deferral's schedule */
		sscanf(line + 1, "%d %lld", &j->attempts, &j->retry_at);
}

/* The journal goes, unless its read found none and none was written since. */
void
queue_journal_remove(const struct queue_item *qi)
{
	if (!__atomic_load_n(&qi->no_journal, __ATOMIC_RELAXED))
		unlink(qi->journal);
}

/*
 * j->final: env.nrcpts bytes from the caller, or NULL. No journal: 0, and
 * qi->no_journal says so (until an append).
 */
int
queue_journal_read(struct queue_item *qi, struct queue_journal *j)
{
	char line[64];
	FILE *f = fopen(qi->journal, "r");

	if (f == NULL) {
		__atomic_store_n(&qi->no_journal, errno == ENOENT,
		    __ATOMIC_RELAXED);
		return 0;
	}
	while (fgets(line, sizeof(line), f))
		read_record(line, qi, j);
	fclose(f);
	return 0;
}
