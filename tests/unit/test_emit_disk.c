/* Disk emitter: layout planning, determinism, sparseness, image copy,
 * raw vs VHD, errors, size strings.  AZL_DISK_OUT=dir leaves disk.img and
 * disk.vhd (64 MiB, ESP + root) there for tests/integration/disk_tools.sh;
 * AZL_DISK_ROOT_IMG=path uses that file (an ext4 image) as the root
 * partition's content instead of a synthetic sparse file.
 * AZL_DISK_BOOT_OUT=path writes just one VHD for a boot test: ESP with
 * AZL_DISK_ESP_EFI as \EFI\BOOT\BOOTX64.EFI, root AZL_DISK_ROOT_IMG with
 * partition GUID AZL_DISK_ROOT_UUID. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/emit_disk.h"
#include "reproducible/gpt.h"
#include "reproducible/size.h"
#include "reproducible/vhd.h"
#include "t.h"

#define MIB (1ull << 20)

static char tmpdir[] = "/tmp/azl-disk-XXXXXX";
static char rootimg[256];
static const char entry[] = "title Azure Linux\nlinux /vmlinuz\n";
static const struct azl_fat_file esp_files[] = {
	{ "EFI/BOOT/BOOTX64.EFI", NULL, "MZ-fake-efi", 11 },
	{ "loader/entries/azl.conf", NULL, entry, sizeof(entry) - 1 },
};

/* 6 MiB, data only at 0 and 5 MiB: the rest must stay holes. */
static void make_root_image(void)
{
	int fd;

	snprintf(rootimg, sizeof(rootimg), "%s/root.img", tmpdir);
	fd = open(rootimg, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, 6 * MIB) == 0);
	CHECK(pwrite(fd, "ROOTSTART", 9, 0) == 9);
	CHECK(pwrite(fd, "ROOT5MIB", 8, 5 * MIB) == 8);
	close(fd);
}

static void layout(struct azl_disk_layout *l, struct azl_disk_part p[2],
		   const char *root, enum azl_disk_format fmt)
{
	struct azl_seed seed;

	azl_seed_from_string(&seed, "test-emit-disk");
	memset(l, 0, sizeof(*l));
	memset(p, 0, 2 * sizeof(*p));
	p[0].label = "esp";
	azl_guid_parse(AZL_GPT_TYPE_ESP, p[0].type);
	p[0].size = 8 * MIB;
	p[0].source = AZL_PART_FAT;
	p[0].fat.files = esp_files;
	p[0].fat.nfiles = 2;
	p[0].fat.mtime = 1700000000;
	p[1].label = "root";
	CHECK(azl_disk_root_type("x86_64", p[1].type, NULL) == 0);
	p[1].size = AZL_DISK_REST;
	p[1].source = AZL_PART_IMAGE;
	p[1].image = root;
	azl_disk_part_seed(&seed, &p[0]);
	azl_disk_part_seed(&seed, &p[1]);
	azl_disk_layout_seed(&seed, l);
	l->size = 64 * MIB;
	l->format = fmt;
	l->mtime = 1700000000;
	l->parts = p;
	l->nparts = 2;
}

static void test_plan(void)
{
	struct azl_disk_layout l;
	struct azl_disk_part p[2];
	struct azl_disk_result res;
	struct azl_err err = { 0 };

	layout(&l, p, rootimg, AZL_DISK_RAW);
	CHECK(azl_disk_plan(&l, &res, &err) == 0);
	CHECK(res.first_lba[0] == 2048 && res.last_lba[0] == 2048 + 16384 - 1);
	CHECK(res.first_lba[1] == 18432);
	CHECK(res.last_lba[1] == 64 * MIB / 512 - 2048 - 1);
	CHECK(res.min_size == 16 * MIB); /* 1 + 8 + 6 + 1 */
	CHECK(res.file_size == 64 * MIB);
	l.format = AZL_DISK_VHD;
	CHECK(azl_disk_plan(&l, &res, &err) == 0);
	CHECK(res.file_size == 64 * MIB + 512);

	l.size = 0; /* fit */
	p[0].size = 0;
	CHECK(azl_disk_plan(&l, &res, &err) == 0);
	CHECK(res.disk_size == res.min_size && res.disk_size % MIB == 0);
	CHECK(res.last_lba[0] - res.first_lba[0] + 1 >= 2 * MIB / 512);

	l.size = 12 * MIB;
	p[0].size = 8 * MIB;
	CHECK(azl_disk_plan(&l, &res, &err) < 0);
	CHECK(err.kind == AZL_ERR_INPUT);
	CHECK_CONTAINS(err.msg, "disk size 12 MiB is too small");
	CHECK_CONTAINS(err.msg, "need 16 MiB");
	l.size = 64 * MIB + 512;
	CHECK(azl_disk_plan(&l, &res, &err) < 0);
	CHECK_CONTAINS(err.msg, "whole number of MiB");
	l.size = 64 * MIB;
	p[1].size = 4 * MIB;
	CHECK(azl_disk_plan(&l, &res, &err) < 0);
	CHECK_CONTAINS(err.msg, "partition root: 4 MiB is too small: its content needs 6 MiB");
	p[0].size = p[1].size = AZL_DISK_REST;
	CHECK(azl_disk_plan(&l, &res, &err) < 0);
	CHECK_CONTAINS(err.msg, "only one partition");
	p[0].size = 1 * MIB;
	p[1].size = AZL_DISK_REST;
	CHECK(azl_disk_plan(&l, &res, &err) < 0);
	CHECK_CONTAINS(err.msg, "partition esp: 1 MiB is too small: its content needs 3 MiB");
	CHECK(azl_disk_root_type("riscv64", p[1].type, &err) < 0);
	CHECK_CONTAINS(err.msg, "riscv64");
}

static uint64_t file_size(const char *path, uint64_t *allocated)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return 0;
	*allocated = (uint64_t)st.st_blocks * 512;
	return (uint64_t)st.st_size;
}

static void emit(const char *path, enum azl_disk_format fmt, char hex[65])
{
	struct azl_disk_layout l;
	struct azl_disk_part p[2];
	struct azl_err err = { 0 };
	const char *img = getenv("AZL_DISK_ROOT_IMG");

	layout(&l, p, img ? img : rootimg, fmt);
	CHECK(azl_emit_disk(&l, path, NULL, &err) == 0);
	if (err.msg[0])
		fprintf(stderr, "  %s\n", err.msg);
	CHECK(azl_sha256_file(path, hex, NULL, &err) == 0);
}

static int same_prefix(const char *a, const char *b, uint64_t n)
{
	int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY), same = fa >= 0 && fb >= 0;
	char *x = azl_xmalloc(MIB), *y = azl_xmalloc(MIB);

	for (uint64_t off = 0; same && off < n; off += MIB)
		same = pread(fa, x, MIB, (off_t)off) == (ssize_t)MIB &&
		       pread(fb, y, MIB, (off_t)off) == (ssize_t)MIB &&
		       !memcmp(x, y, MIB);
	close(fa);
	close(fb);
	free(x);
	free(y);
	return same;
}

static void test_emit(const char *outdir)
{
	char a[300], b[300], v[300], ha[65], hb[65], hv[65], got[16];
	struct azl_vhd_footer f;
	struct azl_err err = { 0 };
	uint64_t alloc = 0;
	int fd;

	snprintf(a, sizeof(a), "%s/disk.img", outdir);
	snprintf(b, sizeof(b), "%s/disk2.img", tmpdir);
	snprintf(v, sizeof(v), "%s/disk.vhd", outdir);
	emit(a, AZL_DISK_RAW, ha);
	emit(b, AZL_DISK_RAW, hb);
	emit(v, AZL_DISK_VHD, hv);
	CHECK_STR(ha, hb);
	CHECK(strcmp(ha, hv) != 0);
	CHECK(file_size(a, &alloc) == 64 * MIB);
	CHECK(alloc > 0 && alloc < 4 * MIB); /* holes stay holes */
	CHECK(file_size(v, &alloc) == 64 * MIB + 512);
	CHECK(azl_vhd_check_file(v, &f, &err) == 0);
	CHECK(f.current_size == 64 * MIB);

	CHECK(same_prefix(a, v, 64 * MIB)); /* raw = VHD without its footer */
	if (!getenv("AZL_DISK_ROOT_IMG")) {
		fd = open(a, O_RDONLY);
		CHECK(pread(fd, got, 9, 18432 * 512) == 9 && !memcmp(got, "ROOTSTART", 9));
		CHECK(pread(fd, got, 8, 18432 * 512 + 5 * MIB) == 8 &&
		      !memcmp(got, "ROOT5MIB", 8));
		close(fd);
	}
}

/* Azure-sized: 4 GiB fixed VHD, written in a moment because it is sparse. */
static void test_big(const char *outdir)
{
	struct azl_disk_layout l;
	struct azl_disk_part p[2];
	struct azl_disk_result res;
	struct azl_vhd_footer f;
	struct azl_err err = { 0 };
	uint64_t alloc = 0;
	char path[300];

	snprintf(path, sizeof(path), "%s/big.vhd", outdir);
	layout(&l, p, rootimg, AZL_DISK_VHD);
	p[1].source = AZL_PART_EMPTY;
	l.size = 4ull << 30;
	CHECK(azl_emit_disk(&l, path, &res, &err) == 0);
	CHECK(res.last_lba[1] == (4ull << 30) / 512 - 2048 - 1);
	CHECK(file_size(path, &alloc) == (4ull << 30) + 512);
	CHECK(alloc < 4 * MIB);
	CHECK(azl_vhd_check_file(path, &f, &err) == 0);
	CHECK(f.cylinders == 8322 && f.heads == 16 && f.sectors == 63);
}

static void test_failure_leaves_nothing(void)
{
	struct azl_disk_layout l;
	struct azl_disk_part p[2];
	struct azl_err err = { 0 };
	char path[300], missing[300];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/fail.vhd", tmpdir);
	snprintf(missing, sizeof(missing), "%s/no-such.img", tmpdir);
	layout(&l, p, missing, AZL_DISK_VHD);
	CHECK(azl_emit_disk(&l, path, NULL, &err) < 0);
	CHECK_CONTAINS(err.msg, "no-such.img");
	CHECK(access(path, F_OK) < 0);
	/* A bad ESP spec neither: no file, no temporary. */
	layout(&l, p, rootimg, AZL_DISK_VHD);
	p[0].fat.label = "bad label!";
	CHECK(azl_emit_disk(&l, path, NULL, &err) < 0);
	CHECK_CONTAINS(err.msg, "bad label!");
	CHECK(access(path, F_OK) < 0);
	d = opendir(tmpdir);
	while (d && (de = readdir(d)))
		CHECK(strncmp(de->d_name, "fail.vhd", 8) != 0);
	if (d)
		closedir(d);
}

/* AZL_PART_FILL: the writer runs in place, told the disk file, the
 * partition's offset and room; its fill_min sizes a "fit" partition and
 * its failure fails the disk, leaving nothing. */
struct fill_seen {
	uint64_t off, room;
	int calls, fail;
};

static int fill_marker(void *ctx, const char *path, uint64_t off, uint64_t room,
		       struct azl_err *err)
{
	struct fill_seen *s = ctx;
	int fd = open(path, O_WRONLY);

	s->off = off;
	s->room = room;
	s->calls++;
	if (s->fail) {
		if (fd >= 0)
			close(fd);
		return azl_errf(err, -EIO, "marker refused");
	}
	CHECK(fd >= 0);
	CHECK(pwrite(fd, "FILLED", 6, (off_t)(off + room - 6)) == 6);
	close(fd);
	return 0;
}

static void test_fill(void)
{
	struct azl_disk_layout l;
	struct azl_disk_part p[2];
	struct azl_disk_result res;
	struct azl_err err = { 0 };
	struct fill_seen seen = { 0 };
	char path[300], got[6];
	uint64_t alloc = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/fill.img", tmpdir);
	layout(&l, p, rootimg, AZL_DISK_RAW);
	p[1].source = AZL_PART_FILL;
	p[1].fill = fill_marker;
	p[1].fill_ctx = &seen;
	p[1].fill_min = 5 * MIB + 1;
	p[1].size = 0; /* fit: 6 MiB */
	l.size = 0;
	CHECK(azl_emit_disk(&l, path, &res, &err) == 0);
	CHECK(seen.calls == 1);
	CHECK(seen.off == res.first_lba[1] * 512);
	CHECK(seen.room == 6 * MIB);
	CHECK(res.disk_size == (2 + 8 + 6) * MIB);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK(pread(fd, got, 6, (off_t)(seen.off + seen.room - 6)) == 6 &&
	      !memcmp(got, "FILLED", 6));
	close(fd);
	CHECK(file_size(path, &alloc) == res.disk_size);
	CHECK(alloc < 4 * MIB); /* what the writer did not write stays a hole */

	/* Too small a fixed size for what the writer needs: named. */
	p[1].size = 4 * MIB;
	CHECK(azl_emit_disk(&l, path, NULL, &err) < 0);
	CHECK_CONTAINS(err.msg, "partition root: 4 MiB is too small: its content needs 6 MiB");

	/* A failing writer: its message, the partition named, nothing left. */
	unlink(path);
	p[1].size = 0;
	seen.fail = 1;
	CHECK(azl_emit_disk(&l, path, NULL, &err) < 0);
	CHECK_CONTAINS(err.msg, "partition root: marker refused");
	CHECK(access(path, F_OK) < 0);
}

static void test_sizes(void)
{
	uint64_t v = 0;
	struct azl_err err = { 0 };

	CHECK(azl_parse_size("4GiB", &v) == 0 && v == 4ull << 30);
	CHECK(azl_parse_size("4G", &v) == 0 && v == 4ull << 30);
	CHECK(azl_parse_size("512MiB", &v) == 0 && v == 512ull << 20);
	CHECK(azl_parse_size("3K", &v) == 0 && v == 3072);
	CHECK(azl_parse_size("2TiB", &v) == 0 && v == 2ull << 40);
	CHECK(azl_parse_size("1048576", &v) == 0 && v == 1048576);
	CHECK(azl_parse_size("10B", &v) == 0 && v == 10);
	CHECK(azl_parse_size("4GB", &v) == -EINVAL);
	CHECK(azl_parse_size("4 GiB", &v) == -EINVAL);
	CHECK(azl_parse_size("1.5G", &v) == -EINVAL);
	CHECK(azl_parse_size("-1", &v) == -EINVAL);
	CHECK(azl_parse_size("", &v) == -EINVAL);
	CHECK(azl_parse_size("G", &v) == -EINVAL);
	CHECK(azl_parse_size("4gib", &v) == -EINVAL);
	CHECK(azl_parse_size("16777216T", &v) == -ERANGE);
	CHECK(azl_parse_size("99999999999999999999", &v) == -ERANGE);
	CHECK(azl_parse_size_key("outputs.vhd.size", "4GB", &v, &err) < 0);
	CHECK(err.kind == AZL_ERR_INPUT);
	CHECK_CONTAINS(err.msg, "outputs.vhd.size: bad size \"4GB\"");
}

/* Boot-test mode: a disk whose ESP holds a real UKI. */
static int boot_disk(const char *out)
{
	struct azl_fat_file efi[] = { { "EFI/BOOT/BOOTX64.EFI",
					getenv("AZL_DISK_ESP_EFI"), NULL, 0 } };
	struct azl_disk_layout l;
	struct azl_disk_part p[2];
	struct azl_err err = { 0 };
	const char *root = getenv("AZL_DISK_ROOT_IMG");
	const char *uuid = getenv("AZL_DISK_ROOT_UUID");

	layout(&l, p, root ? root : "", AZL_DISK_VHD);
	p[0].fat.files = efi;
	p[0].fat.nfiles = 1;
	p[0].size = 0;
	l.size = 0;
	CHECK(efi[0].host_path && root && uuid);
	CHECK(uuid && azl_guid_parse(uuid, p[1].uuid) == 0);
	CHECK(azl_emit_disk(&l, out, NULL, &err) == 0);
	if (err.msg[0])
		fprintf(stderr, "%s\n", err.msg);
	return t_done();
}

int main(void)
{
	const char *out = getenv("AZL_DISK_OUT");

	if (getenv("AZL_DISK_BOOT_OUT"))
		return boot_disk(getenv("AZL_DISK_BOOT_OUT"));

	if (!mkdtemp(tmpdir))
		return 1;
	make_root_image();
	test_sizes();
	test_plan();
	test_emit(out ? out : tmpdir);
	test_big(out ? out : tmpdir);
	test_failure_leaves_nothing();
	test_fill();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	CHECK(system(cmd) == 0);
	return t_done();
}
