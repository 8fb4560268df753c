#include "reproducible/seed.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "base/hash.h"

void azl_seed_from_inputs(struct azl_seed *s, const char *manifest_sha256,
			  const char *lock_sha256)
{
	unsigned int n = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	static const char label[] = "azl-compose build seed v1";

	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	/* NUL separators keep ("ab","c") and ("a","bc") apart. */
	EVP_DigestUpdate(ctx, label, sizeof(label));
	EVP_DigestUpdate(ctx, manifest_sha256, strlen(manifest_sha256) + 1);
	EVP_DigestUpdate(ctx, lock_sha256, strlen(lock_sha256) + 1);
	EVP_DigestFinal_ex(ctx, s->bytes, &n);
	EVP_MD_CTX_free(ctx);
}

void azl_seed_from_string(struct azl_seed *s, const char *text)
{
	unsigned int n = 0;
	EVP_Digest(text, strlen(text), s->bytes, &n, EVP_sha256(), NULL);
}

void azl_seed_derive(const struct azl_seed *s, const char *purpose,
		     unsigned char *out, size_t n)
{
	unsigned char md[32];
	unsigned int len = 0;

	HMAC(EVP_sha256(), s->bytes, sizeof(s->bytes),
	     (const unsigned char *)purpose, strlen(purpose), md, &len);
	memcpy(out, md, n > sizeof(md) ? sizeof(md) : n);
}

void azl_seed_uuid(const struct azl_seed *s, const char *purpose,
		   unsigned char uuid[16])
{
	azl_seed_derive(s, purpose, uuid, 16);
	uuid[6] = (uuid[6] & 0x0f) | 0x40; /* version 4 */
	uuid[8] = (uuid[8] & 0x3f) | 0x80; /* RFC 4122 variant */
}

void azl_uuid_format(const unsigned char u[16], char out[37])
{
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
}

void azl_seed_hex(const struct azl_seed *s, char out[65])
{
	azl_hex(s->bytes, sizeof(s->bytes), out);
}
