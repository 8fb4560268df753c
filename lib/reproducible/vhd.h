/* Fixed VHD: the raw disk followed by a 512-byte footer (Microsoft
 * "Virtual Hard Disk Image Format Specification" 1.0; all fields
 * big-endian).
 *
 * Azure wants a fixed VHD whose virtual size is a whole number of MiB.
 * The footer's CHS geometry is computed with the specification's algorithm
 * and cannot express most such sizes exactly, so readers that trust CHS
 * (Virtual PC; qemu for creator apps "vpc " and "qemu") see a smaller disk.
 * We write creator application "win " (Hyper-V), host OS "Wi2k": qemu's
 * block/vpc.c then takes current_size, as Hyper-V and Azure do.
 *
 * Timestamp: seconds since 2000-01-01 00:00:00 UTC, from SOURCE_DATE_EPOCH
 * (earlier epochs clamp to 0).  Unique id: 16 bytes from the build seed. */
#ifndef AZL_REPRODUCIBLE_VHD_H
#define AZL_REPRODUCIBLE_VHD_H

#include <stdint.h>

#include "base/err.h"

#define AZL_VHD_FOOTER_SIZE 512u
#define AZL_VHD_EPOCH 946684800 /* 2000-01-01T00:00:00Z as a Unix time */
#define AZL_VHD_TYPE_FIXED 2u

struct azl_vhd_footer {
	uint64_t original_size, current_size;
	uint32_t timestamp;      /* VHD time */
	char creator_app[5];     /* NUL-terminated */
	uint32_t creator_version;
	uint32_t creator_os;
	uint16_t cylinders;
	uint8_t heads, sectors;  /* sectors per track */
	uint32_t disk_type;
	uint32_t checksum;
	unsigned char uuid[16];
};

/* The specification's CHS algorithm (appendix "CHS calculation"). */
void azl_vhd_chs(uint64_t size_bytes, uint16_t *cylinders, uint8_t *heads,
		 uint8_t *sectors);
/* Unix time -> VHD time (clamped to 0..UINT32_MAX). */
uint32_t azl_vhd_time(int64_t unix_time);
/* One's complement of the byte sum, checksum field excluded. */
uint32_t azl_vhd_checksum(const unsigned char footer[AZL_VHD_FOOTER_SIZE]);

/* Footer of a fixed disk of size_bytes. */
void azl_vhd_footer_render(uint64_t size_bytes, int64_t unix_time,
			   const unsigned char uuid[16],
			   unsigned char out[AZL_VHD_FOOTER_SIZE]);

/* Decode and validate a footer: cookie, checksum, version, fixed type,
 * data offset, geometry equal to azl_vhd_chs(current_size).  Problems are
 * AZL_ERR_INPUT naming the field. */
int azl_vhd_footer_parse(const unsigned char in[AZL_VHD_FOOTER_SIZE],
			 struct azl_vhd_footer *f, struct azl_err *err);

/* Validate a fixed VHD file: footer as above, file size == current_size +
 * 512, and the copy some writers keep at offset 0 is not required. */
int azl_vhd_check_file(const char *path, struct azl_vhd_footer *f,
		       struct azl_err *err);

#endif
