/* base/hash: azl_sha256_file agrees with sha256sum(1) on plain, empty and
 * sparse files (holes hashed as zeros without being read), and reports the
 * size and a missing file; byte ranges and tails of a file agree with the
 * tool on the same bytes cut out.  Incremental digests, one stream or two
 * together (azl_sha256_update2), agree with OpenSSL's one-shot digest for
 * every length around the block and padding edges and for random splits,
 * on the SHA-extension code and on OpenSSL's. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
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

/* OpenSSL's digest of p, the independent reference. */
static void evp_hex(const unsigned char *p, size_t n, char hex[65])
{
	unsigned char md[32];
	unsigned int len = 0;

	CHECK(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) == 1 && len == 32);
	azl_hex(md, 32, hex);
}

/* Two streams of lengths na and nb out of data, fed in random pieces
 * through update2 (and now and then update alone), checked against
 * OpenSSL. */
static void check_pair(const unsigned char *data, size_t na, size_t offb, size_t nb,
		       unsigned *seed)
{
	struct azl_sha256 *a = azl_sha256_new(), *b = azl_sha256_new();
	size_t ia = 0, ib = 0;
	char got[65], want[65];

	while (ia < na || ib < nb) {
		size_t ka = (size_t)rand_r(seed) % 300, kb = ka;

		if (rand_r(seed) % 4 == 0)
			kb = (size_t)rand_r(seed) % 300;
		if (rand_r(seed) % 8 == 0)
			ka *= 1000;
		ka = ka < na - ia ? ka : na - ia;
		kb = kb < nb - ib ? kb : nb - ib;
		if (rand_r(seed) % 5 == 0)
			azl_sha256_update(a, data + ia, ka);
		else
			azl_sha256_update2(a, data + ia, ka, b, data + offb + ib, kb),
			ib += kb;
		ia += ka;
	}
	azl_sha256_final(a, got);
	evp_hex(data, na, want);
	CHECK_STR(got, want);
	azl_sha256_final(b, got);
	evp_hex(data + offb, nb, want);
	CHECK_STR(got, want);
}

/* A tap that digests what it is shown from byte `skip` of the stream on,
 * hashing the first byte of each call itself and leaving the rest to the
 * caller (from). */
struct tail_tap {
	uint64_t skip, next;
	int gaps;
	struct azl_sha256 *h;
};

static struct azl_sha256 *tail_tap(void *ctx, uint64_t off, const void *data,
				   size_t len, size_t *from)
{
	struct tail_tap *t = ctx;
	size_t k = off < t->skip ? (size_t)(t->skip - off < len ? t->skip - off : len) : 0;

	t->gaps += off != t->next;
	t->next = off + len;
	if (k == len)
		return NULL;
	azl_sha256_update(t->h, (const char *)data + k, 1);
	*from = k + 1;
	return t->h;
}

/* azl_sha256_file_tapped: the file's digest as azl_sha256_file says, and
 * the tap shown every byte once, in order (holes as zeros), so that its
 * digest of the tail is the tool's. */
static void check_tapped(const char *f, const char *dir)
{
	struct tail_tap t = { .skip = 1000 };
	char plain[65], got[65], want[65], *g = azl_xasprintf("%s/tail", dir), *cmd;
	struct azl_err err = { 0 };
	off_t at[] = { 0, 3 << 20 };

	make_file(f, (4 << 20) + 777, at, 2, 300000);
	t.h = azl_sha256_new();
	CHECK(azl_sha256_file(f, plain, NULL, &err) == 0);
	CHECK(azl_sha256_file_tapped(f, tail_tap, &t, got, NULL, &err) == 0);
	CHECK_STR(got, plain);
	CHECK(t.gaps == 0 && t.next == (4u << 20) + 777);
	azl_sha256_final(t.h, got);
	cmd = azl_xasprintf("tail -c +1001 %s > %s", f, g);
	CHECK(system(cmd) == 0);
	sha256sum(g, want);
	CHECK_STR(got, want);
	unlink(g);
	free(cmd);
	free(g);
}

static void check_incremental(void)
{
	size_t cap = 1 << 20;
	unsigned char *data = azl_xmalloc(cap);
	unsigned seed = 7;
	char got[65], want[65];

	for (size_t i = 0; i < cap; i++)
		data[i] = (unsigned char)(rand_r(&seed) >> 7);
	/* FIPS 180-4's "abc". */
	azl_sha256_hex("abc", 3, got);
	CHECK_STR(got, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* Every length up to three blocks, whole and split in two. */
	for (size_t n = 0; n <= 192; n++) {
		struct azl_sha256 *h = azl_sha256_new(), *g = azl_sha256_new();
		struct azl_sha256 *e = azl_sha256_new();

		evp_hex(data, n, want);
		azl_sha256_update(h, data, n / 3);
		azl_sha256_update(h, data + n / 3, n - n / 3);
		azl_sha256_final(h, got);
		CHECK_STR(got, want);
		azl_sha256_update2(g, data, n, e, data, 0);
		azl_sha256_final(g, got);
		CHECK_STR(got, want);
		azl_sha256_final(e, got);
		CHECK_STR(got, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	}
	for (int round = 0; round < 40; round++) {
		size_t na = (size_t)rand_r(&seed) % (cap / 2);
		size_t offb = (size_t)rand_r(&seed) % 200;
		size_t nb = na - (na > offb ? offb : na) / 2;

		check_pair(data, na, offb, nb, &seed);
	}
	check_pair(data, cap, 0, cap, &seed); /* the same bytes twice */
	free(data);
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

	/* The SHA-extension code where the CPU has them, then OpenSSL's. */
	check_tapped(f, dir);
	check_incremental();
	azl_sha256_force_generic(1);
	check_incremental();
	azl_sha256_force_generic(0);

	unlink(f);
	CHECK(azl_sha256_file(f, hex, NULL, &err) == -ENOENT);
	CHECK_CONTAINS(err.msg, f);
	rmdir(dir);
	free(f);
	return t_done();
}
