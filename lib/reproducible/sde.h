/* The build's one time source, SOURCE_DATE_EPOCH.
 *
 * Precedence: the manifest's source_date_epoch, else the environment's
 * SOURCE_DATE_EPOCH, else the newest BUILDTIME among the locked packages.
 * Nothing else in lib/ may read the clock for an output. */
#ifndef AZL_REPRODUCIBLE_SDE_H
#define AZL_REPRODUCIBLE_SDE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

enum azl_sde_origin {
	AZL_SDE_MANIFEST = 1,
	AZL_SDE_ENV,
	AZL_SDE_PACKAGES,
};

/* env_value: getenv("SOURCE_DATE_EPOCH") or NULL.  A malformed environment
 * value is bad input (exit 2) naming the variable.  newest_buildtime < 0
 * means unknown; with no source at all the result is 0 (1970-01-01). */
int azl_sde_resolve(bool has_manifest_value, int64_t manifest_value,
		    const char *env_value, int64_t newest_buildtime,
		    int64_t *out, enum azl_sde_origin *origin,
		    struct azl_err *err);

/* RFC 3339 UTC ("2023-11-14T22:13:20Z"); no locale or TZ. */
void azl_sde_rfc3339(int64_t t, char out[64]);

const char *azl_sde_origin_name(enum azl_sde_origin o);

#endif
