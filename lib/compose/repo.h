/* Repository metadata: repomd.xml, then primary (and filelists on demand)
 * loaded into a libsolv Repo.
 *
 * Every metadata file is checked against repomd.xml's sha256 of the file as
 * stored (compressed) before it is parsed; primary may be plain, gz, xz or
 * zstd, by file suffix (libsolv's solv_xfopen; zstd through our own reader,
 * which fails on a truncated stream where libsolv's would spin). */
#ifndef AZL_COMPOSE_REPO_H
#define AZL_COMPOSE_REPO_H

#include <stddef.h>
#include <stdint.h>

#include <solv/repo.h>

#include "base/err.h"
#include "compose/fetch.h"

/* One <data> entry of repomd.xml. */
struct azl_repo_file {
	char *href;       /* relative to the baseurl; NULL when absent */
	char sha256[65];  /* of the file as stored */
	uint64_t size;    /* 0 when repomd.xml does not say */
};

struct azl_repo_md {
	char *id;
	char *baseurl;            /* ends in '/' */
	char repomd_sha256[65];   /* of the repomd.xml bytes */
	struct azl_repo_file primary;
	struct azl_repo_file filelists;
};

/* Parse repomd.xml bytes (url only names the file in messages) into the
 * primary/filelists entries of md; md->id/baseurl are left alone.  A repomd
 * without primary, or with a non-sha256 checksum, is an error. */
int azl_repo_parse_repomd(const char *xml, size_t len, const char *url,
			  struct azl_repo_md *md, struct azl_err *err);

/* Fetch and parse BASEURL/repodata/repomd.xml.  md is filled (owned by the
 * caller: azl_repo_md_release) with id and baseurl copied. */
int azl_repo_fetch_repomd(const char *id, const char *baseurl,
			  const struct azl_fetch_opts *fo, struct azl_repo_md *md,
			  struct azl_err *err);

/* Download one metadata file of md into dir, verify its sha256 against
 * repomd.xml and return its local path in *path (caller frees and unlinks).
 * what names the file in messages ("primary", "filelists"). */
int azl_repo_fetch_file(const struct azl_repo_md *md, const struct azl_repo_file *f,
			const char *what, const struct azl_fetch_opts *fo,
			const char *dir, char **path, struct azl_err *err);

/* Parse an rpm-md file (primary, or filelists with REPO_EXTEND_SOLVABLES)
 * into repo.  label names repo and file in messages. */
int azl_repo_add_rpmmd(Repo *repo, const char *path, int flags,
		       const char *label, struct azl_err *err);

/* Fetch, verify and load a repository's primary into repo (named id).
 * dir is a scratch directory for the download. */
int azl_repo_load_primary(Repo *repo, const struct azl_repo_md *md,
			  const struct azl_fetch_opts *fo, const char *dir,
			  struct azl_err *err);

/* The same for filelists (a no-op when the repo has none). */
int azl_repo_load_filelists(Repo *repo, const struct azl_repo_md *md,
			    const struct azl_fetch_opts *fo, const char *dir,
			    struct azl_err *err);

/* The parsed-metadata cache: DIR/<primary sha256>-<libsolv version>.solv,
 * libsolv's own binary form of a primary already verified against that
 * checksum, so a rerun neither downloads nor parses primary (dnf keeps the
 * same kind of cache).  Load returns 1 when repo was filled from the cache,
 * 0 when there is no usable entry (repo left empty).  Save is best effort:
 * a cache that cannot be written only costs speed. */
int azl_repo_solv_load(Repo *repo, const char *dir, const struct azl_repo_md *md);
void azl_repo_solv_save(Repo *repo, const char *dir, const struct azl_repo_md *md);

void azl_repo_md_release(struct azl_repo_md *md);

#endif
