/* Installing rpm packages into the filesystem model; see install.h. */
#include "compose/install.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <rpm/rpmfiles.h>
#include <rpm/rpmpgp.h>
#include <solv/pool.h>
#include <solv/repo.h>
#include <solv/repo_rpmdb.h>
#include <solv/transaction.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "base/par.h"

#define EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define MAX_LINKS 40
#define XATTR_CAPS "security.capability"

static void strv_push(char ***v, size_t *n, const char *s)
{
	*v = azl_xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = azl_xstrdup(s);
}

AZL_PRINTF(2, 3)
static void warn(struct azl_install_result *res, const char *fmt, ...)
{
	struct azl_buf b = AZL_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	azl_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	res->warnings = azl_xrealloc(res->warnings,
				     (res->nwarnings + 1) * sizeof(char *));
	res->warnings[res->nwarnings++] = azl_buf_detach(&b);
}

/* ================= phase 1: contents into the object store ============ */

struct job {
	const char *path;
	const struct azl_install_pkg *pkg;
	char sha256[65];
	struct azl_objrec rec;
	bool extracted;
	int rc;
	struct azl_err err;
};


struct extract {
	struct azl_objstore *store;
	uint32_t pack_max;          /* opts->pack_max */
	struct azl_rpm *r;
	struct azl_payload *p;
	struct azl_objpack *pack;   /* opened at the first small file */
	unsigned char *buf;
	size_t bufsz;
	struct azl_objrec *rec;
};

/* The payload bytes must be what the header describes: size always, and
 * rpm's own digest when it is a sha256 (free: we hash anyway). */
static int check_entry(struct extract *x, size_t fx, uint64_t size,
		       const char *hex, struct azl_err *err)
{
	struct azl_rpm_file f;
	char want[65];

	azl_rpm_file(x->r, fx, &f);
	if (size != f.size)
		return azl_errf(err, -EIO, "%s: %s: payload has %llu bytes, header says %llu",
				azl_rpm_path(x->r), f.path, (unsigned long long)size,
				(unsigned long long)f.size);
	if (f.digest_algo == PGPHASHALGO_SHA256 && f.digest_len == 32) {
		azl_hex(f.digest, 32, want);
		if (strcmp(want, hex))
			return azl_errf(err, -EIO, "%s: %s: content digest %s, header says %s",
					azl_rpm_path(x->r), f.path, hex, want);
	}
	return 0;
}

/* A small entry: read whole, hash, append to the pack. */
static int extract_small(struct extract *x, size_t fx, uint64_t size,
			 struct azl_err *err)
{
	size_t have = 0;
	uint64_t off;
	char hex[65];
	int rc = 0;

	while (have < size) {
		ssize_t got = azl_payload_read(x->p, x->buf + have,
					       (size_t)size - have, err);
		if (got < 0)
			return (int)got;
		if (got == 0)
			break;
		have += (size_t)got;
	}
	azl_sha256_hex(x->buf, have, hex);
	rc = check_entry(x, fx, have, hex, err);
	if (rc == 0 && !x->pack)
		rc = azl_objpack_open(x->store, &x->pack, err);
	if (rc == 0)
		rc = azl_objpack_add(x->pack, x->buf, have, hex, &off, err);
	if (rc == 0)
		azl_objrec_add_packed(x->rec, (uint32_t)fx, have, hex, off);
	return rc;
}

/* A large entry: streamed into its own object. */
static int extract_large(struct extract *x, size_t fx, struct azl_err *err)
{
	struct azl_objw *w;
	char hex[65];
	uint64_t size;
	ssize_t got;
	int rc = azl_objw_open(x->store, &w, err);

	if (rc < 0)
		return rc;
	while ((got = azl_payload_read(x->p, x->buf, x->bufsz, err)) > 0) {
		rc = azl_objw_write(w, x->buf, (size_t)got, err);
		if (rc < 0)
			break;
	}
	if (got < 0 || rc < 0) {
		azl_objw_abort(w);
		return got < 0 ? (int)got : rc;
	}
	rc = azl_objw_commit(w, hex, &size, err);
	if (rc == 0)
		rc = check_entry(x, fx, size, hex, err);
	if (rc == 0)
		azl_objrec_add(x->rec, (uint32_t)fx, size, hex);
	return rc;
}

static int extract_pkg(struct azl_objstore *s, uint32_t pack_max,
		       struct job *j)
{
	enum { BUFSZ = 1 << 18 };
	struct extract x = { .store = s, .pack_max = pack_max, .bufsz = BUFSZ,
			     .rec = &j->rec };
	size_t fx;
	uint64_t size;
	int rc = azl_rpm_open(j->path, &x.r, &j->err);

	if (rc < 0)
		goto out;
	rc = azl_payload_open(x.r, &x.p, &j->err);
	if (rc < 0)
		goto out;
	x.buf = azl_xmalloc(BUFSZ);
	while ((rc = azl_payload_next(x.p, &fx, &size, &j->err)) > 0) {
		rc = size <= x.pack_max ? extract_small(&x, fx, size, &j->err)
				      : extract_large(&x, fx, &j->err);
		if (rc < 0)
			goto out;
	}
	if (rc == 0 && x.pack) {
		rc = azl_objpack_commit(x.pack, j->rec.pack, &j->rec.pack_size,
					&j->err);
		x.pack = NULL;
	}
	j->extracted = rc == 0;
out:
	azl_objpack_abort(x.pack);
	free(x.buf);
	azl_payload_close(x.p);
	azl_rpm_close(x.r);
	if (rc < 0)
		azl_objrec_release(&j->rec);
	return rc;
}

static int ensure_objects(struct azl_objstore *s, uint32_t pack_max,
			  struct job *j)
{
	int rc = 0;

	if (!j->sha256[0])
		rc = azl_sha256_file(j->path, j->sha256, NULL, &j->err);
	if (rc == 0)
		rc = azl_objstore_record_get(s, j->sha256, &j->rec, &j->err);
	if (rc == -ENOENT)
		rc = extract_pkg(s, pack_max, j);
	return rc;
}

struct pool_ctx {
	struct azl_objstore *store;
	uint32_t pack_max;
	struct job *jobs;
};

/* The objects and records do not depend on which thread did what. */
static void run_job(void *arg, size_t i)
{
	struct pool_ctx *pc = arg;

	pc->jobs[i].rc = ensure_objects(pc->store, pc->pack_max, &pc->jobs[i]);
}

static int phase_contents(struct azl_objstore *store,
			  const struct azl_install_pkg *pkgs, size_t n,
			  const struct azl_install_opts *opts, struct job *jobs,
			  struct azl_install_result *res, struct azl_err *err)
{
	struct pool_ctx pc = { .store = store, .pack_max = opts->pack_max,
			       .jobs = jobs };
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		jobs[i].path = pkgs[i].path;
		jobs[i].pkg = &pkgs[i];
		if (pkgs[i].sha256) {
			if (!azl_is_sha256_hex(pkgs[i].sha256))
				return azl_err_input(err, "%s: bad sha256 \"%s\"",
						     pkgs[i].path, pkgs[i].sha256);
			memcpy(jobs[i].sha256, pkgs[i].sha256, 65);
		}
	}
	azl_par_for(n, opts->jobs, run_job, &pc);
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (jobs[i].rc < 0) {
			*err = jobs[i].err;
			return jobs[i].rc;
		}
		if (jobs[i].extracted) {
			res->nextracted++;
			rc = azl_objstore_record_put(store, jobs[i].sha256,
						     &jobs[i].rec, err);
		}
	}
	return rc == 0 ? azl_objstore_flush(store, err) : rc;
}

/* ================= path checks ======================================== */

static int check_lexical(const char *nevra, const char *path,
			 struct azl_err *err)
{
	const char *p = path;

	if (path[0] != '/')
		return azl_err_input(err, "%s: %s: payload path is not absolute",
				     nevra, path);
	if (strlen(path) >= PATH_MAX)
		return azl_err_input(err, "%s: %.64s...: payload path too long",
				     nevra, path);
	if (!strcmp(path, "/"))
		return 0;
	while (*p == '/') {
		size_t n = strcspn(++p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return azl_err_input(err, "%s: %s: payload path has an empty, \".\" or \"..\" component",
					     nevra, path);
		p += n;
	}
	return 0;
}

/* Resolve a directory path in the model like the kernel would, following
 * every symlink, but refuse instead of clamping when a link's ".." would
 * climb above the root. */
static int resolve_dir(const struct azl_fs *fs, const char *nevra,
		       const char *path, const char *dir, char **out,
		       struct azl_err *err)
{
	struct azl_buf cur = AZL_BUF_INIT;
	char *rest = azl_xstrdup(dir), *pos = rest;
	int links = 0, rc = 0;

	azl_buf_adds(&cur, "/");
	while (*pos) {
		char *c = pos + strspn(pos, "/");
		size_t n = strcspn(c, "/"), save;
		const struct azl_node *nd;

		pos = c + n;
		if (n == 0 || (n == 1 && c[0] == '.'))
			continue;
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			if (cur.len == 1) {
				rc = azl_err_input(err, "%s: %s: a symlink in its parent leads outside the image",
						   nevra, path);
				goto out;
			}
			while (cur.len > 1 && cur.data[cur.len - 1] != '/')
				cur.len--;
			if (cur.len > 1)
				cur.len--;
			cur.data[cur.len] = '\0';
			continue;
		}
		save = cur.len;
		if (cur.len > 1)
			azl_buf_addc(&cur, '/');
		azl_buf_add(&cur, c, n);
		nd = azl_fs_get(fs, cur.data);
		if (!nd || nd->type == AZL_FT_DIR)
			continue;
		if (nd->type != AZL_FT_SYMLINK) {
			rc = azl_err_input(err, "%s: %s: %s is not a directory",
					   nevra, path, cur.data);
			goto out;
		}
		if (++links > MAX_LINKS) {
			rc = azl_err_input(err, "%s: %s: too many levels of symbolic links",
					   nevra, path);
			goto out;
		}
		const char *t = nd->link_target ? nd->link_target : "";
		cur.len = t[0] == '/' ? 1 : save;
		cur.data[cur.len] = '\0';
		char *spliced = *pos ? azl_xasprintf("%s/%s", t, pos) : azl_xstrdup(t);
		free(rest);
		rest = pos = spliced;
	}
	*out = azl_buf_detach(&cur);
out:
	free(rest);
	if (rc < 0)
		azl_buf_release(&cur);
	return rc;
}

static char *join_base(const char *dir, const char *path)
{
	const char *base = strrchr(path, '/') + 1;
	return strcmp(dir, "/") ? azl_xasprintf("%s/%s", dir, base)
				: azl_xasprintf("/%s", base);
}

int azl_install_check_path(const struct azl_fs *fs, const char *nevra,
			   const char *path, char **out, struct azl_err *err)
{
	char *dir = NULL, *rdir = NULL;
	int rc = check_lexical(nevra, path, err);

	*out = NULL;
	if (rc < 0)
		return rc;
	if (!strcmp(path, "/")) {
		*out = azl_xstrdup("/");
		return 0;
	}
	dir = azl_dirname(path);
	rc = resolve_dir(fs, nevra, path, dir, &rdir, err);
	if (rc == 0)
		*out = join_base(rdir, path);
	free(dir);
	free(rdir);
	return rc;
}

/* ================= phase 2: metadata into the model =================== */

struct pkgctx {
	struct azl_fs *fs;
	struct azl_objstore *store;
	const struct azl_install_opts *opts;
	struct azl_rpm *r;
	const char *nevra;
	const struct azl_install_pkg *pkg;
	const struct azl_objrec *rec;
	struct azl_installed_pkg *out;
	uint32_t *groups;      /* hardlink group per file index, 0 = none yet */
	uint32_t *next_group;
	char *last_dir;        /* parent cache: header dirname ... */
	char *last_rdir;       /* ... and where it resolved */
};

static int ftype_of(uint32_t mode, enum azl_ftype *t)
{
	switch (mode & S_IFMT) {
	case S_IFREG: *t = AZL_FT_REG; return 0;
	case S_IFDIR: *t = AZL_FT_DIR; return 0;
	case S_IFLNK: *t = AZL_FT_SYMLINK; return 0;
	case S_IFCHR: *t = AZL_FT_CHR; return 0;
	case S_IFBLK: *t = AZL_FT_BLK; return 0;
	case S_IFIFO: *t = AZL_FT_FIFO; return 0;
	case S_IFSOCK: *t = AZL_FT_SOCK; return 0;
	}
	return -EINVAL;
}

static int resolve_cached(struct pkgctx *c, const char *path, char **out,
			  struct azl_err *err)
{
	char *dir;
	int rc = check_lexical(c->nevra, path, err);

	if (rc < 0 || !strcmp(path, "/")) {
		*out = rc < 0 ? NULL : azl_xstrdup("/");
		return rc;
	}
	dir = azl_dirname(path);
	if (!c->last_dir || strcmp(dir, c->last_dir)) {
		char *rdir = NULL;
		rc = resolve_dir(c->fs, c->nevra, path, dir, &rdir, err);
		if (rc < 0) {
			free(dir);
			return rc;
		}
		free(c->last_dir);
		free(c->last_rdir);
		c->last_dir = dir;
		c->last_rdir = rdir;
	} else {
		free(dir);
	}
	*out = join_base(c->last_rdir, path);
	return 0;
}

/* The objects of fx: its own record entry or, for a hardlink, the
 * entry of the set member that carried the data. */
static const struct azl_objrec_ent *find_content(struct pkgctx *c, size_t fx)
{
	const struct azl_objrec_ent *e = azl_objrec_find(c->rec, (uint32_t)fx);
	const int *fxs;
	size_t nl;

	if (e)
		return e;
	nl = azl_rpm_hardlinks(c->r, fx, &fxs);
	for (size_t i = 0; nl > 1 && i < nl && !e; i++)
		e = azl_objrec_find(c->rec, (uint32_t)fxs[i]);
	return e;
}

static int set_content(struct pkgctx *c, size_t fx,
		       const struct azl_rpm_file *f, struct azl_node *n,
		       struct azl_err *err)
{
	const struct azl_objrec_ent *e;
	const int *fxs;
	size_t nl = azl_rpm_hardlinks(c->r, fx, &fxs);

	if (nl > 1) {
		if (!c->groups[fx]) {
			uint32_t g = ++*c->next_group;
			for (size_t i = 0; i < nl; i++)
				c->groups[fxs[i]] = g;
		}
		n->hardlink_group = c->groups[fx];
	}
	n->size = f->size;
	if (f->size == 0) {
		memcpy(n->sha256, EMPTY_SHA256, 65);
		return 0;
	}
	e = find_content(c, fx);
	if (!e || e->size != f->size)
		return azl_errf(err, -EIO, "%s: %s: payload carries no content for this file",
				c->nevra, f->path);
	memcpy(n->sha256, e->sha256, 65);
	n->data_path = azl_objrec_data_path(c->store, c->rec, e, &n->data_offset);
	return 0;
}

static void set_caps(struct azl_node *n, const unsigned char v[20])
{
	n->xattrs = azl_xcalloc(1, sizeof(*n->xattrs));
	n->nxattrs = 1;
	n->xattrs[0].name = azl_xstrdup(XATTR_CAPS);
	n->xattrs[0].value = azl_xmalloc(20);
	memcpy(n->xattrs[0].value, v, 20);
	n->xattrs[0].len = 20;
}

static int make_node(struct pkgctx *c, size_t fx, const struct azl_rpm_file *f,
		     char *where, struct azl_node *n, struct azl_err *err)
{
	memset(n, 0, sizeof(*n));
	n->path = where;
	if (ftype_of(f->mode, &n->type) < 0)
		return azl_err_input(err, "%s: %s: unknown file type %o",
				     c->nevra, f->path, f->mode);
	n->mode = f->mode & 07777;
	n->user = azl_xstrdup(f->user && *f->user ? f->user : "root");
	n->group = azl_xstrdup(f->group && *f->group ? f->group : "root");
	n->mtime = f->mtime;
	n->owner_pkg = azl_xstrdup(c->nevra);
	n->flags = (f->flags & RPMFILE_CONFIG ? AZL_NODE_CONFIG : 0) |
		   (f->flags & RPMFILE_NOREPLACE ? AZL_NODE_NOREPLACE : 0) |
		   (f->flags & RPMFILE_DOC ? AZL_NODE_DOC : 0);
	if (n->type == AZL_FT_SYMLINK)
		n->link_target = azl_xstrdup(f->link);
	if (n->type == AZL_FT_CHR || n->type == AZL_FT_BLK) {
		n->rdev_major = major(f->rdev);
		n->rdev_minor = minor(f->rdev);
	}
	if (f->caps) {
		unsigned char v[20];
		int rc = azl_caps_to_xattr(f->caps, v, err);
		if (rc < 0)
			return azl_err_prefix(err, "%s: %s", c->nevra, f->path);
		set_caps(n, v);
	}
	return n->type == AZL_FT_REG ? set_content(c, fx, f, n, err) : 0;
}

/* What makes n privileged on the target (see install.h), "" if nothing. */
static void privilege_of(const struct azl_node *n, const struct azl_rpm_file *f,
			 char *what, size_t len)
{
	what[0] = '\0';
	if (n->type == AZL_FT_REG && (n->mode & (S_ISUID | S_ISGID)))
		snprintf(what, len, "%s file (mode %o)",
			 n->mode & S_ISUID ? "set-user-ID" : "set-group-ID",
			 n->mode);
	else if (f->caps)
		snprintf(what, len, "file with capabilities (%s)", f->caps);
	else if (n->type == AZL_FT_CHR || n->type == AZL_FT_BLK)
		snprintf(what, len, "%s device node (%u,%u)",
			 n->type == AZL_FT_CHR ? "character" : "block",
			 n->rdev_major, n->rdev_minor);
}

static int check_privilege(struct pkgctx *c, const struct azl_node *n,
			   const struct azl_rpm_file *f, struct azl_err *err)
{
	char what[300];

	if (!c->pkg || !c->pkg->deny_setuid)
		return 0;
	privilege_of(n, f, what, sizeof(what));
	if (!what[0])
		return 0;
	return azl_err_input(err, "%s: %s: %s from repository '%s', which does not allow it (repos[].allow_setuid)",
			     c->nevra, f->path, what,
			     c->pkg->repo ? c->pkg->repo : "?");
}

static const char *nm(const char *s)
{
	return s ? s : "root";
}

/* rpm's rpmfilesCompare: non-zero when a and b may not share a path.
 * Directories too must agree on mode and owner (rpm 4.18 reports those
 * as conflicts). */
static int differs(const struct azl_node *a, const struct azl_node *b)
{
	bool links = a->type == AZL_FT_SYMLINK && b->type == AZL_FT_SYMLINK;

	if (!links && (a->type != b->type || a->mode != b->mode))
		return 1;
	if ((a->type == AZL_FT_REG || links) && a->size != b->size)
		return 1;
	if (strcmp(nm(a->user), nm(b->user)) || strcmp(nm(a->group), nm(b->group)))
		return 1;
	if (links)
		return strcmp(a->link_target ? a->link_target : "",
			      b->link_target ? b->link_target : "") != 0;
	if (a->type == AZL_FT_REG)
		return strcmp(a->sha256, b->sha256) != 0;
	if (a->type == AZL_FT_CHR || a->type == AZL_FT_BLK)
		return a->rdev_major != b->rdev_major ||
		       a->rdev_minor != b->rdev_minor;
	return 0;
}

static void swap_ptr(char **a, char **b)
{
	char *t = *a;
	*a = *b;
	*b = t;
}

/* A package claims a directory the build created: its metadata wins; n
 * keeps what the node gave up, to be released. */
static void take_meta(struct azl_node *dst, struct azl_node *n)
{
	struct azl_xattr *x = dst->xattrs;
	size_t nx = dst->nxattrs;

	dst->mode = n->mode;
	dst->mtime = n->mtime;
	dst->flags |= n->flags;
	swap_ptr(&dst->user, &n->user);
	swap_ptr(&dst->group, &n->group);
	dst->xattrs = n->xattrs;
	dst->nxattrs = n->nxattrs;
	n->xattrs = x;
	n->nxattrs = nx;
	swap_ptr(&dst->owner_pkg, &n->owner_pkg);
}

/* Create the missing directories above path, as rpm's mkdir -p does. */
static int make_parents(struct pkgctx *c, const char *path,
			struct azl_err *err)
{
	char *p = azl_xstrdup(path);
	char *slash = strrchr(p, '/');
	int rc = 0;

	if (slash == p || azl_fs_get(c->fs, (*slash = '\0', p)))
		goto out;
	*slash = '/';
	for (char *s = p + 1; rc == 0 && (s = strchr(s, '/')); s++) {
		*s = '\0';
		if (!azl_fs_get(c->fs, p)) {
			struct azl_node d = { 0 };
			d.path = azl_xstrdup(p);
			d.type = AZL_FT_DIR;
			d.mode = 0755;
			d.mtime = c->opts->sde;
			rc = azl_fs_add(c->fs, &d, err);
			azl_node_release(&d);
		}
		*s = '/';
	}
out:
	free(p);
	return rc;
}

static int place(struct pkgctx *c, struct azl_node *n, struct azl_err *err)
{
	struct azl_node *old = azl_fs_get(c->fs, n->path);
	int rc;

	if (!old) {
		rc = make_parents(c, n->path, err);
		return rc < 0 ? rc : azl_fs_add(c->fs, n, err);
	}
	if (!old->owner_pkg) {
		/* Made by the build (a parent directory, "/"): the package's
		 * metadata wins. */
		if (old->type == AZL_FT_DIR && n->type == AZL_FT_DIR) {
			take_meta(old, n);
			return 0;
		}
		return azl_fs_put(c->fs, n, err);
	}
	if (differs(old, n))
		return azl_errf(err, -EEXIST, "file %s conflicts between attempted installs of %s and %s",
				n->path, old->owner_pkg, c->nevra);
	/* rpm creates only the first instance of a shared path (FA_SKIP for
	 * the rest), so the first package's mtime and xattrs stay. */
	old->flags |= n->flags;
	return 0;
}

static int install_file(struct pkgctx *c, size_t fx, struct azl_err *err)
{
	struct azl_rpm_file f;
	struct azl_node n = { 0 };
	struct azl_installed_pkg *o = c->out;
	char *where = NULL;
	int rc;

	azl_rpm_file(c->r, fx, &f);
	if (f.flags & RPMFILE_GHOST) {
		rc = check_lexical(c->nevra, f.path, err);
		if (rc == 0)
			strv_push(&o->ghosts, &o->nghosts, f.path);
		return rc;
	}
	rc = resolve_cached(c, f.path, &where, err);
	if (rc < 0)
		return rc;
	if (f.flags & RPMFILE_CONFIG)
		strv_push(&o->configs, &o->nconfigs, where);
	rc = make_node(c, fx, &f, where, &n, err);
	if (rc == 0)
		rc = check_privilege(c, &n, &f, err);
	if (rc == 0)
		rc = place(c, &n, err);
	azl_node_release(&n);
	return rc;
}

static int install_pkg(struct azl_fs *fs, struct azl_objstore *store,
		       const struct azl_install_opts *opts, struct job *j,
		       uint32_t *next_group, struct azl_installed_pkg *o,
		       struct azl_err *err)
{
	struct pkgctx c = { .fs = fs, .store = store, .opts = opts, .pkg = j->pkg,
			    .rec = &j->rec, .out = o, .next_group = next_group };
	int rc = azl_rpm_open(j->path, &c.r, err);

	if (rc < 0)
		return rc;
	o->path = azl_xstrdup(j->path);
	memcpy(o->sha256, j->sha256, 65);
	o->extracted = j->extracted;
	rc = azl_rpm_info(c.r, &o->info, err);
	if (rc < 0)
		goto out;
	c.nevra = o->info.nevra;
	o->nfiles = azl_rpm_nfiles(c.r);
	c.groups = azl_xcalloc(o->nfiles + 1, sizeof(*c.groups));
	for (size_t fx = 0; fx < o->nfiles && rc == 0; fx++)
		rc = install_file(&c, fx, err);
out:
	free(c.groups);
	free(c.last_dir);
	free(c.last_rdir);
	azl_rpm_close(c.r);
	return rc;
}

/* New hardlink groups must not collide with ones already in the model. */
static uint32_t max_group(struct azl_fs *fs)
{
	struct azl_node *const *all = azl_fs_sorted(fs);
	uint32_t m = 0;

	for (size_t i = 0; i < azl_fs_count(fs); i++)
		if (all[i]->hardlink_group > m)
			m = all[i]->hardlink_group;
	return m;
}

int azl_install(struct azl_fs *fs, struct azl_objstore *store,
		const struct azl_install_pkg *pkgs, size_t n,
		const struct azl_install_opts *opts,
		struct azl_install_result *res, struct azl_err *err)
{
	struct job *jobs = azl_xcalloc(n + 1, sizeof(*jobs));
	uint32_t next_group = max_group(fs);
	int rc;

	memset(res, 0, sizeof(*res));
	rc = phase_contents(store, pkgs, n, opts, jobs, res, err);
	if (rc < 0)
		goto out;
	res->pkgs = azl_xcalloc(n + 1, sizeof(*res->pkgs));
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = install_pkg(fs, store, opts, &jobs[i], &next_group,
				 &res->pkgs[i], err);
		res->npkgs = i + 1;
	}
	if (rc == 0 && !opts->defer_owners)
		rc = azl_install_resolve_owners(fs, res, err);
out:
	for (size_t i = 0; i < n; i++)
		azl_objrec_release(&jobs[i].rec);
	free(jobs);
	return rc;
}

void azl_install_result_release(struct azl_install_result *res)
{
	for (size_t i = 0; i < res->npkgs; i++) {
		struct azl_installed_pkg *p = &res->pkgs[i];
		azl_rpm_info_release(&p->info);
		free(p->path);
		azl_strv_free(p->ghosts, p->nghosts);
		azl_strv_free(p->configs, p->nconfigs);
	}
	free(res->pkgs);
	azl_strv_free(res->warnings, res->nwarnings);
	memset(res, 0, sizeof(*res));
}

/* ================= owners ============================================= */

struct idmap {
	char **names;
	uint32_t *ids;
	size_t n;
	char *last;           /* one-entry cache (a copy): files mostly share owners */
	int last_found;
	uint32_t last_id;
};

static int collect(void *ctx, const void *data, size_t len)
{
	azl_buf_add(ctx, data, len);
	return 0;
}

/* Parse name:x:id:... lines of the model's file (absent: empty map). */
static int idmap_load(const struct azl_fs *fs, const char *path,
		      struct idmap *m, struct azl_err *err)
{
	struct azl_buf b = AZL_BUF_INIT;
	char *real = NULL, *line, *save = NULL;
	const struct azl_node *nd;
	int rc = azl_fs_resolve(fs, path, true, &real, err);

	if (rc < 0 || !(nd = azl_fs_get(fs, real)) || nd->type != AZL_FT_REG)
		goto out;
	rc = azl_node_read(nd, collect, &b, err);
	if (rc < 0 || !b.len)
		goto out;
	for (line = strtok_r(b.data, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *f1 = strchr(line, ':'), *f2 = f1 ? strchr(f1 + 1, ':') : NULL;
		char *end;
		unsigned long id;
		if (!f2)
			continue;
		*f1 = '\0';
		id = strtoul(f2 + 1, &end, 10);
		if (end == f2 + 1 || (*end && *end != ':') || id > UINT32_MAX)
			continue;
		m->names = azl_xrealloc(m->names, (m->n + 1) * sizeof(char *));
		m->ids = azl_xrealloc(m->ids, (m->n + 1) * sizeof(uint32_t));
		m->names[m->n] = azl_xstrdup(line);
		m->ids[m->n++] = (uint32_t)id;
	}
out:
	free(real);
	azl_buf_release(&b);
	return rc < 0 && rc != -ENOENT && rc != -ENOTDIR ? rc : 0;
}

/* 1 and *id when name is known; "root" is 0 even without a passwd. */
static int idmap_get(struct idmap *m, const char *name, uint32_t *id)
{
	if (m->last && !strcmp(m->last, name)) {
		*id = m->last_id;
		return m->last_found;
	}
	free(m->last);
	m->last = azl_xstrdup(name);
	m->last_found = 0;
	m->last_id = 0;
	for (size_t i = 0; i < m->n && !m->last_found; i++)
		if (!strcmp(m->names[i], name)) {
			m->last_found = 1; /* first entry wins, like getpwnam */
			m->last_id = m->ids[i];
		}
	if (!m->last_found && !strcmp(name, "root"))
		m->last_found = 1;
	*id = m->last_id;
	return m->last_found;
}

static void idmap_free(struct idmap *m)
{
	azl_strv_free(m->names, m->n);
	free(m->ids);
	free(m->last);
}

static void resolve_node(struct azl_node *nd, struct idmap *users,
			 struct idmap *groups, struct azl_install_result *res)
{
	const char *u = nm(nd->user), *g = nm(nd->group);

	if (!idmap_get(users, u, &nd->uid)) {
		warn(res, "%s: %s: user %s does not exist - using root",
		     nd->owner_pkg, nd->path, u);
		nd->mode &= ~(uint32_t)S_ISUID;
		free(nd->user); /* the image holds root's file, as rpm leaves it */
		nd->user = azl_xstrdup("root");
	}
	if (!idmap_get(groups, g, &nd->gid)) {
		warn(res, "%s: %s: group %s does not exist - using root",
		     nd->owner_pkg, nd->path, g);
		nd->mode &= ~(uint32_t)S_ISGID;
		free(nd->group);
		nd->group = azl_xstrdup("root");
	}
}

int azl_install_resolve_owners(struct azl_fs *fs,
			       struct azl_install_result *res,
			       struct azl_err *err)
{
	struct idmap users = { 0 }, groups = { 0 };
	struct azl_node *const *all;
	int rc = idmap_load(fs, "/etc/passwd", &users, err);

	if (rc == 0)
		rc = idmap_load(fs, "/etc/group", &groups, err);
	if (rc < 0)
		goto out;
	all = azl_fs_sorted(fs);
	for (size_t i = 0; i < azl_fs_count(fs); i++)
		if (all[i]->owner_pkg)
			resolve_node(all[i], &users, &groups, res);
out:
	idmap_free(&users);
	idmap_free(&groups);
	return rc;
}

/* ================= install order ====================================== */

struct named {
	const char *name;
	const char *path;
	size_t index;
};

static int named_cmp(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->path, y->path);
}

/* Solvables are added in name order, so libsolv's tie-breaking (by
 * solvable id) is by name and the order never depends on the caller's. */
static int order_add(Pool *pool, Repo *repo, struct named *v, size_t n,
		     Id *ids, struct azl_err *err)
{
	for (size_t i = 0; i < n; i++) {
		ids[i] = repo_add_rpm(repo, v[i].path,
				      REPO_REUSE_REPODATA | REPO_NO_INTERNALIZE |
				      RPM_ADD_NO_RPMLIBREQS);
		if (!ids[i])
			return azl_errf(err, -EIO, "%s: libsolv cannot read it: %s",
					v[i].path, pool_errstr(pool));
	}
	repo_internalize(repo);
	pool_addfileprovides(pool);
	pool_createwhatprovides(pool);
	return 0;
}

static int names_of(const char *const *paths, size_t n, struct named *v,
		    struct azl_err *err)
{
	for (size_t i = 0; i < n; i++) {
		struct azl_rpm *r;
		int rc = azl_rpm_open(paths[i], &r, err);
		if (rc < 0)
			return rc;
		v[i].name = azl_xstrdup(azl_rpm_nevra(r));
		v[i].path = paths[i];
		v[i].index = i;
		azl_rpm_close(r);
	}
	qsort(v, n, sizeof(*v), named_cmp);
	return 0;
}

int azl_install_order(const char *const *paths, size_t n, size_t *order,
		      struct azl_err *err)
{
	struct named *v = azl_xcalloc(n + 1, sizeof(*v));
	Id *ids = azl_xcalloc(n + 1, sizeof(*ids));
	Pool *pool = pool_create();
	Repo *repo = repo_create(pool, "azl-install");
	Transaction *t = NULL;
	Queue q;
	size_t k = 0;
	int rc = names_of(paths, n, v, err);

	queue_init(&q);
	if (rc == 0)
		rc = order_add(pool, repo, v, n, ids, err);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		queue_push(&q, ids[i]);
	t = transaction_create_decisionq(pool, &q, NULL);
	transaction_order(t, 0);
	for (int s = 0; s < t->steps.count && k < n; s++)
		for (size_t i = 0; i < n; i++)
			if (ids[i] == t->steps.elements[s])
				order[k++] = v[i].index;
	if (k != n)
		rc = azl_errf(err, -EIO, "install order: libsolv ordered %zu of %zu packages",
			      k, n);
out:
	if (t)
		transaction_free(t);
	queue_free(&q);
	pool_free(pool);
	for (size_t i = 0; i < n; i++)
		free((char *)v[i].name);
	free(v);
	free(ids);
	return rc;
}
