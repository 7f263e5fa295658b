/*
 * admin_token: see admin_token.h. Tokens are hashed with plain SHA-256:
 * they are 256 random bits, not passwords, so a slow salted hash would
 * add nothing but CPU per request (GitHub stores its tokens the same
 * way); what the file leaks is useless without the token. A bearer is
 * compared with every stored hash, each in constant time, so the time
 * taken says nothing about how much of a hash matched.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/base64.h"
#include "../lib/fsutil.h"
#include "../lib/xalloc.h"
#include "admin_token.h"

#define TOKENS_FILE_MAX	(1 << 20)
#define TOKENS_MODE	0640

static const char *scope_names[ADMIN_NSCOPES] = {
	"domains:read", "domains:write", "users:read", "users:write",
	"aliases:read", "aliases:write", "queue:read", "queue:write",
	"config:read", "config:write", "stats:read", "metrics",
};

const char *
admin_scope_name(int i)
{
	return i >= 0 && i < ADMIN_NSCOPES ? scope_names[i] : NULL;
}

static int
scope_bit(const char *s, size_t n)
{
	for (int i = 0; i < ADMIN_NSCOPES; i++)
		if (strlen(scope_names[i]) == n && memcmp(s, scope_names[i], n) == 0)
			return 1 << i;
	return 0;
}

int
admin_scopes_parse(const char *list, unsigned *out, struct buf *err)
{
	*out = 0;
	while (*list) {
		size_t n = strcspn(list, ",");
		int bit = scope_bit(list, n);
		if (bit == 0) {
			buf_printf(err, "unknown scope '%.*s' (one of:", (int)n, list);
			for (int i = 0; i < ADMIN_NSCOPES; i++)
				buf_printf(err, " %s", scope_names[i]);
			buf_appends(err, ")");
			return -1;
		}
		*out |= (unsigned)bit;
		list += n + (list[n] == ',');
	}
	return 0;
}

void
admin_scopes_format(unsigned scopes, struct buf *out)
{
	size_t start = out->len;

	for (int i = 0; i < ADMIN_NSCOPES; i++)
		if (scopes & (1u << i))
			buf_printf(out, "%s%s", out->len > start ? "," : "",
			    scope_names[i]);
	if (out->len == start)
		buf_appends(out, "-");
}

void
admin_tokens_path(const char *configured, const char *config_path,
    struct buf *out)
{
	const char *slash = strrchr(config_path, '/');

	buf_clear(out);
	if (configured)
		buf_appends(out, configured);
	else if (slash)
		buf_printf(out, "%.*s/admin-tokens", (int)(slash - config_path),
		    config_path);
	else
		buf_appends(out, "admin-tokens");
}

static int
name_ok(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n <= ADMIN_TOKEN_NAME_MAX && strspn(name,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
	    == n;
}

int
admin_tokens_add(struct admin_tokens *t, const char *name, unsigned scopes,
    const unsigned char hash[ADMIN_HASH_BYTES], struct buf *err)
{
	if (!name_ok(name)) {
		buf_printf(err, "token name '%s': letters, digits, '.', '_' and "
		    "'-' only, at most %d", name, ADMIN_TOKEN_NAME_MAX);
		return -1;
	}
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->v[i].name, name) == 0) {
			buf_printf(err, "a token named %s exists", name);
			return -1;
		}
	t->v = xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
	t->v[t->n].name = xstrdup(name);
	t->v[t->n].scopes = scopes;
	memcpy(t->v[t->n++].hash, hash, ADMIN_HASH_BYTES);
	return 0;
}

int
admin_tokens_remove(struct admin_tokens *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->v[i].name, name) == 0) {
			free(t->v[i].name);
			t->v[i] = t->v[--t->n];
			return 0;
		}
	return -1;
}

void
admin_tokens_free(struct admin_tokens *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].name);
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

static int
unhex(const char *s, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	return s[2 * n] == '\0' ? 0 : -1;
}

/* "NAME SCOPES HASH" into t: 0, or -1. */
static int
parse_line(char *line, struct admin_tokens *t, struct buf *err)
{
	char *save = NULL, *name = strtok_r(line, " \t", &save);
	char *scopes = strtok_r(NULL, " \t", &save);
	char *hex = strtok_r(NULL, " \t", &save);
	unsigned char hash[ADMIN_HASH_BYTES];
	unsigned bits = 0;

	if (name == NULL || name[0] == '#')
		return 0;
	if (scopes == NULL || hex == NULL || strtok_r(NULL, " \t", &save) ||
	    strlen(hex) != 2 * ADMIN_HASH_BYTES || unhex(hex, hash,
	    ADMIN_HASH_BYTES) < 0) {
		buf_printf(err, "token %s: not \"NAME SCOPES SHA256\"", name);
		return -1;
	}
	if (strcmp(scopes, "-") != 0 && admin_scopes_parse(scopes, &bits,
	    err) < 0)
		return -1;
	return admin_tokens_add(t, name, bits, hash, err);
}

int
admin_tokens_load(const char *path, struct admin_tokens *t, struct buf *err)
{
	struct buf text = BUF_INIT;
	char *save = NULL;
	int rc = 0;

	memset(t, 0, sizeof(*t));
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0;
	if (read_small_file(path, TOKENS_FILE_MAX, &text, err) < 0)
		return -1;
	buf_appendc(&text, '\0');
	for (char *l = strtok_r(text.data, "\n", &save); l && rc == 0;
	    l = strtok_r(NULL, "\n", &save))
		if ((rc = parse_line(l, t, err)) < 0)
			buf_printf(err, " in %s", path);
	buf_free(&text);
	if (rc < 0)
		admin_tokens_free(t);
	return rc;
}

static void
format_file(const struct admin_tokens *t, struct buf *out)
{
	buf_appends(out, "# indimail admin API tokens: NAME SCOPES SHA256 "
	    "(indimail admin token add|list|remove)\n");
	for (size_t i = 0; i < t->n; i++) {
		buf_printf(out, "%s ", t->v[i].name);
		admin_scopes_format(t->v[i].scopes, out);
		buf_appendc(out, ' ');
		for (size_t k = 0; k < ADMIN_HASH_BYTES; k++)
			buf_printf(out, "%02x", t->v[i].hash[k]);
		buf_appendc(out, '\n');
	}
}

int
admin_tokens_save(const char *path, const struct admin_tokens *t, gid_t gid,
    struct buf *err)
{
	struct buf text = BUF_INIT, tmp = BUF_INIT;
	int fd, ok;

	format_file(t, &text);
	buf_printf(&tmp, "%s.tmp", path);
	unlink(buf_cstr(&tmp));
	fd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    TOKENS_MODE);
	ok = fd >= 0 && ((int)gid < 0 || fchown(fd, 0, gid) == 0) &&
	    write(fd, text.data, text.len) == (ssize_t)text.len &&
	    fsync(fd) == 0;
	if (fd >= 0 && close(fd) < 0)
		ok = 0;
	if (ok && rename(buf_cstr(&tmp), path) < 0)
		ok = 0;
	if (!ok) {
		buf_printf(err, "%s: %s", path, strerror(errno));
		unlink(buf_cstr(&tmp));
	}
	buf_free(&text);
	buf_free(&tmp);
	return ok ? 0 : -1;
}

void
admin_token_hash(const char *token, unsigned char hash[ADMIN_HASH_BYTES])
{
	SHA256((const unsigned char *)token, strlen(token), hash);
}

const struct admin_token *
admin_tokens_find(const struct admin_tokens *t, const char *bearer)
{
	unsigned char hash[ADMIN_HASH_BYTES];
	const struct admin_token *found = NULL;

	admin_token_hash(bearer, hash);
	for (size_t i = 0; i < t->n; i++)
		if (CRYPTO_memcmp(hash, t->v[i].hash, ADMIN_HASH_BYTES) == 0)
			found = &t->v[i];
	return found;
}

/* base64 into base64url without padding (RFC 4648 section 5). */
static void
to_url(struct buf *b, size_t from)
{
	for (size_t i = from; i < b->len; i++)
		b->data[i] = b->data[i] == '+' ? '-' : b->data[i] == '/' ? '_' :
		    b->data[i];
	while (b->len > from && b->data[b->len - 1] == '=')
		b->data[--b->len] = '\0';
}

int
admin_token_new(struct buf *out, unsigned char hash[ADMIN_HASH_BYTES])
{
	char raw[ADMIN_TOKEN_BYTES];
	size_t start;

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -1;
	buf_appends(out, ADMIN_TOKEN_PREFIX);
	start = out->len;
	base64_encode(raw, sizeof(raw), out);
	to_url(out, start);
	explicit_bzero(raw, sizeof(raw));
	admin_token_hash(buf_cstr(out), hash);
	return 0;
}
