/*
 * proc: what every indimaild process does with signals around fork. The
 * master forks its children with SIGHUP/SIGTERM/SIGINT blocked, so a
 * signal sent before a child has its own handlers waits instead of
 * killing it with the default action. Also what every process applies
 * of a configuration's log settings.
 */
#ifndef INDIMAIL_PROC_H
#define INDIMAIL_PROC_H

/* In the child, right after fork: the master's handlers do not apply. */
void	proc_child_signals(void);
/* In the child, once its own handlers are installed. */
void	unblock_signals(void);

/* a configuration's log level, format and syslog, at once. */
struct config;
void	proc_log_settings(const struct config *);

#endif
