/* A deterministic newc ("070701") cpio writer, the initramfs format.
 *
 * Entries are streamed to a sink through azl_zstream (none, gzip or zstd:
 * what the kernel can unpack depends on its config; Debian's has all
 * three).  Every header is fixed but for what the caller gives: uid/gid
 * 0, nlink 1 (2 for directories), one mtime for all entries (the
 * SOURCE_DATE_EPOCH), inode numbers 1, 2, 3... in the order written, no
 * device numbers for the archive itself.  Paths must come in hierarchical
 * order (a directory before its contents, siblings sorted bytewise, as
 * azl_fs_sorted gives them): the writer refuses anything else, so two
 * archives of the same entries are the same bytes.  Paths are written
 * without the leading "/"; "/" itself is never written.
 *
 * File content is streamed: azl_cpio_file() declares the size,
 * azl_cpio_data() supplies exactly that many bytes in any number of
 * calls. */
#ifndef AZL_REPRODUCIBLE_CPIO_H
#define AZL_REPRODUCIBLE_CPIO_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "reproducible/zstream.h"

struct azl_cpio;

/* *out is freed by azl_cpio_close or azl_cpio_free. */
int azl_cpio_open(enum azl_comp comp, int64_t mtime,
		  int (*sink)(void *ctx, const void *data, size_t len),
		  void *sink_ctx, struct azl_cpio **out, struct azl_err *err);

/* mode: permission bits only (07777); the type comes from the call. */
int azl_cpio_dir(struct azl_cpio *c, const char *path, uint32_t mode,
		 struct azl_err *err);
int azl_cpio_symlink(struct azl_cpio *c, const char *path, const char *target,
		     struct azl_err *err);
/* A character device node (e.g. /dev/console 5:1). */
int azl_cpio_chr(struct azl_cpio *c, const char *path, uint32_t mode,
		 uint32_t major, uint32_t minor, struct azl_err *err);
int azl_cpio_file(struct azl_cpio *c, const char *path, uint32_t mode,
		  uint64_t size, struct azl_err *err);
int azl_cpio_data(struct azl_cpio *c, const void *data, size_t len,
		  struct azl_err *err);
/* A whole small file in one call. */
int azl_cpio_file_mem(struct azl_cpio *c, const char *path, uint32_t mode,
		      const void *data, size_t len, struct azl_err *err);

/* Write TRAILER!!!, flush, fill *res (may be NULL) and free c (always). */
int azl_cpio_close(struct azl_cpio *c, struct azl_zstream_result *res,
		   struct azl_err *err);
void azl_cpio_free(struct azl_cpio *c); /* abandon; NULL is fine */

/* Hierarchical order of two normalised absolute paths (<0, 0, >0). */
int azl_cpio_path_cmp(const char *a, const char *b);

#endif
