/*
 * watchdog: see watchdog.h. One atomic word carries the state: 0 (the
 * loop thread is not in a Lua call), the time it entered one, or CLAIMED
 * once the watchdog has decided to recycle the process. Both threads move
 * it with compare-and-swap, so exactly one of them wins: a call that ends
 * just as the watchdog fires finds the word CLAIMED and waits for the exit
 * instead of touching anything the watchdog is using.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "watchdog.h"

#define CLAIMED	UINT64_MAX

static _Atomic uint64_t entered;
static _Atomic int limit;
static void (*fire_fn)(void *);
static void *fire_arg;

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + 1;
}

static void *
watch(void *unused)
{
	struct timespec tick = { 0, 100 * 1000 * 1000 };

	(void)unused;
	for (;;) {
		uint64_t e = atomic_load(&entered);
		nanosleep(&tick, NULL);
		if (e == 0 || e == CLAIMED || e != atomic_load(&entered) ||
		    now_ms() - e < (uint64_t)atomic_load(&limit))
			continue;
		if (!atomic_compare_exchange_strong(&entered, &e, CLAIMED))
			continue;	/* the call ended just now */
		log_event(LOG_ERROR, "watchdog", "stuck_ms=%llu action=restart",
		    (unsigned long long)(now_ms() - e));
		fire_fn(fire_arg);
		_exit(70);
	}
	return NULL;
}

void
watchdog_start(int limit_ms, void (*fire)(void *), void *arg)
{
	pthread_t t;
	pthread_attr_t a;

	fire_fn = fire;
	fire_arg = arg;
	atomic_store(&limit, limit_ms);
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 256 * 1024);
	if (pthread_create(&t, &a, watch, NULL) != 0)
		fatal("cannot start the watchdog thread");
	pthread_attr_destroy(&a);
}

void
watchdog_set_limit(int limit_ms)
{
	atomic_store(&limit, limit_ms);
}

void
watchdog_enter(void)
{
	atomic_store(&entered, now_ms());
}

void
watchdog_leave(void)
{
	uint64_t e = atomic_load(&entered);

	if (e == CLAIMED || !atomic_compare_exchange_strong(&entered, &e, 0))
		for (;;)
			pause();	/* the watchdog is ending the process */
}
