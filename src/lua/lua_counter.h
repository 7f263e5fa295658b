/*
 * lua_counter: indimail.counter, the counts policies share across every
 * worker (rate and concurrency limits), and the holds a session gives back
 * when it closes. Every call goes through a struct counter_backend: today
 * the master's table in shared memory (src/lib/counter.c, nothing waits);
 * a cross-host backend (Redis, MariaDB) is one more table of these
 * functions, and no policy changes. Keys of policies are kept under "lua:"
 * (windows) and "lua-hold:" (holds), apart from the AUTH limit's
 * "authfail-*". See docs/lua.md, "Counters".
 */
#ifndef INDIMAIL_LUA_COUNTER_H
#define INDIMAIL_LUA_COUNTER_H

#include <stddef.h>

struct counter_table;
struct lua_State;

/*
 * A backend. Each function returns the count after the call, or -1 when it
 * could not count (the API then raises an error: a 451 4.3.0 for the
 * hook). get receives the window so a backend that keys buckets by time
 * can find the right one; hold has no window: it lasts until given back
 * (and the backend must give back what a dead process held).
 */
struct counter_backend {
	const char	*name;
	long		(*add)(void *, const char *key, unsigned window_s,
			    long delta);
	long		(*get)(void *, const char *key, unsigned window_s);
	long		(*hold)(void *, const char *key, long delta);
	void		*arg;
};

/* The holds of one session (hook_ctx.holds), given back by release. */
struct hook_holds {
	char		**keys;		/* full keys, "lua-hold:..." */
	size_t		  n;
};

/* The process's counters: the shared table (NULL: none, the API errs). */
void	hook_set_counters(struct counter_table *);
/* Gives back every hold of a session and empties the list. */
void	hook_holds_release(struct hook_holds *);
/* Adds indimail.counter to the indimail table. */
void	lua_counter_open(struct lua_State *);

#endif
