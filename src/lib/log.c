/*
 * log: key=value event lines to stderr or a file. Each line starts with an
 * ISO timestamp, the process role and pid, the level and event=NAME. Values
 * containing spaces, quotes, '=' or control bytes are double-quoted with C
 * escapes, so a peer can never forge a line or a key. The line is always
 * built in that form; log_end writes it as is or as JSON (log_json.c), to
 * the file and/or syslog (log_syslog.c). The file can be swapped for a
 * new descriptor at any time (SIGHUP after logrotate: log_use_fd).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_fd = 2;
static enum log_level log_min = LOG_INFO;
/* Set by log_json.c and log_syslog.c: a program that never asks for JSON
 * or syslog does not link them (nor jansson). */
static log_json_fn json_writer;
static log_syslog_fn syslog_sender;
static char log_role[16] = "indimail";

static const char *level_names[] = { "debug", "info", "warn", "error" };

/*
 * As root, a file is only opened in a folder that root owns and no one
 * else may write to: otherwise the unprivileged account could plant a
 * symlink or a hard link there and make root append to any file.
 */
static int
safe_folder(const char *path, struct buf *err)
{
	struct buf dir = BUF_INIT;
	const char *slash = strrchr(path, '/');
	struct stat st;
	int ok;

	buf_set(&dir, slash ? path : ".", slash ? (size_t)(slash - path) : 1);
	if (dir.len == 0)
		buf_set(&dir, "/", 1);
	ok = stat(buf_cstr(&dir), &st) == 0 && st.st_uid == 0 &&
	    (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
	if (!ok)
		buf_printf(err, "log folder %s must exist, belong to root and be "
		    "writable by root only", buf_cstr(&dir));
	buf_free(&dir);
	return ok;
}

int
log_file_open(const char *path, struct buf *err)
{
	struct stat st;
	int fd;

	if (geteuid() == 0 && !safe_folder(path, err))
		return -1;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
	    O_NOCTTY, 0640);
	if (fd < 0) {
		buf_printf(err, "cannot open log file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
	    st.st_uid != geteuid()) {
		buf_printf(err, "log file %s must be a regular file of ours with "
		    "a single link", path);
		close(fd);
		return -1;
	}
	return fd;
}

void
log_use_fd(int fd)
{
	if (log_fd > 2 && log_fd != fd)
		close(log_fd);
	log_fd = fd < 0 ? 2 : fd;
}

int
log_open(const char *path, enum log_level min, struct buf *err)
{
	int fd;

	log_min = min;
	if (path == NULL || *path == '\0') {
		log_use_fd(-1);
		return 0;
	}
	if ((fd = log_file_open(path, err)) < 0)
		return -1;
	log_use_fd(fd);
	return 0;
}

void
log_set_level(enum log_level min)
{
	log_min = min;
}

void
log_set_writers(log_json_fn json, log_syslog_fn sys)
{
	json_writer = json;
	syslog_sender = sys;
}

void
log_writers(log_json_fn *json, log_syslog_fn *sys)
{
	*json = json_writer;
	*sys = syslog_sender;
}

static pid_t cached_pid;	/* 0: not read in this process yet */
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void
forget_pid(void)
{
	__atomic_store_n(&cached_pid, 0, __ATOMIC_RELAXED);
}

static void
watch_forks(void)
{
	pthread_atfork(NULL, NULL, forget_pid);
}

pid_t
log_pid(void)
{
	pid_t pid = __atomic_load_n(&cached_pid, __ATOMIC_RELAXED);

	if (pid == 0) {
		pthread_once(&pid_once, watch_forks);
		pid = getpid();
		__atomic_store_n(&cached_pid, pid, __ATOMIC_RELAXED);
	}
	return pid;
}

void
log_set_role(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
}

enum log_level
log_parse_level(const char *s, int *ok)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0) {
			*ok = 1;
			return (enum log_level)i;
		}
	*ok = 0;
	return LOG_INFO;
}

void
log_begin(struct logline *l, enum log_level level, const char *event)
{
	struct timeval tv;
	struct tm tm;
	char ts[32];

	memset(l, 0, sizeof(*l));
	l->level = level;
	l->skip = level < log_min;
	if (l->skip)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	buf_printf(&l->b, "%s.%06ldZ %s[%ld]", ts, (long)tv.tv_usec, log_role,
	    (long)log_pid());
	l->head = l->b.len;
	buf_printf(&l->b, " %s event=%s", level_names[level], event);
}

static int
needs_quotes(const char *v, size_t n)
{
	if (n == 0)
		return 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 127)
			return 1;
	}
	return 0;
}

void
log_kvn(struct logline *l, const char *key, const char *v, size_t n)
{
	if (l->skip)
		return;
	buf_printf(&l->b, " %s=", key);
	if (!needs_quotes(v, n)) {
		buf_append(&l->b, v, n);
		return;
	}
	buf_appendc(&l->b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == '"' || c == '\\')
			buf_printf(&l->b, "\\%c", c);
		else if (c == '\n')
			buf_appends(&l->b, "\\n");
		else if (c == '\r')
			buf_appends(&l->b, "\\r");
		else if (c == '\t')
			buf_appends(&l->b, "\\t");
		else if (c < ' ' || c == 127)
			buf_printf(&l->b, "\\x%02x", c);
		else
			buf_appendc(&l->b, (char)c);
	}
	buf_appendc(&l->b, '"');
}

void
log_kv(struct logline *l, const char *key, const char *v)
{
	log_kvn(l, key, v ? v : "", v ? strlen(v) : 0);
}

void
log_kvi(struct logline *l, const char *key, long long v)
{
	if (!l->skip)
		buf_printf(&l->b, " %s=%lld", key, v);
}

static void
write_line(const char *p, size_t n)
{
	/* One write per line: atomic for O_APPEND files and pipes. */
	while (write(log_fd, p, n) < 0 && errno == EINTR)
		;
}

/*
 * To the file (or stderr, unless syslog alone was asked for) and to
 * syslog, in the configured format.
 */
void
log_end(struct logline *l)
{
	struct buf json = BUF_INIT, *out = &l->b;
	size_t skip = l->head + 1;	/* syslog has its own time and tag */

	if (!l->skip && json_writer) {
		json_writer(&json, l->b.data, l->b.len, l->head);
		out = &json;
		skip = 0;
	}
	if (!l->skip && syslog_sender)
		syslog_sender(l->level, log_role, out->data + skip, out->len - skip);
	if (!l->skip && (log_fd != 2 || !syslog_sender)) {
		buf_appendc(out, '\n');
		write_line(out->data, out->len);
	}
	buf_free(&json);
	buf_free(&l->b);
}

void
log_event(enum log_level level, const char *event, const char *fmt, ...)
{
	struct logline l;
	va_list ap;

	log_begin(&l, level, event);
	if (!l.skip && fmt && *fmt) {
		buf_appendc(&l.b, ' ');
		va_start(ap, fmt);
		buf_vprintf(&l.b, fmt, ap);
		va_end(ap);
	}
	log_end(&l);
}

int
log_is_stderr(void)
{
	return log_fd == 2;
}
