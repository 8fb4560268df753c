/* Every fuzz finding, replayed without libFuzzer: each input under
 * tests/fuzz/regress/<target>/ (NAME.b64: base64; NAME.gz.b64: base64
 * of gzip, for mostly-empty disk images) and each committed seed under
 * tests/fuzz/seeds/<target>/ goes through the same harness function the
 * fuzzer calls (tests/fuzz/fuzz_<target>.c, compiled in here with
 * AZL_FUZZ_REPLAY).  A harness aborts on a broken invariant, and under
 * make check-asan a memory error stops it too, so a reintroduced bug
 * fails this test. */
#define AZL_FUZZ_REPLAY 1

#include <dirent.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "t.h"

#include "../fuzz/fuzz_diff_disk.c"
#include "../fuzz/fuzz_diff_oci.c"
#include "../fuzz/fuzz_lock.c"
#include "../fuzz/fuzz_manifest.c"
#include "../fuzz/fuzz_primary.c"
#include "../fuzz/fuzz_push.c"
#include "../fuzz/fuzz_repomd.c"
#include "../fuzz/fuzz_rpm.c"
#include "../fuzz/fuzz_rpmdb.c"
#include "../fuzz/fuzz_sbom.c"
#include "../fuzz/fuzz_verify.c"

struct target {
	const char *name;
	int (*fn)(const uint8_t *data, size_t size);
};

static const struct target targets[] = {
	{ "diff_disk", azl_fuzz_diff_disk }, { "diff_oci", azl_fuzz_diff_oci },
	{ "lock", azl_fuzz_lock },           { "manifest", azl_fuzz_manifest },
	{ "primary", azl_fuzz_primary },     { "push", azl_fuzz_push },
	{ "repomd", azl_fuzz_repomd },
	{ "rpm", azl_fuzz_rpm },             { "rpmdb", azl_fuzz_rpmdb },
	{ "sbom", azl_fuzz_sbom },           { "verify", azl_fuzz_verify },
};
#define NTARGETS (sizeof(targets) / sizeof(targets[0]))

static const struct target *find_target(const char *name)
{
	for (size_t i = 0; i < NTARGETS; i++)
		if (!strcmp(targets[i].name, name))
			return &targets[i];
	return NULL;
}

/* Decode base64 text (line breaks allowed); NULL on bad input. */
static uint8_t *b64_decode(const char *text, size_t len, size_t *out_len)
{
	char *clean = azl_xmalloc(len + 1);
	size_t n = 0, pad = 0;
	uint8_t *out;
	int got;

	for (size_t i = 0; i < len; i++)
		if (!strchr(" \t\r\n", text[i]))
			clean[n++] = text[i];
	if (n % 4) {
		free(clean);
		return NULL;
	}
	pad = (n && clean[n - 1] == '=') + (n > 1 && clean[n - 2] == '=');
	out = azl_xmalloc(n / 4 * 3 + 1);
	got = EVP_DecodeBlock(out, (const unsigned char *)clean, (int)n);
	free(clean);
	if (got < 0) {
		free(out);
		return NULL;
	}
	*out_len = (size_t)got - pad;
	return out;
}

/* gunzip (for NAME.gz.b64: disk images are mostly zeros); NULL on bad
 * input.  Caller frees. */
static uint8_t *gunzip(const uint8_t *in, size_t len, size_t *out_len)
{
	z_stream z = { 0 };
	struct azl_buf b = AZL_BUF_INIT;
	int rc = inflateInit2(&z, 16 + MAX_WBITS);

	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	while (rc == Z_OK) {
		azl_buf_grow(&b, 65536);
		z.next_out = (Bytef *)b.data + b.len;
		z.avail_out = 65536;
		rc = inflate(&z, Z_NO_FLUSH);
		b.len += 65536 - z.avail_out;
	}
	inflateEnd(&z);
	if (rc != Z_STREAM_END) {
		azl_buf_release(&b);
		return NULL;
	}
	*out_len = b.len;
	return (uint8_t *)azl_buf_detach(&b);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in dir (no dot files); *n 0 when the folder is missing. */
static char **list_names(const char *dir, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;

	*n = 0;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		v = azl_xrealloc(v, (*n + 1) * sizeof(*v));
		v[(*n)++] = azl_xstrdup(de->d_name);
	}
	if (d)
		closedir(d);
	if (*n)
		qsort(v, *n, sizeof(*v), cmp_names);
	return v;
}

static void free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Feed every file of dir to t (base64-decoded when b64); the count. */
static size_t replay_dir(const struct target *t, const char *dir, bool b64)
{
	size_t n, done = 0;
	char **names = list_names(dir, &n);

	for (size_t i = 0; i < n; i++) {
		char *path = azl_path_join(dir, names[i]), *text = NULL;
		struct azl_err err = { 0 };
		uint8_t *data = NULL;
		size_t len = 0, dlen = 0;

		CHECK(azl_read_file(path, 0, &text, &len, &err) == 0);
		if (text && b64)
			data = b64_decode(text, len, &dlen);
		if (data && strstr(names[i], ".gz.b64")) {
			uint8_t *raw = gunzip(data, dlen, &dlen);
			free(data);
			data = raw;
		}
		if (b64 && !data)
			fprintf(stderr, "%s: not base64\n", path);
		CHECK(!b64 || data != NULL);
		if (text) {
			fprintf(stderr, "replay %s %s\n", t->name, path);
			CHECK(t->fn(b64 ? data : (const uint8_t *)text, b64 ? dlen : len) == 0);
			done++;
		}
		free(data);
		free(text);
		free(path);
	}
	free_names(names, n);
	return done;
}

/* Every tests/fuzz/fuzz_<target>.c is in the table above, and every
 * folder under regress/ names a target: nothing is silently skipped. */
static void check_table(void)
{
	size_t n;
	char **names = list_names("tests/fuzz", &n);

	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(names[i]);
		if (strncmp(names[i], "fuzz_", 5) || l < 7 || strcmp(names[i] + l - 2, ".c"))
			continue;
		names[i][l - 2] = '\0';
		if (!find_target(names[i] + 5))
			fprintf(stderr, "tests/fuzz/%s.c is not replayed here\n", names[i]);
		CHECK(find_target(names[i] + 5) != NULL);
	}
	free_names(names, n);
	names = list_names("tests/fuzz/regress", &n);
	for (size_t i = 0; i < n; i++)
		CHECK(find_target(names[i]) != NULL);
	free_names(names, n);
}

/* sbom: a checksum longer than 64 hex digits was cut to its first 64
 * and could then match a lockfile; it must read as no checksum. */
static void check_sbom_too_long(void)
{
	char *text = NULL;
	size_t len = 0, dlen = 0, n = 0;
	struct azl_err err = { 0 };
	struct azl_sbom_pkg *pkgs = NULL;
	uint8_t *data;
	const char *path;

	CHECK(azl_read_file("tests/fuzz/regress/sbom/checksum-too-long.b64", 0, &text,
			    &len, &err) == 0);
	data = text ? b64_decode(text, len, &dlen) : NULL;
	CHECK(data != NULL);
	if (!data)
		goto out;
	path = azl_fuzz_file("too-long.spdx.json", data, dlen);
	CHECK(azl_sbom_read_packages(path, &pkgs, &n, &err) == 0);
	CHECK(n > 0);
	for (size_t i = 0; i < n; i++)
		CHECK_STR(pkgs[i].sha256, "");
	azl_sbom_pkgs_free(pkgs, n);
out:
	free(data);
	free(text);
}

int main(void)
{
	size_t regress = 0;

	check_table();
	for (size_t i = 0; i < NTARGETS; i++) {
		char *r = azl_xasprintf("tests/fuzz/regress/%s", targets[i].name);
		char *s = azl_xasprintf("tests/fuzz/seeds/%s", targets[i].name);
		regress += replay_dir(&targets[i], r, true);
		replay_dir(&targets[i], s, false);
		free(r);
		free(s);
	}
	/* The folder is never empty once a finding was kept. */
	CHECK(regress > 0);
	check_sbom_too_long();
	return t_done();
}
