/* What a build says about itself for security teams, beside its outputs:
 *   NAME.spdx.json        SPDX 2.3 JSON SBOM: every installed package with
 *                         name, version, arch, license, supplier, repo, the
 *                         rpm's sha256 and a pkg:rpm purl
 *   NAME.provenance.json  in-toto Statement v1 with a SLSA provenance v1
 *                         predicate: subject = the outputs, resolved
 *                         dependencies = the lockfile and every rpm
 * Both are canonical JSON (sorted keys, two-space indent, trailing newline)
 * with no host state: created = SOURCE_DATE_EPOCH, the document namespace
 * comes from the build digest, SPDXIDs from package name and arch.  The
 * build lists both in SHA256SUMS, so its signature covers them. */
#ifndef AZL_SIGN_SBOM_H
#define AZL_SIGN_SBOM_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "compose/lock.h"
#include "compose/record.h"

#define AZL_BUILD_TYPE "https://azl-compose.dev/buildtypes/image/v1"
#define AZL_BUILDER_ID "https://azl-compose.dev/builder/azl-compose"

struct azl_sbom_input {
	const char *name;                 /* manifest name */
	const struct azl_lock *lock;
	const char *const *pkg_paths;     /* the rpm of lock->pkgs[i], lock order */
	int64_t source_date_epoch;
	const char *manifest_path;        /* as given to build (recorded) */
	const char *manifest_sha256;
	const char *lock_sha256;
	const char *tool_version;
	const struct azl_output_file *outputs; /* hashed; the subject */
	size_t noutputs;
};

/* sha256 over manifest digest, lock digest, SOURCE_DATE_EPOCH and the
 * outputs' names and digests: names this build's result. hex: 65 bytes. */
void azl_build_digest(const struct azl_sbom_input *in, char hex[65]);

/* The SPDX text; *json caller frees. */
int azl_sbom_json(const struct azl_sbom_input *in, char **json, struct azl_err *err);
/* Write dir/NAME.spdx.json atomically; *file_name (caller frees) its name. */
int azl_sbom_write(const char *dir, const struct azl_sbom_input *in,
		   char **file_name, struct azl_err *err);

/* The provenance text; *json caller frees. */
int azl_provenance_json(const struct azl_sbom_input *in, char **json, struct azl_err *err);
/* Write dir/NAME.provenance.json atomically; *file_name caller frees. */
int azl_provenance_write(const char *dir, const struct azl_sbom_input *in,
			 char **file_name, struct azl_err *err);

/* One package as an SBOM lists it ("name-[epoch:]version-release.arch"
 * and the rpm's sha256), for comparing with a lockfile. */
struct azl_sbom_pkg {
	char *nevra;
	char sha256[65];
};

/* Read the packages of an SPDX file this module wrote.  *pkgs owned by the
 * caller (azl_sbom_pkgs_free). */
int azl_sbom_read_packages(const char *path, struct azl_sbom_pkg **pkgs,
			   size_t *n, struct azl_err *err);
void azl_sbom_pkgs_free(struct azl_sbom_pkg *pkgs, size_t n);

/* purl of a locked package: pkg:rpm/REPO/NAME@VERSION-RELEASE?arch=A[&epoch=E].
 * Caller frees. */
char *azl_rpm_purl(const struct azl_lock_pkg *p);

#endif
