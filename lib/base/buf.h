/* A growable byte/string buffer (git's strbuf, trimmed).
 *
 * Ownership: the buffer owns data; azl_buf_release() frees it,
 * azl_buf_detach() hands it to the caller (free() it).  data is always
 * NUL-terminated once anything was appended.  Allocation failure aborts:
 * every caller would otherwise need the same three-line check. */
#ifndef AZL_BASE_BUF_H
#define AZL_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "base/err.h"

struct azl_buf {
	char *data;
	size_t len;
	size_t cap;
};

#define AZL_BUF_INIT { NULL, 0, 0 }

void azl_buf_grow(struct azl_buf *b, size_t extra);
void azl_buf_add(struct azl_buf *b, const void *data, size_t len);
void azl_buf_adds(struct azl_buf *b, const char *s);
void azl_buf_addc(struct azl_buf *b, char c);
void azl_buf_addf(struct azl_buf *b, const char *fmt, ...) AZL_PRINTF(2, 3);
void azl_buf_vaddf(struct azl_buf *b, const char *fmt, va_list ap) AZL_PRINTF(2, 0);
void azl_buf_reset(struct azl_buf *b);   /* len = 0, keeps memory */
void azl_buf_release(struct azl_buf *b); /* frees, back to INIT */
char *azl_buf_detach(struct azl_buf *b); /* caller frees; never NULL */
/* Current contents as a string ("" when empty). */
const char *azl_buf_str(const struct azl_buf *b);

/* Allocation helpers that abort on OOM (same reasoning as above). */
void *azl_xmalloc(size_t n);
void *azl_xcalloc(size_t n, size_t size);
void *azl_xrealloc(void *p, size_t n);
char *azl_xstrdup(const char *s);   /* NULL in, NULL out */
char *azl_xasprintf(const char *fmt, ...) AZL_PRINTF(1, 2);

/* Free n strings and the array holding them (v may be NULL). */
void azl_strv_free(char **v, size_t n);
/* Free a NULL-terminated string array and its strings (v may be NULL). */
void azl_strv_free0(char **v);

#endif
