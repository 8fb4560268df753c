/* Package signatures against the fixture repositories (built on demand by
 * tests/lib/fixtures.sh): key A accepts `base`, and every failure kind is
 * named: unsigned, unknown key, corrupted payload, not an RPM. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "sign/rpmsig.h"
#include "t.h"

static char *fixtures(void)
{
	char line[4096] = "";
	FILE *p = popen("bash tests/lib/fixtures.sh build 2>/dev/null | tail -n 1", "r");
	if (!p)
		return NULL;
	if (!fgets(line, sizeof(line), p))
		line[0] = '\0';
	pclose(p);
	line[strcspn(line, "\n")] = '\0';
	return line[0] == '/' ? azl_xstrdup(line) : NULL;
}

static struct azl_keyring *load(const char *fx, const char *name)
{
	struct azl_keyring *k = NULL;
	struct azl_err err = { 0 };
	char *path = azl_xasprintf("%s/keys/%s", fx, name);
	const char *paths[] = { path };
	CHECK(azl_keyring_load(paths, 1, &k, &err) == 0);
	free(path);
	return k;
}

static void check_fails(struct azl_keyring *k, const char *path, const char *what)
{
	struct azl_err err = { 0 };
	CHECK(azl_rpmsig_verify(k, path, "pkg-1-1.noarch", &err) < 0);
	CHECK_CONTAINS(err.msg, "pkg-1-1.noarch");
	CHECK_CONTAINS(err.msg, path);
	CHECK_CONTAINS(err.msg, what);
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Offset of a byte inside the main header's data (after the 96-byte lead
 * and the signature header, padded to 8), or 0. */
static size_t main_header_byte(const unsigned char *d, size_t len)
{
	size_t sig = 96, hdr;
	if (len < sig + 16)
		return 0;
	hdr = sig + 16 + 16 * (size_t)be32(d + sig + 8) + be32(d + sig + 12);
	hdr = (hdr + 7) & ~(size_t)7;
	if (len < hdr + 16)
		return 0;
	return hdr + 16 + 16 * (size_t)be32(d + hdr + 8) + be32(d + hdr + 12) / 2;
}

/* A copy of src with one byte flipped: in the compressed payload, or
 * (header) in the signed main header. */
static char *corrupt_at(const char *src, int header)
{
	struct azl_err err = { 0 };
	char *data = NULL, *dst = azl_xstrdup("/tmp/azl-test-rpmsig-XXXXXX.rpm");
	size_t len = 0;
	int fd = mkstemps(dst, 4);
	close(fd);
	CHECK(azl_read_file(src, 0, &data, &len, &err) == 0);
	size_t at = header ? main_header_byte((unsigned char *)data, len) : len - 100;
	CHECK(data && len > 200 && at > 0 && at < len);
	if (data && len > 200 && at > 0 && at < len)
		data[at] ^= 0x5a;
	CHECK(azl_write_file_atomic(dst, data, len, 0644, &err) == 0);
	free(data);
	return dst;
}

static char *corrupt_copy(const char *src)
{
	return corrupt_at(src, 0);
}

/* Fetch verifies in worker threads: the same keyring from several at once. */
struct par {
	struct azl_keyring *k;
	const char *path;
	int failures;
};

static void *verify_often(void *arg)
{
	struct par *p = arg;
	for (int i = 0; i < 5; i++) {
		struct azl_err err = { 0 };
		if (azl_rpmsig_verify(p->k, p->path, "par", &err) < 0) {
			fprintf(stderr, "thread: %s\n", err.msg);
			p->failures++;
		}
	}
	return NULL;
}

/* Show the tap the bytes of `shown` in pieces of varying size (skipping
 * the piece at `gap_at`, when non-zero), then check `path` with it. */
static int verify_streamed(struct azl_keyring *k, const char *path,
			   const char *shown, size_t gap_at, struct azl_err *err)
{
	static const size_t sizes[] = { 1, 7, 95, 4096, 13, 65536, 262144 };
	struct azl_rpm_payload d = { 0 };
	char *data = NULL;
	size_t len = 0, off = 0;

	CHECK(azl_read_file(shown, 0, &data, &len, err) == 0);
	for (size_t i = 0; data && off < len; i++) {
		size_t n = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
		if (n > len - off)
			n = len - off;
		if (!gap_at || off != gap_at)
			azl_rpm_payload_feed(&d, off, data + off, n);
		off += n;
	}
	free(data);
	return azl_rpmsig_verify_streamed(k, path, "pkg-1-1.noarch", &d, err);
}

/* The payload digest gathered from the stream stands in for a second read
 * of the file. */
static void test_streamed(struct azl_keyring *k, const char *good)
{
	struct azl_err err = { 0 };
	struct azl_rpm_payload d = { 0 };
	char *bad = corrupt_copy(good), *data = NULL;
	size_t len = 0;

	CHECK(verify_streamed(k, good, good, 0, &err) == 0);
	/* A corrupted download: what was streamed is what was written. */
	CHECK(verify_streamed(k, bad, bad, 0, &err) < 0);
	CHECK_CONTAINS(err.msg, "digest mismatch (corrupted payload)");
	/* The streamed digest is what is compared, not the file read again:
	 * a good file judged by a corrupted stream fails. */
	CHECK(verify_streamed(k, good, bad, 0, &err) < 0);
	CHECK_CONTAINS(err.msg, "digest mismatch (corrupted payload)");
	/* A gap in what was shown (the piece at 4212, see the sizes): the
	 * file is read instead, so even a corrupted stream does not count. */
	CHECK(verify_streamed(k, good, bad, 4212, &err) == 0);
	CHECK(verify_streamed(k, good, bad, 103, &err) == 0);
	/* Starting over at offset 0 forgets what came before. */
	CHECK(azl_read_file(bad, 0, &data, &len, &err) == 0);
	if (data) {
		azl_rpm_payload_feed(&d, 0, data, len);
		free(data);
		data = NULL;
	}
	CHECK(azl_read_file(good, 0, &data, &len, &err) == 0);
	if (data) {
		azl_rpm_payload_feed(&d, 0, data, len / 2);
		azl_rpm_payload_feed(&d, len / 2, data + len / 2, len - len / 2);
	}
	CHECK(azl_rpmsig_verify_streamed(k, good, "p", &d, &err) == 0);
	/* Shown only part of the file: the file is read instead. */
	if (data)
		azl_rpm_payload_feed(&d, 0, data, len - 1);
	CHECK(azl_rpmsig_verify_streamed(k, good, "p", &d, &err) == 0);
	/* Not an RPM at all: the tap gives up, rpm names the problem. */
	azl_rpm_payload_feed(&d, 0, "not a package, only some text here", 34);
	CHECK(azl_rpmsig_verify_streamed(k, "/etc/hostname", "p", &d, &err) < 0);
	CHECK_CONTAINS(err.msg, "not a readable RPM package");
	free(data);
	unlink(bad);
	free(bad);
}

static void test_threads(struct azl_keyring *k, const char *path)
{
	pthread_t th[4];
	struct par ps[4];

	for (int i = 0; i < 4; i++) {
		ps[i] = (struct par){ k, path, 0 };
		CHECK(pthread_create(&th[i], NULL, verify_often, &ps[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(ps[i].failures == 0);
	}
}

/* Real Fedora 14 packages (no payload digest: rpm's full legacy checks),
 * read in place from the shared corpus when it is there. */
static void test_fedora14(void)
{
	static const char dir[] = "/work/shared/corpus/real/fedora14";
	const char *keyp[] = { "/work/shared/corpus/real/fedora14/RPM-GPG-KEY-fedora-14-primary" };
	struct azl_keyring *k = NULL;
	struct azl_err err = { 0 };
	char *pkg, *bad;

	if (access(keyp[0], R_OK) < 0) {
		fprintf(stderr, "skipping Fedora 14 checks: %s absent\n", dir);
		return;
	}
	CHECK(azl_keyring_load(keyp, 1, &k, &err) == 0);
	pkg = azl_xasprintf("%s/icedax-1.1.10-2.fc14.i686.rpm", dir);
	CHECK(k && azl_rpmsig_verify(k, pkg, "icedax", &err) == 0);
	bad = corrupt_copy(pkg);
	if (k)
		check_fails(k, bad, "digest mismatch (corrupted payload)");
	unlink(bad);
	free(bad);
	free(pkg);
	azl_keyring_free(k);
}

int main(void)
{
	struct azl_keyring *a, *b, *k = NULL;
	struct azl_err err = { 0 };
	char *fx = fixtures(), *good, *unsigned_, *other, *bad, *ab;

	CHECK(fx != NULL);
	if (!fx)
		return t_done();
	good = azl_xasprintf("%s/base/Packages/a/azl-app-1.0-1.x86_64.rpm", fx);
	unsigned_ = azl_xasprintf("%s/unsigned/Packages/a/azl-unsigned-hello-1.0-1.noarch.rpm", fx);
	other = azl_xasprintf("%s/otherkey/Packages/a/azl-keyb-hello-1.0-1.noarch.rpm", fx);
	a = load(fx, "A.asc");
	b = load(fx, "B.asc");

	CHECK(azl_rpmsig_verify(a, good, "azl-app", &err) == 0);
	CHECK(azl_rpmsig_verify(b, other, "azl-keyb-hello", &err) == 0);
	check_fails(a, unsigned_, "not signed");
	check_fails(b, unsigned_, "not signed");
	check_fails(a, other, "signed by unknown key");
	check_fails(b, good, "signed by unknown key");
	bad = corrupt_copy(good);
	check_fails(a, bad, "digest mismatch (corrupted payload)");
	unlink(bad);
	free(bad);
	bad = corrupt_at(good, 1);
	check_fails(a, bad, "bad signature");
	unlink(bad);
	test_threads(a, good);
	test_streamed(a, good);
	check_fails(a, "/etc/hostname", "not a readable RPM package");

	/* One file holding two keys accepts both signers. */
	ab = azl_xasprintf("/tmp/azl-test-rpmsig-ab-%d.asc", (int)getpid());
	char *cmd = azl_xasprintf("cat %s/keys/A.asc %s/keys/B.asc > %s", fx, fx, ab);
	CHECK(system(cmd) == 0);
	const char *abp[] = { ab };
	CHECK(azl_keyring_load(abp, 1, &k, &err) == 0);
	CHECK(k && azl_rpmsig_verify(k, good, "a", &err) == 0);
	CHECK(k && azl_rpmsig_verify(k, other, "b", &err) == 0);
	azl_keyring_free(k);
	unlink(ab);

	/* Key files that are not keys are bad input, named. */
	const char *notkey[] = { "/etc/hostname" };
	CHECK(azl_keyring_load(notkey, 1, &k, &err) < 0);
	CHECK_CONTAINS(err.msg, "/etc/hostname");
	const char *missing[] = { "/nonexistent/key.asc" };
	CHECK(azl_keyring_load(missing, 1, &k, &err) < 0);
	CHECK_CONTAINS(err.msg, "/nonexistent/key.asc");

	test_fedora14();
	azl_keyring_free(a);
	azl_keyring_free(b);
	free(cmd);
	free(ab);
	free(bad);
	free(good);
	free(unsigned_);
	free(other);
	free(fx);
	return t_done();
}
