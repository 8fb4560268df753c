/* Shared by the fuzz harnesses (tests/fuzz/fuzz_<target>.c).
 *
 * Each harness defines one function azl_fuzz_<target>(data, size) that
 * feeds the bytes to a reader and returns 0; a broken invariant calls
 * azl_fuzz_fail (abort), so libFuzzer records it like a crash.  The same
 * functions run without libFuzzer in tests/unit/test_fuzz_regress.c
 * (AZL_FUZZ_REPLAY), which replays every input in tests/fuzz/regress/.
 *
 * Readers that only take a path get the bytes in a file under /dev/shm
 * (memory, no disk wear), one name per process and purpose, rewritten for
 * every input and removed at exit. */
#ifndef AZL_FUZZ_H
#define AZL_FUZZ_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"

#ifdef AZL_FUZZ_REPLAY
#define AZL_FUZZ_ENTRY(fn)
#else
#define AZL_FUZZ_ENTRY(fn)                                                 \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);      \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)       \
	{                                                                  \
		return fn(data, size);                                     \
	}
#endif

static inline void azl_fuzz_fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz invariant broken: %s: %s\n", what,
		detail ? detail : "");
	abort();
}

/* Temporary paths made by azl_fuzz_path (and their names), removed at
 * exit. */
#define AZL_FUZZ_NPATHS 32
static char *azl_fuzz_paths[AZL_FUZZ_NPATHS], *azl_fuzz_names[AZL_FUZZ_NPATHS];

static inline void azl_fuzz_cleanup(void)
{
	for (size_t i = 0; i < AZL_FUZZ_NPATHS; i++) {
		if (azl_fuzz_paths[i] && unlink(azl_fuzz_paths[i]) < 0)
			rmdir(azl_fuzz_paths[i]); /* a directory */
		free(azl_fuzz_paths[i]);
		free(azl_fuzz_names[i]);
		azl_fuzz_paths[i] = azl_fuzz_names[i] = NULL;
	}
}

/* A per-process path in /dev/shm (TMPDIR when /dev/shm is absent) ending
 * in name.  The same name gives the same path for every input; it stays
 * valid until exit. */
static inline const char *azl_fuzz_path(const char *name)
{
	static int registered;
	const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	size_t i;

	for (i = 0; i < AZL_FUZZ_NPATHS && azl_fuzz_names[i]; i++)
		if (!strcmp(azl_fuzz_names[i], name))
			return azl_fuzz_paths[i];
	if (i == AZL_FUZZ_NPATHS)
		azl_fuzz_fail("azl_fuzz_path", "more than AZL_FUZZ_NPATHS names");
	azl_fuzz_names[i] = azl_xstrdup(name);
	azl_fuzz_paths[i] = azl_xasprintf("%s/azl-fuzz-%ld-%s", dir ? dir : "/tmp",
					  (long)getpid(), name);
	if (!registered++)
		atexit(azl_fuzz_cleanup);
	return azl_fuzz_paths[i];
}

/* Write data to name's file (truncating) and return its path. */
static inline const char *azl_fuzz_file(const char *name, const void *data, size_t size)
{
	const char *path = azl_fuzz_path(name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || azl_write_all(fd, data, size) < 0)
		azl_fuzz_fail("cannot write the input file", path);
	close(fd);
	return path;
}

/* A NUL-terminated copy of the input (for text readers); caller frees. */
static inline char *azl_fuzz_text(const uint8_t *data, size_t size)
{
	char *s = azl_xmalloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* An error path must leave a message: the tool prints it to the user. */
static inline void azl_fuzz_check_err(int rc, const struct azl_err *err, const char *what)
{
	if (rc < 0 && !err->msg[0])
		azl_fuzz_fail(what, "failed with an empty error message");
	if (rc > 0)
		azl_fuzz_fail(what, "returned a positive code");
}

#endif
