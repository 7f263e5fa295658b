/*
 * lua_source: the text of a Lua file as tokens (lua_source.c), the keys of
 * its indimail.config{...} table with their lines and the line a config
 * error is about (lua_source_table.c). Used to name the exact line of a
 * bad key and by the checks of `indimaild -t` (lua_check.c); nothing here
 * evaluates Lua.
 */
#ifndef INDIMAIL_LUA_SOURCE_H
#define INDIMAIL_LUA_SOURCE_H

#include <stddef.h>

enum lua_tok_kind { LTOK_NAME, LTOK_STRING, LTOK_NUMBER, LTOK_OP, LTOK_END };

struct lua_tok {
	enum lua_tok_kind kind;
	char		*text;		/* a string's raw text, no quotes */
	int		 line;
};

/* One key of the config table: "listen[2].port", "routes['x.test']". */
struct lua_field {
	char		*path;
	char		*value;		/* a string value's text, or NULL */
	int		 line;
};

struct lua_source {
	struct lua_tok	*tok;
	size_t		 ntok, cap;
	struct lua_field *field;
	size_t		 nfield, fcap;
};

/* Tokens of text / of a file (-1: unreadable; s is empty then). */
void	lua_source_lex(struct lua_source *, const char *text, size_t len);
int	lua_source_read(struct lua_source *, const char *path);
void	lua_source_free(struct lua_source *);
/* Token i is of kind k (and has this text, unless NULL). */
int	lua_source_is(const struct lua_source *, size_t i, enum lua_tok_kind k,
	    const char *text);

/*
 * Records the keys of the indimail.config{...} call that starts last at or
 * before line call_line (0: the first call). Returns -1 if there is none.
 */
int	lua_source_config_fields(struct lua_source *, int call_line);
/*
 * The line of the key a "bad config: WHERE: why" message (without the
 * prefix) is about, or 0 if the path is not written or is ambiguous.
 */
int	lua_source_error_line(const struct lua_source *, const char *msg);
/* The line of the key at path (e.g. "user"), or 0. */
int	lua_source_key_line(const struct lua_source *, const char *path,
	    const char *hint);

#endif
