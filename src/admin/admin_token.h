/*
 * [src/admin: the admin HTTP API and /metrics (docs/admin-api.md); it
 * includes lib, mail, net, queue, directory and lua. See
 * docs/architecture.md.]
 *
 * admin_token: the API's bearer tokens and their scopes. A token is
 * "imt_" and 32 random bytes in base64url; the tokens file keeps one line
 * per token, "NAME SCOPE,SCOPE,... SHA256-HEX", never the token itself.
 */
#ifndef INDIMAIL_ADMIN_TOKEN_H
#define INDIMAIL_ADMIN_TOKEN_H

#include <stddef.h>
#include <sys/types.h>

#include "../lib/buf.h"

#define ADMIN_TOKEN_PREFIX	"imt_"
#define ADMIN_TOKEN_BYTES	32	/* random bytes in a token */
#define ADMIN_HASH_BYTES	32	/* SHA-256 */
#define ADMIN_TOKEN_NAME_MAX	64

/* The scopes, one bit each (admin_scope_names() in this order). */
enum admin_scope {
	SCOPE_DOMAINS_READ = 1 << 0, SCOPE_DOMAINS_WRITE = 1 << 1,
	SCOPE_USERS_READ = 1 << 2, SCOPE_USERS_WRITE = 1 << 3,
	SCOPE_ALIASES_READ = 1 << 4, SCOPE_ALIASES_WRITE = 1 << 5,
	SCOPE_QUEUE_READ = 1 << 6, SCOPE_QUEUE_WRITE = 1 << 7,
	SCOPE_CONFIG_READ = 1 << 8, SCOPE_CONFIG_WRITE = 1 << 9,
	SCOPE_STATS_READ = 1 << 10, SCOPE_METRICS = 1 << 11,
};
#define ADMIN_NSCOPES	12

struct admin_token {
	char		*name;
	unsigned	 scopes;
	unsigned char	 hash[ADMIN_HASH_BYTES];
};

struct admin_tokens {
	struct admin_token *v;
	size_t		 n;
};

/* The name of scope bit i (0 <= i < ADMIN_NSCOPES). */
const char *admin_scope_name(int i);
/* "a,b,c" into bits: 0, or -1 with the unknown one in err. */
int	admin_scopes_parse(const char *list, unsigned *out, struct buf *err);
void	admin_scopes_format(unsigned scopes, struct buf *out);

/* The tokens file: configured, else "admin-tokens" beside the config. */
void	admin_tokens_path(const char *configured, const char *config_path,
	    struct buf *out);
/* Reads path (absent: no tokens): 0, or -1 with a line's problem in err. */
int	admin_tokens_load(const char *path, struct admin_tokens *,
	    struct buf *err);
/* Writes every token (tmp, rename), mode 0640; gid >= 0: root:gid. */
int	admin_tokens_save(const char *path, const struct admin_tokens *,
	    gid_t gid, struct buf *err);
void	admin_tokens_free(struct admin_tokens *);
/* Adds a token, owned by the set; -1 if the name is taken or not a word. */
int	admin_tokens_add(struct admin_tokens *, const char *name,
	    unsigned scopes, const unsigned char hash[ADMIN_HASH_BYTES],
	    struct buf *err);
/* Removes the token named name: 0, or -1 if there is none. */
int	admin_tokens_remove(struct admin_tokens *, const char *name);
/* The token whose hash is the bearer's, compared in constant time; NULL. */
const struct admin_token *admin_tokens_find(const struct admin_tokens *,
	    const char *bearer);

/* A new token (text into out) and its hash: 0, or -1 (no randomness). */
int	admin_token_new(struct buf *out, unsigned char hash[ADMIN_HASH_BYTES]);
void	admin_token_hash(const char *token, unsigned char hash[ADMIN_HASH_BYTES]);

#endif
