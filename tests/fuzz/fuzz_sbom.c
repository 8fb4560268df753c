/* The SPDX reader verify compares with the lockfile: a package's sha256
 * is 64 hex digits or empty (no usable checksum: never matches a lock). */
#include "base/hash.h"
#include "fuzz.h"
#include "sign/sbom.h"

int azl_fuzz_sbom(const uint8_t *data, size_t size)
{
	const char *path = azl_fuzz_file("img.spdx.json", data, size);
	struct azl_sbom_pkg *pkgs = NULL;
	struct azl_err err = { 0 };
	size_t n = 0;
	int rc = azl_sbom_read_packages(path, &pkgs, &n, &err);

	azl_fuzz_check_err(rc, &err, "azl_sbom_read_packages");
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (!pkgs[i].nevra || (*pkgs[i].sha256 && !azl_is_sha256_hex(pkgs[i].sha256)))
			azl_fuzz_fail("sbom package without NEVRA or sha256", pkgs[i].nevra);
	azl_sbom_pkgs_free(pkgs, n);
	return 0;
}

AZL_FUZZ_ENTRY(azl_fuzz_sbom)
