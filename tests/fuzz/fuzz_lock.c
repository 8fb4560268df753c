/* The lockfile reader (jansson), and the canonical form: a lockfile that
 * reads must write text that reads back to the same text. */
#include "compose/lock.h"
#include "fuzz.h"

static void lock_roundtrip(struct azl_lock *lock)
{
	struct azl_lock *again = NULL;
	struct azl_err err = { 0 };
	char *text = azl_lock_to_json(lock), *text2;
	const char *path = azl_fuzz_file("canonical.lock.json", text, strlen(text));

	if (azl_lock_read(path, &again, &err) < 0)
		azl_fuzz_fail("the canonical lockfile does not read back", err.msg);
	text2 = azl_lock_to_json(again);
	if (strcmp(text, text2))
		azl_fuzz_fail("lockfile round trip changed the text", text2);
	free(text);
	free(text2);
	azl_lock_free(again);
}

int azl_fuzz_lock(const uint8_t *data, size_t size)
{
	const char *path = azl_fuzz_file("img.lock.json", data, size);
	struct azl_lock *lock = NULL;
	struct azl_err err = { 0 };
	int rc = azl_lock_read(path, &lock, &err);

	azl_fuzz_check_err(rc, &err, "azl_lock_read");
	if (rc == 0) {
		for (size_t i = 0; i < lock->npkgs; i++) {
			char *nevra = azl_lock_pkg_nevra(&lock->pkgs[i]);
			if (!azl_lock_find_repo(lock, lock->pkgs[i].repo))
				azl_fuzz_fail("package names an unknown repo", nevra);
			free(nevra);
		}
		lock_roundtrip(lock);
	}
	azl_lock_free(lock);
	return 0;
}

AZL_FUZZ_ENTRY(azl_fuzz_lock)
