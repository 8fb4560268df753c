/* initramfs: a hand-made model with a fake modules tree (plain, .ko.xz
 * and .ko.zst modules, modules.dep, modules.builtin) and the host's static
 * busybox as the image's: the closure and its load order, names with '-'
 * or '_', builtin and missing modules, dependency loops; the archive read
 * back by GNU cpio (listing, decompressed module bytes, /init's insmod
 * order); byte-identical twice; an image without busybox or with a
 * dynamic one is refused with a message saying what to do. */
#include <errno.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "compose/initramfs.h"
#include "t.h"

#define KV "6.6.6-test"
#define MD "/usr/lib/modules/" KV

static void put(struct azl_fs *fs, const char *path, enum azl_ftype t,
		const void *data, size_t len, const char *host)
{
	struct azl_node n = { 0 };
	struct azl_err err = { 0 };
	struct stat st;

	n.path = azl_xstrdup(path);
	n.type = t;
	n.mode = t == AZL_FT_DIR ? 0755 : 0644;
	if (t == AZL_FT_SYMLINK) {
		n.link_target = azl_xstrdup(data);
	} else if (host && stat(host, &st) == 0) {
		n.data_path = azl_xstrdup(host);
		n.size = (uint64_t)st.st_size;
		n.mode = 0755;
	} else if (len) {
		n.data = azl_xmalloc(len);
		memcpy(n.data, data, len);
		n.size = len;
	}
	if (azl_fs_put(fs, &n, &err) < 0) {
		fprintf(stderr, "%s: %s\n", path, err.msg);
		azl_node_release(&n);
	}
}

static void put_text(struct azl_fs *fs, const char *path, const char *s)
{
	put(fs, path, AZL_FT_REG, s, strlen(s), NULL);
}

static const char dep[] =
	"kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio_ring.ko "
	"kernel/drivers/virtio/virtio.ko\n"
	"kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n"
	"kernel/drivers/virtio/virtio_ring.ko:\n"
	"kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko "
	"kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko\n"
	"kernel/drivers/virtio/virtio_pci_modern_dev.ko:\n"
	"kernel/drivers/md/dm-verity.ko.zst: kernel/drivers/md/dm-bufio.ko kernel/drivers/md/dm-mod.ko\n"
	"kernel/drivers/md/dm-mod.ko:\n"
	"kernel/drivers/md/dm-bufio.ko:\n"
	"kernel/fs/unused.ko:\n"
	"kernel/loop/a.ko: kernel/loop/b.ko\n"
	"kernel/loop/b.ko: kernel/loop/a.ko\n";

static const char *const plain_mods[] = {
	"kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko",
	"kernel/drivers/virtio/virtio_pci.ko", "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
	"kernel/drivers/md/dm-mod.ko", "kernel/drivers/md/dm-bufio.ko", "kernel/fs/unused.ko",
	NULL,
};

static void put_xz(struct azl_fs *fs, const char *path, const char *text)
{
	uint8_t out[4096];
	size_t pos = 0;
	CHECK(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, NULL, (const uint8_t *)text,
				      strlen(text), out, &pos, sizeof(out)) == LZMA_OK);
	put(fs, path, AZL_FT_REG, out, pos, NULL);
}

static void put_zst(struct azl_fs *fs, const char *path, const char *text)
{
	char out[4096];
	size_t n = ZSTD_compress(out, sizeof(out), text, strlen(text), 3);
	CHECK(!ZSTD_isError(n));
	put(fs, path, AZL_FT_REG, out, n, NULL);
}

static struct azl_fs *model(int with_busybox)
{
	struct azl_fs *fs = azl_fs_new();
	static const char *const dirs[] = {
		"/usr", "/usr/bin", "/usr/lib", "/usr/lib/modules", MD, MD "/kernel",
		MD "/kernel/drivers", MD "/kernel/drivers/block", MD "/kernel/drivers/virtio",
		MD "/kernel/drivers/md", MD "/kernel/fs", NULL,
	};

	for (size_t i = 0; dirs[i]; i++)
		put(fs, dirs[i], AZL_FT_DIR, NULL, 0, NULL);
	put_text(fs, MD "/vmlinuz", "kernel image\n");
	put_text(fs, MD "/modules.dep", dep);
	put_text(fs, MD "/modules.builtin", "kernel/fs/ext4/ext4.ko\nkernel/lib/crc-t10dif.ko\n");
	for (size_t i = 0; plain_mods[i]; i++) {
		char *p = azl_xasprintf(MD "/%s", plain_mods[i]);
		char *text = azl_xasprintf("module %s\n", plain_mods[i]);
		put_text(fs, p, text);
		free(p);
		free(text);
	}
	put_xz(fs, MD "/kernel/drivers/block/virtio_blk.ko.xz", "module virtio_blk (was xz)\n");
	put_zst(fs, MD "/kernel/drivers/md/dm-verity.ko.zst", "module dm-verity (was zstd)\n");
	put(fs, "/bin", AZL_FT_SYMLINK, "usr/bin", 0, NULL);
	if (with_busybox)
		put(fs, "/usr/bin/busybox", AZL_FT_REG, NULL, 0, "/bin/busybox");
	return fs;
}

static char *joined(char **v, size_t n)
{
	struct azl_buf b = AZL_BUF_INIT;
	for (size_t i = 0; i < n; i++)
		azl_buf_addf(&b, "%s\n", v[i]);
	return azl_buf_detach(&b);
}

static void test_closure(void)
{
	struct azl_fs *fs = model(1);
	struct azl_err err = { 0 };
	struct azl_kernel k;
	char **v, *s;
	size_t n;
	static const char *const want[] = { "virtio-blk", "dm_verity", "virtio_pci", "ext4", NULL };
	static const char *const bad[] = { "virtio_blk", "nosuch", NULL };
	static const char *const loop[] = { "a", NULL };

	CHECK(azl_kernel_find(fs, NULL, &k, &err) == 0);
	CHECK_STR(k.version, KV);
	CHECK(azl_initramfs_modules(fs, &k, want, 0, &v, &n, &err) == 0);
	s = joined(v, n);
	CHECK_STR(s, "kernel/drivers/virtio/virtio_ring.ko\n"
		     "kernel/drivers/virtio/virtio.ko\n"
		     "kernel/drivers/block/virtio_blk.ko.xz\n"
		     "kernel/drivers/md/dm-mod.ko\n"
		     "kernel/drivers/md/dm-bufio.ko\n"
		     "kernel/drivers/md/dm-verity.ko.zst\n"
		     "kernel/drivers/virtio/virtio_pci_modern_dev.ko\n"
		     "kernel/drivers/virtio/virtio_pci.ko\n");
	free(s);
	azl_initramfs_list_free(v, n);

	CHECK(azl_initramfs_modules(fs, &k, bad, 0, &v, &n, &err) == -EINVAL);
	CHECK(err.kind == AZL_ERR_INPUT);
	CHECK_CONTAINS(err.msg, "kernel " KV " has no module nosuch");
	CHECK(v == NULL && n == 0);
	CHECK(azl_initramfs_modules(fs, &k, bad, 1, &v, &n, &err) == 0);
	CHECK(n == 3);
	azl_initramfs_list_free(v, n);
	CHECK(azl_initramfs_modules(fs, &k, loop, 0, &v, &n, &err) == -ELOOP);
	CHECK_CONTAINS(err.msg, "dependency loop through");
	azl_kernel_release(&k);
	azl_fs_free(fs);
}

static int buf_sink(void *ctx, const void *data, size_t len)
{
	azl_buf_add(ctx, data, len);
	return 0;
}


static int write_one(struct azl_fs *fs, enum azl_comp comp, struct azl_buf *out,
		     struct azl_err *err)
{
	static const char *const want[] = { "virtio_blk", "dm-verity", NULL };
	struct azl_initramfs_opts o = { .comp = comp, .mtime = 1700000000, .modules = want };
	struct azl_kernel k;
	int rc = azl_kernel_find(fs, NULL, &k, err);

	if (rc < 0)
		return rc;
	rc = azl_initramfs_write(fs, &k, &o, buf_sink, out, NULL, err);
	azl_kernel_release(&k);
	return rc;
}

static void test_archive(void)
{
	struct azl_fs *fs = model(1);
	struct azl_buf a = AZL_BUF_INIT, b = AZL_BUF_INIT;
	struct azl_err err = { 0 };
	char dir[] = "/tmp/azl-initramfs-XXXXXX", *path, *cmd, *out;

	CHECK(write_one(fs, AZL_COMP_NONE, &a, &err) == 0);
	if (err.msg[0])
		fprintf(stderr, "%s\n", err.msg);
	CHECK(write_one(fs, AZL_COMP_NONE, &b, &err) == 0);
	CHECK(a.len == b.len && !memcmp(a.data, b.data, a.len));
	CHECK(mkdtemp(dir) != NULL);
	path = azl_path_join(dir, "i.cpio");
	CHECK(azl_write_file_atomic(path, a.data, a.len, 0644, &err) == 0);

	cmd = azl_xasprintf("cpio -it --quiet < %s", path);
	out = t_run(cmd);
	CHECK_STR(out, "bin\nbin/busybox\ndev\ndev/console\ninit\nnewroot\nproc\nsys\nusr\nusr/lib\n"
		       "usr/lib/modules\nusr/lib/modules/" KV "\nusr/lib/modules/" KV "/kernel\n"
		       "usr/lib/modules/" KV "/kernel/drivers\n"
		       "usr/lib/modules/" KV "/kernel/drivers/block\n"
		       "usr/lib/modules/" KV "/kernel/drivers/block/virtio_blk.ko\n"
		       "usr/lib/modules/" KV "/kernel/drivers/md\n"
		       "usr/lib/modules/" KV "/kernel/drivers/md/dm-bufio.ko\n"
		       "usr/lib/modules/" KV "/kernel/drivers/md/dm-mod.ko\n"
		       "usr/lib/modules/" KV "/kernel/drivers/md/dm-verity.ko\n"
		       "usr/lib/modules/" KV "/kernel/drivers/virtio\n"
		       "usr/lib/modules/" KV "/kernel/drivers/virtio/virtio.ko\n"
		       "usr/lib/modules/" KV "/kernel/drivers/virtio/virtio_ring.ko\n");
	free(out);
	free(cmd);

	cmd = azl_xasprintf("cd %s && cpio -id --quiet 'init' 'usr/*' 'bin/*' < i.cpio && "
			    "cat usr/lib/modules/" KV "/kernel/drivers/block/virtio_blk.ko "
			    "usr/lib/modules/" KV "/kernel/drivers/md/dm-verity.ko && "
			    "grep insmod init | sed 's/ ||.*//' && cmp bin/busybox /bin/busybox && "
			    "echo busybox-same", dir);
	out = t_run(cmd);
	CHECK_STR(out, "module virtio_blk (was xz)\nmodule dm-verity (was zstd)\n"
		       "$bb insmod " MD "/kernel/drivers/virtio/virtio_ring.ko\n"
		       "$bb insmod " MD "/kernel/drivers/virtio/virtio.ko\n"
		       "$bb insmod " MD "/kernel/drivers/block/virtio_blk.ko\n"
		       "$bb insmod " MD "/kernel/drivers/md/dm-mod.ko\n"
		       "$bb insmod " MD "/kernel/drivers/md/dm-bufio.ko\n"
		       "$bb insmod " MD "/kernel/drivers/md/dm-verity.ko\n"
		       "busybox-same\n");
	free(out);
	free(cmd);

	/* The script itself parses (busybox sh -n). */
	cmd = azl_xasprintf("cd %s && /bin/busybox sh -n init && echo syntax-ok", dir);
	out = t_run(cmd);
	CHECK_STR(out, "syntax-ok\n");
	free(out);
	free(cmd);

	azl_buf_reset(&b);
	CHECK(write_one(fs, AZL_COMP_GZIP, &b, &err) == 0);
	CHECK(azl_write_file_atomic(path, b.data, b.len, 0644, &err) == 0);
	cmd = azl_xasprintf("gzip -dc < %s | wc -c", path);
	out = t_run(cmd);
	CHECK(strtoul(out, NULL, 10) == a.len);
	free(out);
	free(cmd);

	cmd = azl_xasprintf("rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	free(cmd);
	free(path);
	azl_buf_release(&a);
	azl_buf_release(&b);
	azl_fs_free(fs);
}

static void test_busybox_errors(void)
{
	struct azl_fs *fs = model(0);
	struct azl_buf b = AZL_BUF_INIT;
	struct azl_err err = { 0 };

	CHECK(write_one(fs, AZL_COMP_NONE, &b, &err) == -EINVAL);
	CHECK(err.kind == AZL_ERR_INPUT);
	CHECK_CONTAINS(err.msg, "the image has no busybox (/usr/bin/busybox)");
	CHECK_CONTAINS(err.msg, "name an initramfs in the manifest");
	CHECK(b.len == 0);
	put(fs, "/usr/bin/busybox", AZL_FT_REG, NULL, 0, "/bin/ls"); /* dynamic */
	CHECK(write_one(fs, AZL_COMP_NONE, &b, &err) == -EINVAL);
	CHECK_CONTAINS(err.msg, "/usr/bin/busybox is dynamically linked");
	azl_buf_release(&b);
	azl_fs_free(fs);
}

int main(void)
{
	test_closure();
	test_archive();
	test_busybox_errors();
	return t_done();
}
