/*
 * admin_vpop: `indimail import vpopmail|indimail`, which copies users,
 * aliases and host assignments from a vpopmail or IndiMail MySQL/MariaDB
 * database into the directory. admin_vpop_src.c owns the connection to the
 * source (MariaDB Connector/C, prepared statements, every value read as
 * text); admin_vpop_map.c turns one untrusted row into our values;
 * admin_vpop.c runs the import, one transaction per domain.
 */
#ifndef INDIMAIL_ADMIN_VPOP_H
#define INDIMAIL_ADMIN_VPOP_H

#include <mysql.h>

#include "admin.h"

#define VSRC_COLS	6
#define VSRC_CELL	1024

struct vsrc {
	MYSQL		*my;
};

/* The rows of one statement, every column as text. */
struct vsrc_rows {
	MYSQL_STMT	*st;
	MYSQL_BIND	 res[VSRC_COLS];
	char		 cell[VSRC_COLS][VSRC_CELL];
	unsigned long	 len[VSRC_COLS];
	my_bool		 null[VSRC_COLS], err[VSRC_COLS];
	int		 ncols;
	int		 bad;	/* this row: a value too long or with a NUL */
};

/* admin_vpop_src.c: 0, or an exit code (EX_UNAVAILABLE, EX_NOINPUT). */
int	vsrc_connect(struct vsrc *, const struct admin_opts *,
	    const char *default_db);
void	vsrc_close(struct vsrc *);
/* Runs sql with at most one string parameter (param NULL: none). */
int	vsrc_query(struct vsrc *, struct vsrc_rows *, const char *sql,
	    const char *param);
/* 1 a row, 0 the end, -1 an error (printed). */
int	vsrc_next(struct vsrc_rows *);
const char *vsrc_col(const struct vsrc_rows *, int);	/* "" for NULL */
void	vsrc_end(struct vsrc_rows *);
/* 1 when the source database has this table, 0 not, -1 error. */
int	vsrc_has_table(struct vsrc *, const char *name);

/* The source's kind: vpopmail and IndiMail number pw_gid bits apart. */
enum vpop_kind { VPOP_VPOPMAIL, VPOP_INDIMAIL };

/* admin_vpop_map.c: each 0, or prints why and returns EX_DATAERR. */
int	vpop_map_hash(const char *pw_passwd);
int	vpop_map_flags(enum vpop_kind, const char *pw_gid, unsigned *flags);
int	vpop_map_quota(const char *pw_shell, long long *quota);
/* A valias_line: 1 an address in target, 0 skipped (printed), or -1 bad. */
int	vpop_map_target(const char *line, char *target, size_t n);
/* vpopmail's table of one domain without --enable-many-domains. */
void	vpop_map_table(const char *domain, char *table, size_t n);
/* Prints "indimail: skipped ..." naming the table and the row. */
void	vpop_skip(const char *table, const char *what, const char *name);

#endif
