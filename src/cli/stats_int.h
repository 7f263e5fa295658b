/*
 * stats_int: what `indimail stats` gathers from the log lines
 * (stats_feed.c) and its two writers read (stats_text.c, stats_html.c).
 * Memory is bounded: the top lists are stats_count tables, delays a
 * fixed histogram (exact seconds for the first hour, minutes after).
 */
#ifndef INDIMAIL_STATS_INT_H
#define INDIMAIL_STATS_INT_H

#include <stdio.h>
#include <time.h>

#include "../lib/logparse.h"
#include "stats_count.h"

#define STATS_HOURS		24
#define STATS_DELAY_EXACT	3600		/* seconds counted one by one */
#define STATS_DELAY_DAYS	30		/* then minutes, up to this */
#define STATS_DELAY_BUCKETS \
	(STATS_DELAY_EXACT + STATS_DELAY_DAYS * 24 * 60)

enum stats_kind { SK_RECEIVED, SK_DELIVERED, SK_DEFERRED, SK_BOUNCED,
	SK_REJECTED, SK_KINDS };

enum stats_list { SL_SENDERS, SL_RCPTS, SL_SENDER_DOMAINS, SL_RCPT_DOMAINS,
	SL_CLIENTS, SL_POLICIES, SL_REASONS, SL_LISTS };

struct stats {
	time_t		 since;		/* lines before it are skipped */
	time_t		 first, last;	/* of the lines counted */
	long long	 lines, unreadable;
	long long	 total[SK_KINDS];
	long long	 hour[STATS_HOURS][SK_KINDS];
	long long	 connections, bytes, tempfailed, bounce_notices;
	long long	 discarded;
	struct stats_count list[SL_LISTS];
	long long	 delay[STATS_DELAY_BUCKETS];
	long long	 delays, delay_max;
};

extern const char *const stats_list_title[SL_LISTS];
extern const char *const stats_kind_name[SK_KINDS];

void	stats_feed(struct stats *, const struct logrec *);
/* Delay (seconds) at percentile p (0-100) by nearest rank; -1 if none. */
long long stats_delay_at(const struct stats *, int p);
/* Deliveries whose delay is in [from, to) seconds. */
long long stats_delay_between(const struct stats *, long long from,
	    long long to);
void	stats_text(FILE *, const struct stats *, size_t top);
int	stats_html(FILE *, const struct stats *, size_t top);
void	stats_free(struct stats *);

#endif
