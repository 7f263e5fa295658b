/*
 * config_keys: every setting of struct config as a dotted key
 * ("limits.message_size", "listen[1].port", "routes[\"x\"].host") with its
 * value in the unit of the configuration file and whether it equals its
 * default: what `indimail config dump|diff` print (config_tool.c).
 */
#ifndef INDIMAIL_CONFIG_KEYS_H
#define INDIMAIL_CONFIG_KEYS_H

#include <jansson.h>
#include <stdio.h>

#include "../mail/config.h"

struct config_setting {
	char		*key;
	json_t		*value;		/* null: unset (nil in Lua) */
	int		 hidden;	/* a secret: value is NULL */
	int		 is_default;
};

struct config_settings {
	struct config_setting *v;
	size_t		 n;
};

/* The settings of c, each compared with dflt (config_keys_defaults). */
void	config_settings_collect(const struct config *c,
	    const struct config *dflt, struct config_settings *);
/* Appends one setting; value is taken (owned by the list). */
void	config_settings_add(struct config_settings *, const char *key,
	    json_t *value, int is_default);
void	config_settings_free(struct config_settings *);
/*
 * The built-in defaults as they apply to c (postmaster@ c's first local
 * domain, ...); c NULL: to a configuration that sets nothing.
 */
void	config_keys_defaults(struct config *dflt, const struct config *c);
/* hooks.STAGE = { "policy", ... } of the runtime (default: none). */
struct runtime;
void	config_settings_hooks(struct runtime *, struct config_settings *);
/* s as a Lua string literal. */
struct buf;
void	config_lua_quote(struct buf *, const char *s);
/* 1 if arg ("listen", "listen[2].port", "routes[\"x\"]") names a key. */
int	config_key_known(const char *arg);
/* Every key the table knows, "listen[].port" for an element's. */
void	config_keys_print(FILE *);

#endif
