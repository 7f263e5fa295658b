/*
 * dirdb_sqlite: the SQLite driver of dirdb (dirdb_int.h): one file, opened
 * with a busy timeout and foreign keys on; the tool sets WAL when it
 * creates the file (it stays). The schema's steps for SQLite are here;
 * docs/directory.md describes the tables. A connection remembers the
 * file it opened, so a replaced file is noticed (dirdb_current).
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/xalloc.h"
#include "dirdb_int.h"

struct sq_conn {
	sqlite3		*db;
	char		*path;
	dev_t		 dev;
	ino_t		 ino;
};

/*
 * SQLite makes every name absolute (getcwd) before it opens the file, and
 * an absolute name needs search permission on every folder above it: the
 * account could then not open var/db/directory.sqlite of a tree inside a
 * private home, although it owns var/db (the queue and lua_dir are opened
 * relative for the same reason, docs/security.md). This VFS is the default
 * one with relative names kept as they are; the unix VFS tells files apart
 * by inode, so locking is unaffected, and our processes never chdir.
 */
#define SQ_VFS	"indimail-relative"

static sqlite3_vfs rel_vfs;
static sqlite3_vfs *base_vfs;
static pthread_once_t rel_once = PTHREAD_ONCE_INIT;

static int
rel_fullpath(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	size_t len = strlen(name);

	(void)vfs;
	if (name[0] == '/')
		return base_vfs->xFullPathname(base_vfs, name, n, out);
	if (len + 1 > (size_t)n)
		return SQLITE_CANTOPEN;
	memcpy(out, name, len + 1);
	return SQLITE_OK;
}

static void
rel_register(void)
{
	base_vfs = sqlite3_vfs_find(NULL);
	if (base_vfs == NULL)
		return;
	rel_vfs = *base_vfs;
	rel_vfs.zName = SQ_VFS;
	rel_vfs.pNext = NULL;
	rel_vfs.xFullPathname = rel_fullpath;
	if (sqlite3_vfs_register(&rel_vfs, 0) != SQLITE_OK)
		base_vfs = NULL;
}

/* steps[i]: version i → i + 1 (dirdb.c sets the version). */
static const char *const sq_steps[DIRDB_SCHEMA_VERSION] = {
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE domains ("
	"  name TEXT PRIMARY KEY COLLATE NOCASE,"
	"  alias_of TEXT COLLATE NOCASE REFERENCES domains(name)"
	"    ON DELETE CASCADE,"
	"  postmaster TEXT,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE users ("
	"  local TEXT NOT NULL COLLATE NOCASE,"
	"  domain TEXT NOT NULL COLLATE NOCASE REFERENCES domains(name)"
	"    ON DELETE CASCADE,"
	"  password TEXT NOT NULL,"
	"  home TEXT NOT NULL,"
	"  quota INTEGER NOT NULL DEFAULT 0,"
	"  flags INTEGER NOT NULL DEFAULT 0,"
	"  created INTEGER NOT NULL,"
	"  PRIMARY KEY (local, domain));"
	"CREATE TABLE aliases ("
	"  address TEXT NOT NULL COLLATE NOCASE,"
	"  target TEXT NOT NULL,"
	"  PRIMARY KEY (address, target));"
	"CREATE TABLE host_table ("
	"  host TEXT PRIMARY KEY,"
	"  address TEXT NOT NULL);"
	"CREATE TABLE smtp_port ("
	"  host TEXT PRIMARY KEY REFERENCES host_table(host) ON DELETE CASCADE,"
	"  port INTEGER NOT NULL);"
	"CREATE TABLE hostcntrl ("
	"  local TEXT NOT NULL COLLATE NOCASE,"
	"  domain TEXT NOT NULL COLLATE NOCASE,"
	"  host TEXT NOT NULL REFERENCES host_table(host),"
	"  PRIMARY KEY (local, domain),"
	"  FOREIGN KEY (local, domain) REFERENCES users(local, domain)"
	"    ON DELETE CASCADE);"
	"INSERT INTO meta VALUES ('schema_version', '0');",
	/* 2: SMTP AUTH CRAM-MD5 and SCRAM-SHA-256 (docs/directory.md) */
	"ALTER TABLE users ADD COLUMN scram TEXT;"
	"ALTER TABLE users ADD COLUMN cram TEXT;"
	"ALTER TABLE domains ADD COLUMN auth_mechs TEXT;",
	/* 3: the autoresponder (`indimail user vacation`) */
	"CREATE TABLE vacation ("
	"  local TEXT NOT NULL COLLATE NOCASE,"
	"  domain TEXT NOT NULL COLLATE NOCASE,"
	"  enabled INTEGER NOT NULL,"
	"  subject TEXT,"
	"  message TEXT NOT NULL,"
	"  start_at INTEGER NOT NULL DEFAULT 0,"
	"  end_at INTEGER NOT NULL DEFAULT 0,"
	"  interval_s INTEGER NOT NULL,"
	"  PRIMARY KEY (local, domain),"
	"  FOREIGN KEY (local, domain) REFERENCES users(local, domain)"
	"    ON DELETE CASCADE);",
};

static sqlite3 *
sq(struct dirdb *db)
{
	return ((struct sq_conn *)db->h)->db;
}

/* Records SQLite's last error on db; -1. */
static int
sq_fail(struct dirdb *db)
{
	int e = sqlite3_errcode(sq(db)) & 0xff;

	return dirdb_fail(db, e == SQLITE_BUSY || e == SQLITE_LOCKED ?
	    DIRDB_ERR_TEMP : e == SQLITE_CONSTRAINT ? DIRDB_ERR_CONSTRAINT :
	    DIRDB_ERR_OTHER, "%s", sqlite3_errmsg(sq(db)));
}

static int
sq_script(struct dirdb *db, const char *sql)
{
	return sqlite3_exec(sq(db), sql, NULL, NULL, NULL) == SQLITE_OK ? 0 :
	    sq_fail(db);
}

static int
sq_open(struct dirdb *db, const struct directory_conf *c,
    enum dirdb_mode mode)
{
	struct sq_conn *conn = xcalloc(1, sizeof(*conn));
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
	    (mode == DIRDB_ADMIN ? SQLITE_OPEN_CREATE : 0);
	struct stat st;

	db->h = conn;
	conn->path = xstrdup(c->path ? c->path : "");
	pthread_once(&rel_once, rel_register);
	if (mode == DIRDB_LOOKUP && (access(conn->path, R_OK) < 0 ||
	    stat(conn->path, &st) < 0))
		return dirdb_fail(db, DIRDB_ERR_TEMP, "%s", strerror(errno));
	if (sqlite3_open_v2(conn->path, &conn->db, flags, base_vfs ? SQ_VFS :
	    NULL) != SQLITE_OK || sqlite3_busy_timeout(conn->db,
	    DIRDB_BUSY_MS) != SQLITE_OK ||
	    sq_script(db, "PRAGMA foreign_keys = ON") < 0 ||
	    (mode == DIRDB_ADMIN && sq_script(db, "PRAGMA journal_mode = WAL")
	    < 0))
		return conn->db ? sq_fail(db) : dirdb_fail(db, DIRDB_ERR_OTHER,
		    "out of memory");
	if (stat(conn->path, &st) == 0)
		conn->dev = st.st_dev, conn->ino = st.st_ino;
	return 0;
}

static void
sq_close(struct dirdb *db)
{
	struct sq_conn *conn = db->h;

	sqlite3_close(conn->db);
	free(conn->path);
	free(conn);
}

/* The file is still there, readable, and the one the connection opened. */
static int
sq_current(struct dirdb *db)
{
	struct sq_conn *conn = db->h;
	struct stat st;

	return stat(conn->path, &st) == 0 && access(conn->path, R_OK) == 0 &&
	    st.st_dev == conn->dev && st.st_ino == conn->ino;
}

static int
sq_prepare(struct dirdb_stmt *st, const char *sql)
{
	sqlite3_stmt *h = NULL;

	if (sqlite3_prepare_v2(sq(st->db), sql, -1, &h, NULL) != SQLITE_OK)
		return sq_fail(st->db);
	st->h = h;
	return 0;
}

static int
sq_exec(struct dirdb_stmt *st)
{
	sqlite3_stmt *h = st->h;

	for (int i = 0; i < st->nvals; i++) {
		const struct dirdb_value *v = &st->vals[i];

		if (v->type == 's')
			sqlite3_bind_text(h, i + 1, v->s, -1, SQLITE_STATIC);
		else if (v->type == 'i')
			sqlite3_bind_int64(h, i + 1, v->i);
		else
			sqlite3_bind_null(h, i + 1);
	}
	return 0;
}

static int
sq_fetch(struct dirdb_stmt *st)
{
	int rc = sqlite3_step(st->h);

	if (rc == SQLITE_ROW)
		return DIRDB_ROW;
	if (rc != SQLITE_DONE)
		return sq_fail(st->db);
	st->db->changes = sqlite3_changes(sq(st->db));
	return DIRDB_DONE;
}

static void
sq_reset(struct dirdb_stmt *st)
{
	sqlite3_reset(st->h);
	sqlite3_clear_bindings(st->h);
}

static void
sq_finalize(struct dirdb_stmt *st)
{
	sqlite3_finalize(st->h);
}

static int
sq_ncols(struct dirdb_stmt *st)
{
	return sqlite3_column_count(st->h);
}

static const char *
sq_colname(struct dirdb_stmt *st, int col)
{
	return sqlite3_column_name(st->h, col);
}

static const char *
sq_text(struct dirdb_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st->h, col);
}

static int
sq_isint(struct dirdb_stmt *st, int col)
{
	return sqlite3_column_type(st->h, col) == SQLITE_INTEGER;
}

const struct dirdb_driver dirdb_driver_sqlite = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.current = sq_current,
	.prepare = sq_prepare,
	.exec = sq_exec,
	.fetch = sq_fetch,
	.reset = sq_reset,
	.finalize = sq_finalize,
	.ncols = sq_ncols,
	.colname = sq_colname,
	.text = sq_text,
	.isint = sq_isint,
	.script = sq_script,
	.begin = "BEGIN IMMEDIATE",
	.has_meta = "SELECT count(*) FROM sqlite_master WHERE name = 'meta'",
	.steps = sq_steps,
	.lock = "BEGIN IMMEDIATE",
	.unlock = "COMMIT",
};
