/* An in-process FAT16/FAT32 writer for EFI system partitions: a handful of
 * files (\EFI\BOOT\BOOTX64.EFI, \EFI\Linux\*.efi, loader entries) into a
 * fresh volume, with no mkfs.vfat or mtools at build time.
 *
 * The FAT type follows from the cluster count alone, as Microsoft's
 * specification defines it: volumes under 64 MiB are FAT16 (at least 4085
 * clusters, so about 2.1 MiB minimum), larger ones FAT32 with the cluster
 * sizes of Microsoft's FAT32 table (512 bytes up to 260 MiB, then 4 KiB up
 * to 8 GiB, ...).  Two FATs, media 0xF8; FAT32 has FSInfo at sector 1 and
 * the backup boot sector at 6.
 *
 * Determinism: entries are sorted bytewise by name in every directory;
 * clusters are allocated in one pass (FAT32 root first, then each
 * directory's own clusters followed by its files, contiguously, then its
 * subdirectories in order); every timestamp is spec->mtime as FAT local time
 * read as UTC (clamped to 1980..2107); the volume id comes from the caller
 * (the build seed).  Names that are valid 8.3 in one case per part get only
 * a short entry (lowercase via the NT case bits, as Windows writes them);
 * others get VFAT long-name entries and a short name BASIS~N whose N counts
 * up in sorted order.  Names are printable ASCII without "*?<>:|\\/".
 *
 * The target region must read as zeros (a fresh sparse file): only
 * metadata in use and file contents are written, so free space stays holes. */
#ifndef AZL_REPRODUCIBLE_FAT_H
#define AZL_REPRODUCIBLE_FAT_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* One file (or, with a trailing '/', an empty directory) in the volume.
 * Directories on the way are created.  Content: host_path when set
 * (streamed), else data/len.  Borrowed pointers. */
struct azl_fat_file {
	const char *path;      /* "EFI/BOOT/BOOTX64.EFI", no leading '/' needed */
	const char *host_path;
	const void *data;
	size_t len;
};

struct azl_fat_spec {
	const struct azl_fat_file *files;
	size_t nfiles;
	uint32_t volume_id;    /* e.g. 4 bytes of azl_seed_derive(.., "vfat-volume-id:esp") */
	const char *label;     /* <= 11 chars A-Z 0-9 _ - space; NULL: "NO NAME" */
	int64_t mtime;         /* SOURCE_DATE_EPOCH */
};

/* A volume size the files fit in: a multiple of 1 MiB within about 3%
 * (or 1 MiB) of the smallest. */
int azl_fat_min_size(const struct azl_fat_spec *s, uint64_t *bytes,
		     struct azl_err *err);

/* Write a volume of size bytes (a multiple of 512) into fd at offset.
 * hidden_sectors: the partition's first LBA (BPB field).  what names the
 * output in messages.  Too small a size is AZL_ERR_INPUT naming the
 * minimum; a bad name or label AZL_ERR_INPUT naming it. */
int azl_fat_write(int fd, uint64_t offset, uint64_t size,
		  uint32_t hidden_sectors, const struct azl_fat_spec *s,
		  const char *what, struct azl_err *err);

#endif
