/*
 * [src/admin: the admin HTTP API (docs/admin-api.md). See
 * docs/architecture.md.]
 *
 * admin_spawn: runs one program with an argv vector (posix_spawn, no
 * shell), feeds it a small stdin, collects its stdout and stderr up to a
 * cap, and kills it when it runs past its time. The admin API's directory,
 * queue, stats and config-check operations are bin/indimail's and
 * bin/indimaild's own commands run this way.
 */
#ifndef INDIMAIL_ADMIN_SPAWN_H
#define INDIMAIL_ADMIN_SPAWN_H

#include "../lib/buf.h"

#define ADMIN_SPAWN_OUTPUT_MAX	(4 << 20)	/* stdout and stderr, each */

/*
 * Runs argv[0] (a path) with argv; its stdin is input_fd when >= 0, else
 * the text input (may be NULL).
 * Returns its exit status (0..255), or -1 with why in err (could not
 * start, killed after seconds, said more than the cap).
 */
int	admin_spawn(const char *const *argv, int input_fd, const char *input,
	    int seconds, struct buf *out, struct buf *err);

#endif
