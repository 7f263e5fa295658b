/*
 * [src/lib: generic code that knows no mail; it includes nothing outside
 * src/lib. See docs/architecture.md.]
 *
 * batch: group commit on the libuv thread pool. Items added while a batch
 * is being worked on wait and form the next batch, so N items that arrive
 * together share one pass of `work` (and its flushes). One batch runs at a
 * time per struct batcher. `work` runs on a pool thread with the list of
 * items; `done` runs on the loop thread afterwards, once per batch.
 * A batcher whose work holds a file open per item until the flush sets
 * max (BATCH_MAX): a batch then takes at most that many items, the rest
 * forming the next ones, so that a backlog (a checkpoint behind 1,000
 * sessions) cannot take every descriptor. 0: no limit (an append to one
 * file: splitting it would only add flushes).
 */
#ifndef INDIMAIL_BATCH_H
#define INDIMAIL_BATCH_H

#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

#include "metrics.h"

#define BATCH_MAX	256

struct batch_item {
	struct batch_item *next;
};

struct batcher {
	uv_loop_t	*loop;
	void		(*work)(struct batch_item *, size_t n, void *ctx);
	void		(*done)(struct batch_item *, size_t n, void *ctx,
			    int status);
	void		*ctx;
	struct batch_item *waiting, *tail;
	size_t		 nwaiting;
	int		 running;
	int		 uncounted;	/* no group commit: not in batch_size */
	size_t		 max;		/* items per batch at most; 0: any */
	unsigned long	 batches, items;	/* statistics */
};

void	batcher_add(struct batcher *, struct batch_item *);
/* Items per batch, every batcher of the process (the caller registers it). */
extern const struct metric_family batch_size_family;

/*
 * Durability for what a batch wrote. Files: fdatasync for one, else one
 * syncfs() per file system the files are on (sync_files_dev also gives
 * each one's file system in devs). Renames: fsync of the one directory,
 * else one syncfs() per file system of the directories, dirs[i] being on
 * devs[i] (that of a file renamed into it: no stat of each). Returns 0,
 * or -1 if any flush failed.
 */
int	sync_files(const int *fds, size_t n);
int	sync_files_dev(const int *fds, size_t n, dev_t *devs);
int	sync_dirs(const char *const *dirs, const dev_t *devs, size_t n);

#endif
