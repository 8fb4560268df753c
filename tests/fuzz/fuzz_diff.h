/* The diff readers (OCI archive, tar, JSON, SHA256SUMS, VHD footer, GPT,
 * ext4 through libext2fs, vfat) over one input: side a is the input, side
 * b the same bytes with the last one changed, so the digests differ and
 * diff descends through every level of both sides (the last byte of a
 * tar, a VHD or a GPT disk is padding or reserved).  Both report formats
 * are rendered too.  Shared by fuzz_diff_oci.c and fuzz_diff_disk.c, which
 * differ only in their seeds. */
#ifndef AZL_FUZZ_DIFF_H
#define AZL_FUZZ_DIFF_H

#include "compose/diff.h"
#include "fuzz.h"

static inline int azl_fuzz_diff(const uint8_t *data, size_t size)
{
	struct azl_diff_opts o = { 0 };
	struct azl_diff_result res;
	struct azl_err err = { 0 };
	const char *a = azl_fuzz_file("a.img", data, size), *b;
	uint8_t *copy = azl_xmalloc(size + 1);
	char *text, *json;
	int rc;

	memcpy(copy, data, size);
	if (size)
		copy[size - 1] ^= 0x01;
	else
		copy[size++] = 0;
	b = azl_fuzz_file("b.img", copy, size);
	free(copy);
	rc = azl_diff_paths(a, b, &o, &res, &err);
	azl_fuzz_check_err(rc, &err, "azl_diff_paths");
	if (rc == 0 && res.total == 0)
		azl_fuzz_fail("diff", "two different files reported identical");
	if (res.nitems > res.total)
		azl_fuzz_fail("diff", "more items than differences");
	text = azl_diff_format_text(&res);
	json = azl_diff_format_json(&res);
	free(text);
	free(json);
	azl_diff_result_release(&res);
	return 0;
}

#endif
