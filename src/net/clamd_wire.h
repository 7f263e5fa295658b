/*
 * [src/net: network plumbing on the loop (TLS, DNS, connection counts);
 * it includes only src/lib and src/mail. See docs/architecture.md.]
 *
 * clamd_wire: the bytes of clamd's INSTREAM command (clamd(8)): the
 * "zINSTREAM\0" command, each chunk's 4-byte big-endian length, and the
 * reply, which ends at a NUL: "stream: OK", "stream: <Name> FOUND" or
 * "<text> ERROR". Pure: no I/O, fuzzed by fuzz/fuzz_clamd_reply.c.
 */
#ifndef INDIMAIL_CLAMD_WIRE_H
#define INDIMAIL_CLAMD_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/buf.h"

/* The command, with its NUL (the 'z' form: replies end at a NUL too). */
#define CLAMD_INSTREAM		"zINSTREAM"
#define CLAMD_INSTREAM_LEN	(sizeof(CLAMD_INSTREAM))
/* The data of one chunk at most (clamd reads any size up to its
 * StreamMaxLength; 64 KiB keeps each write small). */
#define CLAMD_CHUNK_MAX		(64 * 1024)
/* A reply longer than this without its NUL is not clamd's. */
#define CLAMD_REPLY_MAX		1024
/* The longest virus name or error text kept (the rest is cut). */
#define CLAMD_TEXT_MAX		200

enum clamd_verdict { CLAMD_CLEAN, CLAMD_VIRUS, CLAMD_ERROR };

/* Writes a chunk's length prefix (network byte order) into out[0..4). */
void	clamd_chunk_header(uint32_t len, unsigned char out[4]);

/*
 * The length of the reply at p (up to its NUL, not counting it), or -1
 * while no NUL is in p[0..n).
 */
long	clamd_reply_end(const char *p, size_t n);

/*
 * Reads one reply of n bytes (without its NUL; a trailing newline is
 * ignored). CLAMD_VIRUS sets text to the name, CLAMD_ERROR to what went
 * wrong; both keep printable ASCII only (others become '?'), at most
 * CLAMD_TEXT_MAX bytes, so the text may go into an SMTP reply or a log.
 */
enum clamd_verdict clamd_reply_parse(const char *p, size_t n, struct buf *text);

#endif
