/*
 * admin_password: the password of `user add|passwd|import` (vadduser,
 * vpasswd): given as an argument or read as one line from stdin, checked
 * against directory.password_policy (length in UTF-8 code points, classes
 * lower/upper/digit/other, no control characters, not the user's name or
 * address) and hashed with yescrypt (crypt_gensalt_rn "$y$"). A password
 * is never printed; the buffers that held it are cleared by the callers.
 */
#include <crypt.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "admin.h"

#define POLICY	"directory.password_policy"

static int
too_long(const struct password_policy *p)
{
	return admin_fail(EX_DATAERR, "password too long: at most %d "
	    "characters (" POLICY ".max_length)", p->max_length);
}

/* One line of stdin without its "\n" or "\r\n": 0 or an exit code. */
static int
read_line(const struct password_policy *p, char *pw, size_t n)
{
	size_t len;

	if (fgets(pw, (int)n, stdin) == NULL)
		pw[0] = '\0';
	len = strlen(pw);
	if (len && pw[len - 1] == '\n')
		pw[--len] = '\0';
	else if (len + 1 == n)
		return too_long(p);
	if (len && pw[len - 1] == '\r')
		pw[--len] = '\0';
	return 0;
}

int
admin_read_password(const struct password_policy *p, const char *given,
    int from_stdin, char *pw, size_t n)
{
	if (given && strlen(given) >= n)
		return too_long(p);
	snprintf(pw, n, "%s", given ? given : "");
	if (from_stdin && read_line(p, pw, n) != 0)
		return EX_DATAERR;
	if (pw[0] == '\0')
		return admin_fail(EX_DATAERR, "empty password (give it with "
		    "--password-stdin)");
	return 0;
}

/* The classes of s: bit 0 lower, 1 upper, 2 digit (ASCII, whatever the
 * locale), 3 anything else. */
static int
char_classes(const unsigned char *s)
{
	int bits = 0, n = 0;

	for (; *s; s++)
		bits |= *s >= 'a' && *s <= 'z' ? 1 : *s >= 'A' && *s <= 'Z' ?
		    2 : *s >= '0' && *s <= '9' ? 4 : 8;
	for (; bits; bits >>= 1)
		n += bits & 1;
	return n;
}

/* Code points: every byte that is not a UTF-8 continuation byte. */
static int
char_count(const unsigned char *s)
{
	int n = 0;

	for (; *s; s++)
		n += (*s & 0xc0) != 0x80;
	return n;
}

/* pw is local, or local@domain, in any case. */
static int
is_name(const char *pw, const char *local, const char *domain)
{
	size_t ll = strlen(local);

	if (strcasecmp(pw, local) == 0)
		return 1;
	return strncasecmp(pw, local, ll) == 0 && pw[ll] == '@' &&
	    strcasecmp(pw + ll + 1, domain) == 0;
}

int
admin_check_password(const struct password_policy *p, const char *pw,
    const char *local, const char *domain)
{
	const unsigned char *u = (const unsigned char *)pw;
	int len = char_count(u);

	for (; *u; u++)
		if (*u < 0x20 || *u == 0x7f)
			return admin_fail(EX_DATAERR, "password has a control "
			    "character (bytes below 0x20 and 0x7f are refused)");
	if (len < p->min_length)
		return admin_fail(EX_DATAERR, "password too short: at least %d "
		    "characters (" POLICY ".min_length)", p->min_length);
	if (len > p->max_length)
		return too_long(p);
	if (char_classes((const unsigned char *)pw) < p->min_classes)
		return admin_fail(EX_DATAERR, "password too simple: characters "
		    "of at least %d classes of lower case, upper case, digit, "
		    "other (" POLICY ".min_classes)", p->min_classes);
	if (is_name(pw, local, domain))
		return admin_fail(EX_DATAERR, "password equals the user's name "
		    "or address");
	return 0;
}

int
admin_hash_password(const char *pw, char *out, size_t outsz)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data cd;
	int rc = 0;

	memset(&cd, 0, sizeof(cd));
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL ||
	    crypt_r(pw, salt, &cd) == NULL || cd.output[0] == '*' ||
	    strlen(cd.output) >= outsz)
		rc = admin_fail(EX_SOFTWARE, "cannot hash the password "
		    "(libcrypt without yescrypt?)");
	else
		memcpy(out, cd.output, strlen(cd.output) + 1);
	explicit_bzero(&cd, sizeof(cd));
	return rc;
}
