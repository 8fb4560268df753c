/* primary.xml (plain, gz, xz or zstd: libsolv picks by suffix, so the
 * harness names the file after the input's magic) into a libsolv repo,
 * then through the parsed-metadata cache: what azl_repo_solv_save writes,
 * azl_repo_solv_load must read back to the same packages. */
#include <solv/pool.h>
#include <solv/repo.h>
#include <solv/repo_rpmmd.h>

#include "compose/repo.h"
#include "fuzz.h"

static const char *primary_name(const uint8_t *d, size_t n)
{
	if (n >= 2 && d[0] == 0x1f && d[1] == 0x8b)
		return "primary.xml.gz";
	if (n >= 6 && !memcmp(d, "\xfd" "7zXZ\0", 6))
		return "primary.xml.xz";
	if (n >= 4 && !memcmp(d, "\x28\xb5\x2f\xfd", 4))
		return "primary.xml.zst";
	return "primary.xml";
}

/* NEVRAs of repo, one per line; caller frees. */
static char *primary_nevras(Repo *repo)
{
	struct azl_buf b = AZL_BUF_INIT;
	Solvable *s;
	Id p;

	FOR_REPO_SOLVABLES(repo, p, s)
		azl_buf_addf(&b, "%s\n", pool_solvable2str(repo->pool, s));
	return azl_buf_detach(&b);
}

/* Save repo to the cache and load it into a second repo: same packages. */
static void primary_roundtrip(Pool *pool, Repo *repo, const char *nevras)
{
	struct azl_repo_md md = { 0 };
	const char *dir = azl_fuzz_path("solv");
	Repo *back = repo_create(pool, "back");
	char *path, *again;

	memset(md.primary.sha256, 'a', 64);
	azl_repo_solv_save(repo, dir, &md);
	if (azl_repo_solv_load(back, dir, &md) != 1)
		azl_fuzz_fail("solv cache", "a saved repo does not load");
	again = primary_nevras(back);
	if (strcmp(again, nevras))
		azl_fuzz_fail("solv cache round trip changed the packages", again);
	path = azl_xasprintf("%s/%s-%s.solv", dir, md.primary.sha256, LIBSOLV_VERSION_STRING);
	unlink(path);
	free(path);
	free(again);
	repo_free(back, 1);
}

int azl_fuzz_primary(const uint8_t *data, size_t size)
{
	const char *path = azl_fuzz_file(primary_name(data, size), data, size);
	struct azl_err err = { 0 };
	Pool *pool = pool_create();
	Repo *repo;
	char *nevras;
	int rc;

	pool_setarch(pool, "x86_64");
	repo = repo_create(pool, "fuzz");
	rc = azl_repo_add_rpmmd(repo, path, 0, "repo fuzz: primary", &err);
	azl_fuzz_check_err(rc, &err, "azl_repo_add_rpmmd");
	repo_internalize(repo);
	if (rc == 0) {
		pool_createwhatprovides(pool);
		nevras = primary_nevras(repo);
		primary_roundtrip(pool, repo, nevras);
		free(nevras);
	}
	pool_free(pool);
	return 0;
}

AZL_FUZZ_ENTRY(azl_fuzz_primary)
