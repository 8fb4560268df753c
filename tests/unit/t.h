/* Minimal unit-test harness: CHECK records a failure and goes on; the
 * program prints "N passed, N failed" and exits non-zero on any failure. */
#ifndef AZL_TEST_T_H
#define AZL_TEST_T_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static inline int t_done(void)
{
	printf("%d passed, %d failed\n", t_pass, t_fail);
	return t_fail ? 1 : 0;
}

#endif
