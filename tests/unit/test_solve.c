/* repo + solve against small hand-written rpm-md repositories. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "t.h"
#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/lock.h"
#include "compose/repo.h"
#include "compose/solve.h"

static char tmp[] = "/tmp/azl-test-solve.XXXXXX";

/* One <package>.  fmt: extra XML inside <format> (provides, requires...). */
static void pkg(struct azl_buf *b, const char *name, const char *ver,
		const char *arch, const char *fmt)
{
	char sum[65];
	char *id = azl_xasprintf("%s-%s.%s", name, ver, arch);

	azl_sha256_hex(id, strlen(id), sum);
	azl_buf_addf(b,
		"<package type=\"rpm\"><name>%s</name><arch>%s</arch>"
		"<version epoch=\"0\" ver=\"%s\" rel=\"1\"/>"
		"<checksum type=\"sha256\" pkgid=\"YES\">%s</checksum>"
		"<summary>s</summary><description>d</description>"
		"<time file=\"1\" build=\"1\"/>"
		"<size package=\"%zu\" installed=\"1\" archive=\"1\"/>"
		"<location href=\"Packages/%s-%s-1.%s.rpm\"/>"
		"<format><rpm:provides><rpm:entry name=\"%s\" flags=\"EQ\" epoch=\"0\" "
		"ver=\"%s\" rel=\"1\"/></rpm:provides>%s</format></package>\n",
		name, arch, ver, sum, 1000 + strlen(name), name, ver, arch,
		name, ver, fmt ? fmt : "");
	free(id);
}

static const char *const HEAD =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<metadata xmlns=\"http://linux.duke.edu/metadata/common\" "
	"xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n";

static void write_file(const char *path, const char *data, size_t len, int gz)
{
	if (gz) {
		gzFile f = gzopen(path, "wb");
		gzwrite(f, data, (unsigned)len);
		gzclose(f);
	} else {
		struct azl_err e = { 0 };
		azl_write_file_atomic(path, data, len, 0644, &e);
	}
}

/* Writes DIR/repodata/{primary.xml.gz, filelists.xml, repomd.xml}; returns
 * the file:// baseurl (caller frees). */
static char *make_repo_raw(const char *name, const char *primary, const char *filelists);

static char *make_repo(const char *name, const char *packages, const char *filelists)
{
	char *text = azl_xasprintf("%s%s</metadata>\n", HEAD, packages);
	char *url = make_repo_raw(name, text, filelists);

	free(text);
	return url;
}

static char *make_repo_raw(const char *name, const char *primary, const char *filelists)
{
	char *dir = azl_xasprintf("%s/%s", tmp, name);
	char *rd = azl_xasprintf("%s/repodata", dir);
	char *p = azl_xasprintf("%s/primary.xml.gz", rd);
	char *fl = azl_xasprintf("%s/filelists.xml", rd);
	char *md = azl_xasprintf("%s/repomd.xml", rd);
	struct azl_buf b = AZL_BUF_INIT;
	struct azl_err e = { 0 };
	char psum[65], fsum[65];

	azl_mkdir_p(rd, &e);
	write_file(p, primary, strlen(primary), 1);
	azl_sha256_file(p, psum, NULL, &e);
	azl_buf_reset(&b);
	azl_buf_addf(&b, "<?xml version=\"1.0\"?>\n<filelists xmlns="
		     "\"http://linux.duke.edu/metadata/filelists\">%s</filelists>\n",
		     filelists ? filelists : "");
	write_file(fl, b.data, b.len, 0);
	azl_sha256_file(fl, fsum, NULL, &e);
	azl_buf_reset(&b);
	azl_buf_addf(&b, "<?xml version=\"1.0\"?>\n<repomd xmlns=\"http://linux.duke.edu/"
		     "metadata/repo\"><revision>1</revision>"
		     "<data type=\"primary\"><checksum type=\"sha256\">%s</checksum>"
		     "<location href=\"repodata/primary.xml.gz\"/></data>"
		     "<data type=\"filelists\"><checksum type=\"sha256\">%s</checksum>"
		     "<location href=\"repodata/filelists.xml\"/></data></repomd>\n",
		     psum, fsum);
	write_file(md, b.data, b.len, 0);
	azl_buf_release(&b);
	free(rd);
	free(p);
	free(fl);
	free(md);
	p = azl_xasprintf("file://%s/", dir);
	free(dir);
	return p;
}

/* The base repository: what tests/fixtures builds, in miniature. */
/* v2: adds app 1.5 and libfoo 1.1 beside the 1.0 builds, like base-v2. */
static char *base_repo(const char *dir, int v2)
{
	struct azl_buf b = AZL_BUF_INIT;
	char *fmt = azl_xasprintf(
		"<rpm:requires><rpm:entry name=\"/bin/sh\"/>"
		"<rpm:entry name=\"libfoo.so.1()(64bit)\"/>"
		"<rpm:entry name=\"(ssl-a or ssl-b)\"/></rpm:requires>"
		"<rpm:recommends><rpm:entry name=\"extra\"/></rpm:recommends>");
	char *url, *fl, sum[65];

	pkg(&b, "app", "1.0", "x86_64", fmt);
	if (v2) {
		pkg(&b, "app", "1.5", "x86_64", fmt);
		pkg(&b, "libfoo", "1.1", "x86_64", "<rpm:provides><rpm:entry "
		    "name=\"libfoo.so.1()(64bit)\"/></rpm:provides>");
	}
	pkg(&b, "busybox", "1.0", "x86_64", "<file>/bin/sh</file>");
	pkg(&b, "libfoo", "1.0", "x86_64", "<rpm:provides><rpm:entry "
	    "name=\"libfoo.so.1()(64bit)\"/></rpm:provides>");
	pkg(&b, "libfoo", "1.0", "i686", "<rpm:provides><rpm:entry "
	    "name=\"libfoo.so.1\"/></rpm:provides>");
	pkg(&b, "ssl-a", "1.0", "x86_64", NULL);
	pkg(&b, "ssl-b", "1.0", "x86_64", NULL);
	pkg(&b, "extra", "1.0", "noarch", NULL);
	pkg(&b, "oldname", "1.0", "noarch", NULL);
	pkg(&b, "newname", "2.0", "noarch", "<rpm:provides><rpm:entry name=\"oldname\" "
	    "flags=\"EQ\" epoch=\"0\" ver=\"2.0\"/></rpm:provides><rpm:obsoletes>"
	    "<rpm:entry name=\"oldname\" flags=\"LT\" epoch=\"0\" ver=\"2.0\"/>"
	    "</rpm:obsoletes>");
	pkg(&b, "broken", "1.0", "x86_64", "<rpm:requires><rpm:entry "
	    "name=\"missing-dep\"/></rpm:requires>");
	pkg(&b, "needs-data", "1.0", "noarch", "<rpm:requires><rpm:entry "
	    "name=\"/usr/share/data/file.dat\"/></rpm:requires>");
	pkg(&b, "data", "1.0", "noarch", NULL);
	/* filelists entries are matched to primary ones by pkgid. */
	azl_sha256_hex("data-1.0.noarch", 15, sum);
	fl = azl_xasprintf("<package pkgid=\"%s\" name=\"data\" arch=\"noarch\">"
			   "<version epoch=\"0\" ver=\"1.0\" rel=\"1\"/>"
			   "<file>/usr/share/data/file.dat</file></package>", sum);
	url = make_repo(dir, b.data, fl);
	free(fl);
	azl_buf_release(&b);
	free(fmt);
	return url;
}

struct result {
	int rc;
	struct azl_err err;
	struct azl_lock *lock;
	char names[1024]; /* "a b c" of name.arch */
};

static void solve(const char *url, struct azl_solve_request *req, struct result *r)
{
	struct azl_solver *s = NULL;

	memset(r, 0, sizeof(*r));
	r->rc = azl_solver_new("x86_64", tmp, NULL, &s, &r->err);
	if (!r->rc)
		r->rc = azl_solver_add_repo(s, "base", url, &r->err);
	if (!r->rc)
		r->rc = azl_solver_solve(s, req, &r->lock, &r->err);
	for (size_t i = 0; r->lock && i < r->lock->npkgs; i++) {
		size_t n = strlen(r->names);
		snprintf(r->names + n, sizeof(r->names) - n, "%s%s.%s", n ? " " : "",
			 r->lock->pkgs[i].name, r->lock->pkgs[i].arch);
	}
	azl_solver_free(s);
	if (getenv("T_VERBOSE") && r->rc)
		fprintf(stderr, "solve: %s\n", r->err.msg);
}

static void test_basic(const char *url)
{
	char *want[] = { "app" };
	struct azl_solve_request req = { .packages = want, .npackages = 1 };
	struct result r;

	solve(url, &req, &r);
	CHECK(r.rc == 0);
	/* ssl-a: libsolv takes the first alternative of a rich OR. */
	CHECK_STR(r.names, "app.x86_64 busybox.x86_64 libfoo.x86_64 ssl-a.x86_64");
	if (r.lock && r.lock->npkgs == 4) {
		struct azl_lock_pkg *p = &r.lock->pkgs[2];
		char sum[65];
		azl_sha256_hex("libfoo-1.0.x86_64", 17, sum);
		CHECK_STR(p->sha256, sum);
		CHECK_STR(p->location, "Packages/libfoo-1.0-1.x86_64.rpm");
		CHECK(p->size == 1006);
		CHECK_STR(p->version, "1.0");
		CHECK_STR(p->release, "1");
		CHECK_STR(p->repo, "base");
		CHECK(r.lock->nrepos == 1 && azl_is_sha256_hex(r.lock->repos[0].repomd_sha256));
	}
	azl_lock_free(r.lock);

	req.install_weak_deps = true;
	solve(url, &req, &r);
	CHECK_STR(r.names, "app.x86_64 busybox.x86_64 extra.noarch libfoo.x86_64 ssl-a.x86_64");
	azl_lock_free(r.lock);
}

static void test_obsoletes_excludes(const char *url)
{
	char *old[] = { "oldname" }, *app[] = { "app" };
	char *ex[] = { "ssl-a" }, *ex2[] = { "libfoo*" };
	struct azl_solve_request req = { .packages = old, .npackages = 1 };
	struct result r;

	solve(url, &req, &r);
	CHECK_STR(r.names, "newname.noarch");
	azl_lock_free(r.lock);

	req = (struct azl_solve_request){ .packages = app, .npackages = 1,
					  .exclude = ex, .nexclude = 1 };
	solve(url, &req, &r);
	CHECK_STR(r.names, "app.x86_64 busybox.x86_64 libfoo.x86_64 ssl-b.x86_64");
	azl_lock_free(r.lock);

	req.exclude = ex2;
	solve(url, &req, &r);
	CHECK(r.rc < 0 && !r.lock);
	CHECK_CONTAINS(r.err.msg, "libfoo.so.1()(64bit)");
	azl_lock_free(r.lock);
}

static void test_problems(const char *url)
{
	char *broken[] = { "broken" }, *none[] = { "no-such-package" };
	char *data[] = { "needs-data" };
	struct azl_solve_request req = { .packages = broken, .npackages = 1 };
	struct result r;

	solve(url, &req, &r);
	CHECK(r.rc < 0 && !r.lock);
	CHECK(r.err.kind == AZL_ERR_WORK);
	CHECK_CONTAINS(r.err.msg, "missing-dep");
	CHECK_CONTAINS(r.err.msg, "broken-1.0-1.x86_64");

	req.packages = none;
	solve(url, &req, &r);
	CHECK(r.rc < 0);
	CHECK_CONTAINS(r.err.msg, "no-such-package");

	/* A file only filelists.xml knows: loaded on demand. */
	req.packages = data;
	solve(url, &req, &r);
	CHECK(r.rc == 0);
	CHECK_STR(r.names, "data.noarch needs-data.noarch");
	azl_lock_free(r.lock);
}

/* Lock against app 1.0, then solve against a repo with app 1.5. */
static void test_pins(const char *url1, const char *url2)
{
	char *app[] = { "app" }, *upd[] = { "app" }, *busy[] = { "busybox" };
	struct azl_solve_request req = { .packages = app, .npackages = 1 };
	struct result r1, r2;

	solve(url1, &req, &r1);
	CHECK(r1.rc == 0);
	req.pins = r1.lock;
	solve(url2, &req, &r2);
	CHECK(r2.rc == 0);
	CHECK(r2.lock && r2.lock->npkgs == 4 && !strcmp(r2.lock->pkgs[0].version, "1.0"));
	CHECK(r2.lock && r2.lock->npkgs == 4 && !strcmp(r2.lock->pkgs[2].version, "1.0"));
	azl_lock_free(r2.lock);

	req.update = busy;
	req.nupdate = 1;
	solve(url2, &req, &r2);
	CHECK(r2.lock && !strcmp(r2.lock->pkgs[0].version, "1.0"));
	azl_lock_free(r2.lock);

	/* Freeing app moves app only; libfoo keeps its pin. */
	req.update = upd;
	solve(url2, &req, &r2);
	CHECK(r2.lock && !strcmp(r2.lock->pkgs[0].version, "1.5"));
	CHECK(r2.lock && !strcmp(r2.lock->pkgs[2].version, "1.0"));
	azl_lock_free(r2.lock);

	req.update_all = true;
	solve(url2, &req, &r2);
	CHECK(r2.lock && !strcmp(r2.lock->pkgs[0].version, "1.5"));
	CHECK(r2.lock && !strcmp(r2.lock->pkgs[2].version, "1.1"));
	azl_lock_free(r2.lock);
	req.update_all = false;

	/* A pin whose package is gone: named, with the way out. */
	free(r1.lock->pkgs[2].release);
	r1.lock->pkgs[2].release = azl_xstrdup("99");
	req.nupdate = 0;
	solve(url2, &req, &r2);
	CHECK(r2.rc < 0 && !r2.lock);
	CHECK_CONTAINS(r2.err.msg, "libfoo-1.0-99.x86_64");
	CHECK_CONTAINS(r2.err.msg, "--update libfoo");
	req.update_all = true;
	solve(url2, &req, &r2);
	CHECK(r2.rc == 0);
	azl_lock_free(r2.lock);
	req.update_all = false;

	/* Same NEVRA, other bytes: a rebuild is named as such. */
	free(r1.lock->pkgs[2].release);
	r1.lock->pkgs[2].release = azl_xstrdup("1");
	memset(r1.lock->pkgs[2].sha256, 'f', 64);
	solve(url2, &req, &r2);
	CHECK(r2.rc < 0);
	CHECK_CONTAINS(r2.err.msg, "libfoo-1.0-1.x86_64 changed in repo base");
	azl_lock_free(r1.lock);
}

static void test_bad_metadata(void)
{
	struct azl_buf b = AZL_BUF_INIT;
	char *url, *p, *app[] = { "app" };
	struct azl_solve_request req = { .packages = app, .npackages = 1 };
	struct result r;

	pkg(&b, "app", "1.0", "x86_64", NULL);
	url = make_repo("bad", b.data, NULL);
	/* Garbage primary with a matching checksum: a parse error naming it. */
	p = azl_xasprintf("%s/bad/repodata/primary.xml.gz", tmp);
	write_file(p, "<metadata><package><name>app", 29, 1);
	solve(url, &req, &r);
	CHECK(r.rc < 0);
	CHECK_CONTAINS(r.err.msg, "repo base");
	CHECK_CONTAINS(r.err.msg, "checksum mismatch");
	CHECK_CONTAINS(r.err.msg, "primary.xml.gz");
	azl_buf_release(&b);
	free(p);
	free(url);

	/* Garbage and truncated XML with matching checksums: parse errors
	 * naming the repo and the file. */
	url = make_repo_raw("garbage", "this is not XML at all\n", NULL);
	solve(url, &req, &r);
	CHECK(r.rc < 0);
	CHECK_CONTAINS(r.err.msg, "repo base: primary");
	CHECK_CONTAINS(r.err.msg, "garbage/repodata/primary.xml.gz");
	free(url);
	url = make_repo_raw("trunc", "<?xml version=\"1.0\"?>\n<metadata xmlns=\"http://"
			    "linux.duke.edu/metadata/common\"><package type=\"rpm\">"
			    "<name>app</name><arch>x86_64</arch><version", NULL);
	solve(url, &req, &r);
	CHECK(r.rc < 0);
	CHECK_CONTAINS(r.err.msg, "trunc/repodata/primary.xml.gz");
	CHECK_CONTAINS(r.err.msg, "invalid or truncated");
	free(url);

	/* A repomd.xml that is not XML. */
	p = azl_xasprintf("%s/bad/repodata/repomd.xml", tmp);
	write_file(p, "<repomd><data", 13, 0);
	url = azl_xasprintf("file://%s/bad/", tmp);
	solve(url, &req, &r);
	CHECK(r.rc < 0);
	CHECK_CONTAINS(r.err.msg, "repo base");
	CHECK_CONTAINS(r.err.msg, "repomd.xml");
	free(url);
	free(p);
}

/* The manifest's other spellings: NAME OP EVR, name.arch, name-version... */
static void test_specs(const char *url2)
{
	static const struct { const char *spec, *want; } cases[] = {
		{ "libfoo", "libfoo-1.1" },
		{ "libfoo.i686", "libfoo-1.0-1.i686" },
		{ "libfoo = 1.0", "libfoo-1.0-1.x86_64" },
		{ "libfoo < 1.1", "libfoo-1.0-1.x86_64" },
		{ "libfoo >= 1.0", "libfoo-1.1-1.x86_64" },
		{ "libfoo-1.0", "libfoo-1.0-1.x86_64" },
		{ "libfoo-1.0-1", "libfoo-1.0-1.x86_64" },
		{ "libfoo-1.0-1.i686", "libfoo-1.0-1.i686" },
	};
	struct result r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *spec = (char *)cases[i].spec, *nevra = NULL;
		struct azl_solve_request req = { .packages = &spec, .npackages = 1 };
		solve(url2, &req, &r);
		CHECK(r.rc == 0 && r.lock && r.lock->npkgs == 1);
		if (r.lock && r.lock->npkgs == 1)
			nevra = azl_lock_pkg_nevra(&r.lock->pkgs[0]);
		CHECK_CONTAINS(nevra, cases[i].want);
		free(nevra);
		azl_lock_free(r.lock);
	}
}

/* Packages pinned by sha1 are refused at the lock, naming the package. */
static void test_sha1_package(void)
{
	char *text = azl_xasprintf("%s<package type=\"rpm\"><name>old</name><arch>noarch"
		"</arch><version epoch=\"0\" ver=\"1\" rel=\"1\"/><checksum type=\"sha\" "
		"pkgid=\"YES\">0123456789012345678901234567890123456789</checksum>"
		"<size package=\"1\"/><location href=\"old.rpm\"/><format>"
		"<rpm:provides><rpm:entry name=\"old\"/></rpm:provides></format>"
		"</package></metadata>\n", HEAD);
	char *url = make_repo_raw("sha1", text, NULL), *want[] = { "old" };
	struct azl_solve_request req = { .packages = want, .npackages = 1 };
	struct result r;

	solve(url, &req, &r);
	CHECK(r.rc < 0 && !r.lock);
	CHECK_CONTAINS(r.err.msg, "old-1-1.noarch");
	CHECK_CONTAINS(r.err.msg, "sha1");
	CHECK_CONTAINS(r.err.msg, "sha256");
	free(url);
	free(text);
}

static void test_repomd_parse(void)
{
	struct azl_repo_md md = { 0 };
	struct azl_err e = { 0 };
	const char *sha1 = "<repomd><data type=\"primary\"><checksum type=\"sha\">"
			   "abc</checksum><location href=\"p.xml\"/></data></repomd>";
	const char *none = "<repomd><data type=\"other\"/></repomd>";

	CHECK(azl_repo_parse_repomd(sha1, strlen(sha1), "u/repomd.xml", &md, &e) < 0);
	CHECK_CONTAINS(e.msg, "sha256");
	CHECK(azl_repo_parse_repomd(none, strlen(none), "u/repomd.xml", &md, &e) < 0);
	CHECK_CONTAINS(e.msg, "primary");
	azl_repo_md_release(&md);
}

int main(void)
{
	char *url1, *url2, *cmd;

	if (!mkdtemp(tmp))
		return 1;
	url1 = base_repo("base", 0);
	url2 = base_repo("base-v2", 1);
	test_basic(url1);
	test_obsoletes_excludes(url1);
	test_problems(url1);
	test_pins(url1, url2);
	test_bad_metadata();
	test_specs(url2);
	test_sha1_package();
	test_repomd_parse();
	cmd = azl_xasprintf("rm -rf '%s'", tmp);
	CHECK(system(cmd) == 0);
	free(cmd);
	free(url1);
	free(url2);
	return t_done();
}
