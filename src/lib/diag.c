/*
 * diag: panic and fatal (see diag.h). Both write one log line (event
 * "panic" or "fatal", key error) and, when the log is a file, repeat it on
 * stderr so that whoever started the process sees why it stopped.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "buf.h"
#include "diag.h"
#include "log.h"

static void
report(const char *event, const char *fmt, va_list ap)
{
	struct logline l;
	struct buf msg = BUF_INIT;

	buf_vprintf(&msg, fmt, ap);
	log_begin(&l, LOG_ERROR, event);
	log_kv(&l, "error", buf_cstr(&msg));
	log_end(&l);
	if (!log_is_stderr())
		fprintf(stderr, "indimaild: %s: %s\n", event, buf_cstr(&msg));
	buf_free(&msg);
}

/*
 * Out of memory goes through here too: report() allocates, but a few
 * hundred bytes usually still come, and stderr is the fallback.
 */
void
panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report("panic", fmt, ap);
	va_end(ap);
	abort();
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report("fatal", fmt, ap);
	va_end(ap);
	exit(1);
}
