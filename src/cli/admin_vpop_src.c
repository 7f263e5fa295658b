/*
 * admin_vpop_src: the source database of an import, through MariaDB
 * Connector/C. Every statement is prepared (a domain is a bound parameter,
 * never SQL text) and every column is fetched as text into a fixed cell:
 * a value that does not fit or holds a NUL byte marks the row bad, so the
 * importer reports it instead of importing a cut value. The password is
 * read from a file (never an argument: ps shows those) and wiped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_vpop.h"

static int
src_fail(struct vsrc *s, const char *what)
{
	return admin_fail(EX_UNAVAILABLE, "source database: %s: %s", what,
	    mysql_error(s->my));
}

/* The first line of path into pw: 0 or EX_NOINPUT. */
static int
read_password(const char *path, char *pw, size_t n)
{
	FILE *f = fopen(path, "r");

	pw[0] = '\0';
	if (f == NULL)
		return admin_fail(EX_NOINPUT, "%s: %s", path, strerror(errno));
	if (fgets(pw, (int)n, f) == NULL)
		pw[0] = '\0';
	fclose(f);
	pw[strcspn(pw, "\r\n")] = '\0';
	return 0;
}

static void
set_options(MYSQL *my)
{
	unsigned int connect_s = 10, io_s = 60;

	mysql_options(my, MYSQL_OPT_CONNECT_TIMEOUT, &connect_s);
	mysql_options(my, MYSQL_OPT_READ_TIMEOUT, &io_s);
	mysql_options(my, MYSQL_OPT_WRITE_TIMEOUT, &io_s);
	mysql_options(my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
}

int
vsrc_connect(struct vsrc *s, const struct admin_opts *o,
    const char *default_db)
{
	char pw[1024];
	long port = o->my_port ? strtol(o->my_port, NULL, 10) : 0;
	MYSQL *ok;
	int rc;

	if (port < 0 || port > 65535)
		return admin_fail(EX_USAGE, "--mysql-port: not a port");
	if (o->my_pwfile && (rc = read_password(o->my_pwfile, pw, sizeof(pw))))
		return rc;
	if ((s->my = mysql_init(NULL)) == NULL)
		return admin_fail(EX_OSERR, "mysql_init: out of memory");
	set_options(s->my);
	ok = mysql_real_connect(s->my, o->my_socket ? NULL : o->my_host,
	    o->my_user, o->my_pwfile ? pw : NULL, o->my_db ? o->my_db :
	    default_db, (unsigned)port, o->my_socket, 0);
	explicit_bzero(pw, sizeof(pw));
	return ok ? 0 : src_fail(s, "connect");
}

void
vsrc_close(struct vsrc *s)
{
	if (s->my)
		mysql_close(s->my);
	s->my = NULL;
}

static void
bind_results(struct vsrc_rows *r)
{
	memset(r->res, 0, sizeof(r->res));
	for (int i = 0; i < r->ncols; i++) {
		r->res[i].buffer_type = MYSQL_TYPE_STRING;
		r->res[i].buffer = r->cell[i];
		r->res[i].buffer_length = VSRC_CELL - 1;
		r->res[i].length = &r->len[i];
		r->res[i].is_null = &r->null[i];
		r->res[i].error = &r->err[i];
	}
}

static int
execute(struct vsrc *s, struct vsrc_rows *r, const char *param)
{
	MYSQL_BIND in;
	unsigned long plen = param ? strlen(param) : 0;

	memset(&in, 0, sizeof(in));
	in.buffer_type = MYSQL_TYPE_STRING;
	in.buffer = (void *)param;
	in.buffer_length = plen;
	in.length = &plen;
	if (param && mysql_stmt_bind_param(r->st, &in))
		return src_fail(s, mysql_stmt_error(r->st));
	if (mysql_stmt_execute(r->st) || mysql_stmt_bind_result(r->st, r->res)
	    || mysql_stmt_store_result(r->st))
		return src_fail(s, mysql_stmt_error(r->st));
	return 0;
}

int
vsrc_query(struct vsrc *s, struct vsrc_rows *r, const char *sql,
    const char *param)
{
	int rc;

	memset(r, 0, sizeof(*r));
	if ((r->st = mysql_stmt_init(s->my)) == NULL)
		return src_fail(s, "statement");
	if (mysql_stmt_prepare(r->st, sql, (unsigned long)strlen(sql))) {
		rc = src_fail(s, mysql_stmt_error(r->st));
		vsrc_end(r);
		return rc;
	}
	r->ncols = (int)mysql_stmt_field_count(r->st);
	if (r->ncols > VSRC_COLS)
		r->ncols = VSRC_COLS;
	bind_results(r);
	if ((rc = execute(s, r, param)) != 0)
		vsrc_end(r);
	return rc;
}

int
vsrc_next(struct vsrc_rows *r)
{
	int rc = mysql_stmt_fetch(r->st);

	if (rc == MYSQL_NO_DATA)
		return 0;
	if (rc == 1) {
		admin_fail(EX_UNAVAILABLE, "source database: %s",
		    mysql_stmt_error(r->st));
		return -1;
	}
	r->bad = rc == MYSQL_DATA_TRUNCATED;
	for (int i = 0; i < r->ncols; i++) {
		size_t n = r->null[i] ? 0 : r->len[i];
		if (n > VSRC_CELL - 1) {
			r->bad = 1;
			n = VSRC_CELL - 1;
		}
		if (memchr(r->cell[i], '\0', n))
			r->bad = 1;
		r->cell[i][n] = '\0';
	}
	return 1;
}

const char *
vsrc_col(const struct vsrc_rows *r, int i)
{
	return i < r->ncols && !r->null[i] ? r->cell[i] : "";
}

void
vsrc_end(struct vsrc_rows *r)
{
	if (r->st)
		mysql_stmt_close(r->st);
	r->st = NULL;
}

int
vsrc_has_table(struct vsrc *s, const char *name)
{
	struct vsrc_rows r;
	int k;

	if (vsrc_query(s, &r, "SELECT 1 FROM information_schema.tables WHERE "
	    "table_schema = DATABASE() AND table_name = ?", name) != 0)
		return -1;
	k = vsrc_next(&r);
	vsrc_end(&r);
	return k;
}
