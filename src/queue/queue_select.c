/*
 * queue_select: the selection of an admin command (queue_select.h). Every
 * token is checked whole: an id is ENVELOPE_ID_LEN upper-case hex digits,
 * a filter's value is non-empty printable ASCII without spaces, older= is
 * a decimal number of seconds. Anything else fails the whole request.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/xalloc.h"
#include "../mail/address.h"
#include "queue_select.h"

static int
is_id(const char *t, size_t n)
{
	if (n != ENVELOPE_ID_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)t[i]) && (t[i] < 'A' || t[i] > 'F'))
			return 0;
	return 1;
}

static int
printable(const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] <= ' ' || v[i] >= 0x7f)
			return 0;
	return n > 0 && n <= QUEUE_SELECT_VALUE_MAX;
}

static int
set_value(struct queue_select *s, char **slot, const char *v, size_t n,
    const char *key, struct buf *err)
{
	if (*slot) {
		buf_printf(err, "%s= given twice", key);
		return -1;
	}
	if (!printable(v, n)) {
		buf_printf(err, "%s= needs a value without spaces or control "
		    "characters, at most %d bytes", key, QUEUE_SELECT_VALUE_MAX);
		return -1;
	}
	/* <> is the null sender; as a recipient it is only a string */
	*slot = slot == &s->from && n == 2 && memcmp(v, "<>", 2) == 0 ?
	    xstrdup("") : xstrndup(v, n);
	return 0;
}

static int
set_older(struct queue_select *s, const char *v, size_t n, struct buf *err)
{
	long long secs = 0;
	size_t i = 0;

	while (i < n && isdigit((unsigned char)v[i]) &&
	    secs <= QUEUE_SELECT_AGE_MAX)
		secs = secs * 10 + (v[i++] - '0');
	if (i == n && secs > 0 && secs <= QUEUE_SELECT_AGE_MAX &&
	    s->older == 0) {
		s->older = secs;
		return 0;
	}
	buf_printf(err, "older= needs a number of seconds from 1 to %lld, "
	    "given once", QUEUE_SELECT_AGE_MAX);
	return -1;
}

static int
add_id(struct queue_select *s, const char *t, size_t n, struct buf *err)
{
	if (s->nids == QUEUE_SELECT_IDS_MAX) {
		buf_printf(err, "more than %d ids in one request",
		    QUEUE_SELECT_IDS_MAX);
		return -1;
	}
	memcpy(s->ids[s->nids], t, n);
	s->ids[s->nids++][n] = '\0';
	return 0;
}

static int
token(struct queue_select *s, const char *t, size_t n, struct buf *err)
{
	const char *eq = memchr(t, '=', n);
	size_t k = eq ? (size_t)(eq - t) : 0, vn = eq ? n - k - 1 : 0;

	if (n == 3 && memcmp(t, "ALL", 3) == 0) {
		s->all = 1;
		return 0;
	}
	if (is_id(t, n))
		return add_id(s, t, n, err);
	if (eq && k == 4 && memcmp(t, "from", 4) == 0)
		return set_value(s, &s->from, eq + 1, vn, "from", err);
	if (eq && k == 2 && memcmp(t, "to", 2) == 0)
		return set_value(s, &s->to, eq + 1, vn, "to", err);
	if (eq && k == 6 && memcmp(t, "domain", 6) == 0)
		return set_value(s, &s->domain, eq + 1, vn, "domain", err);
	if (eq && k == 5 && memcmp(t, "older", 5) == 0)
		return set_older(s, eq + 1, vn, err);
	buf_appends(err, "not a queue id, ALL, from=, to=, domain= or older=: ");
	buf_append(err, t, n < QUEUE_SELECT_VALUE_MAX ? n : QUEUE_SELECT_VALUE_MAX);
	return -1;
}

int
queue_select_parse(const char *args, struct queue_select *s, struct buf *err)
{
	const char *p = args;

	memset(s, 0, sizeof(*s));
	while (*p) {
		size_t n = strcspn(p, " ");
		if (n && token(s, p, n, err) < 0) {
			queue_select_free(s);
			return -1;
		}
		p += n + (p[n] == ' ');
	}
	return 0;
}

void
queue_select_free(struct queue_select *s)
{
	free(s->from);
	free(s->to);
	free(s->domain);
	memset(s, 0, sizeof(*s));
}

int
queue_select_none(const struct queue_select *s)
{
	return s->nids == 0 && !s->all && !s->from && !s->to && !s->domain &&
	    !s->older;
}

/* Some recipient not yet final is to (or in domain, when to is NULL). */
static int
rcpt_match(const struct envelope *e, const unsigned char *state,
    unsigned char final, const char *to, const char *domain)
{
	for (size_t i = 0; i < e->nrcpts; i++) {
		const char *d = address_domain(e->rcpts[i]);
		if (state && state[i] == final)
			continue;
		if (to ? strcasecmp(e->rcpts[i], to) == 0 :
		    d != NULL && strcasecmp(d, domain) == 0)
			return 1;
	}
	return 0;
}

int
queue_select_match(const struct queue_select *s, const struct envelope *e,
    const unsigned char *state, unsigned char final, long long age)
{
	if (s->from && strcasecmp(e->sender, s->from) != 0)
		return 0;
	if (s->to && !rcpt_match(e, state, final, s->to, NULL))
		return 0;
	if (s->domain && !rcpt_match(e, state, final, NULL, s->domain))
		return 0;
	return s->older == 0 || age >= s->older;
}

void
queue_select_filters(const struct queue_select *s, struct buf *b)
{
	if (s->all)
		buf_appends(b, " ALL");
	if (s->from)
		buf_printf(b, " from=%s", *s->from ? s->from : "<>");
	if (s->to)
		buf_printf(b, " to=%s", s->to);
	if (s->domain)
		buf_printf(b, " domain=%s", s->domain);
	if (s->older)
		buf_printf(b, " older=%lld", s->older);
}

long long
queue_age_parse(const char *s)
{
	static const char units[] = "smhdw";
	static const long long mult[] = { 1, 60, 3600, 86400, 7 * 86400 };
	char *end;
	long long n = strtoll(s, &end, 10);
	const char *u;

	if (end == s || n < 0 || n > QUEUE_SELECT_AGE_MAX)
		return -1;
	if (*end == '\0')
		return n;
	if (end[1] != '\0' || (u = strchr(units, *end)) == NULL)
		return -1;
	return n * mult[u - units];	/* at most 100 years of weeks: fits */
}
