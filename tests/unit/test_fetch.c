/* azl_fetch_*: file:// always; http:// through tests/lib/httpd.py when
 * python3 is there (fault injection: 500, 404, reset, truncate, norange). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

	opts_fast(&o);
	CHECK(azl_read_file(src, 0, &data, &len, &err) == 0);
	CHECK(azl_write_file_atomic(dest, data, len / 3, 0644, &err) == 0);
	CHECK(azl_fetch_to_file(&o, url, dest, payload_sha, payload_len, "p", &err) == 0);
	CHECK(azl_sha256_file(dest, hex, NULL, &err) == 0);
	CHECK_STR(hex, payload_sha);

	data[10] ^= 1;
	CHECK(azl_write_file_atomic(dest, data, len / 2, 0644, &err) == 0);
	CHECK(azl_fetch_to_file(&o, url, dest, payload_sha, payload_len, "p", &err) == 0);
	CHECK(azl_sha256_file(dest, hex, NULL, &err) == 0);
	CHECK_STR(hex, payload_sha);
	free(data);
	free(url);
	free(src);
	free(dest);
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
	char *cmd = azl_xasprintf("rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
	free(cmd);
	return t_done();
}
