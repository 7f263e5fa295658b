/*
 * directory: who is local and where mail for an address goes. Today the
 * backend is the configuration (mailboxes.users / aliases); the SQLite and
 * MariaDB backends will sit behind this same interface.
 */
#ifndef INDIMAIL_DIRECTORY_H
#define INDIMAIL_DIRECTORY_H

#include <stddef.h>

#include "../lib/buf.h"
#include "../mail/config.h"

/* The mailbox name rule of directory_mailbox_name(), for error texts. */
#define DIRECTORY_NAME_RULE \
	"letters, digits and . _ + - = only, not starting with a dot"

enum dir_lookup {
	DIR_LOCAL_USER,		/* a mailbox here */
	DIR_ALIAS,		/* an alias, the postmaster or a catch-all */
	DIR_UNKNOWN,		/* users are listed and it is none of them */
	DIR_BAD_NAME,		/* would be a mailbox, but no folder can hold it */
	DIR_NOT_LOCAL
};

/* Is this RCPT acceptable for a local domain? */
enum dir_lookup directory_lookup(const struct config *, const char *address);

/*
 * The one rule for a deliverable mailbox name, shared by the RCPT check and
 * local delivery: the local part of user@domain becomes a folder name.
 */
int	directory_mailbox_name(const char *address);

/*
 * Does a final (expanded) local address have a mailbox: a listed user, the
 * postmaster address, or anything when no users are listed?
 */
int	directory_has_mailbox(const struct config *, const char *address);

/*
 * Consistency of a configuration at load: users and the postmaster have
 * deliverable names, every alias target ends in mailboxes or remote
 * addresses, without loops. -1 with the reason in err.
 */
int	directory_check(const struct config *, struct buf *err);

struct expansion {
	char	       **rcpt;		/* final recipients */
	char	       **orcpt;		/* the address the client gave for each */
	size_t		 n;
};

/*
 * Expands aliases, catch-alls and postmaster into final recipients, at most
 * 10 levels deep, each final address once. Returns -1 on an alias loop.
 */
int	directory_expand(const struct config *, char **rcpts, size_t n,
	    struct expansion *);
void	expansion_free(struct expansion *);

#endif
