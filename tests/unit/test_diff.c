/* diff: planted differences in tars, JSON, OCI-like archives and folders
 * are each named with their path and what differs; innermost first; --max
 * bounds the list but not the count. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/diff.h"
#include "reproducible/fat.h"
#include "reproducible/gpt.h"
#include "reproducible/vhd.h"
#include "t.h"

struct ent {
	const char *path;
	unsigned mode;    /* 0: directory 0755 */
	long mtime;
	const char *data; /* NULL for directories */
	const char *xattr_val;
};

static char tmp[] = "/tmp/azl-diff-XXXXXX";

static char *tpath(const char *name)
{
	return azl_path_join(tmp, name);
}

static void write_tar(const char *name, const char *filter, const struct ent *e, size_t n)
{
	char *p = tpath(name);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	if (!strcmp(filter, "gzip"))
		archive_write_add_filter_gzip(a);
	else if (!strcmp(filter, "zstd"))
		archive_write_add_filter_zstd(a);
	CHECK(archive_write_open_filename(a, p) == ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		size_t len = e[i].data ? strlen(e[i].data) : 0;
		archive_entry_set_pathname(ae, e[i].path);
		archive_entry_set_filetype(ae, e[i].data ? AE_IFREG : AE_IFDIR);
		archive_entry_set_perm(ae, e[i].mode ? e[i].mode : 0755);
		archive_entry_set_mtime(ae, e[i].mtime, 0);
		archive_entry_set_size(ae, (la_int64_t)len);
		if (e[i].xattr_val)
			archive_entry_xattr_add_entry(ae, "user.test", e[i].xattr_val,
						      strlen(e[i].xattr_val));
		CHECK(archive_write_header(a, ae) == ARCHIVE_OK);
		if (len)
			CHECK(archive_write_data(a, e[i].data, len) == (la_ssize_t)len);
		archive_entry_free(ae);
	}
	CHECK(archive_write_close(a) == ARCHIVE_OK);
	archive_write_free(a);
	free(p);
}

static void write_text(const char *name, const char *text)
{
	struct azl_err err = { 0 };
	char *p = tpath(name);
	CHECK(azl_write_file_atomic(p, text, strlen(text), 0644, &err) == 0);
	free(p);
}

/* The item at path with what, or NULL. */
static const struct azl_diff_item *find(const struct azl_diff_result *r,
					const char *path, const char *what)
{
	for (size_t i = 0; i < r->nitems; i++)
		if (!strcmp(r->items[i].path, path) && !strcmp(r->items[i].what, what))
			return &r->items[i];
	return NULL;
}

static int diff(const char *a, const char *b, size_t max, struct azl_diff_result *res)
{
	struct azl_err err = { 0 };
	struct azl_diff_opts o = { .max = max };
	char *pa = tpath(a), *pb = tpath(b);
	int r = azl_diff_paths(pa, pb, &o, res, &err);
	if (r < 0)
		fprintf(stderr, "diff: %s\n", err.msg);
	free(pa);
	free(pb);
	return r;
}

static const struct ent base[] = {
	{ "etc", 0, 100, NULL, NULL },
	{ "etc/a.txt", 0644, 100, "one\n", NULL },
	{ "etc/b.txt", 0644, 100, "same\n", "x" },
	{ "usr", 0, 100, NULL, NULL },
};

static void test_tar_fields(void)
{
	struct ent b[] = {
		{ "etc", 0, 200, NULL, NULL },              /* mtime */
		{ "etc/a.txt", 0600, 100, "two\n", NULL },  /* mode + content */
		{ "etc/b.txt", 0644, 100, "same\n", "y" },  /* xattr */
		{ "etc/c.txt", 0644, 100, "new\n", NULL },  /* added; usr removed */
	};
	struct azl_diff_result res;

	write_tar("a.tar", "gzip", base, 4);
	write_tar("b.tar", "zstd", b, 4);
	CHECK(diff("a.tar", "b.tar", 0, &res) == 0);
	CHECK(find(&res, "a.tar:etc", "mtime") != NULL);
	const struct azl_diff_item *it = find(&res, "a.tar:etc/a.txt", "mode");
	CHECK(it && !strcmp(it->a, "0644") && !strcmp(it->b, "0600"));
	CHECK(find(&res, "a.tar:etc/a.txt", "content digest") != NULL);
	CHECK(find(&res, "a.tar:etc/a.txt", "size") == NULL); /* same length */
	CHECK(find(&res, "a.tar:etc/b.txt", "xattr") != NULL);
	CHECK(find(&res, "a.tar:etc/b.txt", "content digest") == NULL);
	CHECK(find(&res, "a.tar:etc/c.txt", "added") != NULL);
	CHECK(find(&res, "a.tar:usr", "removed") != NULL);
	it = find(&res, "a.tar", "compression");
	CHECK(it && !strcmp(it->a, "gzip") && !strcmp(it->b, "zstd"));
	/* Innermost first: every entry item precedes the archive-level ones. */
	CHECK(res.nitems > 2 && res.items[0].depth == 1 && res.items[res.nitems - 1].depth == 0);
	char *text = azl_diff_format_text(&res);
	CHECK_CONTAINS(text, "a.tar:etc/a.txt: mode: 0644 -> 0600\n");
	CHECK_CONTAINS(text, "a.tar:etc/c.txt: added (file)\n");
	free(text);
	azl_diff_result_release(&res);

	/* The same bytes: identical, and --max bounds the list, not the count. */
	CHECK(diff("a.tar", "a.tar", 0, &res) == 0);
	CHECK(res.total == 0 && res.nitems == 0);
	text = azl_diff_format_json(&res);
	CHECK_CONTAINS(text, "\"identical\": true");
	free(text);
	azl_diff_result_release(&res);
	CHECK(diff("a.tar", "b.tar", 2, &res) == 0);
	CHECK(res.nitems == 2 && res.total > 2);
	azl_diff_result_release(&res);
}

static void test_order(void)
{
	struct ent swapped[] = { base[0], base[2], base[1], base[3] };
	struct azl_diff_result res;

	write_tar("o1.tar", "none", base, 4);
	write_tar("o2.tar", "none", swapped, 4);
	CHECK(diff("o1.tar", "o2.tar", 0, &res) == 0);
	const struct azl_diff_item *it = find(&res, "o1.tar", "entry order");
	CHECK(it != NULL);
	CHECK(find(&res, "o1.tar:etc/a.txt", "content digest") == NULL);
	azl_diff_result_release(&res);
}

/* An OCI-shaped archive: index -> manifest -> config + one layer blob. */
static void write_oci(const char *name, const char *layer_file, const char *created)
{
	struct azl_buf man = AZL_BUF_INIT, idx = AZL_BUF_INIT, cfg = AZL_BUF_INIT;
	struct azl_err err = { 0 };
	char *lp = tpath(layer_file), hl[65], hc[65], hm[65];
	char *data;
	size_t len;

	CHECK(azl_read_file(lp, 0, &data, &len, &err) == 0);
	azl_sha256_hex(data, len, hl);
	azl_buf_addf(&cfg, "{\"created\":\"%s\",\"os\":\"linux\"}", created);
	azl_sha256_hex(cfg.data, cfg.len, hc);
	azl_buf_addf(&man, "{\"config\":{\"digest\":\"sha256:%s\"},\"layers\":[{\"digest\":\"sha256:%s\"}]}", hc, hl);
	azl_sha256_hex(man.data, man.len, hm);
	azl_buf_addf(&idx, "{\"manifests\":[{\"digest\":\"sha256:%s\"}]}", hm);
	char *bl = azl_xasprintf("blobs/sha256/%s", hl), *bc = azl_xasprintf("blobs/sha256/%s", hc);
	char *bm = azl_xasprintf("blobs/sha256/%s", hm);
	struct ent e[] = {
		{ bc, 0644, 1, cfg.data, NULL }, { bl, 0644, 1, data, NULL },
		{ bm, 0644, 1, man.data, NULL }, { "index.json", 0644, 1, idx.data, NULL },
		{ "oci-layout", 0644, 1, "{\"imageLayoutVersion\":\"1.0.0\"}", NULL },
	};
	/* Binary layer bytes: write with their real length. */
	char *p = tpath(name);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	CHECK(archive_write_open_filename(a, p) == ARCHIVE_OK);
	for (size_t i = 0; i < 5; i++) {
		struct archive_entry *ae = archive_entry_new();
		size_t n = i == 1 ? len : strlen(e[i].data);
		archive_entry_set_pathname(ae, e[i].path);
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_perm(ae, 0644);
		archive_entry_set_size(ae, (la_int64_t)n);
		CHECK(archive_write_header(a, ae) == ARCHIVE_OK);
		CHECK(archive_write_data(a, e[i].data, n) == (la_ssize_t)n);
		archive_entry_free(ae);
	}
	archive_write_close(a);
	archive_write_free(a);
	free(p); free(bl); free(bc); free(bm); free(lp); free(data);
	azl_buf_release(&man);
	azl_buf_release(&idx); azl_buf_release(&cfg);
}

static void test_oci(void)
{
	struct ent b[] = { base[0], { "etc/a.txt", 0644, 100, "ONE\n", NULL }, base[2], base[3] };
	struct azl_diff_result res;

	write_tar("l1.tar.gz", "gzip", base, 4);
	write_tar("l2.tar.gz", "gzip", b, 4);
	write_oci("i1.oci.tar", "l1.tar.gz", "2023-01-01T00:00:00Z");
	write_oci("i2.oci.tar", "l2.tar.gz", "2024-01-01T00:00:00Z");
	CHECK(diff("i1.oci.tar", "i2.oci.tar", 0, &res) == 0);
	CHECK(find(&res, "i1.oci.tar:layers[0]:etc/a.txt", "content digest") != NULL);
	CHECK(find(&res, "i1.oci.tar:layers[0]:etc/b.txt", "content digest") == NULL);
	const struct azl_diff_item *it = find(&res, "i1.oci.tar:config[0]", "created");
	CHECK(it && !strcmp(it->a, "2023-01-01T00:00:00Z") && !strcmp(it->b, "2024-01-01T00:00:00Z"));
	CHECK(find(&res, "i1.oci.tar:manifest[0]", "layers[0].digest") != NULL);
	CHECK(find(&res, "i1.oci.tar:index.json", "manifests[0].digest") != NULL);
	CHECK(res.items[0].depth == 2); /* the layer entry comes first */
	azl_diff_result_release(&res);
}

static void test_dirs_and_json(void)
{
	struct azl_err err = { 0 };
	struct azl_diff_result res;
	char *d1 = tpath("d1"), *d2 = tpath("d2");

	CHECK(azl_mkdir_p(d1, &err) == 0 && azl_mkdir_p(d2, &err) == 0);
	write_text("d1/x.build.json", "{\"seed\":\"aa\",\"n\":1,\"list\":[1,2]}\n");
	write_text("d2/x.build.json", "{\"seed\":\"bb\",\"n\":1,\"list\":[1],\"new\":true}\n");
	write_text("d1/only-a", "a");
	write_text("d1/same", "s");
	write_text("d2/same", "s");
	write_text("d1/blob.raw", "\x01\x02\x03");
	write_text("d2/blob.raw", "\x01\x02\x04\x05");
	CHECK(diff("d1", "d2", 0, &res) == 0);
	const struct azl_diff_item *it = find(&res, "x.build.json", "seed");
	CHECK(it && !strcmp(it->a, "aa") && !strcmp(it->b, "bb"));
	CHECK(find(&res, "x.build.json", "list[1]") != NULL);
	it = find(&res, "x.build.json", "new");
	CHECK(it && !strcmp(it->a, "(absent)"));
	CHECK(find(&res, "x.build.json", "n") == NULL);
	CHECK(find(&res, "only-a", "removed") != NULL);
	CHECK(find(&res, "same", "content digest") == NULL);
	CHECK(find(&res, "blob.raw", "content digest") != NULL);
	CHECK(find(&res, "blob.raw", "size") != NULL);
	azl_diff_result_release(&res);

	/* A missing input is an error, not a difference. */
	struct azl_diff_opts o = { 0 };
	CHECK(azl_diff_paths(d1, "/nonexistent/azl-diff", &o, &res, &err) < 0);
	CHECK_CONTAINS(err.msg, "/nonexistent/azl-diff");
	azl_diff_result_release(&res);
	free(d1);
	free(d2);
}

/* An ext4 image of folder src (mke2fs -d), 8 MiB, fixed UUID and times. */
static int make_ext4(const char *src, const char *img, const char *uuid)
{
	char *cmd = azl_xasprintf("E2FSPROGS_FAKE_TIME=1700000000 mke2fs -q -F -t ext4 "
				  "-U %s -E hash_seed=11111111-2222-3333-4444-555555555555,root_owner=0:0 "
				  "-d %s %s 8M >/dev/null 2>&1", uuid, src, img);
	int r = system(cmd);
	free(cmd);
	return r;
}

/* A GPT disk (one root partition holding the ext4 image) with a VHD footer;
 * with extra, a second (empty) partition "data" after it on the disk whose
 * entry comes first in the table. */
static void make_disk_ex(const char *fs_img, const char *disk, const char *part_uuid,
			 bool extra)
{
	struct azl_err err = { 0 };
	struct azl_gpt_part ps[2] = {
		{ .first_lba = 2048 + 16384, .last_lba = 2048 + 16384 + 1023, .name = "data",
		  .number = 1 },
		{ .first_lba = 2048, .last_lba = 2048 + 16384 - 1, .name = "root",
		  .number = extra ? 2 : 0 },
	};
	struct azl_gpt_part *pp = &ps[extra ? 0 : 1];
	struct azl_gpt g = { .total_sectors = 2048 + 16384 + 2048, .parts = pp,
			     .nparts = extra ? 2 : 1 };
	unsigned char footer[AZL_VHD_FOOTER_SIZE], uuid[16] = { 1 };
	char *data;
	size_t len;

	azl_guid_parse(AZL_GPT_TYPE_ROOT_X86_64, ps[1].type);
	azl_guid_parse(part_uuid, ps[1].uuid);
	azl_guid_parse(AZL_GPT_TYPE_LINUX_DATA, ps[0].type);
	azl_guid_parse("03030303-0303-0303-0303-030303030303", ps[0].uuid);
	azl_guid_parse("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", g.disk_guid);
	CHECK(azl_read_file(fs_img, 16u << 20, &data, &len, &err) == 0);
	int fd = open(disk, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)(g.total_sectors * AZL_SECTOR)) == 0);
	CHECK(pwrite(fd, data, len, 2048 * AZL_SECTOR) == (ssize_t)len);
	CHECK(azl_gpt_write(fd, disk, &g, &err) == 0);
	azl_vhd_footer_render(g.total_sectors * AZL_SECTOR, 1700000000, uuid, footer);
	CHECK(pwrite(fd, footer, sizeof(footer), (off_t)(g.total_sectors * AZL_SECTOR)) == (ssize_t)sizeof(footer));
	close(fd);
	free(data);
}

static void make_disk(const char *fs_img, const char *disk, const char *part_uuid)
{
	make_disk_ex(fs_img, disk, part_uuid, false);
}

static void test_disk(void)
{
	struct azl_err err = { 0 };
	struct azl_diff_result res;
	char *r1 = tpath("r1"), *r2 = tpath("r2"), *cmd;

	CHECK(azl_mkdir_p(r1, &err) == 0 && azl_mkdir_p(r2, &err) == 0);
	write_text("r1/a.txt", "one\n");
	write_text("r1/b.txt", "same\n");
	write_text("r2/a.txt", "two\n");
	write_text("r2/b.txt", "same\n");
	write_text("r2/c.txt", "new\n");
	cmd = azl_xasprintf("chmod 600 %s/r2/b.txt && touch -d @1700000000 %s/r1/* %s/r2/* %s/r1 %s/r2",
			    tmp, tmp, tmp, tmp, tmp);
	CHECK(system(cmd) == 0);
	free(cmd);
	char *f1 = tpath("fs1.img"), *f2 = tpath("fs2.img"), *k1 = tpath("d1.vhd"), *k2 = tpath("d2.vhd");
	const char *u = "11111111-2222-3333-4444-555555555555";
	if (make_ext4(r1, f1, u) != 0 || make_ext4(r2, f2, u) != 0) {
		fprintf(stderr, "mke2fs not available: disk tests skipped\n");
		goto out;
	}
	make_disk(f1, k1, "01010101-0101-0101-0101-010101010101");
	make_disk(f2, k2, "02020202-0202-0202-0202-020202020202");

	/* A bare filesystem image: its entries. */
	CHECK(diff("fs1.img", "fs2.img", 0, &res) == 0);
	CHECK(find(&res, "fs1.img:a.txt", "content digest") != NULL);
	const struct azl_diff_item *it = find(&res, "fs1.img:b.txt", "mode");
	CHECK(it && !strcmp(it->a, "0644") && !strcmp(it->b, "0600"));
	CHECK(find(&res, "fs1.img:b.txt", "content digest") == NULL);
	CHECK(find(&res, "fs1.img:c.txt", "added") != NULL);
	CHECK(find(&res, "fs1.img:lost+found", "removed") == NULL);
	CHECK(find(&res, "fs1.img:superblock", "free_inodes_count") != NULL);
	CHECK(find(&res, "fs1.img:superblock", "uuid") == NULL);
	azl_diff_result_release(&res);

	/* Same files, another UUID: the superblock field, and no entry. */
	char *f3 = tpath("fs3.img");
	CHECK(make_ext4(r1, f3, "99999999-2222-3333-4444-555555555555") == 0);
	CHECK(diff("fs1.img", "fs3.img", 0, &res) == 0);
	it = find(&res, "fs1.img:superblock", "uuid");
	CHECK(it && !strcmp(it->a, "11111111222233334444555555555555"));
	CHECK(res.total == 1);
	azl_diff_result_release(&res);
	free(f3);

	/* A VHD: GPT entry fields, then the partition's ext4 entries. */
	CHECK(diff("d1.vhd", "d2.vhd", 0, &res) == 0);
	it = find(&res, "d1.vhd:partitions[0]", "uuid");
	CHECK(it && !strcmp(it->a, "01010101-0101-0101-0101-010101010101"));
	CHECK(find(&res, "d1.vhd:partitions[0]", "type") == NULL);
	CHECK(find(&res, "d1.vhd:partitions[0]:a.txt", "content digest") != NULL);
	CHECK(find(&res, "d1.vhd:partitions[0]:b.txt", "mode") != NULL);
	CHECK(find(&res, "d1.vhd:vhd-footer", "bytes") == NULL); /* same footer */
	CHECK(res.nitems && !strncmp(res.items[0].path, "d1.vhd:partitions[0]:", 21));
	azl_diff_result_release(&res);
	CHECK(diff("d1.vhd", "d1.vhd", 0, &res) == 0 && res.total == 0);
	azl_diff_result_release(&res);

	/* A partition added ahead of root in the table: root is still paired
	 * with root (by name), the new one is reported once, and nothing is
	 * compared with the wrong partition. */
	char *k3 = tpath("d3.vhd");
	make_disk_ex(f1, k3, "01010101-0101-0101-0101-010101010101", true);
	CHECK(diff("d1.vhd", "d3.vhd", 0, &res) == 0);
	it = find(&res, "d1.vhd:gpt", "partitions");
	CHECK(it && !strcmp(it->a, "1") && !strcmp(it->b, "2"));
	it = find(&res, "d1.vhd:partitions[0]", "added");
	CHECK(it && strstr(it->b, "data (entry 1, type ") != NULL);
	CHECK(find(&res, "d1.vhd:partitions[0]", "name") == NULL);
	CHECK(find(&res, "d1.vhd:partitions[0]", "first_lba") == NULL);
	CHECK(find(&res, "d1.vhd:partitions[0]:a.txt", "content digest") == NULL);
	CHECK(res.total == 2);
	azl_diff_result_release(&res);
	/* The other way round: removed, labelled by its place in the first. */
	CHECK(diff("d3.vhd", "d1.vhd", 0, &res) == 0);
	it = find(&res, "d3.vhd:partitions[0]", "removed");
	CHECK(it && strstr(it->a, "data (entry 1, type ") != NULL && !*it->b);
	CHECK(find(&res, "d3.vhd:partitions[1]", "name") == NULL);
	CHECK(res.total == 2);
	azl_diff_result_release(&res);
	free(k3);
out:
	free(r1); free(r2); free(f1); free(f2); free(k1); free(k2);
}

/* Two FAT volumes (the ESP writer), bare: long names, nested folders. */
static void write_fat(const char *name, const char *efi, int64_t mtime, bool extra)
{
	struct azl_err err = { 0 };
	struct azl_fat_file files[] = {
		{ .path = "EFI/BOOT/BOOTX64.EFI", .data = efi, .len = strlen(efi) },
		{ .path = "loader/entries/azure-linux.conf", .data = "title x\n", .len = 8 },
		{ .path = "EFI/Linux/extra-long-name.efi", .data = "x", .len = 1 },
	};
	struct azl_fat_spec spec = { .files = files, .nfiles = extra ? 3 : 2,
				     .volume_id = 0x1234, .mtime = mtime };
	char *p = tpath(name);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, 8 << 20) == 0);
	CHECK(azl_fat_write(fd, 0, 8 << 20, 0, &spec, name, &err) == 0);
	close(fd);
	free(p);
}

static void test_fat(void)
{
	struct azl_diff_result res;

	write_fat("esp1.img", "MZ one", 1700000000, false);
	write_fat("esp2.img", "MZ two", 1700000000, true);
	CHECK(diff("esp1.img", "esp2.img", 0, &res) == 0);
	CHECK(find(&res, "esp1.img:EFI/BOOT/BOOTX64.EFI", "content digest") != NULL);
	CHECK(find(&res, "esp1.img:EFI/Linux/extra-long-name.efi", "added") != NULL);
	CHECK(find(&res, "esp1.img:loader/entries/azure-linux.conf", "content digest") == NULL);
	CHECK(find(&res, "esp1.img:loader/entries/azure-linux.conf", "removed") == NULL);
	azl_diff_result_release(&res);

	write_fat("esp3.img", "MZ one", 1800000000, false);
	CHECK(diff("esp1.img", "esp3.img", 0, &res) == 0);
	const struct azl_diff_item *it = find(&res, "esp1.img:EFI/BOOT/BOOTX64.EFI", "mtime");
	CHECK(it && !strcmp(it->a, "1700000000") && !strcmp(it->b, "1800000000"));
	CHECK(find(&res, "esp1.img:EFI/BOOT/BOOTX64.EFI", "content digest") == NULL);
	azl_diff_result_release(&res);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)f;
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

int main(void)
{
	CHECK(mkdtemp(tmp) != NULL);
	test_tar_fields();
	test_order();
	test_oci();
	test_dirs_and_json();
	test_disk();
	test_fat();
	nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return t_done();
}
