/* ext4 emitter: the filesystem model (or a subtree of it) -> an ext4
 * filesystem image file, written in-process with libext2fs: no mount, no
 * loop device, no root, no staging copy of the tree on the host.
 *
 * Features (Debian 12's mke2fs.conf ext4 set, minus nothing, plus nothing
 * newer): has_journal ext_attr resize_inode dir_index filetype extent 64bit
 * flex_bg(16) sparse_super large_file huge_file dir_nlink extra_isize
 * metadata_csum (crc32c).  Not used: orphan_file, metadata_csum_seed,
 * inline_data, casefold, encrypt (older kernels and GRUB stay happy).
 * read_only drops the journal and sets RO_COMPAT read-only (for a
 * dm-verity /usr).  Block size 4096, inode size 256, signed dirhash
 * half_md4, default mount options user_xattr,acl, errors=continue, no
 * periodic fsck.
 *
 * The image file is sparse: nothing that should read back as zero is
 * written (inode tables, journal, all-zero file blocks: those stay holes in
 * the image and, inside ext4, all-zero blocks of a file are holes too).
 * It is written beside out_path and renamed only when complete.
 *
 * Determinism: every byte is a function of the model and opts.  UUID and
 * hash seed come from opts (derive them with azl_seed_uuid /
 * azl_seed_derive: "ext4-uuid:<name>", "ext4-hash-seed:<name>"), every
 * timestamp the filesystem makes (superblock mkfs/write/mount/check times,
 * lost+found, journal, resize inode) is opts->mtime, inodes are allocated
 * in model order, and libext2fs' allocators are deterministic for the same
 * sequence of calls.  Each node gets atime = ctime = mtime = crtime = its
 * model mtime, nanoseconds 0.
 *
 * Directories are linear, as `mkfs.ext4 -d` writes them (no htree even
 * with dir_index set; the kernel and e2fsck accept that).  They are
 * written here as whole blocks once all their entries are known, not with
 * ext2fs_link, which rescans the directory for every entry.  Directory
 * blocks are built in host byte order: little-endian hosts only (x86_64,
 * aarch64).
 *
 * Size: size_bytes = 0 picks the minimum plus a tenth (at least 8 MiB),
 * whole MiB; the minimum comes from an estimate of the content blocks and
 * inodes (an eighth spare) plus the metadata libext2fs itself lays out for
 * that geometry, and is checked to fit with about 1% slack to spare. */
#ifndef AZL_COMPOSE_EMIT_EXT4_H
#define AZL_COMPOSE_EMIT_EXT4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "compose/fsmodel.h"

/* Borrowed pointers.  A zeroed struct plus uuid, hash_seed and mtime is a
 * valid root filesystem of computed size. */
struct azl_ext4_opts {
	uint64_t size_bytes;        /* image size; 0: min size + margin, MiB-rounded */
	const char *label;          /* volume label, <= 16 bytes; NULL: none */
	unsigned char uuid[16];     /* filesystem UUID */
	unsigned char hash_seed[16];/* directory hash seed */
	int64_t mtime;              /* SOURCE_DATE_EPOCH, must be > 0 */
	const char *root;           /* model subtree written as "/"; NULL: "/" */
	/* Model paths left out with everything below them. */
	const char *const *exclude;
	size_t nexclude;
	/* Optional predicate: true leaves the node (and, for a directory,
	 * everything below it) out.  Called in model order, once per pass
	 * (sizing, writing): it must answer the same each time. */
	bool (*exclude_fn)(void *ctx, const struct azl_node *n);
	void *exclude_ctx;
	bool read_only;             /* RO_COMPAT read-only, no journal */
	bool no_journal;
	unsigned reserved_percent;  /* blocks reserved for root, 0..50 */
	uint32_t inode_ratio;       /* bytes per inode; 0: 16384 (mke2fs) */
};

struct azl_ext4_result {
	uint64_t size_bytes;   /* image file size */
	uint64_t min_bytes;    /* what azl_ext4_min_size reported */
	uint64_t blocks;       /* ext4 blocks (4096 bytes) */
	uint64_t free_blocks;
	uint32_t inodes;
	uint32_t free_inodes;
	uint64_t data_bytes;   /* file content bytes streamed in */
};

/* Smallest image size (a multiple of 1 MiB) azl_emit_ext4 accepts for the
 * selected part of the model with these opts (size_bytes is ignored).  It
 * is an estimate with about 1% slack, checked by writing real trees at
 * exactly this size; should it ever fall short, the write fails ("the
 * filesystem is full") and leaves no image.  Bad opts are AZL_ERR_INPUT. */
int azl_ext4_min_size(struct azl_fs *fs, const struct azl_ext4_opts *o,
		      uint64_t *bytes, struct azl_err *err);

/* The size azl_emit_ext4 gives the image: size_bytes, or when 0 the
 * minimum plus a margin (a tenth, at least 8 MiB) in whole MiB; *min (if
 * not NULL) gets what azl_ext4_min_size reports, from the same estimate.
 * A size_bytes below the minimum is AZL_ERR_INPUT, as for azl_emit_ext4. */
int azl_ext4_image_size(struct azl_fs *fs, const struct azl_ext4_opts *o,
			uint64_t *bytes, uint64_t *min, struct azl_err *err);

/* Write the filesystem image to out_path (mode 0644).  A size_bytes below
 * the minimum is AZL_ERR_INPUT naming both sizes in MiB.  res may be NULL. */
int azl_emit_ext4(struct azl_fs *fs, const struct azl_ext4_opts *o,
		  const char *out_path, struct azl_ext4_result *res,
		  struct azl_err *err);

/* Write the filesystem into the existing file path at byte offset (a disk
 * image's partition), the same bytes azl_emit_ext4 would write to a file
 * of its own; size_bytes must be set, and the file must already reach
 * offset + size_bytes.  Blocks never written stay holes.  On failure the
 * range holds partial content: the caller discards the file. */
int azl_emit_ext4_at(struct azl_fs *fs, const struct azl_ext4_opts *o,
		     const char *path, uint64_t offset,
		     struct azl_ext4_result *res, struct azl_err *err);

#endif
