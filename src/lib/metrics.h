/*
 * [src/lib: generic code that knows no mail; it includes nothing outside
 * src/lib. See docs/architecture.md.]
 *
 * metrics: counters, gauges and histograms that every process shares, and
 * their Prometheus text exposition (format 0.0.4). The master maps one
 * table in anonymous shared memory before it forks (metrics_start), so the
 * workers, the queue manager and the admin process that serves /metrics
 * count into and read one set; counts survive a child's restart and a
 * reload, not a restart of the master.
 *
 * A family (name, help, kind, label names) is a static description of the
 * caller's; a series is one family with one tuple of label values, found
 * or made by metrics_get, which returns a struct metric: a pointer to its
 * cells. Counting on a struct metric is one relaxed atomic add: no lock,
 * no allocation, no formatting. Callers resolve their series once (at
 * start, or on first use with metrics_once) and keep the struct metric.
 *
 * Cardinality is bounded: the table holds METRICS_SERIES_MAX series; a
 * family with labels whose values come from outside (policy names, reply
 * codes: the `dynamic` bits) holds at most `cap` series, after which the
 * dynamic values are counted under "other". A full table counts nothing
 * more (metrics_get then returns a metric whose cell is NULL, which every
 * call here accepts), as does a process that never called metrics_start.
 */
#ifndef INDIMAIL_METRICS_H
#define INDIMAIL_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define METRIC_LABELS_MAX	4
#define METRIC_BUCKETS_MAX	16
#define METRICS_FAMILIES_MAX	64
#define METRICS_SERIES_MAX	2048
/* The label values of one series, joined, at most this long. */
#define METRICS_VALUES_MAX	120
/* What a dynamic label value becomes past its family's cap. */
#define METRICS_OTHER		"other"

enum metric_kind { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

/* The `dynamic` bit of label i. */
#define METRIC_DYNAMIC(i)	(1u << (i))

struct metric_family {
	const char	*name;		/* counters end in _total */
	const char	*help;
	enum metric_kind kind;
	const char	*labels[METRIC_LABELS_MAX];	/* NULL ends them */
	unsigned	 dynamic;	/* bit i: label i's values come from outside */
	unsigned	 cap;		/* series before "other" (dynamic only) */
	/* Histograms: bucket upper bounds in observed units, ascending,
	 * 0 ends them (+Inf is implied); unit converts an observed value to
	 * the rendered one (1e-6 for microseconds shown as seconds; 0: 1). */
	uint64_t	 bounds[METRIC_BUCKETS_MAX];
	double		 unit;
};

/* One series: cell is NULL when nothing is counted. */
struct metric {
	const struct metric_family *f;
	_Atomic uint64_t *cell;
};

/*
 * The master, once, before it forks: maps the table and registers the
 * families (rendered in this order; the array must outlive the process).
 * Every family's series without labels is made now.
 */
void	metrics_start(const struct metric_family *const *families, size_t n);
/* Unmaps the table (tests; the children keep their mapping). Every
 * struct metric resolved before is invalid after it. */
void	metrics_stop(void);
/*
 * The series of f for values (one per label, NULL when f has none): found
 * without a lock, made under the table's lock when new. A value past the
 * family's cap or too long is counted under "other".
 */
struct metric metrics_get(const struct metric_family *f,
	    const char *const *values);

/* *m, resolved by metrics_get the first time (m: the caller's static). */
static inline struct metric
metrics_once(struct metric *m, const struct metric_family *f,
    const char *const *values)
{
	if (m->cell == NULL)
		*m = metrics_get(f, values);
	return *m;
}

static inline void
metric_add(struct metric m, uint64_t n)
{
	if (m.cell)
		atomic_fetch_add_explicit(m.cell, n, memory_order_relaxed);
}

static inline void
metric_inc(struct metric m)
{
	metric_add(m, 1);
}

/* A gauge's value. */
void	metric_set(struct metric m, int64_t v);
/* One observation of a histogram, in the family's observed units. */
void	metric_observe(struct metric m, uint64_t v);
/* Appends the whole exposition (text/plain; version=0.0.4) to out. */
void	metrics_render(struct buf *out);

#endif
