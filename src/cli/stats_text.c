/*
 * stats_text: the plain-text report of `indimail stats`, in the order of
 * the issue that asked for it: totals, delays, the top lists, rejections,
 * then traffic per hour of the day (UTC). Values from the log are printed
 * with control bytes as '?', so a hostile address cannot drive a terminal.
 */
#include <stdlib.h>
#include <string.h>

#include "stats_int.h"

/* Percentiles of the delivery delay the report gives. */
static const int percentiles[] = { 50, 90, 99 };

static void
safe(FILE *out, const char *s)
{
	for (; *s; s++)
		fputc((unsigned char)*s < ' ' || *s == 127 ? '?' : *s, out);
}

static void
stamp(FILE *out, time_t t)
{
	char b[32];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fputs(b, out);
}

static void
totals(FILE *out, const struct stats *st)
{
	fputs("Messages\n", out);
	fprintf(out, "  %-12s %8lld  (%lld bytes)\n", "received",
	    st->total[SK_RECEIVED], st->bytes);
	fprintf(out, "  %-12s %8lld\n", "delivered", st->total[SK_DELIVERED]);
	fprintf(out, "  %-12s %8lld  (attempts)\n", "deferred",
	    st->total[SK_DEFERRED]);
	fprintf(out, "  %-12s %8lld  (recipients; %lld bounce messages sent)\n",
	    "bounced", st->total[SK_BOUNCED], st->bounce_notices);
	fprintf(out, "  %-12s %8lld  (%lld temporary)\n", "rejected",
	    st->total[SK_REJECTED], st->tempfailed);
	fprintf(out, "  %-12s %8lld\n", "discarded", st->discarded);
	fprintf(out, "  %-12s %8lld\n", "connections", st->connections);
}

static void
delays(FILE *out, const struct stats *st)
{
	fputs("\nDelivery delay (queue entry to delivery, seconds)\n", out);
	if (st->delays == 0) {
		fputs("  no deliveries with a delay\n", out);
		return;
	}
	fputs(" ", out);
	for (size_t i = 0; i < sizeof(percentiles) / sizeof(*percentiles); i++)
		fprintf(out, " p%d %lld ", percentiles[i],
		    stats_delay_at(st, percentiles[i]));
	fprintf(out, " max %lld  (%lld deliveries)\n", st->delay_max,
	    st->delays);
}

static void
list(FILE *out, const struct stats *st, enum stats_list which, size_t top)
{
	const struct stats_count *c = &st->list[which];
	size_t n;
	struct stats_entry *e = stats_count_top(c, top, &n);

	fprintf(out, "\n%s\n", stats_list_title[which]);
	if (n == 0)
		fputs("  none\n", out);
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "  %8lld  ", e[i].n);
		safe(out, e[i].key);
		fputc('\n', out);
	}
	if (c->pruned)
		fprintf(out, "  (%lld rare keys dropped to bound memory: counts "
		    "may be low by up to %lld)\n", c->pruned, c->floor);
	free(e);
}

static void
hours(FILE *out, const struct stats *st)
{
	fputs("\nPer hour (UTC)\n  hour", out);
	for (int k = 0; k < SK_KINDS; k++)
		fprintf(out, " %10s", stats_kind_name[k]);
	fputc('\n', out);
	for (int h = 0; h < STATS_HOURS; h++) {
		fprintf(out, "  %02d  ", h);
		for (int k = 0; k < SK_KINDS; k++)
			fprintf(out, " %10lld", st->hour[h][k]);
		fputc('\n', out);
	}
}

void
stats_text(FILE *out, const struct stats *st, size_t top)
{
	fputs("indimail stats: ", out);
	if (st->lines) {
		stamp(out, st->first);
		fputs(" .. ", out);
		stamp(out, st->last);
	} else
		fputs("no log lines", out);
	fprintf(out, " (%lld lines, %lld not log lines)\n\n", st->lines,
	    st->unreadable);
	totals(out, st);
	delays(out, st);
	for (int i = 0; i < SL_LISTS; i++)
		list(out, st, (enum stats_list)i, top);
	hours(out, st);
}
