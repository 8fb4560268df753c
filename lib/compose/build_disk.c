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
		azl_build_warn(b, azl_xasprintf("note: outputs.vhd: %s taken from the build host: %s (sha256 %s); the image ships none",
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

int azl_build_emit_vhd(struct build *b, struct azl_err *err)
{
	struct vhd_job j = { .mv = b->m->vhd, .mk = b->m->kernel };
	struct azl_disk_layout l;
	char *name = azl_xasprintf("%s.%s", b->m->name, j.mv->raw ? "img" : "vhd");
	char *path = azl_path_join(b->work, name);
	int r;

	azl_build_stage(b, "vhd", name);
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
	vhd_job_release(&j);
	free(name);
	free(path);
	return r;
}

