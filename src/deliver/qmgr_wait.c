/*
 * qmgr_wait: the messages the queue manager does not hold whole (beyond
 * delivery.active_limit, docs/queue.md "The active set"). Each is a compact
 * entry of 80 bytes: id, queue, when it is due, flags, when it was
 * received (once known); its envelope
 * and journal stay on disk until it is due and the active set has room.
 * An entry is in one of three places: the due heap (a min-heap by due
 * time, so what is due is found without a walk), parked on a destination
 * that is down (its list, woken when the destination comes up: nothing
 * per message happens while it is down), or off both (held by `queue
 * hold`, or being loaded). Every entry is in the id hash. Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#else
#define ASAN_POISON_MEMORY_REGION(a, n)		((void)(a), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(a, n)	((void)(a), (void)(n))
#endif

#include "../lib/hash.h"
#include "../lib/xalloc.h"
#include "qmgr_int.h"

#define WAIT_BUCKETS_MIN	1024
#define WAIT_OFF		UINT32_MAX	/* not in the heap */
#define WAIT_SLAB		4096	/* entries to an allocation */

/* Entries come WAIT_SLAB to an allocation, without malloc's 16 bytes
 * each; one deleted is reused, its slab kept while the process runs.
 * Under ASan an unused entry is poisoned but for its link, so that a
 * use after qmgr_wait_del is still caught. */
struct wait_slab {
	struct wait_slab *next;
	struct qwait	 e[WAIT_SLAB];
};

struct qmgr_wait {
	struct wait_slab *slabs;
	struct qwait	*unused;	/* chained by hnext */
	struct qwait	**bucket;
	size_t		 nbuckets;
	size_t		 n;
	struct qwait	**heap;
	size_t		 nheap, heapcap;
	long		 count[QUEUE_MAX][MM_QUEUE_NSTATES];
};

struct qmgr_wait *
qmgr_wait_new(void)
{
	struct qmgr_wait *w = xcalloc(1, sizeof(*w));

	w->nbuckets = WAIT_BUCKETS_MIN;
	w->bucket = xcalloc(w->nbuckets, sizeof(*w->bucket));
	return w;
}

static size_t
hash_of(const char *id, size_t nbuckets)
{
	return hash_fnv1a(id) & (nbuckets - 1);
}

/* e unused: on the list, the rest of it poisoned. */
static void
entry_unused(struct qmgr_wait *w, struct qwait *e)
{
	e->hnext = w->unused;
	w->unused = e;
	ASAN_POISON_MEMORY_REGION((char *)e + sizeof(e->hnext),
	    sizeof(*e) - sizeof(e->hnext));
}

static struct qwait *
entry_new(struct qmgr_wait *w)
{
	struct qwait *e;

	if (w->unused == NULL) {
		struct wait_slab *s = xmalloc(sizeof(*s));
		s->next = w->slabs;
		w->slabs = s;
		for (size_t i = WAIT_SLAB; i-- > 0;)
			entry_unused(w, &s->e[i]);
	}
	e = w->unused;
	w->unused = e->hnext;
	ASAN_UNPOISON_MEMORY_REGION(e, sizeof(*e));
	memset(e, 0, sizeof(*e));
	return e;
}

/* Twice the buckets once there are more entries than buckets. */
static void
grow(struct qmgr_wait *w)
{
	size_t nb = w->nbuckets * 2;
	struct qwait **b = xcalloc(nb, sizeof(*b));

	for (size_t i = 0; i < w->nbuckets; i++)
		for (struct qwait *e = w->bucket[i], *next; e; e = next) {
			size_t h = hash_of(e->id, nb);
			next = e->hnext;
			e->hnext = b[h];
			b[h] = e;
		}
	free(w->bucket);
	w->bucket = b;
	w->nbuckets = nb;
}

struct qwait *
qmgr_wait_find(const struct qmgr_wait *w, const char *id)
{
	for (struct qwait *e = w->bucket[hash_of(id, w->nbuckets)]; e;
	    e = e->hnext)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

size_t
qmgr_wait_count(const struct qmgr_wait *w)
{
	return w->n;
}

/* ---- the due heap ---------------------------------------------------------- */

static void
heap_put(struct qmgr_wait *w, size_t i, struct qwait *e)
{
	w->heap[i] = e;
	e->heap = (uint32_t)i;
}

/*
 * Whether a comes out of the heap before b: due first; at the same due
 * time (a burst announced in one millisecond, one datagram) the older
 * message, whose id sorts first (ids start with their time, fixed-width
 * hex), so a backlog is still loaded, and delivered, oldest first.
 */
static int
earlier(const struct qwait *a, const struct qwait *b)
{
	return a->due != b->due ? a->due < b->due : strcmp(a->id, b->id) < 0;
}

static void
sift_up(struct qmgr_wait *w, size_t i)
{
	struct qwait *e = w->heap[i];

	while (i > 0 && earlier(e, w->heap[(i - 1) / 2])) {
		heap_put(w, i, w->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_put(w, i, e);
}

static void
sift_down(struct qmgr_wait *w, size_t i)
{
	struct qwait *e = w->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= w->nheap)
			break;
		if (c + 1 < w->nheap && earlier(w->heap[c + 1], w->heap[c]))
			c++;
		if (!earlier(w->heap[c], e))
			break;
		heap_put(w, i, w->heap[c]);
		i = c;
	}
	heap_put(w, i, e);
}

static void
heap_add(struct qmgr_wait *w, struct qwait *e)
{
	if (w->nheap == w->heapcap) {
		w->heapcap = w->heapcap ? w->heapcap * 2 : WAIT_BUCKETS_MIN;
		w->heap = xrealloc(w->heap, w->heapcap * sizeof(*w->heap));
	}
	heap_put(w, w->nheap++, e);
	sift_up(w, e->heap);
}

static void
heap_del(struct qmgr_wait *w, struct qwait *e)
{
	size_t i = e->heap;
	struct qwait *last;

	if (i == WAIT_OFF)
		return;
	e->heap = WAIT_OFF;
	last = w->heap[--w->nheap];
	if (last == e)
		return;
	heap_put(w, i, last);
	sift_up(w, i);
	sift_down(w, last->heap);
}

/* ---- entries --------------------------------------------------------------- */

/* Where an entry counts in indimail_queue_messages. */
static enum mm_queue_state
wait_state(const struct qwait *e)
{
	if (e->flags & QW_HELD)
		return MM_QUEUE_HELD;
	return e->flags & QW_DEFERRED ? MM_QUEUE_DEFERRED : MM_QUEUE_INCOMING;
}

static void
count(struct qmgr_wait *w, const struct qwait *e, long by)
{
	w->count[e->queue][wait_state(e)] += by;
}

/* A new entry, due at `due` (in the heap unless held); NULL if known. */
struct qwait *
qmgr_wait_add(struct qmgr_wait *w, int queue, const char *id, uint64_t due,
    unsigned flags)
{
	struct qwait *e;
	size_t h;

	if (qmgr_wait_find(w, id))
		return NULL;
	if (w->n >= w->nbuckets)
		grow(w);
	e = entry_new(w);
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->queue = (uint8_t)queue;
	e->flags = (uint8_t)flags;
	e->due = due;
	e->heap = WAIT_OFF;
	h = hash_of(id, w->nbuckets);
	e->hnext = w->bucket[h];
	w->bucket[h] = e;
	w->n++;
	count(w, e, 1);
	if (!(flags & QW_HELD))
		heap_add(w, e);
	return e;
}

/* Off a destination's list, if parked there. */
static void
unpark(struct qwait *e)
{
	struct dest *d = e->parked;

	if (d == NULL)
		return;
	if (e->pprev)
		e->pprev->pnext = e->pnext;
	else
		d->parked = e->pnext;
	if (e->pnext)
		e->pnext->pprev = e->pprev;
	e->pnext = e->pprev = NULL;
	e->parked = NULL;
	d->nparked--;
}

/* Changes flags and due time; in the heap unless held, loading or moving
 * (unparked: a parked entry is woken). */
void
qmgr_wait_set(struct qmgr_wait *w, struct qwait *e, uint64_t due,
    unsigned flags)
{
	count(w, e, -1);
	heap_del(w, e);
	unpark(e);
	e->flags = (uint8_t)flags;
	e->due = due;
	count(w, e, 1);
	if (!(flags & (QW_HELD | QW_LOADING | QW_MOVING)))
		heap_add(w, e);
}

void
qmgr_wait_moving(struct qmgr_wait *w, struct qwait *e, int on)
{
	if (on) {
		e->flags |= QW_MOVING;
		heap_del(w, e);
		return;
	}
	e->flags &= (uint8_t)~QW_MOVING;
	if (!e->parked && !(e->flags & (QW_HELD | QW_LOADING)))
		heap_add(w, e);
}

/* Waits for destination d to come up (off the heap, on d's list). */
void
qmgr_wait_park(struct qmgr_wait *w, struct qwait *e, struct dest *d)
{
	heap_del(w, e);
	unpark(e);
	e->parked = d;
	e->pnext = d->parked;
	if (d->parked)
		d->parked->pprev = e;
	d->parked = e;
	d->nparked++;
}

/* Every message parked on d is due at `now`. */
void
qmgr_wait_wake_all(struct qmgr_wait *w, struct dest *d, uint64_t now)
{
	while (d->parked)
		qmgr_wait_set(w, d->parked, now, d->parked->flags);
}

/* One message parked on d is due at `now` (to probe d). */
void
qmgr_wait_wake_one(struct qmgr_wait *w, struct dest *d, uint64_t now)
{
	if (d->parked)
		qmgr_wait_set(w, d->parked, now, d->parked->flags);
}

/*
 * The messages parked on d received before `before` are due at `now`:
 * loaded, past their lifetime they bounce (a destination down for days
 * must not keep them longer), the others are parked again.
 */
void
qmgr_wait_wake_old(struct qmgr_wait *w, struct dest *d, long long before,
    uint64_t now)
{
	for (struct qwait *e = d->parked, *next; e; e = next) {
		next = e->pnext;
		if (e->received < before)
			qmgr_wait_set(w, e, now, e->flags);
	}
}

/* The entry due first if it is due at `now`, else NULL. */
struct qwait *
qmgr_wait_due(const struct qmgr_wait *w, uint64_t now)
{
	return w->nheap && w->heap[0]->due <= now ? w->heap[0] : NULL;
}

void
qmgr_wait_del(struct qmgr_wait *w, struct qwait *e)
{
	struct qwait **pp = &w->bucket[hash_of(e->id, w->nbuckets)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	heap_del(w, e);
	unpark(e);
	count(w, e, -1);
	w->n--;
	entry_unused(w, e);
}

/* Calls fn for every entry (it must not add or delete any). */
void
qmgr_wait_each(struct qmgr_wait *w, void (*fn)(struct qwait *, void *),
    void *arg)
{
	for (size_t i = 0; i < w->nbuckets; i++)
		for (struct qwait *e = w->bucket[i]; e; e = e->hnext)
			fn(e, arg);
}

/* Adds the entries' counts per queue and state to n. */
void
qmgr_wait_counts(const struct qmgr_wait *w,
    long n[MAIL_METRICS_QUEUES_MAX][MM_QUEUE_NSTATES], int nqueues)
{
	for (int q = 0; q < nqueues && q < MAIL_METRICS_QUEUES_MAX; q++)
		for (int st = 0; st < MM_QUEUE_NSTATES; st++)
			n[q][st] += w->count[q][st];
}
