/*
 * [src/mail: what every part of the server knows about mail, whatever the
 * protocol; it includes only src/lib. See docs/architecture.md.]
 *
 * body_codec: a text part's body read as decoded chunks, and texts encoded
 * back into the part's transfer encoding, for msg:filter_body
 * (body_filter.c). A reader holds one chunk decoded at a time (at most
 * BODY_CHUNK_MAX bytes, cut after a line end when the chunk has one), never
 * the whole part; each chunk knows the encoded range [from, to) it came
 * from, so a replaced chunk becomes one replaced range of the message.
 */
#ifndef INDIMAIL_BODY_CODEC_H
#define INDIMAIL_BODY_CODEC_H

#include <stddef.h>

#include "../lib/buf.h"
#include "mime_text.h"

#ifndef BODY_CHUNK_MAX	/* fuzz/Makefile makes it small, to reach the cuts */
#define BODY_CHUNK_MAX		(64 * 1024)	/* decoded bytes per chunk */
#endif
#define BODY_LINE_ENCODED	76	/* QP and base64 output lines */

/* The reader of one part's encoded body m[b..e). */
struct body_reader {
	const char	*m;
	size_t		 b, e;
	enum mime_cte	 cte;		/* 7bit, 8bit, binary, qp or base64 */
	size_t		 pos;		/* where the next chunk's encoding starts */
	size_t		 skip;		/* base64: bytes of pos's quantum given */
	int		 done;
	struct buf	 dec;		/* qp, base64: the chunk decoded */
};

struct body_chunk {
	const char	*data;		/* decoded */
	size_t		 len;
	size_t		 from, to;	/* its encoding in the message */
	size_t		 npre;		/* base64: bytes of from's quantum before
					 * data (at data - npre) */
	int		 last;		/* the part's final chunk */
};

void	body_reader_init(struct body_reader *, const char *m, size_t b,
	    size_t e, enum mime_cte);
/* The next chunk (a part has at least one, maybe empty); 0 when done. */
int	body_reader_next(struct body_reader *, struct body_chunk *);
void	body_reader_free(struct body_reader *);

/*
 * Appends t[0..n) quoted-printable (RFC 2045 6.7): any byte, lines of at
 * most 76 with soft breaks, and a '-' starting a line encoded, so no line
 * it writes can be a boundary delimiter.
 */
void	body_qp_encode(struct buf *out, const char *t, size_t n);

/* A base64 encoder fed in pieces: lines of 76. */
struct body_b64 {
	unsigned char	 tail[3];
	size_t		 ntail, col;
};

void	body_b64_feed(struct body_b64 *, struct buf *out, const char *t,
	    size_t n);
/* The last group (padded) and a final LF. */
void	body_b64_end(struct body_b64 *, struct buf *out);

#endif
