/*
 * queue_tool: `indimail queue ...` (docs/queue.md, "Queue tooling"). The
 * commands ask the running queue manager over <queue.path>/qmgr.sock;
 * list, mailq and cat read the queue folders themselves when it is not
 * running (cat always does, and the wal backend's segments).
 */
#ifndef INDIMAIL_CLI_QUEUE_TOOL_H
#define INDIMAIL_CLI_QUEUE_TOOL_H

#include "../lua/lua_runtime.h"

/* argv[0] is a verb queue_tool_knows; returns the exit code (2: usage). */
int	queue_tool_main(struct runtime *, int argc, char **argv);

/*
 * queue_tool.c: one request and its whole answer, trailing newlines cut
 * (control_request's 0, -1, -2); what to say when it returned < 0.
 */
int	queue_tool_request(struct runtime *, const char *request,
	    struct buf *reply);
void	queue_tool_unreachable(struct runtime *, int rc);

/* A verb of `indimail queue` (list, show, hold, ...). */
int	queue_tool_knows(const char *verb);

/*
 * A bad command line for verb: "indimail queue VERB: " and what is wrong
 * on stderr, then the verb's usage line; returns 2.
 */
int	queue_tool_usage(const char *verb, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/*
 * argv after argv[0] (the verb): the flags named in flags (NULL ends it)
 * set their seen[i]; exactly want (0 or 1) other arguments, that one in
 * *arg. 0, or queue_tool_usage's 2 once it said what was wrong.
 */
int	queue_tool_args(int argc, char **argv, const char *const flags[],
	    int seen[], int want, const char **arg);

/* queue_tool_dests.c: destinations [--down] [--json]. */
int	queue_tool_destinations(struct runtime *, int argc, char **argv);

/* queue_tool_action.c: hold, release, remove, flush, requeue. */
int	queue_tool_is_action(const char *);
int	queue_tool_action(struct runtime *, int argc, char **argv);

#endif
