/*
 * dirdb_int: what an engine driver (dirdb_sqlite.c, dirdb_mariadb.c)
 * fills for dirdb.c: the connection and statement structures every
 * driver shares, and the table of its functions. A driver keeps its own
 * handles in the void pointers.
 */
#ifndef INDIMAIL_DIRDB_INT_H
#define INDIMAIL_DIRDB_INT_H

#include "dirdb.h"

/* A bound parameter ?N (index N - 1). */
struct dirdb_value {
	int		 type;		/* 's', 'i', or 'n' (NULL) */
	char		*s;
	long long	 i;
};

#define DIRDB_CACHED	8

struct dirdb {
	const struct dirdb_driver *drv;
	struct {
		const char		*sql;
		struct dirdb_stmt	*st;
	} cached[DIRDB_CACHED];		/* dirdb_prepare_cached */
	void		*h;		/* the driver's connection */
	struct buf	 err;		/* the last failure */
	enum dirdb_err	 errkind;
	long long	 changes;
};

struct dirdb_stmt {
	struct dirdb	*db;
	void		*h;		/* the driver's statement */
	struct dirdb_value *vals;
	int		 nvals;
	int		 ran;		/* executed since the last bind */
};

struct dirdb_driver {
	const char	*name;
	/* Connects: 0, or -1 with db->err set. */
	int		(*open)(struct dirdb *, const struct directory_conf *,
			    enum dirdb_mode);
	void		(*close)(struct dirdb *);
	int		(*current)(struct dirdb *);
	int		(*prepare)(struct dirdb_stmt *, const char *sql);
	/* Binds st->vals and runs the statement: 0 or -1. */
	int		(*exec)(struct dirdb_stmt *);
	/* DIRDB_ROW, DIRDB_DONE, -1 */
	int		(*fetch)(struct dirdb_stmt *);
	void		(*reset)(struct dirdb_stmt *);
	void		(*finalize)(struct dirdb_stmt *);
	int		(*ncols)(struct dirdb_stmt *);
	const char     *(*colname)(struct dirdb_stmt *, int);
	const char     *(*text)(struct dirdb_stmt *, int);	/* NULL: NULL */
	int		(*isint)(struct dirdb_stmt *, int);
	/* A script of ';'-separated statements without parameters. */
	int		(*script)(struct dirdb *, const char *sql);
	const char	*begin;		/* the SQL of a write transaction */
	/* Schema: a query counting the meta table (0 or 1). */
	const char	*has_meta;
	/* The steps of the schema, one per version (dirdb.c). */
	const char *const *steps;
	/* The schema lock around an upgrade, and its release. */
	const char	*lock, *unlock;
};

extern const struct dirdb_driver dirdb_driver_sqlite;
extern const struct dirdb_driver dirdb_driver_mariadb;

/* For drivers: records a failure of the given kind. Returns -1. */
int	dirdb_fail(struct dirdb *, enum dirdb_err, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

#endif
