/*
 * [src/mail: what every part of the server knows about mail, whatever the
 * protocol; it includes only src/lib. See docs/architecture.md.]
 *
 * header: the one walker over a message's header section (RFC 5322 2.2),
 * for a message held in memory with LF line ends (as smtp_data stores it
 * and the queue keeps it). Pure functions over (msg, len): no state, no
 * allocation except into a caller's struct buf. See header.c for the rules
 * followed and what is tolerated.
 */
#ifndef INDIMAIL_HEADER_H
#define INDIMAIL_HEADER_H

#include <stddef.h>

#include "../lib/buf.h"

/* One field; both spans point into the message and are not NUL-terminated. */
struct header_field {
	const char	*name;		/* up to the colon, or the whole line */
	size_t		 name_len;
	const char	*value;		/* raw: after the colon, with folds, */
	size_t		 value_len;	/* without the field's final LF */
	int		 colon;		/* 0: a line without a colon, value "" */
};

/*
 * Reads the field starting at *pos and moves *pos to the next one.
 * Returns 0 (nothing read) at the empty line ending the section or at the
 * end of msg[0..len).
 */
int	header_next(const char *msg, size_t len, size_t *pos,
	    struct header_field *);
/* 1 if the field's name is name[0..n), ASCII case-insensitive. */
int	header_name_is(const struct header_field *, const char *name, size_t n);
/*
 * Writes the raw value v[0..n) unfolded (LFs removed), then trimmed of SP
 * and HT at both ends, into dst, which has room for n bytes; returns the
 * length written.
 */
size_t	header_unfold(char *dst, const char *v, size_t n);
/* The same into out (replacing what it held). */
void	header_value(struct buf *out, const struct header_field *);
/*
 * Finds the empty line ending the header section of msg[0..len).
 * 1: *end is its offset: the section is msg[0..*end), the body starts at
 * *end + 1. 0: no empty line (yet); *end = len, all of it is header.
 * from: 0, or the *end of an earlier call on a shorter prefix of the same
 * message, so a growing message is searched once in all.
 */
int	header_end(const char *msg, size_t len, size_t from, size_t *end);
/*
 * Counts the fields named name (with a colon) in the header section of
 * msg[0..len); if value is not NULL, only those whose unfolded, trimmed
 * value equals it (ASCII case-insensitive).
 */
size_t	header_count(const char *msg, size_t len, const char *name,
	    const char *value);

#endif
