/*
 * admin_import: `indimail user import FILE` ("-" is stdin): one user a
 * line, "address password", where a password starting with '$' is taken
 * as a crypt(3) hash and anything else must pass directory.password_policy
 * and is hashed (yescrypt: slow, so bulk imports should bring hashes). Blank lines and '#' lines are skipped.
 * All lines or none: one transaction; the first bad line is named.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admin.h"

static const char sql_insert[] =
    "INSERT INTO users (local, domain, password, home, quota, flags, "
    "created) SELECT ?1, ?2, ?3, ?4, 0, 0, ?5 FROM domains WHERE name = ?2 "
    "AND alias_of IS NULL";

/* One line's user through the prepared statement st: 0 or a code. */
static int
import_line(struct admin *a, struct dirdb_stmt *st, char *line)
{
	char *addr = strtok(line, " \t\r\n"), *pw = strtok(NULL, "\r\n");
	char *local, *domain, hash[256], home[4096];
	int rc;

	if (addr == NULL || addr[0] == '#')
		return 0;
	while (pw && (*pw == ' ' || *pw == '\t'))
		pw++;
	if (pw == NULL || *pw == '\0')
		return admin_fail(EX_DATAERR, "%s: no password", addr);
	if ((rc = admin_check_user(addr, &local, &domain)))
		return rc;
	if (*pw == '$')
		snprintf(hash, sizeof(hash), "%s", pw);
	else if ((rc = admin_check_password(&a->policy, pw, local, domain)) ||
	    (rc = admin_hash_password(pw, hash, sizeof(hash))))
		return rc;
	snprintf(home, sizeof(home), "%s/%s/%s", a->maildir_root, domain,
	    local);
	dirdb_bind(st, "ssssi", local, domain, hash, home, (long long)time(NULL));
	explicit_bzero(hash, sizeof(hash));
	if ((rc = dirdb_step(st)) < 0 &&
	    dirdb_errkind(a->db) == DIRDB_ERR_CONSTRAINT)
		return admin_fail(EX_CANTCREAT, "user %s@%s exists", local,
		    domain);
	if (rc < 0)
		return admin_db_error(a);
	return dirdb_changes(a->db) ? 0 : admin_fail(EX_NOHOST, "unknown "
	    "domain %s", domain);
}

static int
import_file(struct admin *a, FILE *f, int *nusers)
{
	struct dirdb_stmt *st = admin_stmt(a, sql_insert, "");
	char line[8192];
	int rc = 0, n = 0;

	if (st == NULL)
		return EX_IOERR;
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		n++;
		if ((rc = import_line(a, st, line)) != 0)
			admin_fail(rc, "line %d: nothing imported", n);
		else if (line[0] != '\0' && line[0] != '#' && line[0] != '\n')
			(*nusers)++;
	}
	explicit_bzero(line, sizeof(line));
	dirdb_finalize(st);
	return rc;
}

int
admin_user_import(struct admin *a)
{
	const char *path = a->o.pos[0];
	FILE *f;
	int rc, n = 0;

	if (a->o.npos != 1)
		return admin_fail(EX_USAGE, "usage: indimail user import FILE");
	f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (f == NULL)
		return admin_fail(EX_NOINPUT, "%s: %s", path, strerror(errno));
	if ((rc = admin_begin(a)) == 0)
		rc = admin_commit(a, import_file(a, f, &n));
	if (f != stdin)
		fclose(f);
	if (rc == 0)
		printf("%d user%s imported\n", n, n == 1 ? "" : "s");
	return rc;
}
