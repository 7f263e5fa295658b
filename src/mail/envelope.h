/*
 * [src/mail: what every part of the server knows about mail, whatever the
 * protocol; it includes only src/lib. See docs/architecture.md.]
 *
 * envelope: what travels with a message from the SMTP session through the
 * queue to delivery and bounces: its id, where and when it came from, the
 * sender, the recipients (each with the address the client gave, ORCPT,
 * and whether the directory found its domain local),
 * the transaction's variables set by hooks (tx.env), the body type and the
 * bounce level. Its file form belongs to src/queue/queue_envelope.c, where
 * it lies in the queue to struct queue_item: neither is in here.
 */
#ifndef INDIMAIL_ENVELOPE_H
#define INDIMAIL_ENVELOPE_H

#include <stddef.h>
#include <time.h>

#define ENVELOPE_ID_LEN	24

/* tx.env: names and single-line values, owned. */
struct envvars {
	char		**key, **val;
	size_t		  n;
};

enum envelope_body { ENVELOPE_BODY_NONE, ENVELOPE_BODY_7BIT,
	ENVELOPE_BODY_8BITMIME };

/*
 * A built or parsed envelope owns its strings (envelope_free). The SMTP
 * session also fills one on its stack with the transaction's own strings
 * to size and write it: that one borrows them and is never freed.
 */
struct envelope {
	char		 id[ENVELOPE_ID_LEN + 1];
	time_t		 received;
	char		*ip, *helo, *listener, *tls, *auth_user;
	char		*sender;		/* "" for the null sender */
	char	       **rcpts;
	char	       **orcpts;	/* NULL, or a NULL entry: same as rcpt */
	/*
	 * NULL, or per recipient 1: the directory found its domain local when
	 * the message was queued (delivered here unless a route hook says
	 * otherwise), 0: not known, local_domains decides.
	 */
	unsigned char	*local;
	size_t		 nrcpts;
	struct envvars	 vars;
	enum envelope_body body;
	int		 bounce_level;	/* env INDIMAIL_BOUNCE: 1 bounce, 2 double */
	char		*hold;		/* held by a hook (why); NULL: not */
};

void	envvars_set(struct envvars *, const char *k, const char *v);
void	envvars_free(struct envvars *);

/* Appends a recipient, not marked local (copies both; orcpt may be NULL). */
void	envelope_add_rcpt(struct envelope *, const char *rcpt,
	    const char *orcpt);
/* The address the client gave for recipient i. */
const char *envelope_orcpt(const struct envelope *, size_t i);
/* Was recipient i's domain found local when it was queued? */
int	envelope_rcpt_local(const struct envelope *, size_t i);
/* "7BIT", "8BITMIME" or NULL; and back (NONE for anything else). */
const char *envelope_body_name(enum envelope_body);
enum envelope_body envelope_body_parse(const char *);
void	envelope_free(struct envelope *);

#endif
