/* sign/verify.h: the SHA256SUMS parser (text and binary forms, malformed
 * lines refused), azl_verify_dir on a small signed directory (a matching
 * file, a changed digest, a missing file, a missing or malformed
 * SHA256SUMS, a missing lockfile), the rpmdb readers' errors, and the
 * report release. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "sign/blobsig.h"
#include "sign/verify.h"
#include "t.h"

static char dir[] = "/tmp/azl-verify-test-XXXXXX";
static char *out_dir, *key_path, *pub_path;

static const char *HEX_A = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

static void test_parse_good(void)
{
	struct azl_err err = { 0 };
	struct azl_verify_sum *e = NULL;
	size_t n = 0;
	char *text = azl_xasprintf("%s  img.oci.tar\n\n%s *bin.vhd\n", HEX_A, HEX_A);

	CHECK(azl_verify_parse_sums(text, &e, &n, &err) == 0);
	CHECK(n == 2);
	if (n == 2) {
		CHECK_STR(e[0].sha256, HEX_A);
		CHECK_STR(e[0].name, "img.oci.tar");
		CHECK_STR(e[1].sha256, HEX_A);
		CHECK_STR(e[1].name, "bin.vhd");
	}
	free(e);
	free(text);
}

/* Each line alone must be refused, naming the entry, with nothing returned. */
static void test_parse_bad(void)
{
	const char *bad[] = {
		"ba7816bf  short\n",                                   /* short digest */
		"BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD  up\n",
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad x\n",
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  a/b\n",
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ag  a\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct azl_err err = { 0 };
		struct azl_verify_sum *e = (void *)1;
		size_t n = 7;
		char *text = azl_xasprintf("%s  ok\n%s", HEX_A, bad[i]);

		CHECK(azl_verify_parse_sums(text, &e, &n, &err) == -EBADMSG);
		CHECK(e == NULL);
		CHECK(n == 0);
		CHECK_CONTAINS(err.msg, "SHA256SUMS: entry 2 ");
		free(text);
	}
}

static void write_text(const char *name, const char *text)
{
	struct azl_err err = { 0 };
	char *path = azl_path_join(out_dir, name);

	CHECK(azl_write_file_atomic(path, text, strlen(text), 0644, &err) == 0);
	free(path);
}

/* Write SHA256SUMS and sign it with the test key. */
static void write_sums(const char *text)
{
	struct azl_err err = { 0 };

	write_text("SHA256SUMS", text);
	CHECK(azl_sign_dir(out_dir, key_path, NULL, NULL, NULL, &err) == 0);
}

/* rep has a check named what with this ok flag, whose detail holds part
 * (NULL: no detail, as a passing check has; "": any detail). */
static void expect(const struct azl_verify_report *rep, const char *what, bool ok,
		   const char *part)
{
	const struct azl_verify_check *c = NULL;

	for (size_t i = 0; i < rep->n && !c; i++)
		if (!strcmp(rep->v[i].what, what))
			c = &rep->v[i];
	CHECK(c != NULL);
	if (!c) {
		fprintf(stderr, "  no check \"%s\"\n", what);
		return;
	}
	CHECK(c->ok == ok);
	if (part)
		CHECK_CONTAINS(c->detail, part);
	else
		CHECK(c->detail == NULL);
}

static void test_dir_pass(void)
{
	struct azl_verify_opts o = { out_dir, pub_path, NULL };
	struct azl_verify_report rep = { 0 };
	struct azl_err err = { 0 };
	char *sums = azl_xasprintf("%s  a.txt\n", HEX_A);

	write_text("a.txt", "abc");
	write_sums(sums);
	CHECK(azl_verify_dir(&o, &rep, &err) == 0);
	CHECK(azl_verify_report_ok(&rep));
	CHECK(rep.n == 2);
	expect(&rep, "signature SHA256SUMS.sig", true, NULL);
	expect(&rep, "file a.txt", true, NULL);
	azl_verify_report_release(&rep);
	CHECK(rep.v == NULL && rep.n == 0);
	azl_verify_report_release(&rep); /* twice is fine */
	free(sums);
}

static void test_dir_wrong_and_missing(void)
{
	struct azl_verify_opts o = { out_dir, pub_path, NULL };
	struct azl_verify_report rep = { 0 };
	struct azl_err err = { 0 };
	char wrong[65], *sums, *says;

	azl_sha256_hex("abd", 3, wrong);
	sums = azl_xasprintf("%s  a.txt\n%s  gone.txt\n", wrong, HEX_A);
	says = azl_xasprintf("/a.txt: sha256 %s, SHA256SUMS says %s", HEX_A, wrong);
	write_sums(sums);
	CHECK(azl_verify_dir(&o, &rep, &err) == 0);
	CHECK(!azl_verify_report_ok(&rep));
	expect(&rep, "signature SHA256SUMS.sig", true, NULL);
	expect(&rep, "file a.txt", false, says);
	expect(&rep, "file gone.txt", false, "/gone.txt: ");
	azl_verify_report_release(&rep);
	free(says);
	free(sums);
}

static void test_dir_lock_missing(void)
{
	struct azl_verify_opts o = { out_dir, pub_path, "/nonexistent/x.lock.json" };
	struct azl_verify_report rep = { 0 };
	struct azl_err err = { 0 };
	char *sums = azl_xasprintf("%s  a.txt\n", HEX_A);

	write_sums(sums);
	CHECK(azl_verify_dir(&o, &rep, &err) == 0);
	CHECK(!azl_verify_report_ok(&rep));
	expect(&rep, "file a.txt", true, NULL);
	expect(&rep, "lockfile /nonexistent/x.lock.json", false, "x.lock.json");
	azl_verify_report_release(&rep);
	free(sums);
}

/* Another key: the signature check fails, the file checks still run. */
static void test_dir_other_key(void)
{
	char *other = azl_xasprintf("%s/other.pub", dir);
	char *cmd = azl_xasprintf("openssl genpkey -algorithm ed25519 2>/dev/null | "
				  "openssl pkey -pubout -out %s", other);
	struct azl_verify_opts o = { out_dir, other, NULL };
	struct azl_verify_report rep = { 0 };
	struct azl_err err = { 0 };

	CHECK(system(cmd) == 0);
	CHECK(azl_verify_dir(&o, &rep, &err) == 0);
	CHECK(!azl_verify_report_ok(&rep));
	expect(&rep, "signature SHA256SUMS.sig", false, "SHA256SUMS");
	expect(&rep, "file a.txt", true, NULL);
	azl_verify_report_release(&rep);
	free(cmd);
	free(other);
}

static void test_dir_sums_bad(void)
{
	struct azl_verify_opts o = { out_dir, pub_path, NULL };
	struct azl_verify_report rep = { 0 };
	struct azl_err err = { 0 };

	write_sums("not a checksum line\n");
	CHECK(azl_verify_dir(&o, &rep, &err) == -EBADMSG);
	CHECK_CONTAINS(err.msg, "SHA256SUMS: not in sha256sum's format");
	CHECK(rep.n == 2 && !rep.v[1].ok);
	if (rep.n == 2) {
		CHECK_STR(rep.v[1].what, "file SHA256SUMS");
		CHECK_STR(rep.v[1].detail, err.msg);
	}
	CHECK(!azl_verify_report_ok(&rep));
	azl_verify_report_release(&rep);

	write_sums("");
	CHECK(azl_verify_dir(&o, &rep, &err) == -EBADMSG);
	CHECK(!azl_verify_report_ok(&rep));
	azl_verify_report_release(&rep);
}

static void test_dir_sums_missing(void)
{
	struct azl_verify_opts o = { out_dir, pub_path, NULL };
	struct azl_verify_report rep = { 0 };
	struct azl_err err = { 0 };
	char *sums = azl_path_join(out_dir, "SHA256SUMS");

	CHECK(unlink(sums) == 0);
	CHECK(azl_verify_dir(&o, &rep, &err) == -ENOENT);
	CHECK_CONTAINS(err.msg, "/SHA256SUMS: ");
	CHECK(rep.n == 1);
	if (rep.n == 1) {
		CHECK_STR(rep.v[0].what, "file SHA256SUMS");
		CHECK(!rep.v[0].ok);
		CHECK_STR(rep.v[0].detail, err.msg);
	}
	CHECK(!azl_verify_report_ok(&rep));
	azl_verify_report_release(&rep);
	free(sums);
}

/* The readers refuse what is not theirs, name it, and return no list. */
static void test_readers_errors(void)
{
	struct azl_err err = { 0 };
	char *junk = azl_path_join(out_dir, "a.txt"), **v = (void *)1;
	size_t n = 3;

	CHECK(azl_verify_rpmdb_nevras(junk, &v, &n, &err) < 0);
	CHECK(v == NULL && n == 0);
	CHECK_CONTAINS(err.msg, "rpmdb.sqlite: ");
	azl_err_clear(&err);
	v = (void *)1;
	n = 3;
	CHECK(azl_verify_oci_nevras(junk, &v, &n, &err) < 0);
	CHECK(v == NULL && n == 0);
	CHECK_CONTAINS(err.msg, junk);
	azl_verify_nevras_free(NULL, 0);
	free(junk);
}

int main(void)
{
	char *cmd;

	if (!mkdtemp(dir))
		return 1;
	out_dir = azl_path_join(dir, "out");
	key_path = azl_path_join(dir, "key.pem");
	pub_path = azl_path_join(dir, "key.pub");
	cmd = azl_xasprintf("mkdir %s && openssl genpkey -algorithm ed25519 -out %s 2>/dev/null && "
			    "openssl pkey -in %s -pubout -out %s", out_dir, key_path, key_path,
			    pub_path);
	CHECK(system(cmd) == 0);
	free(cmd);

	test_parse_good();
	test_parse_bad();
	test_dir_pass();
	test_dir_wrong_and_missing();
	test_dir_lock_missing();
	test_dir_other_key();
	test_dir_sums_bad();
	test_dir_sums_missing();
	test_readers_errors();

	cmd = azl_xasprintf("rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	free(cmd);
	free(out_dir);
	free(key_path);
	free(pub_path);
	return t_done();
}
