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
	/* the build-stage example stays loadable */
	m = NULL;
	CHECK(azl_manifest_load("examples/container/container.yaml", &m, &err) == 0);
	if (!m)
		fprintf(stderr, "container example: %s\n", err.msg);
	CHECK(m && m->oci && m->customize.nusers == 2 && m->customize.nenable == 1);
	azl_manifest_free(m);
	m = NULL;
	CHECK(azl_manifest_load("examples/vhd/vhd.yaml", &m, &err) == 0);
	if (!m)
		fprintf(stderr, "vhd example: %s\n", err.msg);
	CHECK(m && m->vhd && m->kernel && m->vhd->size == 1ull << 30);
	azl_manifest_free(m);
	m = NULL;
	CHECK(azl_manifest_load("examples/flatcar/flatcar.yaml", &m, &err) == 0);
	if (!m)
		fprintf(stderr, "flatcar example: %s\n", err.msg);
	CHECK(m && m->flatcar && m->flatcar->usr_size == 512ull << 20 &&
	      m->flatcar->raw && !m->flatcar->bios_boot && m->flatcar->root_size == 0 &&
	      m->flatcar->oem_size == 128ull << 20);
	azl_manifest_free(m);
	m = NULL;
	/* Defaults, and a bad value naming its key. */
	CHECK(azl_manifest_parse("/tmp/d.yaml", "name: d\nrepos: [{id: r, baseurl: \"file:///x/\", gpgcheck: false}]\npackages: [a]\noutputs: {flatcar: {}}\n",
				 strlen("name: d\nrepos: [{id: r, baseurl: \"file:///x/\", gpgcheck: false}]\npackages: [a]\noutputs: {flatcar: {}}\n"), &m, &err) == 0);
	CHECK(m && m->flatcar && m->flatcar->usr_size == 1ull << 30 && m->flatcar->raw &&
	      m->flatcar->esp_size == 128ull << 20 && !m->flatcar->systemd_boot);
	azl_manifest_free(m);
	m = NULL;
	const char *bad = "name: d\nrepos: [{id: r, baseurl: \"file:///x/\", gpgcheck: false}]\npackages: [a]\noutputs: {flatcar: {usr_size: 1GB}}\n";
	CHECK(azl_manifest_parse("/tmp/d.yaml", bad, strlen(bad), &m, &err) < 0);
	CHECK_CONTAINS(err.msg, "key 'outputs.flatcar.usr_size': bad size '1GB'");
}

static void check_build_users(const struct azl_customize *c)
{
	const struct azl_cust_user *u = c->users;

	CHECK(c->nusers == 2);
	if (c->nusers != 2)
		return;
	CHECK_STR(u[0].name, "alice");
	CHECK(u[0].uid == 1000);
	CHECK_STR(u[0].group, "staff");
	CHECK(u[0].ngroups == 2);
	CHECK_STR(u[0].groups[1], "ops");
	CHECK_STR(u[0].home, "/srv/home/alice");
	CHECK_STR(u[0].shell, "/bin/zsh");
	CHECK_STR(u[0].password, "$6$salt$hashhashhash");
	CHECK_STR(u[0].gecos, "Alice Example");
	CHECK(!u[0].system && !u[0].create_home && u[0].create_home_set);
	/* absent uid: allocate; system users get no home by default */
	CHECK_STR(u[1].name, "svc_1$");
	CHECK(u[1].uid == -1 && u[1].system && !u[1].create_home);
	CHECK(u[1].group == NULL && u[1].home == NULL && u[1].password == NULL);
	CHECK(c->ngroups == 2);
	if (c->ngroups != 2)
		return;
	CHECK(c->groups[0].gid == 1500 && c->groups[0].system);
	CHECK(c->groups[0].nmembers == 2);
	CHECK_STR(c->groups[0].members[1], "bob");
	CHECK(c->groups[1].gid == -1 && !c->groups[1].system);
}

static void check_build_files(const struct azl_customize *c, const char *dir)
{
	char want[PATH_MAX + 64];

	CHECK(c->nfiles == 3 && c->ndirs == 2 && c->nsymlinks == 1);
	if (c->nfiles != 3 || c->ndirs != 2 || c->nsymlinks != 1)
		return;
	CHECK_STR(c->files[0].content, "hello\n");
	CHECK(c->files[0].content_len == 6 && c->files[0].source == NULL);
	CHECK(c->files[0].mode == 0600 && c->files[0].mode_set);
	CHECK_STR(c->files[0].owner, "alice");
	CHECK_STR(c->files[0].group, "1500");
	/* source resolved against the manifest's folder; an unquoted 0444 is
	 * octal too */
	snprintf(want, sizeof(want), "%s/files/motd", dir);
	CHECK_STR(c->files[1].source, want);
	CHECK(c->files[1].content == NULL && c->files[1].mode == 0444);
	CHECK_STR(c->files[1].owner, "root");
	CHECK_STR(c->files[1].group, "root");
	CHECK(c->files[2].content && c->files[2].content_len == 0);
	CHECK(c->files[2].mode == 0644);
	CHECK(c->dirs[0].mode == 02750 && c->dirs[0].mode_set);
	CHECK_STR(c->dirs[0].owner, "1000");
	CHECK(c->dirs[1].mode == 0755);
	CHECK_STR(c->dirs[1].group, "root");
	CHECK_STR(c->symlinks[0].path, "/usr/bin/vi");
	CHECK_STR(c->symlinks[0].target, "vim");
}

static void check_build_system(const struct azl_customize *c)
{
	CHECK(c->nenable == 2 && c->ndisable == 1);
	if (c->nenable == 2 && c->ndisable == 1) {
		CHECK_STR(c->enable[1], "getty@tty1.service");
		CHECK_STR(c->disable[0], "kdump.service");
	}
	CHECK_STR(c->hostname, "azl-test.example");
	/* os-release keeps file order; an integer is kept as written */
	CHECK(c->nos_release == 2);
	if (c->nos_release == 2) {
		CHECK_STR(c->os_release[0].key, "VERSION_ID");
		CHECK_STR(c->os_release[0].value, "3");
		CHECK_STR(c->os_release[1].value, "container");
	}
}

static void check_build_oci(const struct azl_manifest_oci *o)
{
	CHECK(o != NULL);
	if (!o)
		return;
	CHECK(o->compression == AZL_COMP_ZSTD && o->level == 19);
	CHECK(o->nentrypoint == 1 && o->ncmd == 2 && o->nenv == 2);
	if (o->ncmd == 2)
		CHECK_STR(o->cmd[1], "echo hi");
	if (o->nenv == 2)
		CHECK_STR(o->env[1], "EMPTY=");
	CHECK_STR(o->workdir, "/srv");
	CHECK_STR(o->user, "1000:1500");
	/* labels sorted by key */
	CHECK(o->nlabels == 3);
	if (o->nlabels == 3) {
		CHECK_STR(o->labels[0].key, "build");
		CHECK_STR(o->labels[0].value, "7");
		CHECK_STR(o->labels[1].key, "org.opencontainers.image.authors");
		CHECK_STR(o->labels[2].value, "minimal");
	}
	/* a bare port number is tcp */
	CHECK(o->nexposed_ports == 3);
	if (o->nexposed_ports == 3) {
		CHECK_STR(o->exposed_ports[1], "53/udp");
		CHECK_STR(o->exposed_ports[2], "8080/tcp");
	}
}

/* Every build-stage key set to something other than its default. */
static void test_build_keys(void)
{
	struct azl_manifest *m = NULL;
	struct azl_err err = { 0 };
	char dir[PATH_MAX];

	CHECK(azl_manifest_load("tests/fixtures/manifests/build.yaml", &m, &err) == 0);
	if (!m) {
		fprintf(stderr, "build.yaml: %s\n", err.msg);
		return;
	}
	CHECK(realpath("tests/fixtures/manifests", dir) != NULL);
	CHECK_STR(m->seed, "fixed seed for tests");
	CHECK(m->scriptlets_skip && m->scriptlet_timeout == 45);
	check_build_users(&m->customize);
	check_build_files(&m->customize, dir);
	check_build_system(&m->customize);
	check_build_oci(m->oci);
	azl_manifest_free(m);
}

/* Absent build keys: nothing to customise, no output (lock and fetch
 * manifests have none), scriptlets run with the default timeout. */
static void test_build_defaults(void)
{
	static const struct azl_customize none = { 0 };
	struct azl_manifest *m = NULL;
	struct azl_err err = { 0 };

	CHECK(azl_manifest_load("tests/fixtures/manifests/minimal.yml", &m, &err) == 0);
	if (!m)
		return;
	CHECK(m->seed == NULL && !m->scriptlets_skip && m->scriptlet_timeout == 0);
	CHECK(!memcmp(&m->customize, &none, sizeof(none)));
	CHECK(m->oci == NULL);
	azl_manifest_free(m);
}

/* oci: with no value, {} and a user without optional keys. */
static void test_oci_and_user_defaults(void)
{
	static const char *const texts[] = {
		"name: x\nrepos: [{id: a, baseurl: \"http://h\", gpgcheck: false}]\n"
		"packages: [a]\noutputs:\n  oci:\nusers: [{name: bob}]\n",
		"name: x\nrepos: [{id: a, baseurl: \"http://h\", gpgcheck: false}]\n"
		"packages: [a]\noutputs: {oci: {}}\nusers: [{name: bob}]\n",
	};
	for (size_t i = 0; i < 2; i++) {
		struct azl_err err = { 0 };
		struct azl_manifest *m = load_text(texts[i], &err);
		CHECK(m && m->oci);
		if (!m || !m->oci) {
			fprintf(stderr, "oci defaults %zu: %s\n", i, err.msg);
			azl_manifest_free(m);
			continue;
		}
		CHECK(m->oci->compression == AZL_COMP_GZIP && m->oci->level == 0);
		CHECK(m->oci->nentrypoint == 0 && m->oci->nlabels == 0);
		CHECK(m->oci->workdir == NULL && m->oci->user == NULL);
		CHECK(m->customize.nusers == 1);
		CHECK(m->customize.users[0].uid == -1);
		CHECK(m->customize.users[0].create_home);
		CHECK(!m->customize.users[0].system);
		azl_manifest_free(m);
	}
}

/* outputs.vhd and kernel: values, defaults, relative paths. */
static void test_vhd_keys(void)
{
	struct azl_err err = { 0 };
	struct azl_manifest *m = load_text(
		"name: x\nrepos: [{id: a, baseurl: \"http://h\", gpgcheck: false}]\n"
		"packages: [a]\nkernel:\n  cmdline: \"console=ttyS0 quiet\"\n"
		"  initrd: boot/initrd.img\n  stub: /opt/linuxx64.efi.stub\n"
		"outputs:\n  vhd:\n    size: 4G\n    format: raw\n"
		"    bootloader: systemd-boot\n    esp_size: 128MiB\n    boot_size: 256MiB\n", &err);
	char want[PATH_MAX + 32];

	CHECK(m && m->vhd && m->kernel);
	if (!m || !m->vhd || !m->kernel) {
		fprintf(stderr, "vhd keys: %s\n", err.msg);
		azl_manifest_free(m);
		return;
	}
	CHECK(m->vhd->size == 4ull << 30 && m->vhd->raw && m->vhd->systemd_boot);
	CHECK(m->vhd->esp_size == 128ull << 20);
	CHECK(m->vhd->boot_size == 256ull << 20);
	CHECK(m->oci == NULL);
	CHECK_STR(m->kernel->cmdline, "console=ttyS0 quiet");
	snprintf(want, sizeof(want), "%s/boot/initrd.img", tmpdir);
	CHECK_STR(m->kernel->initrd, want);
	CHECK_STR(m->kernel->stub, "/opt/linuxx64.efi.stub");
	azl_manifest_free(m);

	m = load_text("name: x\nrepos: [{id: a, baseurl: \"http://h\", gpgcheck: false}]\n"
		      "packages: [a]\noutputs: {vhd: {size: 512MiB}}\n", &err);
	CHECK(m && m->vhd);
	if (m && m->vhd) {
		CHECK(m->vhd->size == 512ull << 20 && !m->vhd->raw && !m->vhd->systemd_boot);
		CHECK(m->vhd->esp_size == 64ull << 20);
		CHECK(m->vhd->boot_size == 0);
		CHECK(m->kernel == NULL);
	}
	azl_manifest_free(m);
}

struct bad {
	const char *yaml;
	const char *where; /* "LINE:COL: key 'KEY'" or "LINE:COL" */
	const char *what;  /* part of the message after it */
};

#define P "name: x\nrepos: [{id: a, baseurl: \"http://h\", gpgcheck: false}]\npackages: [a]\n"

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
	  "5:5: key 'repos[0].gpgchek'", "unknown key (known keys here: id, baseurl, gpgkey, gpgcheck, allow_setuid)" },
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
	/* build-stage keys (P: three valid lines, so these start at line 4) */
	{ P "seed: \"\"\n", "4:7: key 'seed'", "must not be empty" },
	{ P "scriptlets: yes\n", "4:13: key 'scriptlets'", "expected run or skip, got 'yes'" },
	{ P "scriptlets: [run]\n", "4:13: key 'scriptlets'", "expected run or skip, got a list" },
	{ P "scriptlet_timeout: 0\n", "4:20: key 'scriptlet_timeout'", "must be from 1 to 86400, got 0" },
	{ P "scriptlet_timeout: 86401\n", "4:20: key 'scriptlet_timeout'", "must be from 1 to 86400" },
	{ P "scriptlet_timeout: \"60\"\n", "4:20: key 'scriptlet_timeout'", "expected an integer, got a quoted string" },
	{ P "users: {name: a}\n", "4:8: key 'users'", "expected a list, got a mapping" },
	{ P "users:\n  - uid: 5\n", "5:5: key 'users[0].name'", "missing required key" },
	{ P "users: [{name: a, shel: /bin/sh}]\n", "4:19: key 'users[0].shel'",
	  "unknown key (known keys here: name, uid, group, groups, home, shell, password, gecos, system, create_home)" },
	{ P "users: [{name: Alice}]\n", "4:16: key 'users[0].name'", "invalid user or group name 'Alice'" },
	{ P "users: [{name: 1a}]\n", "4:16: key 'users[0].name'", "starting with a letter or '_'" },
	{ P "users: [{name: a$b}]\n", "4:16: key 'users[0].name'", "invalid user or group name 'a$b'" },
	{ P "users: [{name: abcdefghijklmnopqrstuvwxyz0123456}]\n", "4:16: key 'users[0].name'",
	  "name longer than 32 characters" },
	{ P "users: [{name: a, uid: -1}]\n", "4:24: key 'users[0].uid'", "must be >= 0" },
	{ P "users: [{name: a, uid: 4294967295}]\n", "4:24: key 'users[0].uid'", "id out of range (0 to 4294967294)" },
	{ P "users: [{name: a, groups: wheel}]\n", "4:27: key 'users[0].groups'", "expected a list" },
	{ P "users: [{name: a, groups: [Wheel]}]\n", "4:28: key 'users[0].groups[0]'", "invalid user or group name" },
	{ P "users: [{name: a, home: home/a}]\n", "4:25: key 'users[0].home'", "must be an absolute path" },
	{ P "users: [{name: a, home: \"/a:b\"}]\n", "4:25: key 'users[0].home'", "must not contain ':'" },
	{ P "users: [{name: a, shell: /bin/../sh}]\n", "4:26: key 'users[0].shell'", "is not normalised" },
	{ P "users: [{name: a, password: hunter2}]\n", "4:29: key 'users[0].password'",
	  "not a crypt(3) hash" },
	{ P "users: [{name: a, password: \"$6$a b\"}]\n", "4:29: key 'users[0].password'",
	  "no ':', spaces or control characters" },
	{ P "users: [{name: a, gecos: \"a:b\"}]\n", "4:26: key 'users[0].gecos'", "must not contain ':'" },
	{ P "users: [{name: a, create_home: yes}]\n", "4:32: key 'users[0].create_home'", "expected true or false" },
	{ P "users: [{name: a}, {name: b}, {name: a}]\n", "4:38: key 'users[2].name'",
	  "'a' is already given by users[0] (line 4)" },
	{ P "groups: [{name: ops, gid: 1.5}]\n", "4:27: key 'groups[0].gid'", "expected a decimal integer" },
	{ P "groups: [{name: ops, members: [a, B]}]\n", "4:35: key 'groups[0].members[1]'", "invalid user or group name 'B'" },
	{ P "groups: [{name: ops}, {name: ops}]\n", "4:30: key 'groups[1].name'", "'ops' is already given by groups[0]" },
	{ P "groups: [{gid: 5}]\n", "4:10: key 'groups[0].name'", "missing required key" },
	{ P "files: [{path: /etc/x}]\n", "4:9: key 'files[0]'", "missing content (the file's text) or source" },
	{ P "files: [{path: /etc/x, content: a, source: b}]\n", "4:44: key 'files[0].source'",
	  "give either content or source, not both" },
	{ P "files: [{content: a}]\n", "4:9: key 'files[0].path'", "missing required key" },
	{ P "files: [{path: etc/x, content: a}]\n", "4:16: key 'files[0].path'", "'etc/x' must be an absolute path" },
	{ P "files: [{path: /, content: a}]\n", "4:16: key 'files[0].path'", "must not be '/' itself" },
	{ P "files: [{path: /etc//x, content: a}]\n", "4:16: key 'files[0].path'", "is not normalised" },
	{ P "files: [{path: /etc/./x, content: a}]\n", "4:16: key 'files[0].path'", "is not normalised" },
	{ P "files: [{path: /etc/x/, content: a}]\n", "4:16: key 'files[0].path'", "is not normalised" },
	{ P "files: [{path: \"/etc/a\\tb\", content: a}]\n", "4:16: key 'files[0].path'", "control characters" },
	{ P "files:\n  - path: /etc/x\n    content:\n", "6:13: key 'files[0].content'", "expected a string, got no value" },
	{ P "files: [{path: /etc/x, content: a, mode: 0o644}]\n", "4:42: key 'files[0].mode'",
	  "invalid mode '0o644': expected 3 or 4 octal digits" },
	{ P "files: [{path: /etc/x, content: a, mode: \"0849\"}]\n", "4:42: key 'files[0].mode'", "invalid mode '0849'" },
	{ P "files: [{path: /etc/x, content: a, mode: 10644}]\n", "4:42: key 'files[0].mode'", "invalid mode '10644'" },
	{ P "files: [{path: /etc/x, content: a, mode: 64}]\n", "4:42: key 'files[0].mode'", "invalid mode '64'" },
	{ P "files: [{path: /etc/x, content: a, mode: [1]}]\n", "4:42: key 'files[0].mode'",
	  "expected an octal mode like \"0644\", got a list" },
	{ P "files: [{path: /etc/x, content: a, owner: Bob}]\n", "4:43: key 'files[0].owner'", "invalid user or group name 'Bob'" },
	{ P "files: [{path: /etc/x, content: a, group: 007}]\n", "4:43: key 'files[0].group'", "invalid id '007'" },
	{ P "files: [{path: /etc/x, content: a, owner: 4294967295}]\n", "4:43: key 'files[0].owner'", "invalid id '4294967295'" },
	{ P "files: [{path: /etc/x, content: a}, {path: /etc/x, source: b}]\n", "4:44: key 'files[1].path'",
	  "'/etc/x' is already given by files[0] (line 4)" },
	{ P "directories: [{path: /srv/x}]\nsymlinks: [{path: /a, target: b}, {path: /srv/x, target: y}]\n",
	  "5:42: key 'symlinks[1].path'", "'/srv/x' is already given by directories[0] (line 4)" },
	{ P "files: [{path: /a, content: x}]\ndirectories: [{path: /a}]\n",
	  "4:16: key 'files[0].path'", "'/a' is already given by directories[0] (line 5)" },
	{ P "directories: [{path: /srv, mode: \"755 \"}]\n", "4:34: key 'directories[0].mode'", "invalid mode" },
	{ P "directories: [{path: /srv, content: a}]\n", "4:28: key 'directories[0].content'",
	  "unknown key (known keys here: path, mode, owner, group)" },
	{ P "symlinks: [{path: /usr/bin/vi}]\n", "4:12: key 'symlinks[0].target'", "missing required key" },
	{ P "symlinks: [{path: /usr/bin/vi, target: \"\"}]\n", "4:40: key 'symlinks[0].target'", "must not be empty" },
	{ P "services: [sshd.service]\n", "4:11: key 'services'", "expected a mapping of keys, got a list" },
	{ P "services: {start: []}\n", "4:12: key 'services.start'", "unknown key (known keys here: enable, disable)" },
	{ P "services: {enable: [sshd]}\n", "4:21: key 'services.enable[0]'", "'sshd' has no unit type suffix" },
	{ P "services: {enable: [\"a b.service\"]}\n", "4:21: key 'services.enable[0]'", "invalid unit name 'a b.service'" },
	{ P "services: {enable: [a.service, a.service]}\n", "4:32: key 'services.enable[1]'",
	  "'a.service' is already given by services.enable[0]" },
	{ P "services: {enable: [a.service], disable: [b.service, a.service]}\n", "4:54: key 'services.disable[1]'",
	  "'a.service' is also in services.enable" },
	{ P "hostname: -azl\n", "4:11: key 'hostname'", "invalid hostname '-azl'" },
	{ P "hostname: azl.\n", "4:11: key 'hostname'", "invalid hostname 'azl.'" },
	{ P "hostname: a_b\n", "4:11: key 'hostname'", "invalid hostname 'a_b'" },
	{ P "hostname: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", "4:11: key 'hostname'",
	  "invalid hostname 'aaaaaaaaaaaaaaaaaa" }, /* a 64-character label */
	{ P "hostname: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", "4:11: key 'hostname'",
	  "hostname longer than 64 characters" },
	{ P "os_release: [ID]\n", "4:13: key 'os_release'", "expected a mapping of KEY: value, got a list" },
	{ P "os_release: {variant_id: x}\n", "4:14: key 'os_release.variant_id'", "invalid os-release field 'variant_id'" },
	{ P "os_release: {A: x, A: y}\n", "4:20: key 'os_release.A'", "duplicate key (first at line 4:14)" },
	{ P "os_release: {A: [x]}\n", "4:17: key 'os_release.A'", "expected a string, got a list" },
	{ P "os_release: {A: \"x\\ny\"}\n", "4:17: key 'os_release.A'", "control characters" },
	{ P "outputs:\n", "4:9: key 'outputs'", "expected a mapping of keys, got no value (null)" },
	{ P "outputs: {}\n", "4:10: key 'outputs'", "names no output (known outputs: oci, vhd, flatcar;" },
	{ P "outputs: {iso: {}}\n", "4:11: key 'outputs.iso'", "unknown key (known keys here: oci, vhd, flatcar)" },
	{ P "outputs: {vhd: {}}\n", "4:16: key 'outputs.vhd.size'", "missing" },
	{ P "outputs: {vhd: {size: 4GB}}\n", "4:23: key 'outputs.vhd.size'", "bad size '4GB'" },
	{ P "outputs: {vhd: {size: 4.5GiB}}\n", "4:23: key 'outputs.vhd.size'", "bad size '4.5GiB'" },
	{ P "outputs: {vhd: {size: 1000KiB}}\n", "4:23: key 'outputs.vhd.size'", "must be a positive whole number of MiB" },
	{ P "outputs: {vhd: {size: 0}}\n", "4:23: key 'outputs.vhd.size'", "must be a positive whole number of MiB" },
	{ P "outputs: {vhd: {size: [4GiB]}}\n", "4:23: key 'outputs.vhd.size'", "expected a size like 4GiB, got a list" },
	{ P "outputs: {vhd: {size: 4GiB, format: qcow2}}\n", "4:37: key 'outputs.vhd.format'", "expected vhd or raw, got 'qcow2'" },
	{ P "outputs: {vhd: {size: 4GiB, bootloader: grub}}\n", "4:41: key 'outputs.vhd.bootloader'",
	  "expected uki or systemd-boot, got 'grub'" },
	{ P "outputs: {vhd: {size: 4GiB, esp_size: 64MB}}\n", "4:39: key 'outputs.vhd.esp_size'", "bad size '64MB'" },
	{ P "outputs: {vhd: {size: 4GiB, boot_size: 1000KiB}}\n", "4:40: key 'outputs.vhd.boot_size'", "whole number of MiB" },
	{ P "kernel: {cmdline: \"root=/dev/sda\"}\n", "4:19: key 'kernel.cmdline'", "root= is added by the build" },
	{ P "kernel: {cmdline: \"a\\nb\"}\n", "4:19: key 'kernel.cmdline'", "control characters" },
	{ P "kernel: {initrd: [a]}\n", "4:18: key 'kernel.initrd'", "expected a string, got a list" },
	{ P "kernel: {bogus: 1}\n", "4:10: key 'kernel.bogus'", "unknown key (known keys here: cmdline, initrd, stub)" },
	{ P "outputs: {oci: [a]}\n", "4:16: key 'outputs.oci'", "expected a mapping of keys, got a list" },
	{ P "outputs: {oci: {compression: xz}}\n", "4:30: key 'outputs.oci.compression'", "expected gzip or zstd, got 'xz'" },
	{ P "outputs: {oci: {compression_level: 12}}\n", "4:36: key 'outputs.oci.compression_level'",
	  "gzip levels go from 1 to 9, got 12" },
	{ P "outputs: {oci: {compression_level: 0, compression: zstd}}\n", "4:36: key 'outputs.oci.compression_level'",
	  "must be from 1 to 19, got 0" },
	{ P "outputs: {oci: {entrypoint: /bin/sh}}\n", "4:29: key 'outputs.oci.entrypoint'",
	  "expected a list, got a string (write [item] for a single item)" },
	{ P "outputs: {oci: {env: [PATH]}}\n", "4:23: key 'outputs.oci.env[0]'", "'PATH' is not NAME=value" },
	{ P "outputs: {oci: {env: [=x]}}\n", "4:23: key 'outputs.oci.env[0]'", "'=x' is not NAME=value" },
	{ P "outputs: {oci: {workdir: srv}}\n", "4:26: key 'outputs.oci.workdir'", "must be an absolute path" },
	{ P "outputs: {oci: {labels: {a: [b]}}}\n", "4:29: key 'outputs.oci.labels.a'", "expected a string, got a list" },
	{ P "outputs: {oci: {labels: {a: b, a: c}}}\n", "4:32: key 'outputs.oci.labels.a'", "duplicate key (first at line 4:26)" },
	{ P "outputs: {oci: {exposed_ports: [80/sctp]}}\n", "4:33: key 'outputs.oci.exposed_ports[0]'",
	  "invalid port '80/sctp'" },
	{ P "outputs: {oci: {exposed_ports: [65536]}}\n", "4:33: key 'outputs.oci.exposed_ports[0]'", "invalid port '65536'" },
	{ P "outputs: {oci: {exposed_ports: [\"080\"]}}\n", "4:33: key 'outputs.oci.exposed_ports[0]'", "invalid port '080'" },
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
static void test_crash_sweep(const char *src)
{
	static const char mutations[] = ":-[]{}\"'&*!#|>\n\t \\,?%@`\xff\x01";
	char *data = NULL, *copy;
	size_t len = 0, ok = 0, bad = 0;
	struct azl_err err = { 0 };

	if (azl_read_file(src, 0, &data, &len, &err)) {
		CHECK(!"read the sweep's manifest");
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
	test_build_keys();
	test_build_defaults();
	test_oci_and_user_defaults();
	test_vhd_keys();
	test_errors();
	test_error_order();
	test_gpgkey_and_baseurl();
	test_relative_path();
	test_lock_path();
	test_unreadable();
	test_crlf_bom();
	test_limits();
	test_misc_yaml();
	test_crash_sweep("tests/fixtures/manifests/full.yaml");
	test_crash_sweep("tests/fixtures/manifests/build.yaml");
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return t_done();
}
