/* azl-compose rebuild (see rebuild.h). */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/build.h"
#include "compose/rebuild.h"

struct record {
	json_t *root;
	const char *name, *manifest, *lock, *sde_from;
	json_int_t sde;
	json_t *outputs; /* {name: {sha256, size}} */
};

/* The one NAME.build.json in dir; caller frees. */
static int find_record(const char *dir, char **out, struct azl_err *err)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int r = 0;

	*out = NULL;
	if (!d)
		return azl_err_input(err, "%s: %s", dir, strerror(errno));
	/* sorted: not needed, exactly one match is accepted. */
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n <= 11 || strcmp(de->d_name + n - 11, ".build.json"))
			continue;
		if (*out) {
			r = azl_err_input(err, "%s: more than one *.build.json; name one with --record", dir);
			break;
		}
		*out = azl_path_join(dir, de->d_name);
	}
	closedir(d);
	if (r == 0 && !*out)
		r = azl_err_input(err, "%s: no NAME.build.json (not a build output folder?)", dir);
	if (r < 0) {
		free(*out);
		*out = NULL;
	}
	return r;
}

static int load_record(const char *path, struct record *rec, struct azl_err *err)
{
	json_error_t je;

	memset(rec, 0, sizeof(*rec));
	rec->root = json_load_file(path, 0, &je);
	if (!rec->root)
		return azl_err_input(err, "%s:%d: %s", path, je.line, je.text);
	rec->name = json_string_value(json_object_get(rec->root, "name"));
	rec->manifest = json_string_value(json_object_get(json_object_get(rec->root, "manifest"), "text"));
	rec->lock = json_string_value(json_object_get(json_object_get(rec->root, "lockfile"), "text"));
	rec->sde_from = json_string_value(json_object_get(rec->root, "source_date_epoch_from"));
	rec->sde = json_integer_value(json_object_get(rec->root, "source_date_epoch"));
	rec->outputs = json_object_get(rec->root, "outputs");
	if (!rec->name || !rec->manifest || !rec->lock || !rec->sde_from ||
	    !json_is_integer(json_object_get(rec->root, "source_date_epoch")) ||
	    !json_is_object(rec->outputs))
		return azl_err_input(err, "%s: not a build record (name, manifest.text, lockfile.text, "
				     "source_date_epoch, source_date_epoch_from and outputs are required)", path);
	if (strchr(rec->name, '/') || rec->name[0] == '.')
		return azl_err_input(err, "%s: bad name '%s'", path, rec->name);
	return 0;
}

/* Link every entry of src into dst, so the manifest's relative paths
 * resolve as they did beside the original. */
static int link_sources(const char *src, const char *dst, const char *name,
			struct azl_err *err)
{
	char *skip_yaml = azl_xasprintf("%s.yaml", name);
	char *skip_lock = azl_xasprintf("%s.lock.json", name);
	char *abs = realpath(src, NULL);
	DIR *d = abs ? opendir(abs) : NULL;
	struct dirent *de;
	int r = 0;

	if (!d) {
		r = azl_err_input(err, "--source-dir %s: %s", src, strerror(errno));
		goto out;
	}
	/* sorted: not needed, every entry gets a link whatever the order. */
	while (r == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, skip_yaml) || !strcmp(de->d_name, skip_lock))
			continue;
		char *from = azl_path_join(abs, de->d_name), *to = azl_path_join(dst, de->d_name);
		if (symlink(from, to) < 0)
			r = azl_errf(err, errno, "%s: %s", to, strerror(errno));
		free(from);
		free(to);
	}
	closedir(d);
out:
	free(abs);
	free(skip_yaml);
	free(skip_lock);
	return r;
}

/* work/src/NAME.yaml and NAME.lock.json, byte for byte as recorded: the
 * manifest digest feeds the seed. */
static int write_inputs(const struct azl_rebuild_opts *o, const struct record *rec,
			const char *src, char **manifest_path, struct azl_err *err)
{
	char *yaml = azl_xasprintf("%s/%s.yaml", src, rec->name);
	char *lock = azl_xasprintf("%s/%s.lock.json", src, rec->name);
	int r = azl_mkdir_p(src, err);

	if (r == 0 && o->source_dir)
		r = link_sources(o->source_dir, src, rec->name, err);
	if (r == 0)
		r = azl_write_file_atomic(yaml, rec->manifest, strlen(rec->manifest), 0644, err);
	if (r == 0)
		r = azl_write_file_atomic(lock, rec->lock, strlen(rec->lock), 0644, err);
	free(lock);
	if (r == 0)
		*manifest_path = yaml;
	else
		free(yaml);
	return r;
}

static int run_build(const struct azl_rebuild_opts *o, const struct record *rec,
		     const char *manifest_path, const char *out_dir, struct azl_err *err)
{
	struct azl_build_opts bo = {
		.manifest_path = manifest_path, .out_dir = out_dir,
		.cache_dir = o->cache_dir, .locked = true, .offline = o->offline,
		.jobs = o->jobs, .on_stage = o->on_stage, .ctx = o->ctx,
	};
	struct azl_build_report brep;
	char sde[32];

	/* The recorded epoch reaches the build the way it did the first time:
	 * through the environment only when it came from there. */
	snprintf(sde, sizeof(sde), "%" JSON_INTEGER_FORMAT, rec->sde);
	if (!strcmp(rec->sde_from, "environment"))
		bo.env_sde = sde;
	int r = azl_build(&bo, &brep, err);
	azl_build_report_release(&brep);
	if (r < 0)
		azl_err_prefix(err, "rebuild of %s", rec->name);
	return r;
}

/* A path under the work folder in the message: a relative manifest path
 * that resolved where the original folder is not. */
static void hint_source_dir(const struct azl_rebuild_opts *o, const char *src,
			    struct azl_err *err)
{
	if (o->source_dir || !strstr(err->msg, src))
		return;
	char *m = azl_xstrdup(err->msg);
	azl_err_input(err, "%s (the manifest names a path relative to its folder: "
		      "pass --source-dir with the folder it was built from)", m);
	free(m);
}

static void add_file(struct azl_rebuild_report *rep, const char *name)
{
	rep->files = azl_xrealloc(rep->files, (rep->nfiles + 1) * sizeof(*rep->files));
	rep->files[rep->nfiles++] = (struct azl_rebuild_file){ .name = azl_xstrdup(name) };
}

/* Byte for byte: equal digests of both files; a diff when they differ. */
static int compare_one(const struct azl_rebuild_opts *o, const char *out_dir,
		       struct azl_rebuild_file *f, struct azl_err *err)
{
	char *pa = azl_path_join(o->dir, f->name), *pb = azl_path_join(out_dir, f->name);
	char ha[65], hb[65];
	int r = azl_sha256_file(pa, ha, NULL, err);

	if (r == 0)
		r = azl_sha256_file(pb, hb, NULL, err);
	if (r == 0) {
		f->match = !strcmp(ha, hb);
		if (!f->match)
			r = azl_diff_paths(pa, pb, &o->diff, &f->diff, err);
	}
	free(pa);
	free(pb);
	return r;
}

static int compare_all(const struct azl_rebuild_opts *o, const struct record *rec,
		       const char *out_dir, struct azl_rebuild_report *rep,
		       struct azl_err *err)
{
	const char *key;
	json_t *v;
	int r = 0;

	json_object_foreach(rec->outputs, key, v)
		add_file(rep, key);
	char *rname = azl_xasprintf("%s.build.json", rec->name);
	add_file(rep, rname);
	add_file(rep, "SHA256SUMS");
	free(rname);
	for (size_t i = 0; r == 0 && i < rep->nfiles; i++) {
		r = compare_one(o, out_dir, &rep->files[i], err);
		rep->nmismatch += r == 0 && !rep->files[i].match;
	}
	return r;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 ? -1 : 0;
}

int azl_rebuild(const struct azl_rebuild_opts *o, struct azl_rebuild_report *rep,
		struct azl_err *err)
{
	struct record rec = { 0 };
	char *rpath = NULL, *src = NULL, *out = NULL, *manifest = NULL;
	int r;

	memset(rep, 0, sizeof(*rep));
	r = o->record ? 0 : find_record(o->dir, &rpath, err);
	if (r == 0)
		r = load_record(o->record ? o->record : rpath, &rec, err);
	if (r < 0)
		goto out;
	rep->name = azl_xstrdup(rec.name);
	rep->work_dir = azl_xasprintf("%s/azl-rebuild.XXXXXX", o->tmp_dir ? o->tmp_dir : "/tmp");
	if (!mkdtemp(rep->work_dir)) {
		r = azl_errf(err, errno, "%s: %s", rep->work_dir, strerror(errno));
		free(rep->work_dir);
		rep->work_dir = NULL;
		goto out;
	}
	src = azl_path_join(rep->work_dir, "src");
	out = azl_path_join(rep->work_dir, "out");
	r = write_inputs(o, &rec, src, &manifest, err);
	if (r == 0 && (r = run_build(o, &rec, manifest, out, err)) < 0)
		hint_source_dir(o, src, err);
	if (r == 0)
		r = compare_all(o, &rec, out, rep, err);
	/* Keep the rebuilt files when they are evidence of a mismatch. */
	if ((r < 0 || rep->nmismatch == 0) && !o->keep) {
		nftw(rep->work_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		free(rep->work_dir);
		rep->work_dir = NULL;
	}
out:
	json_decref(rec.root);
	free(rpath);
	free(src);
	free(out);
	free(manifest);
	return r;
}

void azl_rebuild_report_release(struct azl_rebuild_report *rep)
{
	for (size_t i = 0; i < rep->nfiles; i++) {
		free(rep->files[i].name);
		azl_diff_result_release(&rep->files[i].diff);
	}
	free(rep->files);
	free(rep->name);
	free(rep->work_dir);
	memset(rep, 0, sizeof(*rep));
}
