/* The fetch stage: every locked package present and verified in the cache.
 *
 * Used by `fetch` and, later, `build`.  A package enters the cache only
 * after its size and sha256 match the lockfile and, when its repository has
 * gpgcheck on, its OpenPGP signature verifies against that repository's
 * gpgkey alone.  Packages already cached are re-hashed (a damaged blob is
 * dropped and downloaded again) and signature-checked again, so a blob
 * cached from a gpgcheck-off repository is not trusted later. */
#ifndef AZL_COMPOSE_PACKAGES_H
#define AZL_COMPOSE_PACKAGES_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "compose/cache.h"
#include "compose/fetch.h"
#include "compose/lock.h"
#include "compose/manifest.h"

/* What happened to one package, reported as soon as it is known. */
enum azl_pkg_event {
	AZL_PKG_CACHED,     /* already in the cache (and verified) */
	AZL_PKG_FETCHED,    /* downloaded, verified, inserted */
	AZL_PKG_FAILED,     /* msg says why: names NEVRA, URL, what */
	AZL_PKG_MISSING,    /* offline and not in the cache */
};

struct azl_packages_cb {
	/* One call at a time, possibly from a worker thread; msg NULL unless
	 * FAILED/MISSING. */
	void (*on_package)(void *ctx, const struct azl_lock_pkg *p,
			   enum azl_pkg_event ev, const char *msg);
	void *ctx;
};

struct azl_packages_stats {
	size_t cached, fetched, failed, missing;
	uint64_t fetched_bytes;
};

/* Bring every package of lock into c.  fopts NULL = defaults; cb and stats
 * may be NULL.  offline: use only the cache; each absent package is a
 * failure.  Returns 0 when all are present and verified; otherwise err
 * lists every failure (one a line) and the kind is AZL_ERR_WORK, or
 * AZL_ERR_INPUT when the manifest and lock disagree (a locked repo missing
 * from the manifest). */
int azl_packages_fetch(const struct azl_manifest *m, const struct azl_lock *lock,
		       struct azl_cache *c, const struct azl_fetch_opts *fopts,
		       bool offline, const struct azl_packages_cb *cb,
		       struct azl_packages_stats *stats, struct azl_err *err);

/* Start libcurl's and librpm's process-wide initialisation (~2 ms: TLS
 * libraries, rpm's macro files) on a thread of its own, so that it runs
 * while the caller opens the cache and reads its inputs instead of before
 * the first download.  Both happen once per process: azl_packages_fetch
 * waits for the thread's work rather than repeating it.  Returns a handle
 * for azl_packages_warm_up_join, NULL when no thread could start (the
 * fetch then initialises as before). */
struct azl_warm_up;
struct azl_warm_up *azl_packages_warm_up(void);
/* Wait for the thread and free w (NULL is fine). */
void azl_packages_warm_up_join(struct azl_warm_up *w);

#endif
