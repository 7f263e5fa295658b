/*
 * lua_config_directory: the directory = { ... } section: which backend
 * holds users and aliases ("config", the default: mailboxes.users and
 * mailboxes.aliases; "sqlite", a database file made by `indimail domain
 * add`; or "mariadb", a MariaDB/MySQL database reached by socket or host
 * and port, its password read from password_file, which must not be
 * readable by others), how long the front caches a backend's answers
 * (seconds), how address extensions are split (extension_delimiter),
 * how RCPT answers a full mailbox (over_quota) and which passwords the
 * admin CLI accepts (password_policy; docs/directory.md).
 */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/buf.h"
#include "../lib/fsutil.h"
#include "lua_config_int.h"

/* The first line of password_file; a file others may read is refused. */
static void
cfg_db_password(lua_State *L, const char *path, struct directory_conf *d)
{
	struct buf b = BUF_INIT, err = BUF_INIT;
	struct stat st;
	const char *why = NULL;

	if (stat(path, &st) == 0 && (st.st_mode & S_IROTH))
		why = "may be read by anyone (chmod o-r; keep it root-owned, "
		    "group of the account, mode 0640)";
	else if (read_small_file(path, 4096, &b, &err) < 0)
		why = buf_cstr(&err);
	if (why) {
		lua_pushfstring(L, "%s: %s", path, why);
		buf_free(&b);
		buf_free(&err);
		cfg_bad(L, "directory.password_file", lua_tostring(L, -1));
	}
	buf_appendc(&b, '\0');
	b.data[strcspn(b.data, "\r\n")] = '\0';
	d->password = strdup(b.data);
	explicit_bzero(b.data, b.len);
	buf_free(&b);
}

static void
cfg_directory_mariadb(lua_State *L, int t, struct directory_conf *d)
{
	char *pwfile;

	cfg_set_string(L, t, "host", "directory.host", &d->host);
	cfg_set_string(L, t, "socket", "directory.socket", &d->socket);
	cfg_set_string(L, t, "database", "directory.database", &d->database);
	cfg_set_string(L, t, "user", "directory.user", &d->user);
	cfg_set_number(L, t, "port", "directory.port", 1, 65535, 1, &d->port,
	    0);
	cfg_set_number(L, t, "timeout", "directory.timeout", 1, 300, 1,
	    &d->timeout_s, 0);
	cfg_set_number(L, t, "pool", "directory.pool", 1, 64, 1, &d->pool, 0);
	if ((pwfile = cfg_opt_string(L, t, "password_file",
	    "directory.password_file"))) {
		lua_pushstring(L, pwfile);	/* anchored: pwfile can go */
		free(d->password_file);
		d->password_file = pwfile;
		cfg_db_password(L, lua_tostring(L, -1), d);
		lua_pop(L, 1);
	}
	if (d->backend != DIRECTORY_MARIADB)
		return;
	if (d->database == NULL)
		cfg_bad(L, "directory.database", "is required for backend "
		    "\"mariadb\"");
	if (d->socket == NULL && d->host == NULL)
		cfg_bad(L, "directory.socket", "or directory.host is required "
		    "for backend \"mariadb\"");
}

/* Characters of DIRECTORY_DELIMITERS only, each at most once. */
static void
cfg_extension_delimiter(lua_State *L, int t, struct directory_conf *d)
{
	static const char where[] = "directory.extension_delimiter";
	const char *s;

	lua_getfield(L, t, "extension_delimiter");
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return;
	}
	if (lua_type(L, -1) != LUA_TSTRING)
		cfg_bad(L, where, "must be a string");
	s = lua_tostring(L, -1);
	for (const char *p = s; *p; p++)
		if (strchr(DIRECTORY_DELIMITERS, *p) == NULL)
			luaL_error(L, "bad config: %s: '%c' is not allowed (only "
			    "characters of \"%s\", e.g. \"+\", \"-\" or \"+-\"; "
			    "\"\" turns extensions off)", where, *p,
			    DIRECTORY_DELIMITERS);
		else if (strchr(p + 1, *p))
			luaL_error(L, "bad config: %s: '%c' is given twice",
			    where, *p);
	strcpy(d->extension_delimiter, s);	/* at most each of them once */
	lua_pop(L, 1);
}

/* over_quota = "tempfail" (452 4.2.2, the default) or "reject" (552). */
static void
cfg_over_quota(lua_State *L, int t, struct directory_conf *d)
{
	static const struct choice values[] = {
	    { "tempfail", 0 }, { "reject", 1 }, { NULL, 0 } };
	char *v = cfg_opt_string(L, t, "over_quota", "directory.over_quota");

	if (v == NULL)
		return;
	lua_pushstring(L, v);		/* anchored: v can go */
	free(v);
	d->over_quota_reject = cfg_choose(L, lua_tostring(L, -1),
	    "directory.over_quota", values, "must be \"tempfail\" (452 "
	    "4.2.2) or \"reject\" (552 5.2.2)");
	lua_pop(L, 1);
}

/* password_policy = { min_length=, min_classes=, max_length= }. */
static void
cfg_password_policy(lua_State *L, int t, struct password_policy *p)
{
	static const char where[] = "directory.password_policy";
	static const char *keys[] = { "min_length", "min_classes",
	    "max_length", NULL };

	lua_getfield(L, t, "password_policy");
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return;
	}
	if (!lua_istable(L, -1))
		cfg_bad(L, where, "must be a table");
	t = lua_gettop(L);
	cfg_check_keys(L, t, where, keys);
	cfg_set_number(L, t, "min_length", "directory.password_policy."
	    "min_length", 1, PASSWORD_MAX_CHARS, 1, &p->min_length, 0);
	cfg_set_number(L, t, "min_classes", "directory.password_policy."
	    "min_classes", 1, 4, 1, &p->min_classes, 0);
	cfg_set_number(L, t, "max_length", "directory.password_policy."
	    "max_length", 1, PASSWORD_MAX_CHARS, 1, &p->max_length, 0);
	if (p->max_length < p->min_length)
		cfg_bad(L, "directory.password_policy.max_length", "is less "
		    "than min_length");
	lua_pop(L, 1);
}

void
cfg_directory(lua_State *L, int t, struct directory_conf *d)
{
	static const char *keys[] = { "backend", "path", "cache_ttl",
	    "negative_ttl", "host", "port", "socket", "database", "user",
	    "password_file", "timeout", "pool", "extension_delimiter",
	    "over_quota", "password_policy", NULL };
	static const struct choice backends[] = {
	    { "config", DIRECTORY_CONFIG }, { "sqlite", DIRECTORY_SQLITE },
	    { "mariadb", DIRECTORY_MARIADB }, { NULL, 0 } };
	char *name;

	cfg_check_keys(L, t, "directory", keys);
	if ((name = cfg_opt_string(L, t, "backend", "directory.backend"))) {
		lua_pushstring(L, name);	/* anchored: name can go */
		free(name);
		d->backend = cfg_choose(L, lua_tostring(L, -1),
		    "directory.backend", backends,
		    "must be \"config\", \"sqlite\" or \"mariadb\"");
		lua_pop(L, 1);
	}
	cfg_set_string(L, t, "path", "directory.path", &d->path);
	cfg_set_number(L, t, "cache_ttl", "directory.cache_ttl", 0, 86400,
	    1000, &d->cache_ttl_ms, 0);
	cfg_set_number(L, t, "negative_ttl", "directory.negative_ttl", 0,
	    86400, 1000, &d->negative_ttl_ms, 0);
	cfg_directory_mariadb(L, t, d);
	cfg_extension_delimiter(L, t, d);
	cfg_over_quota(L, t, d);
	cfg_password_policy(L, t, &d->password_policy);
	if (d->backend == DIRECTORY_SQLITE && d->path == NULL)
		cfg_bad(L, "directory.path", "is required for backend "
		    "\"sqlite\"");
}
