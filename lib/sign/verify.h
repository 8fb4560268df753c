/* Verification of a build's output directory (what `azl-compose verify`
 * runs): every file DIR/SHA256SUMS lists exists and matches, the
 * signature DIR/SHA256SUMS.sig of SHA256SUMS by a public key, and with a
 * lockfile the package sets of the SBOM, of the OCI layer's rpmdb and of
 * each disk's rpmdb (through compose/inspect.h) against the lockfile.
 *
 * The result is a list of checks, one per file, signature and package
 * set, in a fixed order, so a caller can print it as it likes. */
#ifndef AZL_SIGN_VERIFY_H
#define AZL_SIGN_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

struct azl_verify_opts {
	const char *dir;  /* the build's output directory */
	const char *key;  /* PEM public key or certificate */
	const char *lock; /* lockfile to compare package sets with, or NULL */
};

struct azl_verify_check {
	char *what;   /* "file img.oci.tar", "signature SHA256SUMS.sig"; owned */
	bool ok;
	char *detail; /* why it failed, or NULL; owned */
};

struct azl_verify_report {
	struct azl_verify_check *v; /* owned */
	size_t n;
};

/* Run every check on opts->dir, appending to rep (zeroed by the caller;
 * release it with azl_verify_report_release whatever the return).
 * Returns 0 when the checks could run: the build passes when
 * azl_verify_report_ok(rep) is then true.  When DIR/SHA256SUMS cannot be
 * read or is not in sha256sum's format, returns a negative code with err
 * naming the file, and rep still ends with a failing "file SHA256SUMS"
 * check saying why (so printing rep is always enough). */
int azl_verify_dir(const struct azl_verify_opts *opts, struct azl_verify_report *rep,
		   struct azl_err *err);

/* true when every check of rep passed. */
bool azl_verify_report_ok(const struct azl_verify_report *rep);

/* Free every check and zero rep.  Safe on a zeroed or released rep. */
void azl_verify_report_release(struct azl_verify_report *rep);

/* One line of SHA256SUMS. */
struct azl_verify_sum {
	char sha256[65];
	const char *name; /* points into the parsed text */
};

/* Parse sha256sum's "HEX  NAME" (text) and "HEX *NAME" (binary) lines;
 * empty lines are skipped.  text is modified in place and must outlive
 * *sums (the names point into it); *sums (the array only) is the caller's
 * to free().  A line in another form, or a NAME holding '/', is -EBADMSG
 * naming the line, with *sums NULL and *n 0. */
int azl_verify_parse_sums(char *text, struct azl_verify_sum **sums, size_t *n,
			  struct azl_err *err);

/* The installed packages of an OCI archive's image as
 * "name-[epoch:]version-release.arch" strings (gpg-pubkey entries left
 * out): index.json -> first manifest -> first layer, streamed out of the
 * archive, and only var/lib/rpm/rpmdb.sqlite copied to a private
 * temporary directory under TMPDIR, removed before returning.  *nevras
 * (each string and the array) is the caller's: azl_verify_nevras_free.
 * On error *nevras is NULL and *n 0. */
int azl_verify_oci_nevras(const char *oci_path, char ***nevras, size_t *n,
			  struct azl_err *err);

/* The same for an rpm sqlite database file (rpm >= 4.16 layout), in the
 * database's order.  Ownership as for azl_verify_oci_nevras. */
int azl_verify_rpmdb_nevras(const char *db_path, char ***nevras, size_t *n,
			    struct azl_err *err);

/* Free n strings and the array; NULL is fine. */
void azl_verify_nevras_free(char **nevras, size_t n);

#endif
