/*
 * config_tool: see config_tool.h. check is lua_config_check.c's
 * config_check, the function behind `indimaild -t`, evaluated in this
 * process. dump and diff load the configuration, walk config_keys.c's
 * table (config_settings.c) and print each setting, in the table's order,
 * as Lua (`listen[1].port = 2525`) or as one JSON object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"
#include "../lua/lua_runtime.h"
#include "config_keys.h"
#include "config_tool.h"

#define EXIT_USAGE	2

struct dump_opts {
	int		 defaults;	/* --defaults: the built-in values */
	int		 json;
	int		 diff;		/* only what differs from the defaults */
	char	       **keys;		/* KEY... (prefixes); none: all */
	int		 nkeys;
};

static int
usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "indimail config: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nusage: indimail [-c FILE] config check\n"
	    "       indimail [-c FILE] config dump [--defaults|-d] [--json] "
	    "[KEY...]\n"
	    "       indimail [-c FILE] config diff [--json] [KEY...]\n"
	    "       indimail config keys\n");
	return EXIT_USAGE;
}

static int
parse_opts(int argc, char **argv, struct dump_opts *o)
{
	int i;

	for (i = 0; i < argc && argv[i][0] == '-'; i++)
		if (strcmp(argv[i], "--defaults") == 0 ||
		    strcmp(argv[i], "-d") == 0)
			o->defaults = 1;
		else if (strcmp(argv[i], "--json") == 0)
			o->json = 1;
		else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else
			return usage_error("unknown option '%s'", argv[i]);
	if (o->diff && o->defaults)
		return usage_error("%s", "diff takes no --defaults");
	o->keys = argv + i;
	o->nkeys = argc - i;
	for (int k = 0; k < o->nkeys; k++)
		if (!config_key_known(o->keys[k])) {
			fprintf(stderr, "indimail config: unknown key '%s' "
			    "(`indimail config keys` lists them)\n", o->keys[k]);
			return EXIT_USAGE;
		}
	return 0;
}

/* key is one of the KEY arguments, or lies under one. */
static int
selected(const struct dump_opts *o, const char *key)
{
	if (o->nkeys == 0)
		return 1;
	for (int i = 0; i < o->nkeys; i++) {
		size_t n = strlen(o->keys[i]);
		if (strncmp(key, o->keys[i], n) == 0 && (key[n] == '\0' ||
		    key[n] == '.' || key[n] == '['))
			return 1;
	}
	return 0;
}

static void
lua_value(struct buf *b, const json_t *v)
{
	size_t i;
	json_t *e;

	switch (json_typeof(v)) {
	case JSON_STRING:
		config_lua_quote(b, json_string_value(v));
		break;
	case JSON_INTEGER:
		buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		buf_printf(b, "%.15g", json_real_value(v));
		break;
	case JSON_TRUE: case JSON_FALSE:
		buf_appends(b, json_is_true(v) ? "true" : "false");
		break;
	case JSON_ARRAY:
		buf_appends(b, json_array_size(v) ? "{ " : "{}");
		json_array_foreach(v, i, e) {
			lua_value(b, e);
			buf_appends(b, i + 1 < json_array_size(v) ? ", " : " }");
		}
		break;
	default:
		buf_appends(b, "nil");
	}
}

static void
print_lua(const struct config_settings *s, const struct dump_opts *o)
{
	struct buf line = BUF_INIT;

	for (size_t i = 0; i < s->n; i++) {
		const struct config_setting *e = &s->v[i];
		if (!selected(o, e->key) || (o->diff && e->is_default))
			continue;
		buf_clear(&line);
		buf_printf(&line, "%s = ", e->key);
		if (e->hidden)
			buf_appends(&line, "<hidden>");
		else
			lua_value(&line, e->value);
		if (e->is_default && !o->defaults)
			buf_appends(&line, "  # default");
		printf("%s\n", buf_cstr(&line));
	}
	buf_free(&line);
}

/* { "KEY": { "value": V, "default": true|false [, "hidden": true] } } */
static void
print_json(const struct config_settings *s, const struct dump_opts *o)
{
	json_t *all = json_object();
	char *text;

	for (size_t i = 0; i < s->n; i++) {
		const struct config_setting *e = &s->v[i];
		if (!selected(o, e->key) || (o->diff && e->is_default))
			continue;
		json_object_set_new(all, e->key, json_pack("{sOsb}", "value",
		    e->value, "default", e->is_default));
		if (e->hidden)
			json_object_set_new(json_object_get(all, e->key),
			    "hidden", json_true());
	}
	text = json_dumps(all, JSON_INDENT(2));
	printf("%s\n", text ? text : "{}");
	free(text);
	json_decref(all);
}

/* The settings to print: the file's (rt), or the built-in defaults. */
static int
dump(const char *config, const struct dump_opts *o)
{
	struct config_settings s = { NULL, 0 };
	struct buf err = BUF_INIT;
	struct runtime *rt = NULL;
	struct config d;

	if (!o->defaults && (rt = runtime_load(config, &err)) == NULL) {
		fprintf(stderr, "indimail: %s\n", buf_cstr(&err));
		buf_free(&err);
		return 1;
	}
	config_keys_defaults(&d, rt ? &rt->cfg : NULL);
	config_settings_collect(rt ? &rt->cfg : &d, &d, &s);
	config_settings_hooks(rt, &s);
	if (o->json)
		print_json(&s, o);
	else
		print_lua(&s, o);
	config_settings_free(&s);
	config_free(&d);
	if (rt)
		runtime_unref(rt);
	return 0;
}

static int
check(const char *config)
{
	struct buf out = BUF_INIT;
	int rc = config_check(config, config_check_eval_here, NULL, &out);

	fprintf(rc ? stderr : stdout, "indimail: %s\n", buf_cstr(&out));
	buf_free(&out);
	return rc;
}

int
config_tool_main(const char *config, int argc, char **argv)
{
	struct dump_opts o = { 0, 0, 0, NULL, 0 };
	const char *cmd = argc >= 2 ? argv[1] : "";

	if (strcmp(cmd, "check") == 0 && argc == 2)
		return check(config);
	if (strcmp(cmd, "keys") == 0 && argc == 2) {
		config_keys_print(stdout);
		return 0;
	}
	if (strcmp(cmd, "dump") != 0 && strcmp(cmd, "diff") != 0)
		return usage_error("'%s' is not check, dump, diff or keys "
		    "(with nothing after check and keys)", cmd);
	o.diff = strcmp(cmd, "diff") == 0;
	if (parse_opts(argc - 2, argv + 2, &o) != 0)
		return EXIT_USAGE;
	return dump(config, &o);
}
