/*
 * dirdb_sqlite: the directory's SQLite database, shared by the backend
 * (directory_sqlite.c, in the daemon) and the admin CLI (src/cli/admin_*):
 * the schema and its version, opening with a busy timeout (WAL is set when
 * the tool creates the file, and stays), and prepared statements only.
 * The tables and columns are described in docs/directory.md.
 */
#ifndef INDIMAIL_DIRDB_SQLITE_H
#define INDIMAIL_DIRDB_SQLITE_H

#include <sqlite3.h>

#include "../lib/buf.h"

#define DIRDB_SCHEMA_VERSION	2
#define DIRDB_BUSY_MS		5000

/* users.flags, a bitmask */
#define DIRDB_DISABLED		0x01	/* no mail, no login */
#define DIRDB_NO_SMTP		0x02	/* no SMTP AUTH */
#define DIRDB_NO_IMAP		0x04
#define DIRDB_NO_POP		0x08
#define DIRDB_NO_RELAY		0x10	/* may log in, may not relay */

enum dirdb_mode {
	DIRDB_LOOKUP,		/* the daemon: read and write, never create */
	DIRDB_ADMIN		/* the tool: create, upgrade, WAL */
};

/*
 * Opens path: DIRDB_LOOKUP needs the schema at DIRDB_SCHEMA_VERSION;
 * DIRDB_ADMIN creates the file and the schema or upgrades it. NULL with
 * the reason in err.
 */
sqlite3	*dirdb_open(const char *path, enum dirdb_mode, struct buf *err);
/* The schema version of an open database, 0 when it has none, -1 error. */
int	 dirdb_version(sqlite3 *);
/* A statement, or NULL with sqlite's message in err. */
sqlite3_stmt *dirdb_prepare(sqlite3 *, const char *sql, struct buf *err);
/* Runs a fixed statement (no parameters): BEGIN, COMMIT. 0 or -1 + err. */
int	 dirdb_exec(sqlite3 *, const char *sql, struct buf *err);
/* A column as text, "" for NULL (valid until the next step). */
const char *dirdb_text(sqlite3_stmt *, int col);

#endif
