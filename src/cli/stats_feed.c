/*
 * stats_feed: one parsed log line into the report's counts. Which events
 * count as what: queued = received (size, from, every to=); delivered,
 * deferred (each attempt), bounced (each recipient failed for good);
 * reject (a refusal by the server itself) and verdict with action reject
 * or tempfail (a policy's) = rejected; connect = a client address.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"
#include "stats_int.h"

const char *const stats_list_title[SL_LISTS] = { "Top senders",
	"Top recipients", "Top sender domains", "Top recipient domains",
	"Top client addresses (connections)", "Rejections by policy",
	"Top reject reasons" };
const char *const stats_kind_name[SK_KINDS] = { "received", "delivered",
	"deferred", "bounced", "rejected" };

static long long
num(const struct logrec *r, const char *key)
{
	const char *v = logrec_get(r, key);

	return v ? strtoll(v, NULL, 10) : 0;
}

static void
count(struct stats *st, const struct logrec *r, enum stats_kind k)
{
	struct tm tm;

	gmtime_r(&r->when, &tm);
	st->total[k]++;
	st->hour[tm.tm_hour][k]++;
}

/* An address and its domain (lower case); "" is the null sender "<>". */
static void
address(struct stats *st, enum stats_list who, enum stats_list dom,
    const char *a)
{
	const char *at = strrchr(a, '@');
	struct buf d = BUF_INIT;

	stats_count_add(&st->list[who], *a ? a : "<>", 1);
	if (at == NULL || at[1] == '\0')
		return;
	for (at++; *at; at++)
		buf_appendc(&d, (char)tolower((unsigned char)*at));
	stats_count_add(&st->list[dom], buf_cstr(&d), 1);
	buf_free(&d);
}

static void
queued(struct stats *st, const struct logrec *r)
{
	const char *from = logrec_get(r, "from");

	count(st, r, SK_RECEIVED);
	st->bytes += num(r, "size");
	address(st, SL_SENDERS, SL_SENDER_DOMAINS, from ? from : "");
	for (size_t i = 0; i < r->nf; i++)
		if (strcmp(r->f[i].key, "to") == 0)
			address(st, SL_RCPTS, SL_RCPT_DOMAINS, r->f[i].val);
}

static void
delivered(struct stats *st, const struct logrec *r)
{
	long long d = num(r, "delay");
	long long b;

	count(st, r, SK_DELIVERED);
	if (logrec_get(r, "delay") == NULL || d < 0)
		return;
	b = d < STATS_DELAY_EXACT ? d :
	    STATS_DELAY_EXACT + (d - STATS_DELAY_EXACT) / 60;
	st->delay[b < STATS_DELAY_BUCKETS ? b : STATS_DELAY_BUCKETS - 1]++;
	st->delays++;
	if (d > st->delay_max)
		st->delay_max = d;
}

/* A refusal: by a policy (policy=NAME) or by the server ("smtp CMD"). */
static void
rejected(struct stats *st, const struct logrec *r, const char *policy,
    const char *reason)
{
	count(st, r, SK_REJECTED);
	if (reason[0] == '4')
		st->tempfailed++;
	stats_count_add(&st->list[SL_POLICIES], policy, 1);
	stats_count_add(&st->list[SL_REASONS], reason, 1);
}

static void
verdict(struct stats *st, const struct logrec *r)
{
	const char *action = logrec_get(r, "action");
	const char *policy = logrec_get(r, "policy");
	struct buf why = BUF_INIT;

	if (action == NULL || (strcmp(action, "reject") != 0 &&
	    strcmp(action, "tempfail") != 0))
		return;
	buf_printf(&why, "%lld %s %s", num(r, "code"),
	    logrec_get(r, "status") ? logrec_get(r, "status") : "",
	    logrec_get(r, "text") ? logrec_get(r, "text") : "");
	rejected(st, r, policy && *policy ? policy : "(unnamed)",
	    buf_cstr(&why));
	buf_free(&why);
}

static void
refused(struct stats *st, const struct logrec *r)
{
	const char *cmd = logrec_get(r, "command");
	const char *reply = logrec_get(r, "reply");
	struct buf who = BUF_INIT;

	buf_printf(&who, "smtp %s", cmd ? cmd : "?");
	rejected(st, r, buf_cstr(&who), reply ? reply : "");
	buf_free(&who);
}

static void
span(struct stats *st, time_t t)
{
	if (st->lines == 0 || t < st->first)
		st->first = t;
	if (t > st->last)
		st->last = t;
	st->lines++;
}

void
stats_feed(struct stats *st, const struct logrec *r)
{
	const char *ev = logrec_get(r, "event");

	if (r->when < st->since)
		return;
	span(st, r->when);
	if (strcmp(ev, "queued") == 0)
		queued(st, r);
	else if (strcmp(ev, "delivered") == 0)
		delivered(st, r);
	else if (strcmp(ev, "deferred") == 0)
		count(st, r, SK_DEFERRED);
	else if (strcmp(ev, "bounced") == 0)
		count(st, r, SK_BOUNCED);
	else if (strcmp(ev, "bounce_queued") == 0)
		st->bounce_notices++;
	else if (strcmp(ev, "discarded") == 0)
		st->discarded++;
	else if (strcmp(ev, "reject") == 0)
		refused(st, r);
	else if (strcmp(ev, "verdict") == 0)
		verdict(st, r);
	else if (strcmp(ev, "connect") == 0 && logrec_get(r, "ip")) {
		st->connections++;
		stats_count_add(&st->list[SL_CLIENTS], logrec_get(r, "ip"), 1);
	}
}

long long
stats_delay_at(const struct stats *st, int p)
{
	long long rank = (p * st->delays + 99) / 100;
	long long seen = 0;

	if (st->delays == 0)
		return -1;
	if (rank < 1)
		rank = 1;
	for (long long b = 0; b < STATS_DELAY_BUCKETS; b++) {
		seen += st->delay[b];
		if (seen >= rank)
			return b < STATS_DELAY_EXACT ? b :
			    STATS_DELAY_EXACT + (b - STATS_DELAY_EXACT) * 60;
	}
	return st->delay_max;
}

long long
stats_delay_between(const struct stats *st, long long from, long long to)
{
	long long n = 0;

	for (long long b = 0; b < STATS_DELAY_BUCKETS; b++) {
		long long s = b < STATS_DELAY_EXACT ? b :
		    STATS_DELAY_EXACT + (b - STATS_DELAY_EXACT) * 60;
		if (s >= from && (to < 0 || s < to))
			n += st->delay[b];
	}
	return n;
}

void
stats_free(struct stats *st)
{
	for (int i = 0; i < SL_LISTS; i++)
		stats_count_free(&st->list[i]);
}
