#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <zlib.h>
#include <zstd.h>

#include "base/buf.h"
#include "base/hash.h"
#include "reproducible/zstream.h"
#include "t.h"

static int buf_sink(void *ctx, const void *data, size_t len)
{
	azl_buf_add(ctx, data, len);
	return 0;
}

static unsigned char *make_input(size_t n)
{
	unsigned char *p = azl_xmalloc(n);
	uint32_t x = 99;
	for (size_t i = 0; i < n; i++) {
		x = x * 1664525u + 1013904223u;
		p[i] = (x >> 28) < 3 ? (unsigned char)(x >> 8)
				     : (unsigned char)("abcdefgh\n"[(i >> 4) % 9]);
	}
	return p;
}

static int run(enum azl_comp comp, int threads, const unsigned char *in,
	       size_t n, size_t chunk, struct azl_buf *out,
	       struct azl_zstream_result *res)
{
	struct azl_err err = {0};
	struct azl_zstream *s = NULL;
	int r = azl_zstream_open(comp, 0, threads, 0, buf_sink, out, &s, &err);
	for (size_t off = 0; r == 0 && off < n; off += chunk)
		r = azl_zstream_write(s, in + off, n - off < chunk ? n - off : chunk, &err);
	if (r == 0)
		return azl_zstream_close(s, res, &err);
	azl_zstream_free(s);
	return r;
}

static int unzstd(const struct azl_buf *z, struct azl_buf *out)
{
	ZSTD_DStream *d = ZSTD_createDStream();
	ZSTD_inBuffer in = { z->data, z->len, 0 };
	unsigned char buf[1 << 16];
	size_t rc = 1;

	while (in.pos < in.size) {
		ZSTD_outBuffer o = { buf, sizeof(buf), 0 };
		rc = ZSTD_decompressStream(d, &o, &in);
		if (ZSTD_isError(rc))
			break;
		azl_buf_add(out, buf, o.pos);
	}
	ZSTD_freeDStream(d);
	return rc == 0 ? 0 : -1;
}

static void check_digests(const struct azl_zstream_result *res,
			  const unsigned char *in, size_t n,
			  const struct azl_buf *out)
{
	char hex[65];
	azl_sha256_hex(in, n, hex);
	CHECK_STR(res->raw_sha256, hex);
	CHECK(res->raw_size == n);
	azl_sha256_hex(out->data, out->len, hex);
	CHECK_STR(res->sha256, hex);
	CHECK(res->size == out->len);
}

static void test_zstd(void)
{
	size_t n = 24u << 20; /* three zstd jobs (8 MiB each at level 3) */
	unsigned char *in = make_input(n);
	struct azl_buf a = AZL_BUF_INIT, b = AZL_BUF_INIT, c = AZL_BUF_INIT;
	struct azl_buf plain = AZL_BUF_INIT;
	struct azl_zstream_result ra, rb, rc;

	CHECK(run(AZL_COMP_ZSTD, 1, in, n, 1 << 16, &a, &ra) == 0);
	CHECK(run(AZL_COMP_ZSTD, 2, in, n, 12345, &b, &rb) == 0);
	CHECK(run(AZL_COMP_ZSTD, 8, in, n, 3 << 20, &c, &rc) == 0);
	CHECK(a.len > 0 && a.len < n / 2);
	CHECK(a.len == b.len && !memcmp(a.data, b.data, a.len));
	CHECK(a.len == c.len && !memcmp(a.data, c.data, a.len));
	CHECK_STR(ra.sha256, rc.sha256);
	check_digests(&ra, in, n, &a);
	CHECK(unzstd(&a, &plain) == 0);
	CHECK(plain.len == n && !memcmp(plain.data, in, n));
	free(in);
	azl_buf_release(&a);
	azl_buf_release(&b);
	azl_buf_release(&c);
	azl_buf_release(&plain);
}

static void test_gzip_none(void)
{
	size_t n = 3u << 20;
	unsigned char *in = make_input(n);
	struct azl_buf a = AZL_BUF_INIT, b = AZL_BUF_INIT, raw = AZL_BUF_INIT;
	struct azl_zstream_result ra, rb, rr;
	uLongf plain_len = n;
	unsigned char *plain = azl_xmalloc(n);

	CHECK(run(AZL_COMP_GZIP, 1, in, n, 4096, &a, &ra) == 0);
	CHECK(run(AZL_COMP_GZIP, 4, in, n, 1 << 20, &b, &rb) == 0);
	CHECK(a.len == b.len && !memcmp(a.data, b.data, a.len));
	check_digests(&ra, in, n, &a);
	/* A series of gzip members (pgzip.h), each read by zlib in turn. */
	z_stream s = {0};
	int zrc, members = 0;
	size_t got = 0;
	inflateInit2(&s, 31);
	s.next_in = (unsigned char *)a.data;
	s.avail_in = (uInt)a.len;
	s.next_out = plain;
	s.avail_out = (uInt)plain_len;
	while ((zrc = inflate(&s, Z_FINISH)) == Z_STREAM_END) {
		members++;
		got += s.total_out;
		if (!s.avail_in || inflateReset(&s) != Z_OK)
			break;
	}
	CHECK(zrc == Z_STREAM_END && s.avail_in == 0 && got == n);
	CHECK(members > 1);
	inflateEnd(&s);
	CHECK(!memcmp(plain, in, n));

	CHECK(run(AZL_COMP_NONE, 1, in, n, 100000, &raw, &rr) == 0);
	CHECK(raw.len == n && !memcmp(raw.data, in, n));
	CHECK_STR(rr.sha256, rr.raw_sha256);
	CHECK_STR(rr.raw_sha256, ra.raw_sha256);

	enum azl_comp c;
	CHECK(azl_comp_parse("zstd", &c) == 0 && c == AZL_COMP_ZSTD);
	CHECK(azl_comp_parse("gzip", &c) == 0 && c == AZL_COMP_GZIP);
	CHECK(azl_comp_parse("lz4", &c) == -EINVAL);
	free(in);
	free(plain);
	azl_buf_release(&a);
	azl_buf_release(&b);
	azl_buf_release(&raw);
}

static int full_sink(void *ctx, const void *data, size_t len)
{
	return -ENOSPC;
}

static void test_sink_error(void)
{
	size_t n = 4u << 20;
	unsigned char *in = make_input(n);
	enum azl_comp comps[] = { AZL_COMP_NONE, AZL_COMP_GZIP, AZL_COMP_ZSTD };

	for (size_t i = 0; i < 3; i++) {
		struct azl_err err = {0};
		struct azl_zstream *s = NULL;
		int r = azl_zstream_open(comps[i], 0, 2, 0, full_sink, NULL, &s, &err);
		CHECK(r == 0 || comps[i] == AZL_COMP_GZIP);
		if (r == 0) {
			r = azl_zstream_write(s, in, n, &err);
			if (r == 0)
				r = azl_zstream_close(s, NULL, &err);
			else
				azl_zstream_free(s);
		}
		CHECK(r == -ENOSPC);
		CHECK(err.msg[0] != '\0');
	}
	free(in);
}

int main(void)
{
	test_zstd();
	test_gzip_none();
	test_sink_error();
	return t_done();
}
