/*
 * [src/mail: what every part of the server knows about mail, whatever the
 * protocol; it includes only src/lib. See docs/architecture.md.]
 *
 * body_filter: msg:filter_body's walk. Every text leaf part of the chosen
 * types outside multipart/signed and multipart/encrypted is read as
 * decoded chunks (body_codec.h) and each is offered to a function, which
 * keeps it or gives a replacement. A replacement is encoded back in the
 * part's own Content-Transfer-Encoding and recorded as a replaced range of
 * the message (struct msg_replaces); a kept chunk costs nothing. Headers,
 * boundaries and other parts are never touched. Nothing is applied here:
 * the caller moves the ranges into its msg_edit when the walk succeeded.
 */
#ifndef INDIMAIL_BODY_FILTER_H
#define INDIMAIL_BODY_FILTER_H

#include <stddef.h>

#include "../lib/buf.h"
#include "body_codec.h"
#include "msg_edit.h"

#define BODY_FILTER_TYPES_MAX	16	/* types a call may name */
#define BODY_LINE_MAX		998	/* 7bit/8bit lines (RFC 5322 2.1.1) */

/* The part a chunk comes from (read-only for the function). */
struct body_part {
	const char	*type;		/* "text/plain", lowercase */
	const char	*charset;	/* as declared, or "" */
	int		 index;		/* 1, 2, ...: filtered parts in order */
	enum mime_cte	 cte;
};

/*
 * The function: 0 keeps the chunk, 1 replaces it by out's bytes (LF line
 * ends), -1 stops the walk (its error is the caller's to keep).
 */
typedef int (*body_filter_fn)(void *arg, const struct body_part *,
	    const char *chunk, size_t n, int last, struct buf *out);

/*
 * msg:parts(): set as leaf, the walk lists every leaf entity instead (any
 * type, inside signed and encrypted multiparts too), with the depth of
 * signed/encrypted multiparts around it, and filters nothing.
 */
typedef void (*body_leaf_fn)(void *arg, const struct mime_entity *,
	    size_t body_len, int sealed);

struct body_filter {
	/* in */
	const char	*types[BODY_FILTER_TYPES_MAX];
	size_t		 ntypes;	/* 0: text/plain and text/html */
	size_t		 max;		/* replacement bytes in all */
	body_filter_fn	 fn;
	body_leaf_fn	 leaf;		/* instead of fn: list the leaves */
	void		*arg;
	/* out */
	struct msg_replaces rep;
	size_t		 parts, changed;	/* parts filtered, changed */
	size_t		 sealed;	/* signed/encrypted entities left alone */
	struct buf	 err;		/* why it failed (not fn's errors) */
	/* the walk */
	const char	*m;
	size_t		 len;
	const char	*bounds[MIME_DEPTH_MAX];
	size_t		 nbounds;
	int		 in_sealed;	/* leaf walk: inside signed/encrypted */
	struct buf	 out, enc;
};

void	body_filter_init(struct body_filter *);
void	body_filter_free(struct body_filter *);
/* Walks m[0..len). 0, or -1: fn stopped it, or err says why. */
int	body_filter_run(struct body_filter *, const char *m, size_t len);

#endif
