#include "base/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

AZL_PRINTF(4, 0)
static int set(struct azl_err *err, int code, enum azl_err_kind kind,
	       const char *fmt, va_list ap)
{
	if (code > 0)
		code = -code;
	if (code == 0)
		code = -EIO;
	if (!err)
		return code;
	err->code = code;
	err->kind = kind;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	return code;
}

int azl_errf(struct azl_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	code = set(err, code, AZL_ERR_WORK, fmt, ap);
	va_end(ap);
	return code;
}

int azl_err_input(struct azl_err *err, const char *fmt, ...)
{
	va_list ap;
	int code;
	va_start(ap, fmt);
	code = set(err, -EINVAL, AZL_ERR_INPUT, fmt, ap);
	va_end(ap);
	return code;
}

int azl_err_prefix(struct azl_err *err, const char *fmt, ...)
{
	char ctx[1024], old[sizeof(err->msg)];
	va_list ap;

	if (!err)
		return -EIO;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	size_t n = strlen(ctx);
	if (n > sizeof(err->msg) - 3)
		n = sizeof(err->msg) - 3;
	memcpy(err->msg, ctx, n);
	memcpy(err->msg + n, ": ", 2);
	n += 2;
	size_t m = strnlen(old, sizeof(err->msg) - n - 1);
	memcpy(err->msg + n, old, m);
	err->msg[n + m] = '\0';
	if (err->code == 0) {
		err->code = -EIO;
		err->kind = AZL_ERR_WORK;
	}
	return err->code;
}

void azl_err_clear(struct azl_err *err)
{
	if (err) {
		err->code = 0;
		err->kind = AZL_ERR_NONE;
		err->msg[0] = '\0';
	}
}

int azl_err_exit_code(const struct azl_err *err)
{
	if (!err || err->code == 0)
		return 0;
	return err->kind == AZL_ERR_INPUT ? 2 : 1;
}
