/*
 * dirdb: the directory's SQL database, whichever engine holds it: SQLite
 * (one file, the default) or MariaDB/MySQL (Connector/C, for users spread
 * over many hosts). Shared by the daemon's backend (directory_sql.c, on
 * pool threads) and the admin CLI (src/cli/admin_*). One SQL text serves
 * both engines: parameters are ?N, identifiers that are keywords are
 * "quoted" (MariaDB sessions run with ANSI_QUOTES and PIPES_AS_CONCAT),
 * and names are stored lowercase (ASCII), as vpopmail does. Values are
 * only ever bound, never spliced. The schema and its versions are in
 * dirdb.c and docs/directory.md. A connection is used by one thread at a
 * time.
 */
#ifndef INDIMAIL_DIRDB_H
#define INDIMAIL_DIRDB_H

#include <stdarg.h>

#include "../lib/buf.h"
#include "../mail/config.h"

#define DIRDB_SCHEMA_VERSION	3
#define DIRDB_BUSY_MS		5000

/* users.flags, a bitmask */
#define DIRDB_DISABLED		0x01	/* no mail, no login */
#define DIRDB_NO_SMTP		0x02	/* no SMTP AUTH */
#define DIRDB_NO_IMAP		0x04
#define DIRDB_NO_POP		0x08
#define DIRDB_NO_RELAY		0x10	/* may log in, may not relay */

enum dirdb_mode {
	DIRDB_LOOKUP,		/* the daemon: read and write, never create */
	DIRDB_ADMIN		/* the tool: create, upgrade */
};

/* What a failure was, for the caller's answer (4xx, exit code). */
enum dirdb_err {
	DIRDB_ERR_NONE,
	DIRDB_ERR_TEMP,		/* busy, locked, gone away: try again */
	DIRDB_ERR_CONSTRAINT,	/* a key exists, a reference is missing */
	DIRDB_ERR_OTHER
};

enum { DIRDB_DONE, DIRDB_ROW };

struct dirdb;
struct dirdb_stmt;

/*
 * Opens the database of a directory configuration (backend sqlite or
 * mariadb): DIRDB_LOOKUP needs the schema at DIRDB_SCHEMA_VERSION;
 * DIRDB_ADMIN creates the schema or upgrades it. NULL with the reason.
 */
struct dirdb *dirdb_open(const struct directory_conf *, enum dirdb_mode,
	    struct buf *err);
void	 dirdb_close(struct dirdb *);
/* "sqlite" or "mariadb". */
const char *dirdb_engine(const struct dirdb *);
/* Still the database it opened (SQLite: the file was not replaced). */
int	 dirdb_current(struct dirdb *);

/* A statement, or NULL (dirdb_errmsg tells why). */
struct dirdb_stmt *dirdb_prepare(struct dirdb *, const char *sql);
/*
 * Binds ?1, ?2, ... from types: 's' a string (NULL binds NULL), 'i' a
 * long long. The strings are copied. Resets a statement that ran.
 */
int	 dirdb_bind(struct dirdb_stmt *, const char *types, ...);
int	 dirdb_vbind(struct dirdb_stmt *, const char *types, va_list);
/* Runs it (first call) and fetches: DIRDB_ROW, DIRDB_DONE, or -1. */
int	 dirdb_step(struct dirdb_stmt *);
void	 dirdb_finalize(struct dirdb_stmt *);
/*
 * The daemon's repeated lookups: a statement of sql (a string that lives
 * as long as the program: it is the key) prepared once per connection;
 * dirdb_release gives it back instead of dirdb_finalize.
 */
struct dirdb_stmt *dirdb_prepare_cached(struct dirdb *, const char *sql);
void	 dirdb_release(struct dirdb_stmt *);
/* The current row's columns; text is "" for NULL, valid until a step. */
int	 dirdb_ncols(struct dirdb_stmt *);
const char *dirdb_colname(struct dirdb_stmt *, int col);
const char *dirdb_text(struct dirdb_stmt *, int col);
int	 dirdb_isnull(struct dirdb_stmt *, int col);
int	 dirdb_isint(struct dirdb_stmt *, int col);	/* an integer column */
long long dirdb_int(struct dirdb_stmt *, int col);
/* Rows the last INSERT, UPDATE or DELETE matched. */
long long dirdb_changes(struct dirdb *);

/* Statements without parameters (BEGIN, schema): 0 or -1. */
int	 dirdb_exec(struct dirdb *, const char *sql);
/* A write transaction (SQLite: BEGIN IMMEDIATE). 0 or -1. */
int	 dirdb_begin(struct dirdb *);
int	 dirdb_commit(struct dirdb *);
void	 dirdb_rollback(struct dirdb *);

/* The last failure. */
const char *dirdb_errmsg(struct dirdb *);
enum dirdb_err dirdb_errkind(struct dirdb *);

/* Lowercases the ASCII letters of s in place, as stored names are. */
void	 dirdb_fold(char *s);

#endif
