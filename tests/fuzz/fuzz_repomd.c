/* repomd.xml parsing (libxml2): a successful parse has a primary entry
 * with a location and a sha256 of 64 lowercase hex digits. */
#include "base/hash.h"
#include "compose/repo.h"
#include "fuzz.h"

static void repomd_check_file(const struct azl_repo_file *f, const char *what)
{
	if (f->href && (!*f->href || !azl_is_sha256_hex(f->sha256)))
		azl_fuzz_fail(what, "href without a valid sha256");
}

int azl_fuzz_repomd(const uint8_t *data, size_t size)
{
	struct azl_repo_md md = { 0 };
	struct azl_err err = { 0 };
	int rc = azl_repo_parse_repomd((const char *)data, size,
				       "file:///fuzz/repodata/repomd.xml", &md, &err);

	azl_fuzz_check_err(rc, &err, "azl_repo_parse_repomd");
	if (rc == 0) {
		if (!md.primary.href)
			azl_fuzz_fail("repomd", "success without a primary href");
		repomd_check_file(&md.primary, "repomd primary");
		repomd_check_file(&md.filelists, "repomd filelists");
	}
	azl_repo_md_release(&md);
	return 0;
}

AZL_FUZZ_ENTRY(azl_fuzz_repomd)
