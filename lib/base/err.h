/* Error reporting for every lib/ function.
 *
 * Functions return 0 or a negative errno-style code and fill a
 * caller-provided struct azl_err whose message carries context (file:line:col,
 * package NEVRA, URL).  Library code never prints or exits: cmd/ prints the
 * message and maps the kind to the exit code (1 work failed, 2 bad input). */
#ifndef AZL_BASE_ERR_H
#define AZL_BASE_ERR_H

#include <stddef.h>

enum azl_err_kind {
	AZL_ERR_NONE = 0,
	AZL_ERR_WORK = 1,  /* the work failed: network, checksum, solver... exit 1 */
	AZL_ERR_INPUT = 2, /* bad usage or input: manifest, options... exit 2 */
};

struct azl_err {
	int code;               /* negative errno-style code, 0 when unset */
	enum azl_err_kind kind; /* maps to the exit code */
	char msg[4096];
};

#define AZL_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Set a work failure; returns code (negative) so callers can `return azl_errf(...)`.
 * A positive code is negated.  err may be NULL. */
int azl_errf(struct azl_err *err, int code, const char *fmt, ...) AZL_PRINTF(3, 4);

/* Set a bad-input error (exit 2); returns -EINVAL. */
int azl_err_input(struct azl_err *err, const char *fmt, ...) AZL_PRINTF(2, 3);

/* Prepend context to an existing message: "ctx: old message".  Keeps code/kind.
 * Returns err->code. */
int azl_err_prefix(struct azl_err *err, const char *fmt, ...) AZL_PRINTF(2, 3);

void azl_err_clear(struct azl_err *err);

/* Exit status for an error: 0 if none, 1 work failure, 2 bad input. */
int azl_err_exit_code(const struct azl_err *err);

#endif
