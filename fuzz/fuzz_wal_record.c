/*
 * fuzz_wal_record: the reader of the wal backend's segments and marks
 * (src/queue/queue_wal_record.c), as recovery reads them after a crash:
 * any bytes, a torn tail, a damaged record. Invariants: the walk never
 * reads outside the input and always moves forward; every record it
 * accepts has a well-formed id and encodes back to the very header it was
 * read from; a mark that decodes encodes back to the same bytes; the
 * same bytes read as a dead list give only ids, each a whole line of them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/queue/queue_wal.h"

#define check(x) do { if (!(x)) abort(); } while (0)

static void
check_record(const uint8_t *data, size_t size, uint64_t off,
    const struct wal_record *r)
{
	unsigned char h[WAL_HEADER];

	check(r->offset == off + WAL_HEADER && r->end == r->offset + r->len);
	check(r->end <= size && strlen(r->id) == QUEUE_ID_LEN);
	for (int i = 0; i < QUEUE_ID_LEN; i++)
		check(strchr("0123456789ABCDEF", r->id[i]) != NULL);
	wal_header(h, r->id, r->len, wal_crc(0, data + r->offset, r->len));
	check(memcmp(h, data + off, WAL_HEADER) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wal_record r;
	unsigned char m[WAL_MARK_SIZE];
	uint64_t off = 0, mark;
	char id[QUEUE_ID_LEN + 1];

	while (wal_record_parse(data, size, off, &r)) {
		check_record(data, size, off, &r);
		check(r.end > off);
		off = r.end;
	}
	for (size_t d = 0, before = 0; wal_dead_next(data, size, &d, id);
	    before = d) {
		check(d > before && d <= size && data[d - 1] == '\n');
		check(d - before > QUEUE_ID_LEN && strlen(id) == QUEUE_ID_LEN);
		check(memcmp(data + d - 1 - QUEUE_ID_LEN, id, QUEUE_ID_LEN) == 0);
		for (int i = 0; i < QUEUE_ID_LEN; i++)
			check(strchr("0123456789ABCDEF", id[i]) != NULL);
	}
	if (wal_mark_decode(data, size, &mark) == 0) {
		wal_mark_encode(m, mark);
		check(memcmp(m, data, WAL_MARK_SIZE) == 0);
	}
	return 0;
}
