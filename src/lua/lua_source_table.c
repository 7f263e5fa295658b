/*
 * lua_source_table: the keys of the indimail.config{...} table constructor
 * with their lines, read from the tokens of lua_source.c, and the line a
 * "bad config: WHERE: why" error is about. A key's path is written as the
 * config reader writes it in errors ("listen[2].port", "routes['x']"); in
 * an error's path "[]" stands for any element. Values that are not table
 * constructors are skipped to the next , ; or } at their own depth.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../lib/buf.h"
#include "../lib/xalloc.h"
#include "lua_source.h"

#define is(s, i, k, t)	lua_source_is(s, i, k, t)

static void
add_field(struct lua_source *s, const char *path, const char *value,
    int line)
{
	struct lua_field *f;

	if (s->nfield == s->fcap) {
		s->fcap = s->fcap ? 2 * s->fcap : 64;
		s->field = xrealloc(s->field, s->fcap * sizeof(*s->field));
	}
	f = &s->field[s->nfield++];
	f->path = xstrdup(path);
	f->value = value ? xstrdup(value) : NULL;
	f->line = line;
}

/* +1 for what opens a bracket or a block, -1 for what closes one. */
static int
nesting(const struct lua_tok *t)
{
	static const char *open[] = { "function", "if", "do", "repeat", NULL };
	static const char *close[] = { "end", "until", NULL };

	if (t->kind == LTOK_OP && t->text[1] == '\0')
		return strchr("({[", t->text[0]) ? 1 :
		    strchr(")}]", t->text[0]) ? -1 : 0;
	if (t->kind != LTOK_NAME)
		return 0;
	for (const char **o = open; *o; o++)
		if (strcmp(*o, t->text) == 0)
			return 1;
	for (const char **c = close; *c; c++)
		if (strcmp(*c, t->text) == 0)
			return -1;
	return 0;
}

/* The , ; or closing bracket that ends the expression at token i. */
static size_t
skip_expr(const struct lua_source *s, size_t i)
{
	int depth = 0, d;

	for (; i < s->ntok && s->tok[i].kind != LTOK_END; i++) {
		d = nesting(&s->tok[i]);
		if (d < 0 && depth == 0)
			return i;
		depth += d;
		if (depth == 0 && (is(s, i, LTOK_OP, ",") ||
		    is(s, i, LTOK_OP, ";")))
			return i;
	}
	return i;
}

static int
identifier(const char *k)
{
	if (!isalpha((unsigned char)*k) && *k != '_')
		return 0;
	while (isalnum((unsigned char)*k) || *k == '_')
		k++;
	return *k == '\0';
}

static size_t parse_table(struct lua_source *, size_t, const char *, int);

/* The value of the field at path starting at token i: past its end. */
static size_t
parse_value(struct lua_source *s, size_t i, const char *path, int line,
    int level)
{
	int simple = is(s, i, LTOK_STRING, NULL) && (is(s, i + 1, LTOK_OP,
	    ",") || is(s, i + 1, LTOK_OP, ";") || is(s, i + 1, LTOK_OP, "}"));

	add_field(s, path, simple ? s->tok[i].text : NULL, line);
	if (is(s, i, LTOK_OP, "{") && level < 32)
		return parse_table(s, i, path, level + 1);
	return skip_expr(s, i);
}

/* The key of the field at token *i (moved past its "="), into p. */
static void
field_key(struct lua_source *s, size_t *i, const char *prefix, int *index,
    struct buf *p)
{
	const char *dot = *prefix ? "." : "";

	if (is(s, *i, LTOK_OP, "[") && is(s, *i + 1, LTOK_STRING, NULL) &&
	    is(s, *i + 2, LTOK_OP, "]") && is(s, *i + 3, LTOK_OP, "=")) {
		const char *k = s->tok[*i + 1].text;
		if (identifier(k))
			buf_printf(p, "%s%s%s", prefix, dot, k);
		else
			buf_printf(p, "%s['%s']", prefix, k);
		*i += 4;
	} else if (is(s, *i, LTOK_OP, "[")) {
		*i = skip_expr(s, *i + 1) + 2;	/* ] = */
		buf_printf(p, "%s[?]", prefix);
	} else if (is(s, *i, LTOK_NAME, NULL) && is(s, *i + 1, LTOK_OP, "=")) {
		buf_printf(p, "%s%s%s", prefix, dot, s->tok[*i].text);
		*i += 2;
	} else
		buf_printf(p, "%s[%d]", prefix, (*index)++);
}

/* Token i is "{": records its fields; returns the index past its "}". */
static size_t
parse_table(struct lua_source *s, size_t i, const char *prefix, int level)
{
	struct buf path = BUF_INIT;
	int index = 1;

	for (i++; i < s->ntok && !is(s, i, LTOK_OP, "}") &&
	    !is(s, i, LTOK_END, NULL);) {
		size_t start = i;
		int line = s->tok[i].line;
		buf_clear(&path);
		field_key(s, &i, prefix, &index, &path);
		i = parse_value(s, i, buf_cstr(&path), line, level);
		if (is(s, i, LTOK_OP, ",") || is(s, i, LTOK_OP, ";") ||
		    i == start)
			i++;
	}
	buf_free(&path);
	return i + 1;
}

int
lua_source_config_fields(struct lua_source *s, int call_line)
{
	size_t at = 0;
	int found = 0;

	for (size_t i = 0; i + 3 < s->ntok; i++)
		if (is(s, i, LTOK_NAME, "indimail") && is(s, i + 1, LTOK_OP,
		    ".") && is(s, i + 2, LTOK_NAME, "config") && (found == 0 ||
		    (call_line > 0 && s->tok[i].line <= call_line))) {
			at = i + 3;
			found = 1;
		}
	if (!found)
		return -1;
	if (is(s, at, LTOK_OP, "("))
		at++;
	if (!is(s, at, LTOK_OP, "{"))
		return -1;
	parse_table(s, at, "", 0);
	return 0;
}

/* path matches pattern from its start, or (suffix) ends with it after "." */
static int
path_match(const char *pat, const char *path, int suffix)
{
	size_t lp = strlen(pat), ln = strlen(path);

	if (suffix)
		return ln > lp && path[ln - lp - 1] == '.' &&
		    path_match(pat, path + ln - lp, 0);
	while (*pat && *path) {
		if (pat[0] == '[' && pat[1] == ']' && *path == '[') {
			const char *e = path[1] == '\'' ? strstr(path, "']") :
			    strchr(path, ']');
			if (e == NULL)
				return 0;
			path = e + (path[1] == '\'' ? 2 : 1);
			pat += 2;
		} else if (tolower((unsigned char)*pat++) !=
		    tolower((unsigned char)*path++))
			return 0;
	}
	return *pat == '\0' && *path == '\0';
}

/* Among the n fields matching, the one the hint (a quoted value) picks. */
static int
pick(const struct lua_source *s, const char *path, const char *hint,
    int suffix)
{
	int line = 0, n = 0, byhint = 0, nhint = 0;

	for (size_t i = 0; i < s->nfield; i++) {
		const struct lua_field *f = &s->field[i];
		if (!path_match(path, f->path, suffix))
			continue;
		n++;
		line = f->line;
		if (hint && ((f->value && strcasecmp(f->value, hint) == 0) ||
		    strcasestr(f->path, hint))) {
			nhint++;
			byhint = f->line;
		}
	}
	if (n == 1)
		return line;
	return nhint == 1 ? byhint : 0;
}

int
lua_source_key_line(const struct lua_source *s, const char *path,
    const char *hint)
{
	int line = pick(s, path, hint, 0);

	return line ? line : pick(s, path, hint, 1);
}

/* The first 'quoted' word of text into q (empty if none). */
static void
quoted(const char *text, struct buf *q)
{
	const char *a = strchr(text, '\''), *b = a ? strchr(a + 1, '\'') : NULL;

	if (b)
		buf_append(q, a + 1, (size_t)(b - a - 1));
}

int
lua_source_error_line(const struct lua_source *s, const char *msg)
{
	struct buf path = BUF_INIT, hint = BUF_INIT;
	const char *why = strstr(msg, ": ");
	size_t n;
	int line;

	if (strncmp(msg, "bad config: ", 12) != 0 || why == NULL ||
	    (why = strstr(msg + 12, ": ")) == NULL)
		return 0;
	n = strcspn(msg + 12, " :");	/* "users[3] (x): ..." */
	buf_append(&path, msg + 12, n);
	why += 2;
	if (strncmp(why, "unknown key '", 13) == 0) {
		if (strcmp(buf_cstr(&path), "config") == 0)
			buf_clear(&path);
		else
			buf_appendc(&path, '.');
		buf_append(&path, why + 13, strcspn(why + 13, "'"));
	} else
		quoted(why, &hint);
	line = lua_source_key_line(s, buf_cstr(&path), hint.len ?
	    buf_cstr(&hint) : NULL);
	buf_free(&path);
	buf_free(&hint);
	return line;
}
