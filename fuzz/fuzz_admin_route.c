/*
 * fuzz_admin_route: the admin API's router and its JSON body handling
 * (src/admin/admin_route*.c) behind libmicrohttpd, with a fake backend.
 * Input: "METHOD PATH\nQUERY\n" (QUERY as a=b&c=d), the body up to a NUL,
 * then what the fake bin/indimail prints (its first byte picks the exit
 * status); the same tail is also read as `queue list` text directly.
 * Invariants: a status in 200..599 with a body; a JSON answer parses and
 * an error one is {"error": "..."}; no argument the router hands to
 * bin/indimail can be taken for an option unless it is one the router
 * means (user input comes after "--", as an option's value, or checked).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/admin/admin_route_int.h"

#define check(x) do { if (!(x)) abort(); } while (0)

struct fake {
	const char	*out;		/* what the command prints */
	size_t		 outlen;
	int		 code;
};

static const char *value_options[] = { "--quota", "--postmaster",
    "--alias-of", "--from", "--to", "--domain", "--older-than", "--since",
    NULL };
static const char *flag_options[] = { "--password-stdin", "--disable",
    "--enable", "--no-smtp", "--smtp", "--no-imap", "--imap", "--no-pop",
    "--pop", "--no-relay", "--relay", "--json", "--down", NULL };

static int
listed(const char *s, const char **list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

/* Every "-..." before "--" is an option the router means. */
static void
check_args(const char *const *args)
{
	for (size_t i = 0; args[i]; i++) {
		if (strcmp(args[i], "--") == 0)
			return;
		if (listed(args[i], value_options)) {
			check(args[i + 1] != NULL);
			i++;
		} else
			check(args[i][0] != '-' || strcmp(args[i], "-") == 0 ||
			    listed(args[i], flag_options));	/* - : stdin */
	}
}

static int
fake_cli(void *arg, const char *const *args, const char *input,
    struct buf *out, struct buf *err)
{
	struct fake *f = arg;

	(void)input;
	check_args(args);
	buf_append(out, f->out, f->outlen);
	if (f->code)
		buf_appends(err, "indimail: refused\n");
	return f->code;
}

static int
fake_check(void *arg, struct buf *out, struct buf *err)
{
	(void)arg;
	(void)err;
	buf_appends(out, "configuration OK\n");
	return 0;
}

static int
fake_reload(void *arg, struct buf *err)
{
	struct fake *f = arg;

	if (f->code)
		buf_appends(err, "no");
	return f->code ? -1 : 0;
}

static int
fake_stats(void *arg, const char *since, struct buf *out, struct buf *err)
{
	const char *args[] = { "stats", "--since", since, "-", NULL };

	return fake_cli(arg, args, NULL, out, err);
}

static void
fake_metrics(void *arg, struct buf *out)
{
	(void)arg;
	buf_appends(out, "# indimail\n");
}

/* The value of key in "a=b&c=d" (a static copy), or NULL. */
static const char *
query(void *arg, const char *key)
{
	static char value[256];
	const char *q = arg, *p = q;
	size_t klen = strlen(key);

	while (p && *p) {
		size_t n = strcspn(p, "&");
		if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			size_t v = n - klen - 1 < sizeof(value) - 1 ?
			    n - klen - 1 : sizeof(value) - 1;
			memcpy(value, p + klen + 1, v);
			value[v] = '\0';
			return value;
		}
		p = p[n] ? p + n + 1 : NULL;
	}
	return NULL;
}

static void
check_response(struct admin_response *res)
{
	json_t *v;

	check(res->status >= 200 && res->status <= 599);
	check(res->body.len > 0 && res->content_type != NULL);
	if (strcmp(res->content_type, "application/json") != 0)
		return;
	v = json_loadb(res->body.data, res->body.len, JSON_DECODE_ANY, NULL);
	check(v != NULL);
	if (res->status >= 400)
		check(json_is_string(json_object_get(v, "error")));
	json_decref(v);
}

/* Splits data: method, path, query, body, fake output. */
static void
one(const char *s, size_t n)
{
	static const int codes[] = { 0, 1, 64, 65, 67, 68, 73, 74, 78 };
	const char *nl1 = memchr(s, '\n', n), *nl2, *nul, *sp;
	char *head;
	struct fake f = { "", 0, 0 };
	struct admin_backend be = { fake_cli, fake_check, fake_reload,
	    fake_stats, fake_metrics, &f };
	struct admin_request req;
	struct admin_response res = { 0, NULL, BUF_INIT };

	if (nl1 == NULL || (nl2 = memchr(nl1 + 1, '\n', n - (size_t)(nl1 + 1 -
	    s))) == NULL || memchr(s, '\0', (size_t)(nl2 - s)))
		return;
	head = strndup(s, (size_t)(nl2 - s));
	head[nl1 - s] = '\0';
	if ((sp = strchr(head, ' ')) == NULL) {
		free(head);
		return;
	}
	head[sp - head] = '\0';
	nul = memchr(nl2 + 1, '\0', n - (size_t)(nl2 + 1 - s));
	if (nul && nul + 1 < s + n) {
		f.code = codes[(unsigned char)nul[1] % (sizeof(codes) /
		    sizeof(codes[0]))];
		f.out = nul + 2 <= s + n ? nul + 2 : "";
		f.outlen = (size_t)(s + n - f.out);
	}
	req = (struct admin_request){ head, sp + 1, query, head + (nl1 - s) + 1,
	    nl2 + 1, nul ? (size_t)(nul - nl2 - 1) : n - (size_t)(nl2 + 1 - s),
	    ~0u };
	admin_route(&be, &req, &res);
	check_response(&res);
	buf_free(&res.body);
	free(head);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = strndup((const char *)data, size);
	json_t *list = route_queue_parse(text);

	check(json_is_array(list));
	json_decref(list);
	free(text);
	one((const char *)data, size);
	return 0;
}
