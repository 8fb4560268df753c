#include "base/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int azl_sha256_file(const char *path, char hex[65], uint64_t *size,
		    struct azl_err *err)
{
	unsigned char buf[1 << 16];
	struct azl_sha256 *h;
	uint64_t total = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return azl_errf(err, -errno, "%s: %s", path, strerror(errno));
	h = azl_sha256_new();
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			azl_sha256_final(h, hex);
			return azl_errf(err, -e, "%s: read: %s", path, strerror(e));
		}
		if (n == 0)
			break;
		azl_sha256_update(h, buf, (size_t)n);
		total += (uint64_t)n;
	}
	close(fd);
	azl_sha256_final(h, hex);
	if (size)
		*size = total;
	return 0;
}
