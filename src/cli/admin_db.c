/*
 * admin_db: the CLI's statements: SQL text with ?N parameters bound from a
 * list of types, so no value ever becomes SQL; transactions; and the one
 * way a database error is reported (EX_IOERR, or EX_TEMPFAIL when busy).
 */
#include <stdarg.h>
#include <stdio.h>

#include "admin.h"

int
admin_db_error(struct admin *a)
{
	int e = sqlite3_errcode(a->db);

	admin_fail(e == SQLITE_BUSY || e == SQLITE_LOCKED ? EX_TEMPFAIL :
	    EX_IOERR, "database: %s", sqlite3_errmsg(a->db));
	return e == SQLITE_BUSY || e == SQLITE_LOCKED ? EX_TEMPFAIL : EX_IOERR;
}

static sqlite3_stmt *
stmt_v(struct admin *a, const char *sql, const char *types, va_list ap)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK) {
		admin_db_error(a);
		return NULL;
	}
	for (int i = 0; types[i]; i++)
		if (types[i] == 's')
			sqlite3_bind_text(st, i + 1, va_arg(ap, const char *),
			    -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_int64(st, i + 1, va_arg(ap, long long));
	return st;
}

sqlite3_stmt *
admin_stmt(struct admin *a, const char *sql, const char *types, ...)
{
	va_list ap;
	sqlite3_stmt *st;

	va_start(ap, types);
	st = stmt_v(a, sql, types, ap);
	va_end(ap);
	return st;
}

int
admin_run(struct admin *a, sqlite3_stmt *st)
{
	int rc;

	if (st == NULL)
		return EX_IOERR;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : admin_db_error(a);
}

int
admin_exists(struct admin *a, const char *sql, const char *types, ...)
{
	va_list ap;
	sqlite3_stmt *st;
	int rc;

	va_start(ap, types);
	st = stmt_v(a, sql, types, ap);
	va_end(ap);
	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return rc == SQLITE_ROW;
	admin_db_error(a);
	return -1;
}

int
admin_begin(struct admin *a)
{
	if (sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) ==
	    SQLITE_OK)
		return 0;
	return admin_db_error(a);
}

/* Commits when rc is 0, else rolls back; returns rc or the commit's. */
int
admin_commit(struct admin *a, int rc)
{
	if (rc != 0) {
		sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	if (sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	return admin_db_error(a);
}
