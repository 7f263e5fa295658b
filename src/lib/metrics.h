/*
 * [src/lib: generic code that knows no mail; it includes nothing outside
 * src/lib. See docs/architecture.md.]
 *
 * metrics: the Prometheus text exposition of indimail's metrics registry.
 * Placeholder of i13-admin so that /metrics builds; i13-metrics owns the
 * real registry (shared memory mapped by the master) and this file.
 */
#ifndef INDIMAIL_METRICS_H
#define INDIMAIL_METRICS_H

#include "buf.h"

/* Appends the whole exposition (text/plain; version=0.0.4) to out. */
void	metrics_render(struct buf *out);

#endif
