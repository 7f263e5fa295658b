/*
 * config_keys_int: the shape of config_keys.c's tables, shared with the
 * walk over them (config_settings.c). Private to src/cli.
 */
#ifndef INDIMAIL_CONFIG_KEYS_INT_H
#define INDIMAIL_CONFIG_KEYS_INT_H

#include <stddef.h>

#include "config_keys.h"

#define MS	1000		/* the struct holds ms, the file says seconds */

enum ck_type {
	CK_STR, CK_INT, CK_SIZE, CK_LONG, CK_BOOL, CK_WORD, CK_LIST,
	CK_SECRET, CK_FN, CK_ARRAY
};

struct ck_word {
	const char	*name;
	int		 value;
};

struct config_array;

struct config_key {
	const char	*key;
	enum ck_type	 type;
	size_t		 off;
	int		 unit;		/* numbers: the struct holds value*unit */
	int		 zero_nil;	/* numbers: 0 is "not set" (nil) */
	const struct ck_word *words;		/* CK_WORD */
	size_t		 count_off;		/* CK_LIST, CK_ARRAY */
	json_t		*(*get)(const void *base);	/* CK_FN */
	const struct config_array *sub;		/* CK_ARRAY */
};

/* Elements of a list; their default filled from the element and c. */
struct config_array {
	const struct config_key *keys;
	size_t		 size;
	long		 name_off;	/* keyed by this string; -1: by index */
	void		(*dflt)(const struct config *c, const void *elem,
			    void *out);
};

extern const struct config_key config_keys[];

#endif
