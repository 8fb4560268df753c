/* Dependency resolution with libsolv: the manifest's repositories and
 * package list in, the locked package set out.
 *
 * No installed system: every result is a fresh install for the manifest's
 * architecture.  Pins from an earlier lockfile are favoured (kept at their
 * EVR whenever that still satisfies the request) unless freed by an update. */
#ifndef AZL_COMPOSE_SOLVE_H
#define AZL_COMPOSE_SOLVE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "compose/fetch.h"
#include "compose/lock.h"
#include "compose/manifest.h"

struct azl_solve_request {
	char *const *packages;     /* names (or provides) to install */
	size_t npackages;
	char *const *exclude;      /* fnmatch globs on name, name.arch or NEVRA */
	size_t nexclude;
	bool install_weak_deps;
	const struct azl_lock *pins; /* earlier lockfile, or NULL */
	bool update_all;           /* ignore every pin */
	char *const *update;       /* names freed from their pins */
	size_t nupdate;
};

/* A libsolv pool with repositories loaded. */
struct azl_solver;

/* arch: the target architecture ("x86_64", "aarch64", ...).  scratch_dir
 * receives metadata downloads while a repo loads (removed afterwards);
 * NULL uses $TMPDIR or /tmp.  *out freed with azl_solver_free. */
int azl_solver_new(const char *arch, const char *scratch_dir,
		   const struct azl_fetch_opts *fo, struct azl_solver **out,
		   struct azl_err *err);
void azl_solver_free(struct azl_solver *s);

/* Keep parsed primaries in dir (see azl_repo_solv_load); NULL: no cache. */
void azl_solver_set_cache_dir(struct azl_solver *s, const char *dir);

/* Fetch repomd.xml and primary of one repository and load them (primary
 * from the parsed-metadata cache when it holds the checksum repomd.xml
 * names). */
int azl_solver_add_repo(struct azl_solver *s, const char *id, const char *baseurl,
			struct azl_err *err);

/* Resolve.  On success *out is a new, sorted lock (azl_lock_free).  An
 * unresolvable request is an AZL_ERR_WORK error carrying libsolv's problem
 * text (what is missing and who needs it). */
int azl_solver_solve(struct azl_solver *s, const struct azl_solve_request *req,
		     struct azl_lock **out, struct azl_err *err);

/* The whole `lock` resolution for a manifest: load every repo, resolve
 * m->packages with pins from old (may be NULL).  cache_dir: as for
 * azl_solver_set_cache_dir.  *out as above. */
int azl_solve_manifest(const struct azl_manifest *m, const struct azl_lock *old,
		       bool update_all, char *const *update, size_t nupdate,
		       const char *cache_dir, struct azl_lock **out,
		       struct azl_err *err);

#endif
