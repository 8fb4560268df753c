#include "base/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fs.h"
#include "base/sha256x2.h"

/* With the SHA extensions the state is kept here and compressed by
 * base/sha256x2.c (which can run two digests at once); without them
 * OpenSSL does the work. */
struct azl_sha256 {
	EVP_MD_CTX *ctx;          /* NULL: the fields below */
	uint32_t st[8];
	unsigned char buf[64];    /* a partial block */
	size_t nbuf;
	uint64_t total;           /* bytes so far */
};

static pthread_once_t ni_once = PTHREAD_ONCE_INIT;
static int ni_ok;

static void ni_detect(void)
{
	ni_ok = azl_sha256x2_available();
}

void azl_sha256_force_generic(int on)
{
	pthread_once(&ni_once, ni_detect);
	if (on)
		ni_ok = 0;
	else
		ni_detect();
}

void azl_hex(const unsigned char *bin, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[bin[i] >> 4];
		out[2 * i + 1] = digits[bin[i] & 15];
	}
	out[2 * n] = '\0';
}

int azl_is_sha256_hex(const char *s)
{
	size_t i;
	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == 64;
}

struct azl_sha256 *azl_sha256_new(void)
{
	static const uint32_t iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};
	struct azl_sha256 *h = calloc(1, sizeof(*h));

	pthread_once(&ni_once, ni_detect);
	if (h && ni_ok) {
		memcpy(h->st, iv, sizeof(iv));
		return h;
	}
	if (!h || !(h->ctx = EVP_MD_CTX_new()) ||
	    !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL)) {
		fputs("azl-compose: cannot initialise SHA-256\n", stderr);
		abort();
	}
	return h;
}

/* Top up a partial block from *p; returns with the block empty or all of
 * the input taken. */
static void ni_head(struct azl_sha256 *h, const unsigned char **p, size_t *n)
{
	size_t k;

	h->total += *n;
	if (!h->nbuf)
		return;
	k = 64 - h->nbuf < *n ? 64 - h->nbuf : *n;
	memcpy(h->buf + h->nbuf, *p, k);
	h->nbuf += k;
	*p += k;
	*n -= k;
	if (h->nbuf == 64) {
		azl_sha256x2_blocks(h->st, h->buf, 1);
		h->nbuf = 0;
	}
}

/* The whole blocks of p, then keep the rest.  The block is empty or n 0. */
static void ni_tail(struct azl_sha256 *h, const unsigned char *p, size_t n)
{
	if (n >= 64)
		azl_sha256x2_blocks(h->st, p, n / 64);
	p += n / 64 * 64;
	n %= 64;
	memcpy(h->buf + h->nbuf, p, n);
	h->nbuf += n;
}

void azl_sha256_update(struct azl_sha256 *h, const void *data, size_t len)
{
	const unsigned char *p = data;

	if (h->ctx) {
		EVP_DigestUpdate(h->ctx, data, len);
		return;
	}
	ni_head(h, &p, &len);
	ni_tail(h, p, len);
}

void azl_sha256_update2(struct azl_sha256 *a, const void *pa, size_t na,
			struct azl_sha256 *b, const void *pb, size_t nb)
{
	const unsigned char *p = pa, *q = pb;
	size_t k;

	if (a->ctx || b->ctx) {
		azl_sha256_update(a, pa, na);
		azl_sha256_update(b, pb, nb);
		return;
	}
	ni_head(a, &p, &na);
	ni_head(b, &q, &nb);
	k = na / 64 < nb / 64 ? na / 64 : nb / 64;
	if (k) {
		azl_sha256x2_blocks2(a->st, p, b->st, q, k);
		p += k * 64;
		q += k * 64;
		na -= k * 64;
		nb -= k * 64;
	}
	ni_tail(a, p, na);
	ni_tail(b, q, nb);
}

void azl_sha256_update_tapped(struct azl_sha256 *h, azl_sha256_tap_fn tap,
			      void *ctx, uint64_t off, const void *data, size_t len)
{
	const char *p = data;
	struct azl_sha256 *t = NULL;
	size_t from = 0;

	if (tap)
		t = tap(ctx, off, data, len, &from);
	if (t && h)
		azl_sha256_update2(h, p, len, t, p + from, len - from);
	else if (t)
		azl_sha256_update(t, p + from, len - from);
	else if (h)
		azl_sha256_update(h, p, len);
}

void azl_sha256_final(struct azl_sha256 *h, char hex[65])
{
	unsigned char md[32];
	unsigned int n = 0;

	if (h->ctx) {
		EVP_DigestFinal_ex(h->ctx, md, &n);
		EVP_MD_CTX_free(h->ctx);
	} else {
		uint64_t bits = h->total * 8;

		h->buf[h->nbuf++] = 0x80;
		if (h->nbuf > 56) {
			memset(h->buf + h->nbuf, 0, 64 - h->nbuf);
			azl_sha256x2_blocks(h->st, h->buf, 1);
			h->nbuf = 0;
		}
		memset(h->buf + h->nbuf, 0, 56 - h->nbuf);
		for (int i = 0; i < 8; i++)
			h->buf[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
		azl_sha256x2_blocks(h->st, h->buf, 1);
		for (int i = 0; i < 8; i++)
			for (int j = 0; j < 4; j++)
				md[4 * i + j] = (unsigned char)(h->st[i] >> (24 - 8 * j));
	}
	azl_hex(md, 32, hex);
	free(h);
}

void azl_sha256_hex(const void *data, size_t len, char hex[65])
{
	struct azl_sha256 *h = azl_sha256_new();
	azl_sha256_update(h, data, len);
	azl_sha256_final(h, hex);
}

/* Where a range of a file goes: a digest and a tap, offsets counted from
 * the range's start. */
struct sink {
	struct azl_sha256 *h;
	azl_sha256_tap_fn tap;
	void *ctx;
	uint64_t start;
};

static void sink_add(struct sink *s, uint64_t pos, const void *p, size_t n)
{
	azl_sha256_update_tapped(s->h, s->tap, s->ctx, pos - s->start, p, n);
}

/* Bytes [pos, end) of fd into s. */
static int hash_range(int fd, struct sink *s, uint64_t pos, uint64_t end,
		      unsigned char *buf, size_t cap)
{
	while (pos < end) {
		size_t n = end - pos < cap ? (size_t)(end - pos) : cap;
		int r = azl_pread_all(fd, buf, n, pos);
		if (r < 0)
			return r;
		sink_add(s, pos, buf, n);
		pos += n;
	}
	return 0;
}

/* Holes (SEEK_HOLE) are hashed as the zeros they read as, without reading
 * them: a sparse disk image is mostly holes, and reading one makes the
 * kernel clear and copy every page of it. */
static int fd_range_tapped(int fd, uint64_t off, uint64_t len,
			   azl_sha256_tap_fn tap, void *ctx, char hex[65])
{
	static const unsigned char zeros[1 << 16];
	unsigned char buf[1 << 16];
	struct sink s = { NULL, tap, ctx, off };
	uint64_t pos = off, end = off + len, d, hole;
	struct stat st;
	int r = 0;

	/* Past the end, SEEK_DATA would make the missing bytes zeros. */
	if (fstat(fd, &st) < 0)
		return -errno;
	if (end < off || end > (uint64_t)st.st_size)
		return -EIO;
	s.h = azl_sha256_new();
	while (r == 0 && pos < end) {
		azl_next_data(fd, pos, end, &d, &hole);
		for (uint64_t z = pos; z < d; z += sizeof(zeros))
			sink_add(&s, z, zeros, d - z < sizeof(zeros)
				 ? (size_t)(d - z) : sizeof(zeros));
		r = hash_range(fd, &s, d, hole, buf, sizeof(buf));
		pos = hole;
	}
	azl_sha256_final(s.h, hex);
	return r;
}

int azl_sha256_fd_range(int fd, uint64_t off, uint64_t len, char hex[65])
{
	return fd_range_tapped(fd, off, len, NULL, NULL, hex);
}

static int file_from(const char *path, uint64_t off, azl_sha256_tap_fn tap,
		     void *ctx, char hex[65], uint64_t *size, struct azl_err *err)
{
	struct stat st;
	int r, fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return azl_errf(err, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		r = azl_errf(err, -errno, "%s: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	if (off > (uint64_t)st.st_size) {
		close(fd);
		return azl_errf(err, -EINVAL, "%s: offset %llu beyond its %llu bytes",
				path, (unsigned long long)off,
				(unsigned long long)st.st_size);
	}
	r = fd_range_tapped(fd, off, (uint64_t)st.st_size - off, tap, ctx, hex);
	close(fd);
	if (r < 0)
		return azl_errf(err, r, "%s: read: %s", path, strerror(-r));
	if (size)
		*size = (uint64_t)st.st_size;
	return 0;
}

int azl_sha256_file_from(const char *path, uint64_t off, char hex[65],
			 uint64_t *size, struct azl_err *err)
{
	return file_from(path, off, NULL, NULL, hex, size, err);
}

int azl_sha256_file(const char *path, char hex[65], uint64_t *size,
		    struct azl_err *err)
{
	return file_from(path, 0, NULL, NULL, hex, size, err);
}

int azl_sha256_file_tapped(const char *path, azl_sha256_tap_fn tap, void *ctx,
			   char hex[65], uint64_t *size, struct azl_err *err)
{
	return file_from(path, 0, tap, ctx, hex, size, err);
}
