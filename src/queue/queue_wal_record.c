/*
 * queue_wal_record: encodes and reads back the records and checkpoint
 * marks of the write-ahead segments (queue_wal.h). The reader trusts
 * nothing: a segment cut by a crash or damaged on disk ends the walk at the
 * first record whose header, length or checksum does not hold, and an id
 * is 24 upper-case hex digits before it is ever used in a path.
 */
#include <pthread.h>
#include <string.h>

#include "queue_wal.h"

#define CRC32C_POLY	0x82F63B78u

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t
crc_table_run(uint32_t crc, const unsigned char *p, size_t n)
{
	pthread_once(&crc_once, crc_init);
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* The same CRC-32C by the SSE 4.2 instruction: 8 bytes a step. */
__attribute__((target("sse4.2"))) static uint32_t
crc_sse42(uint32_t crc, const unsigned char *p, size_t n)
{
	uint64_t c = crc, w;

	for (; n >= sizeof(w); n -= sizeof(w), p += sizeof(w)) {
		memcpy(&w, p, sizeof(w));
		c = __builtin_ia32_crc32di(c, w);
	}
	crc = (uint32_t)c;
	while (n--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}

static uint32_t
crc_run(uint32_t crc, const unsigned char *p, size_t n)
{
	return __builtin_cpu_supports("sse4.2") ? crc_sse42(crc, p, n) :
	    crc_table_run(crc, p, n);
}
#else
#define crc_run crc_table_run
#endif

uint32_t
wal_crc(uint32_t crc, const void *data, size_t n)
{
	return ~crc_run(~crc, data, n);
}

static void
put_le(unsigned char *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t
get_le(const unsigned char *p, int bytes)
{
	uint64_t v = 0;

	for (int i = bytes - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

uint32_t
wal_record_crc(uint64_t len, const char *id, uint32_t pcrc)
{
	unsigned char h[WAL_LEN_BYTES + QUEUE_ID_LEN + WAL_CRC_BYTES];

	/* length, id and the payload's crc, checksummed together */
	put_le(h, len, WAL_LEN_BYTES);
	memcpy(h + WAL_LEN_BYTES, id, QUEUE_ID_LEN);
	put_le(h + WAL_LEN_BYTES + QUEUE_ID_LEN, pcrc, WAL_CRC_BYTES);
	return wal_crc(0, h, sizeof(h));
}

void
wal_header(unsigned char h[WAL_HEADER], const char *id, uint64_t len,
    uint32_t pcrc)
{
	memcpy(h, WAL_MAGIC, WAL_MAGIC_LEN);
	put_le(h + WAL_MAGIC_LEN, len, WAL_LEN_BYTES);
	memcpy(h + WAL_MAGIC_LEN + WAL_LEN_BYTES, id, QUEUE_ID_LEN);
	put_le(h + WAL_HEADER - WAL_CRC_BYTES, wal_record_crc(len, id, pcrc),
	    WAL_CRC_BYTES);
}

static int
id_valid(const unsigned char *id)
{
	for (int i = 0; i < QUEUE_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		    (id[i] >= 'A' && id[i] <= 'F')))
			return 0;
	return 1;
}

int
wal_record_parse(const unsigned char *seg, size_t n, uint64_t off,
    struct wal_record *r)
{
	const unsigned char *h = seg + off;
	uint64_t len;

	if (off > n || n - off < WAL_HEADER ||
	    memcmp(h, WAL_MAGIC, WAL_MAGIC_LEN) != 0)
		return 0;
	len = get_le(h + WAL_MAGIC_LEN, WAL_LEN_BYTES);
	if (len > n - off - WAL_HEADER ||
	    !id_valid(h + WAL_MAGIC_LEN + WAL_LEN_BYTES))
		return 0;
	memcpy(r->id, h + WAL_MAGIC_LEN + WAL_LEN_BYTES, QUEUE_ID_LEN);
	r->id[QUEUE_ID_LEN] = '\0';
	if (get_le(h + WAL_HEADER - WAL_CRC_BYTES, WAL_CRC_BYTES) !=
	    wal_record_crc(len, r->id, wal_crc(0, h + WAL_HEADER, len)))
		return 0;
	r->offset = off + WAL_HEADER;
	r->len = len;
	r->end = r->offset + len;
	return 1;
}

int
wal_dead_next(const unsigned char *d, size_t n, size_t *off,
    char id[QUEUE_ID_LEN + 1])
{
	while (*off < n) {
		const unsigned char *line = d + *off,
		    *nl = memchr(line, '\n', n - *off);
		if (nl == NULL) {	/* cut short: not a whole line */
			*off = n;
			return 0;
		}
		*off = (size_t)(nl - d) + 1;
		if (nl - line == QUEUE_ID_LEN && id_valid(line)) {
			memcpy(id, line, QUEUE_ID_LEN);
			id[QUEUE_ID_LEN] = '\0';
			return 1;
		}
	}
	return 0;
}

void
wal_mark_encode(unsigned char m[WAL_MARK_SIZE], uint64_t offset)
{
	memcpy(m, WAL_MARK_MAGIC, WAL_MAGIC_LEN);
	put_le(m + WAL_MAGIC_LEN, offset, WAL_LEN_BYTES);
	put_le(m + WAL_MAGIC_LEN + WAL_LEN_BYTES,
	    wal_crc(0, m + WAL_MAGIC_LEN, WAL_LEN_BYTES), WAL_CRC_BYTES);
}

int
wal_mark_decode(const unsigned char *m, size_t n, uint64_t *offset)
{
	if (n < WAL_MARK_SIZE || memcmp(m, WAL_MARK_MAGIC, WAL_MAGIC_LEN) != 0)
		return -1;
	if (get_le(m + WAL_MAGIC_LEN + WAL_LEN_BYTES, WAL_CRC_BYTES) !=
	    wal_crc(0, m + WAL_MAGIC_LEN, WAL_LEN_BYTES))
		return -1;
	*offset = get_le(m + WAL_MAGIC_LEN, WAL_LEN_BYTES);
	return 0;
}
