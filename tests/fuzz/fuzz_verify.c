/* azl-compose verify's readers, which live in cmd/cmd_verify.c as static
 * functions (compiled into this harness): the OCI archive walk
 * (index.json -> manifest -> first layer -> var/lib/rpm/rpmdb.sqlite,
 * streamed out of the outer tar), the rpmdb query, and the SHA256SUMS
 * parser.  An input that is an sqlite file goes to the query directly, so
 * mutations reach the header decoding without passing three containers. */
#include "../../cmd/cmd_verify.c"
#include "fuzz.h"

/* main.c's helpers, which verify's option parsing references. */
int azl_cmd_usage_error(const struct azl_cmd *cmd, const char *fmt, ...)
{
	(void)cmd;
	(void)fmt;
	return 2;
}

int azl_cmd_wants_help(const struct azl_cmd *cmd, int argc, char **argv)
{
	(void)cmd;
	(void)argc;
	(void)argv;
	return 0;
}

static void verify_nevras(char **v, size_t n, int rc, const struct azl_err *err,
			  const char *what)
{
	azl_fuzz_check_err(rc, err, what);
	for (size_t i = 0; i < n; i++)
		if (!v[i] || !*v[i])
			azl_fuzz_fail(what, "an empty NEVRA");
	free_strv(v, n);
}

static void verify_sums(const uint8_t *data, size_t size)
{
	char *text = azl_fuzz_text(data, size);
	struct sums_entry *e = NULL;
	size_t n = 0;

	if (parse_sums(text, &e, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			if (!azl_is_sha256_hex(e[i].sha256) || strchr(e[i].name, '/'))
				azl_fuzz_fail("SHA256SUMS entry accepted", e[i].name);
		find_listed(e, n, ".oci.tar");
	}
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
		rc = query_rpmdb(azl_fuzz_file("rpmdb.sqlite", data, size), &v, &n, &err);
		verify_nevras(v, n, rc, &err, "verify: query_rpmdb");
		return 0;
	}
	rc = image_rpmdb_packages(azl_fuzz_file("img.oci.tar", data, size), &v, &n, &err);
	verify_nevras(v, n, rc, &err, "verify: image_rpmdb_packages");
	verify_sums(data, size);
	return 0;
}

AZL_FUZZ_ENTRY(azl_fuzz_verify)
