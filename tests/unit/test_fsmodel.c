#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "compose/fsmodel.h"
#include "t.h"

static int add(struct azl_fs *fs, const char *path, enum azl_ftype type,
	       const char *target)
{
	struct azl_node n = {0};
	struct azl_err err = {0};
	int r;

	n.path = azl_xstrdup(path);
	n.type = type;
	n.mode = type == AZL_FT_DIR ? 0755 : 0644;
	n.link_target = azl_xstrdup(target);
	r = azl_fs_add(fs, &n, &err);
	azl_node_release(&n);
	return r;
}

static void test_order(void)
{
	struct azl_fs *fs = azl_fs_new();
	const char *paths[] = { "/usr", "/a.b", "/a", "/a/z", "/a/b", "/a-", "/a/b/c", "/b" };
	const char *want[] = { "/", "/a", "/a/b", "/a/b/c", "/a/z", "/a-", "/a.b", "/b", "/usr" };

	for (size_t i = 0; i < sizeof(paths) / sizeof(*paths); i++)
		CHECK(add(fs, paths[i], AZL_FT_DIR, NULL) == 0);
	CHECK(azl_fs_count(fs) == 9);
	struct azl_node *const *s = azl_fs_sorted(fs);
	for (size_t i = 0; i < 9; i++)
		CHECK_STR(s[i]->path, want[i]);
	CHECK(azl_path_cmp("/a/b", "/a.b") < 0);
	CHECK(azl_path_cmp("/a", "/a/b") < 0);
	CHECK(azl_path_cmp("/a\xff", "/ab") > 0);
	azl_fs_free(fs);
}

static void test_add_errors(void)
{
	struct azl_fs *fs = azl_fs_new();
	struct azl_err err = {0};
	struct azl_node n = {0};

	CHECK(add(fs, "/etc", AZL_FT_DIR, NULL) == 0);
	CHECK(add(fs, "/etc", AZL_FT_DIR, NULL) == -EEXIST);
	CHECK(add(fs, "/missing/x", AZL_FT_REG, NULL) == -ENOENT);
	CHECK(add(fs, "/etc/f", AZL_FT_REG, NULL) == 0);
	CHECK(add(fs, "/etc/f/g", AZL_FT_REG, NULL) == -ENOENT);
	CHECK(add(fs, "/etc/../x", AZL_FT_REG, NULL) == -EINVAL);
	CHECK(add(fs, "etc/x", AZL_FT_REG, NULL) == -EINVAL);
	CHECK(add(fs, "/etc/", AZL_FT_REG, NULL) == -EINVAL);
	CHECK(add(fs, "/etc//x", AZL_FT_REG, NULL) == -EINVAL);

	/* On failure the node stays the caller's. */
	n.path = azl_xstrdup("/nope/x");
	n.type = AZL_FT_REG;
	CHECK(azl_fs_add(fs, &n, &err) == -ENOENT);
	CHECK_CONTAINS(err.msg, "/nope");
	CHECK(n.path != NULL);
	azl_node_release(&n);
	azl_fs_free(fs);
}

static void test_put_remove(void)
{
	struct azl_fs *fs = azl_fs_new();
	struct azl_err err = {0};
	struct azl_node n = {0};

	CHECK(add(fs, "/d", AZL_FT_DIR, NULL) == 0);
	CHECK(add(fs, "/d/e", AZL_FT_DIR, NULL) == 0);
	CHECK(add(fs, "/d/e/f", AZL_FT_REG, NULL) == 0);
	CHECK(add(fs, "/d2", AZL_FT_REG, NULL) == 0);
	CHECK(azl_fs_count(fs) == 5);

	n.path = azl_xstrdup("/d2");
	n.type = AZL_FT_REG;
	n.mode = 0600;
	CHECK(azl_fs_put(fs, &n, &err) == 0);
	CHECK(n.path == NULL);
	CHECK(azl_fs_get(fs, "/d2")->mode == 0600);
	CHECK(azl_fs_count(fs) == 5);

	/* Replacing a directory by a file drops what was below it. */
	n.path = azl_xstrdup("/d/e");
	n.type = AZL_FT_SYMLINK;
	n.link_target = azl_xstrdup("/d2");
	CHECK(azl_fs_put(fs, &n, &err) == 0);
	CHECK(azl_fs_get(fs, "/d/e/f") == NULL);
	CHECK(azl_fs_count(fs) == 4);

	CHECK(add(fs, "/d/x", AZL_FT_REG, NULL) == 0);
	CHECK(azl_fs_remove(fs, "/d") == 0);
	CHECK(azl_fs_get(fs, "/d") == NULL);
	CHECK(azl_fs_get(fs, "/d/x") == NULL);
	CHECK(azl_fs_get(fs, "/d2") != NULL);
	CHECK(azl_fs_count(fs) == 2);
	CHECK(azl_fs_remove(fs, "/d") == -ENOENT);
	CHECK(azl_fs_sorted(fs)[1] == azl_fs_get(fs, "/d2"));
	azl_fs_free(fs);
}

static void test_many(void)
{
	struct azl_fs *fs = azl_fs_new();
	char p[64];
	int ok = 1;

	CHECK(add(fs, "/m", AZL_FT_DIR, NULL) == 0);
	/* Inserted in reverse; the sorted view must still be ascending. */
	for (int i = 4999; i >= 0; i--) {
		snprintf(p, sizeof(p), "/m/f%05d", i);
		ok &= add(fs, p, AZL_FT_REG, NULL) == 0;
	}
	CHECK(ok);
	CHECK(azl_fs_count(fs) == 5002);
	struct azl_node *const *s = azl_fs_sorted(fs);
	for (size_t i = 1; i < azl_fs_count(fs); i++)
		ok &= azl_path_cmp(s[i - 1]->path, s[i]->path) < 0;
	CHECK(ok);
	CHECK_STR(s[2]->path, "/m/f00000");
	CHECK(azl_fs_get(fs, "/m/f04242") != NULL);
	azl_fs_free(fs);
}

static void expect_resolve(struct azl_fs *fs, const char *in, bool follow,
			   const char *want)
{
	struct azl_err err = {0};
	char *out = NULL;
	int r = azl_fs_resolve(fs, in, follow, &out, &err);
	CHECK(r == 0);
	CHECK_STR(out, want);
	if (r < 0)
		fprintf(stderr, "  resolving %s: %s\n", in, err.msg);
	free(out);
}

static void test_resolve(void)
{
	struct azl_fs *fs = azl_fs_new();
	struct azl_err err = {0};
	char *out = NULL;

	add(fs, "/usr", AZL_FT_DIR, NULL);
	add(fs, "/usr/lib", AZL_FT_DIR, NULL);
	add(fs, "/usr/bin", AZL_FT_DIR, NULL);
	add(fs, "/usr/bin/busybox", AZL_FT_REG, NULL);
	add(fs, "/bin", AZL_FT_SYMLINK, "usr/bin");
	add(fs, "/lib", AZL_FT_SYMLINK, "/usr/lib");
	add(fs, "/usr/bin/sh", AZL_FT_SYMLINK, "busybox");
	add(fs, "/escape", AZL_FT_SYMLINK, "../../../../etc");
	add(fs, "/loop1", AZL_FT_SYMLINK, "loop2");
	add(fs, "/loop2", AZL_FT_SYMLINK, "/loop1");
	add(fs, "/usr/lib/up", AZL_FT_SYMLINK, "../..");

	expect_resolve(fs, "/bin/sh", true, "/usr/bin/busybox");
	expect_resolve(fs, "/bin/sh", false, "/usr/bin/sh");
	expect_resolve(fs, "bin", false, "/bin");
	expect_resolve(fs, "./bin//", true, "/usr/bin");
	expect_resolve(fs, "/../../../etc/passwd", true, "/etc/passwd");
	expect_resolve(fs, "/escape/shadow", true, "/etc/shadow");
	expect_resolve(fs, "/lib/up/usr/lib/up/x", true, "/x");
	expect_resolve(fs, "/lib/up/up/x", true, "/up/x");
	expect_resolve(fs, "/lib/new/file", true, "/usr/lib/new/file");
	expect_resolve(fs, "/", true, "/");
	expect_resolve(fs, "", true, "/");
	expect_resolve(fs, "/usr/bin/..", true, "/usr");

	CHECK(azl_fs_resolve(fs, "/loop1/x", true, &out, &err) == -ELOOP);
	CHECK_CONTAINS(err.msg, "/loop1/x");
	CHECK(out == NULL);
	CHECK(azl_fs_resolve(fs, "/loop1", false, &out, &err) == 0);
	CHECK_STR(out, "/loop1");
	free(out);
	out = NULL;
	CHECK(azl_fs_resolve(fs, "/usr/bin/busybox/x", true, &out, &err) == -ENOTDIR);
	azl_fs_free(fs);
}

struct sink {
	struct azl_buf b;
	int calls;
	int fail_at;
};

static int sink_fn(void *ctx, const void *data, size_t len)
{
	struct sink *s = ctx;
	if (++s->calls == s->fail_at)
		return -ENOSPC;
	azl_buf_add(&s->b, data, len);
	return 0;
}

static void test_read(void)
{
	char tmpl[] = "/tmp/azl-fsmodel-XXXXXX";
	int fd = mkstemp(tmpl);
	size_t big = 300000;
	unsigned char *blob = azl_xmalloc(big + 7);
	struct azl_err err = {0};
	struct azl_node n = {0};
	struct sink s = { AZL_BUF_INIT, 0, 0 };

	for (size_t i = 0; i < big + 7; i++)
		blob[i] = (unsigned char)(i * 31 + 7);
	CHECK(fd >= 0 && azl_write_all(fd, blob, big + 7) == 0);
	close(fd);

	n.path = "/f";
	n.type = AZL_FT_REG;
	n.data_path = tmpl;
	n.data_offset = 7;
	n.size = big;
	CHECK(azl_node_read(&n, sink_fn, &s, &err) == 0);
	CHECK(s.b.len == big && !memcmp(s.b.data, blob + 7, big));
	CHECK(s.calls >= 3); /* streamed in chunks, not whole */

	azl_buf_reset(&s.b);
	s.calls = 0;
	s.fail_at = 2;
	CHECK(azl_node_read(&n, sink_fn, &s, &err) == -ENOSPC);
	CHECK_CONTAINS(err.msg, "/f");

	azl_err_clear(&err);
	n.size = big + 1; /* file shorter than the header claims */
	s.fail_at = 0;
	CHECK(azl_node_read(&n, sink_fn, &s, &err) == -EIO);
	CHECK_CONTAINS(err.msg, tmpl);

	azl_buf_reset(&s.b);
	n.data_path = NULL;
	n.data = (unsigned char *)"hello";
	n.size = 5;
	CHECK(azl_node_read(&n, sink_fn, &s, &err) == 0);
	CHECK(s.b.len == 5 && !memcmp(s.b.data, "hello", 5));

	n.data = NULL;
	n.data_path = "/nonexistent/azl";
	azl_err_clear(&err);
	CHECK(azl_node_read(&n, sink_fn, &s, &err) == -ENOENT);
	CHECK_CONTAINS(err.msg, "/nonexistent/azl");

	unlink(tmpl);
	free(blob);
	azl_buf_release(&s.b);
}

int main(void)
{
	test_order();
	test_add_errors();
	test_put_remove();
	test_many();
	test_resolve();
	test_read();
	return t_done();
}
