/* azl_fetch_*: file:// URLs (memory, file, checks, resume of a partial
 * file), then azl_fetch_many over http:// against tests/lib/httpd.py with
 * fault injection: per-item results, retries, 404 not retried, a server
 * ignoring Range, and the per-item done callback. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/fetch.h"
#include "t.h"

static char dir[] = "/tmp/azl-test-fetch-XXXXXX";
static char payload_sha[65];
static size_t payload_len = 300000;

static void make_payload(const char *path)
{
	char *p = azl_xmalloc(payload_len);
	struct azl_err err;
	unsigned x = 12345;
	for (size_t i = 0; i < payload_len; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (char)(x >> 16);
	}
	azl_sha256_hex(p, payload_len, payload_sha);
	CHECK(azl_write_file_atomic(path, p, payload_len, 0644, &err) == 0);
	free(p);
}

/* An item's tap: its own digest of what it was shown, which must be the
 * content's, in order, restarting only at offset 0.  It hashes the first
 * byte itself and has the fetch add the rest (from 1, then from 0), as a
 * package's payload digest is added. */
struct tap {
	struct azl_sha256 *h;
	uint64_t next;
	int starts, gaps;
	char hex[65];
};

static struct azl_sha256 *tap_fn(void *ctx, uint64_t off, const void *data,
				 size_t len, size_t *from)
{
	struct tap *t = ctx;
	char dummy[65];

	if (off == 0) {
		if (t->h)
			azl_sha256_final(t->h, dummy);
		t->h = azl_sha256_new();
		t->next = 0;
		t->starts++;
	}
	if (off != t->next || !t->h) {
		t->gaps++;
		return NULL;
	}
	t->next = off + len;
	*from = 0;
	if (off == 0 && len) {
		azl_sha256_update(t->h, data, 1);
		*from = 1;
	}
	return t->h;
}

static void tap_attach(struct azl_fetch_item *it, struct tap *t)
{
	memset(t, 0, sizeof(*t));
	it->tap = tap_fn;
	it->tap_ctx = t;
}

/* The tap saw the whole content (and nothing out of order). */
static void tap_check(struct tap *t, const char *want_hex)
{
	CHECK(t->h != NULL);
	if (t->h)
		azl_sha256_final(t->h, t->hex);
	t->h = NULL;
	CHECK(t->gaps == 0);
	CHECK_STR(t->hex, want_hex);
}

static void opts_fast(struct azl_fetch_opts *o)
{
	azl_fetch_opts_init(o);
	o->backoff_ms = 10;
	o->retries = 2;
	o->stall_timeout_s = 2;
}

static void test_file_urls(void)
{
	struct azl_fetch_opts o;
	struct azl_err err = { 0 };
	char *url = azl_xasprintf("file://%s/blob", dir);
	char *dest = azl_xasprintf("%s/out", dir);
	char *data = NULL, hex[65];
	size_t len = 0;
	uint64_t size;

	opts_fast(&o);
	CHECK(azl_fetch_to_memory(&o, url, 0, &data, &len, &err) == 0);
	CHECK(len == payload_len);
	if (data) {
		azl_sha256_hex(data, len, hex);
		CHECK_STR(hex, payload_sha);
	}
	free(data);
	data = NULL;

	CHECK(azl_fetch_to_memory(&o, url, 1000, &data, &len, &err) < 0);
	CHECK_CONTAINS(err.msg, "larger than");
	CHECK(data == NULL);

	CHECK(azl_fetch_to_file(&o, url, dest, payload_sha, payload_len, "pkg-1.0-1.x86_64", &err) == 0);
	CHECK(azl_sha256_file(dest, hex, &size, &err) == 0);
	CHECK_STR(hex, payload_sha);
	CHECK(size == payload_len);

	/* A wrong digest is named, with label and URL, and the file is gone. */
	char bad[65];
	memset(bad, 'a', 64);
	bad[64] = '\0';
	CHECK(azl_fetch_to_file(&o, url, dest, bad, 0, "pkg-1.0-1.x86_64", &err) < 0);
	CHECK_CONTAINS(err.msg, "pkg-1.0-1.x86_64");
	CHECK_CONTAINS(err.msg, url);
	CHECK_CONTAINS(err.msg, "sha256 mismatch");
	CHECK_CONTAINS(err.msg, payload_sha);
	CHECK(access(dest, F_OK) < 0);

	CHECK(azl_fetch_to_file(&o, url, dest, NULL, payload_len + 1, "p", &err) < 0);
	CHECK_CONTAINS(err.msg, "size mismatch");

	free(url);
	url = azl_xasprintf("file://%s/missing", dir);
	CHECK(azl_fetch_to_memory(&o, url, 0, &data, &len, &err) < 0);
	CHECK_CONTAINS(err.msg, "missing");
	free(url);
	free(dest);
}

/* A partial file from an earlier run is continued, and a partial file with
 * wrong bytes is detected and replaced. */
static void test_file_resume(void)
{
	struct azl_fetch_opts o;
	struct azl_err err = { 0 };
	char *url = azl_xasprintf("file://%s/blob", dir);
	char *src = azl_xasprintf("%s/blob", dir);
	char *dest = azl_xasprintf("%s/partial", dir);
	char *data, hex[65];
	size_t len;
	struct azl_fetch_item it = { .url = url, .dest = dest, .label = "p",
				     .sha256 = payload_sha, .size = payload_len };
	struct tap t;

	/* The tap is shown the held third (read back) and then the rest. */
	opts_fast(&o);
	CHECK(azl_read_file(src, 0, &data, &len, &err) == 0);
	CHECK(azl_write_file_atomic(dest, data, len / 3, 0644, &err) == 0);
	tap_attach(&it, &t);
	CHECK(azl_fetch_many(&o, &it, 1, &err) == 0);
	CHECK(azl_sha256_file(dest, hex, NULL, &err) == 0);
	CHECK_STR(hex, payload_sha);
	CHECK(t.starts == 1);
	tap_check(&t, payload_sha);

	/* A damaged partial file fails the digest, and the transfer starts
	 * over once: the tap starts over with it. */
	data[10] ^= 1;
	CHECK(azl_write_file_atomic(dest, data, len / 2, 0644, &err) == 0);
	tap_attach(&it, &t);
	CHECK(azl_fetch_many(&o, &it, 1, &err) == 0);
	CHECK(azl_sha256_file(dest, hex, NULL, &err) == 0);
	CHECK_STR(hex, payload_sha);
	CHECK(t.starts == 2);
	tap_check(&t, payload_sha);
	free(data);
	free(url);
	free(src);
	free(dest);
}

static pid_t httpd_start(int *port)
{
	char *pf = azl_xasprintf("%s/port", dir), *data = NULL;
	pid_t pid = fork();
	struct azl_err err;

	if (pid == 0) {
		execlp("python3", "python3", "tests/lib/httpd.py", "--root", dir,
		       "--port-file", pf, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 300 && !data; i++) {
		if (azl_read_file(pf, 0, &data, NULL, &err) < 0)
			usleep(50000);
	}
	*port = data ? atoi(data) : 0;
	free(data);
	free(pf);
	return pid;
}

static void on_done(void *ctx, struct azl_fetch_item *it, size_t i)
{
	int *seen = ctx;
	seen[i]++;
}

static void test_http_many(void)
{
	struct azl_fetch_opts o;
	struct azl_err err = { 0 };
	struct azl_fetch_item it[4];
	struct tap taps[4];
	int port = 0, seen[4] = { 0 };
	pid_t pid = httpd_start(&port);
	const char *paths[] = { "blob", "@fault/500*2/blob", "@fault/404/blob",
				"@fault/truncate*1/@fault/norange/blob" };
	char hex[65];

	CHECK(port > 0);
	opts_fast(&o);
	o.done = on_done;
	o.done_ctx = seen;
	memset(it, 0, sizeof(it));
	for (int i = 0; i < 4; i++) {
		it[i].url = azl_xasprintf("http://127.0.0.1:%d/%s", port, paths[i]);
		it[i].dest = azl_xasprintf("%s/h%d", dir, i);
		it[i].sha256 = payload_sha;
		it[i].size = payload_len;
		it[i].label = "pkg";
		tap_attach(&it[i], &taps[i]);
	}
	CHECK(azl_fetch_many(&o, it, 4, &err) < 0);
	CHECK_CONTAINS(err.msg, "HTTP 404");
	CHECK(it[0].result == 0);
	CHECK(it[1].result == 0);
	CHECK(it[2].result < 0);
	CHECK_CONTAINS(it[2].error, it[2].url);
	CHECK(it[3].result == 0);
	for (int i = 0; i < 4; i++) {
		CHECK(seen[i] == 1);
		if (it[i].result == 0) {
			CHECK(azl_sha256_file(it[i].dest, hex, NULL, &err) == 0);
			CHECK_STR(hex, payload_sha);
			tap_check(&taps[i], payload_sha);
		} else if (taps[i].h) {
			azl_sha256_final(taps[i].h, hex);
		}
		free((char *)it[i].url);
		free((char *)it[i].dest);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

/* More written buffers than one transfer may hold at once (4 at 256 KiB
 * with one transfer): the transfer waits for the hashing threads, and
 * everything still arrives, in order. */
static void test_large_serial(void)
{
	struct azl_fetch_opts o;
	struct azl_err err = { 0 };
	size_t n = (size_t)5 << 20;
	char *big = azl_xasprintf("%s/big", dir), want[65], hex[65];
	char *p = azl_xmalloc(n);
	struct azl_fetch_item it[2];
	struct tap taps[2];

	for (size_t i = 0; i < n; i++)
		p[i] = (char)(i * 2654435761u >> 13);
	azl_sha256_hex(p, n, want);
	CHECK(azl_write_file_atomic(big, p, n, 0644, &err) == 0);
	free(p);
	opts_fast(&o);
	o.parallel = 1;
	memset(it, 0, sizeof(it));
	for (int i = 0; i < 2; i++) {
		it[i].url = azl_xasprintf("file://%s", big);
		it[i].dest = azl_xasprintf("%s/big%d", dir, i);
		it[i].sha256 = want;
		it[i].size = n;
		tap_attach(&it[i], &taps[i]);
	}
	CHECK(azl_fetch_many(&o, it, 2, &err) == 0);
	for (int i = 0; i < 2; i++) {
		CHECK(azl_sha256_file(it[i].dest, hex, NULL, &err) == 0);
		CHECK_STR(hex, want);
		tap_check(&taps[i], want);
		free((char *)it[i].url);
		free((char *)it[i].dest);
	}
	free(big);
}

/* A failing write (here: past RLIMIT_FSIZE, EFBIG, which once read as
 * "larger than expected") fails the item, naming the file and the error,
 * not retried, and the partial file is gone.  In a child, so the limit
 * stays there. */
static void test_write_error(void)
{
	pid_t pid = fork();
	int status = 0;

	if (pid == 0) {
		struct azl_fetch_opts o;
		struct azl_err err = { 0 };
		struct rlimit rl = { 600 << 10, 600 << 10 };
		char *url = azl_xasprintf("file://%s/big", dir);
		char *dest = azl_xasprintf("%s/toolarge", dir);
		struct stat st;
		char want[65];

		signal(SIGXFSZ, SIG_IGN);
		CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
		CHECK(azl_sha256_file(url + 7, want, NULL, &err) == 0);
		opts_fast(&o);
		CHECK(azl_fetch_to_file(&o, url, dest, want, (uint64_t)5 << 20, "big-1", &err) < 0);
		CHECK_CONTAINS(err.msg, "big-1");
		CHECK_CONTAINS(err.msg, dest);
		CHECK_CONTAINS(err.msg, strerror(EFBIG));
		CHECK(!strstr(err.msg, "attempts"));
		CHECK(stat(dest, &st) < 0);
		free(url);
		free(dest);
		_exit(t_fail ? 1 : 0);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Items without a destination get one from opts->prepare as their
 * transfer starts (parallel 1: the second is named only once the first is
 * complete); a prepare that fails fails its item with its message, and the
 * items after it still run. */
struct prep {
	char *paths[3];
	int calls;
	int order_ok;
};

static int prepare_fn(void *ctx, struct azl_fetch_item *it, size_t i)
{
	struct prep *p = ctx;
	struct stat st;

	p->calls++;
	if (i == 1) {
		if (stat(p->paths[0], &st) < 0 || (size_t)st.st_size != payload_len)
			p->order_ok = 0;
		snprintf(it->error, sizeof(it->error), "no room for item %zu", i);
		return -ENOSPC;
	}
	it->dest = p->paths[i];
	return 0;
}

static void test_prepare(void)
{
	struct azl_fetch_opts o;
	struct azl_err err = { 0 };
	struct azl_fetch_item it[3];
	struct prep p = { .order_ok = 1 };
	char *url = azl_xasprintf("file://%s/blob", dir), hex[65];

	memset(it, 0, sizeof(it));
	opts_fast(&o);
	o.parallel = 1;
	o.prepare = prepare_fn;
	o.prepare_ctx = &p;
	for (int i = 0; i < 3; i++) {
		p.paths[i] = azl_xasprintf("%s/prep%d", dir, i);
		it[i].url = url;
		it[i].sha256 = payload_sha;
		it[i].size = payload_len;
	}
	CHECK(azl_fetch_many(&o, it, 3, &err) == -ENOSPC);
	CHECK(p.calls == 3 && p.order_ok);
	CHECK(it[0].result == 0 && it[2].result == 0);
	CHECK(it[1].result == -ENOSPC);
	CHECK_STR(it[1].error, "no room for item 1");
	CHECK_CONTAINS(err.msg, "no room for item 1");
	CHECK(azl_sha256_file(p.paths[2], hex, NULL, &err) == 0);
	CHECK_STR(hex, payload_sha);
	CHECK(access(p.paths[1], F_OK) < 0);
	/* Without a prepare, a missing destination is an error of its own. */
	memset(it, 0, sizeof(it));
	it[0].url = url;
	o.prepare = NULL;
	CHECK(azl_fetch_many(&o, it, 1, &err) < 0);
	CHECK_CONTAINS(it[0].error, "no destination file");
	for (int i = 0; i < 3; i++)
		free(p.paths[i]);
	free(url);
}

int main(void)
{
	char *blob;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	blob = azl_xasprintf("%s/blob", dir);
	make_payload(blob);
	free(blob);
	test_file_urls();
	test_file_resume();
	test_prepare();
	test_large_serial();
	test_write_error();
	test_http_many();
	char *cmd = azl_xasprintf("rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
	free(cmd);
	return t_done();
}
