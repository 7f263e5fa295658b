/*
 * queue: the on-disk queue. `count` independent queues under one path,
 * each with tmp/ (files being written) and mess/<h>/ (complete messages,
 * hash-split into `split` folders). A message is one file: an envelope
 * (docs/queue.md) followed by the message with LF line ends. It becomes
 * visible only by an atomic rename after fsync; see queue_write.c.
 */
#ifndef INDIMAIL_QUEUE_H
#define INDIMAIL_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "../lib/batch.h"
#include "../lib/buf.h"

#define QUEUE_ID_LEN	24
#define QUEUE_MAX	64

/*
 * The hard ceiling of an envelope (every line up to and including the empty
 * one, docs/queue.md). The SMTP side refuses a recipient or a message that
 * would exceed it before its 250, the writer never writes more, and the
 * reader reads no further: whatever was accepted can be read back.
 */
#define QUEUE_ENVELOPE_MAX	(4 * 1024 * 1024)

struct queue_set {
	char		*path;
	int		 count;
	int		 split;
	int		 inflight[QUEUE_MAX];	/* writes running, per queue */
	int		 next;			/* round-robin tie breaker */
	struct batcher	 writer;	/* group commit (queue_write.c) */
};

/* What is written in front of the message. */
struct queue_envelope {
	const char	*id;
	time_t		 received;
	const char	*ip, *helo, *listener, *tls, *auth_user;
	const char	*sender;
	char	       **rcpts;
	char	       **orcpts;	/* original recipient of each, or NULL */
	size_t		 nrcpts;
	char	       **env_key, **env_val;
	size_t		 nenv;
	const char	*body;		/* "7BIT", "8BITMIME" or NULL */
};

/* A parsed envelope (queue list, queue manager). Strings are owned. */
struct queue_info {
	char		 id[QUEUE_ID_LEN + 1];
	long long	 received;
	char		*sender, *ip, *helo, *body;
	char	       **rcpts;
	char	       **orcpts;	/* same index as rcpts; never NULL entries */
	size_t		 nrcpts;
	size_t		 body_offset;	/* where the message starts in the file */
	size_t		 size;		/* message bytes */
	char		*path;
	int		 queue;
	int		 bounce_level;	/* env INDIMAIL_BOUNCE: 1 bounce, 2 double */
	char	       **env_key, **env_val;	/* tx.env of the transaction */
	size_t		 nenv;
};

int	queue_set_init(struct queue_set *, const char *path, int count,
	    int split, struct buf *err);
void	queue_set_free(struct queue_set *);
void	queue_new_id(char out[QUEUE_ID_LEN + 1]);
int	queue_hash(const char *id, int split);
int	queue_pick(struct queue_set *);
/*
 * Removes tmp/ leftovers: those of one dead pid, or (pid 0) those of every
 * writer that is no longer running.
 */
int	queue_clean_tmp(const struct queue_set *, long pid);

void	queue_envelope_format(const struct queue_envelope *, struct buf *);
/* Bytes queue_envelope_format would write, and those of one recipient. */
size_t	queue_envelope_size(const struct queue_envelope *);
size_t	queue_envelope_rcpt_size(const char *rcpt, const char *orcpt);
int	queue_envelope_parse(const char *, size_t, struct queue_info *);
void	queue_info_free(struct queue_info *);

/*
 * Path of a message file / of its delivery state journal / of a message
 * every recipient of which is final (done/<id>: renamed there at once,
 * removed soon after; what a crash leaves there is removed at start).
 */
void	queue_mess_path(const struct queue_set *, int queue, const char *id,
	    struct buf *);
void	queue_state_path(const struct queue_set *, int queue, const char *id,
	    struct buf *);
void	queue_done_path(const struct queue_set *, int queue, const char *id,
	    struct buf *);
/* Removes what done/ still holds; returns how many. */
int	queue_clean_done(const struct queue_set *);
/* Reads one message's envelope (never its message); 0 or -1. */
int	queue_read_info(const char *path, int queue, struct queue_info *);

/* The `queue list` line of one message (recipient lines follow). */
void	queue_format_entry(struct buf *, const char *id, long long age,
	    size_t size, const char *sender, int held);
#define QUEUE_LIST_HEADER \
	"ID                       AGE      SIZE  SENDER / RECIPIENTS\n"

/* Calls fn for every complete message of every queue. */
int	queue_scan(const struct queue_set *,
	    int (*fn)(void *, struct queue_info *), void *arg);

typedef void (*queue_write_cb)(void *arg, int ok, const char *error,
	    double seconds, int queue);
/*
 * Writes envelope + header + message durably on the thread pool and calls
 * cb on the loop thread. msg and hdr must stay untouched until cb runs.
 */
void	queue_write(uv_loop_t *, struct queue_set *,
	    const struct queue_envelope *, const struct buf *hdr,
	    const struct buf *msg, queue_write_cb, void *arg);

#endif
