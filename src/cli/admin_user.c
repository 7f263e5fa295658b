/*
 * admin_user: `indimail user add|del|passwd|mod|quota|list|show|move|vacation`
 * (vadduser, vdeluser, vpasswd, vmoduser, vsetuserquota, vuserinfo).
 * A user lives in a real (not alias) domain of the database; the home is
 * <mailboxes.root>/<domain>/<local>; the password is stored as a yescrypt
 * crypt(3) string and never printed, not even its hash.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../directory/dirdb.h"
#include "admin.h"

#define USER_EXISTS "SELECT 1 FROM users WHERE local = ?1 AND domain = ?2"

/*
 * pos[0] is a user, with npos in [lo, hi]; want: 1 the user must exist,
 * 0 must not (and the domain must). 0 or an exit code.
 */
static int
user_arg(struct admin *a, int lo, int hi, const char *usage, int want,
    char **local, char **domain)
{
	int rc, k;

	if (a->o.npos < lo || a->o.npos > hi)
		return admin_fail(EX_USAGE, "usage: indimail user %s", usage);
	if ((rc = admin_check_user(a->o.pos[0], local, domain)) != 0)
		return rc;
	if (!want && (k = admin_exists(a, "SELECT 1 FROM domains WHERE name = "
	    "?1 AND alias_of IS NULL", "s", *domain)) != 1)
		return k < 0 ? EX_IOERR : admin_fail(EX_NOHOST, "unknown "
		    "domain %s (indimail domain add %s)", *domain, *domain);
	if ((k = admin_exists(a, USER_EXISTS, "ss", *local, *domain)) < 0)
		return EX_IOERR;
	if (k && !want)
		return admin_fail(EX_CANTCREAT, "user %s@%s exists", *local,
		    *domain);
	if (!k && want)
		return admin_fail(EX_NOUSER, "no user %s@%s", *local, *domain);
	return 0;
}

/* The password read and checked, and its yescrypt hash: 0 or a code. */
static int
user_password(struct admin *a, const char *local, const char *domain,
    char *pw, char *hash, size_t hashsz)
{
	int rc = admin_read_password(&a->policy, a->o.pos[1],
	    a->o.password_stdin, pw, ADMIN_PASSWORD_SIZE);

	if (rc == 0)
		rc = admin_check_password(&a->policy, pw, local, domain);
	return rc ? rc : admin_hash_password(pw, hash, hashsz);
}

/* In the transaction: rc of the hash's write; then the secrets, commit. */
static int
user_store(struct admin *a, int rc, const char *local, const char *domain,
    const char *pw)
{
	if (rc == 0)
		rc = admin_store_mech_secrets(a, local, domain, pw);
	return admin_commit(a, rc);
}

static int
user_add(struct admin *a)
{
	char *local, *domain, hash[256], home[4096], pw[ADMIN_PASSWORD_SIZE];
	long long quota = 0;
	int rc;

	if ((rc = user_arg(a, 1, 2, "add ADDRESS --password-stdin [--quota "
	    "BYTES] [--disable] [--no-smtp] ...", 0, &local, &domain)) ||
	    (a->o.quota && (rc = admin_parse_quota(a->o.quota, &quota))))
		return rc;
	if ((size_t)snprintf(home, sizeof(home), "%s/%s/%s", a->maildir_root,
	    domain, local) >= sizeof(home))
		return admin_fail(EX_DATAERR, "home folder name too long");
	if ((rc = user_password(a, local, domain, pw, hash, sizeof(hash))) == 0 &&
	    (rc = admin_begin(a)) == 0)
		rc = user_store(a, admin_run(a, admin_stmt(a, "INSERT INTO users "
		    "(local, domain, password, home, quota, flags, created) "
		    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", "ssssiii", local,
		    domain, hash, home, quota, (long long)(a->o.set &
		    ~a->o.clear), (long long)time(NULL))), local, domain, pw);
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(hash, sizeof(hash));
	return rc;
}

static int
user_del(struct admin *a)
{
	char *local, *domain;
	int rc;

	if ((rc = user_arg(a, 1, 1, "del ADDRESS", 1, &local, &domain)))
		return rc;
	return admin_run(a, admin_stmt(a, "DELETE FROM users WHERE local = ?1 "
	    "AND domain = ?2", "ss", local, domain));
}

static int
user_passwd(struct admin *a)
{
	char *local, *domain, hash[256], pw[ADMIN_PASSWORD_SIZE];
	int rc;

	if ((rc = user_arg(a, 1, 2, "passwd ADDRESS --password-stdin", 1,
	    &local, &domain)))
		return rc;
	if ((rc = user_password(a, local, domain, pw, hash, sizeof(hash))) == 0 &&
	    (rc = admin_begin(a)) == 0)
		rc = user_store(a, admin_run(a, admin_stmt(a, "UPDATE users SET "
		    "password = ?3 WHERE local = ?1 AND domain = ?2", "sss",
		    local, domain, hash)), local, domain, pw);
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(hash, sizeof(hash));
	return rc;
}

/* mod: flags and --quota; quota: ADDRESS QUOTA (vsetuserquota). */
static int
user_mod(struct admin *a, int quota_verb)
{
	char *local, *domain;
	const char *q = quota_verb ? a->o.pos[1] : a->o.quota;
	long long quota = -1;
	int rc;

	if ((rc = user_arg(a, 1 + quota_verb, 1 + quota_verb, quota_verb ?
	    "quota ADDRESS BYTES" : "mod ADDRESS [--quota BYTES] [--disable|"
	    "--enable] [--no-smtp|--smtp] ...", 1, &local, &domain)) ||
	    (q && (rc = admin_parse_quota(q, &quota))))
		return rc;
	if (q == NULL && a->o.set == 0 && a->o.clear == 0)
		return admin_fail(EX_USAGE, "user mod: nothing to change");
	return admin_run(a, admin_stmt(a, "UPDATE users SET flags = (flags | "
	    "?3) & ~?4, quota = CASE WHEN ?5 < 0 THEN quota ELSE ?5 END WHERE "
	    "local = ?1 AND domain = ?2", "ssiii", local, domain,
	    (long long)a->o.set, (long long)a->o.clear, quota));
}

#define USER_COLUMNS \
	"SELECT u.local || '@' || u.domain AS address, u.home, u.quota, " \
	"u.flags, u.flags & 1 AS disabled, (u.flags & 2) != 0 AS no_smtp, " \
	"(u.flags & 4) != 0 AS no_imap, (u.flags & 8) != 0 AS no_pop, " \
	"(u.flags & 16) != 0 AS no_relay, h.host, u.created FROM users u " \
	"LEFT JOIN hostcntrl h ON h.local = u.local AND h.domain = u.domain "

static int
user_show(struct admin *a, int one)
{
	char *local, *domain;
	int rc;

	if (one)
		return (rc = user_arg(a, 1, 1, "show ADDRESS", 1, &local,
		    &domain)) ? rc : admin_print_rows(a, admin_stmt(a,
		    USER_COLUMNS "WHERE u.local = ?1 AND u.domain = ?2", "ss",
		    local, domain), 1);
	if (a->o.npos > 1)
		return admin_fail(EX_USAGE, "usage: indimail user list "
		    "[DOMAIN]");
	if (a->o.npos == 1 && (rc = admin_check_domain(a->o.pos[0])))
		return rc;
	return admin_print_rows(a, admin_stmt(a, USER_COLUMNS "WHERE ?1 IS "
	    "NULL OR u.domain = ?1 ORDER BY u.domain, u.local", "s",
	    a->o.npos ? a->o.pos[0] : NULL), 0);
}

/* move ADDRESS HOST: which host holds the user (hostcntrl). */
static int
user_move(struct admin *a)
{
	char *local, *domain;
	int rc, k;

	if ((rc = user_arg(a, 2, 2, "move ADDRESS HOST", 1, &local, &domain)))
		return rc;
	if ((k = admin_exists(a, "SELECT 1 FROM host_table WHERE host = ?1",
	    "s", a->o.pos[1])) != 1)
		return k < 0 ? EX_IOERR : admin_fail(EX_NOHOST, "unknown host "
		    "%s (indimail host add)", a->o.pos[1]);
	return admin_run(a, admin_stmt(a, "REPLACE INTO hostcntrl "
	    "VALUES (?1, ?2, ?3)", "sss", local, domain, a->o.pos[1]));
}

/* vacation ADDRESS on|off|show (admin_vacation.c). */
static int
user_vacation(struct admin *a)
{
	char *local, *domain;
	int rc;

	if ((rc = user_arg(a, 2, 2, "vacation ADDRESS on|off|show [--subject "
	    "TEXT] [--message-file FILE] [--from DATE] [--until DATE] "
	    "[--interval 7d]", 1, &local, &domain)))
		return rc;
	return admin_user_vacation(a, local, domain);
}

int
admin_user(struct admin *a, const char *verb)
{
	if (strcmp(verb, "add") == 0)
		return user_add(a);
	if (strcmp(verb, "del") == 0)
		return user_del(a);
	if (strcmp(verb, "passwd") == 0)
		return user_passwd(a);
	if (strcmp(verb, "mod") == 0 || strcmp(verb, "quota") == 0)
		return user_mod(a, verb[0] == 'q');
	if (strcmp(verb, "list") == 0 || strcmp(verb, "show") == 0)
		return user_show(a, verb[0] == 's');
	if (strcmp(verb, "move") == 0)
		return user_move(a);
	if (strcmp(verb, "import") == 0)
		return admin_user_import(a);
	if (strcmp(verb, "vacation") == 0)
		return user_vacation(a);
	return admin_fail(EX_USAGE, "user: unknown command %s (add, del, "
	    "passwd, mod, quota, list, show, move, import, vacation)", verb);
}
