/* uki: a UKI from the host's systemd stub and a hand-made model, read back
 * by binutils (objdump -h: sections, objcopy --dump-section: contents) and
 * sbsigntool (sbverify --list parses it with no warning); byte-identical
 * when built twice; errors for a model without a kernel and a non-PE stub.
 *
 * With AZL_UKI_BOOT_OUT=dir and AZL_UKI_RPMS="a.rpm b.rpm ..." it instead
 * installs those packages into a model (azl_install), gives it an
 * /usr/sbin/init that prints AZL-BOOT-OK and powers off, and leaves for
 * tests/integration/uki_boot.sh: dir/esp/EFI/BOOT/BOOTX64.EFI (initramfs
 * generated from the model), dir/uki2.efi (the same built again) and
 * dir/root.ext4 (lib/compose/emit_ext4).  AZL_UKI_BOOTLOADER=systemd-boot
 * puts systemd-boot at that path, the UKI at dir/esp/EFI/Linux/azl.efi
 * and loader/loader.conf beside them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/emit_ext4.h"
#include "compose/initramfs.h"
#include "compose/install.h"
#include "compose/objstore.h"
#include "compose/uki.h"
#include "t.h"

#define SDE 1700000000


static void add(struct azl_fs *fs, const char *path, enum azl_ftype t,
		const char *data)
{
	struct azl_node n = { 0 };
	struct azl_err err = { 0 };

	n.path = azl_xstrdup(path);
	n.type = t;
	n.mode = t == AZL_FT_DIR ? 0755 : 0644;
	if (t == AZL_FT_SYMLINK) {
		n.link_target = azl_xstrdup(data);
	} else if (data) {
		n.size = strlen(data);
		n.data = (unsigned char *)azl_xstrdup(data);
	}
	if (azl_fs_put(fs, &n, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		azl_node_release(&n);
	}
}

static struct azl_fs *small_model(void)
{
	struct azl_fs *fs = azl_fs_new();
	static const char *const dirs[] = { "/etc", "/usr", "/usr/lib", "/usr/lib/modules",
					    "/usr/lib/modules/9.9.9-test", "/usr/share", NULL };
	for (size_t i = 0; dirs[i]; i++)
		add(fs, dirs[i], AZL_FT_DIR, NULL);
	add(fs, "/usr/lib/modules/9.9.9-test/vmlinuz", AZL_FT_REG, "not really a kernel\n");
	add(fs, "/usr/share/os-release", AZL_FT_REG, "ID=azl\nNAME=\"AZL test\"\n");
	add(fs, "/etc/os-release", AZL_FT_SYMLINK, "../usr/share/os-release");
	return fs;
}

static int build(struct azl_fs *fs, const char *dir, const char *name,
		 struct azl_efi_origin *origin, struct azl_err *err)
{
	struct azl_kernel k;
	char *initrd = azl_path_join(dir, "initrd"), *out = azl_path_join(dir, name);
	struct azl_uki_opts o = { .cmdline = "console=ttyS0 root=PARTUUID=1234", .initrd_path = initrd };
	int rc = azl_write_file_atomic(initrd, "INITRD-BYTES", 12, 0644, err);

	if (rc == 0)
		rc = azl_kernel_find(fs, NULL, &k, err);
	if (rc == 0) {
		rc = azl_uki_build(fs, &k, &o, out, origin, err);
		azl_kernel_release(&k);
	}
	free(initrd);
	free(out);
	return rc;
}

static char *dump(const char *dir, const char *sec)
{
	char *cmd = azl_xasprintf("cd %s && objcopy --dump-section %s=sec.out a.efi junk.efi "
				  "2>&1 && cat sec.out", dir, sec);
	char *out = t_run(cmd);
	free(cmd);
	return out;
}

static void test_uki(void)
{
	struct azl_fs *fs = small_model();
	struct azl_err err = { 0 };
	struct azl_efi_origin origin;
	char dir[] = "/tmp/azl-uki-XXXXXX", *cmd, *out, host_sha[65];

	CHECK(mkdtemp(dir) != NULL);
	CHECK(build(fs, dir, "a.efi", &origin, &err) == 0);
	if (err.msg[0])
		fprintf(stderr, "%s\n", err.msg);
	CHECK_STR(origin.where, "host");
	CHECK_STR(origin.path, AZL_UKI_STUB_HOST);
	CHECK(azl_sha256_file(AZL_UKI_STUB_HOST, host_sha, NULL, &err) == 0);
	CHECK_STR(origin.sha256, host_sha);
	CHECK(build(fs, dir, "b.efi", &origin, &err) == 0);

	cmd = azl_xasprintf("cmp %s/a.efi %s/b.efi && echo same", dir, dir);
	out = t_run(cmd);
	CHECK_STR(out, "same\n");
	free(out);
	free(cmd);

	cmd = azl_xasprintf("objdump -h %s/a.efi | awk '$1 ~ /^[0-9]+$/ {print $2, $3}'", dir);
	out = t_run(cmd);
	CHECK_CONTAINS(out, ".sdmagic");
	CHECK_CONTAINS(out, ".osrel 00000017\n.cmdline 00000020\n.initrd 0000000c\n"
			    ".linux 00000014\n");
	free(out);
	free(cmd);

	out = dump(dir, ".osrel");
	CHECK_STR(out, "ID=azl\nNAME=\"AZL test\"\n");
	free(out);
	out = dump(dir, ".cmdline");
	CHECK_STR(out, "console=ttyS0 root=PARTUUID=1234");
	free(out);
	out = dump(dir, ".linux");
	CHECK_STR(out, "not really a kernel\n");
	free(out);
	out = dump(dir, ".initrd");
	CHECK_STR(out, "INITRD-BYTES");
	free(out);

	/* sbverify parses every header; a gap or overlap is a warning. */
	cmd = azl_xasprintf("sbverify --list %s/a.efi 2>&1; echo rc=$?", dir);
	out = t_run(cmd);
	CHECK_STR(out, "No signature table present\nrc=0\n");
	free(out);
	free(cmd);

	cmd = azl_xasprintf("rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	free(cmd);
	azl_fs_free(fs);
}

static void test_errors(void)
{
	struct azl_fs *fs = azl_fs_new();
	struct azl_err err = { 0 };
	struct azl_kernel k;
	struct azl_uki_input in = { .name = ".linux", .data = "x", .len = 1 };

	CHECK(azl_kernel_find(fs, NULL, &k, &err) == -EINVAL);
	CHECK(err.kind == AZL_ERR_INPUT);
	CHECK_CONTAINS(err.msg, "a bootable image needs a kernel");
	azl_fs_free(fs);

	fs = small_model();
	add(fs, "/boot", AZL_FT_DIR, NULL);
	add(fs, "/boot/vmlinuz-8.0", AZL_FT_REG, "k");
	add(fs, "/boot/vmlinuz-9.9.9-test", AZL_FT_REG, "k"); /* same kernel, both layouts */
	CHECK(azl_kernel_find(fs, NULL, &k, &err) == -EINVAL);
	CHECK_CONTAINS(err.msg, "several kernels in the image (8.0, 9.9.9-test): name one");
	CHECK(azl_kernel_find(fs, "8.0", &k, &err) == 0);
	CHECK_STR(k.vmlinuz, "/boot/vmlinuz-8.0");
	CHECK_STR(k.modules_dir, "/usr/lib/modules/8.0");
	azl_kernel_release(&k);
	/* Not usr-merged: modules under a real /lib/modules. */
	add(fs, "/lib", AZL_FT_DIR, NULL);
	add(fs, "/lib/modules", AZL_FT_DIR, NULL);
	add(fs, "/lib/modules/8.0", AZL_FT_DIR, NULL);
	CHECK(azl_kernel_find(fs, "8.0", &k, &err) == 0);
	CHECK_STR(k.modules_dir, "/lib/modules/8.0");
	azl_kernel_release(&k);
	azl_fs_free(fs);

	CHECK(azl_uki_write("MZ not a pe file at all.......................................................",
			    70, &in, 1, "/tmp/azl-uki-never.efi", &err) == -EINVAL);
	CHECK_CONTAINS(err.msg, "EFI stub: no PE signature");
	CHECK(access("/tmp/azl-uki-never.efi", F_OK) != 0);
}

static void test_systemd_boot(void)
{
	struct azl_fs *fs = small_model();
	struct azl_err err = { 0 };
	struct azl_efi_origin o;
	char dir[] = "/tmp/azl-sdboot-XXXXXX", *p, *data = NULL, hex[65];
	size_t len = 0;

	CHECK(mkdtemp(dir) != NULL);
	CHECK(azl_uki_systemd_boot(fs, NULL, dir, &o, &err) == 0);
	CHECK_STR(o.where, "host");
	CHECK(azl_sha256_file(AZL_UKI_SDBOOT_HOST, hex, NULL, &err) == 0);
	CHECK_STR(o.sha256, hex);
	p = azl_path_join(dir, "EFI/BOOT/BOOTX64.EFI");
	CHECK(azl_sha256_file(p, hex, NULL, &err) == 0);
	CHECK_STR(o.sha256, hex);
	free(p);
	p = azl_path_join(dir, "loader/loader.conf");
	CHECK(azl_read_file(p, 0, &data, &len, &err) == 0);
	CHECK_STR(data, "timeout 0\n");
	free(data);
	free(p);
	p = azl_path_join(dir, "EFI/Linux");
	CHECK(access(p, F_OK) == 0);
	free(p);

	/* An image shipping systemd-boot wins over the host. */
	add(fs, "/usr/lib/systemd", AZL_FT_DIR, NULL);
	add(fs, "/usr/lib/systemd/boot", AZL_FT_DIR, NULL);
	add(fs, "/usr/lib/systemd/boot/efi", AZL_FT_DIR, NULL);
	add(fs, AZL_UKI_SDBOOT_MODEL, AZL_FT_REG, "image's systemd-boot");
	CHECK(azl_uki_systemd_boot(fs, "/nonexistent", dir, &o, &err) == 0);
	CHECK_STR(o.where, "image");
	CHECK_STR(o.path, AZL_UKI_SDBOOT_MODEL);
	p = azl_path_join(dir, "EFI/BOOT/BOOTX64.EFI");
	CHECK(azl_read_file(p, 0, &data, &len, &err) == 0);
	CHECK_STR(data, "image's systemd-boot");
	free(data);
	free(p);
	azl_fs_remove(fs, AZL_UKI_SDBOOT_MODEL);
	CHECK(azl_uki_systemd_boot(fs, "/nonexistent/sd.efi", dir, &o, &err) < 0);
	CHECK_CONTAINS(err.msg, "/nonexistent/sd.efi");

	p = azl_xasprintf("rm -rf %s", dir);
	CHECK(system(p) == 0);
	free(p);
	azl_fs_free(fs);
}

/* ---- boot mode ---- */

static int boot_model(struct azl_fs *fs, const char *dir, char *rpms,
		      struct azl_err *err)
{
	struct azl_install_pkg pk[16];
	struct azl_install_opts o = { .sde = SDE };
	struct azl_install_result res;
	struct azl_objstore *st = NULL;
	char *store = azl_path_join(dir, "store"), *tok, *save = NULL;
	size_t n = 0;
	int rc = azl_objstore_open(store, &st, err);

	for (tok = strtok_r(rpms, " ", &save); tok && n < 16; tok = strtok_r(NULL, " ", &save))
		pk[n++] = (struct azl_install_pkg){ .path = tok };
	if (rc == 0)
		rc = azl_install(fs, st, pk, n, &o, &res, err);
	if (rc == 0) {
		add(fs, "/usr/sbin/init", AZL_FT_REG,
		    "#!/bin/sh\necho AZL-BOOT-OK\nbusybox poweroff -f\n");
		azl_fs_get(fs, "/usr/sbin/init")->mode = 0755;
	}
	azl_install_result_release(&res);
	azl_objstore_close(st);
	free(store);
	return rc;
}

static int boot_artifacts(struct azl_fs *fs, const char *dir, struct azl_err *err)
{
	struct azl_kernel k = { 0 };
	struct azl_out o = { .fd = -1 };
	struct azl_initramfs_opts io = { .comp = AZL_COMP_GZIP, .mtime = SDE };
	const char *cmdline = getenv("AZL_UKI_CMDLINE"), *bl = getenv("AZL_UKI_BOOTLOADER");
	int sdboot = bl && !strcmp(bl, "systemd-boot");
	struct azl_uki_opts uo = { .cmdline = cmdline ? cmdline : "console=ttyS0 root=/dev/vda rw" };
	struct azl_ext4_opts eo = { .mtime = SDE, .uuid = { 1, 2, 3 }, .hash_seed = { 4, 5, 6 } };
	char *initrd = azl_path_join(dir, "initrd.img"), *esp = azl_path_join(dir, "esp/EFI/BOOT");
	char *uki = azl_path_join(esp, "BOOTX64.EFI"), *uki2 = azl_path_join(dir, "uki2.efi");
	char *root = azl_path_join(dir, "root.ext4");
	int rc = azl_kernel_find(fs, NULL, &k, err);

	if (rc == 0)
		rc = azl_out_open(&o, initrd, 0644, err);
	if (rc == 0) {
		rc = azl_initramfs_write(fs, &k, &io, azl_zstream_fd_sink, &o.fd, NULL, err);
		rc = rc < 0 ? (azl_out_abort(&o), rc) : azl_out_commit(&o, err);
	}
	uo.initrd_path = initrd;
	if (rc == 0 && sdboot) {
		/* systemd-boot at the removable-media path, the UKI in EFI/Linux. */
		char *esp_root = azl_path_join(dir, "esp");
		free(uki);
		uki = azl_path_join(esp_root, "EFI/Linux/azl.efi");
		rc = azl_uki_systemd_boot(fs, NULL, esp_root, NULL, err);
		free(esp_root);
	} else if (rc == 0) {
		rc = azl_mkdir_p(esp, err);
	}
	if (rc == 0)
		rc = azl_uki_build(fs, &k, &uo, uki, NULL, err);
	if (rc == 0)
		rc = azl_uki_build(fs, &k, &uo, uki2, NULL, err);
	if (rc == 0)
		rc = azl_emit_ext4(fs, &eo, root, NULL, err);
	azl_kernel_release(&k);
	free(initrd);
	free(esp);
	free(uki);
	free(uki2);
	free(root);
	return rc;
}

static int boot_mode(const char *dir, const char *rpms)
{
	struct azl_fs *fs = azl_fs_new();
	struct azl_err err = { 0 };
	char *list = azl_xstrdup(rpms);
	int rc = boot_model(fs, dir, list, &err);

	if (rc == 0)
		rc = boot_artifacts(fs, dir, &err);
	if (rc < 0)
		fprintf(stderr, "boot artifacts: %s\n", err.msg);
	CHECK(rc == 0);
	free(list);
	azl_fs_free(fs);
	return t_done();
}

int main(void)
{
	const char *boot = getenv("AZL_UKI_BOOT_OUT");

	if (boot)
		return boot_mode(boot, getenv("AZL_UKI_RPMS") ? getenv("AZL_UKI_RPMS") : "");
	test_uki();
	test_errors();
	test_systemd_boot();
	return t_done();
}
