/*
 * testhook: see testhook.h. Two threads reading a hook the first time at
 * once both parse the same variable and store the same value.
 */
#include <stdlib.h>
#include <unistd.h>

#include "testhook.h"

long
test_hook(struct test_hook *h)
{
	long v = atomic_load_explicit(&h->value, memory_order_relaxed);

	if (v == TEST_HOOK_UNREAD) {
		const char *e = getenv(h->name);
		v = e && *e ? strtol(e, NULL, 10) : h->dflt;
		if (v == TEST_HOOK_UNREAD)
			v = h->dflt;
		atomic_store_explicit(&h->value, v, memory_order_relaxed);
	}
	return v;
}

unsigned
test_hook_ms(struct test_hook *h)
{
	long ms = test_hook(h);

	return ms > 0 ? (unsigned)(ms % 60000) : 0;
}

void
test_hook_hold(struct test_hook *h)
{
	unsigned ms = test_hook_ms(h);

	if (ms > 0)
		usleep((useconds_t)ms * 1000);
}
