/*
 * ctl: the master's channel to each child, a datagram socketpair made
 * before the fork. On SIGHUP the master sends, before the signal, what
 * the child cannot open itself: the log file opened again (logrotate) and
 * the new TLS files' bytes (in a sealed memfd, so a chain of any size is
 * one small datagram), and whether the new configuration loaded; the
 * child applies what waits in on_reload.
 */
#ifndef INDIMAIL_CTL_H
#define INDIMAIL_CTL_H

#include "../lib/buf.h"

struct ctl {
	int	master;		/* the master's end, non-blocking; -1: none */
	int	child;		/* the child's end, until the fork is done */
};

int	ctl_open(struct ctl *, struct buf *err);
/* In the master after the fork (its copy of the child's end), or both. */
void	ctl_close_child(struct ctl *);
void	ctl_close(struct ctl *);
/* The master's sends: 0, or -1 with errno (the child is then logged). */
int	ctl_send_log(const struct ctl *, int log_fd);
/* The log for reading, to a child that reads it (the admin process). */
int	ctl_send_log_reader(const struct ctl *, int read_fd);
/* In that child: who takes such a descriptor (else it is closed). */
typedef void (*ctl_fd_fn)(int fd);
void	ctl_on_log_reader(ctl_fd_fn);
/* The master's new configuration loaded: the child may load it too. */
int	ctl_send_config(const struct ctl *);
/* memfd: from ctl_tls_memfd, made once per reload for every child. */
int	ctl_send_tls(const struct ctl *, int memfd, size_t cert_len,
	    size_t key_len);
/* The cert and key bytes in a sealed memfd: its fd, or -1 and err. */
int	ctl_tls_memfd(const struct buf *cert, const struct buf *key,
	    struct buf *err);

/* What a child does with new TLS files (the buffers are wiped after). */
typedef void (*ctl_tls_fn)(void *arg, const struct buf *cert,
    const struct buf *key);
/*
 * In the child: applies every message waiting on its end, oldest first
 * (a second reload's files replace the first's): a log descriptor is
 * used at once; TLS files go to on_tls (NULL: the child has no TLS).
 * 1 when a "config" message was among them (the child then loads the
 * configuration; never one the master refused, which could loop or hang
 * in every child at once), else 0.
 */
int	ctl_apply(int fd, ctl_tls_fn on_tls, void *arg);

#endif
