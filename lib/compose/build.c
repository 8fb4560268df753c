/* The build pipeline (see build.h).  Each stage is one function over a
 * shared struct build; azl_build() only sequences them. */
#include "compose/build.h"

#include <errno.h>
#include <rpm/rpmlib.h>
#include <rpm/rpmtag.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/cache.h"
#include "compose/customize.h"
#include "compose/emit_disk.h"
#include "compose/emit_ext4.h"
#include "compose/emit_oci.h"
#include "compose/fsmodel.h"
#include "compose/initramfs.h"
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
#include "compose/uki.h"
#include "reproducible/gpt.h"
#include "reproducible/sde.h"
#include "reproducible/seed.h"
#include "sign/blobsig.h"
#include "sign/sbom.h"

#define TOOL_VERSION "0.1.0"

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
	struct azl_output_file *outs;
	size_t nouts;
};

static void stage(struct build *b, const char *name, const char *detail)
{
	if (b->o->on_stage)
		b->o->on_stage(b->o->ctx, name, detail);
}

static void strv_push(char ***v, size_t *n, char *s)
{
	*v = azl_xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = s;
}

static void warn(struct build *b, char *msg)
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

	stage(b, "lock", path);
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

	stage(b, "fetch", NULL);
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

	stage(b, "install", NULL);
	r = azl_install_order((const char *const *)b->pkg_paths, b->npkgs, order, err);
	if (r == 0)
		r = azl_objstore_open(objdir, &b->store, err);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < b->npkgs; i++) {
		pkgs[i].path = b->pkg_paths[order[i]];
		pkgs[i].sha256 = b->lock->pkgs[order[i]].sha256;
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
			warn(b, azl_xasprintf("warning: %s", err->msg));
			azl_err_clear(err);
			r = 0;
		}
		azl_sandbox_result_release(&res);
	}
	if (r == 0)
		r = azl_staging_capture(st, b->fs, capdir, b->sde, err);
	if (st)
		azl_staging_destroy(st);
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
		stage(b, "scriptlets", NULL);
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

	stage(b, "customize", NULL);
	r = azl_install_resolve_owners(b->fs, &b->inst, err);
	for (size_t i = 0; i < b->inst.nwarnings; i++)
		warn(b, azl_xasprintf("warning: %s", b->inst.warnings[i]));
	if (r == 0)
		r = azl_customize_apply(b->fs, &b->m->customize, b->sde, &warnings, err);
	for (char *l = warnings.data, *e; l && *l; l = e + 1) {
		e = strchr(l, '\n');
		if (!e)
			break;
		warn(b, azl_xasprintf("warning: %.*s", (int)(e - l), l));
	}
	if (r < 0)
		goto out;
	stage(b, "rpmdb", NULL);
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

static void add_output(struct build *b, const char *name)
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
	stage(b, "oci", name);
	r = azl_emit_oci(b->fs, &oo, path, NULL, err);
	if (r == 0)
		add_output(b, name);
	free(labels);
	free(name);
	free(path);
	free(ref);
	return r;
}

/* --- vhd: ESP (UKI, or systemd-boot + UKI) + ext4 root in a GPT disk --- */

#define MIB (1024ull * 1024ull)

struct vhd_job {
	const struct azl_manifest_vhd *mv;
	const struct azl_manifest_kernel *mk; /* may be NULL */
	char *dir;                   /* work/vhd: intermediates */
	struct azl_kernel k;
	struct azl_disk_part parts[3]; /* esp, [boot (XBOOTLDR)], root */
	size_t nparts, root_ix;
	struct azl_fat_file esp[3];
	size_t nesp;
	char *esp_paths[3];          /* host files behind esp[] */
	struct azl_fat_file *boot;   /* the XBOOTLDR partition's files */
	size_t nboot;
	struct azl_buf *boot_data;   /* contents not in a host file at offset 0 */
	char *boot_uki;              /* host path of the UKI put on XBOOTLDR */
	char *uki_fat;               /* the UKI's path in the ESP */
	char *initrd;                /* host path of the initramfs */
	char *root_img;
};

static void vhd_note_host(struct build *b, const char *what,
			  const struct azl_efi_origin *o)
{
	if (!strcmp(o->where, "host"))
		warn(b, azl_xasprintf("note: outputs.vhd: %s taken from the build host: %s (sha256 %s); the image ships none",
				      what, o->path, o->sha256));
}

/* The manifest's initramfs, or one generated from the image's model. */
static int vhd_initrd(struct build *b, struct vhd_job *j, struct azl_err *err)
{
	struct azl_out o = { .fd = -1 };
	struct azl_initramfs_opts io = { .comp = AZL_COMP_GZIP, .mtime = b->sde };
	int r;

	if (j->mk && j->mk->initrd) {
		j->initrd = azl_xstrdup(j->mk->initrd);
		if (access(j->initrd, R_OK) < 0)
			return azl_err_input(err, "%s: kernel.initrd: %s: %s", b->m->path,
					     j->initrd, strerror(errno));
		return 0;
	}
	j->initrd = azl_path_join(j->dir, "initrd.img");
	r = azl_out_open(&o, j->initrd, 0644, err);
	if (r < 0)
		return r;
	r = azl_initramfs_write(b->fs, &j->k, &io, azl_zstream_fd_sink, &o.fd, NULL, err);
	if (r < 0) {
		azl_out_abort(&o);
		return azl_err_prefix(err, "outputs.vhd: initramfs (or name one with kernel.initrd)");
	}
	return azl_out_commit(&o, err);
}

static void vhd_esp_add(struct vhd_job *j, const char *fat_path, char *host)
{
	j->esp_paths[j->nesp] = host;
	j->esp[j->nesp] = (struct azl_fat_file){ .path = fat_path, .host_path = host };
	j->nesp++;
}

/* The UKI (cmdline: root=PARTUUID=<root partition> + kernel.cmdline) at
 * \EFI\BOOT\BOOTX64.EFI, or systemd-boot there and the UKI in \EFI\Linux. */
static int vhd_boot_files(struct build *b, struct vhd_job *j, struct azl_err *err)
{
	char partuuid[37], *esp = azl_path_join(j->dir, "esp"), *uki, *cmdline;
	const char *extra = j->mk && j->mk->cmdline ? j->mk->cmdline : "";
	struct azl_efi_origin stub = { 0 }, sdboot = { 0 };
	int r = azl_mkdir_p(esp, err);

	azl_uuid_format(j->parts[j->root_ix].uuid, partuuid);
	cmdline = azl_xasprintf("root=PARTUUID=%s%s%s", partuuid, *extra ? " " : "", extra);
	if (r == 0 && j->mv->systemd_boot) {
		r = azl_uki_systemd_boot(b->fs, NULL, esp, &sdboot, err);
		vhd_esp_add(j, "EFI/BOOT/BOOTX64.EFI", azl_path_join(esp, "EFI/BOOT/BOOTX64.EFI"));
		vhd_esp_add(j, "loader/loader.conf", azl_path_join(esp, "loader/loader.conf"));
		j->uki_fat = azl_xasprintf("EFI/Linux/%s.efi", b->m->name);
	} else {
		j->uki_fat = azl_xstrdup("EFI/BOOT/BOOTX64.EFI");
	}
	uki = azl_xasprintf("%s/uki.efi", j->dir);
	if (j->mv->boot_size && j->mv->systemd_boot) {
		/* Boot Loader Specification: UKIs live on XBOOTLDR when there
		 * is one; systemd-boot finds them there. */
		j->boot = azl_xrealloc(j->boot, (j->nboot + 1) * sizeof(*j->boot));
		j->boot[j->nboot++] = (struct azl_fat_file){ .path = j->uki_fat, .host_path = uki };
		j->boot_uki = uki;
	} else {
		vhd_esp_add(j, j->uki_fat, uki);
	}
	struct azl_uki_opts uo = { .cmdline = cmdline, .initrd_path = j->initrd,
				   .stub_path = j->mk ? j->mk->stub : NULL };
	if (r == 0)
		r = azl_uki_build(b->fs, &j->k, &uo, uki, &stub, err);
	if (r < 0)
		azl_err_prefix(err, "outputs.vhd: %s", j->mv->systemd_boot ? "systemd-boot and UKI" : "UKI");
	if (r == 0) {
		vhd_note_host(b, "EFI stub", &stub);
		if (j->mv->systemd_boot)
			vhd_note_host(b, "systemd-boot", &sdboot);
	}
	free(esp);
	free(cmdline);
	return r;
}

static bool below_boot(void *ctx, const struct azl_node *n)
{
	(void)ctx;
	return !strncmp(n->path, "/boot/", 6);
}

/* The image's /boot, for the XBOOTLDR partition: regular files and
 * directories (vfat holds no owners, modes or symlinks: those are left
 * out with a warning). */
static int vhd_boot_tree(struct build *b, struct vhd_job *j, struct azl_err *err)
{
	size_t n = azl_fs_count(b->fs), nb = 0;
	struct azl_node *const *all = azl_fs_sorted(b->fs);
	int r = 0;

	for (size_t i = 0; i < n; i++)
		if (!strncmp(all[i]->path, "/boot/", 6))
			nb++;
	j->boot = azl_xcalloc(nb + 2, sizeof(*j->boot));
	j->boot_data = azl_xcalloc(nb + 1, sizeof(*j->boot_data));
	for (size_t i = 0; i < n && r == 0; i++) {
		const struct azl_node *nd = all[i];
		struct azl_fat_file *f = &j->boot[j->nboot];
		if (strncmp(nd->path, "/boot/", 6))
			continue;
		if (nd->type == AZL_FT_DIR) {
			f->path = azl_xasprintf("%s/", nd->path + 6);
		} else if (nd->type == AZL_FT_REG) {
			f->path = azl_xstrdup(nd->path + 6);
			if (nd->data_path && nd->data_offset == 0) {
				f->host_path = nd->data_path;
			} else {
				struct azl_buf *d = &j->boot_data[j->nboot];
				r = azl_fs_read_small(b->fs, nd->path, d, err);
				f->data = d->data;
				f->len = d->len;
			}
		} else {
			warn(b, azl_xasprintf("warning: outputs.vhd.boot_size: %s is not a file or directory; vfat cannot hold it, left out of /boot",
					      nd->path));
			continue;
		}
		j->nboot++;
	}
	return r;
}

/* The root filesystem fills the disk between the ESP and the backup GPT;
 * a disk too small for it is refused naming what it needs. */
static int vhd_root(struct build *b, struct vhd_job *j, struct azl_err *err)
{
	struct azl_ext4_opts eo = { .mtime = b->sde, .label = "root" };
	uint64_t overhead = 2 * MIB + j->mv->esp_size + j->mv->boot_size, min = 0;
	int r;

	if (j->mv->boot_size)
		eo.exclude_fn = below_boot; /* /boot stays, as the mount point */
	azl_seed_uuid(&b->seed, "ext4-uuid:root", eo.uuid);
	azl_seed_derive(&b->seed, "ext4-hash-seed:root", eo.hash_seed, sizeof(eo.hash_seed));
	r = azl_ext4_min_size(b->fs, &eo, &min, err);
	if (r < 0)
		return r;
	if (j->mv->size < overhead + min)
		return azl_err_input(err, "%s: outputs.vhd.size: %llu MiB is too small for this image: it needs at least %llu MiB (root filesystem %llu MiB + ESP %llu MiB + /boot %llu MiB + 2 MiB for the partition tables)",
				     b->m->path, (unsigned long long)(j->mv->size / MIB),
				     (unsigned long long)((overhead + min) / MIB),
				     (unsigned long long)(min / MIB),
				     (unsigned long long)(j->mv->esp_size / MIB),
				     (unsigned long long)(j->mv->boot_size / MIB));
	eo.size_bytes = j->mv->size - overhead;
	j->root_img = azl_path_join(j->dir, "root.ext4");
	return azl_emit_ext4(b->fs, &eo, j->root_img, NULL, err);
}

static void vhd_layout(struct build *b, struct vhd_job *j, struct azl_disk_layout *l)
{
	struct azl_disk_part *esp = &j->parts[0];
	struct azl_disk_part *root;

	j->nparts = j->mv->boot_size ? 3 : 2;
	j->root_ix = j->nparts - 1;
	root = &j->parts[j->root_ix];
	esp->label = "esp";
	azl_guid_parse(AZL_GPT_TYPE_ESP, esp->type);
	esp->size = j->mv->esp_size;
	esp->source = AZL_PART_FAT;
	esp->fat = (struct azl_fat_spec){ .files = j->esp, .nfiles = j->nesp,
					  .label = "ESP", .mtime = b->sde };
	if (j->mv->boot_size) {
		struct azl_disk_part *boot = &j->parts[1];
		boot->label = "xbootldr";
		azl_guid_parse(AZL_GPT_TYPE_XBOOTLDR, boot->type);
		boot->size = j->mv->boot_size;
		boot->source = AZL_PART_FAT;
		boot->fat = (struct azl_fat_spec){ .files = j->boot, .nfiles = j->nboot,
						   .label = "BOOT", .mtime = b->sde };
		azl_disk_part_seed(&b->seed, boot);
	}
	root->label = "root"; /* type: azl_disk_root_type, by emit_vhd */
	root->size = AZL_DISK_REST;
	root->source = AZL_PART_IMAGE;
	root->image = j->root_img;
	azl_disk_part_seed(&b->seed, esp);
	azl_disk_part_seed(&b->seed, root);
	memset(l, 0, sizeof(*l));
	azl_disk_layout_seed(&b->seed, l);
	l->size = j->mv->size;
	l->format = j->mv->raw ? AZL_DISK_RAW : AZL_DISK_VHD;
	l->mtime = b->sde;
	l->parts = j->parts;
	l->nparts = j->nparts;
}

static void vhd_job_release(struct vhd_job *j)
{
	azl_kernel_release(&j->k);
	for (size_t i = 0; i < j->nesp; i++)
		free(j->esp_paths[i]);
	for (size_t i = 0; i < j->nboot; i++) {
		if (j->boot[i].host_path == j->boot_uki)
			continue;
		free((char *)j->boot[i].path);
	}
	for (size_t i = 0; j->boot_data && i < j->nboot; i++)
		azl_buf_release(&j->boot_data[i]);
	free(j->boot);
	free(j->boot_data);
	free(j->boot_uki);
	free(j->uki_fat);
	free(j->initrd);
	free(j->root_img);
	free(j->dir);
}

static int emit_vhd(struct build *b, struct azl_err *err)
{
	struct vhd_job j = { .mv = b->m->vhd, .mk = b->m->kernel };
	struct azl_disk_layout l;
	char *name = azl_xasprintf("%s.%s", b->m->name, j.mv->raw ? "img" : "vhd");
	char *path = azl_path_join(b->work, name);
	int r;

	stage(b, "vhd", name);
	j.dir = azl_path_join(b->work, "vhd");
	r = azl_kernel_find(b->fs, NULL, &j.k, err);
	if (r < 0) {
		azl_err_prefix(err, "%s: outputs.vhd boots a kernel of the image", b->m->path);
		goto out;
	}
	vhd_layout(b, &j, &l); /* partition GUIDs first: the cmdline names root's */
	if ((r = azl_disk_root_type(b->m->arch, j.parts[j.root_ix].type, err)) < 0 ||
	    (j.mv->boot_size && (r = vhd_boot_tree(b, &j, err)) < 0) ||
	    (r = azl_mkdir_p(j.dir, err)) < 0 || (r = vhd_root(b, &j, err)) < 0 ||
	    (r = vhd_initrd(b, &j, err)) < 0 || (r = vhd_boot_files(b, &j, err)) < 0)
		goto out;
	vhd_layout(b, &j, &l);
	r = azl_emit_disk(&l, path, NULL, err);
	if (r < 0)
		azl_err_prefix(err, "%s: outputs.vhd", b->m->path);
	else
		add_output(b, name);
out:
	if (j.dir) {
		struct azl_err ignored = { 0 };
		azl_staging_rmtree(j.dir, &ignored);
	}
	vhd_job_release(&j);
	free(name);
	free(path);
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
		add_output(b, name);
		r = azl_output_files_hash(b->work, &b->outs[b->nouts - 1], 1, err);
		in.outputs = b->outs;
		in.noutputs = b->nouts;
	}
	free(name);
	name = NULL;
	if (r == 0)
		r = azl_provenance_write(b->work, &in, &name, err);
	if (r == 0) {
		add_output(b, name);
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
	stage(b, "sign", "SHA256SUMS");
	r = azl_sign_dir(b->work, b->o->sign_key, b->o->sign_cert,
			 b->o->sign_passphrase, NULL, err);
	if (r == 0 && b->o->sign_cert)
		add_output(b, "SHA256SUMS.pem");
	if (r == 0)
		add_output(b, "SHA256SUMS.sig");
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
		add_output(b, rec_name);
		r = azl_output_files_hash(b->work, &b->outs[b->nouts - 1], 1, err);
	}
	if (r == 0)
		r = azl_sha256sums_write(b->work, b->outs, b->nouts, err);
	if (r == 0)
		add_output(b, "SHA256SUMS");
	if (r == 0)
		r = stage_sign(b, err);
	free(rec_name);
	free(rec_path);
	return r;
}

/* Everything is complete in the work dir: move it into place. */
static int publish(struct build *b, struct azl_err *err)
{
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

static int make_work_dir(struct build *b, struct azl_err *err)
{
	int r;
	b->out_dir = azl_xstrdup(b->o->out_dir ? b->o->out_dir : "out");
	r = azl_mkdir_p(b->out_dir, err);
	if (r < 0)
		return r;
	b->work = azl_xasprintf("%s/.azl-work.XXXXXX", b->out_dir);
	if (!mkdtemp(b->work))
		return azl_errf(err, -errno, "%s: cannot create a work directory: %s",
				b->out_dir, strerror(errno));
	return 0;
}

int azl_build(const struct azl_build_opts *o, struct azl_build_report *rep,
	      struct azl_err *err)
{
	struct build b = { .o = o, .rep = rep };
	size_t len = 0;
	int r;

	memset(rep, 0, sizeof(*rep));
	r = azl_manifest_load(o->manifest_path, &b.m, err);
	if (r == 0)
		r = azl_read_file(o->manifest_path, 0, &b.manifest_text, &len, err);
	if (r < 0)
		goto out;
	rep->name = azl_xstrdup(b.m->name);
	if (!b.m->oci && !b.m->vhd) {
		r = azl_err_input(err, "%s: key 'outputs': nothing to build (add outputs: {oci: {}} or outputs: {vhd: {size: 4GiB}})",
				  o->manifest_path);
		goto out;
	}
	if ((r = stage_lock(&b, err)) < 0 || (r = stage_fetch(&b, err)) < 0 ||
	    (r = stage_identity(&b, err)) < 0 || (r = make_work_dir(&b, err)) < 0 ||
	    (r = stage_install(&b, err)) < 0 || (r = stage_scriptlets(&b, err)) < 0 ||
	    (r = stage_finish_tree(&b, err)) < 0)
		goto out;
	if (b.m->oci && (r = emit_oci(&b, err)) < 0)
		goto out;
	if (b.m->vhd && (r = emit_vhd(&b, err)) < 0)
		goto out;
	if ((r = stage_record(&b, err)) < 0 || (r = publish(&b, err)) < 0)
		goto out;
out:
	if (b.work) {
		struct azl_err ignored = { 0 };
		azl_staging_rmtree(b.work, &ignored);
	}
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

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void azl_build_report_release(struct azl_build_report *rep)
{
	free(rep->name);
	free_strv(rep->outputs, rep->noutputs);
	free_strv(rep->warnings, rep->nwarnings);
	free_strv(rep->skipped, rep->nskipped);
	memset(rep, 0, sizeof(*rep));
}
