/* The build pipeline: manifest -> lock -> fetch -> assemble -> emit.
 *
 * One call runs every stage over one filesystem model, so every output
 * kind reads the same assembled tree.  Outputs are written inside a work
 * directory in the output folder and renamed onto their final names only
 * after every output is complete: a failed or killed build leaves nothing
 * at a final path. */
#ifndef AZL_COMPOSE_BUILD_H
#define AZL_COMPOSE_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "compose/packages.h"

struct azl_build_opts {
	const char *manifest_path;
	const char *out_dir;      /* default "out" */
	const char *cache_dir;    /* NULL: the default cache */
	bool locked;              /* fail if the lockfile is missing or would change */
	bool offline;             /* no network: use the lockfile and cache as they are */
	int jobs;                 /* 0: online cores; never changes an output */
	const char *env_sde;      /* getenv("SOURCE_DATE_EPOCH"), read by cmd/ */
	struct azl_packages_cb fetch_cb; /* per-package progress, may be empty */
	/* Sign SHA256SUMS at the end (lib/sign/blobsig.h), NULL: unsigned.
	 * The passphrase comes from cmd/ (env or file), never argv. */
	const char *sign_key, *sign_cert, *sign_passphrase;
	/* Stage progress ("lock", "fetch", "install", ...), may be NULL. */
	void (*on_stage)(void *ctx, const char *stage, const char *detail);
	void *ctx;
};

struct azl_build_report {
	char *name;
	char **outputs;          /* final paths written, in order */
	size_t noutputs;
	char **warnings;         /* one per line, already phrased for people */
	size_t nwarnings;
	char **skipped;          /* "NEVRA %post" not run (scriptlets: skip, lua) */
	size_t nskipped;
	size_t npackages, nextracted, nscriptlets;
	int64_t source_date_epoch;
	const char *sde_origin;
	char seed_hex[65];
	bool lock_written;       /* the lockfile was created or changed */
};

/* Run the build.  rep is zeroed first and filled as far as the build got;
 * release it always. */
int azl_build(const struct azl_build_opts *o, struct azl_build_report *rep,
	      struct azl_err *err);
void azl_build_report_release(struct azl_build_report *rep);

#endif
