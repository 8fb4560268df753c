/* Staging without the sandbox: what lands in lower/, and how a hand-made
 * upper/ (as overlayfs would leave it) is folded back into the model.
 * Runs as root or not (tests/integration/sandbox.sh runs both). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/fsmodel.h"
#include "compose/staging.h"
#include "t.h"

#define SDE 1700000000
#define PKG 1600000000

static char tmp[512];

static struct azl_node *add(struct azl_fs *fs, const char *path,
			    enum azl_ftype type, uint32_t mode)
{
	struct azl_node n = { 0 };
	struct azl_err err = { 0 };

	n.path = azl_xstrdup(path);
	n.type = type;
	n.mode = mode;
	n.mtime = PKG;
	n.owner_pkg = azl_xstrdup("pkg-1-1.noarch");
	if (azl_fs_add(fs, &n, &err) < 0)
		fprintf(stderr, "model: %s\n", err.msg);
	azl_node_release(&n);
	return azl_fs_get(fs, path);
}

static void add_inline(struct azl_fs *fs, const char *path, uint32_t mode,
		       const char *text)
{
	struct azl_node *n = add(fs, path, AZL_FT_REG, mode);
	n->size = strlen(text);
	n->data = (unsigned char *)azl_xstrdup(text);
}

static void add_ref(struct azl_fs *fs, const char *path, uint32_t mode,
		    const char *file, uint64_t off, uint64_t size)
{
	struct azl_node *n = add(fs, path, AZL_FT_REG, mode);
	n->data_path = azl_xstrdup(file);
	n->data_offset = off;
	n->size = size;
}

static char *path_in(const char *a, const char *b)
{
	return azl_xasprintf("%s%s", a, b);
}

static char *slurp(const char *path)
{
	char *d = NULL;
	size_t len;
	if (azl_read_file(path, 0, &d, &len, NULL) < 0)
		return azl_xstrdup("(unreadable)");
	return d;
}

static void put_file(const char *path, const char *text, mode_t mode)
{
	struct azl_err err = { 0 };
	if (azl_write_file_atomic(path, text, strlen(text), mode, &err) < 0)
		fprintf(stderr, "%s\n", err.msg);
}

static struct azl_fs *model(const char *obj644, const char *obj_exe,
			    const char *blob)
{
	struct azl_fs *fs = azl_fs_new();
	struct azl_node *n;

	add(fs, "/etc", AZL_FT_DIR, 0755);
	add_inline(fs, "/etc/a.conf", 0644, "a\n");
	add_inline(fs, "/etc/b.conf", 0640, "b\n");
	add_ref(fs, "/etc/linked", 0644, obj644, 0, 6);  /* object is 0444 */
	add(fs, "/usr", AZL_FT_DIR, 0555);
	add(fs, "/usr/bin", AZL_FT_DIR, 0755);
	add_ref(fs, "/usr/bin/tool", 0755, obj_exe, 0, 5);
	add_ref(fs, "/usr/bin/part", 0644, blob, 4, 5);
	add_inline(fs, "/usr/bin/h1", 0644, "same inode\n");
	add_inline(fs, "/usr/bin/h2", 0644, "same inode\n");
	azl_fs_get(fs, "/usr/bin/h1")->hardlink_group = 7;
	azl_fs_get(fs, "/usr/bin/h2")->hardlink_group = 7;
	n = add(fs, "/usr/bin/link", AZL_FT_SYMLINK, 0777);
	n->link_target = azl_xstrdup("tool");
	add(fs, "/usr/bin/pipe", AZL_FT_FIFO, 0600);
	add_inline(fs, "/usr/bin/ghost", 0644, "never\n");
	azl_fs_get(fs, "/usr/bin/ghost")->flags = AZL_NODE_GHOST;
	add(fs, "/var", AZL_FT_DIR, 0755);
	add(fs, "/var/old", AZL_FT_DIR, 0755);
	add_inline(fs, "/var/old/x", 0644, "x\n");
	add_inline(fs, "/var/old/y", 0644, "y\n");
	add_inline(fs, "/var/gone", 0644, "gone\n");
	return fs;
}

static void test_materialise(struct azl_staging *st, const char *obj644,
			     const char *obj_exe)
{
	struct stat sb, ob;
	char *p, *c;

	p = path_in(st->lower, "/usr");
	CHECK(stat(p, &sb) == 0 && (sb.st_mode & 07777) == 0555 && sb.st_mtime == PKG);
	free(p);
	p = path_in(st->lower, "/etc/b.conf");
	CHECK(lstat(p, &sb) == 0 && (sb.st_mode & 07777) == 0640 && sb.st_mtime == PKG);
	CHECK_STR(c = slurp(p), "b\n");
	free(c);
	free(p);
	/* a 0644 file may be its 0444 object; a 0755 one may not */
	p = path_in(st->lower, "/etc/linked");
	CHECK(stat(p, &sb) == 0 && stat(obj644, &ob) == 0 && sb.st_ino == ob.st_ino);
	free(p);
	p = path_in(st->lower, "/usr/bin/tool");
	CHECK(stat(p, &sb) == 0 && stat(obj_exe, &ob) == 0 && sb.st_ino != ob.st_ino);
	CHECK((sb.st_mode & 07777) == 0755);
	CHECK_STR(c = slurp(p), "tool\n");
	free(c);
	free(p);
	CHECK(st->nlinked == 1);
	p = path_in(st->lower, "/usr/bin/part");
	CHECK_STR(c = slurp(p), "hello");
	free(c);
	free(p);
	struct stat h1, h2;
	char *p1 = path_in(st->lower, "/usr/bin/h1"), *p2 = path_in(st->lower, "/usr/bin/h2");
	CHECK(stat(p1, &h1) == 0 && stat(p2, &h2) == 0 && h1.st_ino == h2.st_ino);
	free(p1);
	free(p2);
	char target[64] = "";
	p = path_in(st->lower, "/usr/bin/link");
	CHECK(readlink(p, target, sizeof(target) - 1) == 4);
	CHECK_STR(target, "tool");
	free(p);
	p = path_in(st->lower, "/usr/bin/pipe");
	CHECK(lstat(p, &sb) == 0 && S_ISFIFO(sb.st_mode));
	free(p);
	p = path_in(st->lower, "/usr/bin/ghost");
	CHECK(lstat(p, &sb) < 0 && errno == ENOENT);
	free(p);
	/* mount points for the sandbox */
	p = path_in(st->lower, "/proc");
	CHECK(stat(p, &sb) == 0 && S_ISDIR(sb.st_mode));
	free(p);
}

/* What overlayfs leaves after: echo new > /etc/new; echo A > /etc/a.conf;
 * chmod 600 /etc/b.conf; touch /etc/linked (copy-up keeps 0444);
 * rm /var/gone; rm -r /var/old; mkdir /var/old; echo z > /var/old/z;
 * ln /etc/new /etc/new2; mkdir /srv. */
static int fake_upper(struct azl_staging *st)
{
	char *p;
	int ok = 1;

	p = path_in(st->upper, "/etc");
	ok &= mkdir(p, 0755) == 0;
	free(p);
	p = path_in(st->upper, "/etc/new");
	put_file(p, "new\n", 0644);
	char *p2 = path_in(st->upper, "/etc/new2");
	ok &= link(p, p2) == 0;
	free(p2);
	free(p);
	p = path_in(st->upper, "/etc/a.conf");
	put_file(p, "A\n", 0644);
	free(p);
	p = path_in(st->upper, "/etc/b.conf");
	put_file(p, "b\n", 0600);
	free(p);
	p = path_in(st->upper, "/etc/linked");
	put_file(p, "linked", 0444);
	free(p);
	p = path_in(st->upper, "/var");
	ok &= mkdir(p, 0755) == 0;
	free(p);
	p = path_in(st->upper, "/var/gone");
	ok &= mknod(p, S_IFCHR | 0000, makedev(0, 0)) == 0; /* whiteout */
	free(p);
	p = path_in(st->upper, "/var/old");
	ok &= mkdir(p, 0755) == 0;
	ok &= setxattr(p, "user.overlay.opaque", "y", 1, 0) == 0;
	free(p);
	p = path_in(st->upper, "/var/old/z");
	put_file(p, "z\n", 0644);
	free(p);
	p = path_in(st->upper, "/srv");
	ok &= mkdir(p, 0750) == 0;
	free(p);
	return ok;
}

static void test_capture(struct azl_fs *fs, struct azl_staging *st)
{
	struct azl_err err = { 0 };
	char *objects = azl_xasprintf("%s/objects", tmp), *c;
	const struct azl_node *n;
	char hex[65];

	CHECK(fake_upper(st));
	CHECK(azl_staging_capture(st, fs, objects, SDE, &err) == 0);
	if (err.msg[0])
		fprintf(stderr, "%s\n", err.msg);
	n = azl_fs_get(fs, "/etc/new");
	azl_sha256_hex("new\n", 4, hex);
	CHECK(n && n->type == AZL_FT_REG && n->mode == 0644 && n->mtime == SDE);
	CHECK(n && !strcmp(n->sha256, hex) && n->size == 4 && !n->owner_pkg);
	CHECK(n && n->data_path && strstr(n->data_path, hex));
	CHECK_STR(c = slurp(n ? n->data_path : "/nonexistent"), "new\n");
	free(c);
	CHECK(n && n->hardlink_group == 8); /* above the model's 7 */
	CHECK(azl_fs_get(fs, "/etc/new2") &&
	      azl_fs_get(fs, "/etc/new2")->hardlink_group == 8);
	n = azl_fs_get(fs, "/etc/a.conf");
	CHECK(n && n->mtime == SDE && n->size == 2 && !n->data && n->owner_pkg);
	n = azl_fs_get(fs, "/etc/b.conf");
	CHECK(n && n->mode == 0600 && n->mtime == PKG && n->data);
	n = azl_fs_get(fs, "/etc/linked");
	CHECK(n && n->mode == 0644 && n->mtime == PKG);
	CHECK(azl_fs_get(fs, "/var/gone") == NULL);
	CHECK(azl_fs_get(fs, "/var/old/x") == NULL && azl_fs_get(fs, "/var/old/y") == NULL);
	CHECK(azl_fs_get(fs, "/var/old/z") != NULL);
	n = azl_fs_get(fs, "/var/old");
	CHECK(n && n->type == AZL_FT_DIR && n->mtime == PKG);
	n = azl_fs_get(fs, "/srv");
	CHECK(n && n->type == AZL_FT_DIR && n->mode == 0750 && n->mtime == SDE);
	CHECK(n && n->uid == 0 && n->gid == 0);
	/* untouched paths are untouched */
	n = azl_fs_get(fs, "/usr/bin/tool");
	CHECK(n && n->mtime == PKG && n->data_path && n->mode == 0755);
	free(objects);
}

/* Copy mode: never the object itself; changes are made in lower/ in place
 * and found by walking it (deletions without whiteouts). */
static void test_copy_mode(const char *obj644, const char *obj_exe,
			   const char *blob)
{
	struct azl_fs *fs = model(obj644, obj_exe, blob);
	struct azl_staging *st = NULL;
	struct azl_err err = { 0 };
	char *dir = azl_xasprintf("%s/copy", tmp), *objects = azl_xasprintf("%s/objects", tmp);
	char *p, *c;
	struct stat sb, ob;

	CHECK(azl_staging_create_copy(fs, dir, &st, &err) == 0);
	if (!st)
		goto out;
	CHECK(!st->overlay && st->nlinked == 0);
	p = path_in(st->lower, "/etc/linked");
	CHECK(stat(p, &sb) == 0 && stat(obj644, &ob) == 0 && sb.st_ino != ob.st_ino);
	CHECK((sb.st_mode & 07777) == 0644);
	free(p);
	p = path_in(st->lower, "/var/gone");
	CHECK(unlink(p) == 0);
	free(p);
	p = path_in(st->lower, "/etc/new");
	put_file(p, "new\n", 0644);
	free(p);
	p = path_in(st->lower, "/etc/b.conf");
	CHECK(chmod(p, 0600) == 0);
	free(p);
	CHECK(azl_staging_capture(st, fs, objects, SDE, &err) == 0);
	CHECK(azl_fs_get(fs, "/var/gone") == NULL);
	CHECK_STR(c = slurp(azl_fs_get(fs, "/etc/new") ? azl_fs_get(fs, "/etc/new")->data_path : "/none"), "new\n");
	free(c);
	CHECK(azl_fs_get(fs, "/etc/b.conf") && azl_fs_get(fs, "/etc/b.conf")->mode == 0600 &&
	      azl_fs_get(fs, "/etc/b.conf")->mtime == PKG);
	/* untouched, and the sandbox's mount points stay out */
	CHECK(azl_fs_get(fs, "/usr/bin/ghost") && azl_fs_get(fs, "/var/old/x"));
	CHECK(azl_fs_get(fs, "/etc/a.conf")->mtime == PKG);
	CHECK(azl_fs_get(fs, "/proc") == NULL && azl_fs_get(fs, "/tmp") == NULL);
	azl_staging_destroy(st);
out:
	azl_fs_free(fs);
	free(dir);
	free(objects);
}

static void test_rmtree(void)
{
	char *a = azl_xasprintf("%s/rm", tmp), *b = azl_xasprintf("%s/rm/ro", tmp);
	char *f = azl_xasprintf("%s/rm/ro/f", tmp);
	struct azl_err err = { 0 };
	struct stat sb;

	CHECK(mkdir(a, 0755) == 0 && mkdir(b, 0755) == 0);
	put_file(f, "f", 0444);
	CHECK(chmod(b, 0) == 0 && chmod(a, 0555) == 0);
	CHECK(azl_staging_rmtree(a, &err) == 0);
	CHECK(lstat(a, &sb) < 0 && errno == ENOENT);
	CHECK(azl_staging_rmtree(a, &err) == 0); /* missing is fine */
	free(a);
	free(b);
	free(f);
}

int main(void)
{
	struct azl_err err = { 0 };
	struct azl_staging *st = NULL;
	char *obj644, *obj_exe, *blob, *dir;
	struct azl_fs *fs;

	snprintf(tmp, sizeof(tmp), "%s/azl-test-staging.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmp))
		return 1;
	obj644 = azl_xasprintf("%s/obj644", tmp);
	obj_exe = azl_xasprintf("%s/objexe", tmp);
	blob = azl_xasprintf("%s/blob", tmp);
	put_file(obj644, "linked", 0444);
	put_file(obj_exe, "tool\n", 0444);
	put_file(blob, "XXXXhelloYYYY", 0644);
	fs = model(obj644, obj_exe, blob);
	dir = azl_xasprintf("%s/stage", tmp);
	CHECK(azl_staging_create(fs, dir, &st, &err) == 0);
	if (st && !st->overlay) {
		/* the host cannot mount an overlay in a user namespace */
		printf("overlay mode not available here: only copy mode tested\n");
		azl_staging_destroy(st);
	} else if (st) {
		test_materialise(st, obj644, obj_exe);
		test_capture(fs, st);
		azl_staging_destroy(st);
	} else {
		fprintf(stderr, "%s\n", err.msg);
	}
	/* an existing tree is refused and left alone */
	CHECK(azl_staging_create(fs, dir, &st, &err) == 0);
	struct azl_staging *st2 = NULL;
	CHECK(azl_staging_create(fs, dir, &st2, &err) == -EEXIST && !st2);
	CHECK_CONTAINS(err.msg, "lower");
	struct stat sb;
	CHECK(stat(st ? st->lower : "/nonexistent", &sb) == 0);
	azl_staging_destroy(st);
	test_rmtree();
	test_copy_mode(obj644, obj_exe, blob);
	azl_fs_free(fs);
	free(dir);
	free(obj644);
	free(obj_exe);
	free(blob);
	(void)azl_staging_rmtree(tmp, NULL);
	return t_done();
}
