/* azl-compose fetch: download the locked packages into the cache. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "cmd.h"
#include "compose/cache.h"
#include "compose/fetch.h"
#include "compose/lock.h"
#include "compose/manifest.h"
#include "compose/packages.h"

extern const struct azl_cmd azl_cmd_fetch;

struct fetch_args {
	const char *manifest;
	const char *cache_dir;
	bool offline;
	bool verify_cache;
	int jobs;
	struct azl_global g;
};

/* Progress shown on a terminal: one line redrawn at most ten times a
 * second.  Package lines come from worker threads, hence the lock. */
struct progress {
	pthread_mutex_t mu;
	bool tty;
	const struct azl_global *g;
	int64_t last_ms;
	bool drawn;
};

static int parse_args(int argc, char **argv, struct fetch_args *a)
{
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (!strcmp(s, "--offline"))
			a->offline = true;
		else if (!strcmp(s, "--verify-cache"))
			a->verify_cache = true;
		else if (!strcmp(s, "-q") || !strcmp(s, "--quiet"))
			a->g.verbose = -1;
		else if (!strcmp(s, "-v") || !strcmp(s, "--verbose"))
			a->g.verbose = a->g.verbose < 0 ? 1 : a->g.verbose + 1;
		else if (!strcmp(s, "--cache-dir") || !strcmp(s, "-j") ||
			 !strcmp(s, "--jobs")) {
			if (i + 1 >= argc)
				return azl_cmd_usage_error(&azl_cmd_fetch, "%s needs a value", s);
			if (s[1] == 'j' || s[2] == 'j') {
				if (azl_cmd_parse_jobs(argv[++i], &a->jobs) < 0)
					return azl_cmd_usage_error(&azl_cmd_fetch, "%s: '%s' is not "
								   "a number from 1 to 256", s, argv[i]);
			} else {
				a->cache_dir = argv[++i];
			}
		} else if (!strncmp(s, "-j", 2) && s[2]) {
			if (azl_cmd_parse_jobs(s + 2, &a->jobs) < 0)
				return azl_cmd_usage_error(&azl_cmd_fetch, "-j: '%s' is not a "
							   "number from 1 to 256", s + 2);
		} else if (s[0] == '-')
			return azl_cmd_usage_error(&azl_cmd_fetch, "unknown option '%s'", s);
		else if (!a->manifest)
			a->manifest = s;
		else
			return azl_cmd_usage_error(&azl_cmd_fetch, "unexpected argument '%s'", s);
	}
	if (!a->manifest && !a->verify_cache)
		return azl_cmd_usage_error(&azl_cmd_fetch, "missing MANIFEST");
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void clear_bar(struct progress *p)
{
	if (p->drawn)
		fputs("\r\033[K", stderr);
	p->drawn = false;
}

static void on_progress(void *ctx, uint64_t done, uint64_t total,
			size_t items, size_t nitems)
{
	struct progress *p = ctx;
	char bar[31];
	int64_t t = now_ms();
	size_t fill;

	if (!p->tty || p->g->verbose < 0 || (t - p->last_ms < 100 && items < nitems))
		return;
	pthread_mutex_lock(&p->mu);
	p->last_ms = t;
	fill = total ? (size_t)(30 * (done > total ? total : done) / total) : 0;
	memset(bar, '#', fill);
	memset(bar + fill, ' ', 30 - fill);
	bar[30] = '\0';
	fprintf(stderr, "\r[%s] %zu/%zu packages  %.1f/%.1f MiB", bar, items,
		nitems, done / 1048576.0, total / 1048576.0);
	p->drawn = true;
	pthread_mutex_unlock(&p->mu);
}

static void on_package(void *ctx, const struct azl_lock_pkg *pkg,
		       enum azl_pkg_event ev, const char *msg)
{
	struct progress *p = ctx;
	char *nevra;

	/* Failures are listed together at the end. */
	if (ev == AZL_PKG_FAILED || ev == AZL_PKG_MISSING)
		return;
	if (p->g->verbose < 0 || (p->tty && p->g->verbose < 1))
		return;
	nevra = azl_lock_pkg_nevra(pkg);
	pthread_mutex_lock(&p->mu);
	clear_bar(p);
	fprintf(stderr, "%s %s\n", ev == AZL_PKG_CACHED ? "cached " : "fetched", nevra);
	pthread_mutex_unlock(&p->mu);
	free(nevra);
}

static int load_inputs(const char *path, struct azl_manifest **m,
		       struct azl_lock **lock, struct azl_err *err)
{
	char *lock_path = NULL;
	int r = azl_manifest_load(path, m, err);

	if (r < 0)
		return r;
	lock_path = azl_manifest_lock_path(*m);
	if (access(lock_path, F_OK) < 0 && errno == ENOENT)
		r = azl_err_input(err, "%s: no lockfile; run 'azl-compose lock %s' "
				  "first", lock_path, path);
	else
		r = azl_lock_read(lock_path, lock, err);
	free(lock_path);
	return r;
}

static int do_fetch(const struct fetch_args *a, struct azl_cache *c,
		    struct azl_err *err)
{
	struct azl_manifest *m = NULL;
	struct azl_lock *lock = NULL;
	struct azl_fetch_opts fo;
	struct progress prog = { .mu = PTHREAD_MUTEX_INITIALIZER, .tty = isatty(2),
				 .g = &a->g };
	struct azl_packages_cb cb = { on_package, &prog };
	struct azl_packages_stats st = { 0 };
	int r;

	r = load_inputs(a->manifest, &m, &lock, err);
	if (r < 0)
		goto out;
	azl_fetch_opts_init(&fo);
	if (a->jobs)
		fo.parallel = a->jobs;
	fo.progress = on_progress;
	fo.progress_ctx = &prog;
	r = azl_packages_fetch(m, lock, c, &fo, a->offline, &cb, &st, err);
	clear_bar(&prog);
	if (r == 0)
		azl_cmd_log(&a->g, 0, "%zu packages ready in %s (%zu fetched, "
			    "%.1f MiB; %zu cached)\n", lock->npkgs, azl_cache_dir(c),
			    st.fetched, st.fetched_bytes / 1048576.0, st.cached);
out:
	azl_lock_free(lock);
	azl_manifest_free(m);
	return r;
}

static int run(int argc, char **argv, const struct azl_global *g)
{
	struct fetch_args a = { .g = *g };
	struct azl_cache *c = NULL;
	struct azl_warm_up *warm;
	struct azl_err err = { 0 };
	int r;

	if (azl_cmd_wants_help(&azl_cmd_fetch, argc, argv))
		return 0;
	r = parse_args(argc, argv, &a);
	if (r)
		return r;
	warm = a.manifest ? azl_packages_warm_up() : NULL;
	r = azl_cache_open(a.cache_dir, &c, &err);
	if (r == 0 && a.manifest)
		r = do_fetch(&a, c, &err);
	if (r == 0 && a.verify_cache) {
		r = azl_cache_check(c, &err);
		if (r == 0)
			azl_cmd_log(&a.g, 0, "cache %s: consistent\n", azl_cache_dir(c));
	}
	azl_packages_warm_up_join(warm);
	azl_cache_close(c);
	return r < 0 ? azl_cmd_fail(&err) : 0;
}

const struct azl_cmd azl_cmd_fetch = {
	"fetch", "download the locked packages into the cache",
	"Usage: azl-compose fetch MANIFEST [--cache-dir DIR] [--offline] [-j N]\n"
	"                         [--verify-cache] [-q|-v]\n"
	"       azl-compose fetch --verify-cache [--cache-dir DIR]\n"
	"\n"
	"Downloads every package of NAME.lock.json (beside the manifest) into the\n"
	"content-addressed cache, checking size and sha256 against the lockfile\n"
	"and, for repositories with gpgcheck on, the OpenPGP signature against\n"
	"that repository's gpgkey.  A package failing a check never enters the\n"
	"cache.\n"
	"\n"
	"Options:\n"
	"  --cache-dir DIR  cache location (default $XDG_CACHE_HOME/azl-compose,\n"
	"                   else ~/.cache/azl-compose)\n"
	"  --offline        use only the cache; list every missing package\n"
	"  -j, --jobs N     parallel downloads (default 8)\n"
	"  --verify-cache   afterwards (or alone) check every cached blob against\n"
	"                   its digest and the index (sqlite integrity_check)\n"
	"  -q, -v           quieter / one line per package even on a terminal\n"
	"\n"
	"Environment (mainly for tests): AZL_FETCH_RETRIES (default 4),\n"
	"AZL_FETCH_BACKOFF_MS (first retry delay, doubled each time; 200),\n"
	"AZL_FETCH_STALL_S (abort a transfer stalled this long; 20),\n"
	"AZL_FETCH_CONNECT_TIMEOUT_S (15).\n"
	"\n"
	"Exit status: 0 all packages cached and verified, 1 a download or check\n"
	"failed (or, with --offline, packages are missing), 2 bad usage, manifest\n"
	"or missing lockfile.\n",
	run,
};
