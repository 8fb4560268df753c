/* One seed for every generated identifier (UUIDs, salts, hash seeds).
 *
 * The build seed is SHA-256 over a label, the manifest digest and the
 * lockfile digest, or the manifest's `seed` when it sets one.  Each purpose
 * derives its own bytes as HMAC-SHA256(seed, purpose), the way systemd-repart
 * derives partition UUIDs, so adding a purpose never shifts another. */
#ifndef AZL_REPRODUCIBLE_SEED_H
#define AZL_REPRODUCIBLE_SEED_H

#include <stddef.h>
#include <stdint.h>

struct azl_seed {
	unsigned char bytes[32];
};

/* Seed from the manifest and lockfile digests (hex strings). */
void azl_seed_from_inputs(struct azl_seed *s, const char *manifest_sha256,
			  const char *lock_sha256);
/* Seed from an explicit string (manifest `seed`): its SHA-256. */
void azl_seed_from_string(struct azl_seed *s, const char *text);
/* HMAC-SHA256(seed, purpose), truncated to n <= 32 bytes. */
void azl_seed_derive(const struct azl_seed *s, const char *purpose,
		     unsigned char *out, size_t n);
/* An RFC 4122 version-4-shaped UUID from the purpose's bytes: 16 bytes in
 * big-endian field order, version and variant bits set. */
void azl_seed_uuid(const struct azl_seed *s, const char *purpose,
		   unsigned char uuid[16]);
/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (37 bytes with NUL). */
void azl_uuid_format(const unsigned char uuid[16], char out[37]);
/* Lowercase hex of the seed (65 bytes with NUL). */
void azl_seed_hex(const struct azl_seed *s, char out[65]);

#endif
