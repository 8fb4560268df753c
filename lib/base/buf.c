#include "base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(void)
{
	fputs("azl-compose: out of memory\n", stderr);
	abort();
}

void *azl_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *azl_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *azl_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *azl_xstrdup(const char *s)
{
	char *d;
	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		oom();
	return d;
}

char *azl_xasprintf(const char *fmt, ...)
{
	struct azl_buf b = AZL_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	azl_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	return azl_buf_detach(&b);
}

void azl_buf_grow(struct azl_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = azl_xrealloc(b->data, cap);
	b->cap = cap;
}

void azl_buf_add(struct azl_buf *b, const void *data, size_t len)
{
	azl_buf_grow(b, len);
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void azl_buf_adds(struct azl_buf *b, const char *s)
{
	azl_buf_add(b, s, strlen(s));
}

void azl_buf_addc(struct azl_buf *b, char c)
{
	azl_buf_add(b, &c, 1);
}

void azl_buf_vaddf(struct azl_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return;
	azl_buf_grow(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void azl_buf_addf(struct azl_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	azl_buf_vaddf(b, fmt, ap);
	va_end(ap);
}

void azl_buf_reset(struct azl_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void azl_buf_release(struct azl_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *azl_buf_detach(struct azl_buf *b)
{
	char *d = b->data ? b->data : azl_xstrdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	return d;
}

const char *azl_buf_str(const struct azl_buf *b)
{
	return b->data ? b->data : "";
}

void azl_strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

void azl_strv_free0(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}
