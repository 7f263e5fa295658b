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
 *
 * Formats: "kv" (above) or "json" (one RFC 8259 object per line, the same
 * keys: log_json.c). Lines may also go to syslog (log_syslog.c).
 */
#ifndef INDIMAIL_LOG_H
#define INDIMAIL_LOG_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "diag.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_KV, LOG_FORMAT_JSON };

struct logline {
	struct buf	b;
	int		skip;
	enum log_level	level;
	size_t		head;	/* length of "TS ROLE[PID]" before the level */
};

/* NULL = stderr; a file is opened without following links (see log.c). */
int	log_open(const char *path, enum log_level min, struct buf *err);
void	log_set_role(const char *role);			/* "master", "smtp" ... */
/*
 * This process's pid without a system call each time (glibc does not cache
 * it): read once, and again after a fork (pthread_atfork). For log lines
 * and for unique file names.
 */
pid_t	log_pid(void);
enum log_level log_parse_level(const char *, int *ok);
/* reopening (SIGHUP), the level, the format and syslog. */
/* Opens path as log_open would (safety checks): the fd, or -1 and err. */
int	log_file_open(const char *path, struct buf *err);
/* Lines go to fd from now on (the previous file is closed; -1: stderr). */
void	log_use_fd(int fd);
void	log_set_level(enum log_level);
/* log_json.c: */
enum log_format log_parse_format(const char *, int *ok);
void	log_set_format(enum log_format);
/* log_syslog.c: "mail", "local0".."local7" → the facility code, or -1. */
int	log_syslog_facility(const char *name);
/*
 * log_syslog.c: lines also go to syslog (or only there when no log file
 * is open): facility < 0 turns it off; socket NULL: /dev/log.
 */
void	log_set_syslog(int facility, const char *socket);
/* The JSON form of one kv line that log.c built (head as in logline). */
void	log_json_line(struct buf *out, const char *kv, size_t n, size_t head);
/* A JSON string: RFC 8259 escapes; each byte of invalid UTF-8 as the
 * escape of the code point of the same number (0x80..0xff). */
void	log_json_string(struct buf *out, const char *s, size_t n);
/* Sends one message to syslog (log_syslog.c); text without newline. */
void	log_syslog_send(enum log_level, const char *role, const char *text,
	    size_t n);
/* How log_end writes (NULL: key=value; no syslog), set by the two above. */
typedef void (*log_json_fn)(struct buf *, const char *, size_t, size_t);
typedef void (*log_syslog_fn)(enum log_level, const char *, const char *,
    size_t);
void	log_set_writers(log_json_fn, log_syslog_fn);
void	log_writers(log_json_fn *, log_syslog_fn *);
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
