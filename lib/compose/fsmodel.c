/* The filesystem model: a chained hash table keyed by path (stable node
 * pointers: each node is its own allocation) plus a sorted array rebuilt
 * lazily when azl_fs_sorted is asked after a change. */
#include "compose/fsmodel.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"

#define AZL_FS_MAX_SYMLINKS 40

struct ent {
	struct azl_node node; /* first: a node pointer is an ent pointer */
	struct ent *next;
	uint64_t hash;
};

struct azl_fs {
	struct ent **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
	struct azl_node **sorted; /* count entries when !dirty */
	int dirty;
};

static uint64_t path_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* '/' sorts before every other byte so a directory's contents come right
 * after it, before siblings that merely share its name as a prefix. */
static int path_byte(unsigned char c)
{
	if (c == '\0')
		return 0;
	if (c == '/')
		return 1;
	return c + 1;
}

int azl_path_cmp(const char *a, const char *b)
{
	const unsigned char *p = (const unsigned char *)a;
	const unsigned char *q = (const unsigned char *)b;
	while (*p && *p == *q) {
		p++;
		q++;
	}
	return path_byte(*p) - path_byte(*q);
}

/* Absolute, no trailing slash (except "/"), no empty, "." or ".." parts. */
static int path_is_normal(const char *p)
{
	if (p[0] != '/')
		return 0;
	if (!p[1])
		return 1;
	for (const char *s = p; *s; ) {
		const char *c = s + 1, *e = strchr(c, '/');
		size_t n = e ? (size_t)(e - c) : strlen(c);
		if (n == 0 || (n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		s = c + n;
	}
	return 1;
}

static struct ent *lookup(const struct azl_fs *fs, const char *path,
			  uint64_t h)
{
	struct ent *e = fs->buckets[h & (fs->nbuckets - 1)];
	for (; e; e = e->next)
		if (e->hash == h && !strcmp(e->node.path, path))
			return e;
	return NULL;
}

static void grow(struct azl_fs *fs)
{
	size_t n = fs->nbuckets * 2;
	struct ent **b = azl_xcalloc(n, sizeof(*b));
	for (size_t i = 0; i < fs->nbuckets; i++) {
		struct ent *e = fs->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(fs->buckets);
	fs->buckets = b;
	fs->nbuckets = n;
}

/* Moves *n into a new entry and zeroes *n. */
static void insert(struct azl_fs *fs, struct azl_node *n)
{
	struct ent *e = azl_xcalloc(1, sizeof(*e));
	e->node = *n;
	memset(n, 0, sizeof(*n));
	e->hash = path_hash(e->node.path);
	if (fs->count >= fs->nbuckets)
		grow(fs);
	size_t i = e->hash & (fs->nbuckets - 1);
	e->next = fs->buckets[i];
	fs->buckets[i] = e;
	fs->count++;
	fs->dirty = 1;
}

struct azl_fs *azl_fs_new(void)
{
	struct azl_fs *fs = azl_xcalloc(1, sizeof(*fs));
	struct azl_node root = {0};

	fs->nbuckets = 64;
	fs->buckets = azl_xcalloc(fs->nbuckets, sizeof(*fs->buckets));
	root.path = azl_xstrdup("/");
	root.type = AZL_FT_DIR;
	root.mode = 0755;
	insert(fs, &root);
	return fs;
}

void azl_node_release(struct azl_node *n)
{
	if (!n)
		return;
	free(n->path);
	free(n->user);
	free(n->group);
	free(n->link_target);
	for (size_t i = 0; i < n->nxattrs; i++) {
		free(n->xattrs[i].name);
		free(n->xattrs[i].value);
	}
	free(n->xattrs);
	free(n->data_path);
	free(n->data);
	free(n->owner_pkg);
	memset(n, 0, sizeof(*n));
}

void azl_fs_free(struct azl_fs *fs)
{
	if (!fs)
		return;
	for (size_t i = 0; i < fs->nbuckets; i++) {
		struct ent *e = fs->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			azl_node_release(&e->node);
			free(e);
		}
	}
	free(fs->buckets);
	free(fs->sorted);
	free(fs);
}

struct azl_node *azl_fs_get(const struct azl_fs *fs, const char *path)
{
	struct ent *e = lookup(fs, path, path_hash(path));
	return e ? &e->node : NULL;
}

/* The parent of a normalised path must exist and be a directory. */
static int check_parent(const struct azl_fs *fs, const char *path,
			struct azl_err *err)
{
	char *dir = azl_dirname(path);
	struct azl_node *p = azl_fs_get(fs, dir);
	int r = 0;

	if (!p)
		r = azl_errf(err, -ENOENT, "%s: parent directory %s is missing",
			     path, dir);
	else if (p->type != AZL_FT_DIR)
		r = azl_errf(err, -ENOENT, "%s: parent %s is not a directory",
			     path, dir);
	free(dir);
	return r;
}

static int check_new(const struct azl_fs *fs, const struct azl_node *n,
		     struct azl_err *err)
{
	if (!n->path || !path_is_normal(n->path))
		return azl_errf(err, -EINVAL, "%s: not a normalised absolute path",
				n->path ? n->path : "(null)");
	if (!strcmp(n->path, "/") && n->type != AZL_FT_DIR)
		return azl_errf(err, -EINVAL, "/: must be a directory");
	if (!strcmp(n->path, "/"))
		return 0;
	return check_parent(fs, n->path, err);
}

int azl_fs_add(struct azl_fs *fs, struct azl_node *n, struct azl_err *err)
{
	int r = check_new(fs, n, err);
	if (r < 0)
		return r;
	if (azl_fs_get(fs, n->path))
		return azl_errf(err, -EEXIST, "%s: already in the image", n->path);
	insert(fs, n);
	return 0;
}

static void unlink_ent(struct azl_fs *fs, struct ent *victim)
{
	struct ent **pp = &fs->buckets[victim->hash & (fs->nbuckets - 1)];
	while (*pp != victim)
		pp = &(*pp)->next;
	*pp = victim->next;
	azl_node_release(&victim->node);
	free(victim);
	fs->count--;
	fs->dirty = 1;
}

/* Remove everything strictly below dir. */
static void remove_below(struct azl_fs *fs, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 1)
		n = 0; /* "/": every path but "/" itself starts with "/" */
	for (size_t i = 0; i < fs->nbuckets; i++) {
		struct ent *e = fs->buckets[i], *next;
		for (; e; e = next) {
			const char *p = e->node.path;
			next = e->next;
			if (!strncmp(p, dir, n) && p[n] == '/' && p[n + 1])
				unlink_ent(fs, e);
		}
	}
}

int azl_fs_put(struct azl_fs *fs, struct azl_node *n, struct azl_err *err)
{
	int r = check_new(fs, n, err);
	if (r < 0)
		return r;
	struct ent *old = lookup(fs, n->path, path_hash(n->path));
	if (!old) {
		insert(fs, n);
		return 0;
	}
	/* A directory replaced by a non-directory takes its contents along. */
	if (old->node.type == AZL_FT_DIR && n->type != AZL_FT_DIR)
		remove_below(fs, n->path);
	azl_node_release(&old->node);
	old->node = *n;
	memset(n, 0, sizeof(*n));
	fs->dirty = 1;
	return 0;
}

int azl_fs_remove(struct azl_fs *fs, const char *path)
{
	struct ent *e;

	if (!strcmp(path, "/"))
		return -EINVAL;
	e = lookup(fs, path, path_hash(path));
	if (!e)
		return -ENOENT;
	if (e->node.type == AZL_FT_DIR)
		remove_below(fs, path);
	unlink_ent(fs, e);
	return 0;
}

size_t azl_fs_count(const struct azl_fs *fs)
{
	return fs->count;
}

static int node_cmp(const void *a, const void *b)
{
	const struct azl_node *x = *(struct azl_node *const *)a;
	const struct azl_node *y = *(struct azl_node *const *)b;
	return azl_path_cmp(x->path, y->path);
}

struct azl_node *const *azl_fs_sorted(struct azl_fs *fs)
{
	size_t k = 0;

	if (!fs->dirty)
		return fs->sorted;
	free(fs->sorted);
	fs->sorted = azl_xmalloc((fs->count ? fs->count : 1) * sizeof(*fs->sorted));
	for (size_t i = 0; i < fs->nbuckets; i++)
		for (struct ent *e = fs->buckets[i]; e; e = e->next)
			fs->sorted[k++] = &e->node;
	qsort(fs->sorted, k, sizeof(*fs->sorted), node_cmp);
	fs->dirty = 0;
	return fs->sorted;
}

/* ---- symlink resolution ---- */

/* Pop the last component of an absolute path held in b ("/" stays "/"). */
static void pop_component(struct azl_buf *b)
{
	while (b->len > 1 && b->data[b->len - 1] != '/')
		b->len--;
	if (b->len > 1)
		b->len--;
	b->data[b->len] = '\0';
}

static void push_component(struct azl_buf *b, const char *c, size_t n)
{
	if (b->len > 1)
		azl_buf_addc(b, '/');
	azl_buf_add(b, c, n);
}

/* rest := target + "/" + rest (rest is the unprocessed remainder). */
static char *splice_rest(const char *target, const char *rest)
{
	return *rest ? azl_xasprintf("%s/%s", target, rest) : azl_xstrdup(target);
}

/* Next component of *pos ("" at the end); advances *pos past it. */
static const char *next_component(char **pos, size_t *len)
{
	char *c = *pos;
	while (*c == '/')
		c++;
	*len = strcspn(c, "/");
	*pos = c + *len;
	while (**pos == '/')
		(*pos)++;
	return c;
}

/* Replace the symlink just pushed onto cur (cur was save bytes long before)
 * by its target, followed by what is left of the path. */
static void follow_link(struct azl_buf *cur, size_t save, const char *target,
			char **rest, char **pos)
{
	char *spliced = splice_rest(target, *pos);

	cur->len = target[0] == '/' ? 1 : save;
	cur->data[cur->len] = '\0';
	free(*rest);
	*rest = *pos = spliced;
}

int azl_fs_resolve(const struct azl_fs *fs, const char *path, bool follow_last,
		   char **out, struct azl_err *err)
{
	struct azl_buf cur = AZL_BUF_INIT;
	char *rest = azl_xstrdup(path), *pos = rest;
	int links = 0, r = 0;

	azl_buf_adds(&cur, "/");
	while (*pos) {
		size_t n, save = cur.len;
		const char *c = next_component(&pos, &n);
		if (n == 0 || (n == 1 && c[0] == '.'))
			continue;
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			pop_component(&cur); /* clamped at "/" like a chroot */
			continue;
		}
		push_component(&cur, c, n);
		const struct azl_node *nd = azl_fs_get(fs, cur.data);
		bool last = *pos == '\0';
		if (!nd || nd->type == AZL_FT_DIR || (last && nd->type != AZL_FT_SYMLINK))
			continue;
		if (nd->type != AZL_FT_SYMLINK) {
			r = azl_errf(err, -ENOTDIR, "%s: %s is not a directory",
				     path, cur.data);
			goto out;
		}
		if (last && !follow_last)
			continue;
		if (++links > AZL_FS_MAX_SYMLINKS) {
			r = azl_errf(err, -ELOOP, "%s: too many levels of symbolic links",
				     path);
			goto out;
		}
		follow_link(&cur, save, nd->link_target ? nd->link_target : "",
			    &rest, &pos);
	}
	*out = azl_buf_detach(&cur);
out:
	free(rest);
	if (r < 0)
		azl_buf_release(&cur);
	return r;
}

/* ---- content ---- */

static int read_file_range(const struct azl_node *n,
			   int (*fn)(void *, const void *, size_t), void *ctx,
			   struct azl_err *err)
{
	enum { CHUNK = 1 << 17 };
	unsigned char *buf = NULL;
	uint64_t off = n->data_offset, left = n->size;
	int r = 0, fd = open(n->data_path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return azl_errf(err, -errno, "%s: content %s: %s", n->path,
				n->data_path, strerror(errno));
	(void)posix_fadvise(fd, (off_t)off, (off_t)left, POSIX_FADV_SEQUENTIAL);
	buf = azl_xmalloc(CHUNK);
	while (left) {
		size_t want = left < CHUNK ? (size_t)left : CHUNK;
		ssize_t got = pread(fd, buf, want, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = azl_errf(err, -errno, "%s: reading %s: %s", n->path,
				     n->data_path, strerror(errno));
			goto out;
		}
		if (got == 0) {
			r = azl_errf(err, -EIO, "%s: %s ends %llu bytes early",
				     n->path, n->data_path,
				     (unsigned long long)left);
			goto out;
		}
		r = fn(ctx, buf, (size_t)got);
		if (r < 0)
			goto out;
		off += (uint64_t)got;
		left -= (uint64_t)got;
	}
out:
	free(buf);
	close(fd);
	return r;
}

int azl_node_read(const struct azl_node *n,
		  int (*fn)(void *ctx, const void *data, size_t len), void *ctx,
		  struct azl_err *err)
{
	int r = 0;

	if (n->type != AZL_FT_REG)
		return azl_errf(err, -EINVAL, "%s: not a regular file", n->path);
	if (n->size == 0)
		return 0;
	if (n->data)
		r = fn(ctx, n->data, (size_t)n->size);
	else if (n->data_path)
		r = read_file_range(n, fn, ctx, err);
	else
		return azl_errf(err, -EINVAL, "%s: %llu bytes but no content",
				n->path, (unsigned long long)n->size);
	/* fn reports through its own context; still leave a trace here. */
	if (r < 0 && err && !err->code)
		azl_errf(err, r, "%s: writing content failed: %s", n->path,
			 strerror(-r));
	return r;
}
