/* OpenPGP verification of RPM packages against a repository's gpgkey,
 * through librpm's keyring and verifier (the code rpm -K and dnf use).
 * A package is accepted when rpm would accept it.  When the signed header
 * carries a SHA256 payload digest, rpm checks the header (signature and
 * digest) and the payload is compared with that digest here, with
 * OpenSSL (twice as fast as rpm's libgcrypt); the legacy MD5 and header
 * SHA1 digests protect nothing more and are skipped.  Older packages get
 * every check from rpm. */
#ifndef AZL_SIGN_RPMSIG_H
#define AZL_SIGN_RPMSIG_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct azl_sha256;

struct azl_keyring;

/* Load one or more ASCII-armoured public key files (a file may hold several
 * keys).  *out freed with azl_keyring_free. */
int azl_keyring_load(const char *const *key_paths, size_t n,
		     struct azl_keyring **out, struct azl_err *err);
void azl_keyring_free(struct azl_keyring *k);

/* The SHA-256 of a package's payload, worked out while its bytes stream
 * past (a fetch tap), so that the signature check need not read the file
 * a second time.  It finds where the payload starts from the sizes in the
 * signature and main headers' intros; rpm's own reading of the file must
 * agree on that offset before the digest is used.  Zero-initialise; free
 * with azl_rpm_payload_release. */
struct azl_rpm_payload {
	uint64_t next;            /* offset of the next byte expected */
	uint64_t field;           /* offset of the header intro field wanted */
	uint64_t payload_off;     /* where the payload starts, once known */
	unsigned char intro[8];   /* a header intro's index and data sizes */
	unsigned have;
	int stage;                /* 0 signature header, 1 main header,
				   * 2 payload, -1 unusable */
	struct azl_sha256 *h;
};

/* Tap for azl_fetch_item: ctx is a struct azl_rpm_payload.  It returns
 * the payload digest, for data[*from..len) to be added to it, or NULL. */
struct azl_sha256 *azl_rpm_payload_tap(void *ctx, uint64_t off, const void *data,
				       size_t len, size_t *from);
/* The same, adding those bytes itself. */
void azl_rpm_payload_feed(struct azl_rpm_payload *d, uint64_t off,
			  const void *data, size_t len);
void azl_rpm_payload_release(struct azl_rpm_payload *d);

/* 0 when rpm_path carries a valid signature from a key in k and its
 * digests match; otherwise an error naming label (the NEVRA), the file and
 * what failed: unsigned, signed by an unknown key (with its key id), bad
 * signature, corrupted payload. */
int azl_rpmsig_verify(struct azl_keyring *k, const char *rpm_path,
		      const char *label, struct azl_err *err);
/* The same, using the payload digest pre gathered from every byte of
 * rpm_path as it was written (NULL: read the file).  pre is consumed. */
int azl_rpmsig_verify_streamed(struct azl_keyring *k, const char *rpm_path,
			       const char *label, struct azl_rpm_payload *pre,
			       struct azl_err *err);

#endif
