/* azl-compose lock: resolve the manifest into NAME.lock.json. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "cmd.h"
#include "compose/cache.h"
#include "compose/lock.h"
#include "compose/manifest.h"
#include "compose/solve.h"

extern const struct azl_cmd azl_cmd_lock;

struct lock_args {
	const char *manifest;
	bool update;        /* --update given */
	char **names;       /* --update PKG...: only these are freed */
	size_t nnames;
	const char *cache_dir; /* --cache-dir */
	bool no_cache;         /* --no-cache */
	struct azl_global g;
};

static int parse_args(int argc, char **argv, struct lock_args *a)
{
	a->names = azl_xcalloc((size_t)argc, sizeof(*a->names));
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (!strcmp(s, "--update"))
			a->update = true;
		else if (!strcmp(s, "-q") || !strcmp(s, "--quiet"))
			a->g.verbose = -1;
		else if (!strcmp(s, "-v") || !strcmp(s, "--verbose"))
			a->g.verbose = a->g.verbose < 0 ? 1 : a->g.verbose + 1;
		else if (!strcmp(s, "--no-cache"))
			a->no_cache = true;
		else if (!strcmp(s, "--cache-dir") && i + 1 < argc)
			a->cache_dir = argv[++i];
		else if (!strncmp(s, "--cache-dir=", 12))
			a->cache_dir = s + 12;
		else if (s[0] == '-')
			return azl_cmd_usage_error(&azl_cmd_lock, "unknown option '%s'", s);
		else if (!a->manifest)
			a->manifest = s;
		else if (a->update)
			a->names[a->nnames++] = argv[i];
		else
			return azl_cmd_usage_error(&azl_cmd_lock, "unexpected argument '%s'", s);
	}
	if (!a->manifest)
		return azl_cmd_usage_error(&azl_cmd_lock, "missing MANIFEST");
	return 0;
}

/* The earlier lockfile, if any.  --update with no names ignores it, so a
 * damaged lockfile can always be regenerated. */
static int read_old(const char *path, const struct lock_args *a,
		    struct azl_lock **old, struct azl_err *err)
{
	*old = NULL;
	if (a->update && !a->nnames)
		return 0;
	if (access(path, F_OK) && errno == ENOENT)
		return 0;
	return azl_lock_read(path, old, err);
}

static bool known_name(const char *name, const struct azl_lock *old,
		       const struct azl_manifest *m)
{
	for (size_t k = 0; k < old->npkgs; k++)
		if (!strcmp(old->pkgs[k].name, name))
			return true;
	for (size_t k = 0; k < m->npackages; k++)
		if (!strcmp(m->packages[k], name))
			return true;
	return false;
}

/* --update NAME must name a locked (or requested) package: a typo would
 * otherwise free nothing and look like success. */
static int check_names(const struct lock_args *a, const struct azl_lock *old,
		       const struct azl_manifest *m, const char *path,
		       struct azl_err *err)
{
	for (size_t i = 0; old && i < a->nnames; i++)
		if (!known_name(a->names[i], old, m))
			return azl_err_input(err, "--update %s: no package of that "
					     "name in %s or the manifest",
					     a->names[i], path);
	return 0;
}

/* DIR/metadata of the shared cache, for parsed primaries.  The cache only
 * saves time, so a cache that cannot be opened is skipped, not fatal. */
static char *metadata_dir(const struct lock_args *a)
{
	struct azl_cache *c = NULL;
	struct azl_err err = { 0 };
	char *dir;

	if (a->no_cache)
		return NULL;
	if (azl_cache_open(a->cache_dir, &c, &err)) {
		azl_cmd_log(&a->g, 1, "metadata cache not used: %s\n", err.msg);
		return NULL;
	}
	dir = azl_path_join(azl_cache_dir(c), "metadata");
	azl_cache_close(c);
	return dir;
}

/* Write only when the bytes differ, so an unchanged lock keeps its mtime. */
static int write_if_changed(const char *path, struct azl_lock *lock, bool *changed,
			    struct azl_err *err)
{
	char *text = azl_lock_to_json(lock), *cur = NULL;
	size_t len = 0;
	struct azl_err ignore = { 0 };
	int rc = 0;

	*changed = azl_read_file(path, 0, &cur, &len, &ignore) ||
		   len != strlen(text) || memcmp(cur, text, len);
	if (*changed)
		rc = azl_write_file_atomic(path, text, strlen(text), 0644, err);
	free(cur);
	free(text);
	return rc;
}

static void report(const struct azl_global *g, const struct azl_lock *lock,
		   const char *path, bool changed)
{
	for (size_t i = 0; i < lock->npkgs; i++) {
		char *nevra = azl_lock_pkg_nevra(&lock->pkgs[i]);
		azl_cmd_log(g, 1, "  %s (%s)\n", nevra, lock->pkgs[i].repo);
		free(nevra);
	}
	azl_cmd_log(g, 0, "%zu packages from %zu repo%s: %s %s\n", lock->npkgs,
		    lock->nrepos, lock->nrepos == 1 ? "" : "s", path,
		    changed ? "written" : "unchanged");
}

static int run(int argc, char **argv, const struct azl_global *g)
{
	struct lock_args a = { .g = *g };
	struct azl_manifest *m = NULL;
	struct azl_lock *old = NULL, *lock = NULL;
	struct azl_err err = { 0 };
	char *path = NULL, *cache = NULL;
	bool changed = false;
	int rc;

	if (azl_cmd_wants_help(&azl_cmd_lock, argc, argv)) {
		free(a.names);
		return 0;
	}
	if ((rc = parse_args(argc, argv, &a)))
		goto out;
	if (azl_manifest_load(a.manifest, &m, &err))
		goto fail;
	path = azl_manifest_lock_path(m);
	if (read_old(path, &a, &old, &err) || check_names(&a, old, m, path, &err))
		goto fail;
	cache = metadata_dir(&a);
	if (azl_solve_manifest(m, old, a.update && !a.nnames, a.names, a.nnames,
			       cache, &lock, &err))
		goto fail;
	if (write_if_changed(path, lock, &changed, &err))
		goto fail;
	report(&a.g, lock, path, changed);
	rc = 0;
	goto out;
fail:
	rc = azl_cmd_fail(&err);
out:
	azl_lock_free(lock);
	azl_lock_free(old);
	azl_manifest_free(m);
	free(path);
	free(cache);
	free(a.names);
	return rc;
}

const struct azl_cmd azl_cmd_lock = {
	"lock",
	"resolve the manifest into NAME.lock.json",
	"Usage: azl-compose lock MANIFEST [--update [PKG...]] [--cache-dir DIR]\n"
	"                        [--no-cache] [-q|-v]\n"
	"\n"
	"Reads the manifest's repositories (repomd.xml, primary), resolves its\n"
	"packages with libsolv and writes NAME.lock.json beside NAME.yaml.\n"
	"An existing lockfile keeps its pins: packages stay at their locked\n"
	"version while that still satisfies the manifest.\n"
	"\n"
	"Options:\n"
	"  --update         re-resolve everything to the newest versions\n"
	"  --update PKG...  free only these packages from their pins\n"
	"  --cache-dir DIR  the cache (default $XDG_CACHE_HOME/azl-compose or\n"
	"                   ~/.cache/azl-compose); parsed repository metadata is\n"
	"                   kept in DIR/metadata, keyed by its sha256\n"
	"  --no-cache       parse the repository metadata afresh\n"
	"  -q, --quiet      print only errors\n"
	"  -v, --verbose    list the locked packages\n"
	"  -h, --help       this text\n"
	"\n"
	"Exit status: 0 locked, 1 resolution or download failed, 2 bad usage\n"
	"or input (manifest, lockfile).\n",
	run,
};
