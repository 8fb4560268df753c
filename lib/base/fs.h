/* File helpers shared by every stage.
 *
 * struct azl_out is the one way outputs reach a final path: it writes to a
 * temporary name in the destination directory, remembers the first error,
 * and renames onto the final path only in azl_out_commit().  A failed or
 * killed run therefore never leaves a partial file at a final path
 * (apk-tools' io.c does the same). */
#ifndef AZL_BASE_FS_H
#define AZL_BASE_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"

struct azl_out {
	int fd;
	char *tmp_path;   /* owned */
	char *final_path; /* owned */
	int error;        /* first errno seen, 0 if none */
};

/* Open a temporary file beside final_path (mode 0644 before umask is NOT
 * applied: the file gets exactly `mode` via fchmod so host umask never
 * reaches an output). */
int azl_out_open(struct azl_out *o, const char *final_path, mode_t mode,
		 struct azl_err *err);
int azl_out_write(struct azl_out *o, const void *data, size_t len);
/* fsync + rename to the final path; on any earlier error, unlinks the
 * temporary and reports.  Always releases o. */
int azl_out_commit(struct azl_out *o, struct azl_err *err);
/* Unlink the temporary and release o.  Safe on a zeroed or released o. */
void azl_out_abort(struct azl_out *o);

/* Write a whole buffer atomically to path. */
int azl_write_file_atomic(const char *path, const void *data, size_t len,
			  mode_t mode, struct azl_err *err);

/* Read a whole (small) file.  *data is NUL-terminated, caller frees.
 * Refuses files larger than max_size (0 = 64 MiB). */
int azl_read_file(const char *path, size_t max_size, char **data, size_t *len,
		  struct azl_err *err);

/* mkdir -p with mode 0755. */
int azl_mkdir_p(const char *path, struct azl_err *err);

/* write() the whole buffer, retrying on EINTR/short writes; -errno on error. */
int azl_write_all(int fd, const void *data, size_t len);

/* Exactly len bytes at off (pread, EINTR retried): 0, -errno, or -EIO when
 * the file ends first. */
int azl_pread_all(int fd, void *buf, size_t len, uint64_t off);

/* The next data extent [*data, *hole) of fd at or after pos, within end
 * (the file's size): *data == end when only a hole is left.  Without
 * SEEK_DATA support the rest is one extent of data. */
void azl_next_data(int fd, uint64_t pos, uint64_t end, uint64_t *data,
		   uint64_t *hole);

/* Directory part of path ("." if none); caller frees. */
char *azl_dirname(const char *path);
/* Join dir and name ("name" if name is absolute); caller frees. */
char *azl_path_join(const char *dir, const char *name);

#endif
