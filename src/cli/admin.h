/*
 * admin: the directory commands of bin/indimail (domain, user, alias,
 * host, and the vpopmail names vadddomain, vadduser, ...). They work on
 * the database of the configuration's directory (SQLite or MariaDB), or
 * the SQLite file of --db PATH, through dirdb.h, with prepared statements
 * only. Exit codes are sysexits(3) values, listed in docs/directory.md.
 */
#ifndef INDIMAIL_ADMIN_H
#define INDIMAIL_ADMIN_H

#include <stddef.h>
#include <sysexits.h>

#include "../lib/buf.h"
#include "../directory/dirdb.h"

/* The options every command may get; each takes what it needs. */
struct admin_opts {
	char		*pos[4];	/* positional arguments */
	int		 npos;
	int		 password_stdin;
	const char	*quota;		/* NULL: not given */
	unsigned	 set, clear;	/* DIRDB_* flags */
	const char	*postmaster, *alias_of, *port;
	const char	*auth_mechs;	/* --auth-mechs: NULL not given */
	/* import vpopmail|indimail: the source database (admin_vpop.c) */
	const char	*my_host, *my_port, *my_socket, *my_user, *my_pwfile;
	const char	*my_db, *domain;
	int		 dry_run;
	/* user vacation ADDRESS on (admin_vacation.c) */
	const char	*vac_subject, *vac_message, *vac_from, *vac_until;
	const char	*vac_interval;
};

struct admin {
	struct dirdb	*db;
	int		 json;
	const char	*maildir_root;	/* mailboxes.root: users' homes */
	struct password_policy policy;	/* directory.password_policy */
	struct admin_opts o;
};

/* Prints "indimail: ..." on stderr, returns code. */
int	admin_fail(int code, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Entry: argv[0] is the group ("user") or a vpopmail name. */
/* db, json: --db and --json given before the command (or NULL, 0). */
int	admin_main(const char *config, const char *db, int json, int argc,
	    char **argv);
int	admin_is_command(const char *name);
/* admin_api_token.c: `indimail admin token ...` (argv[0] is "admin") */
int	admin_api_main(const char *config, int json, int argc, char **argv);
/* admin_dkim.c: `indimail dkim keygen ...` (argv[0] is "dkim") */
int	admin_dkim_main(int argc, char **argv);

/* admin_db.c: statements with parameters bound from types ("s", "i"). */
struct dirdb_stmt *admin_stmt(struct admin *, const char *sql,
	    const char *types, ...);
/* Steps a statement to its end and finalizes it: 0, or an exit code. */
int	admin_run(struct admin *, struct dirdb_stmt *);
/* 1 when the query has a row, 0 none, -1 error (printed). */
int	admin_exists(struct admin *, const char *sql, const char *types, ...);
int	admin_begin(struct admin *);
int	admin_commit(struct admin *, int rc);
int	admin_db_error(struct admin *);

/* admin_check.c: input rules; each 0 or prints why and returns EX_DATAERR. */
int	admin_check_domain(char *domain);	/* lowercased in place */
int	admin_check_user(char *address, char **local, char **domain);
int	admin_check_alias(char *address);	/* "@domain" or an address */
int	admin_check_target(const char *address);
int	admin_check_text(const char *what, const char *s);
int	admin_parse_quota(const char *s, long long *out);

/* admin_password.c: each 0 or prints why (never the password) and returns
 * an exit code. A buffer of ADMIN_PASSWORD_SIZE holds any allowed one. */
#define ADMIN_PASSWORD_SIZE	(4 * PASSWORD_MAX_CHARS + 3)
/* The password: the line read from stdin, or given. */
int	admin_read_password(const struct password_policy *, const char *given,
	    int from_stdin, char *pw, size_t n);
/* directory.password_policy, and not the user's name or address. */
int	admin_check_password(const struct password_policy *, const char *pw,
	    const char *local, const char *domain);
/* pw's yescrypt hash into out. */
int	admin_hash_password(const char *pw, char *out, size_t outsz);

/* admin_out.c: JSON and text output. */
void	admin_json_str(struct buf *, const char *);
/* Prints the rows of st as text columns or a JSON array of objects. */
int	admin_print_rows(struct admin *, struct dirdb_stmt *, int one);

/* One per group. */
int	admin_domain(struct admin *, const char *verb);
int	admin_user(struct admin *, const char *verb);
int	admin_alias(struct admin *, const char *verb);
int	admin_host(struct admin *, const char *verb);
int	admin_user_import(struct admin *);	/* admin_import.c */
/* user vacation ADDRESS on|off|show of an existing user (admin_vacation.c) */
int	admin_user_vacation(struct admin *, const char *local,
	    const char *domain);
int	admin_import(struct admin *, const char *verb);	/* admin_vpop.c */

/* admin_mechs.c: SMTP AUTH CRAM-MD5 / SCRAM-SHA-256 of a domain. */
/* --auth-mechs LIST checked and made canonical ("" for none): 0 or code. */
int	admin_check_mechs(const char *list, char *out, size_t n);
/* Stores (or clears) the user's mechanism secrets as its domain wants. */
int	admin_store_mech_secrets(struct admin *, const char *local,
	    const char *domain, const char *pw);

#endif
