/*
 * metrics: see metrics.h. The shared table holds series (a family index
 * and the label values, joined by METRICS_SEP) and their cells; an open
 * addressing index finds a series by its hash. A series is only ever
 * added, under the table's lock, and published after it is complete (the
 * index slot, then the count, with release stores), so lookups and the
 * renderer read it without the lock. The families themselves live in the
 * master's memory, which every child inherits at its fork.
 *
 * Cells: one for a counter or a gauge (a gauge's int64 as its bits); for a
 * histogram the sum, then one per bound (not cumulative: summed when
 * rendered) and one past the last bound (+Inf), so that one walk of the
 * bounds finds an observation's cell. _count is rendered as the sum of the
 * buckets read, so +Inf always equals _count even while others count.
 */
#include <stdio.h>
#include <string.h>

#include "metrics.h"
#include "shm.h"

#define METRICS_CELLS		(METRICS_SERIES_MAX * 8)
#define METRICS_INDEX_SLOTS	(METRICS_SERIES_MAX * 2)	/* a power of two */
#define METRICS_SEP		'\x1f'
#define METRICS_OVER_CAP	(-2)
#define HIST_SUM		0	/* a histogram's cells: the sum, */
#define HIST_BUCKETS		1	/* then its buckets */

struct series {
	uint32_t	 family;
	uint32_t	 cell;
	char		 values[METRICS_VALUES_MAX];
};

struct metrics_table {
	struct shm_head	 head;
	_Atomic uint32_t nseries;
	uint32_t	 ncells;	/* under the lock */
	uint32_t	 per_family[METRICS_FAMILIES_MAX];	/* the same */
	_Atomic uint32_t index[METRICS_INDEX_SLOTS];	/* series + 1; 0 free */
	struct series	 series[METRICS_SERIES_MAX];
	_Atomic uint64_t cells[METRICS_CELLS];
};

static struct metrics_table *T;
static const struct metric_family *const *families;
static size_t nfamilies;

static size_t
nbounds(const struct metric_family *f)
{
	size_t n = 0;

	while (n < METRIC_BUCKETS_MAX && f->bounds[n] != 0)
		n++;
	return n;
}

static uint32_t
ncells(const struct metric_family *f)
{
	return f->kind == METRIC_HISTOGRAM ? (uint32_t)nbounds(f) + 2 : 1;
}

static int
family_index(const struct metric_family *f)
{
	for (size_t i = 0; i < nfamilies; i++)
		if (families[i] == f)
			return (int)i;
	return -1;
}

/* f's values joined into key (dynamic ones as "other" when asked); -1 if
 * they do not fit. */
static int
join(const struct metric_family *f, const char *const *values, int other,
    char key[METRICS_VALUES_MAX])
{
	size_t len = 0;

	key[0] = '\0';
	for (size_t i = 0; i < METRIC_LABELS_MAX && f->labels[i]; i++) {
		const char *v = other && (f->dynamic & METRIC_DYNAMIC(i)) ?
		    METRICS_OTHER : values[i] ? values[i] : "";
		size_t n = strlen(v);

		if (len + n + 2 > METRICS_VALUES_MAX)
			return -1;
		if (i > 0)
			key[len++] = METRICS_SEP;
		memcpy(key + len, v, n + 1);
		len += n;
	}
	return 0;
}

static uint64_t
hash_of(int fi, const char *key)
{
	return shm_hash(&T->head, key) ^ ((uint64_t)fi * 0x9e3779b97f4a7c15ull);
}

/* The series of (fi, key), or -1; no lock needed. */
static int
find(int fi, const char *key, uint64_t h)
{
	for (uint32_t i = 0; i < METRICS_INDEX_SLOTS; i++) {
		uint32_t slot = atomic_load_explicit(&T->index[(h + i) &
		    (METRICS_INDEX_SLOTS - 1)], memory_order_acquire);
		const struct series *s;

		if (slot == 0)
			return -1;
		s = &T->series[slot - 1];
		if (s->family == (uint32_t)fi && strcmp(s->values, key) == 0)
			return (int)slot - 1;
	}
	return -1;
}

/* Fills series n and publishes it (the lock is held). */
static void
publish(uint32_t n, int fi, const char *key, uint64_t h)
{
	struct series *s = &T->series[n];
	uint32_t i = 0;

	s->family = (uint32_t)fi;
	s->cell = T->ncells;
	memcpy(s->values, key, strlen(key) + 1);	/* fits: join() checked */
	T->ncells += ncells(families[fi]);
	T->per_family[fi]++;
	while (atomic_load_explicit(&T->index[(h + i) &
	    (METRICS_INDEX_SLOTS - 1)], memory_order_relaxed) != 0)
		i++;
	atomic_store_explicit(&T->index[(h + i) & (METRICS_INDEX_SLOTS - 1)],
	    n + 1, memory_order_release);
	atomic_store_explicit(&T->nseries, n + 1, memory_order_release);
}

/* Finds or makes the series; -1 when the table is full, METRICS_OVER_CAP
 * when capped and the family has its cap of series. */
static int
make(int fi, const char *key, uint64_t h, int capped)
{
	const struct metric_family *f = families[fi];
	uint32_t n;
	int s;

	shm_lock(&T->head);
	n = atomic_load_explicit(&T->nseries, memory_order_relaxed);
	if ((s = find(fi, key, h)) < 0) {
		if (capped && T->per_family[fi] >= f->cap)
			s = METRICS_OVER_CAP;
		else if (n < METRICS_SERIES_MAX &&
		    T->ncells + ncells(f) <= METRICS_CELLS) {
			publish(n, fi, key, h);
			s = (int)n;
		}
	}
	shm_unlock(&T->head);
	return s;
}

static int
lookup(int fi, const char *key, int capped)
{
	uint64_t h = hash_of(fi, key);
	int s = find(fi, key, h);

	return s >= 0 ? s : make(fi, key, h, capped);
}

struct metric
metrics_get(const struct metric_family *f, const char *const *values)
{
	struct metric m = { f, NULL };
	char key[METRICS_VALUES_MAX];
	int fi, s = METRICS_OVER_CAP;

	if (T == NULL || (fi = family_index(f)) < 0)
		return m;
	if (join(f, values, 0, key) == 0)
		s = lookup(fi, key, f->dynamic != 0);
	if (s == METRICS_OVER_CAP && join(f, values, 1, key) == 0)
		s = lookup(fi, key, 0);
	if (s >= 0)
		m.cell = &T->cells[T->series[s].cell];
	return m;
}

void
metric_set(struct metric m, int64_t v)
{
	if (m.cell)
		atomic_store_explicit(m.cell, (uint64_t)v, memory_order_relaxed);
}

/* The walk stops at the first bound v fits under, else at the end of the
 * bounds: the +Inf bucket. */
void
metric_observe(struct metric m, uint64_t v)
{
	const uint64_t *b = m.f->bounds;
	size_t i = 0;

	if (m.cell == NULL)
		return;
	while (i < METRIC_BUCKETS_MAX && b[i] != 0 && v > b[i])
		i++;
	atomic_fetch_add_explicit(&m.cell[HIST_BUCKETS + i], 1,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&m.cell[HIST_SUM], v, memory_order_relaxed);
}

void
metrics_start(const struct metric_family *const *fams, size_t n)
{
	if (n > METRICS_FAMILIES_MAX)
		n = METRICS_FAMILIES_MAX;
	T = shm_map(sizeof(*T), "metrics");
	families = fams;
	nfamilies = n;
	for (size_t i = 0; i < n; i++)
		if (fams[i]->labels[0] == NULL)
			metrics_get(fams[i], NULL);
}

void
metrics_stop(void)
{
	if (T)
		shm_unmap(T, sizeof(*T));
	T = NULL;
	families = NULL;
	nfamilies = 0;
}

/* A label value: backslash, double quote and line feed escaped. */
static void
append_value(struct buf *out, const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i] == '\\' || v[i] == '"')
			buf_appendc(out, '\\');
		if (v[i] == '\n')
			buf_appends(out, "\\n");
		else
			buf_appendc(out, v[i]);
	}
}

/* {a="x",b="y"} from the series' values, le last when given. */
static void
append_labels(struct buf *out, const struct metric_family *f,
    const char *values, const char *le)
{
	const char *v = values;
	int any = 0;

	for (size_t i = 0; i < METRIC_LABELS_MAX && f->labels[i]; i++) {
		const char *end = strchr(v, METRICS_SEP);
		size_t n = end ? (size_t)(end - v) : strlen(v);

		buf_printf(out, "%s%s=\"", any++ ? "," : "{", f->labels[i]);
		append_value(out, v, n);
		buf_appendc(out, '"');
		v += end ? n + 1 : n;
	}
	if (le)
		buf_printf(out, "%sle=\"%s\"", any++ ? "," : "{", le);
	if (any)
		buf_appendc(out, '}');
}

static double
unit_of(const struct metric_family *f)
{
	return f->unit > 0 ? f->unit : 1;
}

static void
render_histogram(struct buf *out, const struct metric_family *f,
    const struct series *s)
{
	_Atomic uint64_t *cell = &T->cells[s->cell];
	size_t nb = nbounds(f);
	uint64_t count = 0;
	char le[32];

	for (size_t i = 0; i <= nb; i++) {
		count += atomic_load_explicit(&cell[HIST_BUCKETS + i],
		    memory_order_relaxed);
		if (i < nb)
			snprintf(le, sizeof(le), "%g", (double)f->bounds[i] *
			    unit_of(f));
		buf_printf(out, "%s_bucket", f->name);
		append_labels(out, f, s->values, i < nb ? le : "+Inf");
		buf_printf(out, " %llu\n", (unsigned long long)count);
	}
	buf_printf(out, "%s_sum", f->name);
	append_labels(out, f, s->values, NULL);
	buf_printf(out, " %.9g\n", (double)atomic_load_explicit(&cell[HIST_SUM],
	    memory_order_relaxed) * unit_of(f));
	buf_printf(out, "%s_count", f->name);
	append_labels(out, f, s->values, NULL);
	buf_printf(out, " %llu\n", (unsigned long long)count);
}

static void
render_series(struct buf *out, const struct metric_family *f,
    const struct series *s)
{
	uint64_t v;

	if (f->kind == METRIC_HISTOGRAM) {
		render_histogram(out, f, s);
		return;
	}
	v = atomic_load_explicit(&T->cells[s->cell], memory_order_relaxed);
	buf_appends(out, f->name);
	append_labels(out, f, s->values, NULL);
	if (f->kind == METRIC_GAUGE)
		buf_printf(out, " %lld\n", (long long)(int64_t)v);
	else
		buf_printf(out, " %llu\n", (unsigned long long)v);
}

/* HELP text: backslash and line feed escaped. */
static void
render_head(struct buf *out, const struct metric_family *f)
{
	static const char *kinds[] = { "counter", "gauge", "histogram" };

	buf_printf(out, "# HELP %s ", f->name);
	for (const char *p = f->help; *p; p++) {
		if (*p == '\\')
			buf_appends(out, "\\\\");
		else if (*p == '\n')
			buf_appends(out, "\\n");
		else
			buf_appendc(out, *p);
	}
	buf_printf(out, "\n# TYPE %s %s\n", f->name, kinds[f->kind]);
}

void
metrics_render(struct buf *out)
{
	uint32_t n;

	if (T == NULL)
		return;
	n = atomic_load_explicit(&T->nseries, memory_order_acquire);
	for (size_t fi = 0; fi < nfamilies; fi++) {
		render_head(out, families[fi]);
		for (uint32_t i = 0; i < n; i++)
			if (T->series[i].family == fi)
				render_series(out, families[fi], &T->series[i]);
	}
}
