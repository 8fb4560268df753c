/* Internal to the build pipeline: the state its stages share, so the
 * disk emitters (build_disk.c) can live in their own file.  Not a public
 * interface: only lib/compose/build*.c include it. */
#ifndef AZL_COMPOSE_BUILD_INT_H
#define AZL_COMPOSE_BUILD_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "compose/build.h"
#include "compose/cache.h"
#include "compose/fsmodel.h"
#include "compose/install.h"
#include "compose/lock.h"
#include "compose/manifest.h"
#include "compose/objstore.h"
#include "compose/record.h"
#include "compose/staging.h"
#include "reproducible/seed.h"

struct build {
	const struct azl_build_opts *o;
	struct azl_build_report *rep;
	struct azl_manifest *m;
	struct azl_lock *lock;
	char *lock_text;
	char lock_sha256[65];
	char *manifest_text;
	struct azl_cache *cache;
	struct azl_objstore *store;
	char **pkg_paths;           /* install order */
	size_t npkgs;
	struct azl_fs *fs;
	struct azl_install_result inst;
	int64_t sde;
	struct azl_seed seed;
	char *out_dir;
	char *work;                 /* out_dir/.azl-work.XXXXXX */
	int work_fd;                /* holds work's lock; -1 when none */
	struct azl_output_file *outs;
	size_t nouts;
	struct azl_staging *reap;   /* being removed by reaper, joined at the end */
	pthread_t reaper;
};

/* Report a stage to the caller's on_stage callback. */
void azl_build_stage(struct build *b, const char *name, const char *detail);
/* Add a warning to the report; takes msg. */
void azl_build_warn(struct build *b, char *msg);
/* Record an output written into b->work under name. */
void azl_build_add_output(struct build *b, const char *name);

/* The disk outputs (build_disk.c): DIR/NAME.vhd|.img and the Flatcar-style
 * DIR/NAME.flatcar.img|.vhd with its /usr payload files. */
int azl_build_emit_vhd(struct build *b, struct azl_err *err);
int azl_build_emit_flatcar(struct build *b, struct azl_err *err);

#endif
