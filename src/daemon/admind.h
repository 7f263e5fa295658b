/*
 * admind: the admin API's process (issue 13, docs/admin-api.md), a child
 * of the master like the queue manager. It serves HTTPS on the socket the
 * master bound as root, with the certificate the master read as root, as
 * the account the master dropped to. The master's side of it (binding,
 * the fork's socket pair, reload requests) is master_admin.c's.
 */
#ifndef INDIMAIL_ADMIND_H
#define INDIMAIL_ADMIND_H

#include "../lua/lua_runtime.h"

struct admind_conf {
	int		 listen_fd;
	int		 ctl_fd;	/* to the master: reload requests */
	int		 files_fd;	/* from the master: the log reopened (ctl.h) */
	int		 log_fd;	/* the log, for reading; -1: none */
	int		 prog_fd[2];	/* bin/indimail, bin/indimaild (O_PATH) */
	const char	*cert, *key;	/* PEM text; NULL: plain HTTP */
	const char	*address;	/* for the log */
	int		 port;
};

/*
 * Never returns: serves until SIGTERM. SIGHUP re-reads the tokens and
 * applies what the master sent: the log reopened, a new certificate.
 */
void	admind_main(struct runtime *, const struct admind_conf *);

/* master_admin.c: the master's side. */
struct boot_plan;
/* As root: binds the admin socket and reads its TLS files (fatal). */
void	master_admin_bind(const struct boot_plan *);
int	master_admin_enabled(void);
/* Before the fork: a new socket pair; SIGIO tells the master of requests. */
void	master_admin_pre_fork(void);
/* In the parent after the fork (pid 0: the fork failed). */
void	master_admin_post_fork(pid_t pid);
/* In the admin child, with its end of the ctl channel: never returns. */
void	master_admin_child(struct runtime *, int files_fd);
/* In any other child: closes the admin socket and the master's end. */
void	master_admin_close(void);
/* A reload's admin certificate and key, for admin processes forked later. */
void	master_admin_use_tls(const struct buf *cert, const struct buf *key);
/* On SIGIO: answers every pending request with reload()'s result. */
void	master_admin_serve(int (*reload)(void));

#endif
