/* Size strings for disk and partition sizes ("4GiB", "512MiB", "4G").
 *
 * Every unit is binary: K/KiB = 1024, M/MiB = 1024^2, G/GiB = 1024^3,
 * T/TiB = 1024^4; a plain integer (or "B" suffix) is bytes.  "4G" therefore
 * means 4 GiB, as it does for qemu-img, truncate and sfdisk.  Decimal units
 * ("GB", "MB") are refused rather than guessed.  No spaces, no fractions,
 * no sign. */
#ifndef AZL_REPRODUCIBLE_SIZE_H
#define AZL_REPRODUCIBLE_SIZE_H

#include <stdint.h>

#include "base/err.h"

/* 0 with *out in bytes, or -EINVAL (bad syntax or unit) / -ERANGE
 * (overflows 64 bits). */
int azl_parse_size(const char *s, uint64_t *out);

/* The same, reporting a bad value as AZL_ERR_INPUT naming key
 * ("outputs.vhd.size: bad size \"4GB\": ..."). */
int azl_parse_size_key(const char *key, const char *s, uint64_t *out,
		       struct azl_err *err);

#endif
