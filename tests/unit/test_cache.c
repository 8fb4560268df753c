/* The content-addressed cache: insert checks, lookup, adoption of a blob
 * whose row was lost, azl_cache_check catching a damaged blob, many
 * processes opening one new cache at the same moment, and a cache in the
 * older two-level layout moved to the flat one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/cache.h"
#include "t.h"

static char dir[] = "/tmp/azl-test-cache-XXXXXX";

static void put_tmp(struct azl_cache *c, const char *sha, const char *text)
{
	struct azl_err err;
	char *tmp = azl_cache_tmp_path(c, sha);
	CHECK(tmp != NULL);
	if (tmp)
		CHECK(azl_write_file_atomic(tmp, text, strlen(text), 0644, &err) == 0);
	free(tmp);
}

static void test_insert_lookup(struct azl_cache *c)
{
	struct azl_err err = { 0 };
	char sha[65], other[65];
	char *tmp, *p, *data = NULL;
	size_t len;

	azl_sha256_hex("hello\n", 6, sha);
	azl_sha256_hex("other\n", 6, other);
	CHECK(azl_cache_lookup(c, sha) == NULL);

	/* Wrong bytes never enter. */
	put_tmp(c, sha, "evil!\n");
	tmp = azl_cache_tmp_path(c, sha);
	CHECK(azl_cache_insert(c, tmp, sha, 6, "rpm", "hello-1-1.noarch", &err) < 0);
	CHECK_CONTAINS(err.msg, "hello-1-1.noarch");
	CHECK_CONTAINS(err.msg, sha);
	CHECK(access(tmp, F_OK) < 0);
	CHECK(azl_cache_lookup(c, sha) == NULL);
	free(tmp);

	put_tmp(c, sha, "hello\n");
	tmp = azl_cache_tmp_path(c, sha);
	CHECK(azl_cache_insert(c, tmp, sha, 6, "rpm", "hello-1-1.noarch", &err) == 0);
	free(tmp);
	p = azl_cache_lookup(c, sha);
	CHECK(p != NULL);
	if (p) {
		char *want = azl_xasprintf("%s/blobs/sha256/%s", dir, sha);
		CHECK_STR(p, want); /* flat: no folder per prefix */
		free(want);
		CHECK(azl_read_file(p, 0, &data, &len, &err) == 0);
		CHECK_STR(data, "hello\n");
		free(data);
	}
	free(p);
	CHECK(azl_cache_check(c, &err) == 0);

	/* A blob renamed into place by a run killed before its row: adopted. */
	char *blob = azl_xasprintf("%s/blobs/sha256/%s", dir, other);
	CHECK(azl_write_file_atomic(blob, "other\n", 6, 0444, &err) == 0);
	p = azl_cache_lookup(c, other);
	CHECK(p != NULL);
	free(p);

	/* A damaged blob is reported by check, naming it. */
	chmod(blob, 0644);
	CHECK(azl_write_file_atomic(blob, "otter\n", 6, 0444, &err) == 0);
	CHECK(azl_cache_check(c, &err) < 0);
	CHECK_CONTAINS(err.msg, other);
	unlink(blob);
	/* ... and a missing one is not returned by lookup. */
	CHECK(azl_cache_lookup(c, other) == NULL);
	CHECK(azl_cache_check(c, &err) == 0);
	free(blob);
}

/* Two handles (as two processes would) get different temporary names for
 * the same digest while the first holds it. */
static void test_tmp_lock(struct azl_cache *c)
{
	struct azl_cache *c2 = NULL;
	struct azl_err err = { 0 };
	char sha[65];
	char *a, *b;

	azl_sha256_hex("x", 1, sha);
	CHECK(azl_cache_open(dir, &c2, &err) == 0);
	a = azl_cache_tmp_path(c, sha);
	b = c2 ? azl_cache_tmp_path(c2, sha) : NULL;
	CHECK(a && b && strcmp(a, b) != 0);
	if (b)
		unlink(b);
	free(a);
	free(b);
	azl_cache_close(c2);
}

/* NPROC processes, released together through a pipe, each open the same
 * new cache: every one must succeed (sqlite may refuse the first switch
 * to WAL or the schema's lock upgrade at once; the cache must wait). */
#define NPROC 8
static void test_concurrent_open(const char *base)
{
	int failed = 0;

	for (int round = 0; round < 15; round++) {
		char *d = azl_xasprintf("%s/race%d", base, round);
		int go[2];
		pid_t pids[NPROC];

		CHECK(pipe(go) == 0);
		for (int i = 0; i < NPROC; i++) {
			pids[i] = fork();
			if (pids[i] == 0) {
				struct azl_cache *c = NULL;
				struct azl_err e = { 0 };
				char b;
				close(go[1]);
				if (read(go[0], &b, 1) < 0)
					_exit(3);
				if (azl_cache_open(d, &c, &e) < 0) {
					fprintf(stderr, "open %s: %s\n", d, e.msg);
					_exit(1);
				}
				azl_cache_close(c);
				_exit(0);
			}
		}
		close(go[0]);
		close(go[1]); /* EOF: all of them go */
		for (int i = 0; i < NPROC; i++) {
			int st = 0;
			if (pids[i] < 0 || waitpid(pids[i], &st, 0) < 0 ||
			    !WIFEXITED(st) || WEXITSTATUS(st) != 0)
				failed++;
		}
		free(d);
	}
	CHECK(failed == 0);
}

/* A batch larger than the early-sync step (8 MiB): every blob is in place
 * and indexed after the commit, as seen from a second handle. */
static void test_batch(struct azl_cache *c)
{
	enum { NBLOB = 5, BLOB = 3 << 20 };
	struct azl_err err = { 0 };
	char sha[NBLOB][65];
	char *data = azl_xmalloc(BLOB);
	struct azl_cache *c2 = NULL;

	azl_cache_batch_begin(c);
	for (int i = 0; i < NBLOB; i++) {
		memset(data, 'a' + i, BLOB);
		azl_sha256_hex(data, BLOB, sha[i]);
		char *tmp = azl_cache_tmp_path(c, sha[i]);
		CHECK(tmp && azl_write_file_atomic(tmp, data, BLOB, 0644, &err) == 0);
		CHECK(tmp && azl_cache_insert(c, tmp, sha[i], BLOB, "rpm", "big", &err) == 0);
		free(tmp);
	}
	CHECK(azl_cache_batch_commit(c, &err) == 0);
	CHECK(azl_cache_open(dir, &c2, &err) == 0);
	for (int i = 0; c2 && i < NBLOB; i++) {
		char *p = azl_cache_lookup(c2, sha[i]);
		struct stat st;
		CHECK(p && stat(p, &st) == 0 && st.st_size == BLOB);
		free(p);
	}
	azl_cache_close(c2);
	free(data);
}

/* A cache from before the flat layout: its blobs sit in folders named by
 * their first two digits and the index has no layout version.  Opening it
 * moves every blob up and removes the folders; the rows keep working. */
static void test_old_layout(const char *base)
{
	struct azl_cache *c = NULL, *c2 = NULL;
	struct azl_err err = { 0 };
	char *d = azl_xasprintf("%s/old", base), *cmd, *sub, *p;
	char sha[65];
	struct stat st;

	azl_sha256_hex("old\n", 4, sha);
	CHECK(azl_cache_open(d, &c, &err) == 0);
	put_tmp(c, sha, "old\n");
	p = azl_cache_tmp_path(c, sha);
	CHECK(p && azl_cache_insert(c, p, sha, 4, "rpm", "old-1-1.noarch", &err) == 0);
	free(p);
	azl_cache_close(c);
	/* Put it back the way an older azl-compose left it. */
	sub = azl_xasprintf("%s/blobs/sha256/%.2s", d, sha);
	cmd = azl_xasprintf("mkdir %s && mv %s/blobs/sha256/%s %s/ && "
			    "sqlite3 %s/index.sqlite 'PRAGMA user_version=0'",
			    sub, d, sha, sub, d);
	CHECK(system(cmd) == 0);
	free(cmd);
	CHECK(azl_cache_open(d, &c2, &err) == 0);
	p = c2 ? azl_cache_lookup(c2, sha) : NULL;
	CHECK(p != NULL);
	if (p) {
		char *want = azl_xasprintf("%s/blobs/sha256/%s", d, sha);
		CHECK_STR(p, want);
		CHECK(stat(p, &st) == 0 && st.st_size == 4);
		free(want);
	}
	free(p);
	CHECK(stat(sub, &st) < 0); /* the old folder is gone */
	CHECK(c2 && azl_cache_check(c2, &err) == 0);
	azl_cache_close(c2);
	free(sub);
	free(d);
}

int main(void)
{
	struct azl_cache *c = NULL;
	struct azl_err err = { 0 };

	if (!mkdtemp(dir))
		return 1;
	CHECK(azl_cache_open(dir, &c, &err) == 0);
	if (!c) {
		fprintf(stderr, "%s\n", err.msg);
		return t_done();
	}
	CHECK_STR(azl_cache_dir(c), dir);
	test_insert_lookup(c);
	test_tmp_lock(c);
	test_batch(c);
	azl_cache_close(c);
	test_concurrent_open(dir);
	test_old_layout(dir);

	/* The default location follows XDG_CACHE_HOME. */
	char *xdg = azl_xasprintf("%s/xdg", dir);
	setenv("XDG_CACHE_HOME", xdg, 1);
	CHECK(azl_cache_open(NULL, &c, &err) == 0);
	if (c) {
		CHECK(strncmp(azl_cache_dir(c), xdg, strlen(xdg)) == 0);
		CHECK_CONTAINS(azl_cache_dir(c), "/azl-compose");
		azl_cache_close(c);
	}
	free(xdg);
	char *cmd = azl_xasprintf("rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
	free(cmd);
	return t_done();
}
