/* Minimal unit-test harness: CHECK records a failure and goes on; the
 * program prints "N passed, N failed" and exits non-zero on any failure. */
#ifndef AZL_TEST_T_H
#define AZL_TEST_T_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "compose/fsmodel.h"

static int t_pass, t_fail;

#define CHECK(cond)                                                        \
	do {                                                               \
		if (cond) {                                                \
			t_pass++;                                          \
		} else {                                                   \
			t_fail++;                                          \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
				__LINE__, #cond);                          \
		}                                                          \
	} while (0)

#define CHECK_STR(a, b)                                                    \
	do {                                                               \
		const char *t_a = (a), *t_b = (b);                         \
		if (t_a && t_b && !strcmp(t_a, t_b)) {                     \
			t_pass++;                                          \
		} else {                                                   \
			t_fail++;                                          \
			fprintf(stderr, "%s:%d: CHECK_STR failed: %s == %s\n"  \
				"  got:      %s\n  expected: %s\n", __FILE__,  \
				__LINE__, #a, #b, t_a ? t_a : "(null)",    \
				t_b ? t_b : "(null)");                     \
		}                                                          \
	} while (0)

/* Substring check, for error messages. */
#define CHECK_CONTAINS(hay, needle)                                        \
	do {                                                               \
		const char *t_h = (hay), *t_n = (needle);                  \
		if (t_h && t_n && strstr(t_h, t_n)) {                      \
			t_pass++;                                          \
		} else {                                                   \
			t_fail++;                                          \
			fprintf(stderr, "%s:%d: expected \"%s\" in: %s\n",  \
				__FILE__, __LINE__, t_n, t_h ? t_h : "(null)"); \
		}                                                          \
	} while (0)

/* stdout of a shell command (independent tools: cpio, objdump, ...);
 * "" when it cannot start.  Caller frees. */
static inline char *t_run(const char *cmd)
{
	struct azl_buf b = AZL_BUF_INIT;
	char chunk[4096];
	size_t n;
	FILE *p = popen(cmd, "r");
	if (!p)
		return azl_xstrdup("");
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		azl_buf_add(&b, chunk, n);
	pclose(p);
	return azl_buf_detach(&b);
}

/* Add a node to a hand-built model (exits on failure: the test's setup is
 * broken).  tmpl, when given, supplies every other field; the model takes
 * what it owns and tmpl is zeroed. */
static inline void t_add_node(struct azl_fs *fs, const char *path,
			      enum azl_ftype t, uint32_t mode,
			      struct azl_node *tmpl)
{
	struct azl_node n = {0};
	struct azl_err err = {0};
	if (tmpl)
		n = *tmpl;
	n.path = azl_xstrdup(path);
	n.type = t;
	n.mode = mode;
	if (!n.mtime)
		n.mtime = 1600000000;
	if (azl_fs_add(fs, &n, &err) < 0) {
		fprintf(stderr, "add %s: %s\n", path, err.msg);
		exit(1);
	}
	if (tmpl)
		memset(tmpl, 0, sizeof(*tmpl));
}

static inline int t_done(void)
{
	printf("%d passed, %d failed\n", t_pass, t_fail);
	return t_fail ? 1 : 0;
}

#endif
