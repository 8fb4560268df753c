/* PEM keys through OpenSSL 3's EVP layer. */
#include "sign/keys.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "base/buf.h"
#include "base/fs.h"

const char *azl_key_type_name(enum azl_key_type t)
{
	switch (t) {
	case AZL_KEY_ECDSA_P256: return "ecdsa-p256";
	case AZL_KEY_ED25519: return "ed25519";
	case AZL_KEY_RSA: return "rsa";
	default: return "unknown";
	}
}

/* OpenSSL's most recent error as text, clearing its queue. */
static const char *ssl_reason(char *buf, size_t n)
{
	unsigned long e = ERR_peek_last_error();
	if (!e)
		snprintf(buf, n, "not a PEM key");
	else
		ERR_error_string_n(e, buf, n);
	ERR_clear_error();
	return buf;
}

int azl_key_check(EVP_PKEY *key, const char *what, enum azl_key_type *type,
		  struct azl_err *err)
{
	char group[64] = "";

	*type = AZL_KEY_UNKNOWN;
	if (EVP_PKEY_is_a(key, "ED25519")) {
		*type = AZL_KEY_ED25519;
	} else if (EVP_PKEY_is_a(key, "RSA")) {
		if (EVP_PKEY_get_bits(key) < 2048)
			return azl_err_input(err, "%s: RSA key of %d bits; at least 2048 are required",
					     what, EVP_PKEY_get_bits(key));
		*type = AZL_KEY_RSA;
	} else if (EVP_PKEY_is_a(key, "EC")) {
		EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
					       group, sizeof(group), NULL);
		if (strcmp(group, "prime256v1") && strcmp(group, "P-256"))
			return azl_err_input(err, "%s: EC key on curve '%s'; only P-256 is supported",
					     what, group[0] ? group : "?");
		*type = AZL_KEY_ECDSA_P256;
	} else {
		return azl_err_input(err, "%s: unsupported key type '%s' (ECDSA P-256, Ed25519 or RSA)",
				     what, EVP_PKEY_get0_type_name(key));
	}
	return 0;
}

struct pass_ctx {
	const char *pass;
	int asked;
};

/* OpenSSL asks only for encrypted keys: remember that it did, so a missing
 * passphrase gets its own message. */
static int pass_cb(char *buf, int size, int rwflag, void *u)
{
	struct pass_ctx *c = u;
	size_t n;
	(void)rwflag;
	c->asked = 1;
	if (!c->pass)
		return -1;
	n = strlen(c->pass);
	if (n > (size_t)size)
		return -1;
	memcpy(buf, c->pass, n);
	return (int)n;
}

int azl_key_load_private(const char *path, const char *passphrase,
			 EVP_PKEY **out, enum azl_key_type *type,
			 struct azl_err *err)
{
	struct pass_ctx pc = { passphrase, 0 };
	char why[256];
	BIO *bio = BIO_new_file(path, "r");
	EVP_PKEY *key = NULL;
	int r = 0;

	*out = NULL;
	if (!bio) {
		r = azl_err_input(err, "%s: cannot open the key: %s", path, strerror(errno));
		ERR_clear_error();
		goto out;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, pass_cb, &pc);
	if (!key && pc.asked && !passphrase) {
		ERR_clear_error();
		r = azl_err_input(err, "%s: the key is encrypted; give its passphrase in AZL_SIGN_PASSPHRASE or with --passphrase-file", path);
		goto out;
	}
	if (!key) {
		r = azl_err_input(err, "%s: cannot read a PEM private key%s: %s", path,
				  pc.asked ? " (wrong passphrase?)" : "", ssl_reason(why, sizeof(why)));
		goto out;
	}
	if ((r = azl_key_check(key, path, type, err)) < 0)
		goto out;
	*out = key;
	key = NULL;
out:
	EVP_PKEY_free(key);
	BIO_free(bio);
	return r;
}

/* A certificate's public key, or NULL (OpenSSL's error queue cleared). */
static EVP_PKEY *key_from_cert(const char *path)
{
	BIO *bio = BIO_new_file(path, "r");
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	EVP_PKEY *key = x ? X509_get_pubkey(x) : NULL;
	X509_free(x);
	BIO_free(bio);
	ERR_clear_error();
	return key;
}

int azl_key_load_public(const char *path, EVP_PKEY **out,
			enum azl_key_type *type, struct azl_err *err)
{
	char why[256];
	BIO *bio = BIO_new_file(path, "r");
	EVP_PKEY *key = NULL;
	int r = 0;

	*out = NULL;
	if (!bio) {
		r = azl_err_input(err, "%s: cannot open the key: %s", path, strerror(errno));
		ERR_clear_error();
		goto out;
	}
	key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (!key) {
		ssl_reason(why, sizeof(why));
		key = key_from_cert(path);
	}
	if (!key) {
		r = azl_err_input(err, "%s: neither a PEM public key nor a certificate: %s", path, why);
		goto out;
	}
	if ((r = azl_key_check(key, path, type, err)) < 0)
		goto out;
	*out = key;
	key = NULL;
out:
	EVP_PKEY_free(key);
	BIO_free(bio);
	return r;
}

int azl_key_mode_too_open(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	return (st.st_mode & (S_IRWXG | S_IRWXO)) ? 1 : 0;
}

int azl_passphrase_read_file(const char *path, char **out, struct azl_err *err)
{
	char *data = NULL;
	size_t len = 0;
	int r = azl_read_file(path, 4096, &data, &len, err);

	*out = NULL;
	if (r < 0)
		return azl_err_prefix(err, "passphrase file");
	len = strcspn(data, "\r\n");
	data[len] = '\0';
	*out = data;
	return 0;
}

void azl_passphrase_free(char *p)
{
	if (p) {
		OPENSSL_cleanse(p, strlen(p));
		free(p);
	}
}

int azl_key_same_public(EVP_PKEY *a, EVP_PKEY *b)
{
	return EVP_PKEY_eq(a, b) == 1;
}
