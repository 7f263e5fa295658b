/*
 * queue_wal: the on-disk form of the write-ahead segments (docs/queue.md
 * "The wal backend"), shared by the writer (queue_wal.c), recovery
 * (queue_wal_recover.c) and the fuzz target. A segment <queue>/N/wal/
 * <pid>.<seq> is a sequence of records; its checkpoint mark
 * <pid>.<seq>.ck says up to which byte the records' message files are out.
 *
 *   record: "IMW1" | length (8 bytes, little endian) | id (24 hex digits)
 *           | crc (4 bytes LE) | payload
 *           crc: crc32c of length, id and the payload's crc32c (4 bytes LE)
 *   mark:   "IMC1" | offset (8 bytes LE) | crc32c (4 bytes LE) of offset
 *   dead list (<pid>.<seq>.dead, the segment backend's): a line per
 *           message done with, its id (24 hex digits) and "\n"
 *
 * The payload is exactly the mess/ file (envelope, empty line, message).
 */
#ifndef INDIMAIL_QUEUE_WAL_H
#define INDIMAIL_QUEUE_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "queue.h"

#define WAL_MAGIC		"IMW1"
#define WAL_MARK_MAGIC		"IMC1"
#define WAL_MAGIC_LEN		4
#define WAL_LEN_BYTES		8
#define WAL_CRC_BYTES		4
#define WAL_HEADER		(WAL_MAGIC_LEN + WAL_LEN_BYTES + \
				    QUEUE_ID_LEN + WAL_CRC_BYTES)
#define WAL_MARK_SIZE		(WAL_MAGIC_LEN + WAL_LEN_BYTES + WAL_CRC_BYTES)
/* A segment takes no new batch once it holds this many bytes. */
#define WAL_SEGMENT_MAX		((uint64_t)64 << 20)
/* Nor once it is this old (seconds), so that a quiet worker's segment is
 * sealed too: it can then go, or be compacted (queue_segment_compact.c). */
#define WAL_SEGMENT_AGE_S	600
#define WAL_MARK_SUFFIX		".ck"
#define WAL_DEAD_SUFFIX		".dead"

/* One record found in a segment: where its payload lies. */
struct wal_record {
	char		 id[QUEUE_ID_LEN + 1];
	uint64_t	 offset;	/* of the payload in the segment */
	uint64_t	 len;		/* of the payload */
	uint64_t	 end;		/* offset of the next record */
};

uint32_t wal_crc(uint32_t crc, const void *, size_t);
/* The header of a record whose payload has crc pcrc (wal_crc from 0). */
void	wal_header(unsigned char h[WAL_HEADER], const char *id, uint64_t len,
	    uint32_t pcrc);
/* The crc a header stores, given its length and id and the payload's. */
uint32_t wal_record_crc(uint64_t len, const char *id, uint32_t pcrc);
/*
 * The record at offset off of the n bytes of a segment: 1 and r filled, or
 * 0 when there is none there (the end, a torn or a corrupt record: nothing
 * after it is read).
 */
int	wal_record_parse(const unsigned char *seg, size_t n, uint64_t off,
	    struct wal_record *r);
void	wal_mark_encode(unsigned char m[WAL_MARK_SIZE], uint64_t offset);
/* 0 and *offset, or -1 for a mark that is short or corrupt. */
int	wal_mark_decode(const unsigned char *, size_t, uint64_t *offset);
/*
 * The next id of the n bytes of a dead list from *off: 1, id filled and
 * *off past its line; 0 at the end. A line that is not exactly an id (cut
 * by a crash, damaged) is skipped, never taken for one; so is a last line
 * without its newline.
 */
int	wal_dead_next(const unsigned char *, size_t n, size_t *off,
	    char id[QUEUE_ID_LEN + 1]);

#endif
