/*
 * smtp_edit: the envelope edits of the data and message hooks
 * (tx:add_rcpt, remove_rcpt, set_rcpts, set_sender through struct
 * hook_tx_edit), done on the session's transaction. An address must parse
 * as RCPT TO or MAIL FROM would take it, and the envelope never grows past
 * what the queue accepts: an edit that would is refused whole. Added
 * recipients skip the RCPT checks (relay, directory): the policy asked for
 * them; alias expansion at the commit treats them as any other.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/xalloc.h"
#include "smtp_session_int.h"

/* The ctx the running hook reads, after an edit. */
static void
refresh(struct smtp_session *s)
{
	s->ctx.sender = buf_cstr(&s->sender);
	s->ctx.rcpts = s->rcpts;
	s->ctx.nrcpts = s->nrcpts;
}

/* NULL if a is an address as RCPT TO (or, sender, MAIL FROM) takes it. */
const char *
smtp_edit_check_address(const char *a, int sender)
{
	struct buf line = BUF_INIT;
	struct smtp_mail_arg m = { 0 };
	struct smtp_rcpt_arg r = { 0 };
	const char *reply = NULL;
	int rc;

	if (strpbrk(a, "<>\r\n") != NULL || strlen(a) > 320)
		return "not a plain mail address";
	buf_printf(&line, "%s:<%s>", sender ? "FROM" : "TO", a);
	rc = sender ? smtp_parse_mail(line.data, line.len, &m, &reply) :
	    smtp_parse_rcpt(line.data, line.len, &r, &reply);
	if (rc == 0 && strcmp(buf_cstr(sender ? &m.path : &r.path), a) != 0)
		rc = -1;		/* a source route, say: not plain */
	buf_free(&line);
	buf_free(&m.path);
	buf_free(&r.path);
	if (rc != 0)
		return "not a valid mail address";
	if (!sender && *a == '\0')
		return "a recipient may not be empty";
	return NULL;
}

/* Bytes of the recipients' envelope lines (each counted as local: the
 * larger form, so what fits here fits after expansion's routing). */
static size_t
rcpt_bytes(char *const *v, size_t n)
{
	size_t b = 0;

	for (size_t i = 0; i < n; i++)
		b += queue_envelope_rcpt_size(v[i], NULL, 1);
	return b;
}

static size_t
find(struct smtp_session *s, const char *a)
{
	size_t i = 0;

	while (i < s->nrcpts && strcasecmp(s->rcpts[i], a) != 0)
		i++;
	return i;
}

#define TOO_BIG	"the envelope would pass the queue's limit of 4 MiB"

static const char *
add_rcpt(void *arg, const char *a)
{
	struct smtp_session *s = arg;
	const char *err = smtp_edit_check_address(a, 0);

	if (err || find(s, a) < s->nrcpts)
		return err;	/* a duplicate is delivered once */
	if (smtp_tx_envelope_full(s, a))
		return TOO_BIG;
	s->rcpts = xrealloc(s->rcpts, (s->nrcpts + 1) * sizeof(char *));
	s->rcpts[s->nrcpts++] = xstrdup(a);
	s->rcpt_bytes += queue_envelope_rcpt_size(a, NULL, 1);
	refresh(s);
	return NULL;
}

static const char *
remove_rcpt(void *arg, const char *a, size_t *count)
{
	struct smtp_session *s = arg;
	size_t i = find(s, a);

	*count = 0;
	if (i == s->nrcpts)
		return NULL;
	if (s->nrcpts == 1)
		return "it would leave no recipient (indimail.discard() drops "
		    "a message)";
	free(s->rcpts[i]);
	memmove(s->rcpts + i, s->rcpts + i + 1,
	    (s->nrcpts - i - 1) * sizeof(char *));
	s->nrcpts--;
	s->rcpt_bytes = rcpt_bytes(s->rcpts, s->nrcpts);
	*count = 1;
	refresh(s);
	return NULL;
}

/* Orders pointers to addresses case-insensitively, then by position. */
static int
by_address(const void *a, const void *b)
{
	const char *const *x = *(const char *const *const *)a;
	const char *const *y = *(const char *const *const *)b;
	int c = strcasecmp(*x, *y);

	return c ? c : (x > y) - (x < y);
}

/*
 * The distinct addresses of v[0..n), checked, in their order, as an owned
 * array; refused once their envelope lines would pass the ceiling (so a
 * huge list costs no more than what fits). Duplicates: one sort.
 */
static const char *
distinct(struct smtp_session *s, const char *const *v, size_t n,
    char ***out, size_t *nout)
{
	const char *const **p = xcalloc(n, sizeof(*p));
	char **r = xcalloc(n, sizeof(char *));
	size_t k = 0, bytes = 0;
	const char *err = NULL;

	for (size_t i = 0; err == NULL && i < n; i++) {
		p[i] = &v[i];
		bytes += queue_envelope_rcpt_size(v[i], NULL, 1);
		if ((err = smtp_edit_check_address(v[i], 0)) == NULL &&
		    !smtp_tx_envelope_fits(s, bytes))
			err = TOO_BIG;
	}
	if (err == NULL) {
		unsigned char *dup = xcalloc(n, 1);
		qsort(p, n, sizeof(*p), by_address);
		for (size_t i = 1; i < n; i++)	/* the later of equal ones */
			if (strcasecmp(*p[i], *p[i - 1]) == 0)
				dup[p[i] - v] = 1;
		for (size_t i = 0; i < n; i++)
			if (!dup[i])
				r[k++] = xstrdup(v[i]);
		free(dup);
	}
	free(p);
	*out = r;
	*nout = k;
	return err;
}

static void
free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static const char *
set_rcpts(void *arg, const char *const *v, size_t n)
{
	struct smtp_session *s = arg;
	char **r;
	size_t k;
	const char *err = distinct(s, v, n, &r, &k);

	if (err) {
		free_list(r, k);
		return err;
	}
	free_list(s->rcpts, s->nrcpts);
	s->rcpts = r;
	s->nrcpts = k;
	s->rcpt_bytes = rcpt_bytes(r, k);
	refresh(s);
	return NULL;
}

static const char *
set_sender(void *arg, const char *a)
{
	struct smtp_session *s = arg;
	struct buf old = BUF_INIT;
	const char *err = smtp_edit_check_address(a, 1);

	if (err)
		return err;
	buf_set(&old, s->sender.data, s->sender.len);
	buf_set(&s->sender, a, strlen(a));
	if (!smtp_tx_envelope_fits(s, s->rcpt_bytes)) {
		buf_set(&s->sender, old.data, old.len);
		err = TOO_BIG;
	}
	buf_free(&old);
	refresh(s);
	return err;
}

const struct hook_tx_edit smtp_tx_edit = {
	.add_rcpt = add_rcpt,
	.remove_rcpt = remove_rcpt,
	.set_rcpts = set_rcpts,
	.set_sender = set_sender,
	.submit = smtp_submit_add,
};
