/* Installing packages into the filesystem model, as rpm would (no root,
 * nothing written on the host but content objects).
 *
 * azl_install runs in two phases:
 *  1. contents: for each package whose extraction record is missing from
 *     the object store, decompress the payload once, storing every file
 *     content as an object (or, with opts->pack_max, small ones in a pack) (several packages at once, one per core; the
 *     result does not depend on the core count).  A package with a record
 *     whose objects are all present is not decompressed at all: that is
 *     the warm path.
 *  2. metadata: in the given order, each header's files become model nodes:
 *     type and permission bits from FILEMODES, owner names, header mtimes,
 *     symlink targets, device numbers, %caps as a security.capability
 *     xattr, hardlink sets as hardlink groups, %config / %doc flags.
 *     %ghost files are not created (rpm records them only); they are
 *     listed in the result for the rpmdb.  Missing parent directories are
 *     created 0755 root:root with mtime SOURCE_DATE_EPOCH.
 *
 * Conflicts follow rpm 4.18 (rpmfilesCompare): two packages may share a
 * path when type, permission bits and owner names match (directories
 * included) and, for files and symlinks, size and content digest or
 * target (device numbers for devices); otherwise the install fails naming
 * the path and both packages.  A shared path keeps the first package's
 * node (mtime, xattrs), as rpm creates only the first instance.  %ghost
 * files never conflict.  rpm's multilib colour resolution is not done. 
 *
 * Paths are checked: absolute, no empty, "." or ".." components, and a
 * parent that resolves through a symlink in the model must not climb
 * above the image root (a kernel would clamp that in a chroot; a crafted
 * package must not rely on it).  Files are placed at the resolved path,
 * so the model never holds a path that goes through a symlink. */
#ifndef AZL_COMPOSE_INSTALL_H
#define AZL_COMPOSE_INSTALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "compose/fsmodel.h"
#include "compose/objstore.h"
#include "compose/rpmread.h"

/* Privilege policy: with deny_setuid (the manifest's repos[].allow_setuid
 * false for the package's repository), a set-user-ID or set-group-ID
 * regular file, a file with %caps, or a character or block device node is
 * an input error naming the package, the path, what it is and the
 * repository; nothing is stripped silently. */
struct azl_install_pkg {
	const char *path;   /* the .rpm file */
	const char *sha256; /* its digest (the lock's), or NULL to hash it */
	bool deny_setuid;   /* see above */
	const char *repo;   /* repository id, for messages; may be NULL */
};

struct azl_install_opts {
	int64_t sde;        /* mtime of what the build creates (SOURCE_DATE_EPOCH) */
	/* Leave uid/gid at 0 and call azl_install_resolve_owners later, e.g.
	 * after %pre scriptlets that add users. */
	bool defer_owners;
	int jobs;           /* packages extracted at once; 0 = online cores */
	/* Contents up to this many bytes go into one pack per package instead
	 * of an object each (objstore.h): a cold extraction creates far fewer
	 * files, but staging must then copy those files instead of linking
	 * objects, which costs more on every warm build.  0 = off. */
	uint32_t pack_max;
};

struct azl_installed_pkg {
	struct azl_rpm_info info; /* NEVRA, scriptlets, triggers */
	char *path;               /* the .rpm, for stages that re-read it */
	char sha256[65];
	char **ghosts;            /* %ghost paths, header order, not in the model */
	size_t nghosts;
	char **configs;           /* %config paths in the model */
	size_t nconfigs;
	size_t nfiles;            /* header file count */
	bool extracted;           /* payload decompressed in this run */
};

struct azl_install_result {
	struct azl_installed_pkg *pkgs; /* in install order */
	size_t npkgs;
	char **warnings;  /* e.g. "P: /path: user X does not exist - using root" */
	size_t nwarnings;
	size_t nextracted; /* packages decompressed (0 on a fully warm run) */
};

/* Install pkgs[0..n) in that order into fs, contents into store.
 * res is zeroed first and filled even on failure (release it always).
 * Errors name the package file or NEVRA and the path. */
int azl_install(struct azl_fs *fs, struct azl_objstore *store,
		const struct azl_install_pkg *pkgs, size_t n,
		const struct azl_install_opts *opts,
		struct azl_install_result *res, struct azl_err *err);
void azl_install_result_release(struct azl_install_result *res);

/* Map every package node's user and group names to ids through the
 * model's own /etc/passwd and /etc/group (never the host's).  A name not
 * found becomes root (id 0, name "root": what rpm leaves on disk) and
 * drops the setuid (setgid) bit, with a warning naming package, path and
 * owner appended to res->warnings, as rpm does.  Run it once, after
 * whatever adds users (azl_install does unless opts->defer_owners). */
int azl_install_resolve_owners(struct azl_fs *fs,
			       struct azl_install_result *res,
			       struct azl_err *err);

/* Check a payload path and resolve its parent in fs.  *out: where the
 * file goes (newly allocated).  Bad paths are input errors naming nevra
 * and path. */
int azl_install_check_path(const struct azl_fs *fs, const char *nevra,
			   const char *path, char **out, struct azl_err *err);

/* Order packages as rpm does: what a package requires (including
 * Requires(pre), (post), file requires) among the set comes first;
 * cycles are broken by libsolv's transaction ordering; ties go by name.
 * order receives n indexes into paths. */
int azl_install_order(const char *const *paths, size_t n, size_t *order,
		      struct azl_err *err);

#endif
