/* The filesystem model: every emitter (oci, vhd, flatcar) consumes this.
 *
 * An in-memory, path-indexed set of nodes holding metadata only.  File
 * contents are referenced, never held: a regular file names a file on the
 * host (an extracted object in the cache's object store, or a manifest's
 * `source:`) plus an offset, or carries small inline data the build made
 * (passwd, os-release).  Writers stream from those references, so memory
 * stays bounded whatever the image size.
 *
 * Paths are absolute, normalised ("/", "/usr", "/usr/bin/sh"), no trailing
 * slash, no "." or ".." components.  Iteration order is hierarchical: a
 * directory comes before its contents and siblings are sorted bytewise by
 * name (azl_path_cmp), the order `tar --sort=name` produces. */
#ifndef AZL_COMPOSE_FSMODEL_H
#define AZL_COMPOSE_FSMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

enum azl_ftype {
	AZL_FT_REG = 1,
	AZL_FT_DIR,
	AZL_FT_SYMLINK,
	AZL_FT_CHR,
	AZL_FT_BLK,
	AZL_FT_FIFO,
	AZL_FT_SOCK,
};

enum azl_node_flags {
	AZL_NODE_CONFIG = 1 << 0,    /* %config */
	AZL_NODE_GHOST = 1 << 1,     /* never in the model; kept for rpmdb users */
	AZL_NODE_NOREPLACE = 1 << 2, /* %config(noreplace) */
	AZL_NODE_DOC = 1 << 3,
};

struct azl_xattr {
	char *name;           /* e.g. "security.capability" */
	unsigned char *value; /* owned */
	size_t len;
};

struct azl_node {
	char *path;            /* owned; key */
	enum azl_ftype type;
	uint32_t mode;         /* permission bits only (07777) */
	uint32_t uid, gid;
	char *user, *group;    /* owned names, may be NULL (then "root") */
	int64_t mtime;
	uint64_t size;         /* regular files */
	char *link_target;     /* symlinks; owned */
	uint32_t rdev_major, rdev_minor;
	struct azl_xattr *xattrs; /* owned, sorted by name */
	size_t nxattrs;
	uint32_t hardlink_group;  /* 0: none; equal non-zero ids share an inode */
	/* Content of a regular file: data_path+data_offset (size bytes), or
	 * inline data (owned), or neither when size == 0. */
	char *data_path;
	uint64_t data_offset;
	unsigned char *data;
	char sha256[65];       /* content digest when known, else "" */
	char *owner_pkg;       /* owned NEVRA of the installing package, NULL if build-made */
	unsigned flags;        /* enum azl_node_flags */
};

struct azl_fs;

/* An empty model holding only "/" (dir 0755 root:root, mtime 0). */
struct azl_fs *azl_fs_new(void);
void azl_fs_free(struct azl_fs *fs);

/* Compare two normalised absolute paths in model order. */
int azl_path_cmp(const char *a, const char *b);

/* Node at path or NULL.  The pointer stays valid until the node is removed
 * or the model freed. */
struct azl_node *azl_fs_get(const struct azl_fs *fs, const char *path);

/* Insert a node; the model takes ownership of every owned field of *n and
 * zeroes *n.  Fails (-EEXIST) if path exists, -ENOENT if the parent is
 * missing or not a directory, -EINVAL if the path is not normalised; on
 * failure *n is left untouched and still the caller's (azl_node_release). */
int azl_fs_add(struct azl_fs *fs, struct azl_node *n, struct azl_err *err);
/* Replace or insert (used by customization). Same ownership rule.  A
 * directory replaced by a non-directory loses its contents. */
int azl_fs_put(struct azl_fs *fs, struct azl_node *n, struct azl_err *err);
/* Remove path (and, for a directory, everything below it). */
int azl_fs_remove(struct azl_fs *fs, const char *path);

/* Resolve symlinks inside the model (not the host) the way the kernel
 * would in a chroot; *out is a newly allocated normalised path (caller
 * frees).  path may be relative to "/" and contain ".", ".." (clamped at
 * "/") and repeated slashes; components missing from the model are kept
 * as they are.  -ELOOP after 40 symlinks, -ENOTDIR when a non-last
 * component is neither a directory nor a symlink.  Used to refuse payloads
 * that would escape through a symlink. */
int azl_fs_resolve(const struct azl_fs *fs, const char *path, bool follow_last,
		   char **out, struct azl_err *err);

/* Number of nodes, and the nodes in model order (the array is owned by the
 * model and valid until the next add/put/remove). */
size_t azl_fs_count(const struct azl_fs *fs);
struct azl_node *const *azl_fs_sorted(struct azl_fs *fs);

/* Free the owned fields of a node not (or no longer) in a model. */
void azl_node_release(struct azl_node *n);

/* Stream a regular file's content to fn in chunks (at most 128 KiB).  A
 * negative return from fn stops the read and is returned; err then holds a
 * message naming the node unless fn's caller filled it already. */
int azl_node_read(const struct azl_node *n,
		  int (*fn)(void *ctx, const void *data, size_t len), void *ctx,
		  struct azl_err *err);

#endif
