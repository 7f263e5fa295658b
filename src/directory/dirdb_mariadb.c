/*
 * dirdb_mariadb: the MariaDB/MySQL driver of dirdb (dirdb_int.h), over
 * Connector/C prepared statements. Every call blocks, so the daemon only
 * uses it on pool threads (directory_sql.c), with connect, read and write
 * timeouts so a dead server costs seconds, not minutes. Sessions run with
 * ANSI_QUOTES and PIPES_AS_CONCAT so SQLite's SQL text works unchanged;
 * ?N parameters are rewritten to ? with a map. Results are stored client
 * side and read as text. Names are utf8mb4_bin, written lowercase by the
 * tool and looked up lowercase (dirdb_fold), which is SQLite's NOCASE.
 */
#include <ctype.h>
#include <errno.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <errmsg.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "dirdb_int.h"

#define MY_TABLE " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;"

/*
 * steps[i]: version i → i + 1. MariaDB's DDL commits at once, so a step
 * must be safe to run again after a crash in its middle.
 */
static const char *const my_steps[DIRDB_SCHEMA_VERSION] = {
	"CREATE TABLE IF NOT EXISTS meta (\"key\" VARCHAR(64) PRIMARY KEY,"
	"  \"value\" VARCHAR(255) NOT NULL)" MY_TABLE
	"CREATE TABLE IF NOT EXISTS domains ("
	"  name VARCHAR(255) PRIMARY KEY,"
	"  alias_of VARCHAR(255) NULL,"
	"  postmaster VARCHAR(320) NULL,"
	"  created BIGINT NOT NULL,"
	"  FOREIGN KEY (alias_of) REFERENCES domains(name) ON DELETE CASCADE)"
	MY_TABLE
	"CREATE TABLE IF NOT EXISTS users ("
	"  local VARCHAR(255) NOT NULL,"
	"  domain VARCHAR(255) NOT NULL,"
	"  password VARCHAR(1024) NOT NULL,"
	"  home VARCHAR(1024) NOT NULL,"
	"  quota BIGINT NOT NULL DEFAULT 0,"
	"  flags INT NOT NULL DEFAULT 0,"
	"  created BIGINT NOT NULL,"
	"  PRIMARY KEY (local, domain), KEY (domain),"
	"  FOREIGN KEY (domain) REFERENCES domains(name) ON DELETE CASCADE)"
	MY_TABLE
	"CREATE TABLE IF NOT EXISTS aliases ("
	"  address VARCHAR(320) NOT NULL,"
	"  target VARCHAR(320) NOT NULL,"
	"  PRIMARY KEY (address, target))" MY_TABLE
	"CREATE TABLE IF NOT EXISTS host_table ("
	"  host VARCHAR(255) PRIMARY KEY,"
	"  address VARCHAR(255) NOT NULL)" MY_TABLE
	"CREATE TABLE IF NOT EXISTS smtp_port ("
	"  host VARCHAR(255) PRIMARY KEY,"
	"  port INT NOT NULL,"
	"  FOREIGN KEY (host) REFERENCES host_table(host) ON DELETE CASCADE)"
	MY_TABLE
	"CREATE TABLE IF NOT EXISTS hostcntrl ("
	"  local VARCHAR(255) NOT NULL,"
	"  domain VARCHAR(255) NOT NULL,"
	"  host VARCHAR(255) NOT NULL,"
	"  PRIMARY KEY (local, domain),"
	"  FOREIGN KEY (host) REFERENCES host_table(host),"
	"  FOREIGN KEY (local, domain) REFERENCES users(local, domain)"
	"    ON DELETE CASCADE)" MY_TABLE
	"INSERT IGNORE INTO meta VALUES ('schema_version', '0')",
	/* 1 → 2: SCRAM-SHA-256 and CRAM-MD5 secrets, a domain's mechanisms */
	"ALTER TABLE users ADD COLUMN IF NOT EXISTS scram VARCHAR(1024) NULL;"
	"ALTER TABLE users ADD COLUMN IF NOT EXISTS cram VARCHAR(255) NULL;"
	"ALTER TABLE domains ADD COLUMN IF NOT EXISTS auth_mechs VARCHAR(255) "
	"NULL",
	/* 2 → 3: the autoresponder (`indimail user vacation`) */
	"CREATE TABLE IF NOT EXISTS vacation ("
	"  local VARCHAR(255) NOT NULL,"
	"  domain VARCHAR(255) NOT NULL,"
	"  enabled INT NOT NULL,"
	"  subject VARCHAR(255) NULL,"
	"  message TEXT NOT NULL,"
	"  start_at BIGINT NOT NULL DEFAULT 0,"
	"  end_at BIGINT NOT NULL DEFAULT 0,"
	"  interval_s BIGINT NOT NULL,"
	"  PRIMARY KEY (local, domain),"
	"  FOREIGN KEY (local, domain) REFERENCES users(local, domain)"
	"    ON DELETE CASCADE)" MY_TABLE,
};

#define MY_SQL_MODE \
	"SET SESSION sql_mode = 'ANSI_QUOTES,PIPES_AS_CONCAT," \
	"STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"

struct my_stmt {
	MYSQL_STMT	*st;
	int		*map;		/* the k-th ? is ?map[k] */
	int		 nmap;
	MYSQL_RES	*meta;		/* NULL: no result set */
	MYSQL_FIELD	*fields;
	int		 ncols;
	MYSQL_BIND	*res;
	char	       **cell;
	unsigned long	*len;
	my_bool		*null;
};

static MYSQL *
my(struct dirdb *db)
{
	return db->h;
}

static enum dirdb_err
my_kind(unsigned e)
{
	switch (e) {
	case CR_CONNECTION_ERROR: case CR_CONN_HOST_ERROR:
	case CR_SERVER_GONE_ERROR: case CR_SERVER_LOST:
	case CR_SERVER_LOST_EXTENDED: case ER_LOCK_WAIT_TIMEOUT:
	case ER_LOCK_DEADLOCK: case ER_CON_COUNT_ERROR:
	case ER_SERVER_SHUTDOWN: case ER_CONNECTION_KILLED:
	case ER_QUERY_INTERRUPTED: case ER_TOO_MANY_USER_CONNECTIONS:
		return DIRDB_ERR_TEMP;
	case ER_DUP_ENTRY: case ER_NO_REFERENCED_ROW_2:
	case ER_ROW_IS_REFERENCED_2: case ER_NO_REFERENCED_ROW:
	case ER_ROW_IS_REFERENCED:
		return DIRDB_ERR_CONSTRAINT;
	}
	return DIRDB_ERR_OTHER;
}

static int
my_fail(struct dirdb *db)
{
	return dirdb_fail(db, my_kind(mysql_errno(my(db))), "%s",
	    mysql_error(my(db)));
}

static int
my_stmt_fail(struct dirdb_stmt *st)
{
	MYSQL_STMT *h = ((struct my_stmt *)st->h)->st;

	return dirdb_fail(st->db, my_kind(mysql_stmt_errno(h)), "%s",
	    mysql_stmt_error(h));
}

static void
my_set_timeouts(MYSQL *m, unsigned s)
{
	mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &s);
	mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &s);
	mysql_optionsv(m, MYSQL_OPT_WRITE_TIMEOUT, &s);
}

static int
my_open(struct dirdb *db, const struct directory_conf *c,
    enum dirdb_mode mode)
{
	MYSQL *m = mysql_init(NULL);

	(void)mode;
	if ((db->h = m) == NULL)
		return dirdb_fail(db, DIRDB_ERR_TEMP, "out of memory");
	my_set_timeouts(m, c->timeout_s ? (unsigned)c->timeout_s : 5);
	mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_optionsv(m, MYSQL_INIT_COMMAND, MY_SQL_MODE);
	if (mysql_real_connect(m, c->socket ? NULL : c->host, c->user,
	    c->password, c->database, c->socket ? 0 : (unsigned)c->port,
	    c->socket, CLIENT_FOUND_ROWS) == NULL)
		return my_fail(db);
	return 0;
}

static void
my_close(struct dirdb *db)
{
	mysql_close(my(db));
}

/* A pooled connection is tried as is; a lost one fails with ERR_TEMP. */
static int
my_current(struct dirdb *db)
{
	(void)db;
	return 1;
}

/* Runs one statement of a script and drops any result. */
static int
my_query(struct dirdb *db, const char *sql, size_t len)
{
	MYSQL_RES *r;

	if (mysql_real_query(my(db), sql, len) != 0)
		return my_fail(db);
	if ((r = mysql_store_result(my(db))) != NULL)
		mysql_free_result(r);
	else if (mysql_field_count(my(db)) != 0)
		return my_fail(db);
	db->changes = (long long)mysql_affected_rows(my(db));
	return 0;
}

/* Our own fixed text: ';' never appears inside a literal. */
static int
my_script(struct dirdb *db, const char *sql)
{
	while (*sql) {
		size_t n = strcspn(sql, ";"), skip = 0;

		while (skip < n && isspace((unsigned char)sql[skip]))
			skip++;
		if (skip < n && my_query(db, sql + skip, n - skip) < 0)
			return -1;
		sql += n + (sql[n] == ';');
	}
	return 0;
}

/* ?N → ? outside quotes, remembering N (a bare ? is the one after). */
static char *
my_rewrite(const char *sql, struct my_stmt *m)
{
	char *out = xmalloc(strlen(sql) + 1), *o = out, *end;
	int quote = 0, next = 1;

	m->map = xcalloc(strlen(sql) + 1, sizeof(int));
	for (const char *p = sql; *p; ) {
		if (*p == '\'')
			quote = !quote;
		if (quote || *p != '?') {
			*o++ = *p++;
			continue;
		}
		*o++ = *p++;
		if (isdigit((unsigned char)*p)) {
			next = (int)strtol(p, &end, 10);
			p = end;
		}
		m->map[m->nmap++] = next++;
	}
	*o = '\0';
	return out;
}

static int
my_prepare(struct dirdb_stmt *st, const char *sql)
{
	struct my_stmt *m = xcalloc(1, sizeof(*m));
	char *text = my_rewrite(sql, m);
	my_bool on = 1;
	int rc = 0;

	st->h = m;
	if ((m->st = mysql_stmt_init(my(st->db))) == NULL)
		rc = my_fail(st->db);
	else if (mysql_stmt_attr_set(m->st, STMT_ATTR_UPDATE_MAX_LENGTH, &on) ||
	    mysql_stmt_prepare(m->st, text, strlen(text)) != 0)
		rc = my_stmt_fail(st);
	free(text);
	if (rc < 0) {
		if (m->st)
			mysql_stmt_close(m->st);
		free(m->map);
		free(m);
	}
	return rc;
}

/* The parameters in the statement's order; a missing ?N binds NULL. */
static MYSQL_BIND *
my_params(struct dirdb_stmt *st, struct my_stmt *m, unsigned long *lens)
{
	MYSQL_BIND *b = xcalloc((size_t)m->nmap + 1, sizeof(*b));

	for (int k = 0; k < m->nmap; k++) {
		struct dirdb_value *v = m->map[k] <= st->nvals ?
		    &st->vals[m->map[k] - 1] : NULL;

		b[k].buffer_type = MYSQL_TYPE_NULL;
		if (v && v->type == 's') {
			lens[k] = strlen(v->s);
			b[k].buffer_type = MYSQL_TYPE_STRING;
			b[k].buffer = v->s;
			b[k].buffer_length = lens[k];
			b[k].length = &lens[k];
		} else if (v && v->type == 'i') {
			b[k].buffer_type = MYSQL_TYPE_LONGLONG;
			b[k].buffer = &v->i;
		}
	}
	return b;
}

/* A text buffer per column, as long as its longest stored value. */
static int
my_bind_result(struct dirdb_stmt *st, struct my_stmt *m)
{
	m->ncols = (int)mysql_num_fields(m->meta);
	m->fields = mysql_fetch_fields(m->meta);
	m->res = xcalloc((size_t)m->ncols + 1, sizeof(*m->res));
	m->cell = xcalloc((size_t)m->ncols + 1, sizeof(*m->cell));
	m->len = xcalloc((size_t)m->ncols + 1, sizeof(*m->len));
	m->null = xcalloc((size_t)m->ncols + 1, sizeof(*m->null));
	for (int i = 0; i < m->ncols; i++) {
		size_t n = m->fields[i].max_length > 64 ?
		    m->fields[i].max_length : 64;

		m->cell[i] = xmalloc(n + 1);
		m->res[i].buffer_type = MYSQL_TYPE_STRING;
		m->res[i].buffer = m->cell[i];
		m->res[i].buffer_length = n + 1;
		m->res[i].length = &m->len[i];
		m->res[i].is_null = &m->null[i];
	}
	return mysql_stmt_bind_result(m->st, m->res) ? my_stmt_fail(st) : 0;
}

static void
my_free_result(struct my_stmt *m)
{
	for (int i = 0; i < m->ncols; i++)
		free(m->cell[i]);
	free(m->cell);
	free(m->res);
	free(m->len);
	free(m->null);
	m->cell = NULL, m->res = NULL, m->len = NULL, m->null = NULL;
	m->ncols = 0;
	if (m->meta)
		mysql_free_result(m->meta);
	m->meta = NULL;
	mysql_stmt_free_result(m->st);
}

static int
my_exec(struct dirdb_stmt *st)
{
	struct my_stmt *m = st->h;
	unsigned long *lens = xcalloc((size_t)m->nmap + 1, sizeof(*lens));
	MYSQL_BIND *b = my_params(st, m, lens);
	int rc = 0;

	if (mysql_stmt_bind_param(m->st, b) != 0 ||
	    mysql_stmt_execute(m->st) != 0)
		rc = my_stmt_fail(st);
	free(b);
	free(lens);
	if (rc < 0)
		return -1;
	st->db->changes = (long long)mysql_stmt_affected_rows(m->st);
	if ((m->meta = mysql_stmt_result_metadata(m->st)) == NULL)
		return 0;
	if (mysql_stmt_store_result(m->st) != 0)
		return my_stmt_fail(st);
	return my_bind_result(st, m);
}

static int
my_fetch(struct dirdb_stmt *st)
{
	struct my_stmt *m = st->h;
	int rc;

	if (m->meta == NULL)
		return DIRDB_DONE;
	if ((rc = mysql_stmt_fetch(m->st)) == MYSQL_NO_DATA)
		return DIRDB_DONE;
	if (rc == MYSQL_DATA_TRUNCATED)
		return dirdb_fail(st->db, DIRDB_ERR_OTHER, "a value was cut");
	if (rc != 0)
		return my_stmt_fail(st);
	for (int i = 0; i < m->ncols; i++)
		m->cell[i][m->null[i] ? 0 : m->len[i]] = '\0';
	return DIRDB_ROW;
}

static void
my_reset(struct dirdb_stmt *st)
{
	struct my_stmt *m = st->h;

	my_free_result(m);
	mysql_stmt_reset(m->st);
}

static void
my_finalize(struct dirdb_stmt *st)
{
	struct my_stmt *m = st->h;

	my_free_result(m);
	mysql_stmt_close(m->st);
	free(m->map);
	free(m);
}

static int
my_ncols(struct dirdb_stmt *st)
{
	return ((struct my_stmt *)st->h)->ncols;
}

static const char *
my_colname(struct dirdb_stmt *st, int col)
{
	return ((struct my_stmt *)st->h)->fields[col].name;
}

static const char *
my_text(struct dirdb_stmt *st, int col)
{
	struct my_stmt *m = st->h;

	return m->null[col] ? NULL : m->cell[col];
}

static int
my_isint(struct dirdb_stmt *st, int col)
{
	switch (((struct my_stmt *)st->h)->fields[col].type) {
	case MYSQL_TYPE_TINY: case MYSQL_TYPE_SHORT: case MYSQL_TYPE_LONG:
	case MYSQL_TYPE_INT24: case MYSQL_TYPE_LONGLONG:
		return !my_text(st, col) ? 0 : 1;
	default:
		return 0;
	}
}

const struct dirdb_driver dirdb_driver_mariadb = {
	.name = "mariadb",
	.open = my_open,
	.close = my_close,
	.current = my_current,
	.prepare = my_prepare,
	.exec = my_exec,
	.fetch = my_fetch,
	.reset = my_reset,
	.finalize = my_finalize,
	.ncols = my_ncols,
	.colname = my_colname,
	.text = my_text,
	.isint = my_isint,
	.script = my_script,
	.begin = "START TRANSACTION",
	.has_meta = "SELECT count(*) FROM information_schema.tables WHERE "
	    "table_schema = DATABASE() AND table_name = 'meta'",
	.steps = my_steps,
	.lock = "DO GET_LOCK('indimail_schema', 30)",
	.unlock = "DO RELEASE_LOCK('indimail_schema')",
};
