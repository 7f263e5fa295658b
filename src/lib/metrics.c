/*
 * metrics: placeholder of i13-admin (see metrics.h); renders only a
 * comment line until i13-metrics' registry replaces this file.
 */
#include "metrics.h"

void
metrics_render(struct buf *out)
{
	buf_appends(out, "# indimail\n");
}
