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
	mode_t umask;      /* the process umask, read once */
	bool nosync;       /* azl_objstore_set_sync(s, false) */
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

/* The umask without changing it (umask(2) has no getter, and setting it
 * to read it races with other threads creating files); 0777 when unknown,
 * which makes every object get an explicit fchmod. */
static mode_t current_umask(void)
{
	char *text = NULL, *p;
	size_t len;
	mode_t m = 0777;

	if (azl_read_file("/proc/self/status", 0, &text, &len, NULL) == 0 &&
	    (p = strstr(text, "\nUmask:")))
		m = (mode_t)strtoul(p + 7, NULL, 8) & 0777;
	free(text);
	return m;
}

int azl_objstore_open(const char *dir, struct azl_objstore **out,
		      struct azl_err *err)
{
	struct azl_objstore *s = azl_xcalloc(1, sizeof(*s));
	const char *subs[] = { "sha256", "packs", "pkgs", "tmp" };
	int r = 0;

	s->dir = azl_xstrdup(dir);
	s->tmpdir = azl_path_join(dir, "tmp");
	s->dirfd = -1;
	s->umask = current_umask();
	for (size_t i = 0; i < 4 && r == 0; i++) {
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

void azl_objstore_set_sync(struct azl_objstore *s, bool sync)
{
	s->nosync = !sync;
}

const char *azl_objstore_dir(const struct azl_objstore *s)
{
	return s->dir;
}

char *azl_objstore_path(const struct azl_objstore *s, const char *sha256)
{
	return azl_xasprintf("%s/sha256/%.2s/%s", s->dir, sha256, sha256);
}

static bool has_file(const char *path, uint64_t size)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       (uint64_t)st.st_size == size;
}

bool azl_objstore_has(const struct azl_objstore *s, const char *sha256,
		      uint64_t size)
{
	char *p = azl_objstore_path(s, sha256);
	bool ok = has_file(p, size);
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

/* Create a temporary file in dir: unnamed where the filesystem allows,
 * so a killed build leaves nothing behind.  Small contents are created
 * straight in their final sha256/aa/ directory (their digest is known by
 * then), which spreads inode allocation over the directories instead of
 * hammering tmp/. */
static int create_tmp(const struct azl_objstore *s, const char *dir, int *fd,
		      char **tmp_path, struct azl_err *err)
{
	for (int tries = 0; tries < 2; tries++) {
		*fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0444);
		if (*fd >= 0 || errno != ENOENT || tries)
			break;
		if (azl_mkdir_p(dir, err) < 0)
			return err ? err->code : -EIO;
	}
	if (*fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR ||
			errno == EINVAL)) {
		*tmp_path = azl_xasprintf("%s/.obj.XXXXXX", dir);
		*fd = mkostemp(*tmp_path, O_CLOEXEC);
	}
	if (*fd < 0)
		return azl_errf(err, -errno, "%s: cannot create an object: %s",
				dir, strerror(errno));
	/* Exactly 0444 whatever the umask: objects are never written again.
	 * Skipped when the umask cannot have changed 0444. */
	if ((s->umask & 0444) && fchmod(*fd, 0444) < 0)
		return azl_errf(err, -errno, "%s: fchmod: %s", dir,
				strerror(errno));
	return 0;
}

static int objw_create(struct azl_objw *w, const char *dir,
		       struct azl_err *err)
{
	return create_tmp(w->s, dir, &w->fd, &w->tmp_path, err);
}

static int objw_spill(struct azl_objw *w, const char *dir,
		      struct azl_err *err)
{
	int r = 0;

	if (w->fd < 0)
		r = objw_create(w, dir ? dir : w->s->tmpdir, err);
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
	r = objw_spill(w, NULL, err);
	if (r == 0) {
		r = azl_write_all(w->fd, data, len);
		if (r < 0)
			azl_errf(err, r, "%s: writing an object: %s",
				 w->s->tmpdir, strerror(-r));
	}
	return r;
}

/* Give a temporary its final name; an existing object wins. */
static int link_tmp(int fd, const char *tmp_path, const char *final,
		    struct azl_err *err)
{
	char proc[64];
	int r;

	/* Start writing back now, so the one syncfs at the flush finds little
	 * left to do and the disk works while we decompress. */
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	for (int tries = 0; tries < 2; tries++) {
		if (tmp_path) {
			r = link(tmp_path, final);
		} else {
			snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
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

static int objw_link(struct azl_objw *w, const char *final,
		     struct azl_err *err)
{
	return link_tmp(w->fd, w->tmp_path, final, err);
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
	if (w->fd < 0) {
		char *dir = azl_dirname(final);
		r = objw_spill(w, dir, err);
		free(dir);
	} else {
		r = objw_spill(w, NULL, err);
	}
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

/* ---- packs ---- */

#define PACK_BUF (1u << 20)

struct azl_objpack {
	struct azl_objstore *s;
	int fd;                 /* -1 until the first flush */
	char *tmp_path;
	struct azl_sha256 *name;
	unsigned char *buf;
	size_t buflen;
	uint64_t size;
	size_t members;
};

char *azl_objstore_pack_path(const struct azl_objstore *s, const char *name)
{
	return azl_xasprintf("%s/packs/%.2s/%s", s->dir, name, name);
}

int azl_objpack_open(struct azl_objstore *s, struct azl_objpack **out,
		     struct azl_err *err)
{
	struct azl_objpack *p = azl_xcalloc(1, sizeof(*p));
	p->s = s;
	p->fd = -1;
	p->name = azl_sha256_new();
	p->buf = azl_xmalloc(PACK_BUF);
	*out = p;
	return 0;
}

static int pack_flush(struct azl_objpack *p, struct azl_err *err)
{
	int r = 0;

	if (p->fd < 0)
		r = create_tmp(p->s, p->s->tmpdir, &p->fd, &p->tmp_path, err);
	if (r == 0 && p->buflen) {
		r = azl_write_all(p->fd, p->buf, p->buflen);
		if (r < 0)
			azl_errf(err, r, "%s: writing a pack: %s", p->s->tmpdir,
				 strerror(-r));
	}
	p->buflen = 0;
	return r;
}

int azl_objpack_add(struct azl_objpack *p, const void *data, size_t len,
		    const char *sha256, uint64_t *offset, struct azl_err *err)
{
	char line[96];
	int n = snprintf(line, sizeof(line), "%s %zu\n", sha256, len);
	int r = 0;

	azl_sha256_update(p->name, line, (size_t)n);
	*offset = p->size;
	p->size += len;
	p->members++;
	if (p->buflen + len > PACK_BUF)
		r = pack_flush(p, err);
	if (r == 0 && len > PACK_BUF)
		r = azl_write_all(p->fd, data, len) < 0 ?
		    azl_errf(err, -EIO, "%s: writing a pack", p->s->tmpdir) : 0;
	else if (r == 0) {
		memcpy(p->buf + p->buflen, data, len);
		p->buflen += len;
	}
	return r;
}

int azl_objpack_commit(struct azl_objpack *p, char name[65], uint64_t *size,
		       struct azl_err *err)
{
	char *final = NULL;
	int r = 0;

	azl_sha256_final(p->name, name);
	p->name = NULL;
	*size = p->size;
	if (!p->members) {
		name[0] = '\0';
		goto out;
	}
	final = azl_objstore_pack_path(p->s, name);
	if (has_file(final, p->size))
		goto out;
	r = pack_flush(p, err);
	if (r == 0)
		r = link_tmp(p->fd, p->tmp_path, final, err);
out:
	free(final);
	azl_objpack_abort(p);
	return r;
}

void azl_objpack_abort(struct azl_objpack *p)
{
	if (!p)
		return;
	if (p->name) {
		char junk[65];
		azl_sha256_final(p->name, junk);
	}
	if (p->fd >= 0)
		close(p->fd);
	if (p->tmp_path)
		unlink(p->tmp_path);
	free(p->tmp_path);
	free(p->buf);
	free(p);
}

/* ---- records ---- */

#define REC_MAGIC "azl-objrec 2\n"

void azl_objrec_add(struct azl_objrec *rec, uint32_t fx, uint64_t size,
		    const char *sha256)
{
	struct azl_objrec_ent *e;

	rec->ents = azl_xrealloc(rec->ents, (rec->n + 1) * sizeof(*rec->ents));
	e = &rec->ents[rec->n++];
	memset(e, 0, sizeof(*e));
	e->fx = fx;
	e->size = size;
	memcpy(e->sha256, sha256, 65);
}

void azl_objrec_add_packed(struct azl_objrec *rec, uint32_t fx, uint64_t size,
			   const char *sha256, uint64_t offset)
{
	azl_objrec_add(rec, fx, size, sha256);
	rec->ents[rec->n - 1].packed = true;
	rec->ents[rec->n - 1].offset = offset;
}

char *azl_objrec_data_path(const struct azl_objstore *s,
			   const struct azl_objrec *rec,
			   const struct azl_objrec_ent *e, uint64_t *offset)
{
	*offset = e->packed ? e->offset : 0;
	return e->packed ? azl_objstore_pack_path(s, rec->pack)
			 : azl_objstore_path(s, e->sha256);
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
	memset(rec, 0, sizeof(*rec));
}

static char *record_path(const struct azl_objstore *s, const char *pkg)
{
	return azl_xasprintf("%s/pkgs/%s", s->dir, pkg);
}

/* One line: "pack NAME SIZE", "fx size sha256 -" (an object) or
 * "fx size sha256 @offset" (in the pack). */
static int record_line(struct azl_objrec *rec, const char *line)
{
	unsigned long fx;
	unsigned long long size, off;
	char hex[65], where[32];

	if (sscanf(line, "pack %64s %llu", hex, &size) == 2) {
		if (!azl_is_sha256_hex(hex) || rec->pack[0])
			return -EINVAL;
		memcpy(rec->pack, hex, 65);
		rec->pack_size = size;
		return 0;
	}
	if (sscanf(line, "%lu %llu %64s %31s", &fx, &size, hex, where) != 4 ||
	    !azl_is_sha256_hex(hex))
		return -EINVAL;
	if (!strcmp(where, "-"))
		azl_objrec_add(rec, (uint32_t)fx, size, hex);
	else if (sscanf(where, "@%llu", &off) == 1 && rec->pack[0] &&
		 off + size <= rec->pack_size)
		azl_objrec_add_packed(rec, (uint32_t)fx, size, hex, off);
	else
		return -EINVAL;
	return 0;
}

static int record_parse(const char *path, char *text, struct azl_objrec *rec,
			struct azl_err *err)
{
	char *line, *save = NULL;

	if (strncmp(text, REC_MAGIC, strlen(REC_MAGIC)))
		return azl_errf(err, -EINVAL, "%s: not an extraction record", path);
	for (line = strtok_r(text + strlen(REC_MAGIC), "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		if (record_line(rec, line) < 0)
			return azl_errf(err, -EINVAL, "%s: malformed line \"%s\"",
					path, line);
	qsort(rec->ents, rec->n, sizeof(*rec->ents), ent_cmp);
	return 0;
}

/* Every object and the pack the record names are there. */
static bool record_complete(const struct azl_objstore *s,
			    const struct azl_objrec *rec)
{
	if (rec->pack[0]) {
		char *p = azl_objstore_pack_path(s, rec->pack);
		bool ok = has_file(p, rec->pack_size);
		free(p);
		if (!ok)
			return false;
	}
	for (size_t i = 0; i < rec->n; i++)
		if (!rec->ents[i].packed &&
		    !azl_objstore_has(s, rec->ents[i].sha256, rec->ents[i].size))
			return false;
	return true;
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
	if (r == 0 && !record_complete(s, rec))
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
	if (rec->pack[0])
		azl_buf_addf(&b, "pack %s %llu\n", rec->pack,
			     (unsigned long long)rec->pack_size);
	for (size_t i = 0; i < rec->n; i++) {
		const struct azl_objrec_ent *e = &rec->ents[i];
		azl_buf_addf(&b, "%u %llu %s ", e->fx,
			     (unsigned long long)e->size, e->sha256);
		if (e->packed)
			azl_buf_addf(&b, "@%llu\n", (unsigned long long)e->offset);
		else
			azl_buf_adds(&b, "-\n");
	}
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
	if (!s->nosync && syncfs(s->dirfd) < 0)
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
