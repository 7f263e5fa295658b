/*
 * queue_select: which queued messages an admin command means, as the text
 * the control socket carries after the command's name ("hold ALL
 * domain=example.test older=7200"). Tokens are separated by spaces: queue
 * ids, ALL, and the filters from=ADDR (<> for the null sender), to=ADDR
 * and domain=DOMAIN (of a recipient not yet final) and older=SECONDS. Ids
 * name messages; filters narrow them, or every message when no id is
 * given. Pure: the parser and the match read no state (fuzz_control.c).
 */
#ifndef INDIMAIL_QUEUE_SELECT_H
#define INDIMAIL_QUEUE_SELECT_H

#include <stddef.h>

#include "../lib/buf.h"
#include "../mail/envelope.h"

#define QUEUE_SELECT_IDS_MAX	64	/* ids in one control request */
#define QUEUE_SELECT_VALUE_MAX	320	/* bytes of an address or domain */
#define QUEUE_SELECT_AGE_MAX	(100LL * 365 * 86400)	/* older= ceiling */

struct queue_select {
	char		 ids[QUEUE_SELECT_IDS_MAX][ENVELOPE_ID_LEN + 1];
	size_t		 nids;
	int		 all;		/* ALL was given */
	char		*from;		/* owned; "" for the null sender */
	char		*to;
	char		*domain;
	long long	 older;		/* seconds, 0: no age filter */
};

/* Fills s (to queue_select_free) from args; 0, or -1 with err set. */
/*
 * An age: "90" or "90s", "30m", "2h", "3d", "1w" → seconds (0 allowed), at
 * most QUEUE_SELECT_AGE_MAX; -1 if not that. `--older-than`, the admin
 * API's older_than, and the ages `queue list` prints.
 */
long long queue_age_parse(const char *s);
int	queue_select_parse(const char *args, struct queue_select *s,
	    struct buf *err);
void	queue_select_free(struct queue_select *);
/* Neither an id, nor ALL, nor a filter: the command said no message. */
int	queue_select_none(const struct queue_select *);
/*
 * Do the filters keep this message? state: per recipient, a recipient is
 * final when its state is `final` (state NULL: none is); age in seconds.
 */
int	queue_select_match(const struct queue_select *,
	    const struct envelope *, const unsigned char *state,
	    unsigned char final, long long age);
/* The filters back in request form (" from=a to=b"), for the log. */
void	queue_select_filters(const struct queue_select *, struct buf *);

#endif
