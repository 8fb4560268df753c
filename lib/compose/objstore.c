/* Content-addressed object store and extraction records; see objstore.h. */
#include "compose/objstore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"

/* Contents up to this size are hashed in memory first, so a file whose
 * object already exists costs no syscall beyond one stat. */
#define OBJW_MEM (256u * 1024u)

struct pending {
	char *tmp;   /* DIR/tmp/rec.XXXXXX */
	char *final; /* DIR/pkgs/<hex> */
};

struct azl_objstore {
	char *dir;
	char *tmpdir;
	int dirfd;
	struct pending *pending;
	size_t npending;
};

struct azl_objw {
	struct azl_objstore *s;
	struct azl_sha256 *h;
	unsigned char *mem;   /* first OBJW_MEM bytes until spilled */
	size_t memlen;
	int fd;               /* -1 until spilled */
	char *tmp_path;       /* named temporary when O_TMPFILE is unsupported */
	uint64_t size;
};

int azl_objstore_open(const char *dir, struct azl_objstore **out,
		      struct azl_err *err)
{
	struct azl_objstore *s = azl_xcalloc(1, sizeof(*s));
	const char *subs[] = { "sha256", "pkgs", "tmp" };
	int r = 0;

	s->dir = azl_xstrdup(dir);
	s->tmpdir = azl_path_join(dir, "tmp");
	s->dirfd = -1;
	for (size_t i = 0; i < 3 && r == 0; i++) {
		char *p = azl_path_join(dir, subs[i]);
		r = azl_mkdir_p(p, err);
		free(p);
	}
	if (r < 0)
		goto out;
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0)
		r = azl_errf(err, -errno, "%s: %s", dir, strerror(errno));
out:
	if (r < 0) {
		azl_objstore_close(s);
		s = NULL;
	}
	*out = s;
	return r;
}

void azl_objstore_close(struct azl_objstore *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->npending; i++) {
		unlink(s->pending[i].tmp);
		free(s->pending[i].tmp);
		free(s->pending[i].final);
	}
	free(s->pending);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->tmpdir);
	free(s->dir);
	free(s);
}

const char *azl_objstore_dir(const struct azl_objstore *s)
{
	return s->dir;
}

char *azl_objstore_path(const struct azl_objstore *s, const char *sha256)
{
	return azl_xasprintf("%s/sha256/%.2s/%s", s->dir, sha256, sha256);
}

bool azl_objstore_has(const struct azl_objstore *s, const char *sha256,
		      uint64_t size)
{
	char *p = azl_objstore_path(s, sha256);
	struct stat st;
	bool ok = stat(p, &st) == 0 && S_ISREG(st.st_mode) &&
		  (uint64_t)st.st_size == size;
	free(p);
	return ok;
}

/* ---- writer ---- */

int azl_objw_open(struct azl_objstore *s, struct azl_objw **out,
		  struct azl_err *err)
{
	struct azl_objw *w = azl_xcalloc(1, sizeof(*w));
	w->s = s;
	w->h = azl_sha256_new();
	w->mem = azl_xmalloc(OBJW_MEM);
	w->fd = -1;
	*out = w;
	return 0;
}

/* Create the temporary file: unnamed where the filesystem allows, so a
 * killed build leaves nothing behind. */
static int objw_create(struct azl_objw *w, struct azl_err *err)
{
	w->fd = open(w->s->tmpdir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0444);
	if (w->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR ||
			  errno == EINVAL)) {
		w->tmp_path = azl_xasprintf("%s/obj.XXXXXX", w->s->tmpdir);
		w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
	}
	if (w->fd < 0)
		return azl_errf(err, -errno, "%s: cannot create an object: %s",
				w->s->tmpdir, strerror(errno));
	/* Exactly 0444 whatever the umask: objects are never written again. */
	if (fchmod(w->fd, 0444) < 0)
		return azl_errf(err, -errno, "%s: fchmod: %s", w->s->tmpdir,
				strerror(errno));
	return 0;
}

static int objw_spill(struct azl_objw *w, struct azl_err *err)
{
	int r = 0;

	if (w->fd < 0)
		r = objw_create(w, err);
	if (r == 0 && w->memlen) {
		r = azl_write_all(w->fd, w->mem, w->memlen);
		if (r < 0)
			azl_errf(err, r, "%s: writing an object: %s",
				 w->s->tmpdir, strerror(-r));
		w->memlen = 0;
	}
	return r;
}

int azl_objw_write(struct azl_objw *w, const void *data, size_t len,
		   struct azl_err *err)
{
	int r;

	azl_sha256_update(w->h, data, len);
	w->size += len;
	if (w->fd < 0 && w->memlen + len <= OBJW_MEM) {
		memcpy(w->mem + w->memlen, data, len);
		w->memlen += len;
		return 0;
	}
	r = objw_spill(w, err);
	if (r == 0) {
		r = azl_write_all(w->fd, data, len);
		if (r < 0)
			azl_errf(err, r, "%s: writing an object: %s",
				 w->s->tmpdir, strerror(-r));
	}
	return r;
}

/* Give the temporary its final name; an existing object wins. */
static int objw_link(struct azl_objw *w, const char *final,
		     struct azl_err *err)
{
	char proc[64];
	int r;

	for (int tries = 0; tries < 2; tries++) {
		if (w->tmp_path) {
			r = link(w->tmp_path, final);
		} else {
			snprintf(proc, sizeof(proc), "/proc/self/fd/%d", w->fd);
			r = linkat(AT_FDCWD, proc, AT_FDCWD, final,
				   AT_SYMLINK_FOLLOW);
		}
		if (r == 0 || errno == EEXIST)
			return 0;
		if (errno != ENOENT || tries)
			break;
		char *dir = azl_dirname(final);
		r = azl_mkdir_p(dir, err);
		free(dir);
		if (r < 0)
			return r;
	}
	return azl_errf(err, -errno, "%s: cannot store the object: %s", final,
			strerror(errno));
}

int azl_objw_commit(struct azl_objw *w, char sha256[65], uint64_t *size,
		    struct azl_err *err)
{
	char *final = NULL;
	int r = 0;

	azl_sha256_final(w->h, sha256);
	w->h = NULL;
	if (size)
		*size = w->size;
	final = azl_objstore_path(w->s, sha256);
	if (w->fd < 0 && azl_objstore_has(w->s, sha256, w->size))
		goto out;
	r = objw_spill(w, err);
	if (r == 0)
		r = objw_link(w, final, err);
out:
	free(final);
	azl_objw_abort(w);
	return r;
}

void azl_objw_abort(struct azl_objw *w)
{
	if (!w)
		return;
	if (w->h) {
		char junk[65];
		azl_sha256_final(w->h, junk);
	}
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp_path)
		unlink(w->tmp_path);
	free(w->tmp_path);
	free(w->mem);
	free(w);
}

int azl_objstore_put(struct azl_objstore *s, const void *data, size_t len,
		     char sha256[65], struct azl_err *err)
{
	struct azl_objw *w;
	int r = azl_objw_open(s, &w, err);
	if (r < 0)
		return r;
	r = azl_objw_write(w, data, len, err);
	if (r < 0) {
		azl_objw_abort(w);
		return r;
	}
	return azl_objw_commit(w, sha256, NULL, err);
}

/* ---- records ---- */

#define REC_MAGIC "azl-objrec 1\n"

void azl_objrec_add(struct azl_objrec *rec, uint32_t fx, uint64_t size,
		    const char *sha256)
{
	struct azl_objrec_ent *e;

	rec->ents = azl_xrealloc(rec->ents, (rec->n + 1) * sizeof(*rec->ents));
	e = &rec->ents[rec->n++];
	e->fx = fx;
	e->size = size;
	memcpy(e->sha256, sha256, 65);
}

static int ent_cmp(const void *a, const void *b)
{
	const struct azl_objrec_ent *x = a, *y = b;
	return x->fx < y->fx ? -1 : x->fx > y->fx;
}

const struct azl_objrec_ent *azl_objrec_find(const struct azl_objrec *rec,
					     uint32_t fx)
{
	struct azl_objrec_ent key = { .fx = fx };
	if (!rec->n)
		return NULL;
	return bsearch(&key, rec->ents, rec->n, sizeof(key), ent_cmp);
}

void azl_objrec_release(struct azl_objrec *rec)
{
	free(rec->ents);
	rec->ents = NULL;
	rec->n = 0;
}

static char *record_path(const struct azl_objstore *s, const char *pkg)
{
	return azl_xasprintf("%s/pkgs/%s", s->dir, pkg);
}

/* Parse "fx size sha256" lines after the magic line. */
static int record_parse(const char *path, char *text, struct azl_objrec *rec,
			struct azl_err *err)
{
	char *line, *save = NULL;

	if (strncmp(text, REC_MAGIC, strlen(REC_MAGIC)))
		return azl_errf(err, -EINVAL, "%s: not an extraction record", path);
	for (line = strtok_r(text + strlen(REC_MAGIC), "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long fx;
		unsigned long long size;
		char hex[65];
		if (sscanf(line, "%lu %llu %64s", &fx, &size, hex) != 3 ||
		    !azl_is_sha256_hex(hex))
			return azl_errf(err, -EINVAL, "%s: malformed line \"%s\"",
					path, line);
		azl_objrec_add(rec, (uint32_t)fx, size, hex);
	}
	qsort(rec->ents, rec->n, sizeof(*rec->ents), ent_cmp);
	return 0;
}

int azl_objstore_record_get(struct azl_objstore *s, const char *pkg_sha256,
			    struct azl_objrec *rec, struct azl_err *err)
{
	char *path = record_path(s, pkg_sha256), *text = NULL;
	size_t len;
	int r;

	memset(rec, 0, sizeof(*rec));
	if (access(path, F_OK) < 0) {
		r = -ENOENT;
		goto out;
	}
	r = azl_read_file(path, 0, &text, &len, err);
	if (r == 0)
		r = record_parse(path, text, rec, err);
	for (size_t i = 0; r == 0 && i < rec->n; i++)
		if (!azl_objstore_has(s, rec->ents[i].sha256, rec->ents[i].size))
			r = -ENOENT; /* an object was removed: extract again */
out:
	if (r < 0)
		azl_objrec_release(rec);
	free(text);
	free(path);
	return r;
}

int azl_objstore_record_put(struct azl_objstore *s, const char *pkg_sha256,
			    const struct azl_objrec *rec, struct azl_err *err)
{
	struct azl_buf b = AZL_BUF_INIT;
	struct pending p = { NULL, NULL };
	int fd, r = 0;

	azl_buf_adds(&b, REC_MAGIC);
	for (size_t i = 0; i < rec->n; i++)
		azl_buf_addf(&b, "%u %llu %s\n", rec->ents[i].fx,
			     (unsigned long long)rec->ents[i].size,
			     rec->ents[i].sha256);
	p.tmp = azl_xasprintf("%s/rec.XXXXXX", s->tmpdir);
	fd = mkostemp(p.tmp, O_CLOEXEC);
	if (fd < 0) {
		r = azl_errf(err, -errno, "%s: %s", p.tmp, strerror(errno));
		goto out;
	}
	r = azl_write_all(fd, b.data, b.len);
	if (r == 0 && fchmod(fd, 0444) < 0)
		r = -errno;
	close(fd);
	if (r < 0) {
		azl_errf(err, r, "%s: %s", p.tmp, strerror(-r));
		unlink(p.tmp);
		goto out;
	}
	p.final = record_path(s, pkg_sha256);
	s->pending = azl_xrealloc(s->pending, (s->npending + 1) * sizeof(p));
	s->pending[s->npending++] = p;
	p.tmp = NULL;
out:
	free(p.tmp);
	azl_buf_release(&b);
	return r;
}

int azl_objstore_flush(struct azl_objstore *s, struct azl_err *err)
{
	int r = 0;

	if (!s->npending)
		return 0;
	/* One sync for every object and record written, instead of an fsync
	 * per file: the records must not outlive their objects in a crash. */
	if (syncfs(s->dirfd) < 0)
		return azl_errf(err, -errno, "%s: syncfs: %s", s->dir,
				strerror(errno));
	for (size_t i = 0; i < s->npending; i++) {
		if (r == 0 && rename(s->pending[i].tmp, s->pending[i].final) < 0)
			r = azl_errf(err, -errno, "%s: %s", s->pending[i].final,
				     strerror(errno));
		if (r < 0)
			unlink(s->pending[i].tmp);
		free(s->pending[i].tmp);
		free(s->pending[i].final);
	}
	free(s->pending);
	s->pending = NULL;
	s->npending = 0;
	return r;
}
