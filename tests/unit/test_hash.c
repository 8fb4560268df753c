/* base/hash: azl_sha256_file agrees with sha256sum(1) on plain, empty and
 * sparse files (holes hashed as zeros without being read), and reports the
 * size and a missing file; byte ranges and tails of a file agree with the
 * tool on the same bytes cut out. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/hash.h"
#include "t.h"

/* sha256sum's digest of path, from the tool itself. */
static void sha256sum(const char *path, char hex[65])
{
	char *cmd = azl_xasprintf("sha256sum %s", path), *out = t_run(cmd);
	snprintf(hex, 65, "%.64s", out ? out : "");
	free(out);
	free(cmd);
}

/* A file of `size` bytes with `len` bytes of pattern at each offset in at[]
 * (the rest holes where the filesystem makes them). */
static void make_file(const char *path, off_t size, const off_t *at, size_t n, size_t len)
{
	unsigned char *p = azl_xmalloc(len ? len : 1);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 7 + 3);
	CHECK(fd >= 0 && ftruncate(fd, size) == 0);
	for (size_t i = 0; i < n; i++)
		CHECK(pwrite(fd, p, len, at[i]) == (ssize_t)len);
	close(fd);
	free(p);
}

static void same_as_tool(const char *path, uint64_t want_size)
{
	char ours[65], theirs[65];
	uint64_t size = 0;
	struct azl_err err = { 0 };

	CHECK(azl_sha256_file(path, ours, &size, &err) == 0);
	sha256sum(path, theirs);
	CHECK_STR(ours, theirs);
	CHECK(size == want_size);
}

int main(void)
{
	char dir[] = "/tmp/azl-hash-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char *f = azl_xasprintf("%s/f", dir);
	struct azl_err err = { 0 };
	char hex[65];

	make_file(f, 0, NULL, 0, 0); /* empty */
	same_as_tool(f, 0);
	{ /* plain, not a multiple of the read size */
		off_t at[] = { 0 };
		make_file(f, 200001, at, 1, 200001);
		same_as_tool(f, 200001);
	}
	{ /* data, 8 MiB hole, data, trailing hole */
		off_t at[] = { 0, 8 << 20 };
		make_file(f, (16 << 20) + 12345, at, 2, 70000);
		same_as_tool(f, (16 << 20) + 12345);
	}
	{ /* leading hole, data in the middle, not block-aligned */
		off_t at[] = { (3 << 20) + 17 };
		make_file(f, 5 << 20, at, 1, 4096);
		same_as_tool(f, 5 << 20);
	}
	make_file(f, 9 << 20, NULL, 0, 0); /* nothing but a hole */
	same_as_tool(f, 9 << 20);

	/* A digest that differs where one byte in a hole's place differs. */
	{
		char a[65], b[65];
		off_t at[] = { 1 << 20 };
		make_file(f, 4 << 20, NULL, 0, 0);
		CHECK(azl_sha256_file(f, a, NULL, &err) == 0);
		make_file(f, 4 << 20, at, 1, 1);
		CHECK(azl_sha256_file(f, b, NULL, &err) == 0);
		CHECK(strcmp(a, b) != 0);
	}

	/* Ranges and tails agree with the tool on the same bytes cut out
	 * (dd), across a hole; a range past the end is an error, not zeros. */
	{
		off_t at[] = { 0, 2 << 20 };
		char *g = azl_xasprintf("%s/g", dir), *cmd, want[65], got[65];
		uint64_t size = 0;
		int fd;

		make_file(f, (3 << 20) + 99, at, 2, 5000);
		cmd = azl_xasprintf("dd if=%s of=%s bs=64K skip=1000 count=3000000 iflag=skip_bytes,count_bytes status=none", f, g);
		CHECK(system(cmd) == 0);
		free(cmd);
		sha256sum(g, want);
		fd = open(f, O_RDONLY);
		CHECK(fd >= 0 && azl_sha256_fd_range(fd, 1000, 3000000, got) == 0);
		CHECK_STR(got, want);
		CHECK(azl_sha256_fd_range(fd, 1000, (3 << 20), got) == -EIO);
		close(fd);
		cmd = azl_xasprintf("tail -c +1001 %s > %s", f, g);
		CHECK(system(cmd) == 0);
		free(cmd);
		sha256sum(g, want);
		CHECK(azl_sha256_file_from(f, 1000, got, &size, &err) == 0);
		CHECK_STR(got, want);
		CHECK(size == (3u << 20) + 99);
		CHECK(azl_sha256_file_from(f, (4 << 20), got, NULL, &err) < 0);
		CHECK_CONTAINS(err.msg, f);
		unlink(g);
		free(g);
	}

	unlink(f);
	CHECK(azl_sha256_file(f, hex, NULL, &err) == -ENOENT);
	CHECK_CONTAINS(err.msg, f);
	rmdir(dir);
	free(f);
	return t_done();
}
