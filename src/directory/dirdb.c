/*
 * dirdb: the engine-neutral part of the directory database: choosing the
 * driver, bound parameters, statements, transactions, and the schema's
 * versions. The schema is a list of steps per driver, one per version:
 * step i takes a database at version i to i + 1 and then meta's
 * schema_version is set, all under the driver's schema lock (SQLite: one
 * transaction; MariaDB: GET_LOCK, and steps written to be run again after
 * a crash, since its DDL commits at once). Only the tool (DIRDB_ADMIN)
 * creates or upgrades; the daemon refuses a database at another version.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "dirdb_int.h"

int
dirdb_fail(struct dirdb *db, enum dirdb_err kind, const char *fmt, ...)
{
	va_list ap;

	buf_clear(&db->err);
	va_start(ap, fmt);
	buf_vprintf(&db->err, fmt, ap);
	va_end(ap);
	db->errkind = kind;
	return -1;
}

const char *
dirdb_errmsg(struct dirdb *db)
{
	return db->err.len ? buf_cstr(&db->err) : "no error";
}

enum dirdb_err
dirdb_errkind(struct dirdb *db)
{
	return db->errkind;
}

const char *
dirdb_engine(const struct dirdb *db)
{
	return db->drv->name;
}

int
dirdb_current(struct dirdb *db)
{
	return db->drv->current(db);
}

void
dirdb_fold(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* ---- statements ---------------------------------------------------------- */

struct dirdb_stmt *
dirdb_prepare(struct dirdb *db, const char *sql)
{
	struct dirdb_stmt *st = xcalloc(1, sizeof(*st));

	st->db = db;
	if (db->drv->prepare(st, sql) == 0)
		return st;
	free(st);
	return NULL;
}

struct dirdb_stmt *
dirdb_prepare_cached(struct dirdb *db, const char *sql)
{
	int i;

	for (i = 0; i < DIRDB_CACHED && db->cached[i].sql; i++)
		if (db->cached[i].sql == sql)
			return db->cached[i].st;
	if (i == DIRDB_CACHED)		/* full: not kept */
		return dirdb_prepare(db, sql);
	if ((db->cached[i].st = dirdb_prepare(db, sql)) != NULL)
		db->cached[i].sql = sql;
	return db->cached[i].st;
}

void
dirdb_release(struct dirdb_stmt *st)
{
	struct dirdb *db;

	if (st == NULL)
		return;
	db = st->db;
	for (int i = 0; i < DIRDB_CACHED; i++)
		if (db->cached[i].st == st) {
			if (st->ran)
				db->drv->reset(st);
			st->ran = 0;
			return;
		}
	dirdb_finalize(st);
}

static void
vals_free(struct dirdb_stmt *st)
{
	for (int i = 0; i < st->nvals; i++)
		free(st->vals[i].s);
	free(st->vals);
	st->vals = NULL;
	st->nvals = 0;
}

int
dirdb_vbind(struct dirdb_stmt *st, const char *types, va_list ap)
{
	int n = (int)strlen(types);

	if (st->ran)
		st->db->drv->reset(st);
	st->ran = 0;
	vals_free(st);
	st->vals = xcalloc((size_t)n + 1, sizeof(*st->vals));
	for (st->nvals = 0; st->nvals < n; st->nvals++) {
		struct dirdb_value *v = &st->vals[st->nvals];

		if (types[st->nvals] == 'i') {
			v->type = 'i';
			v->i = va_arg(ap, long long);
			continue;
		}
		v->s = (char *)va_arg(ap, const char *);
		v->type = v->s ? 's' : 'n';
		v->s = v->s ? xstrdup(v->s) : NULL;
	}
	return 0;
}

int
dirdb_bind(struct dirdb_stmt *st, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = dirdb_vbind(st, types, ap);
	va_end(ap);
	return rc;
}

int
dirdb_step(struct dirdb_stmt *st)
{
	if (!st->ran) {
		st->ran = 1;
		st->db->errkind = DIRDB_ERR_NONE;
		if (st->db->drv->exec(st) < 0)
			return -1;
	}
	return st->db->drv->fetch(st);
}

void
dirdb_finalize(struct dirdb_stmt *st)
{
	if (st == NULL)
		return;
	st->db->drv->finalize(st);
	vals_free(st);
	free(st);
}

int
dirdb_ncols(struct dirdb_stmt *st)
{
	return st->db->drv->ncols(st);
}

const char *
dirdb_colname(struct dirdb_stmt *st, int col)
{
	return st->db->drv->colname(st, col);
}

const char *
dirdb_text(struct dirdb_stmt *st, int col)
{
	const char *s = st->db->drv->text(st, col);

	return s ? s : "";
}

int
dirdb_isnull(struct dirdb_stmt *st, int col)
{
	return st->db->drv->text(st, col) == NULL;
}

int
dirdb_isint(struct dirdb_stmt *st, int col)
{
	return st->db->drv->isint(st, col);
}

long long
dirdb_int(struct dirdb_stmt *st, int col)
{
	return strtoll(dirdb_text(st, col), NULL, 10);
}

long long
dirdb_changes(struct dirdb *db)
{
	return db->changes;
}

/* ---- transactions -------------------------------------------------------- */

int
dirdb_exec(struct dirdb *db, const char *sql)
{
	db->errkind = DIRDB_ERR_NONE;
	return db->drv->script(db, sql);
}

int
dirdb_begin(struct dirdb *db)
{
	return dirdb_exec(db, db->drv->begin);
}

int
dirdb_commit(struct dirdb *db)
{
	return dirdb_exec(db, "COMMIT");
}

void
dirdb_rollback(struct dirdb *db)
{
	struct buf keep = db->err;	/* the failure that made us roll back */
	enum dirdb_err kind = db->errkind;

	db->err = (struct buf)BUF_INIT;
	db->drv->script(db, "ROLLBACK");
	buf_free(&db->err);
	db->err = keep;
	db->errkind = kind;
}

/* ---- the schema ---------------------------------------------------------- */

/* One integer from a query without parameters; -1 on failure. */
static long long
query_int(struct dirdb *db, const char *sql)
{
	struct dirdb_stmt *st = dirdb_prepare(db, sql);
	long long v = -1;

	if (st == NULL)
		return -1;
	if (dirdb_step(st) == DIRDB_ROW)
		v = dirdb_int(st, 0);
	dirdb_finalize(st);
	return v;
}

/* The version of an open database, 0 without a schema, -1 on failure. */
static int
schema_version(struct dirdb *db)
{
	long long has = query_int(db, db->drv->has_meta);

	if (has <= 0)
		return (int)has;
	return (int)query_int(db, "SELECT \"value\" FROM meta WHERE \"key\" = "
	    "'schema_version'");
}

static int
set_version(struct dirdb *db, int v)
{
	struct dirdb_stmt *st = dirdb_prepare(db, "UPDATE meta SET \"value\" "
	    "= ?1 WHERE \"key\" = 'schema_version'");
	int rc;

	if (st == NULL)
		return -1;
	dirdb_bind(st, "i", (long long)v);
	rc = dirdb_step(st);
	dirdb_finalize(st);
	return rc == DIRDB_DONE ? 0 : -1;
}

/* Every missing step under the schema lock. */
static int
upgrade(struct dirdb *db)
{
	int v, rc = 0;

	if (dirdb_exec(db, db->drv->lock) < 0)
		return -1;
	while (rc == 0 && (v = schema_version(db)) >= 0 &&
	    v < DIRDB_SCHEMA_VERSION)
		rc = dirdb_exec(db, db->drv->steps[v]) < 0 ||
		    set_version(db, v + 1) < 0 ? -1 : 0;
	if (rc < 0) {
		dirdb_rollback(db);
		return -1;
	}
	return dirdb_exec(db, db->drv->unlock);
}

static const struct dirdb_driver *
driver_of(const struct directory_conf *c)
{
	return c->backend == DIRECTORY_MARIADB ? &dirdb_driver_mariadb :
	    &dirdb_driver_sqlite;
}

/* What the database is called in messages. */
static const char *
db_name(const struct directory_conf *c)
{
	if (c->backend != DIRECTORY_MARIADB)
		return c->path ? c->path : "(no path)";
	return c->database ? c->database : "(no database)";
}

static int
check_version(struct dirdb *db, const struct directory_conf *c,
    struct buf *err)
{
	int v = schema_version(db);

	if (v == DIRDB_SCHEMA_VERSION)
		return 0;
	if (v < 0)
		buf_printf(err, "%s: %s", db_name(c), dirdb_errmsg(db));
	else
		buf_printf(err, "%s: schema version %d, this program needs %d "
		    "(run `indimail domain list` to upgrade it)", db_name(c), v,
		    DIRDB_SCHEMA_VERSION);
	return -1;
}

struct dirdb *
dirdb_open(const struct directory_conf *c, enum dirdb_mode mode,
    struct buf *err)
{
	struct dirdb *db = xcalloc(1, sizeof(*db));

	db->drv = driver_of(c);
	if (db->drv->open(db, c, mode) < 0 ||
	    (mode == DIRDB_ADMIN && upgrade(db) < 0) ||
	    check_version(db, c, err) < 0) {
		if (err->len == 0)
			buf_printf(err, "%s: %s", db_name(c), dirdb_errmsg(db));
		dirdb_close(db);
		return NULL;
	}
	return db;
}

void
dirdb_close(struct dirdb *db)
{
	if (db == NULL)
		return;
	for (int i = 0; i < DIRDB_CACHED && db->cached[i].sql; i++)
		dirdb_finalize(db->cached[i].st);
	if (db->h)
		db->drv->close(db);
	buf_free(&db->err);
	free(db);
}
