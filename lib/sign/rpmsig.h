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

#include "base/err.h"

struct azl_keyring;

/* Load one or more ASCII-armoured public key files (a file may hold several
 * keys).  *out freed with azl_keyring_free. */
int azl_keyring_load(const char *const *key_paths, size_t n,
		     struct azl_keyring **out, struct azl_err *err);
void azl_keyring_free(struct azl_keyring *k);

/* 0 when rpm_path carries a valid signature from a key in k and its
 * digests match; otherwise an error naming label (the NEVRA), the file and
 * what failed: unsigned, signed by an unknown key (with its key id), bad
 * signature, corrupted payload. */
int azl_rpmsig_verify(struct azl_keyring *k, const char *rpm_path,
		      const char *label, struct azl_err *err);

#endif
