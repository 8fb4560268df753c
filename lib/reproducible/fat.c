#include "reproducible/fat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"

#define SEC 512u
#define DIRENT 32u
#define MIB (1024u * 1024u)
#define FAT16_ROOT_ENTRIES 512u

struct node {
	char *name;
	unsigned char sfn[11];
	uint8_t ncase;               /* NT lowercase bits */
	unsigned nlfn;               /* long-name entries before the short one */
	bool dir;
	const struct azl_fat_file *src;
	uint64_t size;
	struct node **kids;
	size_t nkids;
	struct node *parent;
	uint32_t first, nclus;
};

struct geom {
	bool fat32;
	uint32_t total, spc, reserved, fatsz, root_secs, clusters;
	uint32_t data_sec;           /* first data sector */
};

struct plan {
	struct node root;
	struct geom g;
	uint32_t used;               /* clusters allocated */
	uint16_t date, time;
};

/* ---- names ---- */

static bool lfn_char_ok(unsigned char c)
{
	return c >= 0x20 && c < 0x7f && !strchr("\"*/:<>?\\|", c);
}

static bool sfn_char_ok(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c >= 'a' && c <= 'z') || (c && strchr("!#$%&'()-@^_`{}~", c));
}

/* Case of a part: 1 all upper (or no letters), 2 all lower, 0 mixed. */
static int part_case(const char *p, size_t n)
{
	bool up = false, lo = false;

	for (size_t i = 0; i < n; i++) {
		up |= p[i] >= 'A' && p[i] <= 'Z';
		lo |= p[i] >= 'a' && p[i] <= 'z';
	}
	return up && lo ? 0 : lo ? 2 : 1;
}

static void sfn_fill(unsigned char sfn[11], const char *b, size_t nb,
		     const char *e, size_t ne)
{
	memset(sfn, ' ', 11);
	for (size_t i = 0; i < nb; i++)
		sfn[i] = (unsigned char)(b[i] >= 'a' && b[i] <= 'z' ? b[i] - 32 : b[i]);
	for (size_t i = 0; i < ne; i++)
		sfn[8 + i] = (unsigned char)(e[i] >= 'a' && e[i] <= 'z' ? e[i] - 32 : e[i]);
}

/* A name that is 8.3 already: short entry only. */
static bool try_83(struct node *n)
{
	const char *dot = strrchr(n->name, '.');
	size_t len = strlen(n->name);
	size_t nb = dot ? (size_t)(dot - n->name) : len;
	size_t ne = dot ? len - nb - 1 : 0;
	int cb, ce;

	if (nb < 1 || nb > 8 || ne > 3 || (dot && ne == 0))
		return false;
	for (size_t i = 0; i < len; i++)
		if (i != nb && !sfn_char_ok((unsigned char)n->name[i]))
			return false;
	cb = part_case(n->name, nb);
	ce = part_case(dot ? dot + 1 : "", ne);
	if (!cb || !ce)
		return false;
	sfn_fill(n->sfn, n->name, nb, dot ? dot + 1 : "", ne);
	n->ncase = (uint8_t)((cb == 2 ? 0x08 : 0) | (ce == 2 ? 0x10 : 0));
	return true;
}

static bool sfn_taken(const struct node *dir, const struct node *self)
{
	for (size_t i = 0; i < dir->nkids; i++)
		if (dir->kids[i] != self && !memcmp(dir->kids[i]->sfn, self->sfn, 11))
			return true;
	return false;
}

/* BASIS~N.EXT: basis from the name's valid characters, uppercased. */
static void make_tail(struct node *dir, struct node *n)
{
	const char *dot = strrchr(n->name, '.');
	char base[9], ext[4], digits[12];
	size_t nb = 0, ne = 0;

	for (const char *p = n->name; *p && (!dot || p < dot) && nb < 6; p++)
		if (sfn_char_ok((unsigned char)*p))
			base[nb++] = *p;
	for (const char *p = dot ? dot + 1 : ""; *p && ne < 3; p++)
		if (sfn_char_ok((unsigned char)*p))
			ext[ne++] = *p;
	if (!nb)
		base[nb++] = '_';
	for (unsigned k = 1; k < 1000000; k++) {
		int dl = snprintf(digits, sizeof(digits), "~%u", k);
		char full[9];
		size_t keep = nb + (size_t)dl > 8 ? 8 - (size_t)dl : nb;
		memcpy(full, base, keep);
		memcpy(full + keep, digits, (size_t)dl);
		sfn_fill(n->sfn, full, keep + (size_t)dl, ext, ne);
		if (!sfn_taken(dir, n))
			break;
	}
	n->nlfn = (unsigned)((strlen(n->name) + 12) / 13);
}

/* Two passes so a generated BASIS~N never takes a name given as 8.3. */
static void assign_short_names(struct node *dir)
{
	for (size_t i = 0; i < dir->nkids; i++)
		if (!try_83(dir->kids[i]))
			memset(dir->kids[i]->sfn, 0, 11);
	for (size_t i = 0; i < dir->nkids; i++)
		if (!dir->kids[i]->sfn[0])
			make_tail(dir, dir->kids[i]);
	for (size_t i = 0; i < dir->nkids; i++)
		if (dir->kids[i]->dir)
			assign_short_names(dir->kids[i]);
}

/* ---- tree ---- */

static void free_node(struct node *n)
{
	for (size_t i = 0; i < n->nkids; i++) {
		free_node(n->kids[i]);
		free(n->kids[i]);
	}
	free(n->kids);
	free(n->name);
}

static struct node *find_or_add(struct node *dir, const char *name, size_t len,
				bool is_dir, int *clash)
{
	struct node *n;

	*clash = 0;
	for (size_t i = 0; i < dir->nkids; i++) {
		n = dir->kids[i];
		if (strlen(n->name) != len || strncasecmp(n->name, name, len))
			continue;
		/* FAT compares names without case: "a" and "A" collide. */
		if (!n->dir || !is_dir || strncmp(n->name, name, len))
			*clash = 1;
		return n;
	}
	n = azl_xcalloc(1, sizeof(*n));
	n->name = azl_xasprintf("%.*s", (int)len, name);
	n->dir = is_dir;
	n->parent = dir;
	dir->kids = azl_xrealloc(dir->kids, (dir->nkids + 1) * sizeof(*dir->kids));
	dir->kids[dir->nkids++] = n;
	return n;
}

static int check_component(const char *c, size_t len, const char *path,
			   struct azl_err *err)
{
	if (!len || (len == 1 && c[0] == '.') || (len == 2 && !strncmp(c, "..", 2)))
		return azl_err_input(err, "ESP path \"%s\": empty, \".\" or "
				     "\"..\" component", path);
	if (len > 255)
		return azl_err_input(err, "ESP path \"%s\": a name is longer "
				     "than 255 characters", path);
	if (c[len - 1] == ' ' || c[len - 1] == '.')
		return azl_err_input(err, "ESP path \"%s\": a name ends in a "
				     "space or dot", path);
	for (size_t i = 0; i < len; i++)
		if (!lfn_char_ok((unsigned char)c[i]))
			return azl_err_input(err, "ESP path \"%s\": character "
					     "0x%02x not allowed in a FAT name",
					     path, (unsigned char)c[i]);
	return 0;
}

static int file_size(const struct azl_fat_file *f, uint64_t *size,
		     struct azl_err *err)
{
	struct stat st;

	if (!f->host_path) {
		*size = f->len;
		return *size > UINT32_MAX ? azl_err_input(err, "ESP file %s: "
				"%zu bytes; FAT holds files below 4 GiB",
				f->path, f->len) : 0;
	}
	if (stat(f->host_path, &st) < 0)
		return azl_errf(err, errno, "ESP file %s: %s: %s", f->path,
				f->host_path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return azl_err_input(err, "ESP file %s: %s is not a regular file",
				     f->path, f->host_path);
	*size = (uint64_t)st.st_size;
	if (*size > UINT32_MAX)
		return azl_err_input(err, "ESP file %s: %s is %llu bytes; FAT "
				     "holds files below 4 GiB", f->path,
				     f->host_path, (unsigned long long)*size);
	return 0;
}

static int add_file(struct node *root, const struct azl_fat_file *f,
		    struct azl_err *err)
{
	const char *p = f->path;
	struct node *dir = root, *n = NULL;
	int clash, r;

	while (*p == '/')
		p++;
	if (!*p)
		return azl_err_input(err, "ESP path \"%s\" names the root", f->path);
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		bool is_dir = slash != NULL;
		if ((r = check_component(p, len, f->path, err)) < 0)
			return r;
		if (dir->src)
			return azl_err_input(err, "ESP path \"%s\": a parent is a "
					     "file", f->path);
		n = find_or_add(dir, p, len, is_dir, &clash);
		if (clash)
			return azl_err_input(err, "ESP path \"%s\" given twice "
					     "(FAT names ignore case)", f->path);
		dir = n;
		p += len;
		while (*p == '/')
			p++;
	}
	if (n->dir)
		return 0;
	n->src = f;
	return file_size(f, &n->size, err);
}

static int cmp_node(const void *a, const void *b)
{
	return strcmp((*(struct node *const *)a)->name,
		      (*(struct node *const *)b)->name);
}

static void sort_tree(struct node *n)
{
	if (n->nkids > 1)
		qsort(n->kids, n->nkids, sizeof(*n->kids), cmp_node);
	for (size_t i = 0; i < n->nkids; i++)
		sort_tree(n->kids[i]);
}

static int check_label(const char *label, struct azl_err *err)
{
	if (!label)
		return 0;
	if (!*label || strlen(label) > 11)
		return azl_err_input(err, "ESP label \"%s\": 1 to 11 characters",
				     label);
	for (const char *p = label; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '-' || *p == ' '))
			return azl_err_input(err, "ESP label \"%s\": only A-Z, "
					     "0-9, '_', '-' and space", label);
	return 0;
}

/* ---- geometry and allocation ---- */

static uint32_t fat32_spc(uint32_t total)
{
	if (total <= 532480u)
		return 1;
	if (total <= 16777216u)
		return 8;
	if (total <= 33554432u)
		return 16;
	if (total <= 67108864u)
		return 32;
	return 64;
}

static void fit_fat(struct geom *g)
{
	uint32_t width = g->fat32 ? 4 : 2;

	g->fatsz = 1;
	for (;;) {
		uint32_t meta = g->reserved + 2 * g->fatsz + g->root_secs;
		g->clusters = meta < g->total ? (g->total - meta) / g->spc : 0;
		uint32_t need = (uint32_t)(((uint64_t)g->clusters + 2) * width +
					   SEC - 1) / SEC;
		if (need <= g->fatsz)
			break;
		g->fatsz = need;
	}
	g->data_sec = g->reserved + 2 * g->fatsz + g->root_secs;
}

/* -ENOSPC when no valid FAT volume has this size. */
static int geometry(uint64_t size, struct geom *g)
{
	memset(g, 0, sizeof(*g));
	if (size / SEC > UINT32_MAX)
		return -EFBIG;
	g->total = (uint32_t)(size / SEC);
	g->fat32 = size >= 64ull * MIB;
	if (g->fat32) {
		g->reserved = 32;
		g->spc = fat32_spc(g->total);
		fit_fat(g);
		return g->clusters >= 65525 ? 0 : -ENOSPC;
	}
	g->reserved = 1;
	g->root_secs = FAT16_ROOT_ENTRIES * DIRENT / SEC;
	for (g->spc = 1; g->spc <= 128; g->spc *= 2) {
		fit_fat(g);
		if (g->clusters <= 65524)
			break;
	}
	return g->clusters >= 4085 && g->clusters <= 65524 ? 0 : -ENOSPC;
}

static uint64_t dir_entries(const struct node *d, bool is_root, bool label)
{
	uint64_t n = is_root ? (label ? 1 : 0) : 2;

	for (size_t i = 0; i < d->nkids; i++)
		n += 1 + d->kids[i]->nlfn;
	return n;
}

static uint32_t clusters_for(uint64_t bytes, uint32_t cs)
{
	return (uint32_t)((bytes + cs - 1) / cs);
}

static void alloc_dir(struct plan *p, struct node *d, bool label)
{
	uint32_t cs = p->g.spc * SEC;
	bool is_root = d == &p->root;

	if (!is_root || p->g.fat32) {
		d->nclus = clusters_for(dir_entries(d, is_root, label) * DIRENT, cs);
		if (!d->nclus)
			d->nclus = 1;
		d->first = p->used + 2;
		p->used += d->nclus;
	}
	for (size_t i = 0; i < d->nkids; i++) {
		struct node *k = d->kids[i];
		if (k->dir || !k->size)
			continue;
		k->nclus = clusters_for(k->size, cs);
		k->first = p->used + 2;
		p->used += k->nclus;
	}
	for (size_t i = 0; i < d->nkids; i++)
		if (d->kids[i]->dir)
			alloc_dir(p, d->kids[i], label);
}

static int layout(struct plan *p, uint64_t size, const struct azl_fat_spec *s)
{
	int r;

	if ((r = geometry(size, &p->g)) < 0)
		return r;
	if (!p->g.fat32 && dir_entries(&p->root, true, s->label) > FAT16_ROOT_ENTRIES)
		return -ENOSPC;
	p->used = 0;
	alloc_dir(p, &p->root, s->label != NULL);
	return p->used <= p->g.clusters ? 0 : -ENOSPC;
}

static int build_tree(struct plan *p, const struct azl_fat_spec *s,
		      struct azl_err *err)
{
	int r;

	memset(p, 0, sizeof(*p));
	p->root.dir = true;
	if ((r = check_label(s->label, err)) < 0)
		return r;
	for (size_t i = 0; i < s->nfiles; i++)
		if ((r = add_file(&p->root, &s->files[i], err)) < 0)
			return r;
	sort_tree(&p->root);
	assign_short_names(&p->root);
	return 0;
}

/* Volume sizes tried in MiB steps that grow with the size. */
static int min_size(struct plan *p, const struct azl_fat_spec *s, uint64_t *bytes)
{
	for (uint64_t size = 2 * MIB; size / SEC <= UINT32_MAX;) {
		int r = layout(p, size, s);
		if (r == 0) {
			*bytes = size;
			return 0;
		}
		if (r != -ENOSPC)
			return r;
		uint64_t step = size / 32 / MIB * MIB;
		size += step > MIB ? step : MIB;
	}
	return -EFBIG;
}

int azl_fat_min_size(const struct azl_fat_spec *s, uint64_t *bytes,
		     struct azl_err *err)
{
	struct plan p;
	int r;

	if ((r = build_tree(&p, s, err)) < 0)
		goto out;
	if ((r = min_size(&p, s, bytes)) < 0)
		r = azl_err_input(err, "ESP contents do not fit a 2 TiB FAT volume");
out:
	free_node(&p.root);
	return r;
}

/* ---- writing ---- */

struct wctx {
	int fd;
	uint64_t off;                /* volume start in fd */
	const char *what;
	const struct azl_fat_spec *s;
	struct plan *p;
	struct azl_err *err;
};

static void le16(unsigned char *b, uint32_t v)
{
	b[0] = (unsigned char)v;
	b[1] = (unsigned char)(v >> 8);
}

static void le32(unsigned char *b, uint32_t v)
{
	le16(b, v);
	le16(b + 2, v >> 16);
}

static int wr(struct wctx *w, const void *data, size_t len, uint64_t pos)
{
	const char *d = data;

	while (len) {
		ssize_t n = pwrite(w->fd, d, len, (off_t)(w->off + pos));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return azl_errf(w->err, n < 0 ? errno : EIO, "%s: writing "
					"the FAT volume: %s", w->what,
					strerror(n < 0 ? errno : EIO));
		d += n;
		pos += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static void fat_datetime(int64_t t, uint16_t *date, uint16_t *tm_)
{
	struct tm tm;
	time_t tt;

	if (t < 315532800) /* 1980-01-01 */
		t = 315532800;
	if (t > 4354819198LL) /* 2107-12-31 23:59:58 */
		t = 4354819198LL;
	tt = (time_t)t;
	gmtime_r(&tt, &tm);
	*date = (uint16_t)((tm.tm_year - 80) << 9 | (tm.tm_mon + 1) << 5 | tm.tm_mday);
	*tm_ = (uint16_t)(tm.tm_hour << 11 | tm.tm_min << 5 | tm.tm_sec / 2);
}

static uint64_t cluster_pos(const struct geom *g, uint32_t c)
{
	return ((uint64_t)g->data_sec + (uint64_t)(c - 2) * g->spc) * SEC;
}

static void boot_sector(const struct wctx *w, uint32_t hidden, unsigned char *b)
{
	const struct geom *g = &w->p->g;
	const char *label = w->s->label ? w->s->label : "NO NAME";
	unsigned char *ext = b + (g->fat32 ? 64 : 36);

	memset(b, 0, SEC);
	memcpy(b, g->fat32 ? "\xEB\x58\x90" : "\xEB\x3C\x90", 3);
	memcpy(b + 3, "MSWIN4.1", 8);
	le16(b + 11, SEC);
	b[13] = (unsigned char)g->spc;
	le16(b + 14, g->reserved);
	b[16] = 2;
	le16(b + 17, g->fat32 ? 0 : FAT16_ROOT_ENTRIES);
	if (!g->fat32 && g->total < 65536)
		le16(b + 19, g->total);
	else
		le32(b + 32, g->total);
	b[21] = 0xF8;
	le16(b + 24, 63);
	le16(b + 26, 255);
	le32(b + 28, hidden);
	if (g->fat32) {
		le32(b + 36, g->fatsz);
		le32(b + 44, 2);      /* root cluster */
		le16(b + 48, 1);      /* FSInfo */
		le16(b + 50, 6);      /* backup boot sector */
	} else {
		le16(b + 22, g->fatsz);
	}
	ext[0] = 0x80;
	ext[2] = 0x29;
	le32(ext + 3, w->s->volume_id);
	memset(ext + 7, ' ', 11);
	memcpy(ext + 7, label, strlen(label));
	memcpy(ext + 18, g->fat32 ? "FAT32   " : "FAT16   ", 8);
	b[510] = 0x55;
	b[511] = 0xAA;
}

static void fsinfo_sector(const struct plan *p, unsigned char *b)
{
	memset(b, 0, SEC);
	le32(b, 0x41615252);
	le32(b + 484, 0x61417272);
	le32(b + 488, p->g.clusters - p->used);
	le32(b + 492, p->used + 2);
	le32(b + 508, 0xAA550000);
}

static int write_boot(struct wctx *w, uint32_t hidden)
{
	unsigned char b[2 * SEC];
	int r;

	boot_sector(w, hidden, b);
	if (!w->p->g.fat32)
		return wr(w, b, SEC, 0);
	fsinfo_sector(w->p, b + SEC);
	if ((r = wr(w, b, 2 * SEC, 0)) < 0)
		return r;
	return wr(w, b, 2 * SEC, 6 * SEC);
}

static void chain(const struct node *n, uint32_t *fat, uint32_t eoc)
{
	for (uint32_t i = 0; i < n->nclus; i++)
		fat[n->first + i] = i + 1 < n->nclus ? n->first + i + 1 : eoc;
	for (size_t i = 0; i < n->nkids; i++)
		chain(n->kids[i], fat, eoc);
}

/* Only the entries in use are written: the rest of each FAT is zero. */
static int write_fats(struct wctx *w)
{
	const struct geom *g = &w->p->g;
	uint32_t n = w->p->used + 2, width = g->fat32 ? 4 : 2;
	uint32_t *fat = azl_xcalloc(n, sizeof(*fat));
	unsigned char *bytes = azl_xcalloc(n, width);
	int r = 0;

	fat[0] = g->fat32 ? 0x0FFFFFF8 : 0xFFF8;
	fat[1] = g->fat32 ? 0x0FFFFFFF : 0xFFFF;
	chain(&w->p->root, fat, g->fat32 ? 0x0FFFFFFF : 0xFFFF);
	for (uint32_t i = 0; i < n; i++) {
		if (g->fat32)
			le32(bytes + 4 * i, fat[i]);
		else
			le16(bytes + 2 * i, fat[i]);
	}
	for (uint32_t k = 0; k < 2 && r == 0; k++)
		r = wr(w, bytes, (size_t)n * width,
		       ((uint64_t)g->reserved + (uint64_t)k * g->fatsz) * SEC);
	free(fat);
	free(bytes);
	return r;
}

static unsigned char sfn_sum(const unsigned char sfn[11])
{
	unsigned char sum = 0;

	for (int i = 0; i < 11; i++)
		sum = (unsigned char)(((sum & 1) << 7) + (sum >> 1) + sfn[i]);
	return sum;
}

static void short_entry(const struct wctx *w, unsigned char *e,
			const unsigned char sfn[11], uint8_t attr,
			uint8_t ncase, uint32_t cluster, uint32_t size)
{
	memcpy(e, sfn, 11);
	e[11] = attr;
	e[12] = ncase;
	le16(e + 14, w->p->time);
	le16(e + 16, w->p->date);
	le16(e + 18, w->p->date);
	le16(e + 20, cluster >> 16);
	le16(e + 22, w->p->time);
	le16(e + 24, w->p->date);
	le16(e + 26, cluster & 0xFFFF);
	le32(e + 28, size);
}

/* VFAT long-name entries, highest ordinal first. */
static unsigned char *lfn_entries(const struct node *n, unsigned char *e)
{
	static const int pos[13] = { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30 };
	size_t len = strlen(n->name);
	unsigned char sum = sfn_sum(n->sfn);

	for (unsigned ord = n->nlfn; ord >= 1; ord--, e += DIRENT) {
		e[0] = (unsigned char)(ord | (ord == n->nlfn ? 0x40 : 0));
		e[11] = 0x0F;
		e[13] = sum;
		for (int i = 0; i < 13; i++) {
			size_t c = (ord - 1) * 13 + (size_t)i;
			uint32_t ch = c < len ? (unsigned char)n->name[c] :
				      c == len ? 0 : 0xFFFF;
			le16(e + pos[i], ch);
		}
	}
	return e;
}

static int write_dir(struct wctx *w, const struct node *d)
{
	const struct geom *g = &w->p->g;
	bool is_root = d == &w->p->root;
	size_t cap = is_root && !g->fat32 ? g->root_secs * SEC :
		     (size_t)d->nclus * g->spc * SEC;
	unsigned char *buf = azl_xcalloc(1, cap), *e = buf;
	int r;

	if (is_root && w->s->label) {
		unsigned char lab[11];
		memset(lab, ' ', 11);
		memcpy(lab, w->s->label, strlen(w->s->label));
		short_entry(w, e, lab, 0x08, 0, 0, 0);
		e += DIRENT;
	} else if (!is_root) {
		uint32_t up = d->parent == &w->p->root ? 0 : d->parent->first;
		short_entry(w, e, (const unsigned char *)".          ", 0x10, 0,
			    d->first, 0);
		short_entry(w, e + DIRENT, (const unsigned char *)"..         ",
			    0x10, 0, up, 0);
		e += 2 * DIRENT;
	}
	for (size_t i = 0; i < d->nkids; i++) {
		const struct node *k = d->kids[i];
		e = lfn_entries(k, e);
		short_entry(w, e, k->sfn, k->dir ? 0x10 : 0x20, k->ncase,
			    k->first, (uint32_t)k->size);
		e += DIRENT;
	}
	r = wr(w, buf, cap, is_root && !g->fat32 ?
	       (uint64_t)(g->reserved + 2 * g->fatsz) * SEC :
	       cluster_pos(g, d->first));
	free(buf);
	return r;
}

static int stream_file(struct wctx *w, const struct node *n)
{
	const struct azl_fat_file *f = n->src;
	uint64_t pos = cluster_pos(&w->p->g, n->first), done = 0;
	char *buf = NULL;
	int fd = -1, r = 0;

	if (!f->host_path)
		return wr(w, f->data, f->len, pos);
	buf = azl_xmalloc(1 << 16);
	if ((fd = open(f->host_path, O_RDONLY | O_CLOEXEC)) < 0) {
		r = azl_errf(w->err, errno, "ESP file %s: %s: %s", f->path,
			     f->host_path, strerror(errno));
		goto out;
	}
	while (done < n->size) {
		size_t want = n->size - done < (1 << 16) ? (size_t)(n->size - done) : (1 << 16);
		ssize_t got = read(fd, buf, want);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			r = azl_errf(w->err, got < 0 ? errno : EIO, "ESP file %s: "
				     "%s: %s", f->path, f->host_path, got < 0 ?
				     strerror(errno) : "file shrank while copying");
			goto out;
		}
		if ((r = wr(w, buf, (size_t)got, pos + done)) < 0)
			goto out;
		done += (uint64_t)got;
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

static int write_tree(struct wctx *w, const struct node *d)
{
	int r;

	if ((r = write_dir(w, d)) < 0)
		return r;
	for (size_t i = 0; i < d->nkids; i++) {
		const struct node *k = d->kids[i];
		if (k->dir)
			r = write_tree(w, k);
		else if (k->size)
			r = stream_file(w, k);
		if (r < 0)
			return r;
	}
	return 0;
}

int azl_fat_write(int fd, uint64_t offset, uint64_t size,
		  uint32_t hidden_sectors, const struct azl_fat_spec *s,
		  const char *what, struct azl_err *err)
{
	struct plan p;
	struct wctx w = { fd, offset, what, s, &p, err };
	uint64_t need = 0;
	int r;

	if ((r = build_tree(&p, s, err)) < 0)
		goto out;
	if ((r = layout(&p, size, s)) == -ENOSPC || r == -EFBIG) {
		if (min_size(&p, s, &need) < 0)
			r = azl_err_input(err, "%s: ESP contents do not fit a "
					  "2 TiB FAT volume", what);
		else
			r = azl_err_input(err, "%s: ESP of %llu MiB is too small: "
					  "the files need %llu MiB", what,
					  (unsigned long long)(size / MIB),
					  (unsigned long long)(need / MIB));
		goto out;
	}
	fat_datetime(s->mtime, &p.date, &p.time);
	if ((r = write_boot(&w, hidden_sectors)) < 0 ||
	    (r = write_fats(&w)) < 0 || (r = write_tree(&w, &p.root)) < 0)
		goto out;
out:
	free_node(&p.root);
	return r;
}
