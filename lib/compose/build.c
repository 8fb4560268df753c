/* The build pipeline (see build.h).  Each stage is one function over a
 * shared struct build; azl_build() only sequences them. */
#include "compose/build.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <rpm/rpmlib.h>
#include <rpm/rpmtag.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/cache.h"
#include "compose/customize.h"
#include "compose/emit_oci.h"
#include "compose/fsmodel.h"
#include "compose/install.h"
#include "compose/lock.h"
#include "compose/manifest.h"
#include "compose/objstore.h"
#include "compose/record.h"
#include "compose/rpmdb.h"
#include "compose/rpmread.h"
#include "compose/sandbox.h"
#include "compose/solve.h"
#include "compose/staging.h"
#include "reproducible/sde.h"
#include "reproducible/seed.h"
#include "sign/blobsig.h"
#include "sign/sbom.h"

#include "compose/build_int.h"

#define TOOL_VERSION "0.1.0"


void azl_build_stage(struct build *b, const char *name, const char *detail)
{
	if (b->o->on_stage)
		b->o->on_stage(b->o->ctx, name, detail);
}

static void strv_push(char ***v, size_t *n, char *s)
{
	*v = azl_xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = s;
}

void azl_build_warn(struct build *b, char *msg)
{
	strv_push(&b->rep->warnings, &b->rep->nwarnings, msg);
}

/* --- lock ---------------------------------------------------------------- */

static int stage_lock(struct build *b, struct azl_err *err)
{
	char *path = azl_manifest_lock_path(b->m);
	struct azl_lock *old = NULL, *fresh = NULL;
	char *fresh_text = NULL;
	size_t len = 0;
	int r = 0;
	bool exists = access(path, F_OK) == 0;

	azl_build_stage(b, "lock", path);
	if (!exists && (b->o->locked || b->o->offline)) {
		r = azl_err_input(err, "%s: no lockfile (needed by %s); run 'azl-compose lock %s' first",
				  path, b->o->locked ? "--locked" : "--offline", b->m->path);
		goto out;
	}
	if (exists && (r = azl_lock_read(path, &old, err)) < 0)
		goto out;
	if (b->o->offline) {
		b->lock = old;
		old = NULL;
	} else {
		r = azl_solve_manifest(b->m, old, false, NULL, 0, b->o->cache_dir, &fresh, err);
		if (r < 0)
			goto out;
		fresh_text = azl_lock_to_json(fresh);
		char *old_text = NULL;
		if (exists && azl_read_file(path, 0, &old_text, NULL, NULL) < 0)
			old_text = NULL;
		bool same = old_text && !strcmp(old_text, fresh_text);
		free(old_text);
		if (!same && b->o->locked) {
			r = azl_errf(err, -ESTALE, "%s: --locked, but resolving %s now gives a different package set; run 'azl-compose lock %s' and review the change",
				     path, b->m->path, b->m->path);
			goto out;
		}
		if (!same) {
			r = azl_lock_write(path, fresh, err);
			if (r < 0)
				goto out;
			b->rep->lock_written = true;
		}
		b->lock = fresh;
		fresh = NULL;
	}
	r = azl_read_file(path, 0, &b->lock_text, &len, err);
	if (r == 0)
		azl_sha256_hex(b->lock_text, len, b->lock_sha256);
out:
	azl_lock_free(old);
	azl_lock_free(fresh);
	free(fresh_text);
	free(path);
	return r;
}

/* --- fetch --------------------------------------------------------------- */

static int stage_fetch(struct build *b, struct azl_err *err)
{
	struct azl_fetch_opts fo;
	int r;

	azl_build_stage(b, "fetch", NULL);
	azl_fetch_opts_init(&fo);
	r = azl_cache_open(b->o->cache_dir, &b->cache, err);
	if (r == 0)
		r = azl_packages_fetch(b->m, b->lock, b->cache, &fo, b->o->offline,
				       &b->o->fetch_cb, NULL, err);
	if (r < 0)
		return r;
	b->npkgs = b->lock->npkgs;
	b->pkg_paths = azl_xcalloc(b->npkgs, sizeof(char *));
	for (size_t i = 0; i < b->npkgs; i++) {
		b->pkg_paths[i] = azl_cache_lookup(b->cache, b->lock->pkgs[i].sha256);
		if (!b->pkg_paths[i])
			return azl_errf(err, -ENOENT, "%s: not in the cache after fetch",
					b->lock->pkgs[i].name);
	}
	return 0;
}

/* --- time and seed ------------------------------------------------------- */

static int newest_buildtime(struct build *b, int64_t *out, struct azl_err *err)
{
	int64_t newest = -1;
	for (size_t i = 0; i < b->npkgs; i++) {
		struct azl_rpm *rpm = NULL;
		int r = azl_rpm_open(b->pkg_paths[i], &rpm, err);
		if (r < 0)
			return r;
		int64_t t = (int64_t)headerGetNumber(azl_rpm_header(rpm), RPMTAG_BUILDTIME);
		if (t > newest)
			newest = t;
		azl_rpm_close(rpm);
	}
	*out = newest;
	return 0;
}

static int stage_identity(struct build *b, struct azl_err *err)
{
	enum azl_sde_origin origin;
	int64_t newest = -1;
	int r = 0;

	if (!b->m->has_source_date_epoch && !(b->o->env_sde && *b->o->env_sde))
		r = newest_buildtime(b, &newest, err);
	if (r == 0)
		r = azl_sde_resolve(b->m->has_source_date_epoch, b->m->source_date_epoch,
				    b->o->env_sde, newest, &b->sde, &origin, err);
	if (r < 0)
		return r;
	b->rep->source_date_epoch = b->sde;
	b->rep->sde_origin = azl_sde_origin_name(origin);
	if (b->m->seed)
		azl_seed_from_string(&b->seed, b->m->seed);
	else
		azl_seed_from_inputs(&b->seed, b->m->sha256, b->lock_sha256);
	azl_seed_hex(&b->seed, b->rep->seed_hex);
	return 0;
}

/* --- install ------------------------------------------------------------- */

static int stage_install(struct build *b, struct azl_err *err)
{
	size_t *order = azl_xcalloc(b->npkgs, sizeof(*order));
	struct azl_install_pkg *pkgs = azl_xcalloc(b->npkgs, sizeof(*pkgs));
	struct azl_install_opts io = { .sde = b->sde, .defer_owners = true, .jobs = b->o->jobs };
	char *objdir = azl_path_join(azl_cache_dir(b->cache), "objects");
	int r;

	azl_build_stage(b, "install", NULL);
	r = azl_install_order((const char *const *)b->pkg_paths, b->npkgs, order, err);
	if (r == 0)
		r = azl_objstore_open(objdir, &b->store, err);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < b->npkgs; i++) {
		pkgs[i].path = b->pkg_paths[order[i]];
		pkgs[i].sha256 = b->lock->pkgs[order[i]].sha256;
		/* repos[].allow_setuid (manifests/README.md); unknown repo: deny */
		pkgs[i].repo = b->lock->pkgs[order[i]].repo;
		const struct azl_repo_spec *rs = azl_manifest_repo(b->m, pkgs[i].repo);
		pkgs[i].deny_setuid = !rs || !rs->allow_setuid;
	}
	b->fs = azl_fs_new();
	r = azl_install(b->fs, b->store, pkgs, b->npkgs, &io, &b->inst, err);
	b->rep->npackages = b->npkgs;
	b->rep->nextracted = b->inst.nextracted;
out:
	free(order);
	free(pkgs);
	free(objdir);
	return r;
}

/* --- scriptlets ---------------------------------------------------------- */

struct script_job {
	const char *nevra;
	const char *kind;
	const struct azl_script *s;
	int arg1, arg2;
	char *input;         /* file triggers: matching paths, one a line; owned */
};

/* Whether trigger t fires for this transaction; for file triggers *input
 * receives the matching paths, one a line (what rpm feeds on stdin). */
static bool trigger_fires(struct azl_fs *fs, const struct azl_trigger *t,
			  const struct azl_install_result *inst, char **input)
{
	struct azl_buf paths = AZL_BUF_INIT;

	*input = NULL;
	if (t->sense != RPMSENSE_TRIGGERIN)
		return false;
	if (t->kind == AZL_TRIG_PACKAGE) {
		for (char **c = t->conds; c && *c; c++)
			for (size_t i = 0; i < inst->npkgs; i++)
				if (!strcmp(inst->pkgs[i].info.name, *c))
					return true;
		return false;
	}
	size_t n = azl_fs_count(fs);
	struct azl_node *const *all = azl_fs_sorted(fs);
	for (size_t i = 0; i < n; i++) {
		if (!all[i]->owner_pkg || all[i]->type == AZL_FT_DIR)
			continue;
		for (char **c = t->conds; c && *c; c++) {
			if (!strncmp(all[i]->path, *c, strlen(*c))) {
				azl_buf_addf(&paths, "%s\n", all[i]->path);
				break;
			}
		}
	}
	if (!paths.len)
		return false;
	*input = azl_buf_detach(&paths);
	return true;
}

/* rpm's order: per package %pre then %post; then every %posttrans; then
 * triggers.  Files are all laid out first (owners resolved afterwards),
 * which is what a %pre adding users needs. */
static size_t plan_scripts(struct build *b, struct script_job **out)
{
	struct script_job *jobs = NULL;
	size_t n = 0;
	const struct azl_install_result *in = &b->inst;

#define PUSH(NEVRA, KIND, S, A1, A2, INPUT) do { \
		jobs = azl_xrealloc(jobs, (n + 1) * sizeof(*jobs)); \
		jobs[n++] = (struct script_job){ NEVRA, KIND, S, A1, A2, INPUT }; \
	} while (0)
	for (size_t i = 0; i < in->npkgs; i++) {
		const struct azl_rpm_info *p = &in->pkgs[i].info;
		if (p->pretrans.argv)
			PUSH(p->nevra, "%pretrans", &p->pretrans, 0, -1, NULL);
	}
	for (size_t i = 0; i < in->npkgs; i++) {
		const struct azl_rpm_info *p = &in->pkgs[i].info;
		if (p->prein.argv)
			PUSH(p->nevra, "%pre", &p->prein, 1, -1, NULL);
		if (p->postin.argv)
			PUSH(p->nevra, "%post", &p->postin, 1, -1, NULL);
	}
	for (size_t i = 0; i < in->npkgs; i++) {
		const struct azl_rpm_info *p = &in->pkgs[i].info;
		for (size_t t = 0; t < p->ntriggers; t++) {
			const struct azl_trigger *tr = &p->triggers[t];
			char *input = NULL;
			if (tr->kind != AZL_TRIG_TRANSFILE && trigger_fires(b->fs, tr, in, &input))
				PUSH(p->nevra, tr->kind == AZL_TRIG_PACKAGE ? "%triggerin" : "%filetriggerin",
				     &tr->script, 1, tr->kind == AZL_TRIG_PACKAGE ? 1 : -1, input);
		}
	}
	for (size_t i = 0; i < in->npkgs; i++) {
		const struct azl_rpm_info *p = &in->pkgs[i].info;
		if (p->posttrans.argv)
			PUSH(p->nevra, "%posttrans", &p->posttrans, 0, -1, NULL);
	}
	for (size_t i = 0; i < in->npkgs; i++) {
		const struct azl_rpm_info *p = &in->pkgs[i].info;
		for (size_t t = 0; t < p->ntriggers; t++) {
			const struct azl_trigger *tr = &p->triggers[t];
			char *input = NULL;
			if (tr->kind == AZL_TRIG_TRANSFILE && trigger_fires(b->fs, tr, in, &input))
				PUSH(p->nevra, "%transfiletriggerin", &tr->script, 0, -1, input);
		}
	}
#undef PUSH
	*out = jobs;
	return n;
}

static void *reaper(void *arg)
{
	azl_staging_destroy(arg);
	return NULL;
}

/* The staging tree holds a link per image file; removing it takes longer
 * than making it, and nothing later reads it, so a thread removes it while
 * the outputs are written.  azl_build joins it before anything else goes. */
static void reap_staging(struct build *b, struct azl_staging *st)
{
	if (pthread_create(&b->reaper, NULL, reaper, st) == 0)
		b->reap = st;
	else
		azl_staging_destroy(st);
}

static int run_jobs(struct build *b, struct script_job *jobs, size_t n,
		    struct azl_err *err)
{
	struct azl_staging *st = NULL;
	struct azl_sandbox_opts so = { .timeout_s = b->m->scriptlet_timeout,
				       .source_date_epoch = b->sde };
	char *stdir = azl_path_join(b->work, "staging");
	char *capdir = azl_path_join(b->work, "captured");
	int r = azl_staging_create(b->fs, stdir, &st, err);

	for (size_t i = 0; r == 0 && i < n; i++) {
		struct azl_sandbox_result res = { 0 };
		struct azl_scriptlet s = {
			.label = jobs[i].nevra, .kind = jobs[i].kind,
			.interpreter = jobs[i].s->argv[0],
			.args = (const char *const *)jobs[i].s->argv + 1,
			.body = jobs[i].s->body, .arg1 = jobs[i].arg1, .arg2 = jobs[i].arg2,
			.input = jobs[i].input,
			.input_len = jobs[i].input ? strlen(jobs[i].input) : 0,
		};
		r = azl_sandbox_run(st, &s, &so, &res, err);
		b->rep->nscriptlets++;
		if (r < 0 && res.status == -1)
			azl_err_prefix(err, "scriptlets cannot run on this host (with 'scriptlets: skip' the build runs none and lists them)");
		if (r == -ECANCELED && !res.timed_out && !azl_scriptlet_is_critical(jobs[i].kind)) {
			/* rpm 4.18 only warns here (and exits 0). */
			azl_build_warn(b, azl_xasprintf("warning: %s", err->msg));
			azl_err_clear(err);
			r = 0;
		}
		azl_sandbox_result_release(&res);
	}
	if (r == 0)
		r = azl_staging_capture(st, b->fs, capdir, b->sde, err);
	if (st)
		reap_staging(b, st);
	free(stdir);
	free(capdir);
	return r;
}

static int stage_scriptlets(struct build *b, struct azl_err *err)
{
	struct script_job *jobs = NULL, *run = NULL;
	size_t n = plan_scripts(b, &jobs), nrun = 0;
	int r = 0;

	run = azl_xcalloc(n ? n : 1, sizeof(*run));
	for (size_t i = 0; i < n; i++) {
		const char *interp = jobs[i].s->argv[0];
		if (b->m->scriptlets_skip || !strcmp(interp, "<lua>")) {
			strv_push(&b->rep->skipped, &b->rep->nskipped,
				  azl_xasprintf("%s %s%s", jobs[i].nevra, jobs[i].kind,
						b->m->scriptlets_skip ? "" : " (lua scriptlets are not supported)"));
			continue;
		}
		run[nrun++] = jobs[i];
	}
	if (nrun) {
		azl_build_stage(b, "scriptlets", NULL);
		r = run_jobs(b, run, nrun, err);
	}
	for (size_t i = 0; i < n; i++)
		free(jobs[i].input);
	free(jobs);
	free(run);
	return r;
}

/* --- owners, customization, rpmdb ---------------------------------------- */

static int stage_finish_tree(struct build *b, struct azl_err *err)
{
	struct azl_buf warnings = AZL_BUF_INIT;
	struct azl_rpmdb_pkg *dbp = azl_xcalloc(b->inst.npkgs + 1, sizeof(*dbp));
	char *dbfile = azl_path_join(b->work, "rpmdb.sqlite");
	int r;

	azl_build_stage(b, "customize", NULL);
	r = azl_install_resolve_owners(b->fs, &b->inst, err);
	for (size_t i = 0; i < b->inst.nwarnings; i++)
		azl_build_warn(b, azl_xasprintf("warning: %s", b->inst.warnings[i]));
	if (r == 0)
		r = azl_customize_apply(b->fs, &b->m->customize, b->sde, &warnings, err);
	for (char *l = warnings.data, *e; l && *l; l = e + 1) {
		e = strchr(l, '\n');
		if (!e)
			break;
		azl_build_warn(b, azl_xasprintf("warning: %.*s", (int)(e - l), l));
	}
	if (r < 0)
		goto out;
	azl_build_stage(b, "rpmdb", NULL);
	for (size_t i = 0; i < b->inst.npkgs; i++)
		dbp[i].rpm_path = b->inst.pkgs[i].path;
	r = azl_rpmdb_write(dbfile, dbp, b->inst.npkgs, b->sde, err);
	if (r == 0)
		r = azl_rpmdb_to_model(b->fs, dbfile, "/var/lib/rpm", b->sde, err);
out:
	azl_buf_release(&warnings);
	free(dbp);
	free(dbfile);
	return r;
}

/* --- emit ---------------------------------------------------------------- */

void azl_build_add_output(struct build *b, const char *name)
{
	b->outs = azl_xrealloc(b->outs, (b->nouts + 1) * sizeof(*b->outs));
	memset(&b->outs[b->nouts], 0, sizeof(*b->outs));
	b->outs[b->nouts++].name = azl_xstrdup(name);
}

static int emit_oci(struct build *b, struct azl_err *err)
{
	const struct azl_manifest_oci *mo = b->m->oci;
	struct azl_kv *labels = azl_xcalloc(mo->nlabels + 1, sizeof(*labels));
	char *name = azl_xasprintf("%s.oci.tar", b->m->name);
	char *path = azl_path_join(b->work, name);
	char *ref = azl_xasprintf("%s:latest", b->m->name);
	int r;

	for (size_t i = 0; i < mo->nlabels; i++)
		labels[i] = (struct azl_kv){ mo->labels[i].key, mo->labels[i].value };
	struct azl_oci_opts oo = {
		.compression = mo->compression, .level = mo->level,
		.threads = b->o->jobs > 0 ? b->o->jobs : (int)sysconf(_SC_NPROCESSORS_ONLN),
		.arch = b->m->arch, .created = b->sde, .ref_name = ref,
		.entrypoint = (const char *const *)mo->entrypoint, .nentrypoint = mo->nentrypoint,
		.cmd = (const char *const *)mo->cmd, .ncmd = mo->ncmd,
		.env = (const char *const *)mo->env, .nenv = mo->nenv,
		.workdir = mo->workdir, .user = mo->user,
		.labels = labels, .nlabels = mo->nlabels,
		.exposed_ports = (const char *const *)mo->exposed_ports,
		.nexposed_ports = mo->nexposed_ports,
	};
	azl_build_stage(b, "oci", name);
	r = azl_emit_oci(b->fs, &oo, path, NULL, err);
	if (r == 0)
		azl_build_add_output(b, name);
	free(labels);
	free(name);
	free(path);
	free(ref);
	return r;
}

/* --- sign: SBOM and provenance beside the outputs, before SHA256SUMS so
 * its signature covers them; then the signature itself (lib/sign). --- */
static int stage_attest(struct build *b, struct azl_err *err)
{
	struct azl_sbom_input in = {
		.name = b->m->name, .lock = b->lock,
		.pkg_paths = (const char *const *)b->pkg_paths,
		.source_date_epoch = b->sde, .manifest_path = b->o->manifest_path,
		.manifest_sha256 = b->m->sha256, .lock_sha256 = b->lock_sha256,
		.tool_version = TOOL_VERSION, .outputs = b->outs, .noutputs = b->nouts,
	};
	char *name = NULL;
	int r = azl_sbom_write(b->work, &in, &name, err);

	if (r == 0) {
		azl_build_add_output(b, name);
		r = azl_output_files_hash(b->work, &b->outs[b->nouts - 1], 1, err);
		in.outputs = b->outs;
		in.noutputs = b->nouts;
	}
	free(name);
	name = NULL;
	if (r == 0)
		r = azl_provenance_write(b->work, &in, &name, err);
	if (r == 0) {
		azl_build_add_output(b, name);
		r = azl_output_files_hash(b->work, &b->outs[b->nouts - 1], 1, err);
	}
	free(name);
	return r;
}

static int stage_sign(struct build *b, struct azl_err *err)
{
	int r;
	if (!b->o->sign_key)
		return 0;
	azl_build_stage(b, "sign", "SHA256SUMS");
	r = azl_sign_dir(b->work, b->o->sign_key, b->o->sign_cert,
			 b->o->sign_passphrase, NULL, err);
	if (r == 0 && b->o->sign_cert)
		azl_build_add_output(b, "SHA256SUMS.pem");
	if (r == 0)
		azl_build_add_output(b, "SHA256SUMS.sig");
	return r;
}
/* --- end sign --- */

static int stage_record(struct build *b, struct azl_err *err)
{
	char *rec_name = azl_xasprintf("%s.build.json", b->m->name);
	char *rec_path = azl_path_join(b->work, rec_name);
	int r = azl_output_files_hash(b->work, b->outs, b->nouts, err);

	if (r == 0)
		r = stage_attest(b, err);

	if (r == 0) {
		struct azl_build_record rec = {
			.name = b->m->name, .tool_version = TOOL_VERSION,
			.manifest_text = b->manifest_text, .manifest_sha256 = b->m->sha256,
			.lock_text = b->lock_text, .lock_sha256 = b->lock_sha256,
			.source_date_epoch = b->sde, .sde_origin = b->rep->sde_origin,
			.seed_hex = b->rep->seed_hex,
			.skipped_scriptlets = (const char *const *)b->rep->skipped,
			.nskipped = b->rep->nskipped, .outputs = b->outs, .noutputs = b->nouts,
		};
		r = azl_build_record_write(rec_path, &rec, err);
	}
	if (r == 0) {
		azl_build_add_output(b, rec_name);
		r = azl_output_files_hash(b->work, &b->outs[b->nouts - 1], 1, err);
	}
	if (r == 0)
		r = azl_sha256sums_write(b->work, b->outs, b->nouts, err);
	if (r == 0)
		azl_build_add_output(b, "SHA256SUMS");
	if (r == 0)
		r = stage_sign(b, err);
	free(rec_name);
	free(rec_path);
	return r;
}

/* Everything is complete in the work dir: move it into place.  An older
 * SHA256SUMS (and its signature) goes first, and the new one comes after
 * the files it lists: a kill part way never leaves a SHA256SUMS beside
 * files it does not describe. */
static int publish(struct build *b, struct azl_err *err)
{
	static const char *const sums[] = { "SHA256SUMS", "SHA256SUMS.sig", "SHA256SUMS.pem" };

	for (size_t i = 0; i < sizeof(sums) / sizeof(sums[0]); i++) {
		char *old = azl_path_join(b->out_dir, sums[i]);
		int r = unlink(old) < 0 && errno != ENOENT ? -errno : 0;
		if (r < 0)
			azl_errf(err, r, "%s: %s", old, strerror(-r));
		free(old);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < b->nouts; i++) {
		char *from = azl_path_join(b->work, b->outs[i].name);
		char *to = azl_path_join(b->out_dir, b->outs[i].name);
		int r = rename(from, to) < 0 ? -errno : 0;
		if (r < 0)
			azl_errf(err, r, "%s: %s", to, strerror(-r));
		else
			strv_push(&b->rep->outputs, &b->rep->noutputs, azl_xstrdup(to));
		free(from);
		free(to);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Work directories of killed builds.  A live build holds a lock on its
 * own (taken while holding the output folder's lock, so a new one is never
 * seen unlocked); one that can be locked is left over and goes. */
static void sweep_work_dirs(struct build *b)
{
	const char *mine = strrchr(b->work, '/') + 1;
	struct dirent **ents = NULL;
	int n = scandir(b->out_dir, &ents, NULL, alphasort);

	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		char *path = azl_path_join(b->out_dir, name);
		int fd = -1;
		if (!strncmp(name, ".azl-work.", 10) && strcmp(name, mine))
			fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
			struct azl_err ignored = { 0 };
			azl_staging_rmtree(path, &ignored);
		}
		if (fd >= 0)
			close(fd);
		free(path);
		free(ents[i]);
	}
	free(ents);
}

static int make_work_dir(struct build *b, struct azl_err *err)
{
	int r, dfd;
	b->out_dir = azl_xstrdup(b->o->out_dir ? b->o->out_dir : "out");
	r = azl_mkdir_p(b->out_dir, err);
	if (r < 0)
		return r;
	dfd = open(b->out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || flock(dfd, LOCK_EX) < 0) {
		r = azl_errf(err, -errno, "%s: cannot lock: %s", b->out_dir, strerror(errno));
		goto out;
	}
	b->work = azl_xasprintf("%s/.azl-work.XXXXXX", b->out_dir);
	if (!mkdtemp(b->work)) {
		r = azl_errf(err, -errno, "%s: cannot create a work directory: %s",
			     b->out_dir, strerror(errno));
		goto out;
	}
	b->work_fd = open(b->work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->work_fd < 0 || flock(b->work_fd, LOCK_EX) < 0) {
		r = azl_errf(err, -errno, "%s: cannot lock: %s", b->work, strerror(errno));
		goto out;
	}
	sweep_work_dirs(b);
out:
	if (dfd >= 0)
		close(dfd); /* and with it the folder's lock */
	return r;
}

int azl_build(const struct azl_build_opts *o, struct azl_build_report *rep,
	      struct azl_err *err)
{
	struct build b = { .o = o, .rep = rep, .work_fd = -1 };
	struct azl_warm_up *warm;
	size_t len = 0;
	int r;

	memset(rep, 0, sizeof(*rep));
	r = azl_manifest_load(o->manifest_path, &b.m, err);
	if (r == 0)
		r = azl_read_file(o->manifest_path, 0, &b.manifest_text, &len, err);
	if (r < 0)
		goto out;
	rep->name = azl_xstrdup(b.m->name);
	if (!b.m->oci && !b.m->vhd && !b.m->flatcar) {
		r = azl_err_input(err, "%s: key 'outputs': nothing to build (add outputs: {oci: {}} or outputs: {vhd: {size: 4GiB}})",
				  o->manifest_path);
		goto out;
	}
	warm = azl_packages_warm_up();
	r = stage_lock(&b, err);
	if (r == 0)
		r = stage_fetch(&b, err);
	/* Long done by now; joined before anything forks. */
	azl_packages_warm_up_join(warm);
	if (r < 0 || (r = stage_identity(&b, err)) < 0 || (r = make_work_dir(&b, err)) < 0 ||
	    (r = stage_install(&b, err)) < 0 || (r = stage_scriptlets(&b, err)) < 0 ||
	    (r = stage_finish_tree(&b, err)) < 0)
		goto out;
	if (b.m->oci && (r = emit_oci(&b, err)) < 0)
		goto out;
	if (b.m->vhd && (r = azl_build_emit_vhd(&b, err)) < 0)
		goto out;
	if (b.m->flatcar && (r = azl_build_emit_flatcar(&b, err)) < 0)
		goto out;
	if ((r = stage_record(&b, err)) < 0 || (r = publish(&b, err)) < 0)
		goto out;
out:
	if (b.reap)
		pthread_join(b.reaper, NULL);
	if (b.work) {
		struct azl_err ignored = { 0 };
		azl_staging_rmtree(b.work, &ignored);
	}
	if (b.work_fd >= 0)
		close(b.work_fd);
	azl_install_result_release(&b.inst);
	azl_fs_free(b.fs);
	if (b.store)
		azl_objstore_close(b.store);
	if (b.cache)
		azl_cache_close(b.cache);
	for (size_t i = 0; i < b.npkgs && b.pkg_paths; i++)
		free(b.pkg_paths[i]);
	free(b.pkg_paths);
	for (size_t i = 0; i < b.nouts; i++)
		free(b.outs[i].name);
	free(b.outs);
	azl_lock_free(b.lock);
	azl_manifest_free(b.m);
	free(b.lock_text);
	free(b.manifest_text);
	free(b.out_dir);
	free(b.work);
	return r;
}

void azl_build_report_release(struct azl_build_report *rep)
{
	free(rep->name);
	azl_strv_free(rep->outputs, rep->noutputs);
	azl_strv_free(rep->warnings, rep->nwarnings);
	azl_strv_free(rep->skipped, rep->nskipped);
	memset(rep, 0, sizeof(*rep));
}
