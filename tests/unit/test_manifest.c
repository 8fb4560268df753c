/* The manifest loader: a full and a minimal manifest, every error class with
 * its exact FILE:LINE:COLUMN and key, path/URL normalisation, lock paths, and
 * a crash sweep over truncated and mutated manifests. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/manifest.h"
#include "t.h"

static char tmpdir[PATH_MAX]; /* realpath of a fresh mkdtemp folder */

static char *write_tmp(const char *name, const char *text)
{
	char *path = NULL;
	FILE *f;

	if (asprintf(&path, "%s/%s", tmpdir, name) < 0)
		abort();
	f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f))
		abort();
	return path;
}

/* Load text from a temp file; on failure returns NULL with err filled. */
static struct azl_manifest *load_text(const char *text, struct azl_err *err)
{
	char *path = write_tmp("m.yaml", text);
	struct azl_manifest *m = NULL;
	int r;

	azl_err_clear(err);
	r = azl_manifest_load(path, &m, err);
	CHECK((r == 0) == (m != NULL));
	free(path);
	return m;
}

static void test_full(void)
{
	const char *path = "tests/fixtures/manifests/full.yaml";
	struct azl_manifest *m = NULL;
	struct azl_err err = { 0 };
	char dir[PATH_MAX], want[PATH_MAX + 64], hex[65];
	char *lock;

	CHECK(azl_manifest_load(path, &m, &err) == 0);
	if (!m) {
		fprintf(stderr, "full.yaml: %s\n", err.msg);
		return;
	}
	CHECK(realpath("tests/fixtures/manifests", dir) != NULL);
	CHECK_STR(m->path, path);
	CHECK_STR(m->dir, dir);
	CHECK_STR(m->name, "full-1.0_test");
	CHECK(m->has_source_date_epoch);
	CHECK(m->source_date_epoch == 1700000000);
	CHECK_STR(m->arch, "aarch64");
	CHECK(m->nrepos == 3);
	if (m->nrepos == 3) {
		CHECK_STR(m->repos[0].id, "Base.OS_1-x");
		CHECK_STR(m->repos[0].baseurl, "https://example.invalid/base/aarch64/");
		snprintf(want, sizeof(want), "%s/keys/RPM-GPG-KEY-base", dir);
		CHECK_STR(m->repos[0].gpgkey, want);
		CHECK(m->repos[0].gpgcheck);
		CHECK(m->repos[0].line == 6);
		CHECK_STR(m->repos[1].baseurl, "file:///srv/repo/");
		CHECK(m->repos[1].gpgkey == NULL);
		CHECK(!m->repos[1].gpgcheck);
		CHECK_STR(m->repos[2].baseurl, "http://example.invalid/updates/");
		CHECK_STR(m->repos[2].gpgkey,
			  "file:///etc/pki/rpm-gpg/RPM-GPG-KEY-updates");
		CHECK(m->repos[2].gpgcheck); /* the default */
	}
	CHECK(m->npackages == 6);
	if (m->npackages == 6) {
		CHECK_STR(m->packages[0], "bash");
		CHECK_STR(m->packages[1], "coreutils-9.4");
		CHECK_STR(m->packages[2], "glibc >= 2.38");
		CHECK_STR(m->packages[3], "kernel = 6.6.1-2");
		CHECK_STR(m->packages[4], "python3.12 < 1:3.12.4~rc1^20240101");
		CHECK_STR(m->packages[5], "vim-enhanced-2:9.0.2153-1.azl3.x86_64");
	}
	CHECK(m->nexclude == 3);
	if (m->nexclude == 3)
		CHECK_STR(m->exclude[2], "[a-c]*-doc");
	CHECK(m->install_weak_deps);
	CHECK(azl_sha256_file(path, hex, NULL, &err) == 0);
	CHECK_STR(m->sha256, hex);
	lock = azl_manifest_lock_path(m);
	CHECK_STR(lock, "tests/fixtures/manifests/full.lock.json");
	free(lock);
	azl_manifest_free(m);
}

static void test_defaults(void)
{
	struct azl_manifest *m = NULL;
	struct azl_err err = { 0 };
	char *lock;

	CHECK(azl_manifest_load("tests/fixtures/manifests/minimal.yml", &m,
				&err) == 0);
	if (!m) {
		fprintf(stderr, "minimal.yml: %s\n", err.msg);
		return;
	}
	CHECK_STR(m->arch, "x86_64");
	CHECK(!m->has_source_date_epoch);
	CHECK(m->nrepos == 1 && m->repos[0].gpgcheck);
	CHECK_STR(m->repos[0].baseurl, "file:///srv/base/");
	CHECK_STR(m->repos[0].gpgkey, "/etc/pki/rpm-gpg/RPM-GPG-KEY-base");
	CHECK(m->npackages == 1);
	CHECK(m->nexclude == 0 && m->exclude == NULL);
	CHECK(!m->install_weak_deps);
	lock = azl_manifest_lock_path(m);
	CHECK_STR(lock, "tests/fixtures/manifests/minimal.lock.json");
	free(lock);
	azl_manifest_free(m);
}

static void test_reference(void)
{
	struct azl_manifest *m = NULL;
	struct azl_err err = { 0 };

	CHECK(azl_manifest_load("manifests/reference/minimal.yaml", &m, &err) == 0);
	if (!m)
		fprintf(stderr, "reference: %s\n", err.msg);
	CHECK(m && m->nrepos >= 1 && m->npackages >= 1);
	azl_manifest_free(m);
}

struct bad {
	const char *yaml;
	const char *where; /* "LINE:COL: key 'KEY'" or "LINE:COL" */
	const char *what;  /* part of the message after it */
};

static const struct bad bad_cases[] = {
	/* malformed YAML */
	{ "name: x\nrepos: [\n", "3:1", "invalid YAML: did not find expected node content" },
	{ "name: x\n  foo: 1\n", "2:6", "invalid YAML: mapping values are not allowed" },
	{ "name: 'x\n", "2:1", "invalid YAML: found unexpected end of stream" },
	{ "name: x\n\xff: 1\n", "2:1", "invalid YAML: invalid leading UTF-8 octet" },
	{ "name: x\n# \xc3\xa9\xc3\xa9 \x01\n", "2:6", "invalid YAML: control characters are not allowed" },
	{ "name: x\nrepos: *a\n", "2:8", "anchors and aliases are not supported" },
	{ "name: !!str x\n", "1:7", "explicit YAML tags are not supported" },
	{ "name: x\n---\nname: y\n", "2:1", "more than one YAML document" },
	{ "", "1:1", "the manifest is empty" },
	{ "# only a comment\n", "1:1", "the manifest is empty" },
	{ "- name\n", "1:1", "the manifest must be a mapping of keys, got a list" },
	/* unknown keys, top level and inside a repo */
	{ "name: x\nnmae: y\n", "2:1: key 'nmae'", "unknown key (known keys here: name," },
	{ "name: x\nrepos:\n  - id: a\n    baseurl: http://h/\n    gpgchek: false\n",
	  "5:5: key 'repos[0].gpgchek'", "unknown key (known keys here: id, baseurl, gpgkey, gpgcheck)" },
	{ "name: x\n? [a]\n: 1\n", "2:3", "keys must be plain strings" },
	/* duplicate keys */
	{ "name: x\narch: x86_64\nname: y\n", "3:1: key 'name'", "duplicate key (first at line 1:1)" },
	{ "name: x\nrepos:\n  - {id: a, id: b}\n", "3:13: key 'repos[0].id'", "duplicate key (first at line 3:6)" },
	/* missing required keys */
	{ "arch: x86_64\n", "1:1: key 'name'", "missing required key" },
	{ "name: x\nrepos:\n  - id: a\n    gpgcheck: false\npackages: [a]\n",
	  "3:5: key 'repos[0].baseurl'", "missing required key" },
	{ "name: x\nrepos:\n  - id: a\n    baseurl: http://h/\n",
	  "3:5: key 'repos[0].gpgkey'", "required when gpgcheck is true" },
	{ "name: x\nrepos:\n  - baseurl: http://h/\n    gpgcheck: false\n",
	  "3:5: key 'repos[0].id'", "missing required key" },
	{ "name: x\nrepos: [{id: a, baseurl: \"http://h\", gpgcheck: false}]\n",
	  "1:1: key 'packages'", "missing required key" },
	{ "name: x\npackages: [a]\n", "1:1: key 'repos'", "missing required key" },
	/* wrong types */
	{ "name: x\nrepos: []\n", "2:8: key 'repos'", "must not be empty" },
	{ "name: x\nrepos: {id: a}\n", "2:8: key 'repos'", "expected a list, got a mapping" },
	{ "name: x\nrepos: [base]\n", "2:9: key 'repos[0]'", "expected a mapping of keys, got a string" },
	{ "name: x\npackages: bash\n", "2:11: key 'packages'", "expected a list, got a string" },
	{ "name: x\npackages: \"bash\"\n", "2:11: key 'packages'", "expected a list, got a quoted string" },
	{ "name: x\npackages: []\n", "2:11: key 'packages'", "must not be empty" },
	{ "name: x\npackages: [a, [b]]\n", "2:15: key 'packages[1]'", "expected a string, got a list" },
	{ "name: x\npackages: [a, true]\n", "2:15: key 'packages[1]'", "expected a string, got a boolean" },
	{ "name: x\nexclude: \"*-devel\"\n", "2:10: key 'exclude'", "expected a list" },
	{ "name: x\nexclude:\n", "2:9: key 'exclude'", "expected a list, got no value (null)" },
	{ "name:\n", "1:6: key 'name'", "expected a string, got no value (null)" },
	{ "name: \"\"\n", "1:7: key 'name'", "must not be empty" },
	{ "name: \"a\\0b\"\n", "1:7: key 'name'", "contains a NUL character" },
	{ "name: x\nrepos:\n  - id: a\n    baseurl: http://h/\n    gpgcheck: \"yes\"\n",
	  "5:15: key 'repos[0].gpgcheck'", "expected true or false, got the string 'yes'" },
	{ "name: x\nrepos:\n  - id: a\n    baseurl: http://h/\n    gpgcheck: yes\n",
	  "5:15: key 'repos[0].gpgcheck'", "YAML 1.1 spellings like yes/no/on/off are not accepted" },
	{ "name: x\ninstall_weak_deps: True\n", "2:20: key 'install_weak_deps'", "expected true or false, got 'True'" },
	{ "name: x\ninstall_weak_deps: 1\n", "2:20: key 'install_weak_deps'", "expected true or false" },
	{ "name: x\ninstall_weak_deps: [true]\n", "2:20: key 'install_weak_deps'", "expected true or false, got a list" },
	{ "name: x\nsource_date_epoch: \"1700000000\"\n", "2:20: key 'source_date_epoch'", "expected an integer, got a quoted string" },
	{ "name: x\nsource_date_epoch: -1\n", "2:20: key 'source_date_epoch'", "must be >= 0" },
	{ "name: x\nsource_date_epoch: 017\n", "2:20: key 'source_date_epoch'", "without sign or leading zeros" },
	{ "name: x\nsource_date_epoch: 1.7e9\n", "2:20: key 'source_date_epoch'", "expected a decimal integer" },
	{ "name: x\nsource_date_epoch: 9223372036854775808\n", "2:20: key 'source_date_epoch'", "integer out of range" },
	/* invalid names and values */
	{ "name: Minimal\n", "1:7: key 'name'", "invalid name 'Minimal'" },
	{ "name: a/b\n", "1:7: key 'name'", "invalid name 'a/b'" },
	{ "name: ..\n", "1:7: key 'name'", "must start with a letter, digit or '_'" },
	{ "name: x\narch: noarch\n", "2:7: key 'arch'", "noarch is not a machine architecture" },
	{ "name: x\narch: ppc64le\n", "2:7: key 'arch'", "unknown arch 'ppc64le'" },
	{ "name: x\nrepos:\n  - id: a b\n", "3:9: key 'repos[0].id'", "invalid repo id 'a b'" },
	{ "name: x\nrepos:\n  - id: a\n    baseurl: ftp://h/\n",
	  "4:14: key 'repos[0].baseurl'", "'ftp://h/' is not an http://, https:// or file:// URL" },
	{ "name: x\nrepos:\n  - id: a\n    baseurl: /srv/repo\n",
	  "4:14: key 'repos[0].baseurl'", "is not an http://, https:// or file:// URL" },
	{ "name: x\nrepos:\n  - id: a\n    baseurl: https:///x\n",
	  "4:14: key 'repos[0].baseurl'", "has no host" },
	{ "name: x\nrepos:\n  - id: a\n    baseurl: file://srv/repo\n",
	  "4:14: key 'repos[0].baseurl'", "has no absolute path" },
	{ "name: x\nrepos:\n  - id: a\n    baseurl: \"http://h/a b\"\n",
	  "4:14: key 'repos[0].baseurl'", "must not contain spaces" },
	{ "name: x\nrepos:\n  - id: a\n    baseurl: http://h/?x=1\n",
	  "4:14: key 'repos[0].baseurl'", "'?' or '#'" },
	{ "name: x\nrepos:\n  - id: a\n    baseurl: http://h/\n    gpgkey: https://h/key\n",
	  "5:13: key 'repos[0].gpgkey'", "only local keys are supported" },
	{ "name: x\nrepos:\n  - id: a\n    baseurl: http://h/\n    gpgkey: \"a\\nb\"\n",
	  "5:13: key 'repos[0].gpgkey'", "control characters are not allowed" },
	{ "name: x\nrepos:\n  - id: a\n    baseurl: http://h/\n    gpgkey: file:key\n",
	  "5:13: key 'repos[0].gpgkey'", "write file:///absolute/path" },
	{ "name: x\nrepos:\n  - {id: a, baseurl: \"http://h\", gpgcheck: false}\n"
	  "  - {id: a, baseurl: \"http://i\", gpgcheck: false}\npackages: [a]\n",
	  "4:10: key 'repos[1].id'", "repo id 'a' is already used by repos[0] (line 3)" },
	{ "name: x\nrepos: [{id: a, baseurl: \"http://h\", gpgcheck: false}]\n"
	  "packages: [bash, \"bash >\"]\n", "3:18: key 'packages[1]'", "invalid package spec 'bash >'" },
	{ "name: x\nrepos: [{id: a, baseurl: \"http://h\", gpgcheck: false}]\n"
	  "packages: [\"bash coreutils\"]\n", "3:12: key 'packages[0]'", "invalid package spec" },
	{ "name: x\nrepos: [{id: a, baseurl: \"http://h\", gpgcheck: false}]\n"
	  "packages: [-bash]\n", "3:12: key 'packages[0]'", "invalid package spec" },
	{ "name: x\nrepos: [{id: a, baseurl: \"http://h\", gpgcheck: false}]\n"
	  "packages: [a, b, a]\n", "3:18: key 'packages[2]'", "'a' is already listed at line 3" },
	{ "name: x\nrepos: [{id: a, baseurl: \"http://h\", gpgcheck: false}]\n"
	  "packages: [a]\nexclude: [\"a b\"]\n", "4:11: key 'exclude[0]'", "invalid pattern 'a b'" },
};

static void test_errors(void)
{
	char want[PATH_MAX + 256];

	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad *b = &bad_cases[i];
		struct azl_err err = { 0 };
		struct azl_manifest *m = load_text(b->yaml, &err);

		CHECK(m == NULL);
		azl_manifest_free(m);
		CHECK(err.kind == AZL_ERR_INPUT);
		CHECK(azl_err_exit_code(&err) == 2);
		snprintf(want, sizeof(want), "%s/m.yaml:%s: ", tmpdir, b->where);
		if (strncmp(err.msg, want, strlen(want)))
			fprintf(stderr, "case %zu: want prefix \"%s\"\n", i, want);
		CHECK(!strncmp(err.msg, want, strlen(want)));
		CHECK_CONTAINS(err.msg, b->what);
	}
}

/* The first error in file order wins, and a later good key does not hide it. */
static void test_error_order(void)
{
	struct azl_err err = { 0 };
	struct azl_manifest *m = load_text("bogus: 1\nname: BAD\n", &err);

	CHECK(m == NULL);
	CHECK_CONTAINS(err.msg, "m.yaml:1:1: key 'bogus': unknown key");
}

static void test_gpgkey_and_baseurl(void)
{
	static const struct {
		const char *gpgkey, *want; /* want: NULL = tmpdir + "/" + gpgkey */
		const char *baseurl, *want_url;
	} cases[] = {
		{ "RPM-GPG-KEY", NULL, "http://h", "http://h/" },
		{ "keys/k.asc", NULL, "http://h/", "http://h/" },
		{ "../k.asc", NULL, "https://h:8080/a/b", "https://h:8080/a/b/" },
		{ "/etc/k.asc", "/etc/k.asc", "HTTPS://H/x", "https://H/x/" },
		{ "file:///etc/k.asc", "file:///etc/k.asc", "file:///srv", "file:///srv/" },
		{ "\"k with space\"", NULL, "File:///a//", "file:///a//" },
		{ "././/k.asc", "k.asc", "http://h", "http://h/" },
	};
	char text[512], want[PATH_MAX + 64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct azl_err err = { 0 };
		struct azl_manifest *m;

		snprintf(text, sizeof(text), "name: x\nrepos:\n  - id: a\n"
			 "    baseurl: %s\n    gpgkey: %s\npackages: [a]\n",
			 cases[i].baseurl, cases[i].gpgkey);
		m = load_text(text, &err);
		CHECK(m != NULL);
		if (!m) {
			fprintf(stderr, "gpgkey case %zu: %s\n", i, err.msg);
			continue;
		}
		if (cases[i].want && cases[i].want[0] != '/' &&
		    strncmp(cases[i].want, "file:", 5))
			snprintf(want, sizeof(want), "%s/%s", tmpdir, cases[i].want);
		else if (cases[i].want)
			snprintf(want, sizeof(want), "%s", cases[i].want);
		else if (cases[i].gpgkey[0] == '"')
			snprintf(want, sizeof(want), "%s/k with space", tmpdir);
		else
			snprintf(want, sizeof(want), "%s/%s", tmpdir, cases[i].gpgkey);
		CHECK_STR(m->repos[0].gpgkey, want);
		CHECK_STR(m->repos[0].baseurl, cases[i].want_url);
		azl_manifest_free(m);
	}
}

/* A relative manifest path still gives an absolute dir and gpgkey. */
static void test_relative_path(void)
{
	char cwd[PATH_MAX], want[PATH_MAX + 64];
	struct azl_manifest *m = NULL;
	struct azl_err err = { 0 };
	char *path = write_tmp("rel.yaml", "name: rel\nrepos:\n  - id: a\n"
			       "    baseurl: http://h/\n    gpgkey: k\n"
			       "packages: [a]\n");

	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK(chdir(tmpdir) == 0);
	CHECK(azl_manifest_load("rel.yaml", &m, &err) == 0);
	CHECK(chdir(cwd) == 0);
	if (m) {
		CHECK_STR(m->dir, tmpdir);
		snprintf(want, sizeof(want), "%s/k", tmpdir);
		CHECK_STR(m->repos[0].gpgkey, want);
		char *lock = azl_manifest_lock_path(m);
		CHECK_STR(lock, "rel.lock.json");
		free(lock);
	}
	azl_manifest_free(m);
	free(path);
}

static void test_lock_path(void)
{
	static const char *const cases[][2] = {
		{ "a.yaml", "a.lock.json" },
		{ "dir/b.yml", "dir/b.lock.json" },
		{ "/abs/c.d.yaml", "/abs/c.d.lock.json" },
		{ "m.json", "m.json.lock.json" },
		{ "x.yaml.bak", "x.yaml.bak.lock.json" },
		{ "dir/.yaml", "dir/.yaml.lock.json" },
		{ "noext", "noext.lock.json" },
	};
	struct azl_manifest m = { 0 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		m.path = (char *)cases[i][0];
		char *p = azl_manifest_lock_path(&m);
		CHECK_STR(p, cases[i][1]);
		free(p);
	}
}

static void test_unreadable(void)
{
	struct azl_manifest *m = NULL;
	struct azl_err err = { 0 };
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/absent.yaml", tmpdir);
	CHECK(azl_manifest_load(path, &m, &err) < 0);
	CHECK(m == NULL);
	CHECK(err.kind == AZL_ERR_WORK);
	CHECK_CONTAINS(err.msg, "absent.yaml");
}

/* CRLF line ends and a UTF-8 byte order mark change nothing but the hash. */
static void test_crlf_bom(void)
{
	const char *lf = "name: x\nrepos:\n  - id: a\n    baseurl: http://h\n"
			 "    gpgcheck: false\npackages: [a, b]\n";
	struct azl_buf crlf = AZL_BUF_INIT;
	struct azl_manifest *a = NULL, *b = NULL;
	struct azl_err err = { 0 };

	azl_buf_adds(&crlf, "\xef\xbb\xbf");
	for (const char *p = lf; *p; p++)
		azl_buf_adds(&crlf, *p == '\n' ? "\r\n" : (char[]){ *p, 0 });
	CHECK(azl_manifest_parse("lf.yaml", lf, strlen(lf), &a, &err) == 0);
	CHECK(azl_manifest_parse("crlf.yaml", crlf.data, crlf.len, &b, &err) == 0);
	if (a && b) {
		CHECK_STR(b->name, a->name);
		CHECK_STR(b->repos[0].baseurl, a->repos[0].baseurl);
		CHECK(b->npackages == 2);
		CHECK_STR(b->packages[1], "b");
		CHECK(strcmp(a->sha256, b->sha256) != 0);
	}
	azl_manifest_free(a);
	azl_manifest_free(b);
	/* an error after CRLF lines still has the right line and column */
	azl_buf_adds(&crlf, "bad: 1\r\n");
	CHECK(azl_manifest_parse("crlf.yaml", crlf.data, crlf.len, &b, &err) < 0);
	CHECK_CONTAINS(err.msg, "crlf.yaml:7:1: key 'bad': unknown key");
	azl_buf_release(&crlf);
}

/* Limits: nesting depth, file size, and a long list stays fast and reports
 * the first duplicate in list order. */
static void test_limits(void)
{
	struct azl_buf b = AZL_BUF_INIT;
	struct azl_manifest *m = NULL;
	struct azl_err err = { 0 };
	char *path;

	azl_buf_adds(&b, "name: ");
	for (int i = 0; i < 100; i++)
		azl_buf_addc(&b, '[');
	CHECK(azl_manifest_parse("deep.yaml", b.data, b.len, &m, &err) < 0);
	CHECK_CONTAINS(err.msg, "nested more than 32 levels deep");
	CHECK(err.kind == AZL_ERR_INPUT);

	azl_buf_reset(&b);
	azl_buf_adds(&b, "name: x\nrepos: [{id: a, baseurl: \"http://h\", "
		     "gpgcheck: false}]\npackages:\n");
	for (int i = 0; i < 60000; i++)
		azl_buf_addf(&b, "  - p%d\n", i);
	azl_buf_adds(&b, "  - p59999\n  - p7\n");
	CHECK(azl_manifest_parse("long.yaml", b.data, b.len, &m, &err) < 0);
	CHECK_CONTAINS(err.msg, "long.yaml:60004:5: key 'packages[60000]': "
		       "'p59999' is already listed at line 60003");

	azl_buf_reset(&b);
	azl_buf_adds(&b, "name: x\n");
	while (b.len <= (1u << 20))
		azl_buf_adds(&b, "# padding padding padding padding padding\n");
	path = write_tmp("big.yaml", b.data);
	CHECK(azl_manifest_load(path, &m, &err) < 0);
	CHECK(err.kind == AZL_ERR_INPUT);
	CHECK_CONTAINS(err.msg, "big.yaml");
	free(path);
	azl_buf_release(&b);
}

/* Merge keys are just unknown keys; repo ids compare exactly. */
static void test_misc_yaml(void)
{
	struct azl_manifest *m = NULL;
	struct azl_err err = { 0 };

	m = load_text("name: x\n<<: {arch: x86_64}\n", &err);
	CHECK(m == NULL);
	CHECK_CONTAINS(err.msg, "m.yaml:2:1: key '<<': unknown key");
	m = load_text("name: x\nrepos:\n  - {id: a, baseurl: \"http://h\", gpgcheck: false}\n"
		      "  - {id: A, baseurl: \"http://h\", gpgcheck: false}\n"
		      "  - {id: a, baseurl: \"http://h\", gpgcheck: false}\n"
		      "packages: [a]\n", &err);
	CHECK(m == NULL);
	CHECK_CONTAINS(err.msg, "m.yaml:5:10: key 'repos[2].id': repo id 'a' is "
		       "already used by repos[0] (line 3)");
	m = load_text("name: x\nrepos:\n  - {id: a, baseurl: \"http://h\", gpgcheck: false}\n"
		      "packages: [a]\n...\n", &err);
	CHECK(m != NULL); /* an explicit document end is fine */
	azl_manifest_free(m);
}

/* Every prefix and many single-byte mutations of a valid manifest: the
 * loader returns success or an input error naming the file, never crashes
 * (run under `make check-asan` to also catch leaks and overreads). */
static void test_crash_sweep(void)
{
	static const char mutations[] = ":-[]{}\"'&*!#|>\n\t \\,?%@`\xff\x01";
	const char *src = "tests/fixtures/manifests/full.yaml";
	char *data = NULL, *copy;
	size_t len = 0, ok = 0, bad = 0;
	struct azl_err err = { 0 };

	if (azl_read_file(src, 0, &data, &len, &err)) {
		CHECK(!"read full.yaml");
		return;
	}
	copy = malloc(len + 1);
	for (size_t cut = 0; cut <= len; cut++) {
		struct azl_manifest *m = NULL;
		int r = azl_manifest_parse("cut.yaml", data, cut, &m, &err);
		r == 0 ? ok++ : bad++;
		if (r < 0 && (err.kind != AZL_ERR_INPUT ||
			      strncmp(err.msg, "cut.yaml:", 9)))
			CHECK(!"truncated manifest: not an input error");
		azl_manifest_free(m);
	}
	for (size_t pos = 0; pos < len; pos++) {
		for (const char *c = mutations; *c; c++) {
			struct azl_manifest *m = NULL;
			memcpy(copy, data, len);
			copy[pos] = *c;
			int r = azl_manifest_parse("mut.yaml", copy, len, &m, &err);
			r == 0 ? ok++ : bad++;
			if (r < 0 && (err.kind != AZL_ERR_INPUT ||
				      strncmp(err.msg, "mut.yaml:", 9)))
				CHECK(!"mutated manifest: not an input error");
			azl_manifest_free(m);
		}
	}
	/* the full file parses; most damage is caught */
	CHECK(ok > 0 && bad > ok);
	free(copy);
	free(data);
}

int main(void)
{
	char tmpl[] = "/tmp/azl-test-manifest-XXXXXX";

	if (!mkdtemp(tmpl) || !realpath(tmpl, tmpdir))
		return 1;
	test_full();
	test_defaults();
	test_reference();
	test_errors();
	test_error_order();
	test_gpgkey_and_baseurl();
	test_relative_path();
	test_lock_path();
	test_unreadable();
	test_crlf_bom();
	test_limits();
	test_misc_yaml();
	test_crash_sweep();
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return t_done();
}
