/*
 * lua_config_int: what the files of the config reader share: typed readers
 * of a config table's fields (lua_config_read.c), each raising "bad config:
 * <where>: <why>" through luaL_error, and one parser per section
 * (lua_config_listen.c, lua_config_limits.c, lua_config_delivery.c,
 * lua_config_mailboxes.c, lua_config_directory.c). Private to src/lua; lua_api.h has the entry.
 */
#ifndef INDIMAIL_LUA_CONFIG_INT_H
#define INDIMAIL_LUA_CONFIG_INT_H

#include <lua.h>

#include "../mail/config.h"

/* A word from a fixed list: its value, or a config error naming them all. */
struct choice {
	const char	*name;
	int		 value;
};

/* lua_config_read.c: t is a stack index; where names the key in errors. */
int	cfg_bad(lua_State *, const char *where, const char *why);
/*
 * A problem that leaves the rest readable (a duplicate listener, a dangling
 * alias): raised, or, while `indimaild -t` collects (a table at
 * registry[CFG_DEFERRED]), noted there and the reading goes on.
 */
#define CFG_DEFERRED	"indimail.config_problems"
void	cfg_problem(lua_State *, const char *fmt, ...);
char	*cfg_opt_string(lua_State *, int t, const char *key, const char *where);
void	cfg_set_string(lua_State *, int t, const char *key, const char *where,
	    char **dst);
/* is_size: 0 int, 1 size_t, 2 long; the value is multiplied by scale. */
void	cfg_set_number(lua_State *, int t, const char *key, const char *where,
	    double lo, double hi, double scale, void *dst, int is_size);
int	cfg_opt_boolean(lua_State *, int t, const char *key, const char *where);
void	cfg_check_keys(lua_State *, int t, const char *section,
	    const char **allowed);
int	cfg_sub_table(lua_State *, int t, const char *key);
int	cfg_choose(lua_State *, const char *s, const char *where,
	    const struct choice *, const char *expected);
void	cfg_string_list(lua_State *, int t, const char *where, char ***out,
	    size_t *n, int domains);

/* One section each, the section's table at stack index t. */
void	cfg_listen(lua_State *, int t, struct config *);
void	cfg_limits(lua_State *, int t, struct config *);
void	cfg_timeouts(lua_State *, int t, struct config *);
void	cfg_auth_fail(lua_State *, int t, struct auth_fail_conf *);
int	cfg_client_tls(lua_State *, const char *s, const char *where);
void	cfg_delivery(lua_State *, int t, struct delivery_conf *);
void	cfg_routes(lua_State *, int t, struct delivery_conf *);
void	cfg_mailboxes(lua_State *, int t, struct delivery_conf *);
void	cfg_directory(lua_State *, int t, struct directory_conf *);
/* lua_config_domains.c: domain_rules, domain_rules_limits, policy_path */
void	cfg_domain_rules(lua_State *, int t, struct config *);
/* lua_config_dkim.c: dkim = { keys=, jobs=, timeout= } */
void	cfg_dkim(lua_State *, int t, struct config *);
/* lua_config_admin.c: admin = { listen=, tls=, cert=, key=, tokens= } */
void	cfg_admin(lua_State *, int t, struct config *);

#endif
