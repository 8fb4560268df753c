/* The image's rpm database: /var/lib/rpm/rpmdb.sqlite as rpm >= 4.16 reads it.
 *
 * Each package's header is re-read from its .rpm with librpm (signature
 * tags merged as rpmReadPackageFile does), given the tags rpm adds at
 * install (INSTPREFIXES, FILESTATES, INSTALLTID, INSTALLTIME, INSTALLCOLOR)
 * and stored with the same tables, index keys and insertion order as rpm's
 * sqlite backend (lib/backend/sqlite.c, lib/rpmdb.c tag2index).  Install
 * time is the caller's (SOURCE_DATE_EPOCH), never the clock, so the same
 * packages in the same order give a byte-identical file.
 *
 * The file is written under a temporary name beside db_path and renamed
 * only on commit.  It is left in rollback-journal mode (rpm switches it to
 * WAL the first time it opens it read-write), so read-only readers never
 * need to create -wal/-shm files next to it. */
#ifndef AZL_COMPOSE_RPMDB_H
#define AZL_COMPOSE_RPMDB_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* rpm's per-file install states (RPMFILE_STATE_*), stored in FILESTATES. */
enum azl_rpmdb_fstate {
	AZL_RPMDB_FILE_NORMAL = 0,       /* installed; rpm records %ghost files so too */
	AZL_RPMDB_FILE_REPLACED = 1,
	AZL_RPMDB_FILE_NOTINSTALLED = 2, /* skipped: excluded docs/langs, install_langs */
	AZL_RPMDB_FILE_NETSHARED = 3,
	AZL_RPMDB_FILE_WRONGCOLOR = 4,
};

struct azl_rpmdb_pkg {
	const char *rpm_path; /* the package file; its header is re-read */
	/* One enum azl_rpmdb_fstate per file, in header order (the order of
	 * RPMTAG_BASENAMES, i.e. rpmfi index), or NULL for all normal. */
	const unsigned char *fstates;
	size_t nfstates;
};

/* rpm's %_transaction_color on x86_64 and aarch64. */
#define AZL_RPMDB_COLOR_DEFAULT 3

struct azl_rpmdb;

/* Start a database that will become db_path (its directory must exist).
 * install_time is stored as INSTALLTIME and INSTALLTID of every package.
 * On success *out is owned by the caller: end it with azl_rpmdb_commit()
 * or azl_rpmdb_abort(). */
int azl_rpmdb_open(struct azl_rpmdb **out, const char *db_path,
		   int64_t install_time, struct azl_err *err);

/* Install color stored as INSTALLCOLOR (default AZL_RPMDB_COLOR_DEFAULT). */
void azl_rpmdb_set_color(struct azl_rpmdb *db, uint32_t color);

/* Add one package; call in install order (it gets the next record number,
 * the order `rpm -qa` lists).  Errors name the package file. */
int azl_rpmdb_add(struct azl_rpmdb *db, const struct azl_rpmdb_pkg *pkg,
		  struct azl_err *err);

/* Write the database as it stands (every package added so far) to path,
 * atomically, for a scriptlet sandbox: rpm adds a package to its database
 * before running its %post, and scriptlets may query it.  Snapshots end
 * the running sqlite transaction, so the final file depends on where they
 * were taken: take them at the same points (they are, for the same lock)
 * and the result stays byte-identical. */
int azl_rpmdb_snapshot(struct azl_rpmdb *db, const char *path,
		       struct azl_err *err);

/* Finish, fsync and rename onto db_path.  Always frees db. */
int azl_rpmdb_commit(struct azl_rpmdb *db, struct azl_err *err);

/* Drop the temporary file and free db.  Safe with NULL. */
void azl_rpmdb_abort(struct azl_rpmdb *db);

/* The whole thing in one call: pkgs in install order. */
int azl_rpmdb_write(const char *db_path, const struct azl_rpmdb_pkg *pkgs,
		    size_t n, int64_t install_time, struct azl_err *err);

struct azl_fs;

/* Put a committed database file into the image model as
 * DBPATH/rpmdb.sqlite (dbpath e.g. "/var/lib/rpm", resolved through the
 * model's symlinks as rpm would inside the image): a regular file 0644
 * root:root with content read from db_file, mtime `mtime` (the build's
 * SOURCE_DATE_EPOCH); directories missing on the way are made 0755
 * root:root with the same mtime.  db_file must stay until the emitters
 * have run. */
int azl_rpmdb_to_model(struct azl_fs *fs, const char *db_file,
		       const char *dbpath, int64_t mtime, struct azl_err *err);

/* The database's table names in rpm's order ("Packages" first), for
 * tests and tools.  n receives the count; the array is static. */
const char *const *azl_rpmdb_tables(size_t *n);

#endif
