/*
 * master: the indimaild parent process. Binds the listeners, drops
 * privileges, forks the SMTP workers and supervises them.
 */
#ifndef INDIMAIL_MASTER_H
#define INDIMAIL_MASTER_H

#include "../lua/lua_runtime.h"
#include "proc.h"

/* user: the account to run as when started as root. */
int	master_check(const char *config_path, const char *user);
int	master_run(const char *config_path, const char *user)
	    __attribute__((noreturn));

#endif
