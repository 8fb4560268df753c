/* cosign-blob signatures with EVP_DigestSign/Verify. */
#include "sign/blobsig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "base/buf.h"
#include "base/fs.h"
#include "sign/keys.h"

/* Ed25519 signs the message itself (no pre-hash); the others SHA-256. */
static const EVP_MD *md_for(EVP_PKEY *key)
{
	return EVP_PKEY_is_a(key, "ED25519") ? NULL : EVP_sha256();
}

int azl_blob_sign(EVP_PKEY *key, const void *data, size_t len, char **b64,
		  struct azl_err *err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *sig = NULL;
	size_t siglen = 0;
	int r = 0;

	*b64 = NULL;
	if (!ctx || EVP_DigestSignInit_ex(ctx, NULL, md_for(key) ? "SHA256" : NULL,
					  NULL, NULL, key, NULL) != 1 ||
	    EVP_DigestSign(ctx, NULL, &siglen, data, len) != 1) {
		r = azl_errf(err, -EINVAL, "cannot start signing: %s",
			     ERR_reason_error_string(ERR_peek_last_error()));
		goto out;
	}
	sig = azl_xmalloc(siglen);
	if (EVP_DigestSign(ctx, sig, &siglen, data, len) != 1) {
		r = azl_errf(err, -EIO, "signing failed: %s",
			     ERR_reason_error_string(ERR_peek_last_error()));
		goto out;
	}
	*b64 = azl_xmalloc(4 * ((siglen + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)*b64, sig, (int)siglen);
out:
	ERR_clear_error();
	free(sig);
	EVP_MD_CTX_free(ctx);
	return r;
}

/* Base64 to bytes, ignoring whitespace; -1 on malformed text. */
static int b64_decode(const char *b64, unsigned char **out, size_t *outlen)
{
	struct azl_buf clean = AZL_BUF_INIT;
	int n, pad = 0;

	for (const char *p = b64; *p; p++)
		if (!strchr(" \t\r\n", *p))
			azl_buf_addc(&clean, *p);
	*out = NULL;
	if (clean.len == 0 || clean.len % 4) {
		azl_buf_release(&clean);
		return -1;
	}
	*out = azl_xmalloc(clean.len / 4 * 3 + 1);
	n = EVP_DecodeBlock(*out, (unsigned char *)clean.data, (int)clean.len);
	pad = (clean.data[clean.len - 1] == '=') + (clean.data[clean.len - 2] == '=');
	azl_buf_release(&clean);
	if (n < 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	*outlen = (size_t)n - (size_t)pad; /* EVP_DecodeBlock counts padding */
	return 0;
}

int azl_blob_verify(EVP_PKEY *key, const void *data, size_t len,
		    const char *b64, const char *what, struct azl_err *err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *sig = NULL;
	size_t siglen = 0;
	int r = 0;

	if (b64_decode(b64, &sig, &siglen) < 0) {
		r = azl_errf(err, -EBADMSG, "%s: the signature is not base64", what);
		goto out;
	}
	if (!ctx || EVP_DigestVerifyInit_ex(ctx, NULL, md_for(key) ? "SHA256" : NULL,
					    NULL, NULL, key, NULL) != 1) {
		r = azl_errf(err, -EINVAL, "%s: cannot start verifying", what);
		goto out;
	}
	if (EVP_DigestVerify(ctx, sig, siglen, data, len) != 1)
		r = azl_errf(err, -EBADMSG, "%s: the signature does not match the key and the file", what);
out:
	ERR_clear_error();
	free(sig);
	EVP_MD_CTX_free(ctx);
	return r;
}

int azl_blob_sign_file(EVP_PKEY *key, const char *path, struct azl_err *err)
{
	char *data = NULL, *b64 = NULL, *sig_path = azl_xasprintf("%s.sig", path);
	size_t len = 0;
	int r = azl_read_file(path, 0, &data, &len, err);

	if (r == 0)
		r = azl_blob_sign(key, data, len, &b64, err);
	if (r == 0)
		r = azl_write_file_atomic(sig_path, b64, strlen(b64), 0644, err);
	if (r < 0)
		azl_err_prefix(err, "%s", path);
	free(data);
	free(b64);
	free(sig_path);
	return r;
}

int azl_blob_verify_file(EVP_PKEY *key, const char *path, struct azl_err *err)
{
	char *data = NULL, *b64 = NULL, *sig_path = azl_xasprintf("%s.sig", path);
	size_t len = 0, blen = 0;
	int r = azl_read_file(path, 0, &data, &len, err);

	if (r == 0)
		r = azl_read_file(sig_path, 1 << 20, &b64, &blen, err);
	if (r == 0)
		r = azl_blob_verify(key, data, len, b64, sig_path, err);
	free(data);
	free(b64);
	free(sig_path);
	return r;
}

/* The certificate must hold the signing key; copied beside the signature
 * as cosign's --output-certificate does. */
static int copy_cert(EVP_PKEY *key, const char *cert_path, const char *dir,
		     struct azl_err *err)
{
	EVP_PKEY *pub = NULL;
	enum azl_key_type t;
	char *data = NULL, *dst = azl_path_join(dir, "SHA256SUMS.pem");
	size_t len = 0;
	int r = azl_key_load_public(cert_path, &pub, &t, err);

	if (r == 0 && !azl_key_same_public(key, pub))
		r = azl_err_input(err, "%s: the certificate is not for the signing key", cert_path);
	if (r == 0)
		r = azl_read_file(cert_path, 1 << 20, &data, &len, err);
	if (r == 0)
		r = azl_write_file_atomic(dst, data, len, 0644, err);
	EVP_PKEY_free(pub);
	free(data);
	free(dst);
	return r;
}

int azl_sign_dir(const char *dir, const char *key_path, const char *cert_path,
		 const char *passphrase, const char **key_type, struct azl_err *err)
{
	EVP_PKEY *key = NULL;
	enum azl_key_type t;
	char *sums = azl_path_join(dir, "SHA256SUMS");
	int r = azl_key_load_private(key_path, passphrase, &key, &t, err);

	if (r == 0 && key_type)
		*key_type = azl_key_type_name(t);
	if (r == 0 && cert_path)
		r = copy_cert(key, cert_path, dir, err);
	if (r == 0)
		r = azl_blob_sign_file(key, sums, err);
	EVP_PKEY_free(key);
	free(sums);
	return r;
}
