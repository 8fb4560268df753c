/* lock: canonical bytes, round trip, and field-naming errors. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t.h"
#include "base/buf.h"
#include "base/fs.h"
#include "compose/lock.h"

#define SUM_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SUM_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static char dir[] = "/tmp/azl-test-lock.XXXXXX";

static void set_pkg(struct azl_lock_pkg *p, const char *name, uint32_t epoch,
		    const char *arch, const char *sum)
{
	p->name = azl_xstrdup(name);
	p->epoch = epoch;
	p->version = azl_xstrdup("1.0");
	p->release = azl_xstrdup("1");
	p->arch = azl_xstrdup(arch);
	p->repo = azl_xstrdup("base");
	p->location = azl_xasprintf("Packages/%s.rpm", name);
	memcpy(p->sha256, sum, 65);
	p->size = 4096;
}

/* Packages deliberately out of order: writing sorts them. */
static struct azl_lock *sample(void)
{
	struct azl_lock *l = azl_xcalloc(1, sizeof(*l));

	l->nrepos = 1;
	l->repos = azl_xcalloc(1, sizeof(*l->repos));
	l->repos[0].id = azl_xstrdup("base");
	l->repos[0].baseurl = azl_xstrdup("file:///srv/repo/");
	memcpy(l->repos[0].repomd_sha256, SUM_A, 65);
	l->npkgs = 3;
	l->pkgs = azl_xcalloc(3, sizeof(*l->pkgs));
	set_pkg(&l->pkgs[0], "zlib", 0, "x86_64", SUM_B);
	set_pkg(&l->pkgs[1], "azl-libfoo", 0, "x86_64", SUM_A);
	set_pkg(&l->pkgs[2], "azl-libfoo", 2, "i686", SUM_B);
	return l;
}

static const char *const EXPECTED =
	"{\n"
	"  \"packages\": [\n"
	"    {\n"
	"      \"arch\": \"i686\",\n"
	"      \"checksum\": \"sha256:" SUM_B "\",\n"
	"      \"epoch\": 2,\n"
	"      \"location\": \"Packages/azl-libfoo.rpm\",\n"
	"      \"name\": \"azl-libfoo\",\n"
	"      \"release\": \"1\",\n"
	"      \"repo\": \"base\",\n"
	"      \"size\": 4096,\n"
	"      \"version\": \"1.0\"\n"
	"    },\n";

static char *write_text(const char *name, const char *text)
{
	char *path = azl_path_join(dir, name);
	struct azl_err e = { 0 };

	azl_write_file_atomic(path, text, strlen(text), 0644, &e);
	return path;
}

static void test_round_trip(void)
{
	struct azl_lock *l = sample(), *back = NULL;
	char *path = azl_path_join(dir, "x.lock.json");
	char *text = azl_lock_to_json(l), *text2, *disk = NULL;
	struct azl_err e = { 0 };
	size_t len = 0;

	CHECK(!strncmp(text, EXPECTED, strlen(EXPECTED)));
	CHECK(text[strlen(text) - 1] == '\n' && text[strlen(text) - 2] == '}');
	CHECK_STR(l->pkgs[0].name, "azl-libfoo");
	CHECK_STR(l->pkgs[0].arch, "i686");
	CHECK_STR(l->pkgs[2].name, "zlib");
	CHECK(azl_lock_write(path, l, &e) == 0);
	CHECK(azl_read_file(path, 0, &disk, &len, &e) == 0);
	CHECK_STR(disk, text);
	CHECK(azl_lock_read(path, &back, &e) == 0);
	if (back) {
		text2 = azl_lock_to_json(back);
		CHECK_STR(text2, text);
		free(text2);
		CHECK(back->pkgs[0].epoch == 2 && back->pkgs[0].size == 4096);
		CHECK_STR(back->pkgs[1].sha256, SUM_A);
		CHECK(azl_lock_find_repo(back, "base") != NULL);
		CHECK(azl_lock_find_repo(back, "other") == NULL);
	}
	{
		char *n0 = azl_lock_pkg_nevra(&l->pkgs[0]), *n1 = azl_lock_pkg_nevra(&l->pkgs[1]);
		CHECK_STR(n0, "azl-libfoo-2:1.0-1.i686");
		CHECK_STR(n1, "azl-libfoo-1.0-1.x86_64");
		free(n0);
		free(n1);
	}
	azl_lock_free(back);
	azl_lock_free(l);
	free(disk);
	free(text);
	free(path);
}

/* Replace the first occurrence of from in the canonical sample text. */
static void expect_error(const char *from, const char *to, const char *needle)
{
	struct azl_lock *l = sample(), *back = NULL;
	char *text = azl_lock_to_json(l), *at = strstr(text, from), *path;
	struct azl_buf b = AZL_BUF_INIT;
	struct azl_err e = { 0 };

	CHECK(at != NULL);
	if (!at)
		goto out;
	azl_buf_add(&b, text, (size_t)(at - text));
	azl_buf_adds(&b, to);
	azl_buf_adds(&b, at + strlen(from));
	path = write_text("bad.lock.json", azl_buf_str(&b));
	CHECK(azl_lock_read(path, &back, &e) < 0);
	CHECK(back == NULL);
	CHECK(e.kind == AZL_ERR_INPUT);
	CHECK_CONTAINS(e.msg, "bad.lock.json");
	CHECK_CONTAINS(e.msg, needle);
	free(path);
out:
	azl_buf_release(&b);
	azl_lock_free(l);
	free(text);
}

static void test_malformed(void)
{
	expect_error("\"sha256:" SUM_B, "\"md5:" SUM_B, "packages[0].checksum");
	expect_error("\"epoch\": 2", "\"epoch\": -1", "packages[0].epoch");
	expect_error("\"epoch\": 2", "\"epoch\": \"2\"", "packages[0].epoch");
	expect_error("\"size\": 4096", "\"sizes\": 4096", "packages[0].sizes: unknown key");
	expect_error("\"name\": \"zlib\",", "", "packages[2].name: missing");
	expect_error("\"repo\": \"base\"", "\"repo\": \"nope\"", "packages[0].repo");
	expect_error("\"repomd_sha256\": \"aaaa", "\"repomd_sha256\": \"AAAA", "repos[0].repomd_sha256");
	expect_error("\"version\": 1\n", "\"version\": 2\n", "version");
	expect_error("\"packages\": [", "\"packages\": {\"a\": [", "invalid JSON");
	expect_error("\"location\": \"Packages/zlib.rpm\"", "\"location\": \"\"", "packages[2].location");
}

int main(void)
{
	struct azl_lock *l = NULL;
	struct azl_err e = { 0 };
	char *cmd;

	if (!mkdtemp(dir))
		return 1;
	test_round_trip();
	test_malformed();
	/* A missing file is a work error (exit 1), not a bad-input one. */
	cmd = azl_path_join(dir, "none.lock.json");
	CHECK(azl_lock_read(cmd, &l, &e) < 0 && l == NULL);
	CHECK_CONTAINS(e.msg, "none.lock.json");
	CHECK(e.kind == AZL_ERR_WORK);
	free(cmd);
	cmd = azl_xasprintf("rm -rf '%s'", dir);
	CHECK(system(cmd) == 0);
	free(cmd);
	return t_done();
}
