/* Authenticode (UEFI Secure Boot) signatures of PE images, in-process with
 * OpenSSL 3; what `sbsign --key K --cert C` does, without signingTime.
 *
 * The PE image hash (SHA-256) follows the PE/COFF specification's
 * Authenticode section exactly as EDK2's DxeImageVerificationLib computes
 * it: the headers up to SizeOfHeaders without the CheckSum field and the
 * Certificate Table directory entry, then every section with raw data in
 * PointerToRawData order, then the bytes from offset SizeOfHeaders + (sum
 * of the sections' SizeOfRawData) up to the attribute certificate table
 * (data after the last section, zero-padded to 8 bytes since the table
 * must start 8-byte aligned).
 *
 * The signature is a DER PKCS#7 SignedData whose content is an
 * SpcIndirectDataContent (1.3.6.1.4.1.311.2.1.4) holding SpcPeImageData
 * (the "<<<Obsolete>>>" file link sbsign and osslsigncode write) and the
 * image digest; the signer's certificate is included; the authenticated
 * attributes are contentType, messageDigest, an empty SpcSpOpusInfo and
 * SpcStatementType = individual code signing.  No signingTime: the output
 * depends on key, certificate and input only, so with an RSA key (PKCS#1
 * v1.5 is deterministic) a signed UKI is bit-identical across rebuilds.
 * ECDSA signatures are randomized: an image signed with a P-256 key
 * verifies but differs on every run.  Secure Boot firmware expects RSA-2048
 * certificates; use RSA for UKIs.  Ed25519 is refused (no PKCS#7 signer
 * form, no firmware support).
 *
 * It is appended as one WIN_CERTIFICATE (revision 0x0200, type
 * WIN_CERT_TYPE_PKCS_SIGNED_DATA) at the 8-byte aligned end of the image;
 * the Certificate Table directory entry points at it and the PE CheckSum
 * is recomputed (as sbsign does; neither UEFI nor the hash uses it).  An
 * existing signature table at the end of the input is replaced, not
 * added to. */
#ifndef AZL_SIGN_AUTHENTICODE_H
#define AZL_SIGN_AUTHENTICODE_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "base/err.h"
#include "sign/keys.h"

/* A private key with its X.509 certificate, loaded once for every PKCS#7
 * signature of a build (the UKI's and the verity root hash's). */
struct azl_pkcs7_signer {
	EVP_PKEY *key;
	X509 *cert;
	enum azl_key_type type;
};

/* Load KEY (PEM, passphrase may be NULL: see azl_key_load_private) and
 * CERT (PEM X.509) and check that the certificate holds the key's public
 * half.  RSA and ECDSA P-256 only.  Release s with azl_pkcs7_signer_release
 * (it owns key and cert). */
int azl_pkcs7_signer_load(const char *key_path, const char *cert_path,
			  const char *passphrase, struct azl_pkcs7_signer *s,
			  struct azl_err *err);
void azl_pkcs7_signer_release(struct azl_pkcs7_signer *s);

#define AZL_AUTHENTICODE_DIGEST_LEN 32

/* The Authenticode SHA-256 image hash of a PE file, signed or not (an
 * existing certificate table is excluded, as the verifier does). */
int azl_authenticode_digest(const char *pe_path,
			    unsigned char digest[AZL_AUTHENTICODE_DIGEST_LEN],
			    struct azl_err *err);

/* Sign pe_path and write the signed image to out_path atomically (mode
 * 0644; out_path may equal pe_path: signing in place).  The file is
 * streamed, never held in memory whole. */
int azl_authenticode_sign_file(const char *pe_path, const char *out_path,
			       const struct azl_pkcs7_signer *s,
			       struct azl_err *err);

#endif
