/*
 * admin_out: how the CLI prints rows. Text: a list is one line per row,
 * columns separated by tabs; a show is "column: value" lines. --json: a
 * list is an array of objects, a show one object; integer columns are
 * numbers, NULL is null, strings are escaped (UTF-8 passes as it is).
 */
#include <stdio.h>

#include "admin.h"

void
admin_json_str(struct buf *b, const char *s)
{
	buf_appendc(b, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			buf_printf(b, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			buf_printf(b, "\\u%04x", c);
		else
			buf_appendc(b, (char)c);
	}
	buf_appendc(b, '"');
}

static void
json_value(struct buf *b, struct dirdb_stmt *st, int i)
{
	if (dirdb_isnull(st, i))
		buf_appends(b, "null");
	else if (dirdb_isint(st, i))
		buf_printf(b, "%lld", dirdb_int(st, i));
	else
		admin_json_str(b, dirdb_text(st, i));
}

static void
row_json(struct buf *b, struct dirdb_stmt *st)
{
	int n = dirdb_ncols(st);

	buf_appendc(b, '{');
	for (int i = 0; i < n; i++) {
		if (i)
			buf_appendc(b, ',');
		admin_json_str(b, dirdb_colname(st, i));
		buf_appendc(b, ':');
		json_value(b, st, i);
	}
	buf_appendc(b, '}');
}

static void
row_text(struct buf *b, struct dirdb_stmt *st, int one)
{
	int n = dirdb_ncols(st);

	for (int i = 0; i < n; i++)
		if (one)
			buf_printf(b, "%s: %s\n", dirdb_colname(st, i),
			    dirdb_text(st, i));
		else
			buf_printf(b, "%s%s", i ? "\t" : "",
			    dirdb_text(st, i));
	if (!one)
		buf_appendc(b, '\n');
}

/* one: a show (EX_NOUSER when there is no row, printed by the caller). */
int
admin_print_rows(struct admin *a, struct dirdb_stmt *st, int one)
{
	struct buf b = BUF_INIT;
	int rc, rows = 0;

	if (st == NULL)
		return EX_IOERR;
	if (a->json && !one)
		buf_appendc(&b, '[');
	while ((rc = dirdb_step(st)) == DIRDB_ROW) {
		if (a->json && rows)
			buf_appendc(&b, ',');
		if (a->json)
			row_json(&b, st);
		else
			row_text(&b, st, one);
		rows++;
	}
	if (a->json)
		buf_appends(&b, one ? "\n" : "]\n");
	if (rc != DIRDB_DONE)
		rc = admin_db_error(a);
	else if (one && rows == 0)
		rc = EX_NOUSER;
	else
		rc = 0, fputs(buf_cstr(&b), stdout);
	dirdb_finalize(st);
	buf_free(&b);
	return rc;
}
