/*
 * queue_segment_int: what the segment backend's files share (the index
 * of queue_segment_index.c, read and written by queue_segment.c and
 * queue_segment_compact.c). Not for use outside src/queue.
 */
#ifndef INDIMAIL_QUEUE_SEGMENT_INT_H
#define INDIMAIL_QUEUE_SEGMENT_INT_H

#include <pthread.h>
#include <stdint.h>

#include "queue.h"

struct seg_file;

/* 56 bytes, SEG_CHUNK of them to an allocation (a million: 53 MiB). */
struct seg_rec {
	struct seg_rec	*hnext;
	struct seg_file	*seg;
	uint64_t	 offset;	/* the payload */
	uint32_t	 len;
	unsigned char	 dead;
	unsigned char	 pinned;	/* retired, not yet removed (this process) */
	char		 id[QUEUE_ID_LEN + 1];
};

#define SEG_CHUNK	256	/* records to an allocation */

struct seg_file {
	char		*path;
	int		 qn;
	long		 pid;
	unsigned long	 seq;
	uint64_t	 scanned;	/* records read up to here */
	int		 dead_read;	/* its dead list read (once: only the
					 * queue manager appends to it) */
	int		 dead_fd;	/* open for appends, or -1 */
	int		 complete;	/* read after it was sealed: every
					 * record it will ever hold is known */
	int		 unindexed;	/* holds a record too large to index */
	struct seg_rec	**chunk;	/* record i: seg_rec_at(s, i), in order
					 * of offset */
	size_t		 nrecs, nchunks, ndead, npinned;
	uint64_t	 live_bytes;	/* records not dead, headers included */
	struct seg_file	*next;
};

/* The index of one process: id -> record. mu guards all of it. */
struct seg_index {
	pthread_mutex_t	 mu;
	struct seg_file	*segs;
	struct seg_rec	**tab;
	size_t		 cap, n;
};
extern struct seg_index seg_ix;

static inline struct seg_rec *
seg_rec_at(const struct seg_file *s, size_t i)
{
	return &s->chunk[i / SEG_CHUNK][i % SEG_CHUNK];
}

/* The rest: seg_ix.mu held. */
struct seg_rec *seg_find(const char *id);
void	seg_set_dead(struct seg_rec *);
/* One of s's files (WAL_DEAD_SUFFIX, WAL_MARK_SUFFIX), to free. */
char	*seg_sibling(const struct seg_file *, const char *suffix);
/* New records and dead ids of queue qn's segments (only_sealed: of
 * those that take no more records). */
void	seg_refresh(const struct queue_set *, int qn, int only_sealed);
/* s goes if it takes no more records, is read since, and all is dead. */
void	seg_maybe_drop(struct seg_file *);
/* The ids retired on the loop thread since, taken in: dead and pinned. */
void	seg_take_retired(void);
/* Appends "id\n" to the dead list at path (*fd opened once); 0 or -1. */
int	seg_append_dead(int *fd, const char *path, const char *id);

#endif
