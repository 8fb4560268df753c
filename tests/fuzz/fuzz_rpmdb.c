/* inspect's rpm sqlite database reader (the package list of a disk's
 * root): sqlite, then librpm's headerImport on every blob. */
#include "compose/inspect.h"
#include "fuzz.h"

int azl_fuzz_rpmdb(const uint8_t *data, size_t size)
{
	const char *path = azl_fuzz_file("inspect-rpmdb.sqlite", data, size);
	struct azl_err err = { 0 };
	char **pkgs = NULL;
	size_t n = 0;
	int rc = azl_inspect_rpmdb(path, &pkgs, &n, &err);

	azl_fuzz_check_err(rc, &err, "azl_inspect_rpmdb");
	for (size_t i = 0; i < n; i++) {
		if (!pkgs[i])
			azl_fuzz_fail("inspect rpmdb", "a NULL NEVRA");
		if (i && strcmp(pkgs[i - 1], pkgs[i]) > 0)
			azl_fuzz_fail("inspect rpmdb", "NEVRAs not sorted");
	}
	for (size_t i = 0; i < n; i++)
		free(pkgs[i]);
	free(pkgs);
	return 0;
}

AZL_FUZZ_ENTRY(azl_fuzz_rpmdb)
