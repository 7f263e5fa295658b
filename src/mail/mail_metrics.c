/*
 * mail_metrics: see mail_metrics.h. Owns the families' descriptions (their
 * names, help texts, labels and buckets: the list docs/operations.md
 * documents) and the series of bounded labels, resolved once per process.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../lib/batch.h"
#include "mail_metrics.h"

#ifndef INDIMAIL_VERSION
#define INDIMAIL_VERSION "0.13.0-dev"
#endif

/* Room for a stage or a reason label value. */
#define MM_LABEL_MAX	32

const struct metric_family mm_connections = {
	"indimail_connections_total", "SMTP connections accepted, by listener",
	METRIC_COUNTER, { "listener" }, 0, 0, { 0 }, 0 };
const struct metric_family mm_accepted = {
	"indimail_messages_accepted_total", "Messages queued, by listener",
	METRIC_COUNTER, { "listener" }, 0, 0, { 0 }, 0 };
const struct metric_family mm_rejected = {
	"indimail_messages_rejected_total", "SMTP refusals (4xx and 5xx), by "
	"stage, reason (enhanced status) and policy (empty: the core's own)",
	METRIC_COUNTER, { "stage", "reason", "policy" },
	METRIC_DYNAMIC(1) | METRIC_DYNAMIC(2),
	MAIL_METRICS_REJECT_CAP, { 0 }, 0 };
const struct metric_family mm_queue_messages = {
	"indimail_queue_messages", "Messages in the queue manager's table, by "
	"queue and state", METRIC_GAUGE, { "queue", "state" }, 0, 0, { 0 }, 0 };
const struct metric_family mm_deliveries = {
	"indimail_deliveries_total", "Delivery attempts' outcomes per "
	"recipient, by result and destination class", METRIC_COUNTER,
	{ "result", "class" }, 0, 0, { 0 }, 0 };
const struct metric_family mm_delivery_delay = {
	"indimail_delivery_delay_seconds", "Seconds from queue entry to a "
	"recipient's final delivery", METRIC_HISTOGRAM, { NULL }, 0, 0,
	{ 1, 5, 15, 60, 300, 900, 3600, 14400, 86400, 432000 }, 0 };
const struct metric_family mm_hook_duration = {
	"indimail_hook_duration_seconds", "Time a stage's policy hooks took, "
	"by stage", METRIC_HISTOGRAM, { "stage" }, 0, 0,
	{ 100, 500, 1000, 5000, 10000, 50000, 100000, 500000, 1000000,
	  5000000, 30000000 }, 1e-6 };
const struct metric_family mm_dircache = {
	"indimail_directory_cache_lookups_total", "Directory cache lookups, by "
	"result", METRIC_COUNTER, { "result" }, 0, 0, { 0 }, 0 };
const struct metric_family mm_destinations = {
	"indimail_destinations", "Destinations the queue manager knows, by "
	"state", METRIC_GAUGE, { "state" }, 0, 0, { 0 }, 0 };
static const struct metric_family mm_build_info = {
	"indimail_build_info", "The running version (always 1)", METRIC_GAUGE,
	{ "version" }, 0, 0, { 0 }, 0 };
static const struct metric_family mm_start_time = {
	"indimail_start_time_seconds", "Unix time the master started",
	METRIC_GAUGE, { NULL }, 0, 0, { 0 }, 0 };

static const struct metric_family *const all[] = {
	&mm_connections, &mm_accepted, &mm_rejected, &mm_queue_messages,
	&mm_deliveries, &mm_delivery_delay, &mm_hook_duration,
	&batch_size_family, &mm_dircache, &mm_build_info, &mm_start_time,
	&mm_destinations,
};

static const char *const state_names[MM_QUEUE_NSTATES] = {
	"incoming", "active", "deferred", "held" };
static const char *const result_names[MM_NRESULTS] = {
	"delivered", "deferred", "bounced" };
static const char *const class_names[MM_NCLASSES] = {
	"local", "remote", "relay", "route" };
static const char *const cache_names[MM_CACHE_NRESULTS] = {
	"hit", "miss", "negative_hit" };
static const char *const dest_names[MM_DEST_NSTATES] = {
	"up", "suspect", "down", "probing" };

static struct metric queues[MAIL_METRICS_QUEUES_MAX][MM_QUEUE_NSTATES];
static struct metric deliveries[MM_NRESULTS][MM_NCLASSES];
static struct metric cache[MM_CACHE_NRESULTS];
static struct metric dests[MM_DEST_NSTATES];

struct metric
mail_metrics_queue(int queue, enum mm_queue_state st)
{
	char q[16];

	if (queue < 0 || queue >= MAIL_METRICS_QUEUES_MAX) {
		struct metric none = { &mm_queue_messages, NULL };
		return none;
	}
	snprintf(q, sizeof(q), "%d", queue);
	return metrics_once(&queues[queue][st], &mm_queue_messages,
	    (const char *[]){ q, state_names[st] });
}

struct metric
mail_metrics_delivery(enum mm_result r, enum mm_class c)
{
	return metrics_once(&deliveries[r][c], &mm_deliveries,
	    (const char *[]){ result_names[r], class_names[c] });
}

struct metric
mail_metrics_cache(enum mm_cache r)
{
	return metrics_once(&cache[r], &mm_dircache,
	    (const char *[]){ cache_names[r] });
}

struct metric
mail_metrics_destinations(enum mm_dest_state st)
{
	return metrics_once(&dests[st], &mm_destinations,
	    (const char *[]){ dest_names[st] });
}

static void
start_bounded(const char *const *listeners, size_t n, int nqueues)
{
	for (size_t i = 0; i < n; i++) {
		metrics_get(&mm_connections, &listeners[i]);
		metrics_get(&mm_accepted, &listeners[i]);
	}
	for (int q = 0; q < nqueues; q++)
		for (int st = 0; st < MM_QUEUE_NSTATES; st++)
			mail_metrics_queue(q, (enum mm_queue_state)st);
	for (int r = 0; r < MM_NRESULTS; r++)
		for (int c = 0; c < MM_NCLASSES; c++)
			mail_metrics_delivery((enum mm_result)r, (enum mm_class)c);
	for (int r = 0; r < MM_CACHE_NRESULTS; r++)
		mail_metrics_cache((enum mm_cache)r);
	for (int st = 0; st < MM_DEST_NSTATES; st++)
		mail_metrics_destinations((enum mm_dest_state)st);
}

void
mail_metrics_start(const char *const *listeners, size_t n, int nqueues)
{
	metrics_start(all, sizeof(all) / sizeof(all[0]));
	metric_set(metrics_get(&mm_build_info,
	    (const char *[]){ INDIMAIL_VERSION }), 1);
	metric_set(metrics_get(&mm_start_time, NULL), (int64_t)time(NULL));
	start_bounded(listeners, n, nqueues);
}

/* "550 5.7.1 text": 5.7.1; "550 text": 5xx; else the cause itself. */
static void
reason_of(const char *reply, char out[MM_LABEL_MAX])
{
	const char *st = reply + 4;
	size_t n;

	if (!(isdigit((unsigned char)reply[0]) && isdigit((unsigned char)
	    reply[1]) && isdigit((unsigned char)reply[2]) &&
	    (reply[3] == ' ' || reply[3] == '-'))) {
		snprintf(out, MM_LABEL_MAX, "%s", reply);
		return;
	}
	n = strspn(st, "0123456789.");
	if (n >= 5 && n < MM_LABEL_MAX && st[0] == reply[0])
		snprintf(out, MM_LABEL_MAX, "%.*s", (int)n, st);
	else
		snprintf(out, MM_LABEL_MAX, "%cxx", reply[0]);
}

void
mail_metrics_reject(const char *stage, const char *reply, const char *policy)
{
	char st[MM_LABEL_MAX], reason[MM_LABEL_MAX];
	size_t i;

	for (i = 0; stage[i] && i + 1 < sizeof(st); i++)
		st[i] = isalpha((unsigned char)stage[i]) ?
		    (char)tolower((unsigned char)stage[i]) : '_';
	st[i] = '\0';
	if (strcmp(st, "_") == 0)
		snprintf(st, sizeof(st), "command");
	reason_of(reply, reason);
	metric_inc(metrics_get(&mm_rejected,
	    (const char *[]){ st, reason, policy }));
}
