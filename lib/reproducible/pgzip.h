/* Parallel deterministic gzip, in one of two forms.
 *
 * The input is cut into fixed blocks by byte offset alone (never by how the
 * caller chunks its writes), each compressed on its own by a worker, and the
 * results written in order.  A block's bytes depend only on its input (and
 * dictionary) and the level, so the output is the same for every thread
 * count.
 *
 * AZL_PGZIP_MEMBERS (layers): each 256 KiB block is a whole gzip member,
 * deflated by libdeflate, which is about 3x faster than zlib at level 6
 * and compresses slightly better; the cost is no dictionary across blocks
 * (under 1 % here) and 18 bytes of framing per block.  RFC 1952 defines a
 * gzip file as a series of members, and gzip, pigz, Go's compress/gzip
 * (docker, podman, skopeo, containerd), Python and libarchive read them
 * all, as they read bgzip's files.
 *
 * AZL_PGZIP_ONE_MEMBER (pigz's scheme, for readers that stop after the
 * first member, such as the kernel's initramfs unpacker): 128 KiB blocks
 * raw-deflated by zlib, each primed with the previous block's last 32 KiB
 * as dictionary and ended with Z_SYNC_FLUSH (the last with Z_FINISH),
 * concatenated into one member with the CRC-32s joined by crc32_combine.
 * libdeflate cannot do this: it has no dictionary and always ends its
 * stream with a final block.
 *
 * Header (every member): no name, mtime 0, XFL as gzip sets it for the
 * level, OS byte 3 (Unix) -- what `gzip -n` writes on Linux, so nothing of
 * the host's clock or OS reaches the bytes beyond that fixed value. */
#ifndef AZL_REPRODUCIBLE_PGZIP_H
#define AZL_REPRODUCIBLE_PGZIP_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define AZL_PGZIP_BLOCK (128u * 1024)        /* AZL_PGZIP_ONE_MEMBER */
#define AZL_PGZIP_MEMBER_BLOCK (256u * 1024) /* AZL_PGZIP_MEMBERS */
#define AZL_PGZIP_OS_BYTE 3
#define AZL_PGZIP_MAX_THREADS 64

struct azl_pgzip;

enum azl_pgzip_form {
	AZL_PGZIP_MEMBERS = 0,
	AZL_PGZIP_ONE_MEMBER,
};

/* level 1..9 (0: 6); threads <= 1 compresses in the caller's thread, more
 * than AZL_PGZIP_MAX_THREADS are clamped.
 * Compressed bytes go to sink, in order, from the caller's thread; a
 * negative return from sink fails the stream.  *out is freed by
 * azl_pgzip_finish or azl_pgzip_free. */
int azl_pgzip_new(enum azl_pgzip_form form, int level, int threads,
		  int (*sink)(void *ctx, const void *data, size_t len),
		  void *sink_ctx, struct azl_pgzip **out, struct azl_err *err);
int azl_pgzip_write(struct azl_pgzip *z, const void *data, size_t len,
		    struct azl_err *err);
/* Compress what is left, write the trailer, and free z (always). */
int azl_pgzip_finish(struct azl_pgzip *z, struct azl_err *err);
/* Abandon a stream (waits for its threads); NULL is fine. */
void azl_pgzip_free(struct azl_pgzip *z);

#endif
