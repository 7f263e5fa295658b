/*
 * lua_source: where in the configuration's text a thing is written. Lua
 * keeps one line per instruction, not per table key, so an error found
 * while reading indimail.config{...} would only name the call's line.
 * This reads the text again with a small Lua tokenizer (strings, long
 * brackets and comments are skipped exactly), walks the table constructor
 * of the indimail.config call and records every key's path and line
 * ("listen[2].port", "mailboxes.aliases['a@b']"); an error's path is
 * looked up there. Nothing is evaluated; an unclear answer gives 0.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/xalloc.h"
#include "lua_source.h"

struct lexer {
	const char	*p, *end;
	int		 line;
};

/* Past the closing ]==]; 1 if there was one. */
static int
skip_long(struct lexer *x, int level)
{
	for (; x->p < x->end; x->p++) {
		if (*x->p == '\n')
			x->line++;
		else if (*x->p == ']' && x->end - x->p > level + 1 &&
		    strspn(x->p + 1, "=") >= (size_t)level &&
		    x->p[level + 1] == ']') {
			x->p += level + 2;
			return 1;
		}
	}
	return 0;
}

/* [==[ at x->p: its level, or -1 if this is no long bracket. */
static int
long_level(const char *p, const char *end)
{
	int n = 0;

	if (p >= end || *p != '[')
		return -1;
	for (p++; p < end && *p == '='; p++)
		n++;
	return p < end && *p == '[' ? n : -1;
}

static void
skip_space(struct lexer *x)
{
	int lvl;

	while (x->p < x->end) {
		if (*x->p == '\n')
			x->line++, x->p++;
		else if (isspace((unsigned char)*x->p))
			x->p++;
		else if (x->end - x->p > 1 && x->p[0] == '-' && x->p[1] == '-') {
			x->p += 2;
			if ((lvl = long_level(x->p, x->end)) >= 0) {
				x->p += lvl + 2;
				skip_long(x, lvl);
			} else
				while (x->p < x->end && *x->p != '\n')
					x->p++;
		} else
			return;
	}
}

static void
push(struct lua_source *s, enum lua_tok_kind k, const char *b, size_t n,
    int line)
{
	struct lua_tok *t;

	if (s->ntok == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 256;
		s->tok = xrealloc(s->tok, s->cap * sizeof(*s->tok));
	}
	t = &s->tok[s->ntok++];
	t->kind = k;
	t->text = xstrndup(b, n);
	t->line = line;
}

/* A short string: its raw text between the quotes (escapes kept). */
static void
lex_string(struct lexer *x, struct lua_source *s)
{
	char q = *x->p++;
	const char *b = x->p;
	int line = x->line;

	while (x->p < x->end && *x->p != q && *x->p != '\n') {
		if (*x->p == '\\' && x->p + 1 < x->end) {
			if (x->p[1] == '\n')
				x->line++;
			x->p++;
		}
		x->p++;
	}
	push(s, LTOK_STRING, b, (size_t)(x->p - b), line);
	if (x->p < x->end)
		x->p++;
}

static void
lex_one(struct lexer *x, struct lua_source *s)
{
	const char *b = x->p;
	int lvl, closed, line = x->line;

	if (*b == '"' || *b == '\'')
		lex_string(x, s);
	else if ((lvl = long_level(b, x->end)) >= 0) {
		x->p += lvl + 2;
		b = x->p;
		closed = skip_long(x, lvl);
		push(s, LTOK_STRING, b, (size_t)(x->p - b) - (closed ?
		    (size_t)lvl + 2 : 0), line);
	} else if (isalpha((unsigned char)*b) || *b == '_') {
		while (x->p < x->end && (isalnum((unsigned char)*x->p) ||
		    *x->p == '_'))
			x->p++;
		push(s, LTOK_NAME, b, (size_t)(x->p - b), line);
	} else if (isdigit((unsigned char)*b)) {
		while (x->p < x->end && (isalnum((unsigned char)*x->p) ||
		    *x->p == '.'))
			x->p++;
		push(s, LTOK_NUMBER, b, (size_t)(x->p - b), line);
	} else {
		/* "==" and ".." stay one token: no "=" of a field is faked */
		x->p += x->p + 1 < x->end && strchr("=.~<>", b[0]) &&
		    (b[1] == '=' || (b[0] == '.' && b[1] == '.')) ? 2 : 1;
		push(s, LTOK_OP, b, (size_t)(x->p - b), line);
	}
}

void
lua_source_lex(struct lua_source *s, const char *text, size_t len)
{
	struct lexer x = { text, text + len, 1 };

	memset(s, 0, sizeof(*s));
	if (len > 2 && text[0] == '#')	/* a #! line */
		while (x.p < x.end && *x.p != '\n')
			x.p++;
	for (;;) {
		skip_space(&x);
		if (x.p >= x.end)
			break;
		lex_one(&x, s);
	}
	push(s, LTOK_END, "", 0, x.line);
}

int
lua_source_read(struct lua_source *s, const char *path)
{
	FILE *f = fopen(path, "r");
	char *text;
	long n;

	memset(s, 0, sizeof(*s));
	if (f == NULL)
		return -1;
	if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || n > (8 << 20) ||
	    fseek(f, 0, SEEK_SET) < 0) {
		fclose(f);
		return -1;
	}
	text = xmalloc((size_t)n + 1);
	n = (long)fread(text, 1, (size_t)n, f);
	fclose(f);
	lua_source_lex(s, text, (size_t)n);
	free(text);
	return 0;
}

void
lua_source_free(struct lua_source *s)
{
	for (size_t i = 0; i < s->ntok; i++)
		free(s->tok[i].text);
	for (size_t i = 0; i < s->nfield; i++) {
		free(s->field[i].path);
		free(s->field[i].value);
	}
	free(s->tok);
	free(s->field);
	memset(s, 0, sizeof(*s));
}

int
lua_source_is(const struct lua_source *s, size_t i, enum lua_tok_kind k,
    const char *text)
{
	return i < s->ntok && s->tok[i].kind == k &&
	    (text == NULL || strcmp(s->tok[i].text, text) == 0);
}
