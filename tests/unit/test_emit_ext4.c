/* Builds a model by hand, writes it as ext4 and reads it back with
 * e2fsprogs' own tools (e2fsck -fn, debugfs, dumpe2fs): no mount.  With
 * AZL_EXT4_OUT=path it also leaves the sample image there for
 * tests/integration/ext4_guestfs.sh to read with libguestfs, and with
 * AZL_EXT4_BENCH=dir (a tree of regular files) it times writing that tree
 * through the model and prints MB/s (AZL_EXT4_TIGHT=1: at the minimum
 * size). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/emit_ext4.h"
#include "reproducible/seed.h"
#include "t.h"

#define SDE 1700000000 /* Tue Nov 14 22:13:20 2023 UTC */
#define BIG (5u << 20)
#define SPARSE_OFF (BIG + 4096) /* sparse.bin region inside the data file */
#define SPARSE_LEN (10 * 4096 + 123)

static char tmpdir[] = "/tmp/azl-ext4-XXXXXX";
static char data_file[4096];
/* VFS_CAP_REVISION_2, cap_net_raw (13) permitted + effective. */
static const unsigned char cap[20] = { 0x01, 0, 0, 0x02, 0x00, 0x20, 0, 0 };
static const char long_target[] =
	"../../some/very/long/relative/path/that/does/not/fit/in/the/inode/"
	"i_block/array/target";


static void add_file(struct azl_fs *fs, const char *path, uint32_t mode,
		     uint64_t off, uint64_t size, uint32_t hl)
{
	struct azl_node n = {0};
	n.data_path = azl_xstrdup(data_file);
	n.data_offset = off;
	n.size = size;
	n.hardlink_group = hl;
	t_add_node(fs, path, AZL_FT_REG, mode, &n);
}

static void add_inline(struct azl_fs *fs, const char *path, const char *text,
		       uint32_t uid, uint32_t gid, int64_t mtime)
{
	struct azl_node n = {0};
	n.data = (unsigned char *)azl_xstrdup(text);
	n.size = strlen(text);
	n.uid = uid;
	n.gid = gid;
	n.mtime = mtime;
	t_add_node(fs, path, AZL_FT_REG, 0644, &n);
}

/* 5 MiB of a byte pattern, one zero block, then the "sparse" region:
 * 3 data blocks, 4 zero blocks, 3 data blocks and a 123-byte tail. */
static void make_data_file(void)
{
	size_t total = SPARSE_OFF + SPARSE_LEN;
	unsigned char *b = azl_xcalloc(1, total);
	struct azl_err err = {0};

	for (size_t i = 0; i < BIG; i++)
		b[i] = (unsigned char)((i * 2654435761u) >> 13);
	for (size_t i = 0; i < SPARSE_LEN; i++) {
		size_t blk = i / 4096;
		if (blk < 3 || blk >= 7)
			b[SPARSE_OFF + i] = (unsigned char)(i % 251 + 1);
	}
	snprintf(data_file, sizeof(data_file), "%s/data", tmpdir);
	if (azl_write_file_atomic(data_file, b, total, 0644, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		exit(1);
	}
	free(b);
}

static struct azl_fs *sample_model(void)
{
	struct azl_fs *fs = azl_fs_new();
	struct azl_node n = {0};

	azl_fs_get(fs, "/")->mtime = 1500000000;
	t_add_node(fs, "/dev", AZL_FT_DIR, 0755, NULL);
	t_add_node(fs, "/etc", AZL_FT_DIR, 0755, NULL);
	t_add_node(fs, "/home", AZL_FT_DIR, 0755, NULL);
	n.uid = 1000, n.gid = 1000, n.mtime = 1650000000;
	t_add_node(fs, "/home/user", AZL_FT_DIR, 0700, &n);
	t_add_node(fs, "/run", AZL_FT_DIR, 0755, NULL);
	t_add_node(fs, "/usr", AZL_FT_DIR, 0755, NULL);
	t_add_node(fs, "/usr/bin", AZL_FT_DIR, 0755, NULL);
	t_add_node(fs, "/usr/lib", AZL_FT_DIR, 0755, NULL);
	t_add_node(fs, "/usr/sbin", AZL_FT_DIR, 0755, NULL);
	t_add_node(fs, "/usr/share", AZL_FT_DIR, 0755, NULL);
	t_add_node(fs, "/usr/share/big", AZL_FT_DIR, 0755, NULL);
	t_add_node(fs, "/var", AZL_FT_DIR, 0755, NULL);
	t_add_node(fs, "/var/cache", AZL_FT_DIR, 0755, NULL);

	n.rdev_major = 1, n.rdev_minor = 3;
	t_add_node(fs, "/dev/null", AZL_FT_CHR, 0666, &n);
	n.rdev_major = 8, n.rdev_minor = 0, n.gid = 6;
	t_add_node(fs, "/dev/sda", AZL_FT_BLK, 0660, &n);
	n.rdev_major = 300, n.rdev_minor = 70000;
	t_add_node(fs, "/dev/wide", AZL_FT_CHR, 0600, &n);
	t_add_node(fs, "/run/initctl", AZL_FT_FIFO, 0600, NULL);
	t_add_node(fs, "/run/sock", AZL_FT_SOCK, 0755, NULL);

	add_inline(fs, "/etc/os-release", "ID=azl\nVERSION_ID=1\n", 0, 0, SDE);
	/* Too big for the inode's spare room: goes to an xattr block. */
	struct azl_node *osr = azl_fs_get(fs, "/etc/os-release");
	osr->xattrs = azl_xcalloc(1, sizeof(*osr->xattrs));
	osr->nxattrs = 1;
	osr->xattrs[0].name = azl_xstrdup("user.big");
	osr->xattrs[0].value = azl_xmalloc(600);
	memset(osr->xattrs[0].value, 'x', 600);
	osr->xattrs[0].len = 600;
	struct azl_node *etc = azl_fs_get(fs, "/etc");
	etc->xattrs = azl_xcalloc(1, sizeof(*etc->xattrs));
	etc->nxattrs = 1;
	etc->xattrs[0].name = azl_xstrdup("security.selinux");
	etc->xattrs[0].value = (unsigned char *)azl_xstrdup("system_u:object_r:etc_t:s0");
	etc->xattrs[0].len = strlen("system_u:object_r:etc_t:s0") + 1;
	add_inline(fs, "/home/user/notes", "hello\n", 1000, 1000, 1650000001);
	add_inline(fs, "/home/wide", "wide ids\n", 100000, 200000, 1650000002);

	add_file(fs, "/usr/bin/big", 0755, 0, BIG, 0);
	add_file(fs, "/usr/bin/h1", 0755, 100, 5000, 7);
	add_file(fs, "/usr/bin/h2", 0755, 100, 5000, 7);
	add_file(fs, "/usr/sbin/h3", 0755, 100, 5000, 7);
	add_file(fs, "/usr/bin/su", 04755, 200, 3000, 0);
	add_file(fs, "/usr/bin/sparse", 0644, SPARSE_OFF, SPARSE_LEN, 0);
	add_file(fs, "/usr/bin/empty", 0644, 0, 0, 0);

	n.data_path = azl_xstrdup(data_file);
	n.data_offset = 300;
	n.size = 7000;
	n.xattrs = azl_xcalloc(1, sizeof(*n.xattrs));
	n.nxattrs = 1;
	n.xattrs[0].name = azl_xstrdup("security.capability");
	n.xattrs[0].value = azl_xmalloc(sizeof(cap));
	memcpy(n.xattrs[0].value, cap, sizeof(cap));
	n.xattrs[0].len = sizeof(cap);
	t_add_node(fs, "/usr/bin/ping", AZL_FT_REG, 0755, &n);

	n.link_target = azl_xstrdup("bash");
	t_add_node(fs, "/usr/bin/sh", AZL_FT_SYMLINK, 0777, &n);
	n.link_target = azl_xstrdup(long_target);
	t_add_node(fs, "/usr/lib/long", AZL_FT_SYMLINK, 0777, &n);

	for (int i = 0; i < 500; i++) {
		char p[64], text[64];
		snprintf(p, sizeof(p), "/usr/share/big/entry-with-a-longer-name-%03d", i);
		snprintf(text, sizeof(text), "file %d\n", i);
		add_inline(fs, p, text, 0, 0, 1600000000 + i);
	}
	add_inline(fs, "/var/cache/junk", "junk\n", 0, 0, SDE);
	return fs;
}

static void opts_for(struct azl_ext4_opts *o, const char *name)
{
	struct azl_seed s;
	char purpose[128];

	memset(o, 0, sizeof(*o));
	azl_seed_from_string(&s, "ext4 test seed");
	snprintf(purpose, sizeof(purpose), "ext4-uuid:%s", name);
	azl_seed_uuid(&s, purpose, o->uuid);
	snprintf(purpose, sizeof(purpose), "ext4-hash-seed:%s", name);
	azl_seed_uuid(&s, purpose, o->hash_seed);
	o->label = name;
	o->mtime = SDE;
}

/* Run a shell command; its stdout (and stderr) in *out; exit status. */
static int run(char **out, const char *fmt, ...) AZL_PRINTF(2, 3);
static int run(char **out, const char *fmt, ...)
{
	struct azl_buf cmd = AZL_BUF_INIT, res = AZL_BUF_INIT;
	char chunk[4096];
	va_list ap;
	size_t got;
	FILE *f;
	int st;

	va_start(ap, fmt);
	azl_buf_vaddf(&cmd, fmt, ap);
	va_end(ap);
	azl_buf_adds(&cmd, " 2>&1");
	f = popen(cmd.data, "r");
	while (f && (got = fread(chunk, 1, sizeof(chunk), f)) > 0)
		azl_buf_add(&res, chunk, got);
	st = f ? pclose(f) : -1;
	azl_buf_release(&cmd);
	azl_buf_adds(&res, "");
	if (out)
		*out = azl_buf_detach(&res);
	else
		azl_buf_release(&res);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *dbg(const char *img, const char *req)
{
	char *out = NULL;
	run(&out, "debugfs -R '%s' %s", req, img);
	return out;
}

static int fsck_clean(const char *img)
{
	char *out = NULL;
	int rc = run(&out, "e2fsck -fn %s", img);
	if (rc != 0)
		fprintf(stderr, "e2fsck -fn %s: exit %d\n%s\n", img, rc, out);
	free(out);
	return rc == 0;
}

/* Content of path in the image equals [off, off+len) of the data file. */
static int content_is(const char *img, const char *path, uint64_t off,
		      uint64_t len)
{
	char dumped[512], want[65], got[65];
	unsigned char *b = NULL;
	size_t n = 0;
	struct azl_err err = {0};
	int ok;

	snprintf(dumped, sizeof(dumped), "%s/dumped", tmpdir);
	unlink(dumped);
	char req[1200];
	snprintf(req, sizeof(req), "dump %s %s", path, dumped);
	free(dbg(img, req));
	if (azl_read_file(data_file, 0, (char **)&b, &n, &err) < 0)
		return 0;
	azl_sha256_hex(b + off, len, want);
	free(b);
	if (azl_sha256_file(dumped, got, NULL, &err) < 0)
		return 0;
	ok = !strcmp(want, got);
	if (!ok)
		fprintf(stderr, "%s: content differs\n", path);
	return ok;
}

static void check_stat(const char *img)
{
	char *s = dbg(img, "stat /usr/bin/su");
	CHECK_CONTAINS(s, "Type: regular");
	CHECK_CONTAINS(s, "Mode:  04755");
	CHECK_CONTAINS(s, "Size: 3000");
	CHECK_CONTAINS(s, "mtime: 0x5f5e1000:00000000");
	CHECK_CONTAINS(s, "ctime: 0x5f5e1000:00000000");
	CHECK_CONTAINS(s, "atime: 0x5f5e1000:00000000");
	CHECK_CONTAINS(s, "crtime: 0x5f5e1000:00000000");
	free(s);

	s = dbg(img, "stat /usr/sbin/h3");
	CHECK_CONTAINS(s, "Links: 3");
	free(s);
	char *a = dbg(img, "stat /usr/bin/h1"), *b = dbg(img, "stat /usr/sbin/h3");
	CHECK(strncmp(a, b, 20) == 0 && strstr(a, "Inode: ")); /* same inode */
	free(a);
	free(b);

	s = dbg(img, "stat /home/user/notes");
	CHECK_CONTAINS(s, "User:  1000   Group:  1000");
	CHECK_CONTAINS(s, "mtime: 0x62590081:00000000");
	free(s);
	s = dbg(img, "stat /home/user");
	CHECK_CONTAINS(s, "Type: directory");
	CHECK_CONTAINS(s, "Mode:  0700");
	CHECK_CONTAINS(s, "User:  1000");
	free(s);
	s = dbg(img, "stat /home/wide");
	CHECK_CONTAINS(s, "User: 100000   Group: 200000");
	free(s);

	s = dbg(img, "stat /dev/wide");
	CHECK_CONTAINS(s, "Type: character special");
	CHECK_CONTAINS(s, "Device major/minor number: 300:70000");
	free(s);
	s = dbg(img, "stat /dev/sda");
	CHECK_CONTAINS(s, "Type: block special");
	CHECK_CONTAINS(s, "Device major/minor number: 08:00");
	CHECK_CONTAINS(s, "Group:     6");
	free(s);
	s = dbg(img, "stat /run/initctl");
	CHECK_CONTAINS(s, "Type: FIFO");
	free(s);
	s = dbg(img, "stat /run/sock");
	CHECK_CONTAINS(s, "Type: socket");
	free(s);
	s = dbg(img, "stat /");
	CHECK_CONTAINS(s, "mtime: 0x59682f00:00000000");
	free(s);
	s = dbg(img, "stat /lost+found");
	CHECK_CONTAINS(s, "Mode:  0700");
	CHECK_CONTAINS(s, "mtime: 0x6553f100:00000000");
	free(s);
}

static void check_links_and_xattrs(const char *img)
{
	char *s = dbg(img, "stat /usr/bin/sh");
	CHECK_CONTAINS(s, "Type: symlink");
	CHECK_CONTAINS(s, "Fast link dest: \"bash\"");
	free(s);
	s = dbg(img, "stat /usr/lib/long");
	CHECK_CONTAINS(s, "Type: symlink");
	CHECK(strstr(s, "Fast link dest") == NULL);
	free(s);
	char req[1200], path[512], *t = NULL;
	snprintf(path, sizeof(path), "%s/longlink", tmpdir);
	unlink(path);
	snprintf(req, sizeof(req), "dump /usr/lib/long %s", path);
	free(dbg(img, req));
	size_t n = 0;
	struct azl_err err = {0};
	CHECK(azl_read_file(path, 0, &t, &n, &err) == 0 && t &&
	      n == strlen(long_target) && !memcmp(t, long_target, n));
	free(t);

	snprintf(path, sizeof(path), "%s/cap", tmpdir);
	unlink(path);
	snprintf(req, sizeof(req), "ea_get -f %s /usr/bin/ping security.capability", path);
	free(dbg(img, req));
	t = NULL;
	CHECK(azl_read_file(path, 0, &t, &n, &err) == 0 && t &&
	      n == sizeof(cap) && !memcmp(t, cap, n));
	free(t);
	s = dbg(img, "ea_list /etc");
	CHECK_CONTAINS(s, "security.selinux (27) = \"system_u:object_r:etc_t:s0\\000\"");
	free(s);
	s = dbg(img, "stat /etc/os-release");
	CHECK(strstr(s, "File ACL: 0\n") == NULL); /* has an xattr block */
	free(s);
	s = dbg(img, "ea_get /etc/os-release user.big");
	CHECK_CONTAINS(s, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	free(s);
	s = dbg(img, "ea_list /usr/bin/ping");
	CHECK_CONTAINS(s, "security.capability");
	free(s);

	s = dbg(img, "ls /usr/share/big");
	int count = 0;
	for (char *p = s; (p = strstr(p, "entry-with-a-longer-name-")); p++)
		count++;
	CHECK(count == 500);
	CHECK_CONTAINS(s, "entry-with-a-longer-name-499");
	free(s);
}

static void check_content(const char *img)
{
	CHECK(content_is(img, "/usr/bin/big", 0, BIG));
	CHECK(content_is(img, "/usr/sbin/h3", 100, 5000));
	CHECK(content_is(img, "/usr/bin/sparse", SPARSE_OFF, SPARSE_LEN));
	/* 11 logical blocks, 4 all-zero ones left as holes. */
	char *s = dbg(img, "blocks /usr/bin/sparse");
	int nb = 0, used = 0;
	unsigned long blk;
	size_t off = strcspn(s, "\n"); /* after debugfs' banner line */
	while (s[off] && sscanf(s + off + 1, "%lu%n", &blk, &used) == 1) {
		nb++;
		off += (size_t)used;
	}
	CHECK(nb == 7);
	free(s);
	s = dbg(img, "cat /etc/os-release");
	CHECK_CONTAINS(s, "ID=azl\nVERSION_ID=1\n");
	free(s);
	s = dbg(img, "cat /usr/share/big/entry-with-a-longer-name-321");
	CHECK_CONTAINS(s, "file 321\n");
	free(s);
}

static void check_super(const char *img, const struct azl_ext4_opts *o)
{
	char *s = NULL, uuid[37], seed[37];

	azl_uuid_format(o->uuid, uuid);
	azl_uuid_format(o->hash_seed, seed);
	run(&s, "TZ=UTC dumpe2fs -h %s", img);
	CHECK_CONTAINS(s, uuid);
	CHECK_CONTAINS(s, seed);
	CHECK_CONTAINS(s, "Filesystem volume name:   root");
	CHECK_CONTAINS(s, "Filesystem created:       Tue Nov 14 22:13:20 2023");
	CHECK_CONTAINS(s, "Last write time:          Tue Nov 14 22:13:20 2023");
	CHECK_CONTAINS(s, "Last mount time:          Tue Nov 14 22:13:20 2023");
	CHECK_CONTAINS(s, "Last checked:             Tue Nov 14 22:13:20 2023");
	CHECK_CONTAINS(s, "Mount count:              0");
	CHECK_CONTAINS(s, "Maximum mount count:      -1");
	CHECK_CONTAINS(s, "has_journal");
	CHECK_CONTAINS(s, "metadata_csum");
	CHECK_CONTAINS(s, "Default directory hash:   half_md4");
	CHECK_CONTAINS(s, "signed_directory_hash");
	CHECK(strstr(s, "orphan_file") == NULL);
	free(s);
}

/* Sparse on the host: far fewer bytes allocated than the image size. */
static void check_sparse_image(const char *img)
{
	struct stat st;
	CHECK(stat(img, &st) == 0 && (uint64_t)st.st_blocks * 512 < (uint64_t)st.st_size / 2);
}

static void test_root(struct azl_fs *fs)
{
	struct azl_ext4_opts o;
	struct azl_ext4_result res = {0}, res2 = {0};
	struct azl_err err = {0};
	char img[4200], img2[4200], h1[65], h2[65];
	uint64_t min = 0;

	opts_for(&o, "root");
	snprintf(img, sizeof(img), "%s/root.img", tmpdir);
	snprintf(img2, sizeof(img2), "%s/root2.img", tmpdir);
	CHECK(azl_emit_ext4(fs, &o, img, &res, &err) == 0);
	if (err.code)
		fprintf(stderr, "emit: %s\n", err.msg);
	CHECK(azl_ext4_min_size(fs, &o, &min, &err) == 0);
	CHECK(min == res.min_bytes && min % (1 << 20) == 0);
	CHECK(res.size_bytes > min && res.size_bytes % (1 << 20) == 0);
	CHECK(res.data_bytes >= BIG);
	CHECK(fsck_clean(img));
	check_stat(img);
	check_links_and_xattrs(img);
	check_content(img);
	check_super(img, &o);
	check_sparse_image(img);

	/* Same model, same opts: same bytes. */
	CHECK(azl_emit_ext4(fs, &o, img2, &res2, &err) == 0);
	CHECK(azl_sha256_file(img, h1, NULL, &err) == 0);
	CHECK(azl_sha256_file(img2, h2, NULL, &err) == 0);
	CHECK_STR(h1, h2);

	/* Host state does not reach the image: umask, TZ, and the variable
	 * libext2fs itself reads for a fake clock. */
	mode_t um = umask(077);
	setenv("TZ", "Asia/Kolkata", 1);
	setenv("E2FSPROGS_FAKE_TIME", "12345", 1);
	CHECK(azl_emit_ext4(fs, &o, img2, &res2, &err) == 0);
	umask(um);
	unsetenv("TZ");
	unsetenv("E2FSPROGS_FAKE_TIME");
	CHECK(azl_sha256_file(img2, h2, NULL, &err) == 0);
	CHECK_STR(h1, h2);
	struct stat st;
	CHECK(stat(img2, &st) == 0 && (st.st_mode & 0777) == 0644);

	/* An explicit size of exactly the minimum works and fsck is clean. */
	o.size_bytes = min;
	CHECK(azl_emit_ext4(fs, &o, img2, &res2, &err) == 0);
	CHECK(res2.size_bytes == min);
	CHECK(fsck_clean(img2));

	/* Too small: a bad-input error naming both sizes; nothing written. */
	struct azl_err e2 = {0};
	char msg[128];
	unlink(img2);
	o.size_bytes = 4 << 20;
	CHECK(azl_emit_ext4(fs, &o, img2, NULL, &e2) < 0);
	CHECK(e2.kind == AZL_ERR_INPUT);
	snprintf(msg, sizeof(msg), "the root filesystem needs at least %llu MiB; "
		 "'size' is 4 MiB", (unsigned long long)(min >> 20));
	CHECK_CONTAINS(e2.msg, msg);
	CHECK(access(img2, F_OK) != 0);
}

static void test_subtree(struct azl_fs *fs)
{
	struct azl_ext4_opts o;
	struct azl_ext4_result res = {0};
	struct azl_err err = {0};
	const char *ex[] = { "/usr/share/big" };
	char img[4200], *s = NULL;

	opts_for(&o, "usr");
	o.root = "/usr";
	o.exclude = ex;
	o.nexclude = 1;
	o.read_only = true;
	snprintf(img, sizeof(img), "%s/usr.img", tmpdir);
	CHECK(azl_emit_ext4(fs, &o, img, &res, &err) == 0);
	if (err.code)
		fprintf(stderr, "emit usr: %s\n", err.msg);
	CHECK(fsck_clean(img));
	s = dbg(img, "ls -l /");
	CHECK_CONTAINS(s, " bin");
	CHECK_CONTAINS(s, " sbin");
	CHECK_CONTAINS(s, " share");
	CHECK_CONTAINS(s, "lost+found");
	CHECK(strstr(s, " usr") == NULL && strstr(s, " etc") == NULL);
	free(s);
	s = dbg(img, "ls /share");
	CHECK(strstr(s, "big") == NULL);
	free(s);
	s = dbg(img, "stat /bin/su");
	CHECK_CONTAINS(s, "Mode:  04755");
	free(s);
	/* h1, h2 (in bin) and h3 (in sbin) are all inside /usr: 3 links. */
	s = dbg(img, "stat /sbin/h3");
	CHECK_CONTAINS(s, "Links: 3");
	free(s);
	CHECK(content_is(img, "/bin/big", 0, BIG));
	run(&s, "dumpe2fs -h %s", img);
	CHECK_CONTAINS(s, "read-only");
	CHECK(strstr(s, "has_journal") == NULL);
	free(s);

	/* A predicate excludes a directory with its contents. */
	struct azl_err e2 = {0};
	o.root = "/nope";
	CHECK(azl_emit_ext4(fs, &o, img, NULL, &e2) < 0 && e2.kind == AZL_ERR_INPUT);
	CHECK_CONTAINS(e2.msg, "/nope");
}

/* A content file that is gone: the error names it and nothing is left
 * behind, neither the image nor its temporary. */
static void test_missing_content(void)
{
	struct azl_fs *fs = azl_fs_new();
	struct azl_node n = {0};
	struct azl_ext4_opts o;
	struct azl_err err = {0};
	char img[512], *s = NULL;

	n.data_path = azl_xasprintf("%s/gone", tmpdir);
	n.size = 10;
	t_add_node(fs, "/f", AZL_FT_REG, 0644, &n);
	opts_for(&o, "bad");
	snprintf(img, sizeof(img), "%s/bad.img", tmpdir);
	CHECK(azl_emit_ext4(fs, &o, img, NULL, &err) < 0);
	CHECK_CONTAINS(err.msg, "/gone");
	CHECK(access(img, F_OK) != 0);
	run(&s, "ls %s | grep -c tmp", tmpdir);
	CHECK_STR(s, "0\n");
	free(s);
	azl_fs_free(fs);
}

static bool skip_var(void *ctx, const struct azl_node *n)
{
	(void)ctx;
	return !strcmp(n->path, "/var");
}

static void test_exclude_fn(struct azl_fs *fs)
{
	struct azl_ext4_opts o;
	struct azl_err err = {0};
	char img[4200], *s;

	opts_for(&o, "root");
	o.exclude_fn = skip_var;
	o.no_journal = true;
	snprintf(img, sizeof(img), "%s/nov.img", tmpdir);
	CHECK(azl_emit_ext4(fs, &o, img, NULL, &err) == 0);
	CHECK(fsck_clean(img));
	s = dbg(img, "ls /");
	CHECK(strstr(s, "var") == NULL);
	CHECK_CONTAINS(s, "usr");
	free(s);
	s = dbg(img, "stat /var/cache/junk");
	CHECK_CONTAINS(s, "File not found");
	free(s);
}

/* ---- AZL_EXT4_BENCH: a host tree through the model ---- */

static void add_tree(struct azl_fs *fs, const char *host, const char *path,
		     uint64_t *bytes)
{
	DIR *d = opendir(host);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *hp = azl_path_join(host, de->d_name);
		char *mp = azl_xasprintf("%s/%s", strcmp(path, "/") ? path : "",
					 de->d_name);
		struct stat st;
		struct azl_node n = {0};
		if (lstat(hp, &st) == 0 && S_ISDIR(st.st_mode)) {
			t_add_node(fs, mp, AZL_FT_DIR, st.st_mode & 07777, &n);
			add_tree(fs, hp, mp, bytes);
		} else if (S_ISREG(st.st_mode)) {
			n.data_path = azl_xstrdup(hp);
			n.size = (uint64_t)st.st_size;
			*bytes += n.size;
			t_add_node(fs, mp, AZL_FT_REG, st.st_mode & 07777, &n);
		}
		free(hp);
		free(mp);
	}
	if (d)
		closedir(d);
}

static int bench(const char *dir, const char *out)
{
	struct azl_fs *fs = azl_fs_new();
	struct azl_ext4_opts o;
	struct azl_err err = {0};
	struct timespec a, b;
	uint64_t bytes = 0;

	add_tree(fs, dir, "/", &bytes);
	opts_for(&o, "bench");
	/* AZL_EXT4_TIGHT: exactly the minimum size, to stress the estimate. */
	uint64_t min = 0;
	if (azl_ext4_min_size(fs, &o, &min, &err) < 0)
		fprintf(stderr, "min size: %s\n", err.msg);
	printf("minimum size: %llu blocks\n", (unsigned long long)min / 4096);
	if (getenv("AZL_EXT4_TIGHT"))
		o.size_bytes = min;
	clock_gettime(CLOCK_MONOTONIC, &a);
	int r = azl_emit_ext4(fs, &o, out, NULL, &err);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	if (r < 0)
		fprintf(stderr, "bench: %s\n", err.msg);
	else
		printf("azl_emit_ext4: %zu nodes, %.1f MB in %.2f s = %.0f MB/s\n",
		       azl_fs_count(fs), (double)bytes / 1e6, s, (double)bytes / 1e6 / s);
	azl_fs_free(fs);
	return r < 0;
}

/* Into a bigger file at an offset (a disk's partition): exactly the bytes
 * of an image file of its own, nothing outside its range touched, holes
 * kept; without a size it is refused. */
static void test_at_offset(struct azl_fs *fs)
{
	struct azl_ext4_opts o;
	struct azl_ext4_result res = {0};
	struct azl_err err = {0};
	char img[4200], disk[4200], h1[65], h2[65], got[8];
	const uint64_t off = 3 << 20;
	uint64_t size = 0;
	struct stat st;
	int fd;

	opts_for(&o, "root");
	snprintf(img, sizeof(img), "%s/alone.img", tmpdir);
	snprintf(disk, sizeof(disk), "%s/disk.raw", tmpdir);
	CHECK(azl_emit_ext4(fs, &o, img, &res, &err) == 0);
	uint64_t min = 0;
	CHECK(azl_ext4_image_size(fs, &o, &size, &min, &err) == 0);
	CHECK(size == res.size_bytes && min == res.min_bytes);
	fd = open(disk, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)(off + size + (1 << 20))) == 0);
	CHECK(pwrite(fd, "BEFORE", 6, (off_t)off - 6) == 6);
	CHECK(pwrite(fd, "AFTER", 5, (off_t)(off + size)) == 5);
	o.size_bytes = 0;
	CHECK(azl_emit_ext4_at(fs, &o, disk, off, NULL, &err) < 0);
	CHECK_CONTAINS(err.msg, "needs its size");
	o.size_bytes = size;
	CHECK(azl_emit_ext4_at(fs, &o, disk, off, NULL, &err) == 0);
	CHECK(azl_sha256_file(img, h1, NULL, &err) == 0);
	CHECK(azl_sha256_fd_range(fd, off, size, h2) == 0);
	CHECK_STR(h1, h2);
	CHECK(pread(fd, got, 6, (off_t)off - 6) == 6 && !memcmp(got, "BEFORE", 6));
	CHECK(pread(fd, got, 5, (off_t)(off + size)) == 5 && !memcmp(got, "AFTER", 5));
	CHECK(fstat(fd, &st) == 0 && (uint64_t)st.st_size == off + size + (1 << 20));
	struct stat si;
	CHECK(stat(img, &si) == 0);
	/* the same blocks allocated, give or take the two markers' */
	CHECK((uint64_t)st.st_blocks <= (uint64_t)si.st_blocks + 16);
	close(fd);
	/* Too small a size: refused as for a file of its own. */
	o.size_bytes = 4 << 20;
	CHECK(azl_emit_ext4_at(fs, &o, disk, off, NULL, &err) < 0);
	CHECK(err.kind == AZL_ERR_INPUT);
}

int main(void)
{
	struct azl_fs *fs;
	const char *out = getenv("AZL_EXT4_OUT"), *bdir = getenv("AZL_EXT4_BENCH");
	char *rm;

	if (bdir)
		return bench(bdir, out ? out : "/tmp/azl-ext4-bench.img");
	if (!mkdtemp(tmpdir))
		return 1;
	make_data_file();
	fs = sample_model();
	if (out) {
		struct azl_ext4_opts o;
		struct azl_err err = {0};
		opts_for(&o, "root");
		int r = azl_emit_ext4(fs, &o, out, NULL, &err);
		if (r < 0)
			fprintf(stderr, "%s\n", err.msg);
		CHECK(r == 0);
	} else {
		test_root(fs);
		test_at_offset(fs);
		test_subtree(fs);
		test_exclude_fn(fs);
		test_missing_content();
	}
	azl_fs_free(fs);
	rm = azl_xasprintf("rm -rf %s", tmpdir);
	if (system(rm) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	free(rm);
	return t_done();
}
