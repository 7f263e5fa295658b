/*
 * bootstrap: what a master started as root needs from a configuration it
 * must not run itself. The configuration is Lua code; root never runs it.
 * A child drops to the service account, evaluates the file and sends back
 * only the plan: the TCP listeners to bind, the files only root may read
 * (TLS certificate and key), the log file and level. The master binds,
 * reads and opens those as root, drops privileges, and only then loads the
 * configuration for real (as the account) and checks it against the plan.
 */
#ifndef INDIMAIL_BOOTSTRAP_H
#define INDIMAIL_BOOTSTRAP_H

#include <pwd.h>
#include <stddef.h>

#include "../lib/buf.h"
#include "../mail/config.h"

struct boot_listener {
	char		*name, *address;
	int		 port;
	enum tls_mode	 tls;
};

struct boot_plan {
	struct boot_listener *listen;	/* TCP listeners (root binds them) */
	size_t		 nlisten;
	char		*tls_cert, *tls_key;	/* root reads them; may be NULL */
	char		*log_file;		/* root opens it; NULL: stderr */
	int		 log_level;
	char		*user;			/* config's `user`, or NULL */
	/* the admin API's socket and TLS files */
	int		 admin;			/* admin = {...} was given */
	char		*admin_address;
	int		 admin_port, admin_tls;
	char		*admin_cert, *admin_key;	/* NULL: no TLS */
};

/* The plan of a configuration already loaded (not root, or to compare). */
void	boot_plan_from_config(const struct config *, struct boot_plan *);
/* Longest a configuration may take to load at start (reload: the watchdog). */
#define BOOT_LOAD_SECONDS	30

/*
 * Forks a child that drops to pw (unless NULL), loads path within seconds
 * and writes its plan back. Returns 0, or -1 with the configuration's own
 * error (or the timeout) in err. check: runtime_load_checked (indimaild -t).
 */
int	boot_plan_unprivileged(const char *path, const struct passwd *pw,
	    int seconds, int check, struct boot_plan *, struct buf *err);
/* 1 when a and b ask for the same listeners, files and log. */
int	boot_plan_equal(const struct boot_plan *a, const struct boot_plan *b);
void	boot_plan_free(struct boot_plan *);
/* setgroups/setgid/setuid to pw, and proves root cannot be regained. */
int	drop_to(const struct passwd *pw, struct buf *err);

#endif
