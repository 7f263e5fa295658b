/*
 * sdnotify: see sdnotify.h. A failed notification is not an error of
 * ours: the manager only waits longer and says so in its own log.
 */
#include <systemd/sd-daemon.h>
#include <time.h>

#include "sdnotify.h"

#define USEC_PER_SEC	1000000ULL
#define NSEC_PER_USEC	1000ULL

void
sdnotify_ready(const char *status)
{
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void
sdnotify_reloading(void)
{
	struct timespec ts;
	unsigned long long usec;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	usec = (unsigned long long)ts.tv_sec * USEC_PER_SEC +
	    (unsigned long long)ts.tv_nsec / NSEC_PER_USEC;
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading "
	    "the configuration", usec);
}

void
sdnotify_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=draining: finishing the sessions "
	    "and deliveries under way");
}
