/*
 * envelope: building and freeing the one envelope of a message. Arrays of
 * recipients grow by doubling, so tens of thousands of them cost a few
 * dozen reallocations, not one each.
 */
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "envelope.h"

void
envvars_set(struct envvars *e, const char *k, const char *v)
{
	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->key[i], k) == 0) {
			free(e->val[i]);
			e->val[i] = xstrdup(v);
			return;
		}
	e->key = xrealloc(e->key, (e->n + 1) * sizeof(char *));
	e->val = xrealloc(e->val, (e->n + 1) * sizeof(char *));
	e->key[e->n] = xstrdup(k);
	e->val[e->n] = xstrdup(v);
	e->n++;
}

void
envvars_free(struct envvars *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->key[i]);
		free(e->val[i]);
	}
	free(e->key);
	free(e->val);
	memset(e, 0, sizeof(*e));
}

/* Room for one more in an array of n pointers: full at 0 and powers of 2. */
static char **
grow(char **a, size_t n)
{
	if ((n & (n - 1)) == 0)
		a = xrealloc(a, (n ? 2 * n : 1) * sizeof(char *));
	return a;
}

void
envelope_add_rcpt(struct envelope *e, const char *rcpt, const char *orcpt)
{
	size_t n = e->nrcpts;

	if ((n & (n - 1)) == 0)		/* as grow() */
		e->local = xrealloc(e->local, n ? 2 * n : 1);
	e->rcpts = grow(e->rcpts, n);
	e->orcpts = grow(e->orcpts, n);
	e->rcpts[n] = xstrdup(rcpt);
	e->orcpts[n] = orcpt ? xstrdup(orcpt) : NULL;
	e->local[n] = 0;
	e->nrcpts++;
}

const char *
envelope_orcpt(const struct envelope *e, size_t i)
{
	return e->orcpts && e->orcpts[i] ? e->orcpts[i] : e->rcpts[i];
}

int
envelope_rcpt_local(const struct envelope *e, size_t i)
{
	return e->local != NULL && e->local[i];
}

const char *
envelope_body_name(enum envelope_body b)
{
	return b == ENVELOPE_BODY_8BITMIME ? "8BITMIME" :
	    b == ENVELOPE_BODY_7BIT ? "7BIT" : NULL;
}

enum envelope_body
envelope_body_parse(const char *s)
{
	if (strcmp(s, "8BITMIME") == 0)
		return ENVELOPE_BODY_8BITMIME;
	return strcmp(s, "7BIT") == 0 ? ENVELOPE_BODY_7BIT : ENVELOPE_BODY_NONE;
}

void
envelope_free(struct envelope *e)
{
	free(e->ip);
	free(e->helo);
	free(e->listener);
	free(e->tls);
	free(e->auth_user);
	free(e->sender);
	free(e->hold);
	for (size_t i = 0; i < e->nrcpts; i++) {
		free(e->rcpts[i]);
		if (e->orcpts)
			free(e->orcpts[i]);
	}
	free(e->rcpts);
	free(e->orcpts);
	free(e->local);
	envvars_free(&e->vars);
	memset(e, 0, sizeof(*e));
}
