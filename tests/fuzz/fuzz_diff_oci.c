/* azl-compose diff's readers, seeded with OCI archives and tars; see fuzz_diff.h. */
#include "fuzz_diff.h"

int azl_fuzz_diff_oci(const uint8_t *data, size_t size)
{
	return azl_fuzz_diff(data, size);
}

AZL_FUZZ_ENTRY(azl_fuzz_diff_oci)
