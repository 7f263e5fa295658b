/*
 * reload: what a SIGHUP re-opens besides the configuration: the log file
 * (after logrotate moved it) and the TLS certificate and key, through
 * root's keeper (keeper.h), handed to the children over their ctl
 * channels (ctl.h). Called by the master's reload() (master.c).
 */
#ifndef INDIMAIL_RELOAD_H
#define INDIMAIL_RELOAD_H

#include <stddef.h>

#include "../mail/config.h"
#include "ctl.h"
#include "listen.h"

/* The keeper's socket and the start's paths it re-opens (NULL: none). */
struct reload_files {
	int	 keeper;
	char	*log, *cert, *key;
	char	*admin_cert, *admin_key;	/* NULL: no admin TLS at start */
};

/*
 * Applies c's log level, format and syslog, re-opens the log file for the
 * master and every child in to[0..n), and for reading to `reader` (the
 * admin process, or NULL); logs event=reload_log_kept when c names
 * another file.
 */
void	reload_log(const struct reload_files *, const struct config *c,
	    const struct ctl *const *to, size_t n, const struct ctl *reader);
/*
 * New TLS contexts for the listeners from the files read again and c's
 * listener profiles, and the files to every worker in to[0..n); on any
 * failure the running contexts stay (event=reload_tls_failed).
 */
void	reload_tls(const struct reload_files *, const struct config *c,
	    struct listener *lst, size_t nlst, const struct ctl *const *to,
	    size_t n);

/*
 * The admin table of the start, then on each reload: logs
 * event=reload_admin_kept when c's differs from it (the admin process
 * keeps its address, certificate and tokens file until a restart).
 */
void	reload_admin_remember(const struct admin_conf *);
void	reload_admin_check(const struct admin_conf *c);
/*
 * The admin API's certificate and key read again at the start's paths
 * (whatever the new configuration names: see reload_admin_check), checked
 * by building a context from them, kept for an admin process forked later
 * and sent to the running one over its ctl channel `to` (NULL: none
 * runs), which serves them to new connections (admind.c). On a failure
 * the running ones stay (event=reload_tls_failed name=admin).
 */
void	reload_admin_tls(const struct reload_files *, const struct ctl *to);

#endif
