/*
 * admin: the entry of the directory commands: options, the vpopmail
 * names, finding and opening the database (the configuration's directory,
 * SQLite or MariaDB, or the SQLite file of --db PATH), and giving a new
 * SQLite file to the account the daemon runs as (user = ...), which must
 * be able to read it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lua/lua_runtime.h"
#include "admin.h"
#include "control.h"

/* A vpopmail/IndiMail name and the command it is. */
static const struct vname {
	const char	*name, *group, *verb;
} vnames[] = {
	{ "vadddomain", "domain", "add" }, { "vdeldomain", "domain", "del" },
	{ "vadduser", "user", "add" }, { "vdeluser", "user", "del" },
	{ "vpasswd", "user", "passwd" }, { "vmoduser", "user", "mod" },
	{ "vsetuserquota", "user", "quota" }, { "vuserinfo", "user", "show" },
	{ "valias", "alias", NULL },
};

static const struct group {
	const char	*name;
	int		(*run)(struct admin *, const char *verb);
} groups[] = {
	{ "domain", admin_domain }, { "user", admin_user },
	{ "alias", admin_alias }, { "host", admin_host },
	{ "import", admin_import },
};

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

int
admin_fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("indimail: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

int
admin_is_command(const char *name)
{
	for (size_t i = 0; i < NITEMS(vnames); i++)
		if (strcmp(name, vnames[i].name) == 0)
			return 1;
	for (size_t i = 0; i < NITEMS(groups); i++)
		if (strcmp(name, groups[i].name) == 0)
			return 1;
	return 0;
}

/* A user flag option: --no-smtp sets, --smtp clears; 0 if not one. */
static int
flag_option(struct admin_opts *o, const char *s)
{
	static const struct { const char *name; unsigned bit; } f[] = {
	    { "disable", DIRDB_DISABLED }, { "no-smtp", DIRDB_NO_SMTP },
	    { "no-imap", DIRDB_NO_IMAP }, { "no-pop", DIRDB_NO_POP },
	    { "no-relay", DIRDB_NO_RELAY }, { "enable", DIRDB_DISABLED },
	    { "smtp", DIRDB_NO_SMTP }, { "imap", DIRDB_NO_IMAP },
	    { "pop", DIRDB_NO_POP }, { "relay", DIRDB_NO_RELAY } };

	for (size_t i = 0; i < NITEMS(f); i++)
		if (strcmp(s, f[i].name) == 0) {
			*(i < 5 ? &o->set : &o->clear) |= f[i].bit;
			return 1;
		}
	return 0;
}

/* An option with a value: where it goes, or NULL. */
static const char **
value_option(struct admin_opts *o, const char *s, const char **db)
{
	const struct { const char *name; const char **to; } v[] = {
	    { "db", db }, { "quota", &o->quota },
	    { "postmaster", &o->postmaster }, { "alias-of", &o->alias_of },
	    { "port", &o->port }, { "auth-mechs", &o->auth_mechs },
	    { "mysql-host", &o->my_host },
	    { "mysql-port", &o->my_port }, { "mysql-socket", &o->my_socket },
	    { "mysql-user", &o->my_user },
	    { "mysql-password-file", &o->my_pwfile },
	    { "mysql-db", &o->my_db }, { "domain", &o->domain },
	    { "subject", &o->vac_subject }, { "message-file", &o->vac_message },
	    { "from", &o->vac_from }, { "until", &o->vac_until },
	    { "interval", &o->vac_interval } };

	for (size_t i = 0; i < NITEMS(v); i++)
		if (strcmp(s, v[i].name) == 0)
			return v[i].to;
	return NULL;
}

static int
parse_options(struct admin *a, int argc, char **argv, const char **db)
{
	struct admin_opts *o = &a->o;
	const char **v;
	int i, opts = 1;

	for (i = 0; i < argc; i++) {
		const char *s = argv[i];
		if (opts && strcmp(s, "--") == 0)
			opts = 0;
		else if (opts && strncmp(s, "--", 2) == 0 && strcmp(s + 2,
		    "json") == 0)
			a->json = 1;
		else if (opts && strcmp(s, "--password-stdin") == 0)
			o->password_stdin = 1;
		else if (opts && strcmp(s, "--dry-run") == 0)
			o->dry_run = 1;
		else if (opts && strncmp(s, "--", 2) == 0 &&
		    flag_option(o, s + 2))
			;
		else if (opts && strncmp(s, "--", 2) == 0 &&
		    (v = value_option(o, s + 2, db)) != NULL) {
			if (++i == argc)
				return admin_fail(EX_USAGE, "%s needs a value", s);
			*v = argv[i];
		} else if (opts && s[0] == '-' && s[1])
			return admin_fail(EX_USAGE, "unknown option %s", s);
		else if (o->npos == (int)NITEMS(o->pos))
			return admin_fail(EX_USAGE, "too many arguments");
		else
			o->pos[o->npos++] = argv[i];
	}
	return 0;
}

/* As root, a new file is made for the account first (docs/directory.md). */
static int
create_for(const char *path, const char *user)
{
	struct passwd *pw;
	int fd;

	if (geteuid() != 0 || user == NULL || access(path, F_OK) == 0)
		return 0;
	if ((pw = getpwnam(user)) == NULL)
		return admin_fail(EX_NOUSER, "no account '%s' (user = in the "
		    "configuration)", user);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0640)) < 0)
		return admin_fail(EX_CANTCREAT, "%s: %s", path,
		    strerror(errno));
	if (fchown(fd, pw->pw_uid, pw->pw_gid) < 0) {
		close(fd);
		return admin_fail(EX_CANTCREAT, "chown %s: %s", path,
		    strerror(errno));
	}
	close(fd);
	return 0;
}

static int
open_db(struct admin *a, const struct directory_conf *dc, const char *user)
{
	struct buf err = BUF_INIT;
	int rc = 0;

	if (dc->backend == DIRECTORY_SQLITE &&
	    (rc = create_for(dc->path, user)) != 0)
		return rc;
	if ((a->db = dirdb_open(dc, DIRDB_ADMIN, &err)) == NULL)
		rc = admin_fail(EX_IOERR, "%s", buf_cstr(&err));
	buf_free(&err);
	return rc;
}

/*
 * After a change, the running daemon forgets its cached answers at once
 * (the queue manager relays it to every process); a daemon that is not
 * running needs nothing, one we may not tell sees it within cache_ttl.
 */
static void
notify_daemon(struct runtime *rt, const struct admin *a, const char *verb)
{
	struct buf reply = BUF_INIT;

	if (strcmp(verb, "list") == 0 || strcmp(verb, "show") == 0 ||
	    (strcmp(verb, "vacation") == 0 && strcmp(a->o.pos[1], "show") == 0))
		return;
	if (control_request(rt->cfg.queue_path, "directory-flush", &reply) ==
	    -2)
		fprintf(stderr, "indimail: note: no permission on %s/qmgr.sock; "
		    "the daemon sees the change within directory.cache_ttl\n",
		    rt->cfg.queue_path);
	buf_free(&reply);
}

/* The database of the configuration (or --db), then the command. */
static int
run_group(struct admin *a, const char *config, const char *db,
    const struct group *g, const char *verb)
{
	struct directory_conf file = { .backend = DIRECTORY_SQLITE,
	    .password_policy = PASSWORD_POLICY_DEFAULT };
	const struct directory_conf *dc = &file;
	struct runtime *rt = NULL;
	struct buf err = BUF_INIT;
	int rc;

	a->maildir_root = "var/maildirs";
	file.path = (char *)db;
	if (db == NULL) {
		if ((rt = runtime_load(config, &err)) == NULL) {
			rc = admin_fail(EX_CONFIG, "%s", buf_cstr(&err));
			buf_free(&err);
			return rc;
		}
		dc = &rt->cfg.directory;
		a->maildir_root = rt->cfg.delivery.maildir_root;
	}
	a->policy = dc->password_policy;
	if (dc->backend == DIRECTORY_CONFIG)
		rc = admin_fail(EX_CONFIG, "%s has no directory = { backend = "
		    "\"sqlite\" or \"mariadb\", ... }: give --db PATH", config);
	else if ((rc = open_db(a, dc, rt ? rt->cfg.user : NULL)) == 0 &&
	    (rc = g->run(a, verb)) == 0 && rt)
		notify_daemon(rt, a, verb);
	dirdb_close(a->db);
	if (rt)
		runtime_unref(rt);
	return rc;
}

/* valias [-i TARGET | -d] ADDRESS → alias add|del|list. */
static const char *
valias_verb(int *argc, char ***argv, const char **target)
{
	if (*argc >= 2 && strcmp((*argv)[0], "-i") == 0) {
		*target = (*argv)[1];
		*argc -= 2, *argv += 2;
		return "add";
	}
	if (*argc >= 1 && strcmp((*argv)[0], "-d") == 0) {
		*argc -= 1, *argv += 1;
		return "del";
	}
	return "list";
}

/* argv[0]: a group then its verb, or a vpopmail name. */
int
admin_main(const char *config, const char *db, int json, int argc,
    char **argv)
{
	struct admin a;
	const char *verb = NULL, *target = NULL, *gname = argv[0];
	int rc;

	memset(&a, 0, sizeof(a));
	a.json = json;
	for (size_t i = 0; i < NITEMS(vnames); i++)
		if (strcmp(argv[0], vnames[i].name) == 0) {
			gname = vnames[i].group;
			verb = vnames[i].verb;
		}
	argc--, argv++;
	if (verb == NULL && strcmp(gname, "alias") == 0 && argv[-1][0] == 'v')
		verb = valias_verb(&argc, &argv, &target);
	else if (verb == NULL && argc > 0)
		verb = argv[0], argc--, argv++;
	if (verb == NULL)
		return admin_fail(EX_USAGE, "%s: which command? (see "
		    "docs/directory.md)", gname);
	if ((rc = parse_options(&a, argc, argv, &db)) != 0)
		return rc;
	if (target && a.o.npos < (int)NITEMS(a.o.pos))
		a.o.pos[a.o.npos++] = (char *)target;
	for (size_t i = 0; i < NITEMS(groups); i++)
		if (strcmp(gname, groups[i].name) == 0)
			return run_group(&a, config, db, &groups[i], verb);
	return admin_fail(EX_USAGE, "unknown command %s", gname);
}
