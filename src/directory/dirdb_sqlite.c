/*
 * dirdb_sqlite: opening the directory database and keeping its schema.
 * The schema is a list of steps, one per version: step i takes a database
 * at version i to i + 1 in one transaction together with meta's
 * schema_version, so a crash leaves the old version or the new one. Only
 * the tool (DIRDB_ADMIN) creates or upgrades; the daemon refuses a
 * database at another version (a log line, and 451 for the recipients).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "dirdb_sqlite.h"

/*
 * SQLite makes every name absolute (getcwd) before it opens the file, and
 * an absolute name needs search permission on every folder above it: the
 * account could then not open var/db/directory.sqlite of a tree inside a
 * private home, although it owns var/db (the queue and lua_dir are opened
 * relative for the same reason, docs/security.md). This VFS is the default
 * one with relative names kept as they are; the unix VFS tells files apart
 * by inode, so locking is unaffected, and our processes never chdir.
 */
#define DIRDB_VFS	"indimail-relative"

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
	rel_vfs.zName = DIRDB_VFS;
	rel_vfs.pNext = NULL;
	rel_vfs.xFullPathname = rel_fullpath;
	if (sqlite3_vfs_register(&rel_vfs, 0) != SQLITE_OK)
		base_vfs = NULL;
}

/* steps[i]: version i → i + 1. */
static const char *const steps[DIRDB_SCHEMA_VERSION] = {
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
};

sqlite3_stmt *
dirdb_prepare(sqlite3 *db, const char *sql, struct buf *err)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		buf_printf(err, "%s", sqlite3_errmsg(db));
		return NULL;
	}
	return st;
}

int
dirdb_exec(sqlite3 *db, const char *sql, struct buf *err)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	buf_printf(err, "%s", msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return -1;
}

const char *
dirdb_text(sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	return s ? (const char *)s : "";
}

int
dirdb_version(sqlite3 *db)
{
	sqlite3_stmt *st;
	int v = -1, rc;

	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE "
	    "name = 'meta'", -1, &st, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_int(st, 0) ? -2 : 0;
	sqlite3_finalize(st);
	if (v != -2)
		return v;
	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = "
	    "'schema_version'", -1, &st, NULL) != SQLITE_OK)
		return -1;
	v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	return v;
}

/* One step of the schema, with its new version, in one transaction. */
static int
upgrade_step(sqlite3 *db, int from, struct buf *err)
{
	char sql[128];

	if (dirdb_exec(db, "BEGIN IMMEDIATE", err) < 0)
		return -1;
	if (dirdb_version(db) != from)	/* another tool did it meanwhile */
		return dirdb_exec(db, "ROLLBACK", err);
	snprintf(sql, sizeof(sql), "UPDATE meta SET value = '%d' WHERE key = "
	    "'schema_version'", from + 1);
	if (dirdb_exec(db, steps[from], err) < 0 ||
	    dirdb_exec(db, sql, err) < 0) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return dirdb_exec(db, "COMMIT", err);
}

/* The tool's part: WAL (kept in the file), then every missing step. */
static int
upgrade(sqlite3 *db, struct buf *err)
{
	int v;

	if (dirdb_exec(db, "PRAGMA journal_mode = WAL", err) < 0)
		return -1;
	while ((v = dirdb_version(db)) >= 0 && v < DIRDB_SCHEMA_VERSION)
		if (upgrade_step(db, v, err) < 0)
			return -1;
	return 0;
}

sqlite3 *
dirdb_open(const char *path, enum dirdb_mode mode, struct buf *err)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
	    (mode == DIRDB_ADMIN ? SQLITE_OPEN_CREATE : 0);
	sqlite3 *db = NULL;
	int v;

	pthread_once(&rel_once, rel_register);
	if (sqlite3_open_v2(path, &db, flags, base_vfs ? DIRDB_VFS : NULL) !=
	    SQLITE_OK ||
	    sqlite3_busy_timeout(db, DIRDB_BUSY_MS) != SQLITE_OK ||
	    dirdb_exec(db, "PRAGMA foreign_keys = ON", err) < 0 ||
	    (mode == DIRDB_ADMIN && upgrade(db, err) < 0)) {
		if (err->len == 0)
			buf_printf(err, "%s: %s", path, db ? sqlite3_errmsg(db) :
			    "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	if ((v = dirdb_version(db)) == DIRDB_SCHEMA_VERSION)
		return db;
	if (v < 0)
		buf_printf(err, "%s: %s", path, sqlite3_errmsg(db));
	else
		buf_printf(err, "%s: schema version %d, this program needs %d "
		    "(run `indimail domain list` to upgrade it)", path, v,
		    DIRDB_SCHEMA_VERSION);
	sqlite3_close(db);
	return NULL;
}
