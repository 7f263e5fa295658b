/*
 * master: the indimaild parent process. Binds the listeners, drops
 * privileges, forks the SMTP workers and supervises them.
 */
#ifndef INDIMAIL_MASTER_H
#define INDIMAIL_MASTER_H

#include "../lua/lua_runtime.h"

int	master_check(const char *config_path);
/*
 * Children are forked with SIGHUP/SIGTERM/SIGINT blocked; each calls this
 * once its own handlers are installed (see child_signals in master.c).
 */
void	unblock_signals(void);
int	master_run(const char *config_path) __attribute__((noreturn));

#endif
