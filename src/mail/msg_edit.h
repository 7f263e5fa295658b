/*
 * [src/mail: what every part of the server knows about mail, whatever the
 * protocol; it includes only src/lib. See docs/architecture.md.]
 *
 * msg_edit: the edits a policy makes to a message before it is queued,
 * kept beside the message as received (never a second copy of it): the
 * header section as a list of fields (spans of the message, or fields
 * added), and texts to insert into the body at given offsets (mime_text.c
 * finds them). At the queue write the edited header section is built (it
 * is small and bounded) and the body goes out as pieces: spans of the
 * message and the inserted texts, in order (msg_edit_pieces). A body
 * filter (body_filter.c) adds replaced ranges: [off, off+len) of the
 * message written as a text instead; they never overlap.
 */
#ifndef INDIMAIL_MSG_EDIT_H
#define INDIMAIL_MSG_EDIT_H

#include <stddef.h>

#include "../lib/buf.h"

#define MSG_EDIT_NAME_MAX	76	/* a field name, bytes */
#define MSG_EDIT_VALUE_MAX	4096	/* a value, folds included */
#define MSG_EDIT_LINE_MAX	998	/* one line of a value (RFC 5322 2.1.1) */
#define MSG_EDIT_ADDED_MAX	(64 * 1024)	/* all added fields, bytes */
#define MSG_EDIT_FIELDS_MAX	2048	/* fields of the edited section */
#define MSG_EDIT_INSERTS_MAX	16	/* body insertions */
#define MSG_EDIT_REPLACES_MAX	256	/* replaced ranges of the body */
#define MSG_EDIT_PIECES_MAX	\
	(2 * (MSG_EDIT_INSERTS_MAX + MSG_EDIT_REPLACES_MAX) + 1)

/* A span of the message, or of an inserted text. */
struct msg_piece {
	const char	*data;
	size_t		 len;
};

struct msg_field {
	size_t		 off, len;	/* the raw field in the message, LF included */
	size_t		 name_len;
	char		*own;		/* an added one: "Name: value\n"; else NULL */
};

struct msg_insert {
	size_t		 off;		/* where in the message */
	struct buf	 text;
};

struct msg_replace {
	size_t		 off, len;	/* what of the message */
	struct buf	 text;		/* is written as this */
};

/* Replaced ranges in message order, and their text bytes. */
struct msg_replaces {
	struct msg_replace *r;
	size_t		 n, cap;
	size_t		 bytes;
};

struct msg_edit {
	int		 started;	/* f[] holds the header section */
	int		 header_changed;
	struct msg_field *f;
	size_t		 n, cap;
	size_t		 added;		/* bytes of added fields */
	struct msg_insert ins[MSG_EDIT_INSERTS_MAX];
	size_t		 nins;
	struct msg_replaces rep;
	struct buf	 trace;		/* fields above our Received (RFC 7208 9.1) */
	/* a DKIM signature asked for (msg:dkim_sign), made at the queue write */
	char		*dkim_domain;		/* NULL: none */
	int		 dkim_fail_pass;	/* unsigned if signing fails */
};

void	msg_edit_init(struct msg_edit *);
void	msg_edit_free(struct msg_edit *);
/* NULL if name[0..n) is a field name (RFC 5322 3.6.8), else why not. */
const char *msg_edit_check_name(const char *name, size_t n);
/* NULL if v[0..n) is one line or properly folded (LF then SP/HT). */
const char *msg_edit_check_value(const char *v, size_t n);

/*
 * The header edits, on the message's header section msg[0..hlen). Each
 * returns NULL or why it was refused (nothing changed then). Names and
 * values must have passed the checks above.
 */
const char *msg_edit_add(struct msg_edit *, const char *msg, size_t hlen,
	    const char *name, size_t nlen, const char *v, size_t vlen,
	    int append);
/*
 * Adds "Name: value" above the Received field this server writes, where
 * RFC 7208 9.1 (Received-SPF) and RFC 8601 (Authentication-Results) want
 * a receiver's trace fields; each new one goes on top. They are this
 * server's own: the header edits above never see them.
 */
const char *msg_edit_add_trace(struct msg_edit *, const char *name,
	    size_t nlen, const char *v, size_t vlen);
/* Removes every field named name; *count: how many. */
const char *msg_edit_remove(struct msg_edit *, const char *msg, size_t hlen,
	    const char *name, size_t nlen, size_t *count);
/* The first field named name gets the value, the others go; none: added
 * at the top. *count: how many were there. */
const char *msg_edit_replace(struct msg_edit *, const char *msg, size_t hlen,
	    const char *name, size_t nlen, const char *v, size_t vlen,
	    size_t *count);
/* Texts inserted at off (several at one offset keep their order). */
const char *msg_edit_insert(struct msg_edit *, size_t off, const char *t,
	    size_t n);

/*
 * Adds [off, off+len) -> t[0..n) to a list built in message order (the
 * range starts at or after the last one's end; one that starts right there
 * joins it). NULL, or why not: more than MSG_EDIT_REPLACES_MAX ranges or
 * more than max text bytes in all.
 */
const char *msg_replaces_add(struct msg_replaces *, size_t off, size_t len,
	    const char *t, size_t n, size_t max);
void	msg_replaces_free(struct msg_replaces *);
/*
 * Moves the ranges of r into the edit (r is left empty). NULL, or why not
 * (nothing moved then): a range overlaps one kept already, or the ranges
 * would pass MSG_EDIT_REPLACES_MAX or max text bytes in all.
 */
const char *msg_edit_replace_body(struct msg_edit *, struct msg_replaces *r,
	    size_t max);

/* Appends the edited header section (no empty line) to out. */
void	msg_edit_header(const struct msg_edit *, const char *msg,
	    struct buf *out);
/*
 * The message from offset from on as pieces (spans of msg, inserted texts
 * and replacing ones), into out[MSG_EDIT_PIECES_MAX]; returns how many.
 * An insertion inside a replaced range comes right after its text.
 */
size_t	msg_edit_pieces(const struct msg_edit *, const char *msg, size_t len,
	    size_t from, struct msg_piece *out);

#endif
