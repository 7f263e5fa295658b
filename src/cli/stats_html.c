/*
 * stats_html: `indimail stats --html FILE`, one self-contained page (inline
 * CSS and SVG, no script, no external URL): the totals, bar charts of
 * traffic per hour, of the delivery delay and of the top rejections, and
 * the top lists as tables. Every value taken from the log goes through
 * esc(): a sender called <script>@x is text, never markup.
 */
#include <stdlib.h>
#include <string.h>

#include "stats_int.h"

#define SVG_W		760	/* chart width, pixels */
#define SVG_H		220	/* vertical bar charts: height */
#define SVG_PAD		30	/* room for the axis labels */
#define SVG_ROW		22	/* horizontal bar charts: one row */
#define SVG_LABEL	360	/* horizontal bar charts: the label column */
#define LABEL_MAX	70	/* bytes of a label shown beside a bar */

/* The series of the traffic chart, and their colours. */
static const enum stats_kind hour_series[] = { SK_RECEIVED, SK_DELIVERED,
	SK_REJECTED };
static const char *const colour[] = { "#4878a8", "#58a860", "#c85048" };

/* The delay histogram's buckets: [from, to) seconds; -1 = no end. */
static const struct { long long from, to; const char *label; } dbucket[] = {
	{ 0, 1, "<1s" }, { 1, 5, "1-5s" }, { 5, 30, "5-30s" },
	{ 30, 120, "30s-2m" }, { 120, 600, "2-10m" }, { 600, 3600, "10m-1h" },
	{ 3600, 21600, "1-6h" }, { 21600, 86400, "6-24h" }, { 86400, -1, ">1d" },
};
#define NDBUCKETS	(sizeof(dbucket) / sizeof(*dbucket))

static void
esc(FILE *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&#39;", out); break;
		default:
			fputc((unsigned char)*s < ' ' || *s == 127 ? '?' : *s,
			    out);
		}
	}
}

/* At most LABEL_MAX bytes of s, cut before a UTF-8 continuation byte. */
static void
esc_short(FILE *out, const char *s)
{
	size_t n = strlen(s);
	char *t;

	if (n <= LABEL_MAX) {
		esc(out, s);
		return;
	}
	for (n = LABEL_MAX; n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80; n--)
		;
	t = strndup(s, n);
	esc(out, t);
	fputs("…", out);
	free(t);
}

static long long
biggest(const long long *v, size_t n)
{
	long long m = 1;

	for (size_t i = 0; i < n; i++)
		if (v[i] > m)
			m = v[i];
	return m;
}

/* One bar of a vertical chart, its value as a tooltip. */
static void
vbar(FILE *out, double x, double w, long long v, long long max,
    const char *fill)
{
	double h = (double)(SVG_H - 2 * SVG_PAD) * (double)v / (double)max;

	fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\""
	    " fill=\"%s\"><title>%lld</title></rect>\n", x,
	    SVG_H - SVG_PAD - h, w, h, fill, v);
}

static void
svg_open(FILE *out, int h, const char *what)
{
	fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
	    "height=\"%d\" role=\"img\" aria-label=\"%s\">\n", SVG_W, h, what);
}

static void
axis_label(FILE *out, double x, const char *text)
{
	fprintf(out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s"
	    "</text>\n", x, SVG_H - SVG_PAD / 2 + 4, text);
}

static void
hour_chart(FILE *out, const struct stats *st)
{
	const size_t ns = sizeof(hour_series) / sizeof(*hour_series);
	double slot = (double)(SVG_W - 2 * SVG_PAD) / STATS_HOURS;
	long long v[STATS_HOURS * 3], max;
	char h[12];	/* an int, whatever the compiler proves of i */

	for (int i = 0; i < STATS_HOURS; i++)
		for (size_t s = 0; s < ns; s++)
			v[i * ns + s] = st->hour[i][hour_series[s]];
	max = biggest(v, STATS_HOURS * ns);
	svg_open(out, SVG_H, "traffic per hour");
	for (int i = 0; i < STATS_HOURS; i++) {
		double x = SVG_PAD + slot * i;
		for (size_t s = 0; s < ns; s++)
			vbar(out, x + 2 + s * (slot - 4) / ns, (slot - 4) / ns,
			    v[i * ns + s], max, colour[s]);
		snprintf(h, sizeof(h), "%02d", i);
		axis_label(out, x + slot / 2, h);
	}
	fprintf(out, "<text x=\"%d\" y=\"14\">max %lld</text>\n</svg>\n",
	    SVG_PAD, max);
	fputs("<p class=\"legend\">", out);
	for (size_t s = 0; s < ns; s++)
		fprintf(out, "<span style=\"color:%s\">&#9632;</span> %s ",
		    colour[s], stats_kind_name[hour_series[s]]);
	fputs("(hour of the day, UTC)</p>\n", out);
}

static void
delay_chart(FILE *out, const struct stats *st)
{
	double slot = (double)(SVG_W - 2 * SVG_PAD) / NDBUCKETS;
	long long v[NDBUCKETS], max;

	for (size_t i = 0; i < NDBUCKETS; i++)
		v[i] = stats_delay_between(st, dbucket[i].from, dbucket[i].to);
	max = biggest(v, NDBUCKETS);
	svg_open(out, SVG_H, "delivery delay distribution");
	for (size_t i = 0; i < NDBUCKETS; i++) {
		vbar(out, SVG_PAD + slot * i + 4, slot - 8, v[i], max,
		    colour[1]);
		axis_label(out, SVG_PAD + slot * (i + 0.5), dbucket[i].label);
	}
	fprintf(out, "<text x=\"%d\" y=\"14\">max %lld deliveries</text>\n"
	    "</svg>\n", SVG_PAD, max);
}

/* Horizontal bars for a top list, the (escaped) key as each label. */
static void
top_chart(FILE *out, const struct stats_entry *e, size_t n)
{
	double room = SVG_W - SVG_LABEL - 60;
	long long max = n ? e[0].n : 1;

	svg_open(out, (int)(n * SVG_ROW + 10), "top rejections");
	for (size_t i = 0; i < n; i++) {
		double w = room * (double)e[i].n / (double)(max ? max : 1);
		int y = (int)(i * SVG_ROW + 5);
		fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">",
		    SVG_LABEL - 6, y + 15);
		esc_short(out, e[i].key);
		fprintf(out, "</text><rect x=\"%d\" y=\"%d\" width=\"%.1f\" "
		    "height=\"%d\" fill=\"%s\"/><text x=\"%.1f\" y=\"%d\">%lld"
		    "</text>\n", SVG_LABEL, y, w, SVG_ROW - 6, colour[2],
		    SVG_LABEL + w + 4, y + 15, e[i].n);
	}
	fputs("</svg>\n", out);
}

static void
table(FILE *out, const struct stats *st, enum stats_list which, size_t top)
{
	size_t n;
	struct stats_entry *e = stats_count_top(&st->list[which], top, &n);

	fprintf(out, "<h2>%s</h2>\n", stats_list_title[which]);
	if (which == SL_REASONS && n)
		top_chart(out, e, n);
	fputs("<table>\n", out);
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "<tr><td class=\"n\">%lld</td><td>", e[i].n);
		esc(out, e[i].key);
		fputs("</td></tr>\n", out);
	}
	if (n == 0)
		fputs("<tr><td>none</td></tr>\n", out);
	fputs("</table>\n", out);
	free(e);
}

static void
summary(FILE *out, const struct stats *st)
{
	fputs("<table class=\"sum\">\n", out);
	for (int k = 0; k < SK_KINDS; k++)
		fprintf(out, "<tr><th>%s</th><td class=\"n\">%lld</td></tr>\n",
		    stats_kind_name[k], st->total[k]);
	fprintf(out, "<tr><th>bytes received</th><td class=\"n\">%lld</td>"
	    "</tr>\n<tr><th>connections</th><td class=\"n\">%lld</td></tr>\n"
	    "</table>\n", st->bytes, st->connections);
	if (st->delays)
		fprintf(out, "<p>Delivery delay: p50 %llds, p90 %llds, p99 %llds,"
		    " max %llds (%lld deliveries)</p>\n", stats_delay_at(st, 50),
		    stats_delay_at(st, 90), stats_delay_at(st, 99),
		    st->delay_max, st->delays);
}

static const char style[] =
	"body{font:14px sans-serif;margin:2em;color:#222}"
	"h1{font-size:20px}h2{font-size:16px;margin-top:1.6em}"
	"table{border-collapse:collapse}td,th{padding:2px 10px;text-align:left;"
	"border-bottom:1px solid #ddd}td.n{text-align:right}"
	"svg{display:block;background:#fafafa;border:1px solid #ddd}"
	"svg text{font:11px sans-serif;fill:#333}.legend{font-size:12px}";

int
stats_html(FILE *out, const struct stats *st, size_t top)
{
	fprintf(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset="
	    "\"utf-8\"><title>indimail stats</title><style>%s</style></head>"
	    "<body>\n<h1>indimail stats</h1>\n", style);
	fprintf(out, "<p>%lld log lines", st->lines);
	if (st->lines) {
		char from[32], to[32];
		struct tm tm;
		strftime(from, sizeof(from), "%Y-%m-%dT%H:%M:%SZ",
		    gmtime_r(&st->first, &tm));
		strftime(to, sizeof(to), "%Y-%m-%dT%H:%M:%SZ",
		    gmtime_r(&st->last, &tm));
		fprintf(out, ", %s to %s", from, to);
	}
	fputs(".</p>\n", out);
	summary(out, st);
	fputs("<h2>Traffic per hour</h2>\n", out);
	hour_chart(out, st);
	fputs("<h2>Delivery delay (queue entry to delivery)</h2>\n", out);
	if (st->delays)
		delay_chart(out, st);
	else		/* as the text report says it */
		fputs("<p>no deliveries with a delay</p>\n", out);
	for (int i = SL_LISTS - 1; i >= 0; i--)
		table(out, st, (enum stats_list)i, top);
	fputs("</body></html>\n", out);
	return ferror(out) ? -1 : 0;
}
