/* The manifest loader (YAML -> struct azl_manifest), with the invariants
 * manifest.h promises on success checked. */
#include <string.h>

#include "compose/manifest.h"
#include "fuzz.h"

static void manifest_check(const struct azl_manifest *m)
{
	char *lock;

	if (!m->name || !*m->name || strspn(m->name, "abcdefghijklmnopqrstuvwxyz0123456789._-") != strlen(m->name))
		azl_fuzz_fail("manifest name outside [a-z0-9._-]+", m->name);
	if (!m->arch)
		azl_fuzz_fail("manifest arch", "NULL after a successful load");
	for (size_t i = 0; i < m->nrepos; i++) {
		const char *u = m->repos[i].baseurl;
		if (!u || !*u || u[strlen(u) - 1] != '/')
			azl_fuzz_fail("repo baseurl does not end in '/'", u);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(m->repos[i].id, m->repos[j].id))
				azl_fuzz_fail("duplicate repo id accepted", m->repos[i].id);
	}
	lock = azl_manifest_lock_path(m);
	if (!lock || !strstr(lock, ".lock.json"))
		azl_fuzz_fail("lock path", lock);
	free(lock);
}

int azl_fuzz_manifest(const uint8_t *data, size_t size)
{
	struct azl_manifest *m = NULL;
	struct azl_err err = { 0 };
	int rc = azl_manifest_parse("/nonexistent/azl-fuzz/img.yaml", (const char *)data,
				    size, &m, &err);

	azl_fuzz_check_err(rc, &err, "azl_manifest_parse");
	if (rc == 0)
		manifest_check(m);
	azl_manifest_free(m);
	return 0;
}

AZL_FUZZ_ENTRY(azl_fuzz_manifest)
