/* Parallel deterministic gzip (pigz's scheme).
 *
 * The input is cut into fixed 128 KiB blocks by byte offset alone (never by
 * how the caller chunks its writes).  Each block is raw-deflated on its own,
 * primed with the previous block's last 32 KiB as dictionary and ended with
 * Z_SYNC_FLUSH (the last one with Z_FINISH); the pieces are concatenated in
 * order into one gzip member and the CRC-32s joined with crc32_combine.  A
 * block's bytes depend only on its input, its dictionary and the level, so
 * the output is the same for every thread count, and any gzip reads it.
 *
 * Header: no name, mtime 0, XFL as gzip sets it for the level, OS byte 3
 * (Unix) -- what `gzip -n` writes on Linux, so nothing of the host's
 * clock or OS reaches the bytes beyond that fixed value. */
#ifndef AZL_REPRODUCIBLE_PGZIP_H
#define AZL_REPRODUCIBLE_PGZIP_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define AZL_PGZIP_BLOCK (128u * 1024)
#define AZL_PGZIP_OS_BYTE 3
#define AZL_PGZIP_MAX_THREADS 64

struct azl_pgzip;

/* level 1..9 (0: 6); threads <= 1 compresses in the caller's thread, more
 * than AZL_PGZIP_MAX_THREADS are clamped.
 * Compressed bytes go to sink, in order, from the caller's thread; a
 * negative return from sink fails the stream.  *out is freed by
 * azl_pgzip_finish or azl_pgzip_free. */
int azl_pgzip_new(int level, int threads,
		  int (*sink)(void *ctx, const void *data, size_t len),
		  void *sink_ctx, struct azl_pgzip **out, struct azl_err *err);
int azl_pgzip_write(struct azl_pgzip *z, const void *data, size_t len,
		    struct azl_err *err);
/* Compress what is left, write the trailer, and free z (always). */
int azl_pgzip_finish(struct azl_pgzip *z, struct azl_err *err);
/* Abandon a stream (waits for its threads); NULL is fine. */
void azl_pgzip_free(struct azl_pgzip *z);

#endif
