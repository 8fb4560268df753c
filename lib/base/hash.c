#include "base/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fs.h"

struct azl_sha256 {
	EVP_MD_CTX *ctx;
};

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
	struct azl_sha256 *h = malloc(sizeof(*h));
	if (!h || !(h->ctx = EVP_MD_CTX_new()) ||
	    !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL)) {
		fputs("azl-compose: cannot initialise SHA-256\n", stderr);
		abort();
	}
	return h;
}

void azl_sha256_update(struct azl_sha256 *h, const void *data, size_t len)
{
	EVP_DigestUpdate(h->ctx, data, len);
}

void azl_sha256_final(struct azl_sha256 *h, char hex[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	EVP_DigestFinal_ex(h->ctx, md, &n);
	azl_hex(md, 32, hex);
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

void azl_sha256_hex(const void *data, size_t len, char hex[65])
{
	struct azl_sha256 *h = azl_sha256_new();
	azl_sha256_update(h, data, len);
	azl_sha256_final(h, hex);
}

/* Bytes [pos, end) of fd into h. */
static int hash_range(int fd, struct azl_sha256 *h, uint64_t pos, uint64_t end,
		      unsigned char *buf, size_t cap)
{
	while (pos < end) {
		size_t n = end - pos < cap ? (size_t)(end - pos) : cap;
		int r = azl_pread_all(fd, buf, n, pos);
		if (r < 0)
			return r;
		azl_sha256_update(h, buf, n);
		pos += n;
	}
	return 0;
}

/* Holes (SEEK_HOLE) are hashed as the zeros they read as, without reading
 * them: a sparse disk image is mostly holes, and reading one makes the
 * kernel clear and copy every page of it. */
int azl_sha256_fd_range(int fd, uint64_t off, uint64_t len, char hex[65])
{
	static const unsigned char zeros[1 << 16];
	unsigned char buf[1 << 16];
	struct azl_sha256 *h;
	uint64_t pos = off, end = off + len, d, hole;
	struct stat st;
	int r = 0;

	/* Past the end, SEEK_DATA would make the missing bytes zeros. */
	if (fstat(fd, &st) < 0)
		return -errno;
	if (end < off || end > (uint64_t)st.st_size)
		return -EIO;
	h = azl_sha256_new();
	while (r == 0 && pos < end) {
		azl_next_data(fd, pos, end, &d, &hole);
		for (uint64_t z = pos; z < d; z += sizeof(zeros))
			azl_sha256_update(h, zeros, d - z < sizeof(zeros)
					  ? (size_t)(d - z) : sizeof(zeros));
		r = hash_range(fd, h, d, hole, buf, sizeof(buf));
		pos = hole;
	}
	azl_sha256_final(h, hex);
	return r;
}

int azl_sha256_file_from(const char *path, uint64_t off, char hex[65],
			 uint64_t *size, struct azl_err *err)
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
	r = azl_sha256_fd_range(fd, off, (uint64_t)st.st_size - off, hex);
	close(fd);
	if (r < 0)
		return azl_errf(err, r, "%s: read: %s", path, strerror(-r));
	if (size)
		*size = (uint64_t)st.st_size;
	return 0;
}

int azl_sha256_file(const char *path, char hex[65], uint64_t *size,
		    struct azl_err *err)
{
	return azl_sha256_file_from(path, 0, hex, size, err);
}
