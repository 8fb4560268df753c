/* cpio: archives read back by GNU cpio (listing, extraction, contents),
 * byte-identical when written twice, gzip/zstd streams that gunzip/zstd
 * accept, order and size errors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "base/buf.h"
#include "base/fs.h"
#include "reproducible/cpio.h"
#include "t.h"

static int buf_sink(void *ctx, const void *data, size_t len)
{
	azl_buf_add(ctx, data, len);
	return 0;
}

static int sample(enum azl_comp comp, struct azl_buf *out)
{
	struct azl_err err = { 0 };
	struct azl_cpio *c;
	char big[70000];
	int rc;

	memset(big, 'x', sizeof(big));
	rc = azl_cpio_open(comp, 1700000000, buf_sink, out, &c, &err);
	if (rc < 0)
		return rc;
	rc = azl_cpio_dir(c, "/dev", 0755, &err);
	rc = rc ?: azl_cpio_chr(c, "/dev/console", 0600, 5, 1, &err);
	rc = rc ?: azl_cpio_file_mem(c, "/init", 0755, "#!/bin/sh\necho hi\n", 18, &err);
	rc = rc ?: azl_cpio_dir(c, "/usr", 0755, &err);
	rc = rc ?: azl_cpio_dir(c, "/usr/bin", 0755, &err);
	rc = rc ?: azl_cpio_symlink(c, "/usr/bin/sh", "busybox", &err);
	rc = rc ?: azl_cpio_file(c, "/usr/data", 0644, sizeof(big), &err);
	rc = rc ?: azl_cpio_data(c, big, 1000, &err);
	rc = rc ?: azl_cpio_data(c, big + 1000, sizeof(big) - 1000, &err);
	rc = rc ?: azl_cpio_dir(c, "/usr-x", 0700, &err);
	if (rc < 0) {
		fprintf(stderr, "%s\n", err.msg);
		azl_cpio_free(c);
		return rc;
	}
	return azl_cpio_close(c, NULL, &err);
}


static void test_roundtrip(void)
{
	struct azl_buf a = AZL_BUF_INIT, b = AZL_BUF_INIT;
	struct azl_err err = { 0 };
	char dir[] = "/tmp/azl-cpio-XXXXXX", *cmd, *out, *path;

	CHECK(sample(AZL_COMP_NONE, &a) == 0);
	CHECK(sample(AZL_COMP_NONE, &b) == 0);
	CHECK(a.len == b.len && !memcmp(a.data, b.data, a.len));
	CHECK(a.len % 4 == 0);
	CHECK(mkdtemp(dir) != NULL);
	path = azl_path_join(dir, "a.cpio");
	CHECK(azl_write_file_atomic(path, a.data, a.len, 0644, &err) == 0);

	cmd = azl_xasprintf("cpio -it --quiet < %s", path);
	out = t_run(cmd);
	CHECK_STR(out, "dev\ndev/console\ninit\nusr\nusr/bin\nusr/bin/sh\nusr/data\nusr-x\n");
	free(out);
	free(cmd);
	cmd = azl_xasprintf("cpio -itv --quiet < %s", path);
	out = t_run(cmd);
	CHECK_CONTAINS(out, "crw-------   1 root     root       5,   1 Nov 14  2023 dev/console");
	CHECK_CONTAINS(out, "lrwxrwxrwx   1 root     root            7 Nov 14  2023 usr/bin/sh -> busybox");
	CHECK_CONTAINS(out, "-rw-r--r--   1 root     root        70000 Nov 14  2023 usr/data");
	CHECK_CONTAINS(out, "drwx------   2 root     root            0 Nov 14  2023 usr-x");
	free(out);
	free(cmd);
	/* Extraction (no devices as a test may lack the privilege). */
	cmd = azl_xasprintf("cd %s && cpio -id --quiet --no-absolute-filenames "
			    "'init' 'usr/*' < a.cpio && cat init && wc -c < usr/data", dir);
	out = t_run(cmd);
	CHECK_STR(out, "#!/bin/sh\necho hi\n70000\n");
	free(out);
	free(cmd);
	cmd = azl_xasprintf("rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	free(cmd);
	free(path);
	azl_buf_release(&a);
	azl_buf_release(&b);
}

static void test_compressed(void)
{
	static const enum azl_comp comps[] = { AZL_COMP_GZIP, AZL_COMP_ZSTD };
	static const char *const tools[] = { "gzip -dc", "zstd -dc" };
	struct azl_buf plain = AZL_BUF_INIT;
	struct azl_err err = { 0 };

	CHECK(sample(AZL_COMP_NONE, &plain) == 0);
	for (size_t i = 0; i < 2; i++) {
		struct azl_buf z = AZL_BUF_INIT, z2 = AZL_BUF_INIT;
		char path[] = "/tmp/azl-cpio-z-XXXXXX", *cmd, *out;
		int fd = mkstemp(path);
		CHECK(sample(comps[i], &z) == 0);
		CHECK(sample(comps[i], &z2) == 0);
		CHECK(z.len == z2.len && !memcmp(z.data, z2.data, z.len));
		CHECK(z.len < plain.len);
		CHECK(azl_write_all(fd, z.data, z.len) == 0);
		close(fd);
		cmd = azl_xasprintf("%s %s | cpio -it --quiet | tail -1", tools[i], path);
		out = t_run(cmd);
		CHECK_STR(out, "usr-x\n");
		free(out);
		free(cmd);
		cmd = azl_xasprintf("%s %s | wc -c", tools[i], path);
		out = t_run(cmd);
		CHECK(strtoul(out, NULL, 10) == plain.len);
		free(out);
		free(cmd);
		unlink(path);
		azl_buf_release(&z);
		azl_buf_release(&z2);
	}
	(void)err;
	azl_buf_release(&plain);
}

/* The kernel's initramfs unpacker reads one gzip member and calls anything
 * after it junk: a gzip cpio bigger than pgzip's member size is still one
 * member, which zlib's single-member inflate consumes to the last byte. */
static void test_gzip_one_member(void)
{
	struct azl_buf b = AZL_BUF_INIT;
	struct azl_err err = { 0 };
	struct azl_cpio *c = NULL;
	size_t n = 3u << 20;
	unsigned char *data = azl_xmalloc(n), *plain = azl_xmalloc(n + 4096);
	uint32_t x = 7;

	for (size_t i = 0; i < n; i++)
		data[i] = (unsigned char)((x = x * 1103515245u + 12345u) >> 28);
	CHECK(azl_cpio_open(AZL_COMP_GZIP, 0, buf_sink, &b, &c, &err) == 0);
	CHECK(azl_cpio_file(c, "/big", 0644, n, &err) == 0);
	CHECK(azl_cpio_data(c, data, n, &err) == 0);
	CHECK(azl_cpio_close(c, NULL, &err) == 0);
	z_stream s = { 0 };
	CHECK(inflateInit2(&s, 31) == Z_OK);
	s.next_in = (unsigned char *)b.data;
	s.avail_in = (uInt)b.len;
	s.next_out = plain;
	s.avail_out = (uInt)(n + 4096);
	CHECK(inflate(&s, Z_FINISH) == Z_STREAM_END);
	CHECK(s.avail_in == 0 && s.total_out > n);
	inflateEnd(&s);
	free(data);
	free(plain);
	azl_buf_release(&b);
}

static void test_errors(void)
{
	struct azl_buf b = AZL_BUF_INIT;
	struct azl_err err = { 0 };
	struct azl_cpio *c;

	CHECK(azl_cpio_open(AZL_COMP_NONE, 0, buf_sink, &b, &c, &err) == 0);
	CHECK(azl_cpio_dir(c, "/usr", 0755, &err) == 0);
	CHECK(azl_cpio_dir(c, "/etc", 0755, &err) == -EINVAL);
	CHECK_CONTAINS(err.msg, "/etc: out of order after /usr");
	CHECK(azl_cpio_dir(c, "/usr/", 0755, &err) == -EINVAL);
	CHECK(azl_cpio_file(c, "/usr/f", 0644, 10, &err) == 0);
	CHECK(azl_cpio_data(c, "12345", 5, &err) == 0);
	CHECK(azl_cpio_data(c, "1234567", 7, &err) == -EINVAL);
	CHECK_CONTAINS(err.msg, "/usr/f: more data than declared");
	CHECK(azl_cpio_close(c, NULL, &err) == -EINVAL);
	CHECK_CONTAINS(err.msg, "/usr/f: 5 bytes missing");
	azl_buf_release(&b);

	CHECK(azl_cpio_path_cmp("/a", "/a/b") < 0);
	CHECK(azl_cpio_path_cmp("/a/b", "/a-b") < 0);
	CHECK(azl_cpio_path_cmp("/a-b", "/a") > 0);
	CHECK(azl_cpio_path_cmp("/a", "/a") == 0);
}

int main(void)
{
	test_roundtrip();
	test_compressed();
	test_gzip_one_member();
	test_errors();
	return t_done();
}
