/*
 * dest: the destination table and its state machine (dest.h). It owns
 * every struct dest (a hash table by key) and the list of destination_down
 * lines that wait for the scheduler's pass to count the messages held.
 * Invariant: a destination that is down or probing has its reason in why;
 * one that is up has none. Keys are partly the peers' (a recipient's
 * domain): the table hashes them with SipHash under a key of its own.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/siphash.h"
#include "../lib/buf.h"
#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "dest.h"

#define DEST_BUCKETS		4096
#define DEST_PROBE_WAIT_MS	1000	/* a held message looks again */

struct dest_table {
	struct dest	*bucket[DEST_BUCKETS];
	struct dest	*announce;	/* down lines to log after the pass */
	struct siphash_key hkey;	/* the bucket hash's: nobody else's */
};

/* getrandom() failed (no kernel support): a key nobody can read from
 * outside, if less random. */
static struct siphash_key
fallback_key(const struct dest_table *t)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (struct siphash_key){ (uint64_t)ts.tv_nsec ^
	    ((uint64_t)ts.tv_sec << 32), (uint64_t)(uintptr_t)t ^
	    (uint64_t)getpid() };
}

struct dest_table *
dest_table_new(void)
{
	struct dest_table *t = xcalloc(1, sizeof(struct dest_table));

	if (siphash_key_random(&t->hkey) < 0) {
		log_event(LOG_WARN, "dest_hash_key", "getrandom=failed");
		t->hkey = fallback_key(t);
	}
	return t;
}

static unsigned
bucket_of(const struct dest_table *t, const char *key)
{
	return (unsigned)(siphash24(&t->hkey, key, strlen(key)) % DEST_BUCKETS);
}

struct dest *
dest_find(struct dest_table *t, const char *key)
{
	for (struct dest *d = t->bucket[bucket_of(t, key)]; d; d = d->hnext)
		if (strcmp(d->key, key) == 0)
			return d;
	return NULL;
}

struct dest *
dest_get(struct dest_table *t, const char *key)
{
	struct dest *d = dest_find(t, key);
	unsigned b;

	if (d)
		return d;
	b = bucket_of(t, key);
	d = xcalloc(1, sizeof(*d));
	d->key = xstrdup(key);
	d->hnext = t->bucket[b];
	t->bucket[b] = d;
	return d;
}

/* Its destination_down line waits for the pass's count (dest_announce). */
static void
announce(struct dest_table *t, struct dest *d)
{
	if (!d->announce) {
		d->announce = 1;
		d->anext = t->announce;
		t->announce = d;
	}
}

struct dest *
dest_restore(struct dest_table *t, const char *key, uint64_t until,
    uint64_t now)
{
	struct dest *d = dest_find(t, key);
	struct buf why = BUF_INIT;

	if (d)
		return d;
	d = dest_get(t, key);
	d->state = DEST_DOWN;
	d->window = 1;
	d->since = now;
	d->until = until;	/* failures 0: the next backoff is the first */
	buf_printf(&why, "451 4.4.1 destination %s is down: it was when the "
	    "queue manager last stopped", d->key);
	d->why = why.data;	/* the buffer's memory moves */
	announce(t, d);
	return d;
}

static void
log_probe(const struct dest *d)
{
	struct logline l;

	log_begin(&l, LOG_INFO, "destination_probe");
	log_kv(&l, "dest", d->key);
	log_kvi(&l, "failures", d->failures);
	log_kvi(&l, "messages", (long long)d->held);
	log_end(&l);
}

/* Down with its backoff over: the next job is the probe. */
static void
start_probing(struct dest *d)
{
	log_probe(d);
	d->state = DEST_PROBING;
	d->waiting = d->held;
	d->held = 0;
}

/* The jobs d may run at once now (up): at most c->max. */
int
dest_window(const struct dest *d, const struct dest_conf *c)
{
	int w = d->window ? d->window : c->initial;

	return w < c->max ? w : c->max;
}

enum dest_admit
dest_admit(struct dest *d, const struct dest_conf *c, uint64_t now,
    uint64_t *until)
{
	switch (d->state) {
	case DEST_UP:
		return d->running >= dest_window(d, c) ? DEST_FULL : DEST_GO;
	case DEST_DOWN:
		if (now < d->until) {
			*until = d->until;
			return DEST_HELD;
		}
		start_probing(d);
		/* FALLTHROUGH */
	case DEST_PROBING:
		if (d->running == 0)	/* older jobs ended: the probe */
			return DEST_GO;
		*until = now + DEST_PROBE_WAIT_MS;	/* the probe's answer */
		return DEST_HELD;
	}
	return DEST_GO;
}

void
dest_job_started(struct dest *d, uint64_t now)
{
	d->running++;
	d->used = now;
	if (d->state == DEST_PROBING)
		d->probe = 1;
}

static void
log_up(const struct dest *d, const struct dest_conf *c, uint64_t now)
{
	struct logline l;

	log_begin(&l, LOG_INFO, "destination_up");
	log_kv(&l, "dest", d->key);
	log_kvi(&l, "after", (long long)((now - d->since) / 1000));
	log_kvi(&l, "failures", d->failures);
	log_kvi(&l, "window", dest_window(d, c));
	log_end(&l);
}

/* The probe got through: up again, at the initial window. */
static void
go_up(struct dest *d, const struct dest_conf *c, uint64_t now)
{
	d->state = DEST_UP;
	d->window = 0;
	d->mail_deferred = 0;
	log_up(d, c, now);
	d->failures = 0;
	d->held = 0;
	free(d->why);
	d->why = NULL;
}

/* The next down period: the first one's backoff, then twice the last. */
static uint64_t
next_backoff(const struct dest *d, const struct dead_dest_conf *dc)
{
	uint64_t b = d->failures ? d->backoff * 2 : (uint64_t)dc->backoff_ms;

	return b > (uint64_t)dc->max_ms ? (uint64_t)dc->max_ms : b;
}

static void
go_down(struct dest_table *t, struct dest *d, const char *reason,
    const struct dead_dest_conf *dc, uint64_t now)
{
	struct buf why = BUF_INIT;

	if (d->state == DEST_UP) {
		d->failures = 0;
		d->since = now;
	}
	/* the probe's message, and those the probe kept waiting */
	d->held = d->state == DEST_PROBING ? d->waiting + 1 : 1;
	d->backoff = next_backoff(d, dc);
	d->failures++;
	d->state = DEST_DOWN;
	d->window = 1;
	d->until = now + d->backoff;
	buf_printf(&why, "451 4.4.1 destination %s is down: %s", d->key,
	    reason);
	free(d->why);
	d->why = why.data;	/* the buffer's memory moves */
	announce(t, d);
}

static void
log_suspect(const struct dest *d, const char *reason, int was)
{
	struct logline l;

	log_begin(&l, LOG_INFO, "destination_suspect");
	log_kv(&l, "dest", d->key);
	log_kv(&l, "reason", reason);
	log_kvi(&l, "window", d->window);
	log_kvi(&l, "was", was);
	log_kvi(&l, "running", d->running);
	log_end(&l);
}

/* A failure that leaves it up: one job at a time from now on. */
static void
narrow(struct dest *d, const struct dest_conf *c, const char *reason)
{
	int was = dest_window(d, c);

	d->window = 1;
	if (was > 1)
		log_suspect(d, reason, was);
}

/* A job of a destination that is up ended with verdict v. */
static void
up_job_ended(struct dest_table *t, struct dest *d, enum remote_verdict v,
    const char *reason, const struct dest_conf *c, uint64_t now)
{
	int w = dest_window(d, c);

	switch (v) {
	case REMOTE_NO_VERDICT:
		d->mail_deferred = 0;
		d->window = w < c->max ? w + 1 : c->max;
		return;
	case REMOTE_MAIL_DEFERRED:	/* throttling: in a row, or suspect */
		if (++d->mail_deferred < DEST_THROTTLE_JOBS) {
			narrow(d, c, reason);
			return;
		}
		break;
	case REMOTE_UNREACHABLE:
	case REMOTE_CLOSING:
		break;
	}
	go_down(t, d, reason, &c->dead, now);
}

void
dest_job_ended(struct dest_table *t, struct dest *d, enum remote_verdict v,
    const char *reason, const struct dest_conf *c, uint64_t now)
{
	int probe = d->probe;

	d->running--;
	d->used = now;
	if (!reason || !*reason)
		reason = "no reason given";
	switch (d->state) {
	case DEST_UP:
		up_job_ended(t, d, v, reason, c, now);
		return;
	case DEST_PROBING:
		if (!probe)	/* older than the down: the probe decides */
			return;
		d->probe = 0;
		if (v == REMOTE_NO_VERDICT)
			go_up(d, c, now);
		else		/* a MAIL deferred once is enough here */
			go_down(t, d, reason, &c->dead, now);
		return;
	case DEST_DOWN:		/* older than the down: counted already */
		return;
	}
}

/* "2026-01-31T12:00:00Z" for a uv_now() time, now being uv_now() too. */
static void
wall_time(char *out, size_t len, uint64_t at, uint64_t now)
{
	time_t t = time(NULL) + (time_t)((at - now + 999) / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
log_down(const struct dest *d, uint64_t now)
{
	struct logline l;
	char until[32];

	wall_time(until, sizeof(until), d->until, now);
	log_begin(&l, LOG_INFO, "destination_down");
	log_kv(&l, "dest", d->key);
	log_kv(&l, "reason", d->why);
	log_kvi(&l, "failures", d->failures);
	log_kvi(&l, "messages", (long long)d->held);
	log_kvi(&l, "backoff", (long long)(d->backoff / 1000));
	log_kv(&l, "until", until);
	log_end(&l);
}

void
dest_announce(struct dest_table *t, uint64_t now)
{
	while (t->announce) {
		struct dest *d = t->announce;
		t->announce = d->anext;
		d->announce = 0;
		if (d->state == DEST_DOWN)
			log_down(d, now);
		d->held = 0;
	}
}

void
dest_probe_now(struct dest *d, uint64_t now)
{
	if (d->state == DEST_DOWN && d->until > now)
		d->until = now;
}

/*
 * Nothing asked for d for idle_ms: no job since, and if it is down, its
 * probe time is that long past (no message came to probe it). A
 * destination down with messages waiting is never forgotten: that would
 * reset its backoff.
 */
static int
forgotten(const struct dest *d, uint64_t now, uint64_t idle_ms)
{
	uint64_t last = d->state == DEST_DOWN && d->until > d->used ?
	    d->until : d->used;

	return !d->running && !d->announce && !d->nparked && now > last &&
	    now - last >= idle_ms;
}

void
dest_sweep(struct dest_table *t, uint64_t now, uint64_t idle_ms)
{
	for (size_t b = 0; b < DEST_BUCKETS; b++)
		for (struct dest **pp = &t->bucket[b]; *pp;) {
			struct dest *d = *pp;
			if (!forgotten(d, now, idle_ms)) {
				pp = &d->hnext;
				continue;
			}
			*pp = d->hnext;
			free(d->why);
			free(d->key);
			free(d);
		}
}

/* Suspect: up, its last MAIL FROM answered 4xx (narrow() above). */
const char *
dest_state_name(const struct dest *d)
{
	switch (d->state) {
	case DEST_UP:
		return d->mail_deferred ? "suspect" : "up";
	case DEST_DOWN:
		return "down";
	case DEST_PROBING:
		return "probing";
	}
	return "up";
}

void
dest_each(struct dest_table *t, void (*fn)(struct dest *, void *), void *arg)
{
	for (size_t b = 0; b < DEST_BUCKETS; b++)
		for (struct dest *d = t->bucket[b]; d; d = d->hnext)
			fn(d, arg);
}
