/* A compressing, hashing byte stream for layer writers.
 *
 * Bytes pushed in are hashed (SHA-256 of the uncompressed stream: an OCI
 * diff_id), compressed (none, pgzip or zstd), hashed again (the blob
 * digest) and handed to a sink, typically azl_zstream_fd_sink.  Nothing is
 * buffered beyond the compressors' own windows, so memory is bounded.
 *
 * Determinism: gzip is pgzip (same bytes for any thread count): a series
 * of gzip members, or with AZL_ZSTREAM_GZIP_ONE_MEMBER a single member for
 * readers that stop after the first (the kernel's initramfs unpacker).  zstd runs
 * libzstd's multi-threaded mode with nbWorkers >= 1 always, whose output
 * does not depend on the number of workers (single-threaded mode,
 * nbWorkers 0, cuts differently and is never used); content size and
 * dictionary id are left out of the frame, the checksum is on. */
#ifndef AZL_REPRODUCIBLE_ZSTREAM_H
#define AZL_REPRODUCIBLE_ZSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

enum azl_comp {
	AZL_COMP_NONE = 0,
	AZL_COMP_GZIP,
	AZL_COMP_ZSTD,
};

struct azl_zstream_result {
	char raw_sha256[65];  /* uncompressed stream */
	uint64_t raw_size;
	char sha256[65];      /* what reached the sink */
	uint64_t size;
};

struct azl_zstream;

#define AZL_ZSTREAM_GZIP_ONE_MEMBER 1u /* flags: gzip as one member */

/* level 0: the default (gzip 6, zstd 3); threads <= 0 means 1, more than
 * 64 are clamped.  zstd memory grows with level and threads: about 60 MB
 * at level 3 with 2 threads, 120 MB with 8, but 350 MB at level 19 with 2.  *out is
 * freed by azl_zstream_close or azl_zstream_free. */
int azl_zstream_open(enum azl_comp comp, int level, int threads, unsigned flags,
		     int (*sink)(void *ctx, const void *data, size_t len),
		     void *sink_ctx, struct azl_zstream **out,
		     struct azl_err *err);
int azl_zstream_write(struct azl_zstream *s, const void *data, size_t len,
		      struct azl_err *err);
/* Flush, fill *res (may be NULL) and free s (always). */
int azl_zstream_close(struct azl_zstream *s, struct azl_zstream_result *res,
		      struct azl_err *err);
void azl_zstream_free(struct azl_zstream *s); /* abandon; NULL is fine */

/* Sink writing to a file descriptor: ctx points to an int fd. */
int azl_zstream_fd_sink(void *ctx, const void *data, size_t len);

/* "gzip" / "zstd" / "none" <-> enum; parse returns -EINVAL on anything else. */
const char *azl_comp_name(enum azl_comp c);
int azl_comp_parse(const char *name, enum azl_comp *out);

#endif
