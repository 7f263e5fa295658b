/*
 * queue_envelope: the one serialiser and the one parser of the envelope in
 * front of every queued message (docs/queue.md: "IMQ1", then `key SP value`
 * lines with %XX escapes, then an empty line). Sizes come from the same
 * serialiser, so what the SMTP side checks is what the writer writes.
 * Unknown keys are ignored, so old files always read back (a file without
 * "route local" lines leaves the routing to local_domains).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "queue.h"

/*
 * Values are written with %XX for '%', control bytes and DEL. Appends the
 * line to b unless b is NULL; returns its size either way.
 */
static size_t
put_field(struct buf *b, const char *key, const char *v)
{
	size_t n;

	if (v == NULL)
		return 0;
	n = strlen(key) + 2;		/* key, SP, ..., LF */
	if (b)
		buf_printf(b, "%s ", key);
	n += buf_escape(b, v, NULL);
	if (b)
		buf_appendc(b, '\n');
	return n;
}

/* rcpt, its orcpt if another, "route local" if its domain is local. */
static size_t
put_rcpt(struct buf *b, const char *rcpt, const char *orcpt, int local)
{
	size_t n = put_field(b, "rcpt", rcpt);

	if (orcpt && strcmp(orcpt, rcpt))
		n += put_field(b, "orcpt", orcpt);
	if (local)
		n += put_field(b, "route", "local");
	return n;
}

static size_t
put_env(struct buf *b, const char *key, const char *val)
{
	struct buf kv = BUF_INIT;
	size_t n;

	buf_printf(&kv, "%s=%s", key, val);
	n = put_field(b, "env", buf_cstr(&kv));
	buf_free(&kv);
	return n;
}

/* The envelope serialiser: appends to b unless NULL; returns the size. */
static size_t
put_envelope(const struct envelope *e, struct buf *b)
{
	char received[32];
	size_t n = 6;		/* "IMQ1\n" and the empty line that ends it */

	snprintf(received, sizeof(received), "%lld", (long long)e->received);
	if (b)
		buf_appends(b, "IMQ1\n");
	n += put_field(b, "id", e->id);
	n += put_field(b, "received", received);
	n += put_field(b, "ip", e->ip);
	n += put_field(b, "helo", e->helo);
	n += put_field(b, "listener", e->listener);
	n += put_field(b, "tls", e->tls);
	n += put_field(b, "auth", e->auth_user);
	n += put_field(b, "body", envelope_body_name(e->body));
	n += put_field(b, "sender", e->sender);
	n += put_field(b, "hold", e->hold);
	for (size_t i = 0; i < e->nrcpts; i++)
		n += put_rcpt(b, e->rcpts[i], e->orcpts ? e->orcpts[i] : NULL,
		    envelope_rcpt_local(e, i));
	for (size_t i = 0; i < e->vars.n; i++)
		n += put_env(b, e->vars.key[i], e->vars.val[i]);
	if (b)
		buf_appendc(b, '\n');
	return n;
}

void
queue_envelope_format(const struct envelope *e, struct buf *b)
{
	put_envelope(e, b);
}

size_t
queue_envelope_size(const struct envelope *e)
{
	return put_envelope(e, NULL);
}

size_t
queue_envelope_rcpt_size(const char *rcpt, const char *orcpt, int local)
{
	return put_rcpt(NULL, rcpt, orcpt, local);
}

/* ---- parsing ----------------------------------------------------------- */

/* The string fields: the first line of each key wins. */
static const struct {
	const char	*key;
	size_t		 off;
} str_fields[] = {
	{ "sender",	offsetof(struct envelope, sender) },
	{ "ip",		offsetof(struct envelope, ip) },
	{ "helo",	offsetof(struct envelope, helo) },
	{ "listener",	offsetof(struct envelope, listener) },
	{ "tls",	offsetof(struct envelope, tls) },
	{ "auth",	offsetof(struct envelope, auth_user) },
	{ "hold",	offsetof(struct envelope, hold) },
};

static void
take_env(struct envelope *e, const char *v)
{
	const char *eq = strchr(v, '=');
	char *key;

	if (eq == NULL)
		return;
	if (strncmp(v, "INDIMAIL_BOUNCE=", 16) == 0)
		e->bounce_level = atoi(v + 16);
	key = xstrndup(v, (size_t)(eq - v));
	envvars_set(&e->vars, key, eq + 1);
	free(key);
}

/* Applies one line "key value" (value decoded); v is taken or freed. */
static void
take_field(struct envelope *e, const char *key, char *v)
{
	for (size_t k = 0; k < sizeof(str_fields) / sizeof(str_fields[0]); k++)
		if (strcmp(key, str_fields[k].key) == 0) {
			char **f = (char **)((char *)e + str_fields[k].off);
			if (*f == NULL) {
				*f = v;
				return;
			}
		}
	if (strcmp(key, "id") == 0)
		snprintf(e->id, sizeof(e->id), "%s", v);
	else if (strcmp(key, "received") == 0)
		e->received = (time_t)atoll(v);
	else if (strcmp(key, "body") == 0 && e->body == ENVELOPE_BODY_NONE)
		e->body = envelope_body_parse(v);
	else if (strcmp(key, "rcpt") == 0)
		envelope_add_rcpt(e, v, NULL);
	else if (strcmp(key, "orcpt") == 0 && e->nrcpts) {
		free(e->orcpts[e->nrcpts - 1]);
		e->orcpts[e->nrcpts - 1] = v;
		return;
	} else if (strcmp(key, "route") == 0 && e->nrcpts &&
	    strcmp(v, "local") == 0)	/* another route: a newer writer's */
		e->local[e->nrcpts - 1] = 1;
	else if (strcmp(key, "env") == 0)
		take_env(e, v);
	free(v);
}

static int
parse_envelope(const char *d, size_t len, struct envelope *e, size_t *off)
{
	char key[16];
	size_t i = 5;

	memset(e, 0, sizeof(*e));
	if (len < 5 || memcmp(d, "IMQ1\n", 5) != 0)
		return -1;
	while (i < len && d[i] != '\n') {
		const char *nl = memchr(d + i, '\n', len - i), *sp;
		char *v;

		if (nl == NULL || (sp = memchr(d + i, ' ', (size_t)(nl -
		    (d + i)))) == NULL)
			return -1;
		snprintf(key, sizeof(key), "%.*s", (int)(sp - (d + i)), d + i);
		v = xmalloc((size_t)(nl - sp));
		buf_unescape(v, sp + 1, (size_t)(nl - sp - 1));
		take_field(e, key, v);
		i = (size_t)(nl - d) + 1;
	}
	if (i >= len || e->sender == NULL)
		return -1;
	*off = i + 1;
	return 0;
}

int
queue_envelope_parse(const char *d, size_t len, struct envelope *e,
    size_t *body_offset)
{
	if (parse_envelope(d, len, e, body_offset) == 0)
		return 0;
	envelope_free(e);		/* what was parsed before the error */
	return -1;
}

void
queue_item_free(struct queue_item *qi)
{
	envelope_free(&qi->env);
	free(qi->path);
	free(qi->journal);
	memset(qi, 0, sizeof(*qi));
}
