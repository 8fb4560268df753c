/* Key loading: each supported type detected, weak/unsupported keys refused,
 * encrypted keys with and without their passphrase, public keys from a PEM
 * key or a certificate, the mode check and the passphrase file. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "base/buf.h"
#include "base/fs.h"
#include "sign/keys.h"
#include "t.h"

static char dir[] = "/tmp/azl-keys-XXXXXX";

/* Generate with the openssl tool (the way users make keys); returns path. */
static char *gen(const char *name, const char *args)
{
	char *path = azl_path_join(dir, name);
	char *cmd = azl_xasprintf("openssl genpkey %s -out %s 2>/dev/null && "
				  "openssl pkey -in %s -pubout -out %s.pub %s 2>/dev/null",
				  args, path, path, path,
				  strstr(args, "-pass") ? "-passin pass:pw" : "");
	CHECK(system(cmd) == 0);
	free(cmd);
	return path;
}

static void check_type(const char *path, enum azl_key_type want, const char *name)
{
	struct azl_err err = { 0 };
	EVP_PKEY *k = NULL, *pub = NULL;
	enum azl_key_type t = AZL_KEY_UNKNOWN, tp = AZL_KEY_UNKNOWN;
	char *pub_path = azl_xasprintf("%s.pub", path);

	CHECK(azl_key_load_private(path, NULL, &k, &t, &err) == 0);
	CHECK(t == want);
	CHECK_STR(azl_key_type_name(t), name);
	CHECK(azl_key_load_public(pub_path, &pub, &tp, &err) == 0);
	CHECK(tp == want);
	CHECK(k && pub && azl_key_same_public(k, pub));
	EVP_PKEY_free(k);
	EVP_PKEY_free(pub);
	free(pub_path);
}

int main(void)
{
	struct azl_err err = { 0 };
	EVP_PKEY *k = NULL;
	enum azl_key_type t;
	char *p;

	CHECK(mkdtemp(dir) != NULL);
	char *ec = gen("ec.pem", "-algorithm EC -pkeyopt ec_paramgen_curve:P-256");
	char *ed = gen("ed.pem", "-algorithm ED25519");
	char *rsa = gen("rsa.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048");
	char *rsa1k = gen("rsa1k.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:1024");
	char *p384 = gen("p384.pem", "-algorithm EC -pkeyopt ec_paramgen_curve:P-384");
	char *enc = gen("enc.pem", "-algorithm ED25519 -aes-256-cbc -pass pass:pw");

	check_type(ec, AZL_KEY_ECDSA_P256, "ecdsa-p256");
	check_type(ed, AZL_KEY_ED25519, "ed25519");
	check_type(rsa, AZL_KEY_RSA, "rsa");

	/* Too weak / unsupported: bad input naming the file. */
	CHECK(azl_key_load_private(rsa1k, NULL, &k, &t, &err) < 0);
	CHECK(k == NULL && err.kind == AZL_ERR_INPUT);
	CHECK_CONTAINS(err.msg, "1024 bits");
	CHECK_CONTAINS(err.msg, "rsa1k.pem");
	azl_err_clear(&err);
	CHECK(azl_key_load_private(p384, NULL, &k, &t, &err) < 0);
	CHECK_CONTAINS(err.msg, "only P-256");

	/* Encrypted: no passphrase, wrong one, right one. */
	azl_err_clear(&err);
	CHECK(azl_key_load_private(enc, NULL, &k, &t, &err) < 0);
	CHECK_CONTAINS(err.msg, "AZL_SIGN_PASSPHRASE");
	azl_err_clear(&err);
	CHECK(azl_key_load_private(enc, "nope", &k, &t, &err) < 0);
	CHECK_CONTAINS(err.msg, "wrong passphrase");
	azl_err_clear(&err);
	CHECK(azl_key_load_private(enc, "pw", &k, &t, &err) == 0);
	CHECK(t == AZL_KEY_ED25519);
	EVP_PKEY_free(k);

	/* A private key is not a public key file; a missing file is named. */
	CHECK(azl_key_load_public(ec, &k, &t, &err) < 0);
	azl_err_clear(&err);
	CHECK(azl_key_load_private("/nonexistent/k.pem", NULL, &k, &t, &err) < 0);
	CHECK_CONTAINS(err.msg, "/nonexistent/k.pem");

	/* Public key from a self-signed certificate. */
	char *crt = azl_path_join(dir, "ec.crt");
	char *cmd = azl_xasprintf("openssl req -new -x509 -key %s -subj /CN=t -days 1 -out %s 2>/dev/null", ec, crt);
	CHECK(system(cmd) == 0);
	CHECK(azl_key_load_public(crt, &k, &t, &err) == 0);
	CHECK(t == AZL_KEY_ECDSA_P256);
	EVP_PKEY_free(k);

	/* Mode check. */
	CHECK(chmod(ec, 0600) == 0);
	CHECK(azl_key_mode_too_open(ec) == 0);
	CHECK(chmod(ec, 0640) == 0);
	CHECK(azl_key_mode_too_open(ec) == 1);
	CHECK(chmod(ec, 0604) == 0);
	CHECK(azl_key_mode_too_open(ec) == 1);
	CHECK(azl_key_mode_too_open("/nonexistent") < 0);

	/* Passphrase file: first line, newline dropped. */
	char *pf = azl_path_join(dir, "pass");
	CHECK(azl_write_file_atomic(pf, "pw\nignored\n", 11, 0600, &err) == 0);
	CHECK(azl_passphrase_read_file(pf, &p, &err) == 0);
	CHECK_STR(p, "pw");
	azl_passphrase_free(p);

	free(cmd);
	cmd = azl_xasprintf("rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	free(cmd);
	free(crt);
	free(pf);
	free(ec), free(ed), free(rsa), free(rsa1k), free(p384), free(enc);
	return t_done();
}
