/* What a build leaves beside its outputs: SHA256SUMS (sha256sum's format,
 * sorted by name, so `sha256sum -c SHA256SUMS` checks it) and
 * NAME.build.json, the record a rebuild starts from (manifest and lockfile
 * text, SOURCE_DATE_EPOCH, seed, tool version, output digests).  Both are
 * canonical: sorted keys, fixed formatting, no host state. */
#ifndef AZL_COMPOSE_RECORD_H
#define AZL_COMPOSE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct azl_output_file {
	char *name;      /* file name inside the output directory */
	char sha256[65];
	uint64_t size;
};

struct azl_build_record {
	const char *name;            /* manifest name */
	const char *tool_version;
	const char *manifest_text;   /* bytes of the manifest */
	const char *manifest_sha256;
	const char *lock_text;       /* bytes of the lockfile */
	const char *lock_sha256;
	int64_t source_date_epoch;
	const char *sde_origin;
	const char *seed_hex;
	const char *const *skipped_scriptlets; /* "NEVRA %post" lines, may be NULL */
	size_t nskipped;
	const struct azl_output_file *outputs;
	size_t noutputs;
};

/* Hash dir/name for each entry (fills sha256 and size). */
int azl_output_files_hash(const char *dir, struct azl_output_file *files,
			  size_t n, struct azl_err *err);

/* Write dir/SHA256SUMS atomically over files (sorted by name). */
int azl_sha256sums_write(const char *dir, const struct azl_output_file *files,
			 size_t n, struct azl_err *err);

/* Canonical JSON text of the record; caller frees. */
char *azl_build_record_json(const struct azl_build_record *r);

/* Write path atomically with azl_build_record_json's text. */
int azl_build_record_write(const char *path, const struct azl_build_record *r,
			   struct azl_err *err);

#endif
