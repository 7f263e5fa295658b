/*
 * [src/mail: what every part knows about mail; it includes only src/lib.
 * See docs/architecture.md.]
 *
 * mail_metrics: the metric families of the MTA (docs/operations.md,
 * "Monitoring") over the shared registry of src/lib/metrics.h. The master
 * starts them before it forks and makes the series whose label values it
 * knows (listeners, queues, results), so a scrape shows them at 0; the
 * places that count resolve their series once and keep them.
 */
#ifndef INDIMAIL_MAIL_METRICS_H
#define INDIMAIL_MAIL_METRICS_H

#include <stddef.h>

#include "../lib/metrics.h"

/* Series a rejection family keeps before its policy/reason become "other". */
#define MAIL_METRICS_REJECT_CAP	256
/* Queues with a series: queue.count's upper limit (src/lua/lua_config.c). */
#define MAIL_METRICS_QUEUES_MAX	64

extern const struct metric_family mm_connections;	/* {listener} */
extern const struct metric_family mm_accepted;		/* {listener} */
extern const struct metric_family mm_rejected;	/* {stage,reason,policy} */
extern const struct metric_family mm_queue_messages;	/* {queue,state} */
extern const struct metric_family mm_deliveries;	/* {result,class} */
extern const struct metric_family mm_delivery_delay;	/* seconds */
extern const struct metric_family mm_hook_duration;	/* {stage}, µs */
extern const struct metric_family mm_dircache;		/* {result} */
extern const struct metric_family mm_destinations;	/* {state} */

/* A message's state in the queue manager's table (mm_queue_messages). */
enum mm_queue_state {
	MM_QUEUE_INCOMING, MM_QUEUE_ACTIVE, MM_QUEUE_DEFERRED, MM_QUEUE_HELD,
	MM_QUEUE_NSTATES
};
/* A destination's state in the queue manager (mm_destinations). */
enum mm_dest_state { MM_DEST_UP, MM_DEST_SUSPECT, MM_DEST_DOWN,
	MM_DEST_PROBING, MM_DEST_NSTATES };
enum mm_result { MM_DELIVERED, MM_DEFERRED, MM_BOUNCED, MM_NRESULTS };
enum mm_class { MM_LOCAL, MM_REMOTE, MM_RELAY, MM_ROUTE, MM_NCLASSES };
enum mm_cache { MM_CACHE_HIT, MM_CACHE_MISS, MM_CACHE_NEGATIVE_HIT,
	MM_CACHE_NRESULTS };

/*
 * The master, before it forks: maps the registry, sets the build and
 * start-time gauges, makes the series of the listeners named, of queues
 * 0..nqueues-1 and of every result.
 */
void	mail_metrics_start(const char *const *listeners, size_t n, int nqueues);
/* Series resolved on first use (the caller keeps nothing). */
struct metric mail_metrics_queue(int queue, enum mm_queue_state);
struct metric mail_metrics_delivery(enum mm_result, enum mm_class);
struct metric mail_metrics_cache(enum mm_cache);
struct metric mail_metrics_destinations(enum mm_dest_state);
/*
 * One refusal at stage (a hook stage or an SMTP verb, any case): reply is
 * the reply sent ("550 5.7.1 ...", its enhanced status or else its class
 * becomes the reason) or a short cause of ours; policy "" for the core.
 */
void	mail_metrics_reject(const char *stage, const char *reply,
	    const char *policy);

#endif
