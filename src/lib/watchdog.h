/*
 * [src/lib: generic code that knows no mail; it includes nothing outside
 * src/lib. See docs/architecture.md.]
 *
 * watchdog: a thread that notices when the loop thread has been inside one
 * Lua call for too long. The instruction budget stops runaway Lua code,
 * but not a hook stuck inside C (a pathological string.find pattern): the
 * count hook never runs there. Then only the process can be recycled: the
 * watchdog calls `fire` from its own thread (the loop thread is stuck, so
 * nothing else touches the state it reads) and exits the process; the
 * master starts a new one.
 */
#ifndef INDIMAIL_WATCHDOG_H
#define INDIMAIL_WATCHDOG_H

/* Starts the thread; limit_ms can be changed later (reload). */
void	watchdog_start(int limit_ms, void (*fire)(void *arg), void *arg);
void	watchdog_set_limit(int limit_ms);
/* Around a Lua call on the loop thread. Never nested. */
void	watchdog_enter(void);
void	watchdog_leave(void);

#endif
