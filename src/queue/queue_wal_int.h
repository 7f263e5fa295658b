/*
 * queue_wal_int: what the two halves of the wal backend share: the write
 * path (queue_wal.c: segments, appends, the 250s) and the checkpoint
 * (queue_wal_ckpt.c: message files, marks, telling the queue manager,
 * removing finished segments). Not for use outside src/queue.
 */
#ifndef INDIMAIL_QUEUE_WAL_INT_H
#define INDIMAIL_QUEUE_WAL_INT_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "../lib/batch.h"
#include "queue.h"

struct wal_segment {
	int		 fd, mark_fd;
	int		 qn;
	char		*path, *mark_path;
	uint64_t	 size;		/* appended and flushed (write batch) */
	long		 created;	/* monotonic seconds (write batch) */
	int		 sealed;	/* takes no more records (write batch) */
	int		 pending;	/* records not checkpointed yet (loop) */
	int		 retired;	/* no longer current (loop) */
	atomic_int	 failed;	/* a checkpoint failed: left to recovery */
	int		 again;		/* records waiting for its retry (loop) */
	int		 abandoned;	/* no retry left: recovery's (loop) */
	int		 failing;	/* counted in queue_wal's failing (loop) */
	struct wal_segment *next_sealed;
};

/* A message checkpointed, the queue manager not yet told (loop thread). */
struct wal_news {
	struct wal_news *next;
	int		 qn;
	char		 id[QUEUE_ID_LEN + 1];
};

struct queue_wal {
	struct wal_segment *current[QUEUE_MAX];
	struct wal_segment *sealed;	/* sealed by the last write batch */
	unsigned	 seq;
	int		 next_qn;	/* the next write batch's queue */
	size_t		 writing;	/* jobs not yet done (loop thread) */
	struct batcher	 checkpoint;
	int		 removals;	/* segment removals running */
	struct wal_news	*news, *news_tail;
	uv_timer_t	 retry;		/* the queue manager's queue was full */
	struct batch_item *again, *again_tail;	/* checkpoints to retry */
	uv_timer_t	 again_timer;
	/* Segments of each queue with a failed checkpoint, until they go
	 * (each holds two descriptors): at WAL_FAILING_MAX, no new segment. */
	atomic_int	 failing[QUEUE_MAX];
};

/*
 * Segments of one queue that may wait for a failed checkpoint at once. A
 * failure seals its segment (the next batch starts a new one, so that a
 * bad segment holds back nothing else); a failure that persists (tmp/ not
 * writable, the disk full) would otherwise start one per batch, each
 * holding its descriptors until its records are out or given up (~6 min):
 * a worker out of descriptors. At the limit the queue takes no new
 * records (451 4.3.0) until a retry gets some out.
 */
#define WAL_FAILING_MAX	4

void	wal_segment_free(struct wal_segment *);
/* queue_wal_ckpt.c: the checkpoint's batcher and timer, on the loop. */
void	wal_checkpoint_init(uv_loop_t *, struct queue_set *);
/* Loop thread: a record durable in seg, to be written out. */
void	wal_checkpoint_add(struct queue_set *, struct wal_segment *, int qn,
	    const char *id, uint64_t offset, uint64_t len);
/* Loop thread, after a write batch: the segments it sealed retire. */
void	wal_retire_sealed(struct queue_set *);
/* queue_wal_recover.c: the pid in a segment's name "<pid>.<seq>"; 0 for
 * any other name (a mark ends in WAL_MARK_SUFFIX). */
long	wal_segment_writer(const char *name);
/* len bytes of in at off appended to out (by the kernel where it can). */
int	wal_copy_range(int in, off_t off, int out, uint64_t len);
/* Loop thread: tells the queue manager of id (queue_segment: at once). */
void	wal_announce(struct queue_set *, int qn, const char *id);
/* The write path and its busy, shared with queue_segment.c. */
int	wal_write(uv_loop_t *, struct queue_set *, const struct envelope *,
	    const struct msg_piece *, size_t, queue_write_cb, void *);
int	wal_busy(const struct queue_set *);
/* queue_wal_recover.c: the ids of segment's dead list, sorted (to free;
 * none if it has none), and where the mark at mark_path says the
 * checkpoint got to (0 if none or corrupt). */
size_t	wal_dead_read(const char *segment, char (**ids)[QUEUE_ID_LEN + 1]);
uint64_t wal_mark_read(const char *mark_path);
/*
 * queue_wal_pending.c: a record as a message item whose file is its
 * segment (path; shared): data, n bytes of it from the start of its
 * payload (its envelope at least), which lies at offset, len bytes long.
 * 0, or -1 if no envelope is there.
 */
int	wal_record_item(const struct queue_set *, int qn, const char *path,
	    const char *data, size_t n, uint64_t offset, uint64_t len,
	    struct queue_item *);
/* queue_wal_pending.c: the backend's unsettled (queue.h). */
int	wal_unsettled(const struct queue_set *,
	    int (*fn)(void *, struct queue_item *), void *arg);

#endif
