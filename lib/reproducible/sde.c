#include "reproducible/sde.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int azl_sde_resolve(bool has_manifest_value, int64_t manifest_value,
		    const char *env_value, int64_t newest_buildtime,
		    int64_t *out, enum azl_sde_origin *origin,
		    struct azl_err *err)
{
	enum azl_sde_origin o = AZL_SDE_PACKAGES;
	int64_t t = newest_buildtime < 0 ? 0 : newest_buildtime;

	if (has_manifest_value) {
		o = AZL_SDE_MANIFEST;
		t = manifest_value;
	} else if (env_value && *env_value) {
		char *end = NULL;
		errno = 0;
		long long v = strtoll(env_value, &end, 10);
		if (errno || *end || v < 0 || env_value[0] == '-' ||
		    env_value[0] == '+' || env_value[0] == ' ')
			return azl_err_input(err,
				"environment variable SOURCE_DATE_EPOCH: '%s' is not a non-negative integer",
				env_value);
		o = AZL_SDE_ENV;
		t = v;
	}
	*out = t;
	if (origin)
		*origin = o;
	return 0;
}

void azl_sde_rfc3339(int64_t t, char out[64])
{
	struct tm tm;
	time_t tt = (time_t)t;

	gmtime_r(&tt, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

const char *azl_sde_origin_name(enum azl_sde_origin o)
{
	switch (o) {
	case AZL_SDE_MANIFEST: return "manifest";
	case AZL_SDE_ENV: return "environment";
	case AZL_SDE_PACKAGES: return "newest package BUILDTIME";
	}
	return "unknown";
}
