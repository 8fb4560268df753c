/* cosign-blob signatures: sign/verify round trip per key type, openssl's
 * own CLI accepts what we write, any changed byte (data or signature) and
 * another key are refused. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "sign/blobsig.h"
#include "sign/keys.h"
#include "t.h"

static char dir[] = "/tmp/azl-blobsig-XXXXXX";

/* Runs and frees cmd; 1 if it exited 0. */
static int run(char *cmd)
{
	int rc = system(cmd);
	free(cmd);
	return rc == 0;
}

static void one_type(const char *name, const char *genargs, int ed)
{
	struct azl_err err = { 0 };
	EVP_PKEY *k = NULL, *pub = NULL;
	enum azl_key_type t;
	char *key = azl_xasprintf("%s/%s.pem", dir, name), *pubp = azl_xasprintf("%s.pub", key);
	char *sums = azl_xasprintf("%s/%s/SHA256SUMS", dir, name);
	char *cmd = azl_xasprintf("mkdir -p %s/%s && printf 'abc  file\\n' >%s && "
				  "openssl genpkey %s -out %s 2>/dev/null && openssl pkey -in %s -pubout -out %s",
				  dir, name, sums, genargs, key, key, pubp);
	char *b64 = NULL;

	CHECK(system(cmd) == 0);
	CHECK(azl_key_load_private(key, NULL, &k, &t, &err) == 0);
	CHECK(azl_key_load_public(pubp, &pub, &t, &err) == 0);
	CHECK(azl_blob_sign_file(k, sums, &err) == 0);
	CHECK(azl_blob_verify_file(pub, sums, &err) == 0);

	/* The stock openssl commands of docs/signing.md. */
	if (ed)
		CHECK(run(azl_xasprintf("bash -c 'openssl pkeyutl -verify -pubin -inkey %s -rawin "
					"-in %s -sigfile <(base64 -d %s.sig) >/dev/null'", pubp, sums, sums)));
	else
		CHECK(run(azl_xasprintf("bash -c 'openssl dgst -sha256 -verify %s -signature "
					"<(base64 -d %s.sig) %s >/dev/null'", pubp, sums, sums)));

	/* Changed data, changed signature, another message. */
	CHECK(azl_blob_sign(k, "abc", 3, &b64, &err) == 0);
	CHECK(azl_blob_verify(pub, "abc", 3, b64, "mem", &err) == 0);
	CHECK(azl_blob_verify(pub, "abd", 3, b64, "mem", &err) == -EBADMSG);
	CHECK_CONTAINS(err.msg, "mem");
	b64[5] = b64[5] == 'A' ? 'B' : 'A';
	CHECK(azl_blob_verify(pub, "abc", 3, b64, "mem", &err) < 0);
	CHECK(azl_blob_verify(pub, "abc", 3, "!!notbase64", "mem", &err) < 0);
	CHECK(azl_blob_verify(pub, "abc", 3, "", "mem", &err) < 0);
	free(b64);

	/* Deterministic for Ed25519 and RSA PKCS#1 v1.5; ECDSA is not, but
	 * each still verifies. */
	char *s1 = NULL, *s2 = NULL;
	CHECK(azl_blob_sign(k, "x", 1, &s1, &err) == 0 && azl_blob_sign(k, "x", 1, &s2, &err) == 0);
	if (strcmp(name, "ec"))
		CHECK_STR(s1, s2);
	CHECK(azl_blob_verify(pub, "x", 1, s2, "mem", &err) == 0);
	free(s1);
	free(s2);
	EVP_PKEY_free(k);
	EVP_PKEY_free(pub);
	free(key), free(pubp), free(sums), free(cmd);
}

int main(void)
{
	struct azl_err err = { 0 };
	EVP_PKEY *a = NULL, *b = NULL;
	enum azl_key_type t;

	CHECK(mkdtemp(dir) != NULL);
	one_type("ec", "-algorithm EC -pkeyopt ec_paramgen_curve:P-256", 0);
	one_type("ed", "-algorithm ED25519", 1);
	one_type("rsa", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048", 0);

	/* A signature by one key does not verify with another. */
	char *ed_sums = azl_xasprintf("%s/ed/SHA256SUMS", dir);
	char *ec_pub = azl_xasprintf("%s/ec.pem.pub", dir), *ed2 = azl_xasprintf("%s/ed2.pem", dir);
	char *cmd = azl_xasprintf("openssl genpkey -algorithm ED25519 -out %s", ed2);
	CHECK(system(cmd) == 0);
	CHECK(azl_key_load_private(ed2, NULL, &a, &t, &err) == 0);
	CHECK(azl_key_load_public(ec_pub, &b, &t, &err) == 0);
	CHECK(azl_blob_verify_file(b, ed_sums, &err) == -EBADMSG);
	CHECK_CONTAINS(err.msg, "SHA256SUMS.sig");
	CHECK(azl_blob_verify_file(b, "/nonexistent/SHA256SUMS", &err) < 0);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	free(cmd);
	cmd = azl_xasprintf("rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	free(cmd), free(ed_sums), free(ec_pub), free(ed2);
	return t_done();
}
