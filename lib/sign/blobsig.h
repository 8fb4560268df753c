/* Signatures over a whole file, in the form `cosign sign-blob` writes:
 * base64 of the DER signature over the file's bytes.
 *   ECDSA P-256: DER ECDSA-Sig-Value over SHA-256
 *   Ed25519:     the raw 64-byte signature (pure Ed25519 over the bytes)
 *   RSA:         PKCS#1 v1.5 with SHA-256
 * so stock `openssl dgst -sha256 -verify` / `openssl pkeyutl -verify
 * -rawin` check it (docs/signing.md). */
#ifndef AZL_SIGN_BLOBSIG_H
#define AZL_SIGN_BLOBSIG_H

#include <stddef.h>

#include <openssl/evp.h>

#include "base/err.h"

/* Sign data; *b64 is the base64 text without a newline, caller frees. */
int azl_blob_sign(EVP_PKEY *key, const void *data, size_t len, char **b64,
		  struct azl_err *err);

/* 0 if b64 (whitespace allowed) is a valid signature of data by key;
 * -EBADMSG (AZL_ERR_WORK) if it is not, naming `what`. */
int azl_blob_verify(EVP_PKEY *key, const void *data, size_t len,
		    const char *b64, const char *what, struct azl_err *err);

/* Sign the file at path and write path + ".sig" atomically (mode 0644). */
int azl_blob_sign_file(EVP_PKEY *key, const char *path, struct azl_err *err);

/* Verify path against path + ".sig". */
int azl_blob_verify_file(EVP_PKEY *key, const char *path, struct azl_err *err);

#endif

/* Sign dir/SHA256SUMS into dir/SHA256SUMS.sig with the PEM private key at
 * key_path (passphrase may be NULL).  With cert_path, the certificate's
 * public key must be the key's, and it is copied to dir/SHA256SUMS.pem.
 * *key_type (may be NULL) gets azl_key_type_name of the key. */
int azl_sign_dir(const char *dir, const char *key_path, const char *cert_path,
		 const char *passphrase, const char **key_type, struct azl_err *err);
