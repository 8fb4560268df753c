/* OCI image-layout archive writer; see emit_oci.h. */
#include "compose/emit_oci.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "reproducible/sde.h"

#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_LAYER "application/vnd.oci.image.layer.v1.tar"

const char *azl_oci_arch(const char *rpm_arch)
{
	static const char *const map[][2] = {
		{ "x86_64", "amd64" }, { "amd64", "amd64" },
		{ "aarch64", "arm64" }, { "arm64", "arm64" },
		{ "i686", "386" }, { "i586", "386" }, { "i386", "386" },
		{ "armv7hl", "arm" }, { "armv7l", "arm" }, { "arm", "arm" },
		{ "ppc64le", "ppc64le" }, { "s390x", "s390x" },
		{ "riscv64", "riscv64" },
	};
	for (size_t i = 0; rpm_arch && i < sizeof(map) / sizeof(*map); i++)
		if (!strcmp(rpm_arch, map[i][0]))
			return map[i][1];
	return NULL;
}

/* ---- libarchive plumbing ---- */

/* libarchive's tar record is 10240 bytes and the archive ends padded to a
 * multiple of it; handing bytes on in records of TAR_BLOCKS of them keeps
 * that padding (the bytes are the same) with far fewer calls. */
#define TAR_RECORD 10240
#define TAR_BLOCKS 64
/* Write-back of the outer archive starts every this many bytes, so the
 * fsync at commit finds little left to write. */
#define KICK_BYTES (8u << 20)

/* Where a libarchive writer's bytes go: a layer stream or the final file. */
struct sink {
	struct azl_zstream *zs; /* layer */
	struct azl_out *out;    /* outer archive */
	struct azl_err *err;
	int failed;
	uint64_t written, kicked; /* outer archive bytes, write-back started */
};

static void kick_writeback(struct sink *s)
{
	if (s->written - s->kicked < KICK_BYTES)
		return;
	/* Advisory: a failure here only means the fsync does it all. */
	(void)sync_file_range(s->out->fd, (off_t)s->kicked,
			      (off_t)(s->written - s->kicked),
			      SYNC_FILE_RANGE_WRITE);
	s->kicked = s->written;
}

static la_ssize_t sink_write(struct archive *a, void *ctx, const void *buf,
			     size_t len)
{
	struct sink *s = ctx;
	int r = s->zs ? azl_zstream_write(s->zs, buf, len, s->err)
		      : azl_out_write(s->out, buf, len);
	if (r < 0) {
		s->failed = r;
		archive_set_error(a, -r, "write failed");
		return -1;
	}
	if (s->out) {
		s->written += len;
		kick_writeback(s);
	}
	return (la_ssize_t)len;
}

/* A pax writer whose bytes depend on nothing but the entries.  libarchive
 * converts names from the thread's locale to UTF-8 for pax records, so the
 * caller runs it under C.UTF-8 (tar_locale): valid UTF-8 names are written
 * as they are, others raw with hdrcharset=BINARY (an ARCHIVE_WARN), never
 * depending on the host's locale.  xattrs go out as SCHILY.xattr only. */
static struct archive *tar_new(struct sink *s, struct azl_err *err)
{
	struct archive *a = archive_write_new();

	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_set_option(a, "pax", "xattrheader", "SCHILY") != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(a, TAR_RECORD * TAR_BLOCKS) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, TAR_RECORD) != ARCHIVE_OK ||
	    archive_write_open(a, s, NULL, sink_write, NULL) != ARCHIVE_OK) {
		azl_errf(err, -EIO, "libarchive: %s", archive_error_string(a));
		archive_write_free(a);
		return NULL;
	}
	return a;
}

/* Switch this thread to C.UTF-8; *old receives what to restore. */
static int tar_locale(locale_t *loc, locale_t *old, struct azl_err *err)
{
	*loc = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0);
	if (!*loc)
		return azl_errf(err, -ENOENT, "the C.UTF-8 locale is unavailable");
	*old = uselocale(*loc);
	return 0;
}

static void tar_locale_end(locale_t loc, locale_t old)
{
	if (loc) {
		uselocale(old);
		freelocale(loc);
	}
}

/* The error of a failed archive call: the sink's when it failed first. */
static int tar_fail(struct archive *a, struct sink *s, const char *what)
{
	if (s->failed) {
		if (!s->err->code)
			azl_errf(s->err, s->failed, "%s: %s", what, strerror(-s->failed));
		return s->failed;
	}
	return azl_errf(s->err, -EIO, "%s: %s", what, archive_error_string(a));
}

/* ---- the layer ---- */

struct hardlink {
	uint32_t group;
	size_t index; /* position in model order */
};

static int hl_cmp(const void *a, const void *b)
{
	const struct hardlink *x = a, *y = b;
	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Regular files with a hardlink group, sorted by (group, model order). */
static struct hardlink *hardlinks(struct azl_node *const *nodes, size_t n,
				  size_t *count)
{
	struct hardlink *h = azl_xcalloc(n ? n : 1, sizeof(*h));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (nodes[i]->type == AZL_FT_REG && nodes[i]->hardlink_group)
			h[k++] = (struct hardlink){ nodes[i]->hardlink_group, i };
	qsort(h, k, sizeof(*h), hl_cmp);
	*count = k;
	return h;
}

/* The first path (model order) of n's hardlink group, or NULL if n is it. */
static const char *hardlink_target(struct azl_node *const *nodes, size_t i,
				   const struct hardlink *h, size_t nh)
{
	struct hardlink key = { nodes[i]->hardlink_group, 0 };
	size_t lo = 0, hi = nh;

	if (nodes[i]->type != AZL_FT_REG || !key.group)
		return NULL;
	while (lo < hi) { /* lower bound of the group */
		size_t mid = (lo + hi) / 2;
		if (h[mid].group < key.group)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= nh || h[lo].group != key.group || h[lo].index == i)
		return NULL;
	return nodes[h[lo].index]->path + 1;
}

static unsigned ftype_bits(enum azl_ftype t)
{
	switch (t) {
	case AZL_FT_REG: return AE_IFREG;
	case AZL_FT_DIR: return AE_IFDIR;
	case AZL_FT_SYMLINK: return AE_IFLNK;
	case AZL_FT_CHR: return AE_IFCHR;
	case AZL_FT_BLK: return AE_IFBLK;
	case AZL_FT_FIFO: return AE_IFIFO;
	case AZL_FT_SOCK: return 0;
	}
	return 0;
}

static void fill_entry(struct archive_entry *e, const struct azl_node *n,
		       const char *link)
{
	archive_entry_set_pathname(e, n->path + 1); /* "usr/bin/sh" */
	archive_entry_set_filetype(e, ftype_bits(n->type));
	archive_entry_set_perm(e, n->mode & 07777);
	archive_entry_set_uid(e, n->uid);
	archive_entry_set_gid(e, n->gid);
	archive_entry_set_uname(e, n->user ? n->user : "root");
	archive_entry_set_gname(e, n->group ? n->group : "root");
	archive_entry_set_mtime(e, n->mtime, 0);
	if (n->type == AZL_FT_REG && !link)
		archive_entry_set_size(e, (la_int64_t)n->size);
	if (link)
		archive_entry_set_hardlink(e, link);
	if (n->type == AZL_FT_SYMLINK)
		archive_entry_set_symlink(e, n->link_target ? n->link_target : "");
	if (n->type == AZL_FT_CHR || n->type == AZL_FT_BLK) {
		archive_entry_set_rdevmajor(e, n->rdev_major);
		archive_entry_set_rdevminor(e, n->rdev_minor);
	}
	for (size_t i = 0; i < n->nxattrs; i++)
		archive_entry_xattr_add_entry(e, n->xattrs[i].name,
					      n->xattrs[i].value, n->xattrs[i].len);
}

struct data_ctx {
	struct archive *a;
	struct sink *s;
};

static int data_write(void *ctx, const void *data, size_t len)
{
	struct data_ctx *d = ctx;
	la_ssize_t w = archive_write_data(d->a, data, len);
	if (w < 0 || (size_t)w != len)
		return d->s->failed ? d->s->failed : -EIO;
	return 0;
}

static int layer_entry(struct archive *a, struct sink *s,
		       struct archive_entry *e, const struct azl_node *n,
		       const char *link)
{
	struct data_ctx d = { a, s };
	int r;

	archive_entry_clear(e);
	fill_entry(e, n, link);
	if (archive_write_header(a, e) < ARCHIVE_WARN)
		return tar_fail(a, s, n->path);
	if (n->type != AZL_FT_REG || link || !n->size)
		return 0;
	r = azl_node_read(n, data_write, &d, s->err);
	if (r < 0 && s->err->code == 0)
		return tar_fail(a, s, n->path);
	return r;
}

static int layer_entries(struct archive *a, struct sink *s, struct azl_fs *fs)
{
	struct azl_node *const *nodes = azl_fs_sorted(fs);
	size_t n = azl_fs_count(fs), nh = 0;
	struct hardlink *h = hardlinks(nodes, n, &nh);
	struct archive_entry *e = archive_entry_new();
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++) {
		const struct azl_node *nd = nodes[i];
		/* "/" is the extraction root, not an entry; sockets have no
		 * tar type; ghosts are not on disk. */
		if (!strcmp(nd->path, "/") || nd->type == AZL_FT_SOCK ||
		    (nd->flags & AZL_NODE_GHOST))
			continue;
		r = layer_entry(a, s, e, nd, hardlink_target(nodes, i, h, nh));
	}
	archive_entry_free(e);
	free(h);
	return r;
}

/* model -> pax tar -> compressor -> fd, with both digests in *zres. */
static int write_layer(struct azl_fs *fs, const struct azl_oci_opts *o, int fd,
		       struct azl_zstream_result *zres, struct azl_err *err)
{
	struct sink s = { .err = err };
	struct archive *a = NULL;
	locale_t loc = 0, old = 0;
	int r;

	r = azl_zstream_open(o->compression, o->level, o->threads, 0,
			     azl_zstream_fd_sink, &fd, &s.zs, err);
	if (r < 0)
		return r;
	if ((r = tar_locale(&loc, &old, err)) < 0)
		goto out;
	a = tar_new(&s, err);
	if (!a) {
		r = -EIO;
		goto out;
	}
	r = layer_entries(a, &s, fs);
	if (r == 0 && archive_write_close(a) != ARCHIVE_OK)
		r = tar_fail(a, &s, "layer");
	if (r == 0) {
		r = azl_zstream_close(s.zs, zres, err);
		s.zs = NULL;
	}
out:
	if (a)
		archive_write_free(a);
	tar_locale_end(loc, old);
	azl_zstream_free(s.zs);
	return r;
}

/* ---- JSON documents ---- */

/* jansson refuses invalid UTF-8 by returning NULL / -1; *bad records it so
 * one check covers every value. */
static void put(json_t *obj, const char *key, json_t *v, int *bad)
{
	if (!v || json_object_set_new(obj, key, v) < 0)
		*bad = 1;
}

static json_t *str_array(const char *const *v, size_t n, int *bad)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(a, json_string(v[i])) < 0)
			*bad = 1;
	return a;
}

/* The image config's "config" object: only the keys opts sets. */
static json_t *run_config(const struct azl_oci_opts *o, int *bad)
{
	json_t *c = json_object();

	if (o->nentrypoint)
		put(c, "Entrypoint", str_array(o->entrypoint, o->nentrypoint, bad), bad);
	if (o->ncmd)
		put(c, "Cmd", str_array(o->cmd, o->ncmd, bad), bad);
	if (o->nenv)
		put(c, "Env", str_array(o->env, o->nenv, bad), bad);
	if (o->workdir)
		put(c, "WorkingDir", json_string(o->workdir), bad);
	if (o->user)
		put(c, "User", json_string(o->user), bad);
	if (o->nlabels) {
		json_t *l = json_object();
		for (size_t i = 0; i < o->nlabels; i++)
			put(l, o->labels[i].key, json_string(o->labels[i].value), bad);
		put(c, "Labels", l, bad);
	}
	if (o->nexposed_ports) {
		json_t *p = json_object();
		for (size_t i = 0; i < o->nexposed_ports; i++)
			put(p, o->exposed_ports[i], json_object(), bad);
		put(c, "ExposedPorts", p, bad);
	}
	return c;
}

static json_t *image_config(const struct azl_oci_opts *o, const char *arch,
			    const char *diff_id)
{
	char created[64];
	int bad = 0;
	json_t *rc = run_config(o, &bad);

	if (bad) {
		json_decref(rc);
		return NULL;
	}
	azl_sde_rfc3339(o->created, created);
	return json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:[s]}, s:[{s:s, s:s}]}",
			 "architecture", arch, "os", "linux", "created", created,
			 "config", rc,
			 "rootfs", "type", "layers", "diff_ids", diff_id,
			 "history", "created", created, "created_by", "azl-compose");
}

static json_t *descriptor(const char *media_type, const char *digest,
			  uint64_t size)
{
	return json_pack("{s:s, s:s, s:I}", "mediaType", media_type,
			 "digest", digest, "size", (json_int_t)size);
}

/* Canonical bytes: sorted keys, no whitespace.  NULL json (a json_pack or
 * json_string that met invalid UTF-8) is bad input. */
static int canonical(json_t *j, const char *what, char **out,
		     struct azl_err *err)
{
	*out = j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
	json_decref(j);
	if (!*out)
		return azl_err_input(err, "OCI %s: a value is not valid UTF-8 "
				     "or a key is missing", what);
	return 0;
}

/* ---- the outer archive ---- */

struct blob {
	char hex[65];
	const char *data; /* in memory, or NULL: copy from fd */
	size_t len;
	int fd;
	uint64_t size;
};

static int blob_cmp(const void *a, const void *b)
{
	return strcmp(((const struct blob *)a)->hex, ((const struct blob *)b)->hex);
}

static int outer_header(struct archive *a, struct sink *s,
			struct archive_entry *e, const char *path,
			unsigned type, uint64_t size, int64_t mtime)
{
	archive_entry_clear(e);
	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
	archive_entry_set_mtime(e, mtime, 0);
	if (type == AE_IFREG)
		archive_entry_set_size(e, (la_int64_t)size);
	if (archive_write_header(a, e) < ARCHIVE_WARN)
		return tar_fail(a, s, path);
	return 0;
}

static int copy_fd(struct archive *a, struct sink *s, int fd, uint64_t size,
		   const char *what)
{
	enum { CHUNK = TAR_RECORD * TAR_BLOCKS };
	char *buf = azl_xmalloc(CHUNK);
	uint64_t off = 0;
	int r = 0;

	while (off < size) {
		ssize_t n = pread(fd, buf, CHUNK, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = azl_errf(s->err, n < 0 ? -errno : -EIO,
				     "%s: reading the layer back: %s", what,
				     n < 0 ? strerror(errno) : "short file");
			break;
		}
		if (archive_write_data(a, buf, (size_t)n) != n) {
			r = tar_fail(a, s, what);
			break;
		}
		off += (uint64_t)n;
	}
	free(buf);
	return r;
}

static int outer_file(struct archive *a, struct sink *s,
		      struct archive_entry *e, const char *path,
		      const struct blob *b, int64_t mtime)
{
	int r = outer_header(a, s, e, path, AE_IFREG, b->size, mtime);
	if (r < 0)
		return r;
	if (!b->data)
		return copy_fd(a, s, b->fd, b->size, path);
	if (b->len && archive_write_data(a, b->data, b->len) != (la_ssize_t)b->len)
		return tar_fail(a, s, path);
	return 0;
}

/* blobs/, blobs/sha256/, each blob by digest, index.json, oci-layout:
 * sorted by name, like everything else. */
static int outer_entries(struct archive *a, struct sink *s, struct blob *blobs,
			 size_t nblobs, const char *index, int64_t mtime)
{
	static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
	struct archive_entry *e = archive_entry_new();
	struct blob ix = { .data = index, .len = strlen(index), .size = strlen(index) };
	struct blob lo = { .data = layout, .len = sizeof(layout) - 1, .size = sizeof(layout) - 1 };
	int r;

	qsort(blobs, nblobs, sizeof(*blobs), blob_cmp);
	r = outer_header(a, s, e, "blobs/", AE_IFDIR, 0, mtime);
	if (r == 0)
		r = outer_header(a, s, e, "blobs/sha256/", AE_IFDIR, 0, mtime);
	for (size_t i = 0; r == 0 && i < nblobs; i++) {
		char path[96];
		snprintf(path, sizeof(path), "blobs/sha256/%.64s", blobs[i].hex);
		r = outer_file(a, s, e, path, &blobs[i], mtime);
	}
	if (r == 0)
		r = outer_file(a, s, e, "index.json", &ix, mtime);
	if (r == 0)
		r = outer_file(a, s, e, "oci-layout", &lo, mtime);
	archive_entry_free(e);
	return r;
}

static int write_outer(const char *out_path, struct blob *blobs, size_t nblobs,
		       const char *index, int64_t mtime, struct azl_err *err)
{
	struct azl_out out;
	struct sink s = { .out = &out, .err = err };
	struct archive *a;
	int r = azl_out_open(&out, out_path, 0644, err);

	if (r < 0)
		return r;
	a = tar_new(&s, err);
	if (!a) {
		azl_out_abort(&out);
		return -EIO;
	}
	r = outer_entries(a, &s, blobs, nblobs, index, mtime);
	if (r < 0) /* the entry's name alone does not say which archive */
		azl_err_prefix(err, "%s", out_path);
	if (r == 0 && archive_write_close(a) != ARCHIVE_OK)
		r = tar_fail(a, &s, out_path);
	archive_write_free(a);
	if (r < 0) {
		azl_out_abort(&out);
		return r;
	}
	return azl_out_commit(&out, err);
}

/* ---- putting it together ---- */

/* An anonymous temporary file beside path: same filesystem, gone on exit. */
static int layer_tmpfile(const char *out_path, struct azl_err *err)
{
	char *tmp = azl_xasprintf("%s.layer.XXXXXX", out_path);
	int fd = mkostemp(tmp, O_CLOEXEC);

	if (fd < 0)
		azl_errf(err, -errno, "%s: cannot create a temporary file: %s",
			 tmp, strerror(errno));
	else
		unlink(tmp);
	free(tmp);
	return fd < 0 ? -errno : fd;
}

struct docs {
	char *config, *manifest, *index;
};

static int make_docs(const struct azl_oci_opts *o, const char *arch,
		     struct azl_oci_result *res, struct docs *d,
		     struct azl_err *err)
{
	const char *mt_layer = o->compression == AZL_COMP_GZIP ? MT_LAYER "+gzip"
			     : o->compression == AZL_COMP_ZSTD ? MT_LAYER "+zstd"
							       : MT_LAYER;
	char hex[65];
	json_t *j;
	int r;

	r = canonical(image_config(o, arch, res->diff_id), "config", &d->config, err);
	if (r < 0)
		return r;
	azl_sha256_hex(d->config, strlen(d->config), hex);
	snprintf(res->config_digest, sizeof(res->config_digest), "sha256:%s", hex);
	j = json_pack("{s:i, s:s, s:o, s:[o]}", "schemaVersion", 2,
		      "mediaType", MT_MANIFEST,
		      "config", descriptor(MT_CONFIG, res->config_digest, strlen(d->config)),
		      "layers", descriptor(mt_layer, res->layer_digest, res->layer_size));
	if ((r = canonical(j, "manifest", &d->manifest, err)) < 0)
		return r;
	res->manifest_size = strlen(d->manifest);
	azl_sha256_hex(d->manifest, res->manifest_size, hex);
	snprintf(res->manifest_digest, sizeof(res->manifest_digest), "sha256:%s", hex);
	j = descriptor(MT_MANIFEST, res->manifest_digest, res->manifest_size);
	if (j && o->ref_name)
		json_object_set_new(j, "annotations",
				    json_pack("{s:s}", "org.opencontainers.image.ref.name", o->ref_name));
	if (j)
		json_object_set_new(j, "platform",
				    json_pack("{s:s, s:s}", "architecture", arch, "os", "linux"));
	j = json_pack("{s:i, s:s, s:[o]}", "schemaVersion", 2,
		      "mediaType", MT_INDEX, "manifests", j);
	return canonical(j, "index", &d->index, err);
}

static void set_blob(struct blob *b, const char *digest, const char *data)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->hex, sizeof(b->hex), "%s", digest + strlen("sha256:"));
	b->data = data;
	b->len = b->size = strlen(data);
}

int azl_emit_oci(struct azl_fs *fs, const struct azl_oci_opts *opts,
		 const char *out_path, struct azl_oci_result *res,
		 struct azl_err *err)
{
	const char *arch = azl_oci_arch(opts->arch);
	struct azl_oci_result mine;
	struct azl_err scratch = { 0 };
	struct azl_zstream_result z;
	struct docs d = { 0 };
	struct blob blobs[3];
	int fd = -1, r;

	if (!res)
		res = &mine;
	if (!err)
		err = &scratch; /* the helpers below read err->code */
	memset(res, 0, sizeof(*res));
	if (!arch)
		return azl_err_input(err, "%s: architecture '%s' has no OCI name",
				     out_path, opts->arch ? opts->arch : "(none)");
	if ((r = fd = layer_tmpfile(out_path, err)) < 0)
		goto out;
	if ((r = write_layer(fs, opts, fd, &z, err)) < 0) {
		azl_err_prefix(err, "%s: layer", out_path);
		goto out;
	}
	snprintf(res->layer_digest, sizeof(res->layer_digest), "sha256:%s", z.sha256);
	snprintf(res->diff_id, sizeof(res->diff_id), "sha256:%s", z.raw_sha256);
	res->layer_size = z.size;
	if ((r = make_docs(opts, arch, res, &d, err)) < 0)
		goto out;
	set_blob(&blobs[0], res->config_digest, d.config);
	set_blob(&blobs[1], res->manifest_digest, d.manifest);
	memset(&blobs[2], 0, sizeof(blobs[2]));
	snprintf(blobs[2].hex, sizeof(blobs[2].hex), "%s", z.sha256);
	blobs[2].fd = fd;
	blobs[2].size = z.size;
	r = write_outer(out_path, blobs, 3, d.index, opts->created, err);
out:
	if (fd >= 0)
		close(fd);
	free(d.config);
	free(d.manifest);
	free(d.index);
	return r;
}
