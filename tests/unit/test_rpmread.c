/* rpmread: real distro packages (read in place), a package built here
 * with rpmbuild (zstd payload, hardlinks, caps, scriptlets, triggers),
 * and the %caps -> security.capability encoding against setcap(8). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <rpm/rpmds.h>
#include <rpm/rpmfiles.h>
#include <rpm/rpmpgp.h>

#include "base/buf.h"
#include "base/hash.h"
#include "compose/rpmread.h"
#include "t.h"

#define REAL "/work/shared/corpus/real"

static char tmp[] = "/tmp/azl-test-rpmread.XXXXXX";

static int exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

/* Stream the payload; every entry's digest (header algorithm) must match
 * the header.  Returns the number of entries read, -1 on any mismatch. */
static long payload_matches_header(const char *path)
{
	struct azl_err err = { 0 };
	struct azl_rpm *r;
	struct azl_payload *p;
	unsigned char buf[65536];
	size_t fx;
	uint64_t size;
	long n = 0;
	int rc;

	if (azl_rpm_open(path, &r, &err) < 0)
		return -1;
	if (azl_payload_open(r, &p, &err) < 0) {
		azl_rpm_close(r);
		return -1;
	}
	while ((rc = azl_payload_next(p, &fx, &size, &err)) > 0) {
		struct azl_rpm_file f;
		const EVP_MD *md;
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		unsigned char d[64];
		unsigned dl = 0;
		uint64_t total = 0;
		ssize_t got;

		azl_rpm_file(r, fx, &f);
		md = f.digest_algo == PGPHASHALGO_SHA256 ? EVP_sha256() :
		     f.digest_algo == PGPHASHALGO_MD5 ? EVP_md5() : NULL;
		EVP_DigestInit_ex(c, md ? md : EVP_sha256(), NULL);
		while ((got = azl_payload_read(p, buf, sizeof(buf), &err)) > 0) {
			EVP_DigestUpdate(c, buf, (size_t)got);
			total += (uint64_t)got;
		}
		EVP_DigestFinal_ex(c, d, &dl);
		EVP_MD_CTX_free(c);
		if (got < 0 || total != f.size || total != size ||
		    (md && (dl != f.digest_len || memcmp(d, f.digest, dl)))) {
			fprintf(stderr, "%s: %s: content differs from header\n",
				path, f.path);
			n = -1;
			break;
		}
		n++;
	}
	if (rc < 0)
		n = -1;
	azl_payload_close(p);
	azl_rpm_close(r);
	return n;
}

static void test_fedora(void)
{
	const char *pk = REAL "/fedora14/icedax-1.1.10-2.fc14.i686.rpm";
	struct azl_err err = { 0 };
	struct azl_rpm *r;
	struct azl_rpm_info info;
	const char *names[] = { "icedax", "imsettings", "info", "iok" };
	char path[512];

	if (!exists(pk)) {
		printf("skip: %s absent\n", pk);
		return;
	}
	CHECK(azl_rpm_open(pk, &r, &err) == 0);
	CHECK_STR(azl_rpm_nevra(r), "icedax-1.1.10-2.fc14.i686");
	CHECK(azl_rpm_nfiles(r) == 21);
	CHECK(azl_rpm_info(r, &info, &err) == 0);
	CHECK_STR(info.arch, "i686");
	CHECK(!info.has_epoch);
	azl_rpm_info_release(&info);
	for (size_t i = 0; i < azl_rpm_nfiles(r); i++) {
		struct azl_rpm_file f;
		azl_rpm_file(r, i, &f);
		CHECK(f.path[0] == '/');
		CHECK(f.user && f.group);
	}
	azl_rpm_close(r);
	/* xz payloads, every entry checked against the header digests. */
	for (size_t i = 0; i < 4; i++) {
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "ls %s/fedora14/%s-[0-9]*.rpm", REAL,
			 names[i]);
		FILE *ls = popen(cmd, "r");
		CHECK(ls && fgets(path, sizeof(path), ls));
		if (ls)
			pclose(ls);
		path[strcspn(path, "\n")] = '\0';
		CHECK(payload_matches_header(path) > 10);
	}
	/* info has a %post running /sbin/install-info. */
	snprintf(path, sizeof(path), "%s/fedora14/info-4.13a-10.fc14.i686.rpm", REAL);
	CHECK(azl_rpm_open(path, &r, &err) == 0);
	CHECK(azl_rpm_info(r, &info, &err) == 0);
	CHECK(info.postin.argv != NULL);
	CHECK_CONTAINS(info.postin.body, "install-info");
	azl_rpm_info_release(&info);
	azl_rpm_close(r);
}

static void test_createrepo_c(void)
{
	const char *d = REAL "/createrepo_c-testdata";
	struct azl_err err = { 0 };
	struct azl_rpm *r;
	struct azl_rpm_info info;
	struct azl_payload *p;
	size_t fx;
	uint64_t size;
	char path[512];

	snprintf(path, sizeof(path), "%s/empty-0-0.x86_64.rpm", d);
	if (!exists(path)) {
		printf("skip: %s absent\n", d);
		return;
	}
	/* An empty package: no files, an empty payload. */
	CHECK(azl_rpm_open(path, &r, &err) == 0);
	CHECK(azl_rpm_nfiles(r) == 0);
	CHECK(azl_payload_open(r, &p, &err) == 0);
	CHECK(azl_payload_next(p, &fx, &size, &err) == 0);
	azl_payload_close(p);
	/* A second payload pass on the same handle is refused. */
	CHECK(azl_payload_open(r, &p, &err) < 0);
	azl_rpm_close(r);

	snprintf(path, sizeof(path), "%s/empty-0-0.src.rpm", d);
	CHECK(azl_rpm_open(path, &r, &err) == 0);
	CHECK_STR(azl_rpm_nevra(r), "empty-0-0.src");
	azl_rpm_close(r);

	snprintf(path, sizeof(path), "%s/Archer-3.4.5-6.x86_64.rpm", d);
	CHECK(azl_rpm_open(path, &r, &err) == 0);
	CHECK_STR(azl_rpm_nevra(r), "Archer-2:3.4.5-6.x86_64");
	CHECK(azl_rpm_info(r, &info, &err) == 0);
	CHECK(info.has_epoch && info.epoch == 2);
	azl_rpm_info_release(&info);
	azl_rpm_close(r);

	const char *enc[] = { "iso88591", "iso88592", "utf8" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/balicek-%s-1.1.1-1.x86_64.rpm", d,
			 enc[i]);
		CHECK(azl_rpm_open(path, &r, &err) == 0);
		CHECK(azl_rpm_info(r, &info, &err) == 0);
		CHECK(!strncmp(info.name, "balicek-", 8));
		azl_rpm_info_release(&info);
		azl_rpm_close(r);
	}
	/* Signed packages open without a keyring (signatures are not ours
	 * to check here). */
	snprintf(path, sizeof(path), "%s/empty-signed-v6-multiple-0-0.x86_64.rpm", d);
	CHECK(azl_rpm_open(path, &r, &err) == 0);
	azl_rpm_close(r);

	snprintf(path, sizeof(path), "%s/fake_bash-1.1.1-1.x86_64.rpm", d);
	CHECK(payload_matches_header(path) >= 0);
}

static void test_not_rpm(void)
{
	struct azl_err err = { 0 };
	struct azl_rpm *r = NULL;
	char *p = azl_xasprintf("%s/junk.rpm", tmp);
	FILE *f = fopen(p, "w");

	fputs("this is not a package\n", f);
	fclose(f);
	CHECK(azl_rpm_open(p, &r, &err) < 0);
	CHECK(r == NULL);
	CHECK_CONTAINS(err.msg, p);
	CHECK(err.kind == AZL_ERR_INPUT);
	free(p);
}

static const char spec[] =
	"Name: trig\nVersion: 1\nRelease: 1\nSummary: t\nLicense: MIT\n"
	"BuildArch: noarch\n%description\nt\n%install\n"
	"mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/share/t %{buildroot}/etc %{buildroot}/var/log\n"
	"printf 'hello\\n' > %{buildroot}/usr/share/t/a\n"
	"ln %{buildroot}/usr/share/t/a %{buildroot}/usr/share/t/b\n"
	"printf '#!/bin/sh\\n' > %{buildroot}/usr/bin/capped\n"
	"echo conf > %{buildroot}/etc/t.conf\n"
	"touch %{buildroot}/var/log/t.log\n"
	"%pretrans -p <lua>\nprint(\"x\")\n"
	"%pre\necho pre\n"
	"%post -p /sbin/ldconfig\n"
	"%posttrans\necho posttrans\n"
	"%filetriggerin -- /usr/lib /usr/lib64\necho trig\n"
	"%transfiletriggerin -P 1234 -- /usr/share\necho tt\n"
	"%triggerin -- bash\necho bash-trig\n"
	"%files\n/usr/share/t\n"
	"%caps(cap_net_raw,cap_checkpoint_restore=ep) %attr(0755,root,root) /usr/bin/capped\n"
	"%config(noreplace) /etc/t.conf\n%ghost /var/log/t.log\n";

/* Build the spec above with a zstd payload; NULL when rpmbuild fails. */
static char *build_rpm(void)
{
	char *specpath = azl_xasprintf("%s/t.spec", tmp);
	char *cmd, *out = azl_xasprintf("%s/out/noarch/trig-1-1.noarch.rpm", tmp);
	FILE *f = fopen(specpath, "w");

	fputs(spec, f);
	fclose(f);
	cmd = azl_xasprintf("HOME=%s rpmbuild -bb --quiet --define '_topdir %s/top' "
			    "--define '_rpmdir %s/out' --define '_binary_payload w19.zstdio' "
			    "--define '_build_id_links none' --define 'debug_package %%{nil}' "
			    "--define '__os_install_post %%{nil}' %s >%s/build.log 2>&1",
			    tmp, tmp, tmp, specpath, tmp);
	if (system(cmd) != 0 || !exists(out)) {
		free(out);
		out = NULL;
	}
	free(cmd);
	free(specpath);
	return out;
}

static const struct azl_trigger *find_trigger(const struct azl_rpm_info *i,
					      enum azl_trigger_kind k)
{
	for (size_t j = 0; j < i->ntriggers; j++)
		if (i->triggers[j].kind == k)
			return &i->triggers[j];
	return NULL;
}

static void test_built(void)
{
	struct azl_err err = { 0 };
	struct azl_rpm *r;
	struct azl_rpm_info info;
	const struct azl_trigger *t;
	char *pk = build_rpm();
	int seen_a = -1, seen_b = -1, seen_caps = 0, seen_ghost = 0;

	if (!pk) {
		printf("skip: rpmbuild failed (see %s/build.log)\n", tmp);
		return;
	}
	CHECK(azl_rpm_open(pk, &r, &err) == 0);
	CHECK_STR(azl_rpm_nevra(r), "trig-1-1.noarch");
	for (size_t i = 0; i < azl_rpm_nfiles(r); i++) {
		struct azl_rpm_file f;
		const int *fxs;
		azl_rpm_file(r, i, &f);
		if (!strcmp(f.path, "/usr/share/t/a"))
			seen_a = (int)i;
		if (!strcmp(f.path, "/usr/share/t/b")) {
			seen_b = (int)i;
			CHECK(azl_rpm_hardlinks(r, i, &fxs) == 2);
		}
		if (!strcmp(f.path, "/usr/bin/capped")) {
			seen_caps = f.caps && strstr(f.caps, "cap_net_raw");
			CHECK((f.mode & 07777) == 0755);
		}
		if (!strcmp(f.path, "/var/log/t.log"))
			seen_ghost = (f.flags & RPMFILE_GHOST) != 0;
		if (!strcmp(f.path, "/etc/t.conf"))
			CHECK((f.flags & (RPMFILE_CONFIG | RPMFILE_NOREPLACE)) ==
			      (RPMFILE_CONFIG | RPMFILE_NOREPLACE));
	}
	CHECK(seen_a >= 0 && seen_b >= 0);
	CHECK(seen_caps);
	CHECK(seen_ghost);

	CHECK(azl_rpm_info(r, &info, &err) == 0);
	CHECK(info.pretrans.argv && !strcmp(info.pretrans.argv[0], "<lua>"));
	CHECK_CONTAINS(info.prein.body, "echo pre");
	CHECK(info.postin.argv && !strcmp(info.postin.argv[0], "/sbin/ldconfig"));
	CHECK(info.postin.body == NULL);
	CHECK_CONTAINS(info.posttrans.body, "posttrans");
	t = find_trigger(&info, AZL_TRIG_FILE);
	CHECK(t && t->conds[0] && t->conds[1] && !t->conds[2]);
	CHECK(t && !strcmp(t->conds[0], "/usr/lib") && (t->sense & RPMSENSE_TRIGGERIN));
	t = find_trigger(&info, AZL_TRIG_TRANSFILE);
	CHECK(t && t->priority == 1234 && !strcmp(t->conds[0], "/usr/share"));
	CHECK(t && t->script.body && strstr(t->script.body, "echo tt"));
	t = find_trigger(&info, AZL_TRIG_PACKAGE);
	CHECK(t && !strcmp(t->conds[0], "bash"));
	azl_rpm_info_release(&info);
	azl_rpm_close(r);

	/* zstd payload: hardlinked content arrives once, digests match. */
	CHECK(payload_matches_header(pk) == 3); /* a|b once, capped, t.conf */
	free(pk);
}

/* Our encoding must equal what setcap writes (needs root and a
 * filesystem with security xattrs; skipped otherwise). */
static void test_caps(void)
{
	const char *texts[] = {
		"cap_net_bind_service=ep",
		"cap_net_raw,cap_checkpoint_restore=ep",
		"cap_chown,cap_setuid+ip",
		"cap_sys_admin=p cap_kill+i",
	};
	struct azl_err err = { 0 };
	unsigned char mine[20], theirs[64];
	char *f = azl_xasprintf("%s/capfile", tmp);
	FILE *fp = fopen(f, "w");

	fclose(fp);
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		char *cmd = azl_xasprintf("setcap '%s' %s 2>/dev/null", texts[i], f);
		int ok = system(cmd) == 0;
		free(cmd);
		CHECK(azl_caps_to_xattr(texts[i], mine, &err) == 0);
		if (!ok) {
			printf("skip: setcap unavailable here; encoding not compared\n");
			continue;
		}
		ssize_t n = getxattr(f, "security.capability", theirs, sizeof(theirs));
		CHECK(n == 20);
		CHECK(n == 20 && !memcmp(mine, theirs, 20));
	}
	/* Spot-check the layout independently of setcap. */
	CHECK(azl_caps_to_xattr("cap_net_bind_service=ep", mine, &err) == 0);
	CHECK(mine[0] == 1 && mine[3] == 2);      /* effective flag, revision 2 */
	CHECK(mine[4 + 1] == 0x04);                /* bit 10 in permitted[0] */
	CHECK(azl_caps_to_xattr("cap_checkpoint_restore+p", mine, &err) == 0);
	CHECK(mine[0] == 0 && mine[12 + 1] == 0x01); /* bit 40: permitted[1] bit 8 */
	CHECK(azl_caps_to_xattr("cap_no_such_thing=ep", mine, &err) < 0);
	CHECK_CONTAINS(err.msg, "cap_no_such_thing");
	free(f);
}

/* ---- hostile packages (tests/lib/rpmcraft.py) ---- */

/* Craft tmp/NAME.rpm from a JSON spec; NULL when python3 fails. */
static char *craft(const char *name, const char *json)
{
	char *out = azl_xasprintf("%s/%s.rpm", tmp, name);
	char *js = azl_xasprintf("%s/%s.json", tmp, name);
	char *cmd = azl_xasprintf("python3 tests/lib/rpmcraft.py %s %s", js, out);
	FILE *f = fopen(js, "w");
	int ok = f && fputs(json, f) >= 0;

	if (f)
		fclose(f);
	ok = ok && system(cmd) == 0;
	free(cmd);
	free(js);
	if (!ok) {
		free(out);
		return NULL;
	}
	return out;
}

/* Open must fail as bad input naming the package and every needle. */
static void refused_at_open(const char *name, const char *json,
			    const char *n1, const char *n2)
{
	char *path = craft(name, json);
	struct azl_err err = { 0 };
	struct azl_rpm *r = (struct azl_rpm *)1;

	CHECK(path != NULL);
	if (!path)
		return;
	CHECK(azl_rpm_open(path, &r, &err) < 0);
	CHECK(r == NULL);
	CHECK(err.kind == AZL_ERR_INPUT);
	CHECK_CONTAINS(err.msg, name);
	CHECK_CONTAINS(err.msg, n1);
	if (n2)
		CHECK_CONTAINS(err.msg, n2);
	free(path);
}

/* Open succeeds; reading the payload to its end fails naming the needle. */
static void refused_in_payload(const char *name, const char *json,
			       const char *n1, const char *n2)
{
	char *path = craft(name, json);
	struct azl_err err = { 0 };
	struct azl_rpm *r = NULL;
	struct azl_payload *p = NULL;
	char buf[4096];
	size_t fx;
	uint64_t size;
	int rc;

	CHECK(path != NULL);
	if (!path || azl_rpm_open(path, &r, &err) < 0) {
		CHECK(!"opened");
		free(path);
		return;
	}
	rc = azl_payload_open(r, &p, &err);
	while (rc == 0 && (rc = azl_payload_next(p, &fx, &size, &err)) > 0)
		while ((rc = (int)azl_payload_read(p, buf, sizeof(buf), &err)) > 0)
			;
	CHECK(rc < 0);
	CHECK_CONTAINS(err.msg, name);
	CHECK_CONTAINS(err.msg, n1);
	if (n2)
		CHECK_CONTAINS(err.msg, n2);
	azl_payload_close(p);
	azl_rpm_close(r);
	free(path);
}

static void test_hostile(void)
{
	char *ok = craft("h-ok", "{\"name\":\"h-ok\",\"files\":[{\"path\":\"/usr/h\",\"data\":\"hi\"},"
			 "{\"path\":\"/usr/l\",\"mode\":41471,\"link\":\"h\"}]}");

	if (!ok) {
		printf("skip: python3 tests/lib/rpmcraft.py failed\n");
		return;
	}
	/* the control: the crafter makes a valid package (one content entry:
	 * the symlink has none) */
	CHECK(payload_matches_header(ok) == 1);
	free(ok);
	refused_at_open("h-tags", "{\"name\":\"h-tags\",\"hdr_il\":2147483648}",
			"header declares 2147483648 tags", "limit is 65535");
	refused_at_open("h-data", "{\"name\":\"h-data\",\"hdr_dl\":4294967280}",
			"declares 4294967280 bytes of data", NULL);
	refused_at_open("h-short", "{\"name\":\"h-short\",\"hdr_dl\":100000}",
			"the file ends", NULL);
	refused_at_open("h-sig", "{\"name\":\"h-sig\",\"sig_il\":33}",
			"signature header declares 33 tags", "limit is 32");
	refused_at_open("h-count", "{\"name\":\"h-count\",\"files\":[{\"path\":\"/a\"}],"
			"\"tag_counts\":{\"1117\":3000000}}",
			"3000000 files (tag Basenames)", NULL);
	refused_at_open("h-array", "{\"name\":\"h-array\",\"files\":[{\"path\":\"/a\"}],"
			"\"tag_counts\":{\"1030\":1048576}}",
			"tag Filemodes (1030) has 1048576 values", NULL);
	refused_at_open("h-modes", "{\"name\":\"h-modes\",\"files\":[{\"path\":\"/a\"},{\"path\":\"/b\"}],"
			"\"tag_values\":{\"1030\":[33188]}}",
			"tag Filemodes (1030) has 1 values for 2 files", NULL);
	refused_at_open("h-dirs", "{\"name\":\"h-dirs\",\"files\":[{\"path\":\"/a\"},{\"path\":\"/b\"}],"
			"\"tag_values\":{\"1116\":[0,7]}}",
			"cannot make a file list", NULL);
	refused_at_open("h-trunc", "{\"name\":\"h-trunc\",\"truncate\":200}",
			"the file ends", NULL);
	/* past our checks, librpm's own reason is carried into the message */
	char *lie = craft("h-lie", "{\"name\":\"h-lie\",\"tag_counts\":{\"1004\":7}}");
	struct azl_err lerr = { 0 };
	struct azl_rpm *lr = NULL;
	CHECK(lie && azl_rpm_open(lie, &lr, &lerr) < 0);
	CHECK_CONTAINS(lerr.msg, "cannot read the rpm header");
	CHECK_CONTAINS(lerr.msg, "tag 1004");
	CHECK_CONTAINS(lerr.msg, "h-lie.rpm");
	free(lie);
	refused_in_payload("h-link", "{\"name\":\"h-link\",\"files\":[{\"path\":\"/l\",\"mode\":41471,"
			   "\"link\":\"t\",\"hdr_size\":100000}]}",
			   "/l: the header gives this symlink 100000 bytes", NULL);
	refused_in_payload("h-cpio", "{\"name\":\"h-cpio\",\"files\":[{\"path\":\"/a\",\"data\":\"x\"},"
			   "{\"path\":\"/b\",\"data\":\"y\",\"cpio_name\":\"./../../etc/b\"}]}",
			   "payload entry \"./../../etc/b\" is not a file of the header", NULL);
	refused_in_payload("h-big", "{\"name\":\"h-big\",\"files\":[{\"path\":\"/a\",\"data\":\"x\","
			   "\"cpio_size\":100000}]}",
			   "Bad magic after /a", NULL);
	refused_in_payload("h-tail", "{\"name\":\"h-tail\",\"files\":[{\"path\":\"/a\",\"data\":\"x\"}],"
			   "\"trailing_zeros\":513}",
			   "more than 512 bytes after the archive's end", NULL);
}

int main(void)
{
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	test_fedora();
	test_createrepo_c();
	test_not_rpm();
	test_built();
	test_caps();
	test_hostile();
	char *cmd = azl_xasprintf("rm -rf %s", tmp);
	if (!t_fail && system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmp);
	free(cmd);
	return t_done();
}
