/* The FAT writer: geometry, names, determinism, errors.  AZL_FAT_OUT=dir
 * also leaves sample volumes there for tests/integration/disk_tools.sh
 * (fsck.vfat, mtools). */
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "reproducible/fat.h"
#include "t.h"

static char tmpdir[] = "/tmp/azl-fat-XXXXXX";
static char bigfile[256];

static const char entry[] = "title Azure Linux\nefi /EFI/Linux/azl.efi\n";

static const struct azl_fat_file files[] = {
	{ "EFI/BOOT/BOOTX64.EFI", bigfile, NULL, 0 },
	{ "EFI/Linux/azl-3.0-6.6.efi", NULL, "uki-bytes", 9 },
	{ "loader/entries/azl.conf", NULL, entry, sizeof(entry) - 1 },
	{ "loader/loader.conf", NULL, "timeout 0\n", 10 },
	{ "loader/random-seed-dir/", NULL, NULL, 0 },
	{ "empty.txt", NULL, "", 0 },
	{ "A Long Name With Spaces.text", NULL, "x", 1 },
	{ "A Long Name With Spaces 2.text", NULL, "yy", 2 },
};

static struct azl_fat_spec spec(void)
{
	struct azl_fat_spec s = { files, sizeof(files) / sizeof(files[0]),
				  0x1234abcd, "ESP", 1700000000 };
	return s;
}

static int write_vol(const char *path, uint64_t size, const struct azl_fat_spec *s,
		     struct azl_err *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644), r;

	if (fd < 0)
		return -1;
	r = ftruncate(fd, (off_t)size) < 0 ? -1 :
	    azl_fat_write(fd, 0, size, 2048, s, path, err);
	close(fd);
	return r;
}

static void make_bigfile(void)
{
	struct azl_buf b = AZL_BUF_INIT;
	struct azl_err err = { 0 };

	/* 300 KiB of a non-repeating pattern: spans many clusters. */
	for (unsigned i = 0; i < 300 * 1024 / 4; i++) {
		uint32_t v = i * 2654435761u;
		azl_buf_add(&b, &v, 4);
	}
	snprintf(bigfile, sizeof(bigfile), "%s/bootx64.efi", tmpdir);
	CHECK(azl_write_file_atomic(bigfile, b.data, b.len, 0644, &err) == 0);
	azl_buf_release(&b);
}

static void sample(const char *dir, const char *name, uint64_t size)
{
	struct azl_fat_spec s = spec();
	struct azl_err err = { 0 };
	char a[512], b[512], ha[65], hb[65];

	snprintf(a, sizeof(a), "%s/%s", tmpdir, name);
	snprintf(b, sizeof(b), "%s/%s.again", tmpdir, name);
	CHECK(write_vol(a, size, &s, &err) == 0);
	CHECK(write_vol(b, size, &s, &err) == 0);
	CHECK(azl_sha256_file(a, ha, NULL, &err) == 0);
	CHECK(azl_sha256_file(b, hb, NULL, &err) == 0);
	CHECK_STR(ha, hb);
	if (dir) {
		char out[512];
		snprintf(out, sizeof(out), "%s/%s", dir, name);
		CHECK(rename(a, out) == 0);
	}
}

static void test_boot_sector(void)
{
	struct azl_fat_spec s = spec();
	struct azl_err err = { 0 };
	unsigned char bs[512];
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/bs.img", tmpdir);
	CHECK(write_vol(p, 100u << 20, &s, &err) == 0);
	fd = open(p, O_RDONLY);
	CHECK(fd >= 0 && pread(fd, bs, 512, 0) == 512);
	close(fd);
	CHECK(!memcmp(bs + 82, "FAT32   ", 8));
	CHECK(bs[67] == 0xcd && bs[68] == 0xab && bs[69] == 0x34 && bs[70] == 0x12);
	CHECK(!memcmp(bs + 71, "ESP        ", 11));
	CHECK(bs[28] == 0x00 && bs[29] == 0x08); /* hidden sectors 2048 */
	CHECK(bs[510] == 0x55 && bs[511] == 0xaa);

	CHECK(write_vol(p, 16u << 20, &s, &err) == 0);
	fd = open(p, O_RDONLY);
	CHECK(fd >= 0 && pread(fd, bs, 512, 0) == 512);
	close(fd);
	CHECK(!memcmp(bs + 54, "FAT16   ", 8));
}

static void test_errors(void)
{
	struct azl_fat_spec s = spec();
	struct azl_err err = { 0 };
	uint64_t min = 0;
	char p[512];
	struct azl_fat_file bad[] = { { "EFI/a*b", NULL, "x", 1 } };
	struct azl_fat_file dup[] = { { "EFI/x", NULL, "x", 1 },
				      { "efi/X", NULL, "y", 1 } };
	struct azl_fat_file big[] = { { "big", bigfile, NULL, 0 } };
	struct azl_fat_spec sb = { bad, 1, 1, NULL, 1 };
	struct azl_fat_spec sd = { dup, 2, 1, NULL, 1 };

	snprintf(p, sizeof(p), "%s/err.img", tmpdir);
	CHECK(azl_fat_min_size(&s, &min, &err) == 0);
	CHECK(min >= (2u << 20) && min % (1u << 20) == 0);
	CHECK(write_vol(p, 1u << 20, &s, &err) < 0);
	CHECK_CONTAINS(err.msg, "too small: the files need");
	CHECK(err.kind == AZL_ERR_INPUT);

	CHECK(write_vol(p, 8u << 20, &sb, &err) < 0);
	CHECK_CONTAINS(err.msg, "EFI/a*b");
	CHECK(write_vol(p, 8u << 20, &sd, &err) < 0);
	CHECK_CONTAINS(err.msg, "given twice");
	s.label = "lower";
	CHECK(write_vol(p, 8u << 20, &s, &err) < 0);
	CHECK_CONTAINS(err.msg, "label \"lower\"");

	/* FAT sizes are 32-bit: a 4 GiB file (sparse here) is refused. */
	char huge[300];
	snprintf(huge, sizeof(huge), "%s/huge", tmpdir);
	int hfd = open(huge, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(hfd >= 0 && ftruncate(hfd, (off_t)4 << 30) == 0);
	close(hfd);
	struct azl_fat_file hf[] = { { "huge", huge, NULL, 0 } };
	struct azl_fat_spec sh = { hf, 1, 1, NULL, 1 };
	CHECK(azl_fat_min_size(&sh, &min, &err) < 0);
	CHECK_CONTAINS(err.msg, "below 4 GiB");
	unlink(huge);

	/* The minimum it reports is enough. */
	struct azl_fat_spec sg = { big, 1, 1, NULL, 1 };
	CHECK(azl_fat_min_size(&sg, &min, &err) == 0);
	CHECK(write_vol(p, min, &sg, &err) == 0);
}

int main(void)
{
	const char *out = getenv("AZL_FAT_OUT");

	if (!mkdtemp(tmpdir))
		return 1;
	make_bigfile();
	sample(out, "fat16.img", 8u << 20);
	sample(out, "fat16b.img", 40u << 20);
	sample(out, "fat32.img", 100u << 20);
	sample(out, "fat32b.img", 300u << 20);
	test_boot_sector();
	test_errors();
	if (!out) {
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		CHECK(system(cmd) == 0);
	}
	return t_done();
}
