/*
 * dest: the queue manager's destinations, keyed as the scheduler groups
 * its jobs ("relay:HOST:PORT" for a route, "mx:DOMAIN" for a domain's MX
 * set). Each counts the jobs it runs and has a state:
 *   up       jobs start, up to its window (below);
 *   down     a job failed for a reason that is the destination's, not a
 *            message's (remote.h: no address gave a session, a 421, or
 *            MAIL FROM refused with 4xx by DEST_THROTTLE_JOBS jobs in a
 *            row): nothing starts until `until`, messages are held back;
 *   probing  the backoff is over: one job tests it. Success: up. Failure:
 *            down again, with the backoff doubled up to the maximum.
 * The window (slow start, as Postfix's destination concurrency): a
 * destination never tried, or back up after a probe, runs at most
 * delivery.concurrency.initial jobs at once; each job that ends with no
 * verdict against it widens the window by one up to per_domain; a failure
 * above narrows it to 1 (suspect), so the next jobs run one at a time and
 * "in a row" is counted on answers in sequence. Jobs in flight when it
 * narrows finish and count in the order they end; jobs in flight when it
 * goes down change nothing (the probe decides, and starts only once they
 * have all ended).
 * One log line per state change (destination_down, _probe, _up, and
 * _suspect when the window narrows), none per message held. Everything
 * runs on the loop thread.
 */
#ifndef INDIMAIL_DEST_H
#define INDIMAIL_DEST_H

#include <stddef.h>
#include <stdint.h>

#include "../mail/config.h"
#include "remote.h"

/* MAIL FROM answered 4xx by this many jobs in a row: it throttles us. */
#define DEST_THROTTLE_JOBS	3

enum dest_state { DEST_UP, DEST_DOWN, DEST_PROBING };

/* What the queue manager's configuration says about a destination. */
struct dest_conf {
	int		 initial;	/* delivery.concurrency.initial */
	int		 max;		/* delivery.concurrency.per_domain */
	struct dead_dest_conf dead;	/* the backoff, the route's if unset */
};

struct dest {
	struct dest	*hnext;		/* hash chain */
	struct dest	*anext;		/* announcements pending */
	char		*key;
	int		 running;	/* jobs in flight */
	int		 window;	/* jobs that may run at once; 0: initial */
	int		 probe;		/* DEST_PROBING: the probe is running */
	enum dest_state	 state;
	uint64_t	 since;		/* uv_now() ms it went down (first time) */
	uint64_t	 until;		/* DEST_DOWN: when the probe may start */
	uint64_t	 backoff;	/* ms of the last down period */
	uint64_t	 used;		/* last job start or end: for the sweep */
	int		 failures;	/* down periods in a row */
	int		 mail_deferred;	/* jobs in a row whose MAIL got a 4xx */
	int		 announce;	/* the down line waits for its count */
	size_t		 held;		/* messages held back since the last line */
	size_t		 waiting;	/* held when the probe started */
	char		*why;		/* down or probing: the reason, as a reply */
	struct qwait	*parked;	/* messages outside the active set waiting */
	size_t		 nparked;	/* for it (qmgr_wait.c) */
	uint64_t	 woken;		/* `until` of the last probe a parked woke */
	uint64_t	 indexed;	/* `until` of its last retry index line */
	size_t		 listed;	/* qmgr_dests.c: active messages for it */
	const void	*listed_by;	/* the message counted last */
};

/* What the scheduler may do with a recipient for destination d now. */
enum dest_admit {
	DEST_GO,	/* start its job */
	DEST_FULL,	/* its window is full: wait for a job to end */
	DEST_HELD,	/* down (or probed): hold the message back until *until */
};

struct dest_table;
struct qwait;

struct dest_table *dest_table_new(void);
/* The destination of key, created up (untried: the initial window) if
 * unknown. */
struct dest *dest_get(struct dest_table *, const char *key);
struct dest *dest_find(struct dest_table *, const char *key);
/* At start: key, unknown so far, was down until `until` at the last stop
 * (the retry index): down again until then. Returns it, as it is. */
struct dest *dest_restore(struct dest_table *, const char *key,
	    uint64_t until, uint64_t now);
enum dest_admit dest_admit(struct dest *, const struct dest_conf *,
	    uint64_t now, uint64_t *until);
void	dest_job_started(struct dest *, uint64_t now);
/* A job ended with verdict; reason: a recipient's reply if it failed. */
void	dest_job_ended(struct dest_table *, struct dest *,
	    enum remote_verdict, const char *reason,
	    const struct dest_conf *, uint64_t now);
/* Logs the destination_down lines waiting for their message count. */
void	dest_announce(struct dest_table *, uint64_t now);
/* `queue flush`: if d is down, its probe may start now. */
void	dest_probe_now(struct dest *, uint64_t now);
/* Forgets destinations nobody asked for in idle_ms (created again when
 * asked; one down with messages waiting is kept). */
void	dest_sweep(struct dest_table *, uint64_t now, uint64_t idle_ms);
/* The jobs d may run at once now, if it is up. */
int	dest_window(const struct dest *, const struct dest_conf *);
/* "up", "suspect" (up, narrowed by a MAIL 4xx), "down" or "probing". */
const char *dest_state_name(const struct dest *);
/* Calls fn for every destination. */
void	dest_each(struct dest_table *, void (*fn)(struct dest *, void *),
	    void *arg);

#endif
