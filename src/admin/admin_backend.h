/*
 * [src/admin: the admin HTTP API (docs/admin-api.md). See
 * docs/architecture.md.]
 *
 * admin_backend: the real backend of admin_route.h in the admin process:
 * bin/indimail and bin/indimaild -T (-t without the TLS files, which are
 * root's) run by admin_spawn, the reload asked
 * of the master over the socket it gave at the fork, /metrics from
 * metrics_render. The reload protocol, one datagram each way:
 *
 *   admin → master   "reload"
 *   master → admin   "ok" | "error WHY"
 */
#ifndef INDIMAIL_ADMIN_BACKEND_H
#define INDIMAIL_ADMIN_BACKEND_H

#include <pthread.h>

#include "admin_route.h"

#define ADMIN_CHILD_SECONDS	60	/* a bin/indimail command, at most */
#define ADMIN_RELOAD_SECONDS	120	/* the master's reload, at most */
#define ADMIN_CTL_MAX		1024	/* a datagram of the reload socket */

struct admin_runner {
	char		*indimail;	/* bin/indimail's path */
	char		*indimaild;	/* bin/indimaild's path */
	char		*config;	/* the configuration file */
	int		 ctl_fd;	/* to the master (SOCK_SEQPACKET) */
	pthread_mutex_t	 ctl_lock;	/* one reload at a time */
	int		 log_fd;	/* the log, opened by root; -1 none */
	pthread_mutex_t	 log_lock;	/* one stats run at a time */
};

/*
 * Fills be for r: the programs beside the running one (bin/indimaild's
 * folder), config, the master's socket, and the log for stats (read from
 * its start each time; -1: the log is stderr).
 */
void	admin_backend_init(struct admin_backend *be, struct admin_runner *r,
	    const char *config, int ctl_fd, int log_fd, const int prog_fd[2]);
/*
 * bin/indimail (or bin/indimaild) beside the running program, opened
 * O_PATH by the master as root before it drops privileges: the account
 * may not search the folders above it (a tree under a private home), and
 * runs it as /proc/self/fd/N, whose permission check is the file's own.
 * -1 when it cannot be opened (the runner then uses the path).
 */
int	admin_program_open(const char *name);
/* The log opened again after a rotation (the old descriptor is closed). */
void	admin_backend_log(struct admin_runner *r, int fd);

#endif
