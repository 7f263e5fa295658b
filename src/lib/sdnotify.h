/*
 * [src/lib: generic code that knows no mail; it includes nothing outside
 * src/lib. See docs/architecture.md.]
 *
 * sdnotify: tells the service manager (systemd, Type=notify) how the
 * master is doing: READY=1, RELOADING=1, STOPPING=1 and STATUS= lines,
 * through libsystemd's sd_notify. Without $NOTIFY_SOCKET (started by
 * hand, by a test, by another supervisor) every call does nothing.
 */
#ifndef INDIMAIL_SDNOTIFY_H
#define INDIMAIL_SDNOTIFY_H

/* Listeners bound, first children forked: status says how many. */
void	sdnotify_ready(const char *status);
/* A reload begins (RELOADING=1 with the monotonic time systemd asks). */
void	sdnotify_reloading(void);
/* A drain begins. */
void	sdnotify_stopping(void);

#endif
