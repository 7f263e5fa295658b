/*
 * config_settings: the walk over config_keys.c's tables that turns a
 * struct config into settings (key, JSON value, is it the default), the
 * defaults they are compared with, the hooks a runtime registered, and
 * which keys exist (`indimail config keys`, a KEY argument).
 */
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"
#include "../lib/xalloc.h"
#include "../lua/lua_runtime.h"
#include "config_keys_int.h"

/* ---- reading a value -------------------------------------------------- */

static json_t *
get_number(const struct config_key *k, const char *p)
{
	long long v = k->type == CK_INT ? *(const int *)p : k->type == CK_LONG ?
	    *(const long *)p : (long long)*(const size_t *)p;
	int unit = k->unit ? k->unit : 1;

	if (k->zero_nil && v == 0)
		return json_null();
	if (v % unit == 0)
		return json_integer(v / unit);
	return json_real((double)v / unit);
}

static json_t *
get_string(const char *s)
{
	json_t *j;

	if (s == NULL)
		return json_null();
	j = json_string(s);
	return j ? j : json_string("(not UTF-8)");
}

static json_t *
get_word(const struct ck_word *w, int v)
{
	for (; w->name; w++)
		if (w->value == v)
			return json_string(w->name);
	return json_null();
}

static json_t *
get_list(char *const *l, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, get_string(l[i]));
	return a;
}

#define AT(base, off)	((const char *)(base) + (off))

static json_t *
get_value(const struct config_key *k, const void *base)
{
	const char *p = AT(base, k->off);

	switch (k->type) {
	case CK_STR:
		return get_string(*(char *const *)p);
	case CK_SECRET:
		return *(char *const *)p ? json_string("<hidden>") : json_null();
	case CK_INT: case CK_SIZE: case CK_LONG:
		return get_number(k, p);
	case CK_BOOL:
		return json_boolean(*(const int *)p);
	case CK_WORD:
		return get_word(k->words, *(const int *)p);
	case CK_LIST:
		return get_list(*(char **const *)p,
		    *(const size_t *)AT(base, k->count_off));
	case CK_FN:
		return k->get(base);
	case CK_ARRAY:
		break;
	}
	return json_null();
}

/* ---- the walk --------------------------------------------------------- */

void
config_settings_add(struct config_settings *s, const char *key,
    json_t *value, int is_default)
{
	struct config_setting *e;

	s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
	e = &s->v[s->n++];
	e->key = xstrdup(key);
	e->value = value;
	e->hidden = 0;
	e->is_default = is_default;
}

struct walk {
	const struct config *c;
	struct config_settings *out;
};

static void walk_table(struct walk *, const struct config_key *,
    const void *base, const void *dbase, const char *prefix);

/* "name[3]" or "name[\"example.com\"]" ("*": the route of every domain). */
static void
element_name(struct buf *b, const char *name, const struct config_array *a,
    const void *elem, size_t i)
{
	const char *key;

	buf_appends(b, name);
	if (a->name_off < 0) {
		buf_printf(b, "[%zu]", i + 1);
		return;
	}
	key = *(char *const *)AT(elem, a->name_off);
	buf_appendc(b, '[');
	config_lua_quote(b, key[0] ? key : "*");
	buf_appendc(b, ']');
}

static void
walk_array(struct walk *w, const struct config_key *k, const void *base,
    const char *name)
{
	const struct config_array *a = k->sub;
	size_t n = *(const size_t *)AT(base, k->count_off);
	const char *elems = *(char *const *)AT(base, k->off);
	struct buf en = BUF_INIT;
	void *d = xcalloc(1, a->size);

	if (n == 0)		/* every list is empty by default */
		config_settings_add(w->out, name, json_array(), 1);
	for (size_t i = 0; i < n; i++) {
		const char *e = elems + i * a->size;
		memset(d, 0, a->size);
		a->dflt(w->c, e, d);
		buf_clear(&en);
		element_name(&en, name, a, e, i);
		walk_table(w, a->keys, e, d, buf_cstr(&en));
	}
	buf_free(&en);
	free(d);
}

static void
walk_table(struct walk *w, const struct config_key *t, const void *base,
    const void *dbase, const char *prefix)
{
	struct buf name = BUF_INIT;

	for (const struct config_key *k = t; k->key; k++) {
		json_t *v, *d;
		buf_clear(&name);
		buf_printf(&name, "%s%s", prefix, k->key);
		if (k->type == CK_ARRAY) {
			walk_array(w, k, base, buf_cstr(&name));
			continue;
		}
		v = get_value(k, base);
		d = get_value(k, dbase);
		config_settings_add(w->out, buf_cstr(&name), v,
		    json_equal(v, d));
		w->out->v[w->out->n - 1].hidden = k->type == CK_SECRET &&
		    !json_is_null(v);
		json_decref(d);
	}
	buf_free(&name);
}

void
config_settings_collect(const struct config *c, const struct config *dflt,
    struct config_settings *out)
{
	struct walk w = { c, out };

	walk_table(&w, config_keys, c, dflt, "");
}

void
config_settings_free(struct config_settings *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].key);
		json_decref(s->v[i].value);
	}
	free(s->v);
	memset(s, 0, sizeof(*s));
}

void
config_keys_defaults(struct config *d, const struct config *c)
{
	config_defaults(d);
	d->hostname = config_default_hostname();
	d->queue_path = xstrdup(CONFIG_DEFAULT_QUEUE);
	d->delivery.maildir_root = xstrdup(CONFIG_DEFAULT_MAILDIRS);
	d->submit_socket = config_default_submit_socket(c ? c : d);
	d->delivery.postmaster = config_default_postmaster(c ? c : d);
}

/* Lua's "..." with \\, \" and \ddd for control bytes. */
void
config_lua_quote(struct buf *b, const char *s)
{
	buf_appendc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p == '"' || *p == '\\')
			buf_printf(b, "\\%c", *p);
		else if (*p < ' ' || *p == 0x7f)
			buf_printf(b, "\\%03u", *p);
		else
			buf_appendc(b, (char)*p);
	buf_appendc(b, '"');
}

/* hooks.STAGE = { "policy", ... }: what the file registered, in order
 * (rt NULL: none, the default). */
void
config_settings_hooks(struct runtime *rt, struct config_settings *out)
{
	struct buf key = BUF_INIT;

	for (int s = 0; s < HOOK_NSTAGES; s++) {
		json_t *names = json_array();
		for (int i = 0; rt && i < rt->nhooks[s]; i++) {
			json_array_append_new(names, get_string(
			    runtime_push_hook(rt, (enum hook_stage)s, i)));
			lua_pop(rt->L, 1);
		}
		buf_clear(&key);
		buf_printf(&key, "hooks.%s", hook_stage_name((enum hook_stage)s));
		config_settings_add(out, buf_cstr(&key), names,
		    json_array_size(names) == 0);
	}
	buf_free(&key);
}

/* ---- the key patterns ------------------------------------------------- */

/* Calls fn with every pattern: "limits.message_size", "listen[].port". */
static void
each_pattern(const struct config_key *t, const char *prefix,
    void (*fn)(const char *, void *), void *arg)
{
	struct buf b = BUF_INIT;

	for (int s = 0; prefix[0] == '\0' && s < HOOK_NSTAGES; s++) {
		buf_clear(&b);
		buf_printf(&b, "hooks.%s", hook_stage_name((enum hook_stage)s));
		fn(buf_cstr(&b), arg);
	}
	for (const struct config_key *k = t; k->key; k++) {
		buf_clear(&b);
		buf_printf(&b, "%s%s", prefix, k->key);
		if (k->type == CK_ARRAY) {
			buf_appends(&b, "[]");
			each_pattern(k->sub->keys, buf_cstr(&b), fn, arg);
		} else
			fn(buf_cstr(&b), arg);
	}
	buf_free(&b);
}

/* "listen[2].port" → "listen[].port": each [...] emptied. */
static void
normalize(const char *arg, struct buf *out)
{
	for (const char *p = arg; *p; p++) {
		buf_appendc(out, *p);
		if (*p == '[' && strchr(p, ']'))
			p = strchr(p, ']') - 1;
	}
}

struct known {
	const char	*arg;
	int		 found;
};

/* The pattern is arg, or lies under it ("listen" of "listen[].port"). */
static void
match_pattern(const char *pat, void *arg)
{
	struct known *k = arg;
	size_t n = strlen(k->arg);

	if (strncmp(pat, k->arg, n) == 0 && (pat[n] == '\0' || pat[n] == '.' ||
	    pat[n] == '['))
		k->found = 1;
}

int
config_key_known(const char *arg)
{
	struct buf norm = BUF_INIT;
	struct known k;

	normalize(arg, &norm);
	k.arg = buf_cstr(&norm);
	k.found = 0;
	each_pattern(config_keys, "", match_pattern, &k);
	buf_free(&norm);
	return k.found;
}

static void
print_pattern(const char *pat, void *arg)
{
	fprintf(arg, "%s\n", pat);
}

void
config_keys_print(FILE *f)
{
	each_pattern(config_keys, "", print_pattern, f);
}
