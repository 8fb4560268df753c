/* ext4 emitter on libext2fs, modelled on e2fsprogs' misc/create_inode.c
 * (what `mkfs.ext4 -d` runs) but fed from the filesystem model.
 *
 * Layout of the work: select the nodes (subtree, excludes), estimate the
 * blocks and inodes they need, size the filesystem by asking
 * ext2fs_initialize itself what the metadata costs, then create the
 * filesystem the way mke2fs does (tables, root, lost+found, reserved and
 * bad-block inodes, resize inode, journal) and walk the model in order. */
#include "compose/emit_ext4.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <et/com_err.h>
#include <ext2fs/ext2fs.h>

#include "base/buf.h"
#include "base/fs.h"

#define BLK 4096u
#define LOG_BLK 2 /* 1024 << 2 */
#define INODE_SIZE 256u
#define MIB (1ull << 20)
#define EXTRA_ISIZE (sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE)
#define STAGE (1u << 20)  /* content staging buffer, a multiple of BLK */
#define LPF_BYTES 16384   /* lost+found is pre-grown to this, as mke2fs does */
#define MAX_EXTENT_LEN 32768
#define MIN_JOURNAL_FS_BLOCKS 2048 /* below this libext2fs makes no journal */

/* ---- errors ---- */

static pthread_once_t et_once = PTHREAD_ONCE_INIT;

static void et_init(void)
{
	initialize_ext2_error_table();
}

static int is_nospc(errcode_t e)
{
	return e == EXT2_ET_BLOCK_ALLOC_FAIL || e == EXT2_ET_INODE_ALLOC_FAIL ||
	       e == EXT2_ET_DIR_NO_SPACE || e == ENOSPC;
}

/* A libext2fs failure: "<what>: <libext2fs message>". */
static int AZL_PRINTF(3, 4) e2err(struct azl_err *err, errcode_t e,
				  const char *fmt, ...)
{
	char what[1024];
	va_list ap;
	int code = is_nospc(e) ? -ENOSPC : (e > 0 && e < 4096) ? -(int)e : -EIO;

	pthread_once(&et_once, et_init);
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (is_nospc(e))
		return azl_errf(err, code, "%s: %s (the filesystem is full)",
				what, error_message(e));
	return azl_errf(err, code, "%s: %s", what, error_message(e));
}

/* ---- selection: subtree and excludes ---- */

struct walk {
	struct azl_node *const *nodes;
	size_t n, i;
	const struct azl_ext4_opts *o;
	const char *root;  /* model path of the filesystem root */
	size_t rootlen;    /* 0 when root is "/" */
	const char *skip;  /* a directory exclude_fn left out, with its subtree */
	size_t skiplen;
};

static int under(const char *path, const char *dir, size_t len)
{
	return !strncmp(path, dir, len) && (path[len] == '\0' || path[len] == '/');
}

/* The node's path inside the new filesystem, or NULL outside the subtree. */
static const char *rel_path(const struct walk *w, const char *path)
{
	if (!w->rootlen)
		return path;
	if (!under(path, w->root, w->rootlen))
		return NULL;
	return path[w->rootlen] ? path + w->rootlen : "/";
}

static int excluded(struct walk *w, const struct azl_node *n)
{
	const struct azl_ext4_opts *o = w->o;

	if (w->skip && under(n->path, w->skip, w->skiplen))
		return 1;
	for (size_t i = 0; i < o->nexclude; i++)
		if (under(n->path, o->exclude[i], strlen(o->exclude[i])))
			return 1;
	if (o->exclude_fn && o->exclude_fn(o->exclude_ctx, n)) {
		w->skip = n->path;
		w->skiplen = strlen(n->path);
		return 1;
	}
	return 0;
}

static void walk_init(struct walk *w, struct azl_fs *fs,
		      const struct azl_ext4_opts *o)
{
	memset(w, 0, sizeof(*w));
	w->nodes = azl_fs_sorted(fs);
	w->n = azl_fs_count(fs);
	w->o = o;
	w->root = o->root ? o->root : "/";
	w->rootlen = strcmp(w->root, "/") ? strlen(w->root) : 0;
}

/* Next selected node in model order; *rel is its path in the filesystem.
 * The filesystem root itself is never excluded. */
static struct azl_node *walk_next(struct walk *w, const char **rel)
{
	while (w->i < w->n) {
		struct azl_node *n = w->nodes[w->i++];
		const char *r = rel_path(w, n->path);
		if (!r || (strcmp(r, "/") && excluded(w, n)))
			continue;
		*rel = r;
		return n;
	}
	return NULL;
}

/* ---- hardlink groups ---- */

struct hl {
	uint32_t group;
	uint32_t count;  /* members selected: the inode's link count */
	ext2_ino_t ino;  /* 0 until the first member is written */
	uint64_t blocks; /* estimate for the one inode */
};

struct hl_tab {
	struct hl *v;
	size_t n, cap;
};

static int hl_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct hl *)a)->group, y = ((const struct hl *)b)->group;
	return x < y ? -1 : x > y;
}

static struct hl *hl_find(const struct hl_tab *t, uint32_t group)
{
	struct hl key = { .group = group };
	return t->n ? bsearch(&key, t->v, t->n, sizeof(*t->v), hl_cmp) : NULL;
}

/* Sort the collected members and fold them into one entry per group. */
static void hl_fold(struct hl_tab *t)
{
	size_t k = 0;

	if (!t->n)
		return;
	qsort(t->v, t->n, sizeof(*t->v), hl_cmp);
	for (size_t i = 1; i < t->n; i++) {
		if (t->v[i].group == t->v[k].group) {
			t->v[k].count++;
			if (t->v[i].blocks > t->v[k].blocks) /* members agree, normally */
				t->v[k].blocks = t->v[i].blocks;
		} else
			t->v[++k] = t->v[i];
	}
	t->n = k + 1;
}

static int is_linked(const struct azl_node *n)
{
	return n->hardlink_group && n->type != AZL_FT_DIR;
}

/* ---- estimate ---- */

struct est {
	uint64_t blocks; /* data, directory, symlink, xattr and extent blocks */
	uint64_t inodes; /* model inodes (hardlinks counted once) */
	struct hl_tab hl;
};

/* The directory stack: the chain of open directories in model order. */
struct dent {
	const char *path; /* path in the filesystem, "" for the root */
	size_t len;
	uint64_t bytes;   /* directory entry bytes so far (estimate) */
	/* Writer: the directory's inode and its entries, written as whole
	 * blocks when the directory is complete (ext2fs_link would rescan
	 * every block for each entry: quadratic in big directories). */
	ext2_ino_t ino;
	struct azl_buf ents; /* records: u32 ino, u8 type, u8 len, name */
	uint32_t subdirs;
	uint32_t min_blocks;
};

struct dstack {
	struct dent *v;
	size_t n, cap;
};

static void ds_push(struct dstack *s, const char *path, ext2_ino_t ino)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 32;
		s->v = azl_xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = (struct dent){ .path = path, .len = strlen(path), .ino = ino };
}

/* Blocks a linear directory of that many entry bytes takes: first-fit
 * packing wastes less than one maximal entry (264 bytes) per block, and
 * metadata_csum takes a 12-byte tail. */
static uint64_t dir_blocks(uint64_t bytes)
{
	uint64_t per = BLK - 12 - 264;
	return (24 + bytes + per - 1) / per;
}

/* Pop to rel's parent; the estimate's popped directories are accounted. */
static struct dent *ds_parent(struct dstack *s, const char *rel,
			      uint64_t *blocks)
{
	size_t plen = (size_t)(strrchr(rel, '/') - rel);

	while (s->n) {
		struct dent *d = &s->v[s->n - 1];
		if (d->len == plen && !strncmp(d->path, rel, plen))
			return d;
		*blocks += dir_blocks(d->bytes);
		s->n--;
	}
	return NULL;
}

static uint64_t xattr_blocks(const struct azl_node *n)
{
	/* In-inode room: 256 - 128 - extra_isize, less the magic and the
	 * end marker; each entry is a 16-byte header + padded name + value. */
	uint64_t room = INODE_SIZE - EXT2_GOOD_OLD_INODE_SIZE - EXTRA_ISIZE - 8;
	uint64_t need = 0;

	for (size_t i = 0; i < n->nxattrs; i++)
		need += 16 + ((strlen(n->xattrs[i].name) + 3) & ~3u) +
			((n->xattrs[i].len + 3) & ~(size_t)3);
	return need > room ? 1 : 0;
}

static uint64_t node_blocks(const struct azl_node *n)
{
	uint64_t b = xattr_blocks(n);

	if (n->type == AZL_FT_REG) {
		uint64_t data = (n->size + BLK - 1) / BLK;
		uint64_t extents = (data + MAX_EXTENT_LEN - 1) / MAX_EXTENT_LEN;
		b += data;
		if (extents > 4) /* beyond the inode's 4 extents: index blocks */
			b += (extents + 339) / 340;
	} else if (n->type == AZL_FT_SYMLINK && n->link_target &&
		   strlen(n->link_target) >= 60) {
		b += 1;
	}
	return b;
}

static int estimate(struct azl_fs *fs, const struct azl_ext4_opts *o,
		    struct est *e, struct azl_err *err)
{
	struct walk w;
	struct dstack ds = {0};
	struct azl_node *n;
	const char *rel;
	int r = 0;

	memset(e, 0, sizeof(*e));
	walk_init(&w, fs, o);
	while ((n = walk_next(&w, &rel))) {
		if (!strcmp(rel, "/")) {
			ds_push(&ds, "", EXT2_ROOT_INO);
			e->blocks += xattr_blocks(n);
			continue;
		}
		struct dent *p = ds_parent(&ds, rel, &e->blocks);
		if (!p) {
			r = azl_errf(err, -EINVAL, "%s: parent directory not in the model",
				     n->path);
			goto out;
		}
		const char *name = strrchr(rel, '/') + 1;
		p->bytes += (8 + strlen(name) + 3) & ~(size_t)3;
		if (is_linked(n)) {
			if (e->hl.n == e->hl.cap) {
				e->hl.cap = e->hl.cap ? 2 * e->hl.cap : 16;
				e->hl.v = azl_xrealloc(e->hl.v, e->hl.cap * sizeof(*e->hl.v));
			}
			e->hl.v[e->hl.n++] = (struct hl){ n->hardlink_group, 1, 0,
							  node_blocks(n) };
		} else {
			e->inodes++;
			e->blocks += node_blocks(n);
		}
		if (n->type == AZL_FT_DIR)
			ds_push(&ds, rel, 0);
	}
	while (ds.n)
		e->blocks += dir_blocks(ds.v[--ds.n].bytes);
	hl_fold(&e->hl);
	for (size_t i = 0; i < e->hl.n; i++) { /* one inode per group */
		e->inodes++;
		e->blocks += e->hl.v[i].blocks;
	}
	e->blocks += LPF_BYTES / BLK;
out:
	free(ds.v);
	return r;
}

/* ---- superblock parameters and sizing ---- */

static uint64_t inode_count(const struct azl_ext4_opts *o, uint64_t blocks,
			    uint64_t need)
{
	uint64_t ratio = o->inode_ratio ? o->inode_ratio : 16384;
	uint64_t n = blocks * BLK / ratio;
	return n > need ? n : need;
}

/* The model's inodes, the reserved ones and an eighth spare: a root
 * filesystem sized to its content must still take new files. */
static uint64_t inodes_needed(const struct est *e)
{
	return e->inodes + e->inodes / 8 + EXT2_GOOD_OLD_FIRST_INO + 64;
}

static void fill_params(struct ext2_super_block *sb, uint64_t blocks,
			uint64_t inodes, const struct azl_ext4_opts *o)
{
	memset(sb, 0, sizeof(*sb));
	sb->s_rev_level = EXT2_DYNAMIC_REV;
	sb->s_log_block_size = LOG_BLK;
	sb->s_log_cluster_size = LOG_BLK;
	ext2fs_blocks_count_set(sb, blocks);
	ext2fs_r_blocks_count_set(sb, blocks * o->reserved_percent / 100);
	sb->s_inodes_count = (uint32_t)(inodes > UINT32_MAX ? UINT32_MAX : inodes);
	sb->s_inode_size = INODE_SIZE;
	sb->s_min_extra_isize = sb->s_want_extra_isize = EXTRA_ISIZE;
	sb->s_log_groups_per_flex = 4;
	sb->s_desc_size = EXT2_MIN_DESC_SIZE_64BIT;
	sb->s_feature_compat = EXT2_FEATURE_COMPAT_EXT_ATTR |
			       EXT2_FEATURE_COMPAT_RESIZE_INODE |
			       EXT2_FEATURE_COMPAT_DIR_INDEX;
	sb->s_feature_incompat = EXT2_FEATURE_INCOMPAT_FILETYPE |
				 EXT3_FEATURE_INCOMPAT_EXTENTS |
				 EXT4_FEATURE_INCOMPAT_64BIT |
				 EXT4_FEATURE_INCOMPAT_FLEX_BG;
	sb->s_feature_ro_compat = EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER |
				  EXT2_FEATURE_RO_COMPAT_LARGE_FILE |
				  EXT4_FEATURE_RO_COMPAT_HUGE_FILE |
				  EXT4_FEATURE_RO_COMPAT_DIR_NLINK |
				  EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE |
				  EXT4_FEATURE_RO_COMPAT_METADATA_CSUM;
	if (o->read_only)
		sb->s_feature_ro_compat |= EXT4_FEATURE_RO_COMPAT_READONLY;
	sb->s_errors = EXT2_ERRORS_CONTINUE;
	sb->s_creator_os = EXT2_OS_LINUX;
	sb->s_default_mount_opts = EXT2_DEFM_XATTR_USER | EXT2_DEFM_ACL;
}

static int want_journal(const struct azl_ext4_opts *o)
{
	return !o->read_only && !o->no_journal;
}

static uint64_t journal_blocks(const struct azl_ext4_opts *o, uint64_t blocks)
{
	int j = want_journal(o) ? ext2fs_default_journal_size(blocks) : 0;
	return j > 0 ? (uint64_t)j : 0;
}

/* Blocks free in that geometry once superblocks, descriptors, reserved
 * GDT, bitmaps and inode tables are placed: what ext2fs_initialize plus
 * ext2fs_allocate_tables leave.  Both only touch memory, so the probe
 * opens /dev/null. */
static errcode_t probe_free(uint64_t blocks, uint64_t inodes,
			    const struct azl_ext4_opts *o, uint64_t *free_blocks)
{
	struct ext2_super_block sb;
	ext2_filsys fs = NULL;
	errcode_t e;

	fill_params(&sb, blocks, inodes, o);
	e = ext2fs_initialize("/dev/null", EXT2_FLAG_64BITS, &sb,
			      unix_io_manager, &fs);
	if (e)
		return e;
	e = ext2fs_allocate_tables(fs);
	*free_blocks = ext2fs_free_blocks_count(fs->super);
	ext2fs_free(fs);
	return e;
}

static uint64_t round_mib_blocks(uint64_t blocks)
{
	uint64_t per = MIB / BLK;
	return (blocks + per - 1) / per * per;
}

/* Smallest MiB-multiple block count whose free space holds the estimate
 * plus a little slack for what the estimate cannot see (extent trees of
 * fragmented files, first-fit directory packing). */
static int fit(const struct est *e, const struct azl_ext4_opts *o,
	       uint64_t *blocks_out, struct azl_err *err)
{
	uint64_t need_inodes = inodes_needed(e);
	uint64_t blocks = e->blocks + need_inodes * INODE_SIZE / BLK + 1024;

	if (want_journal(o) && blocks < MIN_JOURNAL_FS_BLOCKS)
		blocks = MIN_JOURNAL_FS_BLOCKS;
	for (int i = 0; i < 100; i++) {
		uint64_t free_blocks = 0;
		blocks = round_mib_blocks(blocks);
		uint64_t need = e->blocks + journal_blocks(o, blocks) +
				e->blocks / 100 + 64;
		errcode_t x = probe_free(blocks, inode_count(o, blocks, need_inodes),
					 o, &free_blocks);
		if (x == EXT2_ET_TOO_MANY_INODES || x == EXT2_ET_TOOSMALL) {
			blocks += blocks / 2 + 256;
			continue;
		}
		if (x)
			return e2err(err, x, "ext4: sizing the filesystem");
		if (free_blocks >= need) {
			*blocks_out = blocks;
			return 0;
		}
		blocks += need - free_blocks + 256;
	}
	return azl_errf(err, -EFBIG, "ext4: no filesystem size fits the content");
}

/* ---- options ---- */

static int check_opts(struct azl_fs *fs, const struct azl_ext4_opts *o,
		      struct azl_err *err)
{
	const char *root = o->root ? o->root : "/";
	const struct azl_node *rn = azl_fs_get(fs, root);

	if (o->mtime <= 0)
		return azl_err_input(err, "ext4: mtime (SOURCE_DATE_EPOCH) must be "
				     "positive, not %lld", (long long)o->mtime);
	if (o->label && strlen(o->label) > EXT2_LABEL_LEN)
		return azl_err_input(err, "ext4: label '%s' is longer than %d bytes",
				     o->label, EXT2_LABEL_LEN);
	if (!rn || rn->type != AZL_FT_DIR)
		return azl_err_input(err, "ext4: filesystem root %s is not a "
				     "directory in the image", root);
	if (o->reserved_percent > 50)
		return azl_err_input(err, "ext4: reserved_percent %u is over 50",
				     o->reserved_percent);
	for (size_t i = 0; i < o->nexclude; i++)
		if (!o->exclude[i] || o->exclude[i][0] != '/')
			return azl_err_input(err, "ext4: exclude '%s' is not an "
					     "absolute path", o->exclude[i] ?
					     o->exclude[i] : "(null)");
	return 0;
}

static int min_blocks(struct azl_fs *fs, const struct azl_ext4_opts *o,
		      struct est *e, uint64_t *blocks, struct azl_err *err)
{
	int r = check_opts(fs, o, err);
	if (r == 0)
		r = estimate(fs, o, e, err);
	if (r == 0)
		r = fit(e, o, blocks, err);
	return r;
}

int azl_ext4_min_size(struct azl_fs *fs, const struct azl_ext4_opts *o,
		      uint64_t *bytes, struct azl_err *err)
{
	struct est e = {0};
	uint64_t blocks = 0;
	int r = min_blocks(fs, o, &e, &blocks, err);

	free(e.hl.v);
	if (r == 0)
		*bytes = blocks * BLK;
	return r;
}

/* ---- inode helpers ---- */

/* Kernel encoding: seconds in 32 bits plus two epoch bits in _extra. */
static void set_time(uint32_t *t, uint32_t *extra, int64_t v)
{
	*t = (uint32_t)v;
	*extra = (uint32_t)(((v - (int32_t)(uint32_t)v) >> 32) & EXT4_EPOCH_MASK);
}

static void set_times(struct ext2_inode_large *in, int64_t t)
{
	set_time(&in->i_atime, &in->i_atime_extra, t);
	set_time(&in->i_ctime, &in->i_ctime_extra, t);
	set_time(&in->i_mtime, &in->i_mtime_extra, t);
	set_time(&in->i_crtime, &in->i_crtime_extra, t);
}

static void set_owner(struct ext2_inode_large *in, uint32_t uid, uint32_t gid)
{
	in->i_uid = (uint16_t)uid;
	in->osd2.linux2.l_i_uid_high = (uint16_t)(uid >> 16);
	in->i_gid = (uint16_t)gid;
	in->osd2.linux2.l_i_gid_high = (uint16_t)(gid >> 16);
}

static uint16_t linux_type(enum azl_ftype t)
{
	switch (t) {
	case AZL_FT_REG: return LINUX_S_IFREG;
	case AZL_FT_DIR: return LINUX_S_IFDIR;
	case AZL_FT_SYMLINK: return LINUX_S_IFLNK;
	case AZL_FT_CHR: return LINUX_S_IFCHR;
	case AZL_FT_BLK: return LINUX_S_IFBLK;
	case AZL_FT_FIFO: return LINUX_S_IFIFO;
	case AZL_FT_SOCK: return LINUX_S_IFSOCK;
	}
	return 0;
}

static int dirent_type(enum azl_ftype t)
{
	switch (t) {
	case AZL_FT_REG: return EXT2_FT_REG_FILE;
	case AZL_FT_DIR: return EXT2_FT_DIR;
	case AZL_FT_SYMLINK: return EXT2_FT_SYMLINK;
	case AZL_FT_CHR: return EXT2_FT_CHRDEV;
	case AZL_FT_BLK: return EXT2_FT_BLKDEV;
	case AZL_FT_FIFO: return EXT2_FT_FIFO;
	case AZL_FT_SOCK: return EXT2_FT_SOCK;
	}
	return EXT2_FT_UNKNOWN;
}

/* ---- the writer ---- */

struct wctx {
	ext2_filsys fs;
	const struct azl_ext4_opts *o;
	struct hl_tab *hl;
	struct azl_err *err;
	ext2_ino_t lpf;          /* lost+found */
	/* Content of the file being written. */
	const char *path;        /* model path, for messages */
	ext2_ino_t ino;
	struct ext2_inode_large *inode;
	unsigned char *buf;      /* STAGE bytes */
	size_t fill;
	uint64_t lblk;           /* logical block of buf[0] */
	uint64_t data_bytes;
};

static int read_inode(struct wctx *w, ext2_ino_t ino,
		      struct ext2_inode_large *in, const char *path)
{
	errcode_t e = ext2fs_read_inode_full(w->fs, ino, (struct ext2_inode *)in,
					     sizeof(*in));
	return e ? e2err(w->err, e, "%s: reading inode %u", path, ino) : 0;
}

static int write_inode(struct wctx *w, ext2_ino_t ino,
		       struct ext2_inode_large *in, const char *path)
{
	errcode_t e = ext2fs_write_inode_full(w->fs, ino, (struct ext2_inode *)in,
					      sizeof(*in));
	return e ? e2err(w->err, e, "%s: writing inode %u", path, ino) : 0;
}

/* A fresh inode's fields from the node (NULL: root-owned, opts mtime). */
static void init_inode(struct wctx *w, struct ext2_inode_large *in,
		       uint16_t type, uint32_t perm, const struct azl_node *n)
{
	memset(in, 0, sizeof(*in));
	in->i_mode = (uint16_t)(type | (perm & 07777));
	in->i_links_count = 1;
	in->i_extra_isize = EXTRA_ISIZE;
	set_owner(in, n ? n->uid : 0, n ? n->gid : 0);
	set_times(in, n ? n->mtime : w->o->mtime);
}

/* The model's mode, owner and times on a directory made before the walk
 * (the root and lost+found). */
static int apply_meta(struct wctx *w, ext2_ino_t ino, const struct azl_node *n)
{
	struct ext2_inode_large in;
	int r = read_inode(w, ino, &in, n->path);
	if (r < 0)
		return r;
	in.i_mode = (uint16_t)((in.i_mode & LINUX_S_IFMT) | (n->mode & 07777));
	set_owner(&in, n->uid, n->gid);
	set_times(&in, n->mtime);
	return write_inode(w, ino, &in, n->path);
}

static void add_entry(struct dent *d, const char *name, ext2_ino_t ino,
		      int ftype)
{
	size_t len = strlen(name);
	unsigned char hdr[6] = { (unsigned char)ino, (unsigned char)(ino >> 8),
				 (unsigned char)(ino >> 16), (unsigned char)(ino >> 24),
				 (unsigned char)ftype, (unsigned char)len };
	azl_buf_add(&d->ents, hdr, sizeof(hdr));
	azl_buf_add(&d->ents, name, len);
}

/* A new inode entered as name in directory d. */
static int alloc_inode(struct wctx *w, struct dent *d, const char *name,
		       const struct azl_node *n, ext2_ino_t *ino)
{
	int dir = n->type == AZL_FT_DIR;
	errcode_t e = ext2fs_new_inode(w->fs, d->ino, linux_type(n->type) | 0644,
				       NULL, ino);

	if (e)
		return e2err(w->err, e, "%s: allocating an inode", n->path);
	add_entry(d, name, *ino, dirent_type(n->type));
	ext2fs_inode_alloc_stats2(w->fs, *ino, +1, dir);
	return 0;
}

/* ---- content: staged in block multiples; all-zero blocks stay holes ---- */

static int is_zero(const unsigned char *p)
{
	static const unsigned char zero[BLK];
	return !memcmp(p, zero, BLK);
}

/* Allocate logical blocks [a, b) of the staged data and write them in
 * physically contiguous runs. */
static int write_run(struct wctx *w, size_t a, size_t b)
{
	struct ext2_inode *in = (struct ext2_inode *)w->inode;
	errcode_t e = ext2fs_fallocate(w->fs, EXT2_FALLOCATE_FORCE_INIT, w->ino,
				       in, ~0ULL, w->lblk + a, b - a);
	if (e)
		return e2err(w->err, e, "%s: allocating blocks", w->path);
	for (size_t i = a; i < b;) {
		blk64_t p0 = 0, p = 0;
		size_t j = i + 1;
		e = ext2fs_bmap2(w->fs, w->ino, in, NULL, 0, w->lblk + i, NULL, &p0);
		while (!e && j < b) {
			e = ext2fs_bmap2(w->fs, w->ino, in, NULL, 0, w->lblk + j,
					 NULL, &p);
			if (e || p != p0 + (j - i))
				break;
			j++;
		}
		if (!e && !p0)
			e = EXT2_ET_BAD_BLOCK_NUM;
		if (!e)
			e = io_channel_write_blk64(w->fs->io, p0, (int)(j - i),
						   w->buf + i * BLK);
		if (e)
			return e2err(w->err, e, "%s: writing content", w->path);
		i = j;
	}
	return 0;
}

static int stage_flush(struct wctx *w)
{
	size_t nblk = (w->fill + BLK - 1) / BLK;
	int r = 0;

	memset(w->buf + w->fill, 0, nblk * BLK - w->fill);
	for (size_t a = 0; a < nblk && r == 0;) {
		size_t b = a;
		while (b < nblk && !is_zero(w->buf + b * BLK))
			b++;
		if (b > a)
			r = write_run(w, a, b);
		a = b + 1; /* b is a zero block (or the end) */
	}
	w->lblk += nblk;
	w->fill = 0;
	return r;
}

static int stage_write(void *ctx, const void *data, size_t len)
{
	struct wctx *w = ctx;
	const unsigned char *p = data;

	w->data_bytes += len;
	while (len) {
		size_t n = STAGE - w->fill < len ? STAGE - w->fill : len;
		memcpy(w->buf + w->fill, p, n);
		w->fill += n;
		p += n;
		len -= n;
		if (w->fill == STAGE) {
			int r = stage_flush(w);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* An empty extent tree in i_block, as populate_fs sets one up. */
static int init_extents(struct wctx *w, ext2_ino_t ino,
			struct ext2_inode_large *in, const char *path)
{
	ext2_extent_handle_t h;
	errcode_t e;

	in->i_flags |= EXT4_EXTENTS_FL;
	e = ext2fs_extent_open2(w->fs, ino, (struct ext2_inode *)in, &h);
	if (e)
		return e2err(w->err, e, "%s: extent tree", path);
	ext2fs_extent_free(h);
	return 0;
}

/* Content from the node (or, for a slow symlink, the target) into ino. */
static int write_content(struct wctx *w, ext2_ino_t ino,
			 struct ext2_inode_large *in, const struct azl_node *n)
{
	int r;

	w->path = n->path;
	w->ino = ino;
	w->inode = in;
	w->fill = 0;
	w->lblk = 0;
	if (n->type == AZL_FT_SYMLINK)
		r = stage_write(w, n->link_target, strlen(n->link_target));
	else
		r = azl_node_read(n, stage_write, w, w->err);
	if (r == 0 && w->fill)
		r = stage_flush(w);
	return r;
}

/* ---- one node per type ---- */

static int mk_regular(struct wctx *w, struct dent *dir, const char *name,
		      const struct azl_node *n, uint32_t links, ext2_ino_t *ino)
{
	struct ext2_inode_large in;
	errcode_t e;
	int r = alloc_inode(w, dir, name, n, ino);

	if (r < 0)
		return r;
	init_inode(w, &in, LINUX_S_IFREG, n->mode, n);
	in.i_links_count = (uint16_t)links;
	e = ext2fs_inode_size_set(w->fs, (struct ext2_inode *)&in, n->size);
	if (e)
		return e2err(w->err, e, "%s: setting size", n->path);
	if ((r = init_extents(w, *ino, &in, n->path)) < 0 ||
	    (r = write_inode(w, *ino, &in, n->path)) < 0 ||
	    (r = write_content(w, *ino, &in, n)) < 0)
		return r;
	return write_inode(w, *ino, &in, n->path);
}

static int mk_symlink(struct wctx *w, struct dent *dir, const char *name,
		      const struct azl_node *n, uint32_t links, ext2_ino_t *ino)
{
	struct ext2_inode_large in;
	size_t len = n->link_target ? strlen(n->link_target) : 0;
	int r;

	if (len == 0 || len >= BLK)
		return azl_err_input(w->err, "%s: symlink target of %zu bytes "
				     "(ext4 takes 1..%u)", n->path, len, BLK - 1);
	if ((r = alloc_inode(w, dir, name, n, ino)) < 0)
		return r;
	init_inode(w, &in, LINUX_S_IFLNK, n->mode ? n->mode : 0777, n);
	in.i_links_count = (uint16_t)links;
	in.i_size = (uint32_t)len;
	if (len < sizeof(in.i_block)) { /* fast symlink: target in i_block */
		memcpy(in.i_block, n->link_target, len);
		return write_inode(w, *ino, &in, n->path);
	}
	if ((r = init_extents(w, *ino, &in, n->path)) < 0 ||
	    (r = write_inode(w, *ino, &in, n->path)) < 0 ||
	    (r = write_content(w, *ino, &in, n)) < 0)
		return r;
	return write_inode(w, *ino, &in, n->path);
}

static int mk_special(struct wctx *w, struct dent *dir, const char *name,
		      const struct azl_node *n, uint32_t links, ext2_ino_t *ino)
{
	struct ext2_inode_large in;
	uint32_t ma = n->rdev_major, mi = n->rdev_minor;
	int r = alloc_inode(w, dir, name, n, ino);

	if (r < 0)
		return r;
	init_inode(w, &in, linux_type(n->type), n->mode, n);
	in.i_links_count = (uint16_t)links;
	if (n->type == AZL_FT_CHR || n->type == AZL_FT_BLK) {
		/* Old 8:8 encoding when it fits, else the new one (as the
		 * kernel's ext4_write_inode does). */
		if (ma < 256 && mi < 256)
			in.i_block[0] = ma * 256 + mi;
		else
			in.i_block[1] = (mi & 0xff) | (ma << 8) | ((mi & ~0xffu) << 12);
	}
	return write_inode(w, *ino, &in, n->path);
}

/* A directory inode without blocks: finish_dir writes them. */
static int new_dir_inode(struct wctx *w, ext2_ino_t ino,
			 const struct azl_node *n, uint32_t perm, const char *path)
{
	struct ext2_inode_large in;
	int r;

	init_inode(w, &in, LINUX_S_IFDIR, n ? n->mode : perm, n);
	in.i_links_count = 2;
	if ((r = init_extents(w, ino, &in, path)) < 0)
		return r;
	return write_inode(w, ino, &in, path);
}

static int mk_dir(struct wctx *w, struct dent *dir, const char *name,
		  const struct azl_node *n, ext2_ino_t *ino)
{
	int r = alloc_inode(w, dir, name, n, ino);

	if (r < 0)
		return r;
	dir->subdirs++;
	return new_dir_inode(w, *ino, n, 0, n->path);
}

/* ---- directory blocks: linear, packed in entry order ---- */

struct dblock {
	unsigned char *b;  /* BLK bytes */
	size_t used, limit;
	struct ext2_dir_entry *last;
	unsigned last_rec;
	uint32_t count;    /* blocks written */
};

static int close_block(struct wctx *w, ext2_ino_t dir, struct dblock *db)
{
	errcode_t e = 0;

	if (!db->last) { /* an empty block: one unused entry spans it */
		db->last = (struct ext2_dir_entry *)db->b;
		db->last_rec = 0;
	}
	e = ext2fs_set_rec_len(w->fs, (unsigned)(db->last_rec + db->limit - db->used),
			       db->last);
	if (!e && db->limit < BLK) {
		ext2fs_initialize_dirent_tail(w->fs,
			(struct ext2_dir_entry_tail *)(db->b + db->limit));
		e = ext2fs_dir_block_csum_set(w->fs, dir,
					      (struct ext2_dir_entry *)db->b);
	}
	if (e)
		return e2err(w->err, e, "%s: directory block", w->path);
	db->count++;
	int r = stage_write(w, db->b, BLK);
	memset(db->b, 0, BLK);
	db->used = 0;
	db->last = NULL;
	return r;
}

static int put_entry(struct wctx *w, ext2_ino_t dir, struct dblock *db,
		     const char *name, size_t len, ext2_ino_t ino, int ftype)
{
	unsigned rec = EXT2_DIR_REC_LEN(len);
	struct ext2_dir_entry *de;
	int r;

	if (db->used + rec > db->limit && (r = close_block(w, dir, db)) < 0)
		return r;
	de = (struct ext2_dir_entry *)(db->b + db->used);
	de->inode = ino;
	ext2fs_dirent_set_name_len(de, (int)len);
	ext2fs_dirent_set_file_type(de, ftype);
	memcpy(de->name, name, len);
	if (ext2fs_set_rec_len(w->fs, rec, de))
		return azl_errf(w->err, -EINVAL, "%s: bad entry %s", w->path, name);
	db->last = de;
	db->last_rec = rec;
	db->used += rec;
	return 0;
}

/* Write d's blocks (".", "..", then its entries in model order), its size
 * and link count.  parent is the inode ".." names. */
static int finish_dir(struct wctx *w, struct dent *d, ext2_ino_t parent)
{
	struct ext2_inode_large in;
	struct dblock db = { .b = azl_xcalloc(1, BLK), .limit = BLK };
	/* An empty directory has no entry buffer at all. */
	const unsigned char *p = (const unsigned char *)azl_buf_str(&d->ents);
	const unsigned char *end = p + d->ents.len;
	const char *path = d->len ? d->path : "/";
	int r;

	if (ext2fs_has_feature_metadata_csum(w->fs->super))
		db.limit = BLK - sizeof(struct ext2_dir_entry_tail);
	if ((r = read_inode(w, d->ino, &in, path)) < 0)
		goto out;
	w->path = path;
	w->ino = d->ino;
	w->inode = &in;
	w->fill = 0;
	w->lblk = 0;
	r = put_entry(w, d->ino, &db, ".", 1, d->ino, EXT2_FT_DIR);
	if (r == 0)
		r = put_entry(w, d->ino, &db, "..", 2, parent, EXT2_FT_DIR);
	while (r == 0 && p < end) {
		ext2_ino_t ino = p[0] | p[1] << 8 | p[2] << 16 | (ext2_ino_t)p[3] << 24;
		r = put_entry(w, d->ino, &db, (const char *)p + 6, p[5], ino, p[4]);
		p += 6 + p[5];
	}
	if (r == 0)
		r = close_block(w, d->ino, &db);
	while (r == 0 && db.count < d->min_blocks)
		r = close_block(w, d->ino, &db);
	if (r == 0 && w->fill)
		r = stage_flush(w);
	if (r < 0)
		goto out;
	in.i_size = db.count * BLK;
	in.i_links_count = 2 + d->subdirs > EXT2_LINK_MAX ? 1 :
			   (uint16_t)(2 + d->subdirs);
	r = write_inode(w, d->ino, &in, path);
out:
	free(db.b);
	azl_buf_release(&d->ents);
	return r;
}

static int write_xattrs(struct wctx *w, ext2_ino_t ino, const struct azl_node *n)
{
	struct ext2_xattr_handle *h = NULL;
	errcode_t e, e2;

	if (!n->nxattrs)
		return 0;
	e = ext2fs_xattrs_open(w->fs, ino, &h);
	if (e)
		return e2err(w->err, e, "%s: opening xattrs", n->path);
	e = ext2fs_xattrs_read(h);
	for (size_t i = 0; !e && i < n->nxattrs; i++) {
		e = ext2fs_xattr_set(h, n->xattrs[i].name, n->xattrs[i].value,
				     n->xattrs[i].len);
		if (e) {
			ext2fs_xattrs_close(&h);
			return e2err(w->err, e, "%s: xattr %s", n->path,
				     n->xattrs[i].name);
		}
	}
	e2 = ext2fs_xattrs_close(&h);
	if (!e)
		e = e2;
	return e ? e2err(w->err, e, "%s: writing xattrs", n->path) : 0;
}

/* Create (or, for a hardlink, link) one node under dir. */
static int emit_node(struct wctx *w, struct dent *dir, const char *rel,
		     const struct azl_node *n, ext2_ino_t *ino)
{
	const char *name = strrchr(rel, '/') + 1;
	struct hl *h = is_linked(n) ? hl_find(w->hl, n->hardlink_group) : NULL;
	uint32_t links = h ? h->count : 1;
	int r;

	if (strlen(name) > EXT2_NAME_LEN)
		return azl_err_input(w->err, "%s: name longer than %d bytes",
				     n->path, EXT2_NAME_LEN);
	if (h && h->ino) {
		*ino = h->ino;
		add_entry(dir, name, h->ino, dirent_type(n->type));
		return 0;
	}
	switch (n->type) {
	case AZL_FT_DIR: r = mk_dir(w, dir, name, n, ino); break;
	case AZL_FT_REG: r = mk_regular(w, dir, name, n, links, ino); break;
	case AZL_FT_SYMLINK: r = mk_symlink(w, dir, name, n, links, ino); break;
	case AZL_FT_CHR: case AZL_FT_BLK: case AZL_FT_FIFO: case AZL_FT_SOCK:
		r = mk_special(w, dir, name, n, links, ino);
		break;
	default:
		return azl_err_input(w->err, "%s: unknown file type %d", n->path,
				     (int)n->type);
	}
	if (r == 0 && h)
		h->ino = *ino;
	return r < 0 ? r : write_xattrs(w, *ino, n);
}

/* Nodes the filesystem already has: its root and lost+found. */
static int emit_existing(struct wctx *w, ext2_ino_t ino, const struct azl_node *n)
{
	int r = apply_meta(w, ino, n);
	return r < 0 ? r : write_xattrs(w, ino, n);
}

/* Pop (and write) the open directories above rel's parent. */
static int pop_to_parent(struct wctx *w, struct dstack *ds, const char *rel,
			 struct dent **parent)
{
	size_t plen = (size_t)(strrchr(rel, '/') - rel);

	*parent = NULL;
	while (ds->n) {
		struct dent *d = &ds->v[ds->n - 1];
		if (d->len == plen && !strncmp(d->path, rel, plen)) {
			*parent = d;
			return 0;
		}
		int r = finish_dir(w, d, ds->n > 1 ? d[-1].ino : EXT2_ROOT_INO);
		ds->n--;
		if (r < 0)
			return r;
	}
	return 0;
}

static int populate_node(struct wctx *w, struct dstack *ds, const char *rel,
			 const struct azl_node *n, int *lpf_open)
{
	struct dent *p;
	ext2_ino_t ino = 0;
	int r;

	if (!strcmp(rel, "/"))
		return emit_existing(w, EXT2_ROOT_INO, n);
	if ((r = pop_to_parent(w, ds, rel, &p)) < 0)
		return r;
	if (!p)
		return azl_errf(w->err, -EINVAL, "%s: parent directory not written",
				n->path);
	if (p->ino == EXT2_ROOT_INO && !strcmp(rel, "/lost+found")) {
		if (n->type != AZL_FT_DIR)
			return azl_err_input(w->err, "%s: ext4 needs lost+found "
					     "to be a directory", n->path);
		ino = w->lpf;
		*lpf_open = 1;
		r = emit_existing(w, ino, n);
	} else {
		r = emit_node(w, p, rel, n, &ino);
	}
	if (r == 0 && n->type == AZL_FT_DIR) {
		ds_push(ds, rel, ino);
		if (ino == w->lpf)
			ds->v[ds->n - 1].min_blocks = LPF_BYTES / BLK;
	}
	return r;
}

static int populate(struct wctx *w, struct azl_fs *model)
{
	struct walk wk;
	struct dstack ds = {0};
	struct azl_node *n;
	const char *rel;
	int r = 0, lpf_open = 0;

	walk_init(&wk, model, w->o);
	ds_push(&ds, "", EXT2_ROOT_INO);
	add_entry(&ds.v[0], "lost+found", w->lpf, EXT2_FT_DIR);
	ds.v[0].subdirs = 1;
	while (r == 0 && (n = walk_next(&wk, &rel)))
		r = populate_node(w, &ds, rel, n, &lpf_open);
	/* Finish what is open; the root last, after an untouched lost+found. */
	while (r == 0 && ds.n > 1) {
		r = finish_dir(w, &ds.v[ds.n - 1], ds.v[ds.n - 2].ino);
		ds.n--;
	}
	if (r == 0 && !lpf_open) {
		struct dent lpf = { .path = "/lost+found", .len = 11, .ino = w->lpf,
				    .min_blocks = LPF_BYTES / BLK };
		r = finish_dir(w, &lpf, EXT2_ROOT_INO);
	}
	if (r == 0)
		r = finish_dir(w, &ds.v[0], EXT2_ROOT_INO);
	for (size_t i = 0; i < ds.n; i++)
		azl_buf_release(&ds.v[i].ents);
	free(ds.v);
	return r;
}

/* ---- filesystem creation, as mke2fs does it ---- */

static int set_identity(ext2_filsys fs, const struct azl_ext4_opts *o)
{
	struct ext2_super_block *sb = fs->super;

	fs->now = o->mtime;
	memcpy(sb->s_uuid, o->uuid, sizeof(sb->s_uuid));
	memcpy(sb->s_hash_seed, o->hash_seed, sizeof(sb->s_hash_seed));
	memset(sb->s_volume_name, 0, sizeof(sb->s_volume_name));
	if (o->label)
		memcpy(sb->s_volume_name, o->label, strlen(o->label));
	sb->s_def_hash_version = EXT2_HASH_HALF_MD4;
	/* Fixed, not the build host's char signedness. */
	sb->s_flags = (sb->s_flags & ~EXT2_FLAGS_UNSIGNED_HASH) | EXT2_FLAGS_SIGNED_HASH;
	sb->s_checksum_type = EXT2_CRC32C_CHKSUM;
	sb->s_max_mnt_count = -1;
	sb->s_mnt_count = 0;
	sb->s_checkinterval = 0;
	sb->s_errors = EXT2_ERRORS_CONTINUE;
	sb->s_default_mount_opts = EXT2_DEFM_XATTR_USER | EXT2_DEFM_ACL;
	ext2fs_init_csum_seed(fs);
	return 0;
}

/* Root and lost+found inodes; populate writes their blocks. */
static int make_root_dirs(struct wctx *w)
{
	ext2_filsys fs = w->fs;
	errcode_t e;
	int r;

	ext2fs_inode_alloc_stats2(fs, EXT2_ROOT_INO, +1, 1);
	if ((r = new_dir_inode(w, EXT2_ROOT_INO, NULL, 0755, "/")) < 0)
		return r;
	e = ext2fs_new_inode(fs, EXT2_ROOT_INO, LINUX_S_IFDIR | 0700, NULL, &w->lpf);
	if (e)
		return e2err(w->err, e, "ext4: allocating lost+found");
	ext2fs_inode_alloc_stats2(fs, w->lpf, +1, 1);
	return new_dir_inode(w, w->lpf, NULL, 0700, "/lost+found");
}

static int make_special_inodes(struct wctx *w)
{
	ext2_filsys fs = w->fs;
	errcode_t e;

	for (ext2_ino_t i = EXT2_ROOT_INO + 1; i < EXT2_FIRST_INODE(fs->super); i++)
		ext2fs_inode_alloc_stats2(fs, i, +1, 0);
	ext2fs_mark_ib_dirty(fs);
	ext2fs_mark_inode_bitmap2(fs->inode_map, EXT2_BAD_INO);
	ext2fs_inode_alloc_stats2(fs, EXT2_BAD_INO, +1, 0);
	e = ext2fs_update_bb_inode(fs, NULL);
	if (!e)
		e = ext2fs_create_resize_inode(fs);
	if (!e && want_journal(w->o)) {
		struct ext2fs_journal_params jp;
		e = ext2fs_get_journal_params(&jp, fs);
		/* LAZYINIT: no zeroing, the sparse image reads as zeros. */
		if (!e)
			e = ext2fs_add_journal_inode3(fs, &jp, ~0ULL,
						      EXT2_MKJOURNAL_LAZYINIT |
						      EXT2_MKJOURNAL_NO_MNT_CHECK);
	}
	return e ? e2err(w->err, e, "ext4: creating reserved inodes") : 0;
}

static int make_fs(struct wctx *w, const char *path, uint64_t offset,
		   uint64_t blocks, uint64_t inodes)
{
	struct ext2_super_block sb;
	char opt[64];
	errcode_t e;

	fill_params(&sb, blocks, inodes, w->o);
	e = ext2fs_initialize(path, EXT2_FLAG_64BITS, &sb, unix_io_manager, &w->fs);
	if (e)
		return e2err(w->err, e, "%s: creating the filesystem", path);
	/* Inside a bigger file (a disk's partition): every block moves by
	 * offset, as mke2fs -E offset= does.  Nothing is written before. */
	if (offset) {
		snprintf(opt, sizeof(opt), "offset=%llu", (unsigned long long)offset);
		e = io_channel_set_options(w->fs->io, opt);
		if (e)
			return e2err(w->err, e, "%s: placing the filesystem at byte %llu",
				     path, (unsigned long long)offset);
	}
	set_identity(w->fs, w->o);
	e = ext2fs_allocate_tables(w->fs);
	if (e)
		return e2err(w->err, e, "%s: allocating group tables", path);
	/* The image is a fresh sparse file: inode tables already read as
	 * zeros, so say so instead of writing them (no lazy init at mount). */
	for (dgrp_t g = 0; g < w->fs->group_desc_count; g++)
		ext2fs_bg_flags_set(w->fs, g, EXT2_BG_INODE_ZEROED);
	int r = make_root_dirs(w);
	return r < 0 ? r : make_special_inodes(w);
}

static int finish_fs(struct wctx *w, const char *path, struct azl_ext4_result *res)
{
	struct ext2_super_block *sb = w->fs->super;
	errcode_t e;

	sb->s_mkfs_time = sb->s_mtime = sb->s_lastcheck = sb->s_wtime =
		(uint32_t)w->o->mtime;
	sb->s_state = EXT2_VALID_FS;
	e = ext2fs_set_gdt_csum(w->fs);
	if (e)
		return e2err(w->err, e, "%s: group descriptor checksums", path);
	ext2fs_mark_super_dirty(w->fs);
	if (res) {
		res->blocks = ext2fs_blocks_count(sb);
		res->free_blocks = ext2fs_free_blocks_count(sb);
		res->inodes = sb->s_inodes_count;
		res->free_inodes = sb->s_free_inodes_count;
		res->data_bytes = w->data_bytes;
	}
	e = ext2fs_close_free(&w->fs);
	return e ? e2err(w->err, e, "%s: writing the filesystem", path) : 0;
}

static int too_small(const struct azl_ext4_opts *o, uint64_t min,
		     struct azl_err *err)
{
	const char *root = o->root && strcmp(o->root, "/") ? o->root : "root";
	return azl_err_input(err, "ext4: the %s filesystem needs at least %llu MiB; "
			     "'size' is %llu MiB", root,
			     (unsigned long long)(min / MIB),
			     (unsigned long long)(o->size_bytes / MIB));
}

/* The image's size for o: size_bytes, or (0) the minimum plus a margin of
 * a tenth, at least 8 MiB, in whole MiB.  *min gets the minimum. */
static int image_size(struct azl_fs *fs, const struct azl_ext4_opts *o,
		      struct est *e, uint64_t *size, uint64_t *min,
		      struct azl_err *err)
{
	int r = min_blocks(fs, o, e, min, err);

	if (r < 0)
		return r;
	*min *= BLK;
	*size = o->size_bytes;
	if (!*size)
		*size = (*min + (*min / 10 > 8 * MIB ? *min / 10 : 8 * MIB) + MIB - 1)
			/ MIB * MIB;
	else if (*size < *min)
		return too_small(o, *min, err);
	return 0;
}

int azl_ext4_image_size(struct azl_fs *fs, const struct azl_ext4_opts *o,
			uint64_t *bytes, uint64_t *min, struct azl_err *err)
{
	struct est e = {0};
	uint64_t m = 0;
	int r = image_size(fs, o, &e, bytes, &m, err);

	if (min)
		*min = m;
	free(e.hl.v);
	return r;
}

/* The filesystem into path at offset, sized already (out NULL), or into
 * out's temporary file, sized here and published by the caller. */
static int emit(struct azl_fs *fs, const struct azl_ext4_opts *o,
		const char *path, uint64_t offset, struct azl_out *out,
		struct azl_ext4_result *res, struct azl_err *err)
{
	struct wctx w = { .o = o, .err = err };
	struct est e = {0};
	uint64_t min = 0, size = 0, blocks, inodes;
	int r = image_size(fs, o, &e, &size, &min, err);

	if (r < 0)
		goto out;
	if (out && ftruncate(out->fd, (off_t)size) < 0) {
		r = azl_errf(err, -errno, "%s: sizing the image to %llu bytes: %s",
			     path, (unsigned long long)size, strerror(errno));
		goto out;
	}
	w.hl = &e.hl;
	w.buf = azl_xmalloc(STAGE);
	blocks = size / BLK;
	inodes = inode_count(o, blocks, inodes_needed(&e));
	if ((r = make_fs(&w, out ? out->tmp_path : path, offset, blocks, inodes)) < 0 ||
	    (r = populate(&w, fs)) < 0 ||
	    (r = finish_fs(&w, path, res)) < 0)
		goto out;
	if (res) {
		res->size_bytes = size;
		res->min_bytes = min;
	}
out:
	if (w.fs)
		ext2fs_free(w.fs);
	free(w.buf);
	free(e.hl.v);
	return r;
}

int azl_emit_ext4(struct azl_fs *fs, const struct azl_ext4_opts *o,
		  const char *out_path, struct azl_ext4_result *res,
		  struct azl_err *err)
{
	struct azl_out out = { .fd = -1 };
	int r = azl_out_open(&out, out_path, 0644, err);

	if (r == 0)
		r = emit(fs, o, out_path, 0, &out, res, err);
	if (r == 0)
		return azl_out_commit(&out, err);
	azl_out_abort(&out);
	return r;
}

int azl_emit_ext4_at(struct azl_fs *fs, const struct azl_ext4_opts *o,
		     const char *path, uint64_t offset,
		     struct azl_ext4_result *res, struct azl_err *err)
{
	if (!o->size_bytes)
		return azl_err_input(err, "%s: an ext4 filesystem at byte %llu needs "
				     "its size", path, (unsigned long long)offset);
	return emit(fs, o, path, offset, NULL, res, err);
}
