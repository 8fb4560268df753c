/* dm-verity root hash signatures and the usr-verity-sig JSON document.
 * See veritysig.h. */
#include "sign/veritysig.h"

#include <errno.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "base/hash.h"

/* The kernel signs and checks the exact string: refuse anything that is
 * not already the canonical lowercase hex a verity table carries. */
static int roothash_check(const char *hex, struct azl_err *err)
{
	size_t n = hex ? strlen(hex) : 0;

	if (n == 0 || n % 2 || strspn(hex, "0123456789abcdef") != n)
		return azl_err_input(err, "verity root hash '%s': expected lowercase hex digits",
				     hex ? hex : "");
	return 0;
}

static int pkcs7_detached(const char *hex, const struct azl_pkcs7_signer *s,
			  struct azl_buf *der, struct azl_err *err)
{
	BIO *in = BIO_new_mem_buf(hex, (int)strlen(hex));
	PKCS7 *p7 = NULL;
	unsigned char *out = NULL;
	char why[256] = "out of memory";
	int n = -1;

	if (in)
		p7 = PKCS7_sign(s->cert, s->key, NULL, in,
				PKCS7_DETACHED | PKCS7_BINARY | PKCS7_NOATTR);
	if (p7)
		n = i2d_PKCS7(p7, &out);
	if (n > 0)
		azl_buf_add(der, out, (size_t)n);
	else if (ERR_peek_last_error())
		ERR_error_string_n(ERR_peek_last_error(), why, sizeof(why));
	ERR_clear_error();
	OPENSSL_free(out);
	PKCS7_free(p7);
	BIO_free(in);
	if (n <= 0)
		return azl_errf(err, -EINVAL, "verity root hash %s: PKCS#7 signing failed: %s", hex, why);
	return 0;
}

static int cert_fingerprint(X509 *cert, char hex[65], struct azl_err *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!X509_digest(cert, EVP_sha256(), md, &n) || n != 32) {
		ERR_clear_error();
		return azl_errf(err, -EINVAL, "verity signature: cannot hash the certificate");
	}
	azl_hex(md, 32, hex);
	return 0;
}

/* Keys in the order systemd-repart writes them; every value is hex or
 * base64, so nothing needs escaping. */
static void sig_json(const char *hex, const char *fpr, const struct azl_buf *der,
		     struct azl_buf *json)
{
	size_t b64len = 4 * ((der->len + 2) / 3);
	char *b64 = azl_xmalloc(b64len + 1);

	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)der->data, (int)der->len);
	azl_buf_addf(json, "{\"rootHash\":\"%s\",\"certificateFingerprint\":\"%s\",\"signature\":\"%s\"}",
		     hex, fpr, b64);
	free(b64);
}

int azl_verity_sig(const char *roothash_hex, const struct azl_pkcs7_signer *s,
		   struct azl_buf *pkcs7_der, struct azl_buf *json,
		   struct azl_err *err)
{
	struct azl_buf der = AZL_BUF_INIT;
	char fpr[65];
	int r;

	if ((r = roothash_check(roothash_hex, err)) < 0)
		return r;
	if (!s || !s->key || !s->cert)
		return azl_err_input(err, "verity root hash signing needs a key and a certificate");
	if ((r = pkcs7_detached(roothash_hex, s, &der, err)) < 0)
		goto out;
	if ((r = cert_fingerprint(s->cert, fpr, err)) < 0)
		goto out;
	if (json)
		sig_json(roothash_hex, fpr, &der, json);
	if (pkcs7_der)
		azl_buf_add(pkcs7_der, der.data, der.len);
out:
	azl_buf_release(&der);
	return r;
}
