/* azl-compose diff (see diff.h). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <et/com_err.h>
#include <ext2fs/ext2fs.h>
#include <jansson.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/diff.h"
#include "reproducible/gpt.h"
#include "reproducible/vhd.h"

#define MAX_DEPTH 8
#define SHOW_MAX 100                  /* characters of a value shown */
#define CAPTURE_ONE (1u << 20)         /* small members kept for OCI JSON */
#define CAPTURE_ALL (16u << 20)

/* qsort, but an empty array may be NULL (qsort's pointer must not be). */
static void sort_n(void *base, size_t n, size_t size,
		   int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}

/* --- collecting differences ---------------------------------------------- */

/* Innermost first and at most max: keeping max items per depth is enough,
 * and bounds memory however many entries differ. */
struct coll {
	size_t max;
	size_t total;
	struct azl_diff_item *lv[MAX_DEPTH];
	size_t n[MAX_DEPTH];
};

static char *shorten(const char *s)
{
	struct azl_buf b = AZL_BUF_INIT;
	size_t i;
	for (i = 0; s[i] && i < SHOW_MAX; i++) {
		if (s[i] == '\n')
			azl_buf_adds(&b, "\\n");
		else if ((unsigned char)s[i] < 0x20)
			azl_buf_addf(&b, "\\x%02x", (unsigned char)s[i]);
		else
			azl_buf_addc(&b, s[i]);
	}
	if (s[i])
		azl_buf_adds(&b, "...");
	return azl_buf_detach(&b);
}

static void add(struct coll *c, const char *path, const char *what,
		const char *a, const char *b)
{
	int depth = 0;
	for (const char *p = path; *p; p++)
		depth += *p == ':';
	c->total++;
	int d = depth < MAX_DEPTH ? depth : MAX_DEPTH - 1;
	if (c->n[d] >= c->max)
		return;
	c->lv[d] = azl_xrealloc(c->lv[d], (c->n[d] + 1) * sizeof(*c->lv[d]));
	c->lv[d][c->n[d]++] = (struct azl_diff_item){
		azl_xstrdup(path), azl_xstrdup(what), shorten(a ? a : ""),
		shorten(b ? b : ""), depth,
	};
}

static void addf_vals(struct coll *c, const char *path, const char *what,
		      long long a, long long b, bool octal)
{
	char sa[64], sb[64];
	snprintf(sa, sizeof(sa), octal ? "%04llo" : "%lld", a);
	snprintf(sb, sizeof(sb), octal ? "%04llo" : "%lld", b);
	add(c, path, what, sa, sb);
}

/* --- tar indexes ----------------------------------------------------------- */

struct tentry {
	char *path;
	unsigned type, mode;
	long long uid, gid, mtime, mtime_ns, size;
	char *uname, *gname, *link, *xattrs;
	char sha[65];
	size_t ord;
};

struct member { char *path; char *data; size_t len; };

struct tindex {
	struct tentry *e;
	size_t n;
	struct member *cap;  /* small members' bytes (OCI JSON), may be empty */
	size_t ncap, capped;
	bool capture;
	char filter[32];     /* compression the archive was read through */
	uint64_t *dirs;      /* folders walked (inode or cluster + 1), an
				open-addressing set; see dir_enter */
	size_t ndirs, capdirs;
};

static void tindex_release(struct tindex *ix)
{
	for (size_t i = 0; i < ix->n; i++) {
		struct tentry *e = &ix->e[i];
		free(e->path); free(e->uname); free(e->gname);
		free(e->link); free(e->xattrs);
	}
	for (size_t i = 0; i < ix->ncap; i++) {
		free(ix->cap[i].path);
		free(ix->cap[i].data);
	}
	free(ix->e);
	free(ix->cap);
	free(ix->dirs);
	memset(ix, 0, sizeof(*ix));
}

/* Folders deeper than this in a filesystem image are refused. */
#define MAX_FS_DEPTH 256

static bool dirs_insert(struct tindex *ix, uint64_t k)
{
	size_t i = (size_t)(k * 0x9e3779b97f4a7c15ull) & (ix->capdirs - 1);
	for (; ix->dirs[i]; i = (i + 1) & (ix->capdirs - 1))
		if (ix->dirs[i] == k)
			return false;
	ix->dirs[i] = k;
	ix->ndirs++;
	return true;
}

/* Before walking folder `key` (an inode or cluster number) at `prefix`:
 * a damaged or crafted image can link a folder into itself or nest them
 * without end, and walking it again would never finish.  0 or an error
 * naming the folder. */
static int dir_enter(struct tindex *ix, uint32_t key, const char *prefix,
		     const char *label, struct azl_err *err)
{
	size_t depth = 0;
	for (const char *p = prefix; *p; p++)
		depth += *p == '/';
	if (depth >= MAX_FS_DEPTH)
		return azl_errf(err, ELOOP, "%s: %s: folders nested deeper than %d",
				label, prefix, MAX_FS_DEPTH);
	if (2 * (ix->ndirs + 1) > ix->capdirs) {
		uint64_t *old = ix->dirs;
		size_t oldcap = ix->capdirs;
		ix->capdirs = oldcap ? 2 * oldcap : 64;
		ix->dirs = azl_xcalloc(ix->capdirs, sizeof(*ix->dirs));
		ix->ndirs = 0;
		for (size_t i = 0; i < oldcap; i++)
			if (old[i])
				dirs_insert(ix, old[i]);
		free(old);
	}
	if (!dirs_insert(ix, (uint64_t)key + 1))
		return azl_errf(err, ELOOP, "%s: %s: a folder linked into itself "
				"(directory loop)", label, *prefix ? prefix : "/");
	return 0;
}

static const char *member_data(const struct tindex *ix, const char *path, size_t *len)
{
	for (size_t i = 0; i < ix->ncap; i++)
		if (!strcmp(ix->cap[i].path, path)) {
			*len = ix->cap[i].len;
			return ix->cap[i].data;
		}
	return NULL;
}

/* "./etc/x" and "etc/x" name the same entry; directories lose the '/'. */
static char *norm_path(const char *p)
{
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	char *s = azl_xstrdup(*p ? p : ".");
	size_t n = strlen(s);
	while (n > 1 && s[n - 1] == '/')
		s[--n] = '\0';
	return s;
}

/* xattrs as "name=sha256(value)" lines, sorted (libarchive keeps header order). */
static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static char *xattr_text(struct archive_entry *ae)
{
	const char *name;
	const void *val;
	size_t len, n = 0;
	char **v = NULL;
	struct azl_buf b = AZL_BUF_INIT;

	archive_entry_xattr_reset(ae);
	while (archive_entry_xattr_next(ae, &name, &val, &len) == ARCHIVE_OK) {
		char hex[65];
		azl_sha256_hex(val, len, hex);
		v = azl_xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = azl_xasprintf("%s=%.16s", name, hex);
	}
	sort_n(v, n, sizeof(*v), cmp_str);
	for (size_t i = 0; i < n; i++) {
		azl_buf_addf(&b, "%s%s", i ? " " : "", v[i]);
		free(v[i]);
	}
	free(v);
	return azl_buf_detach(&b);
}

static void entry_from(struct tentry *e, struct archive_entry *ae, size_t ord)
{
	const char *sl = archive_entry_symlink(ae), *hl = archive_entry_hardlink(ae);
	e->path = norm_path(archive_entry_pathname(ae) ? archive_entry_pathname(ae) : "");
	e->type = archive_entry_filetype(ae);
	e->mode = archive_entry_perm(ae);
	e->uid = archive_entry_uid(ae);
	e->gid = archive_entry_gid(ae);
	e->uname = azl_xstrdup(archive_entry_uname(ae) ? archive_entry_uname(ae) : "");
	e->gname = azl_xstrdup(archive_entry_gname(ae) ? archive_entry_gname(ae) : "");
	e->mtime = archive_entry_mtime(ae);
	e->mtime_ns = archive_entry_mtime_nsec(ae);
	e->size = archive_entry_size(ae);
	e->link = sl ? azl_xasprintf("-> %s", sl) : hl ? azl_xasprintf("link to %s", hl)
						       : azl_xstrdup("");
	e->xattrs = xattr_text(ae);
	e->ord = ord;
}

/* Hash the entry's data; keep it when small and capturing. */
static int entry_data(struct archive *ar, struct tindex *ix, struct tentry *e,
		      const char *label, struct azl_err *err)
{
	struct azl_sha256 *h = azl_sha256_new();
	struct azl_buf keep = AZL_BUF_INIT;
	bool capture = ix->capture && e->size >= 0 && e->size <= CAPTURE_ONE &&
		       ix->capped + (size_t)e->size <= CAPTURE_ALL;
	char buf[65536];
	la_ssize_t n;
	int r = 0;

	while ((n = archive_read_data(ar, buf, sizeof(buf))) > 0) {
		azl_sha256_update(h, buf, (size_t)n);
		if (capture)
			azl_buf_add(&keep, buf, (size_t)n);
	}
	azl_sha256_final(h, e->sha);
	if (n < 0) {
		r = azl_errf(err, EIO, "%s: %s: %s", label, e->path, archive_error_string(ar));
		goto out;
	}
	if (capture) {
		ix->cap = azl_xrealloc(ix->cap, (ix->ncap + 1) * sizeof(*ix->cap));
		ix->cap[ix->ncap].path = azl_xstrdup(e->path);
		ix->cap[ix->ncap].len = keep.len;
		ix->cap[ix->ncap++].data = azl_buf_detach(&keep);
		ix->capped += (size_t)e->size;
	}
out:
	azl_buf_release(&keep);
	return r;
}

/* Index every entry of an opened archive.  Returns 1 when the first header
 * cannot be read (not an archive), 0 on success, negative on errors. */
static int index_archive(struct archive *ar, struct tindex *ix, const char *label,
			 struct azl_err *err)
{
	struct archive_entry *ae;
	int r;

	while ((r = archive_read_next_header(ar, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		ix->e = azl_xrealloc(ix->e, (ix->n + 1) * sizeof(*ix->e));
		struct tentry *e = &ix->e[ix->n];
		entry_from(e, ae, ix->n);
		ix->n++;
		if ((r = entry_data(ar, ix, e, label, err)) < 0)
			return r;
	}
	snprintf(ix->filter, sizeof(ix->filter), "%s",
		 archive_filter_count(ar) > 1 ? archive_filter_name(ar, 0) : "none");
	if (r == ARCHIVE_EOF)
		return 0;
	if (ix->n == 0)
		return 1;
	return azl_errf(err, EIO, "%s: %s", label, archive_error_string(ar));
}

static struct archive *reader_new(void)
{
	struct archive *ar = archive_read_new();
	archive_read_support_filter_all(ar);
	archive_read_support_format_tar(ar);
	archive_read_support_format_cpio(ar);
	return ar;
}

/* Index the archive at path.  1: not an archive. */
static int index_file(const char *path, bool capture, struct tindex *ix,
		      struct azl_err *err)
{
	struct archive *ar = reader_new();
	int r;

	ix->capture = capture;
	if (archive_read_open_filename(ar, path, 65536) != ARCHIVE_OK)
		r = 1;
	else
		r = index_archive(ar, ix, path, err);
	archive_read_free(ar);
	return r;
}

/* --- comparing two indexes ------------------------------------------------- */

static int cmp_entry(const void *x, const void *y)
{
	const struct tentry *a = x, *b = y;
	int c = strcmp(a->path, b->path);
	return c ? c : (a->ord < b->ord ? -1 : a->ord > b->ord);
}

static const char *type_name(unsigned t)
{
	switch (t) {
	case AE_IFREG: return "file";
	case AE_IFDIR: return "directory";
	case AE_IFLNK: return "symlink";
	case AE_IFCHR: return "char device";
	case AE_IFBLK: return "block device";
	case AE_IFIFO: return "fifo";
	case AE_IFSOCK: return "socket";
	default: return "hardlink";
	}
}

static void compare_entry(struct coll *c, const char *p, const struct tentry *a,
			  const struct tentry *b)
{
	if (a->type != b->type)
		add(c, p, "type", type_name(a->type), type_name(b->type));
	if (a->mode != b->mode)
		addf_vals(c, p, "mode", a->mode, b->mode, true);
	if (a->uid != b->uid || a->gid != b->gid || strcmp(a->uname, b->uname) ||
	    strcmp(a->gname, b->gname)) {
		char *sa = azl_xasprintf("%lld:%lld %s:%s", a->uid, a->gid, a->uname, a->gname);
		char *sb = azl_xasprintf("%lld:%lld %s:%s", b->uid, b->gid, b->uname, b->gname);
		add(c, p, "owner", sa, sb);
		free(sa);
		free(sb);
	}
	if (a->mtime != b->mtime || a->mtime_ns != b->mtime_ns)
		addf_vals(c, p, "mtime", a->mtime, b->mtime, false);
	if (a->size != b->size)
		addf_vals(c, p, "size", a->size, b->size, false);
	if (strcmp(a->link, b->link))
		add(c, p, "link target", a->link, b->link);
	if (strcmp(a->xattrs, b->xattrs))
		add(c, p, "xattr", a->xattrs, b->xattrs);
	if (strcmp(a->sha, b->sha))
		add(c, p, "content digest", a->sha, b->sha);
}

/* The common entries, visited in A's order, must come in B's order too. */
static void compare_order(struct coll *c, const char *label, size_t *ord_b,
			  const struct tentry *const *by_a, size_t n)
{
	size_t last = 0;
	for (size_t i = 0; i < n; i++) {
		if (i && ord_b[i] < last) {
			char *p = azl_xasprintf("%s:%s", label, by_a[i]->path);
			add(c, label, "entry order", p, "moved");
			free(p);
			return;
		}
		last = ord_b[i];
	}
}

static int cmp_ord_pair(const void *x, const void *y)
{
	const size_t *a = x, *b = y;
	return a[0] < b[0] ? -1 : a[0] > b[0];
}

static void compare_indexes(struct coll *c, const char *label, struct tindex *a,
			    struct tindex *b)
{
	size_t i = 0, j = 0, ncommon = 0;
	size_t *pairs = azl_xcalloc(a->n + 1, 2 * sizeof(size_t));

	sort_n(a->e, a->n, sizeof(*a->e), cmp_entry);
	sort_n(b->e, b->n, sizeof(*b->e), cmp_entry);
	while (i < a->n || j < b->n) {
		int d = i >= a->n ? 1 : j >= b->n ? -1 : strcmp(a->e[i].path, b->e[j].path);
		const struct tentry *e = d < 0 ? &a->e[i] : &b->e[j];
		char *p = azl_xasprintf("%s:%s", label, e->path);
		if (d < 0)
			add(c, p, "removed", type_name(e->type), "");
		else if (d > 0)
			add(c, p, "added", "", type_name(e->type));
		else {
			compare_entry(c, p, &a->e[i], &b->e[j]);
			pairs[2 * ncommon] = a->e[i].ord;
			pairs[2 * ncommon++ + 1] = b->e[j].ord;
		}
		free(p);
		i += d <= 0;
		j += d >= 0;
	}
	/* Sort common pairs by A's order, then check B's order rises. */
	sort_n(pairs, ncommon, 2 * sizeof(size_t), cmp_ord_pair);
	size_t *ord_b = azl_xcalloc(ncommon + 1, sizeof(size_t));
	const struct tentry **by_a = azl_xcalloc(ncommon + 1, sizeof(*by_a));
	size_t *pos = azl_xcalloc(a->n + 1, sizeof(size_t)); /* ord -> index */
	for (size_t m = 0; m < a->n; m++)
		pos[a->e[m].ord] = m;
	for (size_t k = 0; k < ncommon; k++) {
		ord_b[k] = pairs[2 * k + 1];
		by_a[k] = &a->e[pos[pairs[2 * k]]];
	}
	compare_order(c, label, ord_b, by_a, ncommon);
	free(pos);
	free(ord_b);
	free(by_a);
	free(pairs);
}

/* --- JSON ------------------------------------------------------------------ */

struct kv { char *key, *val; };
struct kvs { struct kv *v; size_t n; };

static void flatten(json_t *j, const char *prefix, struct kvs *out)
{
	if (json_is_object(j)) {
		const char *k;
		json_t *v;
		json_object_foreach(j, k, v) {
			char *p = *prefix ? azl_xasprintf("%s.%s", prefix, k) : azl_xstrdup(k);
			flatten(v, p, out);
			free(p);
		}
		return;
	}
	if (json_is_array(j)) {
		size_t i;
		json_t *v;
		json_array_foreach(j, i, v) {
			char *p = azl_xasprintf("%s[%zu]", prefix, i);
			flatten(v, p, out);
			free(p);
		}
		return;
	}
	out->v = azl_xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
	out->v[out->n].key = azl_xstrdup(*prefix ? prefix : "(value)");
	out->v[out->n++].val = json_is_string(j) ? azl_xstrdup(json_string_value(j))
			       : json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
}

static int cmp_kv(const void *x, const void *y)
{
	return strcmp(((const struct kv *)x)->key, ((const struct kv *)y)->key);
}

static void kvs_release(struct kvs *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].key);
		free(s->v[i].val);
	}
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* Multi-line values (a manifest's text): name the first line that differs. */
static void add_text(struct coll *c, const char *label, const char *key,
		     const char *a, const char *b)
{
	size_t line = 1;
	if (!strchr(a, '\n') && !strchr(b, '\n')) {
		add(c, label, key, a, b);
		return;
	}
	for (;;) {
		size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
		if (la != lb || memcmp(a, b, la) || !a[la] || !b[lb])
			break;
		a += la + 1;
		b += lb + 1;
		line++;
	}
	char *w = azl_xasprintf("%s line %zu", key, line);
	char *va = azl_xasprintf("%.*s", (int)strcspn(a, "\n"), a);
	char *vb = azl_xasprintf("%.*s", (int)strcspn(b, "\n"), b);
	add(c, label, w, va, vb);
	free(w);
	free(va);
	free(vb);
}

/* Field by field; a field is what differs, added or removed.  Frees both. */
static void compare_kvs(struct coll *c, const char *label, struct kvs a, struct kvs b)
{
	size_t i = 0, j = 0;

	sort_n(a.v, a.n, sizeof(*a.v), cmp_kv);
	sort_n(b.v, b.n, sizeof(*b.v), cmp_kv);
	while (i < a.n || j < b.n) {
		int d = i >= a.n ? 1 : j >= b.n ? -1 : strcmp(a.v[i].key, b.v[j].key);
		if (d < 0)
			add(c, label, a.v[i].key, a.v[i].val, "(absent)");
		else if (d > 0)
			add(c, label, b.v[j].key, "(absent)", b.v[j].val);
		else if (strcmp(a.v[i].val, b.v[j].val))
			add_text(c, label, a.v[i].key, a.v[i].val, b.v[j].val);
		i += d <= 0;
		j += d >= 0;
	}
	kvs_release(&a);
	kvs_release(&b);
}

static void compare_json(struct coll *c, const char *label, json_t *ja, json_t *jb)
{
	struct kvs a = { 0 }, b = { 0 };

	flatten(ja, "", &a);
	flatten(jb, "", &b);
	compare_kvs(c, label, a, b);
}

/* sha256sum's format, "HEX  NAME" per line: name -> digest.  -1 when the
 * file is something else. */
static int parse_sums(const char *path, struct kvs *out)
{
	struct azl_err err = { 0 };
	char *data, *line, *save = NULL;
	size_t len;
	int r = 0;

	if (azl_read_file(path, 1u << 20, &data, &len, &err) < 0)
		return -1;
	for (line = strtok_r(data, "\n", &save); line && r == 0; line = strtok_r(NULL, "\n", &save)) {
		size_t n = strlen(line);
		if (n < 67 || line[64] != ' ' || (line[65] != ' ' && line[65] != '*')) {
			r = -1;
			break;
		}
		line[64] = '\0';
		if (!azl_is_sha256_hex(line))
			r = -1;
		out->v = azl_xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
		out->v[out->n].key = azl_xstrdup(line + 66);
		out->v[out->n++].val = azl_xstrdup(line);
	}
	if (out->n == 0)
		r = -1;
	free(data);
	if (r < 0)
		kvs_release(out);
	return r;
}

static bool try_sums(struct coll *c, const char *label, const char *fa, const char *fb)
{
	struct kvs a = { 0 }, b = { 0 };
	if (parse_sums(fa, &a) < 0)
		return false;
	if (parse_sums(fb, &b) < 0) {
		kvs_release(&a);
		return false;
	}
	compare_kvs(c, label, a, b);
	return true;
}

static json_t *json_member(const struct tindex *ix, const char *path)
{
	size_t len;
	const char *d = member_data(ix, path, &len);
	return d ? json_loadb(d, len, 0, NULL) : NULL;
}

static json_t *json_blob(const struct tindex *ix, json_t *desc)
{
	const char *dg = json_string_value(json_object_get(desc, "digest"));
	if (!dg || strncmp(dg, "sha256:", 7))
		return NULL;
	char *p = azl_xasprintf("blobs/sha256/%s", dg + 7);
	json_t *j = json_member(ix, p);
	free(p);
	return j;
}

/* --- OCI ------------------------------------------------------------------- */

/* libarchive reads the inner (layer) archive from the outer one's data.
 * The block is on the heap: a static __thread buffer would be zeroed in
 * every thread the program starts. */
struct outer_src {
	struct archive *outer;
	char block[65536];
};

static la_ssize_t outer_read(struct archive *inner, void *ctx, const void **buf)
{
	struct outer_src *src = ctx;

	(void)inner;
	*buf = src->block;
	return archive_read_data(src->outer, src->block, sizeof(src->block));
}

/* Index the tar inside member `member` of the archive at path. */
static int index_member(const char *path, const char *member, struct tindex *ix,
			struct azl_err *err)
{
	struct archive *outer = reader_new(), *inner = NULL;
	struct archive_entry *ae;
	struct outer_src *src = NULL;
	char *label = azl_xasprintf("%s:%s", path, member);
	int r;

	if (archive_read_open_filename(outer, path, 65536) != ARCHIVE_OK) {
		r = azl_errf(err, EIO, "%s: %s", path, archive_error_string(outer));
		goto out;
	}
	while ((r = archive_read_next_header(outer, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		char *p = norm_path(archive_entry_pathname(ae));
		int found = !strcmp(p, member);
		free(p);
		if (found)
			break;
	}
	if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
		r = azl_errf(err, ENOENT, "%s: no member %s", path, member);
		goto out;
	}
	inner = reader_new();
	src = azl_xmalloc(sizeof(*src));
	src->outer = outer;
	if (archive_read_open(inner, src, NULL, outer_read, NULL) != ARCHIVE_OK)
		r = 1;
	else
		r = index_archive(inner, ix, label, err);
out:
	if (inner)
		archive_read_free(inner);
	free(src);
	archive_read_free(outer);
	free(label);
	return r;
}

static char *blob_path(json_t *desc)
{
	const char *dg = json_string_value(json_object_get(desc, "digest"));
	return dg && !strncmp(dg, "sha256:", 7) ? azl_xasprintf("blobs/sha256/%s", dg + 7) : NULL;
}

/* Layer pair k: entries of both, compared (a layer that is no tar: digest only). */
static int compare_layer(struct coll *c, const char *label, const char *fa,
			 const char *fb, json_t *la, json_t *lb, size_t k,
			 struct azl_err *err)
{
	struct tindex ia = { 0 }, ib = { 0 };
	char *pa = blob_path(la), *pb = blob_path(lb);
	char *ll = azl_xasprintf("%s:layers[%zu]", label, k);
	int r = 0, ra = 1, rb = 1;

	if (!pa || !pb || !strcmp(pa, pb))
		goto out;
	if ((ra = index_member(fa, pa, &ia, err)) < 0 ||
	    (rb = index_member(fb, pb, &ib, err)) < 0) {
		r = ra < 0 ? ra : rb;
		goto out;
	}
	if (ra == 0 && rb == 0) {
		if (strcmp(ia.filter, ib.filter))
			add(c, ll, "compression", ia.filter, ib.filter);
		compare_indexes(c, ll, &ia, &ib);
	} else
		add(c, ll, "content digest", pa, pb);
out:
	tindex_release(&ia);
	tindex_release(&ib);
	free(pa);
	free(pb);
	free(ll);
	return r;
}

static int compare_manifest(struct coll *c, const char *label, const char *fa,
			    const char *fb, const struct tindex *ia,
			    const struct tindex *ib, json_t *da, json_t *db,
			    size_t i, struct azl_err *err)
{
	json_t *ma = json_blob(ia, da), *mb = json_blob(ib, db);
	json_t *ca = NULL, *cb = NULL;
	char *ml = azl_xasprintf("%s:manifest[%zu]", label, i);
	char *cl = azl_xasprintf("%s:config[%zu]", label, i);
	int r = 0;

	if (!ma || !mb)
		goto out;
	compare_json(c, ml, ma, mb);
	ca = json_blob(ia, json_object_get(ma, "config"));
	cb = json_blob(ib, json_object_get(mb, "config"));
	if (ca && cb)
		compare_json(c, cl, ca, cb);
	json_t *la = json_object_get(ma, "layers"), *lb = json_object_get(mb, "layers");
	for (size_t k = 0; r == 0 && k < json_array_size(la) && k < json_array_size(lb); k++)
		r = compare_layer(c, label, fa, fb, json_array_get(la, k),
				  json_array_get(lb, k), k, err);
out:
	json_decref(ma);
	json_decref(mb);
	json_decref(ca);
	json_decref(cb);
	free(ml);
	free(cl);
	return r;
}

static bool is_oci(const struct tindex *ix)
{
	size_t len;
	return member_data(ix, "oci-layout", &len) && member_data(ix, "index.json", &len);
}

/* Outer members as a tar, then index -> manifests -> config and layers. */
static int compare_oci(struct coll *c, const char *label, const char *fa,
		       const char *fb, struct tindex *ia, struct tindex *ib,
		       struct azl_err *err)
{
	json_t *xa = json_member(ia, "index.json"), *xb = json_member(ib, "index.json");
	char *il = azl_xasprintf("%s:index.json", label);
	int r = 0;

	compare_indexes(c, label, ia, ib);
	if (!xa || !xb)
		goto out;
	compare_json(c, il, xa, xb);
	json_t *ma = json_object_get(xa, "manifests"), *mb = json_object_get(xb, "manifests");
	for (size_t i = 0; r == 0 && i < json_array_size(ma) && i < json_array_size(mb); i++)
		r = compare_manifest(c, label, fa, fb, ia, ib, json_array_get(ma, i),
				     json_array_get(mb, i), i, err);
out:
	json_decref(xa);
	json_decref(xb);
	free(il);
	return r;
}

/* --- disks: VHD footer -> GPT -> partitions -> ext4 entries -------------- */

struct gpt_ent {
	char type[37], uuid[37], name[AZL_GPT_NAME_MAX + 1];
	uint64_t first, last, attrs;
	uint32_t slot;        /* entry number, 1-based: the N of /dev/sdaN */
};

struct disk {
	int fd;
	uint64_t size;        /* without a VHD footer */
	bool vhd;
	unsigned char footer[AZL_VHD_FOOTER_SIZE];
	char disk_guid[37];
	struct gpt_ent *parts;
	size_t nparts;
};

static uint64_t le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void guid_text(const unsigned char *disk, char out[37])
{
	unsigned char g[16];
	azl_guid_to_disk(disk, g); /* an involution: disk order -> text order */
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9],
		 g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* The partition entries of the primary GPT; 1 when there is none. */
static int gpt_read(struct disk *d)
{
	unsigned char h[AZL_SECTOR], e[AZL_GPT_ENTRY_SIZE];
	/* The protective MBR's signature too: a tar can hold "EFI PART" at 512. */
	if (azl_pread_all(d->fd, h, sizeof(h), 0) < 0 || h[510] != 0x55 || h[511] != 0xaa)
		return 1;
	if (azl_pread_all(d->fd, h, sizeof(h), AZL_SECTOR) < 0 || memcmp(h, "EFI PART", 8))
		return 1;
	uint64_t lba = le64(h + 72);
	uint32_t n = (uint32_t)le64(h + 80) & 0xffffffffu;
	uint32_t esz = (uint32_t)le64(h + 84) & 0xffffffffu;
	if (n > 1024 || esz < AZL_GPT_ENTRY_SIZE)
		return 1;
	guid_text(h + 56, d->disk_guid);
	for (uint32_t i = 0; i < n; i++) {
		if (azl_pread_all(d->fd, e, sizeof(e), lba * AZL_SECTOR + (uint64_t)i * esz) < 0)
			return 1;
		static const unsigned char zero[16];
		if (!memcmp(e, zero, 16))
			continue;
		d->parts = azl_xrealloc(d->parts, (d->nparts + 1) * sizeof(*d->parts));
		struct gpt_ent *p = &d->parts[d->nparts++];
		p->slot = i + 1;
		guid_text(e, p->type);
		guid_text(e + 16, p->uuid);
		p->first = le64(e + 32);
		p->last = le64(e + 40);
		p->attrs = le64(e + 48);
		size_t k;
		for (k = 0; k < AZL_GPT_NAME_MAX && (e[56 + 2 * k] || e[57 + 2 * k]); k++)
			p->name[k] = e[57 + 2 * k] ? '?' : (char)e[56 + 2 * k]; /* ASCII names */
		p->name[k] = '\0';
	}
	return 0;
}

static bool is_ext4_at(int fd, uint64_t off)
{
	unsigned char m[2];
	return azl_pread_all(fd, m, 2, off + 1024 + 56) == 0 && m[0] == 0x53 && m[1] == 0xef;
}

static bool is_fat_at(int fd, uint64_t off);

/* 1: not a disk (no GPT, no ext4 or FAT at 0). */
static int disk_open(const char *path, struct disk *d, struct azl_err *err)
{
	struct stat st;
	memset(d, 0, sizeof(*d));
	d->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (d->fd < 0 || fstat(d->fd, &st) < 0)
		return azl_errf(err, errno, "%s: %s", path, strerror(errno));
	d->size = (uint64_t)st.st_size;
	if (d->size >= 2 * AZL_SECTOR &&
	    azl_pread_all(d->fd, d->footer, sizeof(d->footer), d->size - AZL_VHD_FOOTER_SIZE) == 0 &&
	    !memcmp(d->footer, "conectix", 8)) {
		d->vhd = true;
		d->size -= AZL_VHD_FOOTER_SIZE;
	}
	if (gpt_read(d) == 0 || is_ext4_at(d->fd, 0) || is_fat_at(d->fd, 0))
		return 0;
	return 1;
}

static void disk_close(struct disk *d)
{
	if (d->fd >= 0)
		close(d->fd);
	free(d->parts);
	memset(d, 0, sizeof(*d));
	d->fd = -1;
}

/* ext4 entries as tar-like index entries (sorted per directory). */
/* One directory's entries, collected then sorted (blocks are in hash order). */
struct ext_dent { char *name; ext2_ino_t ino; };
struct ext_walk { struct ext_dent *d; size_t n; };

static int collect_dirent(ext2_ino_t dir, int entry, struct ext2_dir_entry *de,
			  int offset, int blocksize, char *buf, void *priv)
{
	struct ext_walk *w = priv;
	int len = ext2fs_dirent_name_len(de);
	(void)dir; (void)entry; (void)offset; (void)blocksize; (void)buf;
	if ((len == 1 && de->name[0] == '.') || (len == 2 && !memcmp(de->name, "..", 2)))
		return 0;
	w->d = azl_xrealloc(w->d, (w->n + 1) * sizeof(*w->d));
	w->d[w->n++] = (struct ext_dent){ azl_xasprintf("%.*s", len, de->name), de->inode };
	return 0;
}

static int cmp_dent(const void *x, const void *y)
{
	return strcmp(((const struct ext_dent *)x)->name, ((const struct ext_dent *)y)->name);
}

static int add_xattr(char *name, char *value, size_t len, void *data)
{
	struct azl_buf *b = data;
	char hex[65];
	azl_sha256_hex(value, len, hex);
	azl_buf_addf(b, "%s%s=%.16s", b->len ? "\n" : "", name, hex);
	return 0;
}

static char *ext_xattrs(ext2_filsys fs, ext2_ino_t ino)
{
	struct ext2_xattr_handle *h = NULL;
	struct azl_buf b = AZL_BUF_INIT;
	if (ext2fs_xattrs_open(fs, ino, &h) == 0) {
		if (ext2fs_xattrs_read(h) == 0)
			ext2fs_xattrs_iterate(h, add_xattr, &b);
		ext2fs_xattrs_close(&h);
	}
	/* Sorted like the tar side: one name per line, then joined. */
	char *s = azl_buf_detach(&b), **v = NULL, *save = NULL;
	size_t n = 0;
	for (char *t = strtok_r(s, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
		v = azl_xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = t;
	}
	sort_n(v, n, sizeof(*v), cmp_str);
	for (size_t i = 0; i < n; i++)
		azl_buf_addf(&b, "%s%s", i ? " " : "", v[i]);
	free(v);
	free(s);
	return azl_buf_detach(&b);
}

/* Stream a file's (or slow symlink's) bytes: hash, and keep up to keep_max. */
static errcode_t ext_read(ext2_filsys fs, ext2_ino_t ino, char sha[65],
			  char *keep, size_t keep_max)
{
	ext2_file_t f;
	char buf[65536];
	unsigned int got;
	size_t kept = 0;
	struct azl_sha256 *h = azl_sha256_new();
	errcode_t e = ext2fs_file_open(fs, ino, 0, &f);
	while (e == 0 && (e = ext2fs_file_read(f, buf, sizeof(buf), &got)) == 0 && got) {
		azl_sha256_update(h, buf, got);
		if (keep && kept < keep_max) {
			size_t k = got < keep_max - kept ? got : keep_max - kept;
			memcpy(keep + kept, buf, k);
			kept += k;
		}
	}
	if (e == 0 || f)
		ext2fs_file_close(f);
	azl_sha256_final(h, sha);
	return e;
}

static char *ext_link(ext2_filsys fs, ext2_ino_t ino, struct ext2_inode *in)
{
	char target[4097] = "", sha[65];
	size_t size = EXT2_I_SIZE(in) < 4096 ? EXT2_I_SIZE(in) : 4096;
	if (ext2fs_is_fast_symlink(in))
		memcpy(target, in->i_block, size < sizeof(in->i_block) ? size : sizeof(in->i_block));
	else if (in->i_flags & EXT4_INLINE_DATA_FL)
		ext2fs_inline_data_get(fs, ino, in, target, &size);
	else
		ext_read(fs, ino, sha, target, 4096);
	target[size] = '\0';
	return azl_xasprintf("-> %s", target);
}

static unsigned ext_type(unsigned mode)
{
	switch (mode & 0170000) {
	case 0040000: return AE_IFDIR;
	case 0120000: return AE_IFLNK;
	case 0020000: return AE_IFCHR;
	case 0060000: return AE_IFBLK;
	case 0010000: return AE_IFIFO;
	case 0140000: return AE_IFSOCK;
	default: return AE_IFREG;
	}
}

static int ext_walk_dir(ext2_filsys fs, ext2_ino_t dir, const char *prefix,
			struct tindex *ix, const char *label, struct azl_err *err);

static int ext_entry(ext2_filsys fs, ext2_ino_t ino, char *path, struct tindex *ix,
		     const char *label, struct azl_err *err)
{
	struct ext2_inode in;
	errcode_t e = ext2fs_read_inode(fs, ino, &in);
	if (e) {
		azl_errf(err, EIO, "%s: %s: %s", label, path, error_message(e));
		free(path);
		return err->code;
	}
	ix->e = azl_xrealloc(ix->e, (ix->n + 1) * sizeof(*ix->e));
	struct tentry *t = &ix->e[ix->n];
	memset(t, 0, sizeof(*t));
	t->path = path;
	t->type = ext_type(in.i_mode);
	t->mode = in.i_mode & 07777;
	t->uid = inode_uid(in);
	t->gid = inode_gid(in);
	t->uname = azl_xstrdup("");
	t->gname = azl_xstrdup("");
	t->mtime = (int32_t)in.i_mtime;
	t->size = t->type == AE_IFREG ? (long long)EXT2_I_SIZE(&in) : 0;
	t->link = t->type == AE_IFLNK ? ext_link(fs, ino, &in) : azl_xstrdup("");
	t->xattrs = ext_xattrs(fs, ino);
	t->ord = ix->n++;
	if (t->type == AE_IFREG && (e = ext_read(fs, ino, t->sha, NULL, 0)))
		return azl_errf(err, EIO, "%s: %s: %s", label, path, error_message(e));
	if (t->type != AE_IFREG)
		azl_sha256_hex("", 0, t->sha);
	if (t->type == AE_IFDIR)
		return ext_walk_dir(fs, ino, path, ix, label, err);
	return 0;
}

static int ext_walk_dir(ext2_filsys fs, ext2_ino_t dir, const char *prefix,
			struct tindex *ix, const char *label, struct azl_err *err)
{
	struct ext_walk w = { 0 };
	errcode_t e;
	int r = dir_enter(ix, dir, prefix, label, err);

	if (r < 0)
		return r;
	e = ext2fs_dir_iterate2(fs, dir, 0, NULL, collect_dirent, &w);
	r = e ? azl_errf(err, EIO, "%s: %s: %s", label, *prefix ? prefix : "/",
			 error_message(e)) : 0;

	sort_n(w.d, w.n, sizeof(*w.d), cmp_dent); /* sorted: by name */
	for (size_t i = 0; r == 0 && i < w.n; i++) {
		if (!*prefix && !strcmp(w.d[i].name, "lost+found"))
			continue;
		char *p = *prefix ? azl_xasprintf("%s/%s", prefix, w.d[i].name)
				  : azl_xstrdup(w.d[i].name);
		r = ext_entry(fs, w.d[i].ino, p, ix, label, err);
	}
	for (size_t i = 0; i < w.n; i++)
		free(w.d[i].name);
	free(w.d);
	return r;
}

static int ext_index(const char *path, uint64_t off, struct tindex *ix,
		     const char *label, struct azl_err *err)
{
	char opts[64];
	ext2_filsys fs = NULL;
	snprintf(opts, sizeof(opts), "offset=%" PRIu64, off);
	errcode_t e = ext2fs_open2(path, opts, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs);
	if (e)
		return azl_errf(err, EIO, "%s: ext4 at offset %" PRIu64 ": %s", label, off,
				error_message(e));
	int r = ext_walk_dir(fs, EXT2_ROOT_INO, "", ix, label, err);
	ext2fs_close_free(&fs);
	return r;
}

/* vfat entries (FAT16/FAT32, long names), as tar-like index entries: mode
 * holds the FAT attribute byte, mtime the write time read as UTC. */
struct fatfs {
	int fd;
	uint64_t off, root_off, data_off, fat_off;
	uint32_t bps, spc, rootents, rootclus, nclusters;
	int type;
};

static uint32_t le16(const unsigned char *p) { return p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const unsigned char *p) { return le16(p) | le16(p + 2) << 16; }

/* 1: no FAT16/FAT32 boot sector at off. */
static int fat_open(int fd, uint64_t off, struct fatfs *f)
{
	unsigned char b[512];
	if (azl_pread_all(fd, b, sizeof(b), off) < 0 || b[510] != 0x55 || b[511] != 0xaa)
		return 1;
	memset(f, 0, sizeof(*f));
	f->fd = fd;
	f->off = off;
	f->bps = le16(b + 11);
	f->spc = b[13];
	uint32_t rsvd = le16(b + 14), nfats = b[16];
	f->rootents = le16(b + 17);
	uint32_t total = le16(b + 19) ? le16(b + 19) : le32(b + 32);
	uint32_t fatsz = le16(b + 22) ? le16(b + 22) : le32(b + 36);
	if ((f->bps != 512 && f->bps != 1024 && f->bps != 2048 && f->bps != 4096) ||
	    !f->spc || (f->spc & (f->spc - 1)) || !rsvd || !nfats || !fatsz)
		return 1;
	uint32_t rootsecs = (f->rootents * 32 + f->bps - 1) / f->bps;
	uint64_t meta = rsvd + (uint64_t)nfats * fatsz + rootsecs;
	if (meta >= total)
		return 1;
	f->nclusters = (uint32_t)((total - meta) / f->spc);
	f->type = f->nclusters < 4085 ? 12 : f->nclusters < 65525 ? 16 : 32;
	if (f->type == 12)
		return 1; /* the ESP writer never makes FAT12: digest only */
	f->fat_off = off + (uint64_t)rsvd * f->bps;
	f->root_off = off + (rsvd + (uint64_t)nfats * fatsz) * f->bps;
	f->data_off = f->root_off + (uint64_t)rootsecs * f->bps;
	f->rootclus = f->type == 32 ? le32(b + 44) : 0;
	return 0;
}

static bool is_fat_at(int fd, uint64_t off)
{
	struct fatfs f;
	return fat_open(fd, off, &f) == 0;
}

/* The next cluster of a chain; 0 at its end or on a bad entry. */
static uint32_t fat_next(const struct fatfs *f, uint32_t cl)
{
	unsigned char e[4] = { 0 };
	uint64_t at = f->fat_off + (uint64_t)cl * (f->type == 16 ? 2 : 4);
	if (azl_pread_all(f->fd, e, f->type == 16 ? 2 : 4, at) < 0)
		return 0;
	uint32_t n = f->type == 16 ? le16(e) : le32(e) & 0x0fffffffu;
	return n >= 2 && n < f->nclusters + 2 ? n : 0;
}

static uint64_t fat_clus_off(const struct fatfs *f, uint32_t cl)
{
	return f->data_off + (uint64_t)(cl - 2) * f->spc * f->bps;
}

/* Stream a chain (up to len bytes) into hash h or buffer b. */
static int fat_read_chain(const struct fatfs *f, uint32_t cl, uint64_t len,
			  struct azl_sha256 *h, struct azl_buf *b)
{
	size_t csz = (size_t)f->spc * f->bps;
	char *buf = azl_xmalloc(csz);
	int r = 0;
	for (uint32_t hops = 0; cl >= 2 && len && hops <= f->nclusters; hops++) {
		size_t n = len < csz ? (size_t)len : csz;
		if ((r = azl_pread_all(f->fd, buf, n, fat_clus_off(f, cl))) < 0)
			break;
		if (h)
			azl_sha256_update(h, buf, n);
		else
			azl_buf_add(b, buf, n);
		len -= n;
		cl = fat_next(f, cl);
	}
	free(buf);
	return r == 0 && len && h ? -EIO : r; /* a file shorter than its size */
}

struct fat_ent { char *name; unsigned attr; uint32_t cl, size; long long mtime; };

static int cmp_fat_ent(const void *x, const void *y)
{
	return strcmp(((const struct fat_ent *)x)->name, ((const struct fat_ent *)y)->name);
}

static char *fat_short_name(const unsigned char *e)
{
	char base[9], ext[4];
	int nb = 8, ne = 3;
	memcpy(base, e, 8);
	memcpy(ext, e + 8, 3);
	while (nb && base[nb - 1] == ' ')
		nb--;
	while (ne && ext[ne - 1] == ' ')
		ne--;
	for (int i = 0; i < nb; i++)
		base[i] = (e[12] & 0x08) ? (char)tolower((unsigned char)base[i]) : base[i];
	for (int i = 0; i < ne; i++)
		ext[i] = (e[12] & 0x10) ? (char)tolower((unsigned char)ext[i]) : ext[i];
	return ne ? azl_xasprintf("%.*s.%.*s", nb, base, ne, ext) : azl_xasprintf("%.*s", nb, base);
}

static long long fat_time(const unsigned char *e)
{
	unsigned t = le16(e + 22), d = le16(e + 24);
	struct tm tm = { .tm_year = 80 + (int)(d >> 9), .tm_mon = (int)((d >> 5) & 15) - 1,
			 .tm_mday = (int)(d & 31), .tm_hour = (int)(t >> 11),
			 .tm_min = (int)((t >> 5) & 63), .tm_sec = (int)(t & 31) * 2 };
	return (long long)timegm(&tm);
}

/* Long-name pieces: 13 UCS-2 units per entry, ASCII kept. */
static void fat_lfn_piece(const unsigned char *e, char lfn[256])
{
	static const int at[13] = { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30 };
	int seq = (e[0] & 0x1f) - 1;
	if (seq < 0 || seq > 18)
		return;
	if (e[0] & 0x40)
		memset(lfn, 0, 256);
	for (int i = 0; i < 13; i++) {
		unsigned u = le16(e + at[i]);
		if (u == 0 || u == 0xffff)
			break;
		lfn[seq * 13 + i] = u < 0x80 ? (char)u : '?';
	}
}

static void fat_parse_dir(const unsigned char *d, size_t len, struct fat_ent **out, size_t *n)
{
	char lfn[256] = "";
	for (size_t i = 0; i + 32 <= len && d[i]; i += 32) {
		const unsigned char *e = d + i;
		if (e[0] == 0xe5) {
			lfn[0] = '\0';
		} else if (e[11] == 0x0f) {
			fat_lfn_piece(e, lfn);
		} else if (!(e[11] & 0x08) && memcmp(e, ".          ", 11) && memcmp(e, "..         ", 11)) {
			*out = azl_xrealloc(*out, (*n + 1) * sizeof(**out));
			(*out)[(*n)++] = (struct fat_ent){
				lfn[0] ? azl_xstrdup(lfn) : fat_short_name(e), e[11],
				le16(e + 20) << 16 | le16(e + 26), le32(e + 28), fat_time(e),
			};
			lfn[0] = '\0';
		} else {
			lfn[0] = '\0';
		}
	}
}

static int fat_walk_dir(const struct fatfs *f, uint32_t cl, const char *prefix,
			struct tindex *ix, const char *label, struct azl_err *err);

static int fat_entry(const struct fatfs *f, const struct fat_ent *fe, char *path,
		     struct tindex *ix, const char *label, struct azl_err *err)
{
	ix->e = azl_xrealloc(ix->e, (ix->n + 1) * sizeof(*ix->e));
	struct tentry *t = &ix->e[ix->n];
	bool dir = fe->attr & 0x10;
	*t = (struct tentry){
		.path = path, .type = dir ? AE_IFDIR : AE_IFREG, .mode = fe->attr,
		.mtime = fe->mtime, .size = dir ? 0 : fe->size, .uname = azl_xstrdup(""),
		.gname = azl_xstrdup(""), .link = azl_xstrdup(""), .xattrs = azl_xstrdup(""),
		.ord = ix->n,
	};
	ix->n++;
	if (dir)
		return fat_walk_dir(f, fe->cl, path, ix, label, err);
	struct azl_sha256 *h = azl_sha256_new();
	int r = fat_read_chain(f, fe->cl, fe->size, h, NULL);
	azl_sha256_final(h, t->sha);
	return r < 0 ? azl_errf(err, r, "%s: %s: cannot read its clusters", label, path) : 0;
}

static int fat_walk_dir(const struct fatfs *f, uint32_t cl, const char *prefix,
			struct tindex *ix, const char *label, struct azl_err *err)
{
	struct azl_buf d = AZL_BUF_INIT;
	struct fat_ent *ents = NULL;
	size_t n = 0;
	int r = dir_enter(ix, cl ? cl : f->rootclus, prefix, label, err);

	if (r < 0)
		return r;
	if (cl == 0 && f->type == 16) {
		azl_buf_grow(&d, (size_t)f->rootents * 32);
		r = azl_pread_all(f->fd, d.data, (size_t)f->rootents * 32, f->root_off);
		d.len = r == 0 ? (size_t)f->rootents * 32 : 0;
	} else {
		r = fat_read_chain(f, cl ? cl : f->rootclus, UINT64_MAX, NULL, &d);
	}
	if (r < 0) {
		r = azl_errf(err, r, "%s: %s: cannot read the directory", label, *prefix ? prefix : "/");
		goto out;
	}
	fat_parse_dir((const unsigned char *)d.data, d.len, &ents, &n);
	sort_n(ents, n, sizeof(*ents), cmp_fat_ent); /* sorted: by name */
	for (size_t i = 0; r == 0 && i < n; i++) {
		char *p = *prefix ? azl_xasprintf("%s/%s", prefix, ents[i].name)
				  : azl_xstrdup(ents[i].name);
		r = fat_entry(f, &ents[i], p, ix, label, err);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(ents[i].name);
	free(ents);
	azl_buf_release(&d);
	return r;
}

/* ext4 superblock fields that commonly carry host state (times, UUIDs). */
static void compare_ext_super(struct coll *c, const char *label, int fda,
			      uint64_t oa, int fdb, uint64_t ob)
{
	static const struct { const char *name; unsigned at, len; } f[] = {
		{ "inodes_count", 0, 4 }, { "blocks_count", 4, 4 },
		{ "free_blocks_count", 12, 4 }, { "free_inodes_count", 16, 4 },
		{ "mtime", 44, 4 }, { "wtime", 48, 4 }, { "lastcheck", 64, 4 },
		{ "uuid", 104, 16 }, { "volume_name", 120, 16 },
		{ "hash_seed", 236, 16 }, { "mkfs_time", 264, 4 },
	};
	unsigned char a[1024], b[1024];
	char *l = azl_xasprintf("%s:superblock", label);

	if (azl_pread_all(fda, a, sizeof(a), oa + 1024) == 0 && azl_pread_all(fdb, b, sizeof(b), ob + 1024) == 0) {
		for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
			char ha[33], hb[33];
			if (!memcmp(a + f[i].at, b + f[i].at, f[i].len))
				continue;
			if (f[i].len == 4) {
				addf_vals(c, l, f[i].name, le32(a + f[i].at), le32(b + f[i].at), false);
				continue;
			}
			azl_hex(a + f[i].at, f[i].len, ha);
			azl_hex(b + f[i].at, f[i].len, hb);
			add(c, l, f[i].name, ha, hb);
		}
	}
	free(l);
}

/* One byte range of each disk: equal digests, else ext4 entries or digest. */
static int compare_fs(struct coll *c, const char *label, const char *fa,
		      const char *fb, struct disk *a, struct disk *b,
		      uint64_t oa, uint64_t la, uint64_t ob, uint64_t lb,
		      struct azl_err *err)
{
	char ha[65], hb[65];
	struct tindex ia = { 0 }, ib = { 0 };
	struct fatfs fa_, fb_;
	int r = azl_sha256_fd_range(a->fd, oa, la, ha);
	if (r == 0)
		r = azl_sha256_fd_range(b->fd, ob, lb, hb);
	if (r < 0)
		return azl_errf(err, r, "%s: cannot read", label);
	if (!strcmp(ha, hb))
		return 0;
	if (is_ext4_at(a->fd, oa) && is_ext4_at(b->fd, ob)) {
		size_t before = c->total;
		compare_ext_super(c, label, a->fd, oa, b->fd, ob);
		if ((r = ext_index(fa, oa, &ia, label, err)) == 0 &&
		    (r = ext_index(fb, ob, &ib, label, err)) == 0)
			compare_indexes(c, label, &ia, &ib);
		if (r == 0 && c->total == before) /* metadata only (timestamps, UUIDs) */
			add(c, label, "filesystem metadata", ha, hb);
	} else if (fat_open(a->fd, oa, &fa_) == 0 && fat_open(b->fd, ob, &fb_) == 0) {
		size_t before = c->total;
		if ((r = fat_walk_dir(&fa_, 0, "", &ia, label, err)) == 0 &&
		    (r = fat_walk_dir(&fb_, 0, "", &ib, label, err)) == 0)
			compare_indexes(c, label, &ia, &ib);
		if (r == 0 && c->total == before)
			add(c, label, "filesystem metadata", ha, hb);
	} else
		add(c, label, "content digest", ha, hb);
	tindex_release(&ia);
	tindex_release(&ib);
	return r;
}

static void compare_footer(struct coll *c, const char *label, const struct disk *a,
			   const struct disk *b)
{
	struct azl_vhd_footer va, vb;
	struct azl_err e = { 0 };
	char *l = azl_xasprintf("%s:vhd-footer", label);
	size_t before = c->total;
	if (a->vhd != b->vhd)
		add(c, l, "present", a->vhd ? "yes" : "no", b->vhd ? "yes" : "no");
	else if (a->vhd && memcmp(a->footer, b->footer, AZL_VHD_FOOTER_SIZE)) {
		if (azl_vhd_footer_parse(a->footer, &va, &e) == 0 &&
		    azl_vhd_footer_parse(b->footer, &vb, &e) == 0) {
			char ua[33], ub[33];
			if (va.current_size != vb.current_size)
				addf_vals(c, l, "current_size", (long long)va.current_size,
					  (long long)vb.current_size, false);
			if (va.timestamp != vb.timestamp)
				addf_vals(c, l, "timestamp", va.timestamp, vb.timestamp, false);
			azl_hex(va.uuid, 16, ua);
			azl_hex(vb.uuid, 16, ub);
			if (strcmp(ua, ub))
				add(c, l, "uuid", ua, ub);
		}
		if (c->total == before) /* a field parse could not name */
			add(c, l, "bytes", "", "differ");
	}
	free(l);
}

static void compare_gpt_ent(struct coll *c, const char *l, const struct gpt_ent *a,
			    const struct gpt_ent *b)
{
	if (strcmp(a->type, b->type))
		add(c, l, "type", a->type, b->type);
	if (strcmp(a->uuid, b->uuid))
		add(c, l, "uuid", a->uuid, b->uuid);
	if (strcmp(a->name, b->name))
		add(c, l, "name", a->name, b->name);
	if (a->first != b->first)
		addf_vals(c, l, "first_lba", (long long)a->first, (long long)b->first, false);
	if (a->last != b->last)
		addf_vals(c, l, "last_lba", (long long)a->last, (long long)b->last, false);
	if (a->attrs != b->attrs)
		addf_vals(c, l, "attributes", (long long)a->attrs, (long long)b->attrs, false);
}

/* Whether name is set and held by exactly one of d's partitions. */
static bool name_unique(const struct disk *d, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; *name && i < d->nparts; i++)
		n += !strcmp(d->parts[i].name, name);
	return n == 1;
}

/* For each of a's partitions, the index of its counterpart in b, or -1:
 * the same name when each side has that name once (so an added, removed
 * or reordered partition does not shift every comparison after it), then
 * the same entry number, then the rest in order.  *b_used marks b's. */
static void pair_parts(const struct disk *a, const struct disk *b,
		       long *b_of_a, bool *b_used)
{
	for (size_t i = 0; i < a->nparts; i++) {
		b_of_a[i] = -1;
		if (!name_unique(a, a->parts[i].name) || !name_unique(b, a->parts[i].name))
			continue;
		for (size_t j = 0; j < b->nparts; j++)
			if (!strcmp(b->parts[j].name, a->parts[i].name)) {
				b_of_a[i] = (long)j;
				b_used[j] = true;
			}
	}
	for (size_t i = 0; i < a->nparts; i++)
		for (size_t j = 0; b_of_a[i] < 0 && j < b->nparts; j++)
			if (!b_used[j] && b->parts[j].slot == a->parts[i].slot) {
				b_of_a[i] = (long)j;
				b_used[j] = true;
			}
	size_t j = 0;
	for (size_t i = 0; i < a->nparts; i++) {
		if (b_of_a[i] >= 0)
			continue;
		while (j < b->nparts && b_used[j])
			j++;
		if (j == b->nparts)
			break;
		b_of_a[i] = (long)j;
		b_used[j++] = true;
	}
}

/* "usr-a (entry 3, type 4f68bce3-...)" for a partition on one side only. */
static char *part_summary(const struct gpt_ent *p)
{
	return azl_xasprintf("%s%s(entry %u, type %s)", p->name, *p->name ? " " : "",
			     p->slot, p->type);
}

static int compare_disks(struct coll *c, const char *label, const char *fa,
			 const char *fb, struct disk *a, struct disk *b,
			 struct azl_err *err)
{
	char *gl = azl_xasprintf("%s:gpt", label);
	long *b_of_a = NULL;
	bool *b_used = NULL;
	int r = 0;

	compare_footer(c, label, a, b);
	if (!a->nparts && !b->nparts) { /* a bare filesystem image */
		r = compare_fs(c, label, fa, fb, a, b, 0, a->size, 0, b->size, err);
		goto out;
	}
	if (strcmp(a->disk_guid, b->disk_guid))
		add(c, gl, "disk guid", a->disk_guid, b->disk_guid);
	if (a->nparts != b->nparts)
		addf_vals(c, gl, "partitions", (long long)a->nparts, (long long)b->nparts, false);
	b_of_a = azl_xcalloc(a->nparts + 1, sizeof(*b_of_a));
	b_used = azl_xcalloc(b->nparts + 1, sizeof(*b_used));
	pair_parts(a, b, b_of_a, b_used);
	/* Labels count the first image's partitions; one only in the second
	 * is labelled by its place there. */
	for (size_t i = 0; i < a->nparts; i++) {
		if (b_of_a[i] >= 0)
			continue;
		char *pl = azl_xasprintf("%s:partitions[%zu]", label, i);
		char *sum = part_summary(&a->parts[i]);
		add(c, pl, "removed", sum, "");
		free(sum);
		free(pl);
	}
	for (size_t j = 0; j < b->nparts; j++) {
		if (b_used[j])
			continue;
		char *pl = azl_xasprintf("%s:partitions[%zu]", label, j);
		char *sum = part_summary(&b->parts[j]);
		add(c, pl, "added", "", sum);
		free(sum);
		free(pl);
	}
	for (size_t i = 0; r == 0 && i < a->nparts; i++) {
		if (b_of_a[i] < 0)
			continue;
		const struct gpt_ent *pa = &a->parts[i], *pb = &b->parts[b_of_a[i]];
		char *pl = azl_xasprintf("%s:partitions[%zu]", label, i);
		compare_gpt_ent(c, pl, pa, pb);
		if (pa->last >= pa->first && pb->last >= pb->first &&
		    (pa->last + 1) * AZL_SECTOR <= a->size && (pb->last + 1) * AZL_SECTOR <= b->size)
			r = compare_fs(c, pl, fa, fb, a, b, pa->first * AZL_SECTOR,
				       (pa->last - pa->first + 1) * AZL_SECTOR,
				       pb->first * AZL_SECTOR,
				       (pb->last - pb->first + 1) * AZL_SECTOR, err);
		free(pl);
	}
out:
	free(b_of_a);
	free(b_used);
	free(gl);
	return r;
}

/* 1 when either side is no disk image. */
static int try_disk(struct coll *c, const char *label, const char *fa,
		    const char *fb, struct azl_err *err)
{
	struct disk a, b;
	int r = disk_open(fa, &a, err);
	b.fd = -1;
	b.parts = NULL;
	if (r == 0)
		r = disk_open(fb, &b, err);
	if (r == 0)
		r = compare_disks(c, label, fa, fb, &a, &b, err);
	disk_close(&a);
	disk_close(&b);
	return r;
}

/* --- files and directories ------------------------------------------------- */

static int compare_paths(struct coll *c, const char *label, const char *fa,
			 const char *fb, struct azl_err *err);

static bool looks_json(const char *path)
{
	char b[16];
	FILE *f = fopen(path, "rb");
	size_t n = f ? fread(b, 1, sizeof(b), f) : 0;
	if (f)
		fclose(f);
	for (size_t i = 0; i < n; i++)
		if (b[i] != ' ' && b[i] != '\n' && b[i] != '\t' && b[i] != '\r')
			return b[i] == '{' || b[i] == '[';
	return false;
}

static bool try_json(struct coll *c, const char *label, const char *fa, const char *fb)
{
	json_t *ja = NULL, *jb = NULL;
	bool ok = looks_json(fa) && looks_json(fb) &&
		  (ja = json_load_file(fa, 0, NULL)) && (jb = json_load_file(fb, 0, NULL));
	if (ok)
		compare_json(c, label, ja, jb);
	json_decref(ja);
	json_decref(jb);
	return ok;
}

/* Archives (OCI or tar): 1 when either side is no archive. */
static int try_archive(struct coll *c, const char *label, const char *fa,
		       const char *fb, struct azl_err *err)
{
	struct tindex ia = { 0 }, ib = { 0 };
	int r = index_file(fa, true, &ia, err);

	if (r == 0)
		r = index_file(fb, true, &ib, err);
	if (r != 0)
		goto out;
	if (strcmp(ia.filter, ib.filter))
		add(c, label, "compression", ia.filter, ib.filter);
	if (is_oci(&ia) && is_oci(&ib))
		r = compare_oci(c, label, fa, fb, &ia, &ib, err);
	else
		compare_indexes(c, label, &ia, &ib);
out:
	tindex_release(&ia);
	tindex_release(&ib);
	return r;
}

/* Two regular files.  Disk images (VHD, raw GPT) are compared by digest
 * until a disk descender is added here, before the opaque fallback. */
static int compare_files(struct coll *c, const char *label, const char *fa,
			 const char *fb, struct azl_err *err)
{
	char ha[65], hb[65];
	uint64_t sa, sb;
	size_t before = c->total;
	int r;

	if ((r = azl_sha256_file(fa, ha, &sa, err)) < 0 ||
	    (r = azl_sha256_file(fb, hb, &sb, err)) < 0)
		return r;
	if (!strcmp(ha, hb))
		return 0;
	if (!try_json(c, label, fa, fb) && !try_sums(c, label, fa, fb)) {
		if ((r = try_disk(c, label, fa, fb, err)) == 1)
			r = try_archive(c, label, fa, fb, err);
		if (r < 0)
			return r;
	}
	if (sa != sb)
		addf_vals(c, label, "size", (long long)sa, (long long)sb, false);
	/* Bytes differ but nothing inside did (padding, header encoding): say so. */
	if (c->total == before || (sa != sb && c->total == before + 1))
		add(c, label, "content digest", ha, hb);
	return 0;
}

static int list_dir(const char *path, char ***names, size_t *n, struct azl_err *err)
{
	DIR *d = opendir(path);
	struct dirent *de;

	*names = NULL;
	*n = 0;
	if (!d)
		return azl_errf(err, errno, "%s: %s", path, strerror(errno));
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		*names = azl_xrealloc(*names, (*n + 1) * sizeof(**names));
		(*names)[(*n)++] = azl_xstrdup(de->d_name);
	}
	closedir(d);
	sort_n(*names, *n, sizeof(**names), cmp_str); /* sorted: stable output */
	return 0;
}

static int compare_dirs(struct coll *c, const char *label, const char *da,
			const char *db, struct azl_err *err)
{
	char **na = NULL, **nb = NULL;
	size_t n_a = 0, n_b = 0, i = 0, j = 0;
	int r;

	if ((r = list_dir(da, &na, &n_a, err)) < 0 || (r = list_dir(db, &nb, &n_b, err)) < 0)
		goto out;
	while (r == 0 && (i < n_a || j < n_b)) {
		int d = i >= n_a ? 1 : j >= n_b ? -1 : strcmp(na[i], nb[j]);
		const char *name = d < 0 ? na[i] : nb[j];
		char *l = *label ? azl_xasprintf("%s/%s", label, name) : azl_xstrdup(name);
		if (d < 0)
			add(c, l, "removed", "present", "");
		else if (d > 0)
			add(c, l, "added", "", "present");
		else {
			char *pa = azl_path_join(da, name), *pb = azl_path_join(db, name);
			r = compare_paths(c, l, pa, pb, err);
			free(pa);
			free(pb);
		}
		free(l);
		i += d <= 0;
		j += d >= 0;
	}
out:
	azl_strv_free(na, n_a);
	azl_strv_free(nb, n_b);
	return r;
}

static int compare_paths(struct coll *c, const char *label, const char *fa,
			 const char *fb, struct azl_err *err)
{
	struct stat sa, sb;

	if (stat(fa, &sa) < 0)
		return azl_err_input(err, "%s: %s", fa, strerror(errno));
	if (stat(fb, &sb) < 0)
		return azl_err_input(err, "%s: %s", fb, strerror(errno));
	if (S_ISDIR(sa.st_mode) && S_ISDIR(sb.st_mode))
		return compare_dirs(c, label, fa, fb, err);
	if (S_ISDIR(sa.st_mode) != S_ISDIR(sb.st_mode)) {
		add(c, label, "kind", S_ISDIR(sa.st_mode) ? "directory" : "file",
		    S_ISDIR(sb.st_mode) ? "directory" : "file");
		return 0;
	}
	return compare_files(c, label, fa, fb, err);
}

/* --- public ---------------------------------------------------------------- */

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s && s[1] ? s + 1 : p;
}

int azl_diff_paths(const char *a, const char *b, const struct azl_diff_opts *o,
		   struct azl_diff_result *res, struct azl_err *err)
{
	struct coll c = { .max = o && o->max ? o->max : 100 };
	struct stat st;
	int r;

	memset(res, 0, sizeof(*res));
	/* Two directories: entries are named relative to them. */
	bool dirs = stat(a, &st) == 0 && S_ISDIR(st.st_mode);
	r = compare_paths(&c, dirs ? "" : base_name(a), a, b, err);
	res->total = c.total;
	res->items = azl_xcalloc(c.max + 1, sizeof(*res->items));
	for (int d = MAX_DEPTH - 1; d >= 0; d--) {
		for (size_t i = 0; i < c.n[d]; i++) {
			if (res->nitems < c.max)
				res->items[res->nitems++] = c.lv[d][i];
			else {
				struct azl_diff_item *it = &c.lv[d][i];
				free(it->path); free(it->what); free(it->a); free(it->b);
			}
		}
		free(c.lv[d]);
	}
	return r;
}

void azl_diff_result_release(struct azl_diff_result *res)
{
	for (size_t i = 0; i < res->nitems; i++) {
		struct azl_diff_item *it = &res->items[i];
		free(it->path); free(it->what); free(it->a); free(it->b);
	}
	free(res->items);
	memset(res, 0, sizeof(*res));
}

char *azl_diff_format_text(const struct azl_diff_result *res)
{
	struct azl_buf b = AZL_BUF_INIT;

	for (size_t i = 0; i < res->nitems; i++) {
		const struct azl_diff_item *it = &res->items[i];
		if (!strcmp(it->what, "added"))
			azl_buf_addf(&b, "%s: added (%s)\n", it->path, it->b);
		else if (!strcmp(it->what, "removed"))
			azl_buf_addf(&b, "%s: removed (%s)\n", it->path, it->a);
		else
			azl_buf_addf(&b, "%s: %s: %s -> %s\n", it->path, it->what, it->a, it->b);
	}
	if (res->total == 0)
		azl_buf_adds(&b, "identical\n");
	else
		azl_buf_addf(&b, "%zu difference%s%s\n", res->total, res->total == 1 ? "" : "s",
			     res->nitems < res->total ? " (more than --max, not all shown)" : "");
	return azl_buf_detach(&b);
}

char *azl_diff_format_json(const struct azl_diff_result *res)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < res->nitems; i++) {
		const struct azl_diff_item *it = &res->items[i];
		json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:i}", "path", it->path,
						     "what", it->what, "a", it->a, "b", it->b,
						     "depth", it->depth));
	}
	json_t *top = json_pack("{s:b,s:I,s:I,s:o}", "identical", res->total == 0,
				"total", (json_int_t)res->total, "shown",
				(json_int_t)res->nitems, "differences", arr);
	char *s = json_dumps(top, JSON_SORT_KEYS | JSON_INDENT(2));
	json_decref(top);
	char *out = azl_xasprintf("%s\n", s);
	free(s);
	return out;
}
