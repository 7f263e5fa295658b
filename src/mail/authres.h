/*
 * [src/mail: what every part of the server knows about mail, whatever the
 * protocol; it includes only src/lib. See docs/architecture.md.]
 *
 * authres: a parser of an Authentication-Results field value (RFC 8601
 * 2.2): the authserv-id, its optional version, then "none" or the results,
 * each `method[/version]=result [reason=value] ptype.property=pvalue ...`,
 * with comments and folding wherever CFWS is allowed. Pure: no I/O, no
 * allocation. Its strings are spans into a scratch area the caller gives
 * (as long as the value: unquoting and dropping comments only shrink it).
 * Fuzzed by fuzz/fuzz_authres.c; used by indimail.authres.parse.
 */
#ifndef INDIMAIL_AUTHRES_H
#define INDIMAIL_AUTHRES_H

#include <stddef.h>

#define AUTHRES_MAX_FIELD	16384	/* bytes of a whole field value */
#define AUTHRES_MAX_RESULTS	16	/* resinfo entries in one field */
#define AUTHRES_MAX_PROPS	16	/* ptype.property=pvalue per result */
#define AUTHRES_MAX_VALUE	1024	/* bytes of one id, keyword or value */
#define AUTHRES_MAX_DIGITS	9	/* of a version: it fits an int */

struct authres_span {
	const char	*s;	/* NULL: absent */
	size_t		 len;
};

struct authres_prop {
	struct authres_span key;	/* "ptype.property", lower case */
	struct authres_span value;	/* unquoted; a quoted local-part@ kept */
};

struct authres_result {
	struct authres_span method;	/* lower case */
	struct authres_span version;	/* digits of method/N, or absent */
	struct authres_span result;	/* lower case */
	struct authres_span reason;	/* unquoted, or absent */
	struct authres_prop props[AUTHRES_MAX_PROPS];
	size_t		    nprops;
};

struct authres {
	struct authres_span authserv_id;	/* as written, unquoted */
	struct authres_span version;		/* digits, or absent */
	struct authres_result results[AUTHRES_MAX_RESULTS];
	size_t		    nresults;		/* 0: the field said "none" */
	const char	   *error;		/* why parsing stopped */
	size_t		    errpos;		/* at which byte of the value */
};

/*
 * Parses v[0..n) (a field value, folded or not; a final line break is
 * allowed) into *ar, writing its strings into scratch (n bytes at least).
 * Returns 0, or -1 with ar->error and ar->errpos set; ar->authserv_id is
 * set then too when the id itself was read before the error.
 */
int	authres_parse(const char *v, size_t n, char *scratch, struct authres *ar);

#endif
