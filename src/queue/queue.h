/*
 * queue: src/queue owns where accepted messages live until every recipient
 * is final: the folders and ids (queue.c), the envelope's file form
 * (queue_envelope.c, docs/queue.md), each message's state journal and its
 * format (queue_journal.c, docs/delivery.md), and the backends that store
 * them, tables of functions: queue_fs (files, queue_fs.c), queue_wal
 * (write-ahead segments, then the same files, queue_wal*.c) and queue_null
 * (accepts and keeps nothing, queue_null.c). It knows no protocol: what an
 * envelope is comes from src/mail/envelope.h, what to do with it from qmgr.
 */
#ifndef INDIMAIL_QUEUE_H
#define INDIMAIL_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "../lib/batch.h"
#include "../lib/buf.h"
#include "../mail/envelope.h"
#include "../mail/msg_edit.h"

#define QUEUE_ID_LEN	ENVELOPE_ID_LEN
#define QUEUE_MAX	64

/*
 * The hard ceiling of an envelope (every line up to and including the empty
 * one, docs/queue.md). The SMTP side refuses a recipient or a message that
 * would exceed it before its 250, the writer never writes more, and the
 * reader reads no further: whatever was accepted can be read back.
 */
#define QUEUE_ENVELOPE_MAX	(4 * 1024 * 1024)
/*
 * A queue file's mode: QUEUE_FILE_MODE once complete. The fs backend
 * writes a group's files in place in mess/ with the owner's execute bit
 * set too (QUEUE_FILE_WRITING) and clears it once their data are durable
 * (docs/queue.md): a file with that bit is being written, or its writer
 * died; no reader takes it for a message.
 */
#define QUEUE_FILE_MODE		0640
#define QUEUE_FILE_WRITING	(QUEUE_FILE_MODE | 0100)
#define QUEUE_FILE_INCOMPLETE(mode)	(((mode) & 0100) != 0)

/* The pieces of a message a write takes: the DKIM signature, the trace
 * fields above our Received, Received with the edited header, the body's
 * pieces. */
#define QUEUE_PIECES_MAX	(MSG_EDIT_PIECES_MAX + 3)

struct queue_backend;

/* `count` queues under one path, each hash-split into `split` folders. */
struct queue_set {
	char		*path;
	int		 count;
	int		 split;
	int		 inflight[QUEUE_MAX];	/* fs: writes running, per queue */
	int		 next;			/* fs: round-robin tie breaker */
	struct batcher	 writer;	/* group commit (each backend's) */
	const struct queue_backend *backend;
	/* the wal backend's state, and whom it
	 * tells of a message once the queue manager may see it: 0 told (or
	 * not to be told), -1 would block (the backend tries again later). */
	struct queue_wal *wal;
	int		(*announce)(void *arg, int queue, const char *id);
	void		*announce_arg;
};

/* A message in the queue: its envelope and where it lies. */
struct queue_item {
	struct envelope	 env;
	char		*path;		/* the message file */
	char		*journal;	/* its state journal */
	int		 no_journal;	/* 1: found missing by journal_read and
					 * not appended to since, so remove
					 * need not unlink it (atomic) */
	int		 queue;
	size_t		 body_offset;	/* where the message starts in the file */
	size_t		 size;		/* message bytes */
	int		 shared;	/* the file holds more after them (a
					 * segment): read size bytes, not to
					 * the end */
};

/* What a message's state journal says (queue_journal.c). */
struct queue_journal {
	unsigned char	*final;		/* per recipient: 1 if d, b or x */
	int		 hold;
	int		 attempts;
	long long	 retry_at;	/* Unix time of the next try, 0: none */
};

typedef void (*queue_write_cb)(void *arg, int ok, const char *error,
	    double seconds, int queue);
enum { QUEUE_WRITE_DONE, QUEUE_WRITE_PENDING };

/*
 * A storage backend. Every function but write may block: callers run them
 * on the thread pool (or in a tool). write returns QUEUE_WRITE_PENDING and
 * calls cb on the loop once the envelope and the message, given as pieces
 * written in order (at most QUEUE_PIECES_MAX; the array is copied, the
 * bytes must stay untouched until then), are durable, or QUEUE_WRITE_DONE without calling cb when
 * it had nothing to wait for. read and scan fill items to queue_item_free.
 */
struct queue_backend {
	const char	*name;
	int	(*write)(uv_loop_t *, struct queue_set *,
		    const struct envelope *, const struct msg_piece *,
		    size_t npieces, queue_write_cb, void *arg);
	int	(*read)(const struct queue_set *, int queue, const char *id,
		    struct queue_item *);
	int	(*scan)(const struct queue_set *,
		    int (*fn)(void *, struct queue_item *), void *arg);
	/* Appends journal records (queue_journal_*) with one write. */
	int	(*journal_append)(struct queue_item *, const struct buf *);
	int	(*journal_flush)(const struct queue_item *);
	int	(*journal_read)(struct queue_item *, struct queue_journal *);
	/* Out of the live queue in one step; *newpath: where it is now. */
	int	(*retire)(const struct queue_set *, const struct queue_item *,
		    char **newpath);
	/* The message, then its journal; 0 if the message is gone. */
	int	(*remove)(const struct queue_item *);

	/* issue 14 item 2 (bounded active set) */
	/* Calls fn with the queue and id of every message, reading no file;
	 * NULL: scan gives them. How many, or -1 when fn asked to stop. */
	int	(*list)(const struct queue_set *,
		    int (*fn)(void *, int queue, const char *id), void *arg);
	/*
	 * announces: the backend calls the set's
	 * announce itself, later than the write's cb (the caller must not
	 * tell the queue manager at cb). busy: work still running after the
	 * last cb (a worker waits for it before it exits); NULL: none.
	 */
	int	 announces;
	int	(*busy)(const struct queue_set *);

	/*
	 * Calls fn with every message acknowledged (its 250 went out) that
	 * the queue manager may not have been told of yet, read from where it
	 * lies (the item's path: the file it is in; fn may take the item, the
	 * backend frees what is left). NULL: none (queue_fs tells it before
	 * the 250). How many, or -1 when fn asked to stop. Blocks; reads only.
	 */
	int	(*unsettled)(const struct queue_set *,
		    int (*fn)(void *, struct queue_item *), void *arg);
};

extern const struct queue_backend queue_fs;
extern const struct queue_backend queue_null;
/* queue_wal.c: write-ahead segments, message files checkpointed behind. */
extern const struct queue_backend queue_wal;

/* queue_segment.c: messages kept in the wal's segments, never written out. */
extern const struct queue_backend queue_segment;
/* Removes sealed segments whose records are all dead. Blocks. */
void	queue_segment_sweep(const struct queue_set *);
/*
 * queue_segment_compact.c: the live records of a segment that takes no
 * more records, once it has been idle long enough, written out as message
 * files in mess/ so that the segment can go (docs/queue.md "Compaction").
 * The caller (the queue manager) makes sure that nothing reads or removes
 * those messages meanwhile: a message is moved only while no copy of its
 * item is held anywhere.
 */
struct queue_move {
	int		 queue;
	char		 id[QUEUE_ID_LEN + 1];
	int		 moved;		/* its file in mess/, its record dead */
};
struct queue_moves {
	struct queue_move *m;
	size_t		 n, cap;
	size_t		 segments;	/* segments they come from */
};
/* Up to max messages to move, appended to mv: of the segments as the
 * queue_segment_sweep just before read them. Blocks. */
void	queue_segment_compactable(size_t max, struct queue_moves *mv);
/* Moves mv's messages; sets each one's moved; how many. Blocks. */
size_t	queue_segment_move(const struct queue_set *, struct queue_moves *mv);
void	queue_moves_free(struct queue_moves *);
/*
 * queue_wal_recover.c: writes the message files of every record of the
 * segments of one dead writer (pid), or (pid 0) of every writer no longer
 * running, that were not checkpointed yet, then removes the segments.
 * found (may be NULL) is told of every message it moved into mess/.
 * Blocks; returns how many messages it moved. Run it before
 * queue_clean_tmp: a checkpointed message may still wait in tmp/. Does
 * nothing when the set's backend is queue_segment: its segments are where
 * its messages live. Never writes out an id in a segment's dead list.
 */
int	queue_wal_recover(const struct queue_set *, long pid,
	    void (*found)(void *, int queue, const char *id), void *arg);
/* Whether tmp/<pid>.* or wal/<pid>.* belongs to a process still running. */
int	queue_writer_alive(const char *name);
/* Whether the process that made queue id `id` still runs (or is us). */
int	queue_id_writer_alive(const char *id);

/*
 * The backend a configuration's queue.backend names (enum
 * queue_backend_kind of src/mail/config.h): what the workers write with.
 */
const struct queue_backend *queue_backend_of(int kind);
/* Creates the folders; the backend is queue_fs. */
int	queue_set_init(struct queue_set *, const char *path, int count,
	    int split, struct buf *err);
void	queue_set_free(struct queue_set *);
void	queue_new_id(char out[QUEUE_ID_LEN + 1]);
int	queue_hash(const char *id, int split);
/* fs: the queue of a new message (wal and segment pick one per batch). */
int	queue_pick(struct queue_set *);
/*
 * Removes tmp/ leftovers: those of one dead pid, or (pid 0) those of every
 * writer that is no longer running.
 */
int	queue_clean_tmp(const struct queue_set *, long pid);
/* Removes what done/ still holds; returns how many. */
int	queue_clean_done(const struct queue_set *);

/* queue_envelope.c: the envelope in front of the message. */
void	queue_envelope_format(const struct envelope *, struct buf *);
/* Bytes queue_envelope_format would write, and those of one recipient. */
size_t	queue_envelope_size(const struct envelope *);
size_t	queue_envelope_rcpt_size(const char *rcpt, const char *orcpt,
	    int local);
/* Fills e (to envelope_free) and *body_offset; 0 or -1. */
int	queue_envelope_parse(const char *, size_t, struct envelope *,
	    size_t *body_offset);
void	queue_item_free(struct queue_item *);

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

/* queue_journal.c: the records of a message's state journal. */
void	queue_journal_final(struct buf *, char kind, size_t rcpt);
void	queue_journal_hold(struct buf *, int hold);
void	queue_journal_retry(struct buf *, int attempts, long long at);
int	queue_journal_append(struct queue_item *, const struct buf *);
int	queue_journal_flush(const struct queue_item *);
int	queue_journal_read(struct queue_item *, struct queue_journal *);
/* A removed message's journal, unless it is known to have none. */
void	queue_journal_remove(const struct queue_item *);

/* The `queue list` line of one message (recipient lines follow). */
void	queue_format_entry(struct buf *, const char *id, long long age,
	    size_t size, const char *sender, int held);
#define QUEUE_LIST_HEADER \
	"ID                       AGE      SIZE  SENDER / RECIPIENTS\n"

/*
 * queue_mailq.c: Postfix's mailq format. Each message: its line (status
 * ' ', '*' being delivered or '!' held; the header before the first),
 * then queue_mailq_rcpt per recipient not yet final (*last_why: NULL at
 * each message; a reason is printed once for the recipients it repeats
 * for), then the total ("Mail queue is empty" for none).
 */
#define QUEUE_MAILQ_HEADER "-Queue ID-  --Size-- ----Arrival Time---- " \
	"-Sender/Recipient-------\n"
void	queue_mailq_message(struct buf *, int first, const char *id,
	    char status, size_t size, time_t received, const char *sender);
void	queue_mailq_rcpt(struct buf *, const char *rcpt, const char *why,
	    const char **last_why);
void	queue_mailq_total(struct buf *, unsigned long long bytes,
	    size_t count);

/* The set's backend at work. */
int	queue_write(uv_loop_t *, struct queue_set *, const struct envelope *,
	    const struct msg_piece *, size_t npieces, queue_write_cb,
	    void *arg);
int	queue_scan(const struct queue_set *,
	    int (*fn)(void *, struct queue_item *), void *arg);
/* The backend's list, else its scan: queue and id of every message. */
int	queue_list(const struct queue_set *,
	    int (*fn)(void *, int queue, const char *id), void *arg);

#endif
