#include "reproducible/cpio.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"

struct azl_cpio {
	struct azl_zstream *z;
	int64_t mtime;
	uint32_t ino;
	char *last;          /* previous path, for the order check */
	char *cur;           /* file being streamed */
	uint64_t remaining;  /* its bytes still owed */
	uint64_t pad;        /* padding after its data */
};

int azl_cpio_path_cmp(const char *a, const char *b)
{
	/* Compare component by component: '/' sorts before every byte. */
	for (;; a++, b++) {
		unsigned char ca = *a == '/' ? 1 : (unsigned char)*a;
		unsigned char cb = *b == '/' ? 1 : (unsigned char)*b;
		if (!*a || !*b || ca != cb)
			return (int)ca - (int)cb;
	}
}

int azl_cpio_open(enum azl_comp comp, int64_t mtime,
		  int (*sink)(void *ctx, const void *data, size_t len),
		  void *sink_ctx, struct azl_cpio **out, struct azl_err *err)
{
	struct azl_cpio *c = azl_xcalloc(1, sizeof(*c));
	/* One gzip member: the kernel's unpacker reads no further. */
	int rc = azl_zstream_open(comp, 0, 1, AZL_ZSTREAM_GZIP_ONE_MEMBER, sink,
				  sink_ctx, &c->z, err);
	if (rc < 0) {
		free(c);
		return azl_err_prefix(err, "cpio");
	}
	c->mtime = mtime < 0 ? 0 : mtime;
	c->ino = 1;
	*out = c;
	return 0;
}

static int put(struct azl_cpio *c, const void *data, size_t len,
	       struct azl_err *err)
{
	return azl_zstream_write(c->z, data, len, err);
}

static int put_zeros(struct azl_cpio *c, size_t n, struct azl_err *err)
{
	static const char zero[4];
	return n ? put(c, zero, n, err) : 0;
}

/* The previous file must be complete before anything else is written. */
static int finish_file(struct azl_cpio *c, struct azl_err *err)
{
	int rc;

	if (!c->cur)
		return 0;
	if (c->remaining)
		return azl_errf(err, -EINVAL, "cpio: %s: %" PRIu64 " bytes missing",
				c->cur, c->remaining);
	rc = put_zeros(c, c->pad, err);
	free(c->cur);
	c->cur = NULL;
	return rc;
}

static int check_order(struct azl_cpio *c, const char *path,
		       struct azl_err *err)
{
	if (path[0] != '/' || !path[1] || path[strlen(path) - 1] == '/')
		return azl_errf(err, -EINVAL, "cpio: %s: not a normalised absolute path", path);
	if (c->last && azl_cpio_path_cmp(c->last, path) >= 0)
		return azl_errf(err, -EINVAL, "cpio: %s: out of order after %s", path, c->last);
	free(c->last);
	c->last = azl_xstrdup(path);
	return 0;
}

static int header(struct azl_cpio *c, const char *path, uint32_t mode,
		  uint64_t size, uint32_t rmaj, uint32_t rmin,
		  struct azl_err *err)
{
	struct azl_buf b = AZL_BUF_INIT;
	const char *name = path[0] == '/' ? path + 1 : path;
	size_t namesize = strlen(name) + 1;
	int rc;

	if (size > 0xffffffffu)
		return azl_errf(err, -EFBIG, "cpio: %s: larger than 4 GiB", path);
	rc = finish_file(c, err);
	if (rc < 0)
		return rc;
	azl_buf_addf(&b, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		     c->ino++, mode, 0u, 0u, S_ISDIR(mode) ? 2u : 1u,
		     (uint32_t)c->mtime, (uint32_t)size, 0u, 0u, rmaj, rmin,
		     (uint32_t)namesize, 0u);
	azl_buf_add(&b, name, namesize);
	while (b.len % 4)
		azl_buf_addc(&b, 0);
	rc = put(c, b.data, b.len, err);
	azl_buf_release(&b);
	return rc;
}

static int entry(struct azl_cpio *c, const char *path, uint32_t mode,
		 uint64_t size, uint32_t rmaj, uint32_t rmin,
		 struct azl_err *err)
{
	int rc = finish_file(c, err);
	if (rc == 0)
		rc = check_order(c, path, err);
	if (rc == 0)
		rc = header(c, path, mode, size, rmaj, rmin, err);
	return rc;
}

int azl_cpio_dir(struct azl_cpio *c, const char *path, uint32_t mode,
		 struct azl_err *err)
{
	return entry(c, path, S_IFDIR | (mode & 07777), 0, 0, 0, err);
}

int azl_cpio_symlink(struct azl_cpio *c, const char *path, const char *target,
		     struct azl_err *err)
{
	size_t len = strlen(target);
	int rc = entry(c, path, S_IFLNK | 0777, len, 0, 0, err);
	if (rc == 0)
		rc = put(c, target, len, err);
	if (rc == 0)
		rc = put_zeros(c, (4 - len % 4) % 4, err);
	return rc;
}

int azl_cpio_chr(struct azl_cpio *c, const char *path, uint32_t mode,
		 uint32_t major, uint32_t minor, struct azl_err *err)
{
	return entry(c, path, S_IFCHR | (mode & 07777), 0, major, minor, err);
}

int azl_cpio_file(struct azl_cpio *c, const char *path, uint32_t mode,
		  uint64_t size, struct azl_err *err)
{
	int rc = entry(c, path, S_IFREG | (mode & 07777), size, 0, 0, err);
	if (rc < 0)
		return rc;
	c->cur = azl_xstrdup(path);
	c->remaining = size;
	c->pad = (4 - size % 4) % 4;
	return 0;
}

int azl_cpio_data(struct azl_cpio *c, const void *data, size_t len,
		  struct azl_err *err)
{
	if (!c->cur || len > c->remaining)
		return azl_errf(err, -EINVAL, "cpio: %s: more data than declared",
				c->cur ? c->cur : "(no file)");
	c->remaining -= len;
	return put(c, data, len, err);
}

int azl_cpio_file_mem(struct azl_cpio *c, const char *path, uint32_t mode,
		      const void *data, size_t len, struct azl_err *err)
{
	int rc = azl_cpio_file(c, path, mode, len, err);
	if (rc == 0 && len)
		rc = azl_cpio_data(c, data, len, err);
	return rc;
}

int azl_cpio_close(struct azl_cpio *c, struct azl_zstream_result *res,
		   struct azl_err *err)
{
	int rc = finish_file(c, err);

	c->ino = 0; /* the trailer carries no inode, as GNU cpio writes it */
	if (rc == 0)
		rc = header(c, "TRAILER!!!", 0, 0, 0, 0, err);
	if (rc < 0) {
		azl_cpio_free(c);
		return rc;
	}
	rc = azl_zstream_close(c->z, res, err);
	c->z = NULL;
	azl_cpio_free(c);
	return rc;
}

void azl_cpio_free(struct azl_cpio *c)
{
	if (!c)
		return;
	azl_zstream_free(c->z);
	free(c->last);
	free(c->cur);
	free(c);
}
