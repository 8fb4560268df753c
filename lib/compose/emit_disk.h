/* Disk image emitter: a GPT disk of partitions described as data, written
 * as a sparse raw image or a fixed VHD (raw disk + footer), without root,
 * loop devices or a VM.
 *
 * Layout: protective MBR and primary GPT in the first MiB, partitions in
 * order from LBA 2048, each starting and ending on a 1 MiB boundary, the
 * backup GPT in the last 33 sectors (so the last MiB holds no partition).
 * Contents: an image file copied in with holes kept (SEEK_DATA/SEEK_HOLE +
 * copy_file_range), or a FAT volume written in place (reproducible/fat.h),
 * or the caller's writer run in place (an ext4 filesystem: without a
 * reflink-capable filesystem a copy is a second write of every byte), or
 * nothing.  Everything never written stays a hole.
 *
 * Determinism: GUIDs, the VHD unique id and FAT volume ids come from the
 * caller (azl_disk_layout_seed/azl_disk_part_seed derive them from the
 * build seed), the VHD timestamp from layout->mtime.  The output is written
 * beside out_path and renamed only when complete. */
#ifndef AZL_COMPOSE_EMIT_DISK_H
#define AZL_COMPOSE_EMIT_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "reproducible/fat.h"
#include "reproducible/seed.h"

#define AZL_DISK_ALIGN (1024u * 1024u)
#define AZL_DISK_REST UINT64_MAX  /* part size: whatever the disk has left */
#define AZL_DISK_MAX_PARTS 16u

enum azl_disk_format { AZL_DISK_RAW = 0, AZL_DISK_VHD };

enum azl_part_source {
	AZL_PART_EMPTY = 0,
	AZL_PART_IMAGE,    /* copy the file `image` in, sparse-aware */
	AZL_PART_FAT,      /* write a FAT volume from `fat` */
	AZL_PART_FILL,     /* fill() writes the content in place */
};

/* Writes a partition's content into the disk file path (being written,
 * not yet at its final name) at byte off, within size bytes; 0 or -errno
 * with err filled. */
typedef int (*azl_disk_fill_fn)(void *ctx, const char *path, uint64_t off,
				uint64_t size, struct azl_err *err);

/* Borrowed pointers. */
struct azl_disk_part {
	const char *label;           /* GPT partition name: "esp", "root"... */
	unsigned char type[16];      /* azl_guid_parse(AZL_GPT_TYPE_ESP, ...) */
	unsigned char uuid[16];      /* partition GUID */
	uint64_t attrs;              /* GPT attribute bits */
	unsigned number;             /* GPT entry, 1-based; 0: position + 1 */
	/* Bytes, rounded up to 1 MiB; 0: fit the content; AZL_DISK_REST:
	 * the rest of the disk (one partition at most). */
	uint64_t size;
	enum azl_part_source source;
	const char *image;           /* AZL_PART_IMAGE */
	/* AZL_PART_IMAGE, optional: a second file copied in at tail_offset
	 * (at or after the end of image), e.g. a dm-verity tree after its
	 * filesystem. */
	const char *tail_image;
	uint64_t tail_offset;
	struct azl_fat_spec fat;     /* AZL_PART_FAT (mtime: set it too) */
	azl_disk_fill_fn fill;       /* AZL_PART_FILL, with its context and */
	void *fill_ctx;
	uint64_t fill_min;           /* the bytes its content needs */
};

struct azl_disk_layout {
	uint64_t size;               /* virtual size, whole MiB; 0: fit */
	enum azl_disk_format format;
	unsigned char disk_guid[16];
	unsigned char vhd_uuid[16];  /* VHD footer unique id */
	int64_t mtime;               /* SOURCE_DATE_EPOCH: VHD timestamp */
	const struct azl_disk_part *parts;
	size_t nparts;               /* 1..AZL_DISK_MAX_PARTS */
};

struct azl_disk_result {
	uint64_t disk_size;          /* virtual size (raw bytes) */
	uint64_t file_size;          /* disk_size, + 512 for a VHD */
	uint64_t min_size;           /* smallest disk the content fits in */
	uint64_t first_lba[AZL_DISK_MAX_PARTS], last_lba[AZL_DISK_MAX_PARTS];
};

/* Disk GUID from "gpt-disk-guid", VHD id from "vhd-unique-id". */
void azl_disk_layout_seed(const struct azl_seed *s, struct azl_disk_layout *l);
/* Partition GUID from "gpt-part-uuid:<label>", FAT volume id from
 * "vfat-volume-id:<label>". */
void azl_disk_part_seed(const struct azl_seed *s, struct azl_disk_part *p);
/* Root partition type for an architecture ("x86_64", "aarch64"/"arm64");
 * unknown arch is AZL_ERR_INPUT. */
int azl_disk_root_type(const char *arch, unsigned char type[16],
		       struct azl_err *err);

/* Plan only: sizes and partition LBAs into res (no file written).  A disk
 * or partition too small for its content is AZL_ERR_INPUT saying how much
 * is needed; so is a size that is not a whole number of MiB. */
int azl_disk_plan(const struct azl_disk_layout *l, struct azl_disk_result *res,
		  struct azl_err *err);

/* Plan and write out_path (mode 0644).  res may be NULL. */
int azl_emit_disk(const struct azl_disk_layout *l, const char *out_path,
		  struct azl_disk_result *res, struct azl_err *err);

#endif
