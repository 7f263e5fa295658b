/*
 * master_int: the master's start-up steps (master_boot.c), for master.c.
 */
#ifndef INDIMAIL_MASTER_INT_H
#define INDIMAIL_MASTER_INT_H

#include <pwd.h>
#include <stddef.h>

#include "../lib/buf.h"
#include "../lua/lua_runtime.h"
#include "bootstrap.h"
#include "listen.h"

/* The account to run as when root (fatal: missing, or root itself). */
struct passwd *master_service_account(const char *name);
/*
 * The plan: evaluated by an unprivileged child when pw is given (root
 * never runs the configuration); else from the configuration itself,
 * whose runtime is returned (NULL with pw).
 */
struct runtime *master_make_plan(const char *path, const struct passwd *pw,
	    struct boot_plan *);
/* Binds the plan's TCP listeners (as root when started as root); the
 * array has room for the local submission socket after *nlst. */
struct listener *master_bind_tcp(const struct boot_plan *, size_t *nlst);
/* Reads the TLS files as root: the workers never can. */
void	master_read_tls_files(const struct boot_plan *, struct buf *cert,
	    struct buf *key);
/* Drops to pw and loads the configuration as it; fatal if the plan
 * changed between the two loads. */
struct runtime *master_become(const char *path, const struct passwd *pw,
	    const struct boot_plan *);
/*
 * After the configuration is loaded as the account: each listener's TLS
 * context (from the PEM files root read), and the local submission socket
 * (bound unprivileged: its folder is the account's) as lst[*nlst].
 */
void	master_finish_listeners(const struct config *, const struct buf *cert,
	    const struct buf *key, struct listener *lst, size_t *nlst);

#endif
