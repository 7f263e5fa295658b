/*
 * src/daemon owns the processes of indimaild and nothing else: main, the
 * master (this file: binds the listeners, drops privileges, forks the
 * children and supervises them), the unprivileged configuration child
 * (bootstrap), the listener set (listen), the signal dispositions around
 * fork (proc), the SMTP worker (smtpd) and the queue manager (qmgrd). It
 * is the only folder that may include both src/smtp and src/deliver.
 */
#ifndef INDIMAIL_MASTER_H
#define INDIMAIL_MASTER_H

#include "../lua/lua_runtime.h"
#include "proc.h"

/* user: the account to run as when started as root. */
/* tls_files 0 (-T, issue 13): without reading the TLS files, which the
 * account the admin API runs as may not read. */
int	master_check(const char *config_path, const char *user, int tls_files);
int	master_run(const char *config_path, const char *user)
	    __attribute__((noreturn));

#endif
