/* The staging tree: the image model materialised on the host so that
 * scriptlets can run against it, and their changes read back.
 *
 * Layout under WORKDIR (created, must be empty or absent):
 *   lower/   the model, read-only to scriptlets: a regular file is a hard
 *            link of its content object (data_path, offset 0, same size)
 *            when the object has the wanted owner and either the wanted
 *            mode or, both without exec/set-id/sticky bits, any mode (root
 *            in the sandbox reads and writes it regardless); else a copy
 *            (copy_file_range: a reflink where the filesystem can).
 *            Device nodes are made only by a root caller, owner-only
 *            whatever the package's mode (an empty file stands in
 *            otherwise: the sandbox mounts its own /dev)
 *   upper/   overlayfs upper dir: everything scriptlets change
 *   work/    overlayfs work dir
 *   root/    mount point of the overlay inside the sandbox
 * The overlay is mounted only inside the sandbox's user + mount namespace
 * (lib/compose/sandbox.h), so the host never sees it and scriptlets can
 * never modify a shared content object.  Several scriptlets run in turn
 * share one upper dir; azl_staging_capture() then folds it into the model.
 *
 * Package symlinks are made as they are, and their targets may point
 * anywhere on the host ("../../../../etc", "/etc"); nothing here follows
 * them.  The model holds no path through a symlink (install places files
 * at their resolved paths, the model refuses a node whose parent is not a
 * directory), lower/ is built in model order with mkdir, open(O_EXCL |
 * O_NOFOLLOW), symlink and link, and capture walks with O_NOFOLLOW and
 * looks at lower entries without following any symlink on the way.
 * Scriptlets meet the symlinks only inside the sandbox, whose root is the
 * image (tests/integration/hostile.sh writes through them).
 *
 * Ownership inside the sandbox: an unprivileged caller maps only uid/gid 0
 * to itself, so every file looks root-owned and chown to another id fails
 * (EINVAL).  A root caller maps ids 0..65535 to themselves, lower files
 * carry the model's uid/gid (ids above 65535 show as 65534), and chown
 * inside works and is captured.
 *
 * Without overlayfs in a user namespace (Linux < 5.11, some LSM policies)
 * azl_staging_create falls back to copy mode (st->overlay false): lower/
 * holds copies only (never hard links: scriptlets write it in place), the
 * sandbox binds it as the root, and capture walks the whole tree, hashing
 * what changed since materialisation (ctime at or after a stamp taken
 * then) and removing model paths that disappeared.  Slower, same result. */
#ifndef AZL_COMPOSE_STAGING_H
#define AZL_COMPOSE_STAGING_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "compose/fsmodel.h"

#define AZL_STAGING_ID_RANGE 65536u

/* Read by the sandbox; everything else should treat it as opaque. */
struct azl_staging {
	char *dir;         /* WORKDIR, absolute */
	char *lower, *upper, *work, *root;
	uint32_t id_count; /* ids mapped 1:1 from 0 (root caller), or 1 */
	uint32_t host_uid, host_gid; /* what inside uid/gid 0 is on the host */
	uint64_t nlinked, ncopied;   /* regular files hard-linked / copied */
	bool overlay;      /* false: copy mode (see above) */
	int64_t stamp_sec, stamp_nsec; /* copy mode: ctime after materialising */
};

/* Materialise fs under workdir.  *out is freed with azl_staging_destroy. */
int azl_staging_create(struct azl_fs *fs, const char *workdir,
		       struct azl_staging **out, struct azl_err *err);

/* The same, always in copy mode (tests; hosts where overlay misbehaves). */
int azl_staging_create_copy(struct azl_fs *fs, const char *workdir,
			    struct azl_staging **out, struct azl_err *err);

/* Fold what the scriptlets changed (upper/) into fs:
 *  - whiteouts remove paths, opaque directories drop their old contents;
 *  - new or changed regular files are copied into objects_dir/<sha256>
 *    (created if needed) and the node references that object;
 *  - new paths and changed contents get mtime sde; paths that existed keep
 *    their model owner, names, xattrs, flags and owning package unless a
 *    chown inside a root caller's sandbox changed the id (names then come
 *    from the image's /etc/passwd and /etc/group);
 *  - new paths are root:root for an unprivileged caller;
 *  - a file copied up without a content change keeps its mtime and
 *    content reference (only a changed mode is taken);
 *  - hard links created by scriptlets become new hardlink groups.
 * The walk is sorted, so the same changes give the same model.  Call it
 * after the last scriptlet. */
int azl_staging_capture(struct azl_staging *st, struct azl_fs *fs,
			const char *objects_dir, int64_t sde,
			struct azl_err *err);

/* Remove the trees under workdir (not workdir itself) and free st. */
void azl_staging_destroy(struct azl_staging *st);

/* rm -rf that first makes directories writable (overlay work dirs and
 * read-only image dirs are mode 0000/0555).  Missing path is not an error. */
int azl_staging_rmtree(const char *path, struct azl_err *err);

#endif
