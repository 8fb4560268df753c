/* Signed dm-verity root hashes, for the Flatcar-style /usr partition.
 *
 * The signature is what the kernel checks for dm-verity's
 * root_hash_sig_key_desc (verity_verify_root_hash → verify_pkcs7_signature
 * over the root hash *hex string* as given in the table) and what
 * systemd-veritysetup's --root-hash-signature and systemd-repart's
 * Verity=signature partitions carry: a DER PKCS#7 SignedData, detached
 * (the content is the lowercase hex string, no newline), SHA-256, no
 * authenticated attributes, the signer's certificate included (the kernel
 * trusts it only if the same certificate is in its keyring).  Byte for
 * byte what systemd-repart writes, and
 *   printf %s HEX | openssl smime -sign -noattr -binary \
 *     -inkey KEY -signer CERT -outform der
 * With no attributes there is no signingTime: an RSA signature is
 * bit-identical across rebuilds, an ECDSA one is not.
 *
 * The UAPI Discoverable Partitions Specification's Verity signature
 * partition holds a JSON object
 *   {"rootHash":"<hex>","certificateFingerprint":"<sha256 of the
 *    certificate's DER, lowercase hex>","signature":"<base64 of the DER
 *    PKCS#7>"}
 * serialized as text (no newline) and padded with NUL bytes to fill the
 * partition, whose size is a multiple of 4096 bytes (AZL_VERITY_SIG_ALIGN;
 * systemd-repart makes it 16 KiB).  Its GPT type
 * for /usr on x86-64 is AZL_GPT_USR_X86_64_VERITY_SIG; it pairs with the
 * /usr partition (AZL_GPT_USR_X86_64) and its hash partition
 * (AZL_GPT_USR_X86_64_VERITY). */
#ifndef AZL_SIGN_VERITYSIG_H
#define AZL_SIGN_VERITYSIG_H

#include "base/buf.h"
#include "base/err.h"
#include "sign/authenticode.h" /* struct azl_pkcs7_signer */

#define AZL_GPT_USR_X86_64 "8484680c-9521-48c6-9c11-b0720656f69e"
#define AZL_GPT_USR_X86_64_VERITY "77ff5f63-e7b6-4633-acf4-1565b864c0e6"
#define AZL_GPT_USR_X86_64_VERITY_SIG "e7bb33fb-06cf-4e81-8273-e543b413e2e2"
#define AZL_VERITY_SIG_ALIGN 4096

/* Sign roothash_hex (lowercase hex, even length) with s.  Appends the DER
 * PKCS#7 to pkcs7_der and the JSON document (no NUL padding, no newline)
 * to json; either may be NULL.  Both buffers are the caller's to release. */
int azl_verity_sig(const char *roothash_hex, const struct azl_pkcs7_signer *s,
		   struct azl_buf *pkcs7_der, struct azl_buf *json,
		   struct azl_err *err);

#endif
