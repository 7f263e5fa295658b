/*
 * [src/lib: generic code that knows no mail; it includes nothing outside
 * src/lib. See docs/architecture.md.]
 *
 * diag: Postfix's tiers of trouble. A corrupted invariant → panic() (log,
 * abort, core). A start-up or configuration error → fatal() (log, exit 1).
 * Anything a peer, a client or the disk does at run time is neither: it
 * is logged with log_event()/log_begin() at LOG_WARN or LOG_ERROR and
 * answered with a 4xx, and the process keeps serving.
 */
#ifndef INDIMAIL_DIAG_H
#define INDIMAIL_DIAG_H

void	panic(const char *fmt, ...)
	    __attribute__((noreturn, format(printf, 1, 2)));
void	fatal(const char *fmt, ...)
	    __attribute__((noreturn, format(printf, 1, 2)));

#endif
