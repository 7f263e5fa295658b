/*
 * admin_db: the CLI's statements: SQL text with ?N parameters bound from a
 * list of types, so no value ever becomes SQL; transactions; and the one
 * way a database error is reported (EX_IOERR, or EX_TEMPFAIL when busy or
 * unreachable).
 */
#include <stdarg.h>
#include <stdio.h>

#include "admin.h"

int
admin_db_error(struct admin *a)
{
	int code = dirdb_errkind(a->db) == DIRDB_ERR_TEMP ? EX_TEMPFAIL :
	    EX_IOERR;

	return admin_fail(code, "database: %s", dirdb_errmsg(a->db));
}

static struct dirdb_stmt *
stmt_v(struct admin *a, const char *sql, const char *types, va_list ap)
{
	struct dirdb_stmt *st = dirdb_prepare(a->db, sql);

	if (st == NULL) {
		admin_db_error(a);
		return NULL;
	}
	dirdb_vbind(st, types, ap);
	return st;
}

struct dirdb_stmt *
admin_stmt(struct admin *a, const char *sql, const char *types, ...)
{
	va_list ap;
	struct dirdb_stmt *st;

	va_start(ap, types);
	st = stmt_v(a, sql, types, ap);
	va_end(ap);
	return st;
}

int
admin_run(struct admin *a, struct dirdb_stmt *st)
{
	int rc;

	if (st == NULL)
		return EX_IOERR;
	while ((rc = dirdb_step(st)) == DIRDB_ROW)
		;
	dirdb_finalize(st);
	return rc == DIRDB_DONE ? 0 : admin_db_error(a);
}

int
admin_exists(struct admin *a, const char *sql, const char *types, ...)
{
	va_list ap;
	struct dirdb_stmt *st;
	int rc;

	va_start(ap, types);
	st = stmt_v(a, sql, types, ap);
	va_end(ap);
	if (st == NULL)
		return -1;
	rc = dirdb_step(st);
	dirdb_finalize(st);
	if (rc >= 0)
		return rc == DIRDB_ROW;
	admin_db_error(a);
	return -1;
}

int
admin_begin(struct admin *a)
{
	return dirdb_begin(a->db) == 0 ? 0 : admin_db_error(a);
}

/* Commits when rc is 0, else rolls back; returns rc or the commit's. */
int
admin_commit(struct admin *a, int rc)
{
	if (rc != 0) {
		dirdb_rollback(a->db);
		return rc;
	}
	return dirdb_commit(a->db) == 0 ? 0 : admin_db_error(a);
}
