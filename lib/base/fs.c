#include "base/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"

int azl_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int azl_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		got += (size_t)n;
	}
	return 0;
}

void azl_next_data(int fd, uint64_t pos, uint64_t end, uint64_t *data,
		   uint64_t *hole)
{
	off_t d = lseek(fd, (off_t)pos, SEEK_DATA), h;

	if (d < 0) {
		*data = errno == ENXIO ? end : pos;
		*hole = end;
		return;
	}
	*data = (uint64_t)d < end ? (uint64_t)d : end;
	h = lseek(fd, d, SEEK_HOLE);
	*hole = h < 0 || (uint64_t)h > end ? end : (uint64_t)h;
}

int azl_out_open(struct azl_out *o, const char *final_path, mode_t mode,
		 struct azl_err *err)
{
	memset(o, 0, sizeof(*o));
	o->fd = -1;
	o->final_path = azl_xstrdup(final_path);
	o->tmp_path = azl_xasprintf("%s.tmp.XXXXXX", final_path);
	o->fd = mkostemp(o->tmp_path, O_CLOEXEC);
	if (o->fd < 0) {
		int e = errno;
		free(o->tmp_path);
		free(o->final_path);
		o->tmp_path = o->final_path = NULL;
		return azl_errf(err, -e, "%s: cannot create: %s", final_path,
				strerror(e));
	}
	if (fchmod(o->fd, mode) < 0)
		o->error = errno;
	return 0;
}

int azl_out_write(struct azl_out *o, const void *data, size_t len)
{
	int r;
	if (o->error)
		return -o->error;
	r = azl_write_all(o->fd, data, len);
	if (r < 0)
		o->error = -r;
	return r;
}

void azl_out_abort(struct azl_out *o)
{
	if (o->fd >= 0)
		close(o->fd);
	if (o->tmp_path)
		unlink(o->tmp_path);
	free(o->tmp_path);
	free(o->final_path);
	o->fd = -1;
	o->tmp_path = o->final_path = NULL;
}

int azl_out_commit(struct azl_out *o, struct azl_err *err)
{
	int r = 0;

	if (!o->error && fsync(o->fd) < 0)
		o->error = errno;
	if (!o->error && close(o->fd) < 0)
		o->error = errno;
	else if (o->error)
		close(o->fd);
	o->fd = -1;
	if (!o->error && rename(o->tmp_path, o->final_path) < 0)
		o->error = errno;
	if (o->error) {
		r = azl_errf(err, -o->error, "%s: %s", o->final_path,
			     strerror(o->error));
		unlink(o->tmp_path);
	}
	free(o->tmp_path);
	free(o->final_path);
	o->tmp_path = o->final_path = NULL;
	return r;
}

int azl_write_file_atomic(const char *path, const void *data, size_t len,
			  mode_t mode, struct azl_err *err)
{
	struct azl_out o;
	int r = azl_out_open(&o, path, mode, err);
	if (r < 0)
		return r;
	azl_out_write(&o, data, len);
	return azl_out_commit(&o, err);
}

int azl_read_file(const char *path, size_t max_size, char **data, size_t *len,
		  struct azl_err *err)
{
	struct azl_buf b = AZL_BUF_INIT;
	char chunk[65536];
	int fd, r = 0;

	if (!max_size)
		max_size = 64u << 20;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return azl_errf(err, -errno, "%s: %s", path, strerror(errno));
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = azl_errf(err, -errno, "%s: read: %s", path,
				     strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > max_size) {
			r = azl_errf(err, -EFBIG, "%s: larger than %zu bytes",
				     path, max_size);
			goto out;
		}
		azl_buf_add(&b, chunk, (size_t)n);
	}
	if (len)
		*len = b.len;
	*data = azl_buf_detach(&b);
out:
	close(fd);
	if (r < 0)
		azl_buf_release(&b);
	return r;
}

int azl_mkdir_p(const char *path, struct azl_err *err)
{
	char *p = azl_xstrdup(path);
	int r = 0;

	for (char *s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			r = azl_errf(err, -errno, "%s: mkdir: %s", p,
				     strerror(errno));
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return r;
}

char *azl_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return azl_xstrdup(".");
	if (slash == path)
		return azl_xstrdup("/");
	return strndup(path, (size_t)(slash - path));
}

char *azl_path_join(const char *dir, const char *name)
{
	if (name[0] == '/' || !dir || !*dir)
		return azl_xstrdup(name);
	size_t n = strlen(dir);
	return azl_xasprintf("%s%s%s", dir, dir[n - 1] == '/' ? "" : "/", name);
}
