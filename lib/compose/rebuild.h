/* azl-compose rebuild: build again from NAME.build.json and compare.
 *
 * The record holds the manifest and lockfile texts, SOURCE_DATE_EPOCH and
 * where it came from, the seed and the output digests.  rebuild writes the
 * two texts as NAME.yaml and NAME.lock.json into a fresh work folder, runs
 * the build there with --locked semantics (from the cache, fetching what is
 * missing unless offline), then compares every recorded output, the record
 * itself and SHA256SUMS byte for byte with the files in DIR.  Files in DIR
 * that the record does not name (signatures) are ignored.
 *
 * Manifest paths: repository URLs and gpgkey paths are absolute in the
 * manifest text or resolved against its folder; files.source is read from
 * the host.  A manifest with relative paths needs source_dir (the folder it
 * was built from, or a copy): each entry of it is linked into the work
 * folder beside NAME.yaml, so relative paths resolve as they did. */
#ifndef AZL_COMPOSE_REBUILD_H
#define AZL_COMPOSE_REBUILD_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "compose/diff.h"

struct azl_rebuild_opts {
	const char *dir;         /* output folder holding NAME.build.json */
	const char *record;      /* NULL: the one *.build.json in dir */
	const char *cache_dir;   /* NULL: the default cache */
	const char *source_dir;  /* NULL: the manifest uses absolute paths only */
	const char *tmp_dir;     /* parent of the work folder; NULL: /tmp */
	bool offline;            /* no network: everything must be cached */
	bool keep;               /* keep the work folder even when all matched */
	int jobs;                /* 0: online cores; never changes an output */
	struct azl_diff_opts diff;
	/* Stage progress of the inner build, may be NULL. */
	void (*on_stage)(void *ctx, const char *stage, const char *detail);
	void *ctx;
};

struct azl_rebuild_file {
	char *name;                  /* file name in DIR */
	bool match;
	struct azl_diff_result diff; /* filled when !match */
};

struct azl_rebuild_report {
	char *name;             /* manifest name */
	char *work_dir;         /* the work folder; NULL once removed */
	struct azl_rebuild_file *files; /* in record order, then record, sums */
	size_t nfiles, nmismatch;
};

/* Rebuild and compare.  Returns 0 when the comparison ran (nmismatch says
 * whether it matched) or a negative code with err set.  rep is zeroed
 * first; release it always.  On a mismatch the work folder is kept and
 * named in rep->work_dir. */
int azl_rebuild(const struct azl_rebuild_opts *o, struct azl_rebuild_report *rep,
		struct azl_err *err);
void azl_rebuild_report_release(struct azl_rebuild_report *rep);

#endif
