/*
 * proc: signal dispositions across fork (see proc.h).
 */
#include <signal.h>

#include "../lib/log.h"
#include "../mail/config.h"
#include "proc.h"

void
proc_child_signals(void)
{
	signal(SIGCHLD, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGUSR2, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGALRM, SIG_DFL);	/* the master's wal sweep */
	signal(SIGIO, SIG_DFL);		/* the master's admin requests */
}

void
unblock_signals(void)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

void
proc_log_settings(const struct config *c)
{
	log_set_level((enum log_level)c->log_level);
	log_set_format((enum log_format)c->log_format);
	log_set_syslog(c->log_syslog, c->log_syslog_socket);
}
