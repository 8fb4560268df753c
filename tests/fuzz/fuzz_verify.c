/* azl-compose verify's readers (lib/sign/verify.h): the OCI archive walk
 * (index.json -> manifest -> first layer -> var/lib/rpm/rpmdb.sqlite,
 * streamed out of the outer tar), the rpmdb query, and the SHA256SUMS
 * parser.  An input that is an sqlite file goes to the query directly, so
 * mutations reach the header decoding without passing three containers. */
#include "base/hash.h"
#include "fuzz.h"
#include "sign/verify.h"

static void verify_nevras(char **v, size_t n, int rc, const struct azl_err *err,
			  const char *what)
{
	azl_fuzz_check_err(rc, err, what);
	if (rc < 0 && (v || n))
		azl_fuzz_fail(what, "a list returned with an error");
	for (size_t i = 0; i < n; i++)
		if (!v[i] || !*v[i])
			azl_fuzz_fail(what, "an empty NEVRA");
	azl_verify_nevras_free(v, n);
}

static void verify_sums(const uint8_t *data, size_t size)
{
	char *text = azl_fuzz_text(data, size);
	struct azl_err err = { 0 };
	struct azl_verify_sum *e = NULL;
	size_t n = 0;
	int rc = azl_verify_parse_sums(text, &e, &n, &err);

	azl_fuzz_check_err(rc, &err, "verify: azl_verify_parse_sums");
	if (rc < 0 && (e || n))
		azl_fuzz_fail("verify: azl_verify_parse_sums", "entries returned with an error");
	for (size_t i = 0; i < n; i++)
		if (!azl_is_sha256_hex(e[i].sha256) || !*e[i].name || strchr(e[i].name, '/'))
			azl_fuzz_fail("SHA256SUMS entry accepted", e[i].name);
	free(e);
	free(text);
}

int azl_fuzz_verify(const uint8_t *data, size_t size)
{
	struct azl_err err = { 0 };
	char **v = NULL;
	size_t n = 0;
	int rc;

	if (size >= 16 && !memcmp(data, "SQLite format 3", 16)) {
		rc = azl_verify_rpmdb_nevras(azl_fuzz_file("rpmdb.sqlite", data, size), &v, &n,
					     &err);
		verify_nevras(v, n, rc, &err, "verify: azl_verify_rpmdb_nevras");
		return 0;
	}
	rc = azl_verify_oci_nevras(azl_fuzz_file("img.oci.tar", data, size), &v, &n, &err);
	verify_nevras(v, n, rc, &err, "verify: azl_verify_oci_nevras");
	verify_sums(data, size);
	return 0;
}

AZL_FUZZ_ENTRY(azl_fuzz_verify)
