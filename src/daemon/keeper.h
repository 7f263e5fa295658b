/*
 * keeper: the one process of indimaild that stays root (when started as
 * root). It holds the paths of the TLS files (the listeners' and the admin
 * API's) and of the log as the start evaluated them, and on the master's request opens them again and hands
 * over the descriptors: the master and its children run as the account
 * and can neither read the key nor create a file in root's log folder.
 */
#ifndef INDIMAIL_KEEPER_H
#define INDIMAIL_KEEPER_H

#include "../lib/buf.h"
#include "bootstrap.h"

/* Largest TLS file read (certificate chain or key). */
#define KEEPER_TLS_MAX	(1 << 20)

/*
 * Forks the keeper with the plan's paths (call it before dropping
 * privileges). Returns the master's end of its socket, or -1 (logged:
 * reloads then cannot reopen anything, the rest works).
 */
int	keeper_start(const struct boot_plan *);
/* At shutdown: closes sock (the keeper then exits) and reaps it, bounded. */
void	keeper_stop(int sock);
/* The TLS files read again: 0, or -1 and the reason in err. */
int	keeper_tls(int sock, struct buf *cert, struct buf *key,
	    struct buf *err);
/* The admin API's certificate and key read again (admin.cert, admin.key). */
int	keeper_admin_tls(int sock, struct buf *cert, struct buf *key,
	    struct buf *err);
/*
 * The log file opened again (a new file if logrotate moved it away): its
 * descriptor, or -1 and the reason in err (empty: there is no log file);
 * *read_fd: the same file open for reading, or -1.
 */
int	keeper_log(int sock, int *read_fd, struct buf *err);

#endif
