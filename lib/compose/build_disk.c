/* The disk outputs of the build: the VHD (ESP with a UKI, or systemd-boot
 * and a UKI, optional XBOOTLDR, ext4 root) and the Flatcar-style immutable
 * disk (see azl_build_emit_flatcar).  Consumers of the filesystem model. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/build_int.h"
#include "compose/emit_disk.h"
#include "compose/emit_ext4.h"
#include "compose/initramfs.h"
#include "compose/staging.h"
#include "compose/uki.h"
#include "reproducible/gpt.h"
#include "reproducible/verity.h"
#include "sign/authenticode.h"
#include "sign/veritysig.h"

/* --- vhd: ESP (UKI, or systemd-boot + UKI) + ext4 root in a GPT disk --- */

#define MIB (1024ull * 1024ull)

/* An ext4 filesystem written straight into its partition by
 * azl_emit_disk (AZL_PART_FILL); size 0 takes the partition's. */
struct ext4_fill {
	struct azl_fs *fs;
	struct azl_ext4_opts eo;
	uint64_t size;
};

static int fill_ext4(void *ctx, const char *path, uint64_t off, uint64_t room,
		     struct azl_err *err)
{
	struct ext4_fill *f = ctx;

	f->eo.size_bytes = f->size ? f->size : room;
	return azl_emit_ext4_at(f->fs, &f->eo, path, off, NULL, err);
}

static void part_fill(struct azl_disk_part *p, struct ext4_fill *f, uint64_t min)
{
	p->source = AZL_PART_FILL;
	p->fill = fill_ext4;
	p->fill_ctx = f;
	p->fill_min = min;
}

/* A bootable disk's parts; the boot files (initramfs, UKI, ESP) are shared
 * by the VHD and the Flatcar-style disk. */
struct vhd_job {
	const struct azl_manifest_vhd *mv;    /* NULL for flatcar */
	const struct azl_manifest_kernel *mk; /* may be NULL */
	const char *what;            /* "outputs.vhd": message prefix */
	bool systemd_boot, xbootldr;
	bool verity;                 /* initramfs opens a verity /usr */
	/* --sign-key + --sign-cert: the UKI gets an Authenticode signature
	 * before it goes into the ESP; NULL: unsigned. */
	const struct azl_pkcs7_signer *signer;
	char *cmdline_pre;           /* before root=: mount.usr=... (flatcar) */
	char *dir;                   /* work/vhd: intermediates */
	struct azl_kernel k;
	struct azl_disk_part parts[8]; /* esp, [boot (XBOOTLDR)], root; or flatcar's */
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
	struct ext4_fill root;       /* the root filesystem, written in place */
	uint64_t root_min;           /* and the bytes it needs */
};

static void vhd_note_host(struct build *b, const struct vhd_job *j, const char *what,
			  const struct azl_efi_origin *o)
{
	if (!strcmp(o->where, "host"))
		azl_build_warn(b, azl_xasprintf("note: %s: %s taken from the build host: %s (sha256 %s); the image ships none",
				      j->what, what, o->path, o->sha256));
}

/* The manifest's initramfs, or one generated from the image's model. */
static int vhd_initrd(struct build *b, struct vhd_job *j, struct azl_err *err)
{
	struct azl_out o = { .fd = -1 };
	struct azl_initramfs_opts io = { .comp = AZL_COMP_GZIP, .mtime = b->sde,
					 .verity = j->verity };
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
		return azl_err_prefix(err, "%s: initramfs (or name one with kernel.initrd)", j->what);
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
	cmdline = azl_xasprintf("%s%sroot=PARTUUID=%s%s%s", j->cmdline_pre ? j->cmdline_pre : "",
				j->cmdline_pre ? " " : "", partuuid, *extra ? " " : "", extra);
	if (r == 0 && j->systemd_boot) {
		r = azl_uki_systemd_boot(b->fs, NULL, esp, &sdboot, err);
		vhd_esp_add(j, "EFI/BOOT/BOOTX64.EFI", azl_path_join(esp, "EFI/BOOT/BOOTX64.EFI"));
		vhd_esp_add(j, "loader/loader.conf", azl_path_join(esp, "loader/loader.conf"));
		j->uki_fat = azl_xasprintf("EFI/Linux/%s.efi", b->m->name);
	} else {
		j->uki_fat = azl_xstrdup("EFI/BOOT/BOOTX64.EFI");
	}
	uki = azl_xasprintf("%s/uki.efi", j->dir);
	if (j->xbootldr && j->systemd_boot) {
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
	if (r == 0 && j->signer && (r = azl_authenticode_sign_file(uki, uki, j->signer, err)) < 0)
		azl_err_prefix(err, "Secure Boot signature");
	if (r < 0)
		azl_err_prefix(err, "%s: %s", j->what, j->systemd_boot ? "systemd-boot and UKI" : "UKI");
	if (r == 0) {
		vhd_note_host(b, j, "EFI stub", &stub);
		if (j->systemd_boot)
			vhd_note_host(b, j, "systemd-boot", &sdboot);
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
			azl_build_warn(b, azl_xasprintf("warning: outputs.vhd.boot_size: %s is not a file or directory; vfat cannot hold it, left out of /boot",
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
	j->root = (struct ext4_fill){ .fs = b->fs, .eo = eo };
	j->root_min = min;
	if (j->mv->size < overhead + min)
		return azl_err_input(err, "%s: outputs.vhd.size: %llu MiB is too small for this image: it needs at least %llu MiB (root filesystem %llu MiB + ESP %llu MiB + /boot %llu MiB + 2 MiB for the partition tables)",
				     b->m->path, (unsigned long long)(j->mv->size / MIB),
				     (unsigned long long)((overhead + min) / MIB),
				     (unsigned long long)(min / MIB),
				     (unsigned long long)(j->mv->esp_size / MIB),
				     (unsigned long long)(j->mv->boot_size / MIB));
	/* Written by azl_emit_disk into the rest of the disk: mv->size -
	 * overhead bytes. */
	return 0;
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
	part_fill(root, &j->root, j->root_min);
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
	free(j->cmdline_pre);
	free(j->dir);
}

/* The Secure Boot / verity signer when the build signs with a certificate.
 * A key without a certificate signs SHA256SUMS only: say so once per
 * bootable output, since its UKI stays unsigned. */
static int load_signer(struct build *b, const char *what, struct azl_pkcs7_signer *sg,
		       bool *loaded, struct azl_err *err)
{
	int r;

	*loaded = false;
	if (!b->o->sign_key)
		return 0;
	if (!b->o->sign_cert) {
		azl_build_warn(b, azl_xasprintf("note: %s: the UKI is not Secure Boot signed: that needs --sign-cert with --sign-key",
						what));
		return 0;
	}
	r = azl_pkcs7_signer_load(b->o->sign_key, b->o->sign_cert, b->o->sign_passphrase, sg, err);
	if (r < 0)
		return azl_err_prefix(err, "%s: Secure Boot signing key", what);
	*loaded = true;
	return 0;
}

int azl_build_emit_vhd(struct build *b, struct azl_err *err)
{
	struct vhd_job j = { .mv = b->m->vhd, .mk = b->m->kernel, .what = "outputs.vhd",
			     .systemd_boot = b->m->vhd->systemd_boot,
			     .xbootldr = b->m->vhd->boot_size != 0 };
	struct azl_pkcs7_signer sg = { 0 };
	bool signing = false;
	struct azl_disk_layout l;
	char *name = azl_xasprintf("%s.%s", b->m->name, j.mv->raw ? "img" : "vhd");
	char *path = azl_path_join(b->work, name);
	int r;

	azl_build_stage(b, "vhd", name);
	if ((r = load_signer(b, "outputs.vhd", &sg, &signing, err)) < 0)
		goto out;
	if (signing)
		j.signer = &sg;
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
		azl_build_add_output(b, name);
out:
	if (j.dir) {
		struct azl_err ignored = { 0 };
		azl_staging_rmtree(j.dir, &ignored);
	}
	if (signing)
		azl_pkcs7_signer_release(&sg);
	vhd_job_release(&j);
	free(name);
	free(path);
	return r;
}


/* --- flatcar: ESP, [BIOS-BOOT], USR-A (/usr + dm-verity), USR-B, OEM, ROOT ---
 *
 * Modelled on Flatcar Container Linux's disk_layout.json: the same labels,
 * partition numbers (1 ESP, 2 BIOS-BOOT, 3 USR-A, 4 USR-B, 6 OEM, 9 ROOT), type GUIDs and the ChromeOS/Flatcar update-engine attribute bits on the
 * USR partitions (cgpt's layout: priority bits 48-51, tries 52-55,
 * successful 56).  USR-A holds NAME.usr.raw's bytes and, right after them
 * (hash offset = the size of NAME.usr.raw), NAME.usr.verity; USR-B is empty
 * for the A/B updater.  ROOT is the model without /usr (so /etc is populated
 * from the image's /etc); /usr stays there as the mount point. */

#define FLATCAR_TYPE_USR "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6"    /* flatcar-usr */
#define FLATCAR_TYPE_RESIZE "3884dd41-8582-4404-b9a8-e9b84f2df50e" /* flatcar-resize */
#define FLATCAR_TYPE_DATA "0fc63daf-8483-4772-8e79-3d69d8477de4"   /* Linux data */
#define FLATCAR_TYPE_BIOS "21686148-6449-6e6f-744e-656564454649"   /* BIOS boot */
#define GPT_ATTR_PRIORITY(p) ((uint64_t)(p) << 48)
#define GPT_ATTR_TRIES(t) ((uint64_t)(t) << 52)
#define GPT_ATTR_SUCCESSFUL (1ull << 56)
#define MAX_WARN_FILES 20

struct flatcar_job {
	const struct azl_manifest_flatcar *mf;
	struct vhd_job d;            /* kernel, initramfs, UKI, ESP, parts */
	char *usr_raw, *usr_verity;  /* work paths of the two payload files */
	struct ext4_fill oem;        /* ROOT is d.root; both written in place */
	struct azl_fs *oem_fs;       /* OEM's (empty) model */
	uint64_t usr_fs_size;
	struct azl_verity_result vr;
	size_t ix_usr_a, ix_root;
};

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == 0);
}

static bool not_usr(void *ctx, const struct azl_node *n)
{
	(void)ctx;
	return under(n->path, "/usr") && strcmp(n->path, "/usr") != 0;
}

/* Files an immutable image keeps outside /usr, /etc and /var: they live on
 * ROOT, outside the verity-protected /usr, and an A/B update never changes
 * them.  Directories (empty mount points like /home) and the merged-/usr
 * symlinks (/bin -> usr/bin) are expected. */
static void flatcar_warn_outside(struct build *b)
{
	size_t n = azl_fs_count(b->fs), found = 0;
	struct azl_node *const *all = azl_fs_sorted(b->fs);
	struct azl_buf names = AZL_BUF_INIT;

	for (size_t i = 0; i < n; i++) {
		const struct azl_node *nd = all[i];
		if (nd->type == AZL_FT_DIR || under(nd->path, "/usr") ||
		    under(nd->path, "/etc") || under(nd->path, "/var"))
			continue;
		if (nd->type == AZL_FT_SYMLINK && !strchr(nd->path + 1, '/') &&
		    nd->link_target && !strncmp(nd->link_target, "usr/", 4))
			continue;
		if (found++ < MAX_WARN_FILES)
			azl_buf_addf(&names, "%s%s", found > 1 ? ", " : "", nd->path);
	}
	if (found)
		azl_build_warn(b, azl_xasprintf("warning: outputs.flatcar: %zu file%s outside /usr, /etc and /var (on ROOT, not verity-protected, not updated by A/B updates): %s%s",
						found, found == 1 ? "" : "s", (char *)names.data,
						found > MAX_WARN_FILES ? ", ..." : ""));
	azl_buf_release(&names);
}

/* NAME.usr.raw: /usr as a read-only ext4 of minimal size; it and its hash
 * tree must fit usr_size. */
static int flatcar_usr(struct build *b, struct flatcar_job *j, struct azl_err *err)
{
	struct azl_ext4_opts eo = { .mtime = b->sde, .label = "USR-A", .root = "/usr",
				    .read_only = true };
	uint64_t min = 0, tree;
	int r;

	if (!azl_fs_get(b->fs, "/usr"))
		return azl_err_input(err, "%s: outputs.flatcar: the image has no /usr", b->m->path);
	azl_seed_uuid(&b->seed, "ext4-uuid:usr", eo.uuid);
	azl_seed_derive(&b->seed, "ext4-hash-seed:usr", eo.hash_seed, sizeof(eo.hash_seed));
	if ((r = azl_ext4_min_size(b->fs, &eo, &min, err)) < 0)
		return r;
	/* A little room, as mkfs users leave; whole MiB either way. */
	eo.size_bytes = (min + min / 50 + MIB - 1) / MIB * MIB;
	tree = azl_verity_tree_size(eo.size_bytes);
	if (eo.size_bytes + tree > j->mf->usr_size)
		return azl_err_input(err, "%s: outputs.flatcar.usr_size: %llu MiB is too small for /usr: it needs at least %llu MiB (filesystem %llu MiB + dm-verity hash tree %llu KiB)",
				     b->m->path, (unsigned long long)(j->mf->usr_size / MIB),
				     (unsigned long long)((eo.size_bytes + tree + MIB - 1) / MIB),
				     (unsigned long long)(eo.size_bytes / MIB),
				     (unsigned long long)(tree / 1024));
	j->usr_fs_size = eo.size_bytes;
	return azl_emit_ext4(b->fs, &eo, j->usr_raw, NULL, err);
}

/* NAME.usr.verity (superblock + tree) and NAME.usr.roothash; salt and UUID
 * from the build seed, so the root hash is the same on every rebuild. */
static int flatcar_verity(struct build *b, struct flatcar_job *j, const char *roothash_path,
			  struct azl_err *err)
{
	struct azl_verity_params p = { .salt_len = 32 };
	struct azl_out o = { .fd = -1 };
	int in = open(j->usr_raw, O_RDONLY | O_CLOEXEC), r;

	if (in < 0)
		return azl_errf(err, -errno, "%s: %s", j->usr_raw, strerror(errno));
	azl_seed_derive(&b->seed, "verity-salt:usr", p.salt, p.salt_len);
	azl_seed_uuid(&b->seed, "verity-uuid:usr", p.uuid);
	r = azl_out_open(&o, j->usr_verity, 0644, err);
	if (r == 0)
		r = azl_verity_write(in, j->usr_fs_size, o.fd, 0, &p, &j->vr, err);
	if (r == 0)
		r = azl_out_commit(&o, err);
	else
		azl_out_abort(&o);
	close(in);
	if (r == 0) {
		char *line = azl_xasprintf("%s\n", j->vr.root_hex);
		r = azl_write_file_atomic(roothash_path, line, strlen(line), 0644, err);
		free(line);
	}
	return r < 0 ? azl_err_prefix(err, "outputs.flatcar: dm-verity") : 0;
}

/* NAME.usr.roothash.p7s: a PKCS#7 detached signature over the root hash's
 * hex (the form the kernel's dm-verity root_hash_sig_key_desc check and
 * systemd-veritysetup's root-hash-signature= read), and
 * NAME.usr.verity-sig.json: the UAPI usr-verity-sig document
 * {rootHash, certificateFingerprint, signature}. */
static int flatcar_verity_sig(struct build *b, struct flatcar_job *j,
			      const struct azl_pkcs7_signer *sg, const char *n_p7,
			      const char *n_js, struct azl_err *err)
{
	struct azl_buf der = AZL_BUF_INIT, json = AZL_BUF_INIT;
	char *p7 = azl_path_join(b->work, n_p7), *js = azl_path_join(b->work, n_js);
	int r = azl_verity_sig(j->vr.root_hex, sg, &der, &json, err);

	if (r == 0)
		r = azl_write_file_atomic(p7, der.data, der.len, 0644, err);
	if (r == 0)
		r = azl_write_file_atomic(js, json.data, json.len, 0644, err);
	if (r < 0)
		azl_err_prefix(err, "outputs.flatcar: signing the /usr root hash");
	azl_buf_release(&der);
	azl_buf_release(&json);
	free(p7);
	free(js);
	return r;
}

/* ROOT: the model without /usr's content; OEM: an empty ext4 labelled OEM.
 * Both are checked and sized here, and written by azl_emit_disk into their
 * partitions (flatcar_layout). */
static int flatcar_root(struct build *b, struct flatcar_job *j, struct azl_err *err)
{
	struct azl_ext4_opts eo = { .mtime = b->sde, .label = "ROOT", .exclude_fn = not_usr };
	struct azl_ext4_opts oo = { .mtime = b->sde, .label = "OEM" };
	uint64_t min = 0, fit = 0;
	int r;

	azl_seed_uuid(&b->seed, "ext4-uuid:root", eo.uuid);
	azl_seed_derive(&b->seed, "ext4-hash-seed:root", eo.hash_seed, sizeof(eo.hash_seed));
	/* One estimate: the size that fits (no root_size) and the minimum. */
	r = azl_ext4_image_size(b->fs, &eo, &fit, &min, err);
	if (r == 0 && j->mf->root_size && j->mf->root_size < min)
		r = azl_err_input(err, "%s: outputs.flatcar.root_size: %llu MiB is too small: the root filesystem (everything but /usr) needs at least %llu MiB",
				  b->m->path, (unsigned long long)(j->mf->root_size / MIB),
				  (unsigned long long)(min / MIB));
	eo.size_bytes = j->mf->root_size;
	j->d.root = (struct ext4_fill){ .fs = b->fs, .eo = eo,
					.size = j->mf->root_size ? j->mf->root_size : fit };
	j->d.root_min = j->d.root.size;
	azl_seed_uuid(&b->seed, "ext4-uuid:oem", oo.uuid);
	azl_seed_derive(&b->seed, "ext4-hash-seed:oem", oo.hash_seed, sizeof(oo.hash_seed));
	oo.size_bytes = j->mf->oem_size;
	j->oem_fs = azl_fs_new();
	struct azl_node *top = azl_fs_get(j->oem_fs, "/");
	if (top) {
		top->mode = 0755;
		top->mtime = b->sde;
	}
	j->oem = (struct ext4_fill){ .fs = j->oem_fs, .eo = oo };
	if (r == 0)
		r = azl_ext4_image_size(j->oem_fs, &oo, &j->oem.size, NULL, err);
	return r;
}

static struct azl_disk_part *flatcar_part(struct flatcar_job *j, unsigned number,
					  const char *label, const char *type, uint64_t size)
{
	struct azl_disk_part *p = &j->d.parts[j->d.nparts++];
	p->number = number;
	p->label = label;
	azl_guid_parse(type, p->type);
	p->size = size;
	return p;
}

static void flatcar_layout(struct build *b, struct flatcar_job *j, struct azl_disk_layout *l)
{
	struct azl_disk_part *p;

	memset(j->d.parts, 0, sizeof(j->d.parts));
	j->d.nparts = 0;
	p = flatcar_part(j, 1, "EFI-SYSTEM", AZL_GPT_TYPE_ESP, j->mf->esp_size);
	p->source = AZL_PART_FAT;
	p->fat = (struct azl_fat_spec){ .files = j->d.esp, .nfiles = j->d.nesp,
					.label = "EFI-SYSTEM", .mtime = b->sde };
	if (j->mf->bios_boot)
		flatcar_part(j, 2, "BIOS-BOOT", FLATCAR_TYPE_BIOS, 2 * MIB);
	j->ix_usr_a = j->d.nparts;
	p = flatcar_part(j, 3, "USR-A", FLATCAR_TYPE_USR, j->mf->usr_size);
	p->attrs = GPT_ATTR_PRIORITY(1) | GPT_ATTR_TRIES(0) | GPT_ATTR_SUCCESSFUL;
	p->source = AZL_PART_IMAGE;
	p->image = j->usr_raw;
	p->tail_image = j->usr_verity;
	p->tail_offset = j->usr_fs_size;
	flatcar_part(j, 4, "USR-B", FLATCAR_TYPE_USR, j->mf->usr_size);
	p = flatcar_part(j, 6, "OEM", FLATCAR_TYPE_DATA, j->mf->oem_size);
	part_fill(p, &j->oem, j->oem.size);
	j->ix_root = j->d.nparts;
	j->d.root_ix = j->ix_root;
	p = flatcar_part(j, 9, "ROOT", FLATCAR_TYPE_RESIZE, 0); /* fits its content */
	part_fill(p, &j->d.root, j->d.root_min);
	for (size_t i = 0; i < j->d.nparts; i++)
		azl_disk_part_seed(&b->seed, &j->d.parts[i]);
	memset(l, 0, sizeof(*l));
	azl_disk_layout_seed(&b->seed, l);
	l->size = 0; /* fit: ROOT is last and grows on first boot */
	l->format = j->mf->raw ? AZL_DISK_RAW : AZL_DISK_VHD;
	l->mtime = b->sde;
	l->parts = j->d.parts;
	l->nparts = j->d.nparts;
}

/* mount.usr / verity.* as Flatcar's bootengine reads them, usrhash= and
 * systemd.verity_usr_* as systemd's veritysetup and fstab generators do;
 * ROOT read-write. */
static char *flatcar_cmdline(const struct flatcar_job *j)
{
	char a[37];

	azl_uuid_format(j->d.parts[j->ix_usr_a].uuid, a);
	return azl_xasprintf("mount.usr=/dev/mapper/usr mount.usrflags=ro mount.usrfstype=ext4 "
			     "verity.usr=PARTUUID=%s verity.usrhash=%s usrhash=%s "
			     "systemd.verity_usr_data=PARTUUID=%s systemd.verity_usr_hash=PARTUUID=%s "
			     "systemd.verity_usr_options=hash-offset=%llu rw",
			     a, j->vr.root_hex, j->vr.root_hex, a, a,
			     (unsigned long long)j->usr_fs_size);
}

static void flatcar_job_release(struct flatcar_job *j)
{
	vhd_job_release(&j->d);
	free(j->usr_raw);
	free(j->usr_verity);
	azl_fs_free(j->oem_fs);
}

int azl_build_emit_flatcar(struct build *b, struct azl_err *err)
{
	struct flatcar_job j = { .mf = b->m->flatcar };
	struct azl_disk_layout l;
	const char *ext = j.mf->raw ? "img" : "vhd";
	char *name = azl_xasprintf("%s.flatcar.%s", b->m->name, ext);
	char *n_raw = azl_xasprintf("%s.usr.raw", b->m->name);
	char *n_verity = azl_xasprintf("%s.usr.verity", b->m->name);
	char *n_hash = azl_xasprintf("%s.usr.roothash", b->m->name);
	char *n_p7 = azl_xasprintf("%s.usr.roothash.p7s", b->m->name);
	char *n_js = azl_xasprintf("%s.usr.verity-sig.json", b->m->name);
	char *path = azl_path_join(b->work, name), *hash_path = azl_path_join(b->work, n_hash);
	struct azl_pkcs7_signer sg = { 0 };
	bool signing = false;
	int r;

	j.d = (struct vhd_job){ .mk = b->m->kernel, .what = "outputs.flatcar",
				.systemd_boot = j.mf->systemd_boot, .verity = true };
	azl_build_stage(b, "flatcar", name);
	if ((r = load_signer(b, "outputs.flatcar", &sg, &signing, err)) < 0)
		goto out;
	if (signing)
		j.d.signer = &sg;
	j.d.dir = azl_path_join(b->work, "flatcar");
	j.usr_raw = azl_path_join(b->work, n_raw);
	j.usr_verity = azl_path_join(b->work, n_verity);
	flatcar_warn_outside(b);
	if (!(j.d.mk && j.d.mk->initrd) && !azl_initramfs_veritysetup(b->fs))
		azl_build_warn(b, azl_xstrdup("warning: outputs.flatcar: the image ships no veritysetup, so its generated initramfs cannot open the verity-protected /usr and refuses to boot (add cryptsetup, or name an initramfs with kernel.initrd)"));
	r = azl_kernel_find(b->fs, NULL, &j.d.k, err);
	if (r < 0) {
		azl_err_prefix(err, "%s: outputs.flatcar boots a kernel of the image", b->m->path);
		goto out;
	}
	if ((r = azl_mkdir_p(j.d.dir, err)) < 0 || (r = flatcar_usr(b, &j, err)) < 0 ||
	    (r = flatcar_verity(b, &j, hash_path, err)) < 0 ||
	    (signing && (r = flatcar_verity_sig(b, &j, &sg, n_p7, n_js, err)) < 0) ||
	    (r = flatcar_root(b, &j, err)) < 0)
		goto out;
	flatcar_layout(b, &j, &l); /* partition GUIDs first: the cmdline names them */
	j.d.cmdline_pre = flatcar_cmdline(&j);
	if ((r = vhd_initrd(b, &j.d, err)) < 0 || (r = vhd_boot_files(b, &j.d, err)) < 0)
		goto out;
	flatcar_layout(b, &j, &l);
	r = azl_emit_disk(&l, path, NULL, err);
	if (r < 0) {
		azl_err_prefix(err, "%s: outputs.flatcar", b->m->path);
		goto out;
	}
	azl_build_add_output(b, name);
	azl_build_add_output(b, n_raw);
	azl_build_add_output(b, n_verity);
	azl_build_add_output(b, n_hash);
	if (signing) {
		azl_build_add_output(b, n_p7);
		azl_build_add_output(b, n_js);
	}
out:
	if (signing)
		azl_pkcs7_signer_release(&sg);
	if (j.d.dir) {
		struct azl_err ignored = { 0 };
		azl_staging_rmtree(j.d.dir, &ignored);
	}
	flatcar_job_release(&j);
	free(name);
	free(n_raw);
	free(n_verity);
	free(n_hash);
	free(n_p7);
	free(n_js);
	free(path);
	free(hash_path);
	return r;
}
