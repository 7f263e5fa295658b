/*
 * [src/lib: generic code that knows no mail; it includes nothing outside
 * src/lib. See docs/architecture.md.]
 *
 * log: one line per event, key=value, written with a single write(2) so lines
 * from many processes sharing one O_APPEND file never interleave.
 *
 *   struct logline l;
 *   log_begin(&l, LOG_INFO, "connect");
 *   log_kv(&l, "ip", peer);          (values are quoted/escaped as needed)
 *   log_kvi(&l, "port", 25);
 *   log_end(&l);
 *
 * log_event() is the short form for values the program itself produced.
 */
#ifndef INDIMAIL_LOG_H
#define INDIMAIL_LOG_H

#include <stddef.h>

#include "buf.h"
#include "diag.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

struct logline {
	struct buf	b;
	int		skip;
};

/* NULL = stderr; a file is opened without following links (see log.c). */
int	log_open(const char *path, enum log_level min, struct buf *err);
void	log_set_role(const char *role);			/* "master", "smtp" ... */
enum log_level log_parse_level(const char *, int *ok);
void	log_begin(struct logline *, enum log_level, const char *event);
void	log_kv(struct logline *, const char *key, const char *val);
void	log_kvn(struct logline *, const char *key, const char *val, size_t n);
void	log_kvi(struct logline *, const char *key, long long val);
void	log_end(struct logline *);
void	log_event(enum log_level, const char *event, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* Lines go to stderr (no log file is open)? */
int	log_is_stderr(void);

#endif
