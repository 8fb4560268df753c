/* The lockfile: NAME.lock.json, canonical JSON (sorted keys, two-space
 * indent, trailing newline), packages sorted by name then arch, so the
 * same inputs give the same bytes.
 *
 * {"version": 1,
 *  "repos": [{"id", "baseurl", "repomd_sha256"}],
 *  "packages": [{"name", "epoch", "version", "release", "arch", "repo",
 *                "location", "checksum": "sha256:<hex>", "size"}]} */
#ifndef AZL_COMPOSE_LOCK_H
#define AZL_COMPOSE_LOCK_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct azl_lock_repo {
	char *id;
	char *baseurl;
	char repomd_sha256[65];
};

struct azl_lock_pkg {
	char *name;
	uint32_t epoch;
	char *version;
	char *release;
	char *arch;
	char *repo;      /* id of a repo in azl_lock.repos */
	char *location;  /* relative to the repo's baseurl */
	char sha256[65]; /* hex, without the "sha256:" prefix */
	uint64_t size;
};

struct azl_lock {
	struct azl_lock_repo *repos;
	size_t nrepos;
	struct azl_lock_pkg *pkgs;
	size_t npkgs;
};

/* Read and validate (AZL_ERR_INPUT naming the file and the field on any
 * malformed content).  *out owned by the caller (azl_lock_free). */
int azl_lock_read(const char *path, struct azl_lock **out, struct azl_err *err);
/* Sort packages and write atomically (nothing at path unless complete). */
int azl_lock_write(const char *path, struct azl_lock *lock, struct azl_err *err);
/* The canonical text that azl_lock_write writes; caller frees. */
char *azl_lock_to_json(struct azl_lock *lock);
void azl_lock_sort(struct azl_lock *lock);
void azl_lock_free(struct azl_lock *lock);
/* "name-[epoch:]version-release.arch"; caller frees. */
char *azl_lock_pkg_nevra(const struct azl_lock_pkg *p);
const struct azl_lock_repo *azl_lock_find_repo(const struct azl_lock *lock,
					       const char *id);

#endif
