/*
 * log_syslog: log lines as syslog datagrams (log = { syslog = "mail" }).
 * We write the RFC 3164 form that glibc's syslog(3) writes,
 *   <PRI>Mmm dd hh:mm:ss indimail/ROLE[PID]: TEXT
 * ourselves, to a Unix datagram socket named by log.syslog_socket
 * (default /dev/log), instead of calling syslog(3): its socket path is
 * fixed, and a test must be able to bind its own receiver. The socket is
 * unconnected and every datagram is addressed (sendto), so a restarted
 * syslog daemon is found again; a send never blocks, and one that fails
 * is dropped (the file, when there is one, still has the line).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define SYSLOG_DEFAULT_SOCKET	"/dev/log"
#define SYSLOG_FAC_MAIL		2
#define SYSLOG_FAC_LOCAL0	16
/* RFC 5424 severities of our levels: debug, info, warning, error. */
static const int severity[] = { 7, 6, 4, 3 };

static int sys_fd = -1;
static int sys_facility = -1;
static struct sockaddr_un sys_addr;

int
log_syslog_facility(const char *name)
{
	if (strcmp(name, "mail") == 0)
		return SYSLOG_FAC_MAIL;
	if (strncmp(name, "local", 5) == 0 && name[5] >= '0' && name[5] <= '7' &&
	    name[6] == '\0')
		return SYSLOG_FAC_LOCAL0 + (name[5] - '0');
	return -1;
}

void
log_set_syslog(int facility, const char *socket_path)
{
	const char *path = socket_path ? socket_path : SYSLOG_DEFAULT_SOCKET;
	log_json_fn json;
	log_syslog_fn sys;

	log_writers(&json, &sys);
	log_set_writers(json, NULL);
	if (facility < 0 || strlen(path) >= sizeof(sys_addr.sun_path))
		return;
	if (sys_fd < 0 && (sys_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) < 0)
		return;
	memset(&sys_addr, 0, sizeof(sys_addr));
	sys_addr.sun_family = AF_UNIX;
	memcpy(sys_addr.sun_path, path, strlen(path));
	sys_facility = facility;
	log_set_writers(json, log_syslog_send);
}

void
log_syslog_send(enum log_level level, const char *role, const char *text,
    size_t n)
{
	struct buf b = BUF_INIT;
	time_t now = time(NULL);
	struct tm tm;
	char ts[20];

	localtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%b %e %H:%M:%S", &tm);
	buf_printf(&b, "<%d>%s indimail/%s[%ld]: ", sys_facility * 8 +
	    severity[level], ts, role, (long)log_pid());
	buf_append(&b, text, n);
	while (sendto(sys_fd, b.data, b.len, MSG_DONTWAIT | MSG_NOSIGNAL,
	    (struct sockaddr *)&sys_addr, sizeof(sys_addr)) < 0 &&
	    errno == EINTR)
		;
	buf_free(&b);
}
