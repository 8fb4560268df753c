/* objstore: dedup, streaming writes, abort, records published only at
 * flush, records invalidated by a missing object, concurrent writers. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/objstore.h"
#include "t.h"

static char tmp[] = "/tmp/azl-test-objstore.XXXXXX";

static size_t count_files(const char *dir)
{
	char *cmd = azl_xasprintf("find %s -type f | wc -l", dir);
	FILE *p = popen(cmd, "r");
	size_t n = 0;

	if (p && fscanf(p, "%zu", &n) != 1)
		n = (size_t)-1;
	if (p)
		pclose(p);
	free(cmd);
	return n;
}

/* Deterministic pseudo-content: object i, size depends on i. */
static size_t content(unsigned i, unsigned char **out)
{
	size_t n = (i % 7 == 0) ? 300000 + i : 10 + i * 13;
	unsigned char *b = azl_xmalloc(n);
	uint32_t x = i * 2654435761u + 1;

	for (size_t k = 0; k < n; k++) {
		x = x * 1103515245u + 12345u;
		b[k] = (unsigned char)(x >> 16);
	}
	*out = b;
	return n;
}

static void test_put_dedup(struct azl_objstore *s)
{
	struct azl_err err = { 0 };
	char a[65], b[65], want[65];
	struct stat st;
	char *p;

	azl_sha256_hex("hello\n", 6, want);
	CHECK(azl_objstore_put(s, "hello\n", 6, a, &err) == 0);
	CHECK(azl_objstore_put(s, "hello\n", 6, b, &err) == 0);
	CHECK_STR(a, want);
	CHECK_STR(b, want);
	p = azl_objstore_path(s, a);
	CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0444 && st.st_size == 6);
	CHECK(azl_objstore_has(s, a, 6));
	CHECK(!azl_objstore_has(s, a, 7));
	free(p);
	p = azl_path_join(azl_objstore_dir(s), "sha256");
	CHECK(count_files(p) == 1);
	free(p);
}

static void test_stream_and_abort(struct azl_objstore *s)
{
	struct azl_err err = { 0 };
	struct azl_objw *w;
	struct azl_sha256 *h = azl_sha256_new();
	unsigned char chunk[65536];
	char got[65], want[65];
	uint64_t size = 0;
	char *t = azl_path_join(azl_objstore_dir(s), "tmp");

	memset(chunk, 'x', sizeof(chunk));
	CHECK(azl_objw_open(s, &w, &err) == 0);
	for (int i = 0; i < 40; i++) { /* 2.5 MiB: spills to a file */
		chunk[0] = (unsigned char)i;
		CHECK(azl_objw_write(w, chunk, sizeof(chunk), &err) == 0);
		azl_sha256_update(h, chunk, sizeof(chunk));
	}
	CHECK(azl_objw_commit(w, got, &size, &err) == 0);
	azl_sha256_final(h, want);
	CHECK_STR(got, want);
	CHECK(size == 40 * sizeof(chunk));
	CHECK(azl_objstore_has(s, got, size));

	/* An aborted writer leaves nothing, not even in tmp/. */
	size_t before = count_files(azl_objstore_dir(s));
	CHECK(azl_objw_open(s, &w, &err) == 0);
	for (int i = 0; i < 40; i++)
		CHECK(azl_objw_write(w, chunk, sizeof(chunk), &err) == 0);
	azl_objw_abort(w);
	CHECK(count_files(azl_objstore_dir(s)) == before);
	CHECK(count_files(t) == 0);
	free(t);
}

static void test_records(struct azl_objstore *s)
{
	struct azl_err err = { 0 };
	struct azl_objrec rec = { 0 }, got;
	char h1[65], h2[65];
	const char *pkg = "1111111111111111111111111111111111111111111111111111111111111111";
	char *p;

	CHECK(azl_objstore_put(s, "one", 3, h1, &err) == 0);
	CHECK(azl_objstore_put(s, "two!", 4, h2, &err) == 0);
	azl_objrec_add(&rec, 7, 4, h2);
	azl_objrec_add(&rec, 2, 3, h1);
	CHECK(azl_objstore_record_get(s, pkg, &got, &err) == -ENOENT);
	CHECK(azl_objstore_record_put(s, pkg, &rec, &err) == 0);
	/* Not visible before the flush. */
	CHECK(azl_objstore_record_get(s, pkg, &got, &err) == -ENOENT);
	CHECK(azl_objstore_flush(s, &err) == 0);
	CHECK(azl_objstore_record_get(s, pkg, &got, &err) == 0);
	CHECK(got.n == 2);
	CHECK(got.n == 2 && got.ents[0].fx == 2 && got.ents[1].fx == 7);
	CHECK(azl_objrec_find(&got, 7) && !strcmp(azl_objrec_find(&got, 7)->sha256, h2));
	CHECK(azl_objrec_find(&got, 3) == NULL);
	azl_objrec_release(&got);

	/* A record naming a lost object is not trusted. */
	p = azl_objstore_path(s, h1);
	CHECK(unlink(p) == 0);
	CHECK(azl_objstore_record_get(s, pkg, &got, &err) == -ENOENT);
	CHECK(got.n == 0);
	free(p);

	/* A damaged record is an error naming it. */
	const char *bad = "2222222222222222222222222222222222222222222222222222222222222222";
	p = azl_xasprintf("%s/pkgs/%s", azl_objstore_dir(s), bad);
	CHECK(azl_write_file_atomic(p, "azl-objrec 1\nnonsense\n", 22, 0644, &err) == 0);
	CHECK(azl_objstore_record_get(s, bad, &got, &err) < 0);
	CHECK_CONTAINS(err.msg, bad);
	free(p);
	azl_objrec_release(&rec);
}

static int read_range(const char *path, uint64_t off, size_t len, char *out)
{
	FILE *f = fopen(path, "rb");
	int ok = f && fseek(f, (long)off, SEEK_SET) == 0 &&
		 fread(out, 1, len, f) == len;
	if (f)
		fclose(f);
	return ok;
}

/* Packs: members at their offsets, a name that depends on the members
 * only, nothing stored for an empty pack, records pointing into them. */
static void test_packs(struct azl_objstore *s)
{
	struct azl_err err = { 0 };
	const char *parts[] = { "alpha\n", "", "gamma gamma\n" };
	char name[65], name2[65], hex[3][65], buf[64];
	uint64_t off[3], size, size2;
	struct azl_objpack *p;
	struct azl_objrec rec = { 0 }, got;
	const char *pkg = "5555555555555555555555555555555555555555555555555555555555555555";
	char *path, *dir;

	for (int round = 0; round < 2; round++) {
		CHECK(azl_objpack_open(s, &p, &err) == 0);
		for (int i = 0; i < 3; i++) {
			azl_sha256_hex(parts[i], strlen(parts[i]), hex[i]);
			CHECK(azl_objpack_add(p, parts[i], strlen(parts[i]), hex[i],
					      &off[i], &err) == 0);
		}
		CHECK(azl_objpack_commit(p, round ? name2 : name,
					 round ? &size2 : &size, &err) == 0);
	}
	CHECK_STR(name, name2);
	CHECK(size == size2 && size == 18);
	CHECK(off[0] == 0 && off[1] == 6 && off[2] == 6);
	dir = azl_path_join(azl_objstore_dir(s), "packs");
	CHECK(count_files(dir) == 1);
	path = azl_objstore_pack_path(s, name);
	CHECK(read_range(path, off[2], strlen(parts[2]), buf) &&
	      !memcmp(buf, parts[2], strlen(parts[2])));
	/* Different members, different name. */
	CHECK(azl_objpack_open(s, &p, &err) == 0);
	CHECK(azl_objpack_add(p, "x", 1, hex[0], &off[0], &err) == 0);
	CHECK(azl_objpack_commit(p, name2, &size2, &err) == 0);
	CHECK(strcmp(name, name2) != 0);
	/* Empty: no name, no file. */
	CHECK(azl_objpack_open(s, &p, &err) == 0);
	CHECK(azl_objpack_commit(p, name2, &size2, &err) == 0);
	CHECK(name2[0] == '\0' && size2 == 0);
	CHECK(count_files(dir) == 2);

	/* A record with packed entries round-trips and finds its bytes. */
	memcpy(rec.pack, name, 65);
	rec.pack_size = size;
	azl_objrec_add_packed(&rec, 4, strlen(parts[2]), hex[2], off[2]);
	azl_objrec_add_packed(&rec, 1, strlen(parts[0]), hex[0], 0);
	CHECK(azl_objstore_record_put(s, pkg, &rec, &err) == 0);
	CHECK(azl_objstore_flush(s, &err) == 0);
	CHECK(azl_objstore_record_get(s, pkg, &got, &err) == 0);
	CHECK_STR(got.pack, name);
	const struct azl_objrec_ent *e = azl_objrec_find(&got, 4);
	CHECK(e && e->packed && e->offset == off[2]);
	if (e) {
		uint64_t o;
		char *dp = azl_objrec_data_path(s, &got, e, &o);
		CHECK_STR(dp, path);
		CHECK(o == off[2]);
		free(dp);
	}
	azl_objrec_release(&got);
	/* Losing the pack invalidates the record. */
	CHECK(unlink(path) == 0);
	CHECK(azl_objstore_record_get(s, pkg, &got, &err) == -ENOENT);
	azl_objrec_release(&rec);
	free(path);
	free(dir);
}

/* Objects are 0444 whatever the umask. */
static void test_umask(void)
{
	struct azl_err err = { 0 };
	struct azl_objstore *s;
	char *dir = azl_xasprintf("%s/umask", tmp), *p, h[65];
	mode_t old = umask(0277);
	struct stat st;

	CHECK(azl_objstore_open(dir, &s, &err) == 0);
	CHECK(azl_objstore_put(s, "umask test", 10, h, &err) == 0);
	p = azl_objstore_path(s, h);
	CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0444);
	umask(old);
	azl_objstore_close(s);
	free(p);
	free(dir);
}

/* Queued records vanish with a close that never flushed. */
static void test_close_drops_pending(void)
{
	struct azl_err err = { 0 };
	struct azl_objstore *s;
	struct azl_objrec rec = { 0 };
	char *dir = azl_xasprintf("%s/drop", tmp), *t;
	const char *pkg = "3333333333333333333333333333333333333333333333333333333333333333";

	CHECK(azl_objstore_open(dir, &s, &err) == 0);
	CHECK(azl_objstore_record_put(s, pkg, &rec, &err) == 0);
	azl_objstore_close(s);
	t = azl_path_join(dir, "tmp");
	CHECK(count_files(t) == 0);
	CHECK(azl_objstore_open(dir, &s, &err) == 0);
	CHECK(azl_objstore_record_get(s, pkg, &rec, &err) == -ENOENT);
	azl_objstore_close(s);
	free(t);
	free(dir);
}

enum { NOBJ = 200, NPROC = 4 };

static int child(const char *dir, unsigned seed)
{
	struct azl_err err = { 0 };
	struct azl_objstore *s;
	struct azl_objrec rec = { 0 };
	const char *pkg = "4444444444444444444444444444444444444444444444444444444444444444";

	if (azl_objstore_open(dir, &s, &err) < 0)
		return 1;
	for (unsigned k = 0; k < NOBJ; k++) {
		unsigned i = (k * 37 + seed * 11) % NOBJ; /* each its own order */
		unsigned char *b;
		size_t n = content(i, &b);
		char h[65];
		if (azl_objstore_put(s, b, n, h, &err) < 0) {
			fprintf(stderr, "child %u: %s\n", seed, err.msg);
			return 1;
		}
		azl_objrec_add(&rec, i, n, h);
		free(b);
	}
	if (azl_objstore_record_put(s, pkg, &rec, &err) < 0 ||
	    azl_objstore_flush(s, &err) < 0)
		return 1;
	azl_objrec_release(&rec);
	azl_objstore_close(s);
	return 0;
}

static void test_concurrent(void)
{
	char *dir = azl_xasprintf("%s/conc", tmp), *sub;
	struct azl_err err = { 0 };
	struct azl_objstore *s;
	struct azl_objrec rec;
	pid_t pids[NPROC];
	int bad = 0;

	for (unsigned i = 0; i < NPROC; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(child(dir, i));
	}
	for (unsigned i = 0; i < NPROC; i++) {
		int st;
		CHECK(waitpid(pids[i], &st, 0) == pids[i]);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	sub = azl_path_join(dir, "sha256");
	CHECK(count_files(sub) == NOBJ);
	free(sub);
	sub = azl_path_join(dir, "tmp");
	CHECK(count_files(sub) == 0);
	free(sub);
	CHECK(azl_objstore_open(dir, &s, &err) == 0);
	CHECK(azl_objstore_record_get(s,
		"4444444444444444444444444444444444444444444444444444444444444444",
		&rec, &err) == 0);
	CHECK(rec.n == NOBJ);
	/* Every object is whole: its content hashes to its name. */
	for (size_t i = 0; i < rec.n; i++) {
		char *p = azl_objstore_path(s, rec.ents[i].sha256), h[65];
		uint64_t size;
		if (azl_sha256_file(p, h, &size, &err) < 0 ||
		    strcmp(h, rec.ents[i].sha256) || size != rec.ents[i].size)
			bad++;
		free(p);
	}
	CHECK(bad == 0);
	azl_objrec_release(&rec);
	azl_objstore_close(s);
	free(dir);
}

int main(void)
{
	struct azl_err err = { 0 };
	struct azl_objstore *s;
	char *dir;

	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	dir = azl_xasprintf("%s/store", tmp);
	CHECK(azl_objstore_open(dir, &s, &err) == 0);
	test_put_dedup(s);
	test_stream_and_abort(s);
	test_records(s);
	test_packs(s);
	azl_objstore_close(s);
	test_close_drops_pending();
	test_umask();
	test_concurrent();
	free(dir);
	char *cmd = azl_xasprintf("rm -rf %s", tmp);
	if (!t_fail && system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmp);
	free(cmd);
	return t_done();
}
