#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include "base/buf.h"
#include "base/fs.h"
#include "reproducible/pgzip.h"
#include "t.h"

static int buf_sink(void *ctx, const void *data, size_t len)
{
	azl_buf_add(ctx, data, len);
	return 0;
}

/* Compressible but not trivial: words with a slowly drifting pattern and
 * some noise, so back-references cross block boundaries. */
static unsigned char *make_input(size_t n)
{
	unsigned char *p = azl_xmalloc(n ? n : 1);
	uint32_t x = 12345;
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (x >> 24) % 7 == 0 ? (unsigned char)(x >> 16)
					  : (unsigned char)("lorem ipsum dolor "[(i / 3) % 18]);
	}
	return p;
}

static enum azl_pgzip_form form; /* the form under test */

/* Compress in pieces of `chunk` bytes with `threads` threads. */
static int pgz(const unsigned char *in, size_t n, int level, int threads,
		    size_t chunk, struct azl_buf *out)
{
	struct azl_err err = {0};
	struct azl_pgzip *z = NULL;
	int r = azl_pgzip_new(form, level, threads, buf_sink, out, &z, &err);
	for (size_t off = 0; r == 0 && off < n; off += chunk)
		r = azl_pgzip_write(z, in + off, n - off < chunk ? n - off : chunk, &err);
	if (r == 0)
		return azl_pgzip_finish(z, &err);
	azl_pgzip_free(z);
	return r;
}

/* zlib's own gzip reader, member after member; *members counts them. */
static int inflate_all(const struct azl_buf *gz, struct azl_buf *out, int *members)
{
	z_stream s = {0};
	unsigned char buf[65536];
	int zrc;

	*members = 0;
	if (inflateInit2(&s, 15 + 16) != Z_OK)
		return -1;
	s.next_in = (unsigned char *)gz->data;
	s.avail_in = (uInt)gz->len;
	do {
		s.next_out = buf;
		s.avail_out = sizeof(buf);
		zrc = inflate(&s, Z_NO_FLUSH);
		azl_buf_add(out, buf, sizeof(buf) - s.avail_out);
		if (zrc == Z_STREAM_END) {
			++*members;
			if (s.avail_in && inflateReset(&s) == Z_OK)
				zrc = Z_OK;
		}
	} while (zrc == Z_OK);
	int ok = zrc == Z_STREAM_END && s.avail_in == 0;
	inflateEnd(&s);
	return ok ? 0 : -1;
}

static size_t block_size(void)
{
	return form == AZL_PGZIP_MEMBERS ? AZL_PGZIP_MEMBER_BLOCK : AZL_PGZIP_BLOCK;
}

static void round_trip(size_t n)
{
	unsigned char *in = make_input(n);
	struct azl_buf a = AZL_BUF_INIT, b = AZL_BUF_INIT, c = AZL_BUF_INIT;
	struct azl_buf d = AZL_BUF_INIT, plain = AZL_BUF_INIT;

	CHECK(pgz(in, n, 6, 1, 65536, &a) == 0);
	CHECK(pgz(in, n, 6, 2, 1000, &b) == 0);
	CHECK(pgz(in, n, 6, 8, 1 << 20, &c) == 0);
	CHECK(pgz(in, n, 6, 3, 1, &d) == 0 || n > 100000);
	CHECK(a.len > 18);
	CHECK(a.len == b.len && !memcmp(a.data, b.data, a.len));
	CHECK(a.len == c.len && !memcmp(a.data, c.data, a.len));
	if (n <= 100000)
		CHECK(a.len == d.len && !memcmp(a.data, d.data, a.len));
	int members = 0;
	CHECK(inflate_all(&a, &plain, &members) == 0);
	CHECK(plain.len == n && (n == 0 || !memcmp(plain.data, in, n)));
	/* One member per started block (at least one), or one in all. */
	CHECK(members == (form == AZL_PGZIP_ONE_MEMBER ? 1
			  : n ? (int)((n + block_size() - 1) / block_size()) : 1));
	/* Fixed header: no name, mtime 0, OS byte 3. */
	CHECK(a.len >= 10 && !memcmp(a.data, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10));
	if (n > 1000)
		CHECK(a.len < n / 2);
	free(in);
	azl_buf_release(&a);
	azl_buf_release(&b);
	azl_buf_release(&c);
	azl_buf_release(&d);
	azl_buf_release(&plain);
}

static void gzip_t(void)
{
	size_t n = 3 * block_size() + 4321;
	unsigned char *in = make_input(n);
	struct azl_buf a = AZL_BUF_INIT;
	char path[] = "/tmp/azl-pgzip-XXXXXX";
	int fd = mkstemp(path);

	struct azl_buf many = AZL_BUF_INIT;
	CHECK(pgz(in, n, 9, 2, 7777, &a) == 0);
	CHECK(a.len > 10 && (unsigned char)a.data[8] == 2); /* XFL for -9 */
	CHECK(pgz(in, n, 9, 1000, 65536, &many) == 0); /* clamped, same bytes */
	CHECK(many.len == a.len && !memcmp(many.data, a.data, a.len));
	azl_buf_release(&many);
	CHECK(fd >= 0 && azl_write_all(fd, a.data, a.len) == 0);
	close(fd);
	char *cmd = azl_xasprintf("gzip -t < %s", path);
	CHECK(system(cmd) == 0);
	free(cmd);
	/* A corrupted copy must fail gzip -t: the check above can fail. */
	a.data[a.len - 6] ^= 1;
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0 && azl_write_all(fd, a.data, a.len) == 0);
	close(fd);
	cmd = azl_xasprintf("gzip -t < %s 2>/dev/null", path);
	CHECK(system(cmd) != 0);
	free(cmd);
	unlink(path);
	free(in);
	azl_buf_release(&a);
}

static int fail_sink(void *ctx, const void *data, size_t len)
{
	int *calls = ctx;
	return ++*calls >= 3 ? -ENOSPC : 0;
}

static void sink_error(void)
{
	size_t n = 2 << 20;
	unsigned char *in = make_input(n);
	struct azl_err err = {0};
	struct azl_pgzip *z = NULL;
	int calls = 0, r;

	CHECK(azl_pgzip_new(form, 6, 2, fail_sink, &calls, &z, &err) == 0);
	r = azl_pgzip_write(z, in, n, &err);
	if (r == 0)
		r = azl_pgzip_finish(z, &err);
	else
		azl_pgzip_free(z);
	CHECK(r == -ENOSPC);
	CHECK_CONTAINS(err.msg, "gzip");
	free(in);
}

/* Members are smaller than zlib's one member at the same level (libdeflate
 * compresses better than the dictionary loss costs), and different bytes. */
static void forms_differ(void)
{
	size_t n = 6 * AZL_PGZIP_MEMBER_BLOCK;
	unsigned char *in = make_input(n);
	struct azl_buf a = AZL_BUF_INIT, b = AZL_BUF_INIT;

	form = AZL_PGZIP_MEMBERS;
	CHECK(pgz(in, n, 6, 2, 65536, &a) == 0);
	form = AZL_PGZIP_ONE_MEMBER;
	CHECK(pgz(in, n, 6, 2, 65536, &b) == 0);
	CHECK(a.len != b.len || memcmp(a.data, b.data, a.len));
	CHECK(a.len < b.len + b.len / 50);
	free(in);
	azl_buf_release(&a);
	azl_buf_release(&b);
}

int main(void)
{
	enum azl_pgzip_form forms[] = { AZL_PGZIP_MEMBERS, AZL_PGZIP_ONE_MEMBER };
	for (size_t i = 0; i < 2; i++) {
		form = forms[i];
		round_trip(0);
		round_trip(1);
		round_trip(block_size());
		round_trip(block_size() + 1);
		round_trip(40000);
		round_trip(5 * block_size() + 99999);
		gzip_t();
		sink_error();
	}
	forms_differ();
	return t_done();
}
