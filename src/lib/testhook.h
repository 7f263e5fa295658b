/*
 * [src/lib: generic code that knows no mail; it includes nothing outside
 * src/lib. See docs/architecture.md.]
 *
 * testhook: the specs' hooks, INDIMAIL_TEST_* variables that hold or age
 * something so that a spec can catch a state it could not time
 * (docs/architecture.md lists them). A hook is read from the environment
 * once, on first use, from any thread:
 *
 *	static struct test_hook delay = TEST_HOOK("INDIMAIL_TEST_X_MS", 0);
 *	test_hook_hold(&delay);
 */
#ifndef INDIMAIL_TESTHOOK_H
#define INDIMAIL_TESTHOOK_H

#include <limits.h>
#include <stdatomic.h>

#define TEST_HOOK_UNREAD	LONG_MIN

struct test_hook {
	const char	*name;
	long		 dflt;		/* when unset or empty */
	atomic_long	 value;		/* TEST_HOOK_UNREAD until read */
};

#define TEST_HOOK(name, dflt)	{ (name), (dflt), TEST_HOOK_UNREAD }

/* The hook's value as a number, or its default. */
long	test_hook(struct test_hook *);
/* A hold in ms, 0 to 59,999 (0: none, also when unset or negative). */
unsigned test_hook_ms(struct test_hook *);
/* Sleeps the hook's hold, if any. */
void	test_hook_hold(struct test_hook *);

#endif
