/* Signing keys: PEM loading with passphrase handling, type detection and
 * the permission check on private key files.  OpenSSL 3 EVP only.
 *
 * Supported: ECDSA P-256, Ed25519, RSA >= 2048 bits.  A passphrase never
 * comes from the command line: cmd/ reads AZL_SIGN_PASSPHRASE or a file
 * (azl_passphrase_read_file) and passes it here.  Keys are read straight
 * from the file by OpenSSL's BIO: no copy of the key reaches the disk. */
#ifndef AZL_SIGN_KEYS_H
#define AZL_SIGN_KEYS_H

#include <openssl/evp.h>

#include "base/err.h"

enum azl_key_type {
	AZL_KEY_UNKNOWN = 0,
	AZL_KEY_ECDSA_P256,
	AZL_KEY_ED25519,
	AZL_KEY_RSA,
};

/* "ecdsa-p256", "ed25519", "rsa" or "unknown". */
const char *azl_key_type_name(enum azl_key_type t);

/* Detect and check the type (P-256 curve only, RSA at least 2048 bits).
 * Returns 0 and sets *type, or AZL_ERR_INPUT naming `what` (a path). */
int azl_key_check(EVP_PKEY *key, const char *what, enum azl_key_type *type,
		  struct azl_err *err);

/* Load a PEM private key.  passphrase may be NULL; an encrypted key then
 * fails with a message saying where a passphrase comes from.
 * *out owned by the caller (EVP_PKEY_free). */
int azl_key_load_private(const char *path, const char *passphrase,
			 EVP_PKEY **out, enum azl_key_type *type,
			 struct azl_err *err);

/* Load a PEM public key, or the public key of a PEM X.509 certificate.
 * *out owned by the caller (EVP_PKEY_free). */
int azl_key_load_public(const char *path, EVP_PKEY **out,
			enum azl_key_type *type, struct azl_err *err);

/* 1 if the file is readable by group or others (a warning for private
 * keys), 0 if not, negative errno if it cannot be stat'ed. */
int azl_key_mode_too_open(const char *path);

/* Read a passphrase file (first line, without the newline).  *out owned by
 * the caller: release with azl_passphrase_free, which wipes it. */
int azl_passphrase_read_file(const char *path, char **out, struct azl_err *err);
void azl_passphrase_free(char *p);

/* 1 if the two keys hold the same public key. */
int azl_key_same_public(EVP_PKEY *a, EVP_PKEY *b);

#endif
