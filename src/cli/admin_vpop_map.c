/*
 * admin_vpop_map: one row of a vpopmail or IndiMail table, untrusted, into
 * our values. pw_passwd is kept as it is when libcrypt can verify it (so
 * users keep their passwords); pw_gid's bits become users.flags (vpopmail
 * and IndiMail put NO_SMTP on different bits: vpopmail.h, indimail.h);
 * pw_shell is the quota ("NOQUOTA", or Maildir++ "5242880S[,1000C]": the
 * message count is dropped); a valias_line is an address ("&joe@x" or
 * "joe@x"), or a program or file delivery, which is not imported.
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../directory/dirdb.h"
#include "admin_vpop.h"

/* pw_gid bits (vpopmail.h and IndiMail's indimail.h agree on the first). */
#define V_NO_POP		0x02
#define V_NO_IMAP		0x08
#define V_NO_RELAY		0x20
#define VPOPMAIL_NO_SMTP	0x800
#define INDIMAIL_NO_SMTP	0x200

#define HASH_CHARS \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./$=,"

int
vpop_map_hash(const char *h)
{
	int k;

	/* DES is 13 characters; "ab" alone is a setting, not a hash. */
	if (h[0] == '\0' || strlen(h) > 255 || h[strspn(h, HASH_CHARS)] ||
	    (h[0] != '$' && strlen(h) != 13))
		return admin_fail(EX_DATAERR, "pw_passwd is not a crypt(3) "
		    "hash");
	k = crypt_checksalt(h);
	if (k != CRYPT_SALT_OK && k != CRYPT_SALT_METHOD_LEGACY &&
	    k != CRYPT_SALT_TOO_CHEAP)
		return admin_fail(EX_DATAERR, "pw_passwd is not a crypt(3) "
		    "hash this libcrypt verifies ($1$, $5$, $6$, $y$, DES...)");
	return 0;
}

int
vpop_map_flags(enum vpop_kind kind, const char *gid, unsigned *flags)
{
	unsigned long v = 0;
	char *end = NULL;

	if (gid[0] != '\0')
		v = strtoul(gid, &end, 10);
	if (gid[0] == '-' || (end && *end) || v > 0xffffffffUL)
		return admin_fail(EX_DATAERR, "pw_gid is not a number");
	*flags = 0;
	if (v & V_NO_POP)
		*flags |= DIRDB_NO_POP;
	if (v & V_NO_IMAP)
		*flags |= DIRDB_NO_IMAP;
	if (v & V_NO_RELAY)
		*flags |= DIRDB_NO_RELAY;
	if (v & (kind == VPOP_INDIMAIL ? INDIMAIL_NO_SMTP : VPOPMAIL_NO_SMTP))
		*flags |= DIRDB_NO_SMTP;
	return 0;
}

int
vpop_map_quota(const char *shell, long long *quota)
{
	char q[64];
	size_t n;

	*quota = 0;
	if (shell[0] == '\0' || strcasecmp(shell, "NOQUOTA") == 0)
		return 0;
	if (strlen(shell) >= sizeof(q))
		return admin_fail(EX_DATAERR, "pw_shell is not a quota");
	snprintf(q, sizeof(q), "%s", shell);
	q[strcspn(q, ",")] = '\0';		/* ",1000C": a message count */
	n = strlen(q);
	if (n > 1 && (q[n - 1] == 'S' || q[n - 1] == 's') &&
	    q[n - 2] >= '0' && q[n - 2] <= '9')
		q[n - 1] = '\0';		/* Maildir++ "S": bytes */
	return admin_parse_quota(q, quota);
}

int
vpop_map_target(const char *line, char *target, size_t n)
{
	size_t len;

	line += strspn(line, " \t");
	len = strcspn(line, "\r\n");
	while (len && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (len && (line[0] == '|' || line[0] == '/' || line[0] == '.'))
		return 0;
	if (len && line[0] == '&')
		line++, len--;
	if (len == 0 || len >= n) {
		admin_fail(EX_DATAERR, "valias_line is not an address");
		return -1;
	}
	memcpy(target, line, len);
	target[len] = '\0';
	return admin_check_target(target) == 0 ? 1 : -1;
}

void
vpop_map_table(const char *domain, char *table, size_t n)
{
	size_t i;

	for (i = 0; domain[i] && i + 1 < n; i++)
		table[i] = domain[i] == '.' || domain[i] == '-' ? '_' :
		    domain[i];
	table[i] = '\0';
}

void
vpop_skip(const char *table, const char *what, const char *name)
{
	fprintf(stderr, "indimail: skipped: table %s, %s '", table, what);
	for (; *name; name++)
		fputc((unsigned char)*name < ' ' || *name == 127 ? '?' : *name,
		    stderr);
	fputs("'\n", stderr);
}
