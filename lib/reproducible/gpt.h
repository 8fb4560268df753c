/* GUID partition table writer (UEFI 2.10 chapter 5), 512-byte sectors.
 *
 * Our own ~200 lines rather than libfdisk: libfdisk generates random GUIDs
 * unless each one is overridden, aligns by the device's reported topology
 * (which for a plain file depends on the host filesystem), and writes
 * through a device abstraction we would have to fake.  Here every byte is a
 * function of struct azl_gpt: a protective MBR, the primary header and a
 * 128-entry array at LBA 1-33, the backup array and header in the last 33
 * sectors.  CRC32 comes from zlib.
 *
 * GUIDs are held as 16 bytes in the textual (big-endian field) order, as
 * azl_seed_uuid gives them; the writer converts to the on-disk mixed-endian
 * order. */
#ifndef AZL_REPRODUCIBLE_GPT_H
#define AZL_REPRODUCIBLE_GPT_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define AZL_SECTOR 512u
#define AZL_GPT_ENTRIES 128u
#define AZL_GPT_ENTRY_SIZE 128u
/* Sectors at each end: (P)MBR/backup header + 32 sectors of entries. */
#define AZL_GPT_HEAD_SECTORS 34u
#define AZL_GPT_TAIL_SECTORS 33u
#define AZL_GPT_NAME_MAX 36u /* UTF-16 code units; we take ASCII */

/* UAPI Discoverable Partitions Specification type GUIDs. */
#define AZL_GPT_TYPE_ESP "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
#define AZL_GPT_TYPE_XBOOTLDR "bc13c2ff-59e6-4262-a352-b275fd6f7172"
#define AZL_GPT_TYPE_ROOT_X86_64 "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"
#define AZL_GPT_TYPE_ROOT_ARM64 "b921b045-1df0-41c3-af44-4c6f280d3fae"
#define AZL_GPT_TYPE_LINUX_DATA "0fc63daf-8483-4772-8e79-3d69d8477de4"

struct azl_gpt_part {
	unsigned char type[16];
	unsigned char uuid[16];
	uint64_t first_lba, last_lba; /* inclusive */
	uint64_t attrs;
	const char *name;             /* ASCII, <= 36 chars; NULL: empty */
	unsigned number;              /* entry slot, 1-based (Flatcar's layout
				       * has gaps); 0: its position + 1 */
};

struct azl_gpt {
	uint64_t total_sectors;       /* the whole disk (no VHD footer) */
	unsigned char disk_guid[16];
	const struct azl_gpt_part *parts;
	size_t nparts;                /* <= AZL_GPT_ENTRIES */
};

/* Parse "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (either case).  0 or -EINVAL. */
int azl_guid_parse(const char *s, unsigned char out[16]);
/* Textual order -> on-disk mixed-endian order (and back: it is an involution). */
void azl_guid_to_disk(const unsigned char in[16], unsigned char out[16]);

/* First and last LBA a partition may use on a disk of total_sectors. */
uint64_t azl_gpt_first_usable(void);
uint64_t azl_gpt_last_usable(uint64_t total_sectors);

/* Render the table: head gets AZL_GPT_HEAD_SECTORS sectors (PMBR, header,
 * entries), tail AZL_GPT_TAIL_SECTORS (entries, backup header).  Checks
 * that partitions lie in the usable range, do not overlap and have valid
 * names (AZL_ERR_INPUT otherwise). */
int azl_gpt_render(const struct azl_gpt *g, unsigned char *head,
		   unsigned char *tail, struct azl_err *err);

/* Render and pwrite both ends of the table into fd (a disk image of at
 * least total_sectors * 512 bytes).  what names the file in messages. */
int azl_gpt_write(int fd, const char *what, const struct azl_gpt *g,
		  struct azl_err *err);

#endif
