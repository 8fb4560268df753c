#include "compose/initramfs.h"

#include <errno.h>
#include <stdbool.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "base/fs.h"
#include "reproducible/cpio.h"

const char *const azl_initramfs_default_modules[] = {
	"virtio_pci", "virtio_blk", "virtio_scsi", "sd_mod", "ext4", "nvme",
	"hv_vmbus", "hv_storvsc", "dm_mod", "dm_verity", "overlay", NULL,
};

#define MODULES_MAX (64u << 20) /* one module or metadata file */

static int buf_fn(void *ctx, const void *data, size_t len)
{
	azl_buf_add(ctx, data, len);
	return 0;
}

int azl_model_read(struct azl_fs *fs, const char *path, size_t max,
		   struct azl_buf *b, struct azl_err *err)
{
	struct azl_node *n;
	char *real = NULL;
	int rc = azl_fs_resolve(fs, path, true, &real, err);

	if (rc < 0)
		goto out;
	n = azl_fs_get(fs, real);
	if (!n || n->type != AZL_FT_REG) {
		rc = azl_errf(err, -ENOENT, "%s: no such file in the image", path);
		goto out;
	}
	if (n->size > max) {
		rc = azl_errf(err, -EFBIG, "%s: larger than %zu bytes", path, max);
		goto out;
	}
	azl_buf_reset(b);
	rc = azl_node_read(n, buf_fn, b, err);
	azl_buf_addc(b, 0); /* NUL-terminate text, then drop it from len */
	b->len--;
out:
	free(real);
	return rc;
}

void azl_kernel_release(struct azl_kernel *k)
{
	free(k->version);
	free(k->vmlinuz);
	free(k->modules_dir);
	memset(k, 0, sizeof(*k));
}

/* "/usr/lib/modules/<ver>/vmlinuz" or "/boot/vmlinuz-<ver>": the version. */
static char *kernel_version_of(const char *path)
{
	static const char mod[] = "/usr/lib/modules/", boot[] = "/boot/vmlinuz-";
	const char *v, *slash;

	if (!strncmp(path, mod, sizeof(mod) - 1)) {
		v = path + sizeof(mod) - 1;
		slash = strchr(v, '/');
		if (slash && slash > v && !strcmp(slash, "/vmlinuz"))
			return strndup(v, (size_t)(slash - v));
	} else if (!strncmp(path, boot, sizeof(boot) - 1) && path[sizeof(boot) - 1]) {
		v = path + sizeof(boot) - 1;
		if (!strchr(v, '/'))
			return azl_xstrdup(v);
	}
	return NULL;
}

/* 1 if v is one of the ", "-separated names. */
static int listed(const struct azl_buf *names, const char *v)
{
	size_t n = strlen(v);

	for (const char *p = azl_buf_str(names); (p = strstr(p, v)); p += n)
		if ((p == names->data || p[-1] == ' ') && (!p[n] || p[n] == ','))
			return 1;
	return 0;
}

/* /usr/lib/modules/<ver>, or where /lib/modules/<ver> leads in an image
 * that is not usr-merged. */
static char *modules_dir(struct azl_fs *fs, const char *ver)
{
	struct azl_err e = { 0 };
	char *usr = azl_xasprintf("/usr/lib/modules/%s", ver), *lib, *real = NULL;

	if (azl_fs_get(fs, usr))
		return usr;
	lib = azl_xasprintf("/lib/modules/%s", ver);
	if (azl_fs_resolve(fs, lib, true, &real, &e) == 0 && azl_fs_get(fs, real)) {
		free(usr);
		free(lib);
		return real;
	}
	free(real);
	free(lib);
	return usr;
}

int azl_kernel_find(struct azl_fs *fs, const char *want_ver,
		    struct azl_kernel *k, struct azl_err *err)
{
	struct azl_node *const *nodes = azl_fs_sorted(fs);
	size_t count = azl_fs_count(fs), found = 0;
	struct azl_buf names = AZL_BUF_INIT;
	int rc = 0;

	memset(k, 0, sizeof(*k));
	for (size_t i = 0; i < count; i++) {
		char *v = kernel_version_of(nodes[i]->path);
		if (!v || nodes[i]->type != AZL_FT_REG || (want_ver && strcmp(v, want_ver))) {
			free(v);
			continue;
		}
		if (listed(&names, v)) {
			free(v); /* both layouts of one kernel: keep the first */
			continue;
		}
		azl_buf_addf(&names, "%s%s", found++ ? ", " : "", v);
		if (!k->version) {
			k->version = v;
			k->vmlinuz = azl_xstrdup(nodes[i]->path);
		} else {
			free(v);
		}
	}
	if (!found && want_ver)
		rc = azl_err_input(err, "no kernel %s in the image (no /usr/lib/modules/%s/vmlinuz "
				   "or /boot/vmlinuz-%s)", want_ver, want_ver, want_ver);
	else if (!found)
		rc = azl_err_input(err, "a bootable image needs a kernel: no /usr/lib/modules/*/vmlinuz "
				   "or /boot/vmlinuz-* in the image (add the kernel package)");
	else if (found > 1)
		rc = azl_err_input(err, "several kernels in the image (%s): name one",
				   azl_buf_str(&names));
	if (rc == 0)
		k->modules_dir = modules_dir(fs, k->version);
	else
		azl_kernel_release(k);
	azl_buf_release(&names);
	return rc;
}

/* ---- modules.dep ---- */

struct mod {
	char *name;   /* normalised: '_' for '-', no directory or suffix */
	char *path;   /* as modules.dep writes it */
	char **deps;  /* paths */
	size_t ndeps;
	int state;    /* 0 unvisited, 1 visiting, 2 done */
};

struct moddb {
	struct mod *mods;
	size_t n;
};

static char *mod_name(const char *path, size_t len)
{
	const char *base = path, *ko;
	char *name;

	for (size_t i = 0; i < len; i++)
		if (path[i] == '/')
			base = path + i + 1;
	name = strndup(base, len - (size_t)(base - path));
	ko = strstr(name, ".ko");
	if (ko)
		name[ko - name] = 0;
	for (char *p = name; *p; p++)
		if (*p == '-')
			*p = '_';
	return name;
}

static int mod_cmp(const void *a, const void *b)
{
	return strcmp(((const struct mod *)a)->name, ((const struct mod *)b)->name);
}

static struct mod *mod_find(struct moddb *db, const char *name)
{
	struct mod key = { .name = (char *)name };
	return bsearch(&key, db->mods, db->n, sizeof(key), mod_cmp);
}

static void moddb_free(struct moddb *db)
{
	for (size_t i = 0; i < db->n; i++) {
		free(db->mods[i].name);
		free(db->mods[i].path);
		azl_initramfs_list_free(db->mods[i].deps, db->mods[i].ndeps);
	}
	free(db->mods);
}

/* One line: "path: dep dep ...". */
static void moddb_line(struct moddb *db, char *line)
{
	char *colon = strchr(line, ':'), *tok, *save = NULL;
	struct mod *m;

	if (!colon || colon == line)
		return;
	*colon = 0;
	db->mods = azl_xrealloc(db->mods, (db->n + 1) * sizeof(*db->mods));
	m = &db->mods[db->n++];
	memset(m, 0, sizeof(*m));
	m->path = azl_xstrdup(line);
	m->name = mod_name(line, strlen(line));
	for (tok = strtok_r(colon + 1, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		m->deps = azl_xrealloc(m->deps, (m->ndeps + 1) * sizeof(char *));
		m->deps[m->ndeps++] = azl_xstrdup(tok);
	}
}

static int moddb_load(struct azl_fs *fs, const struct azl_kernel *k,
		      struct moddb *db, struct azl_err *err)
{
	struct azl_buf b = AZL_BUF_INIT;
	char *path = azl_xasprintf("%s/modules.dep", k->modules_dir), *line, *save = NULL;
	int rc = azl_model_read(fs, path, MODULES_MAX, &b, err);

	memset(db, 0, sizeof(*db));
	if (rc < 0) {
		azl_err_prefix(err, "kernel %s: modules.dep is needed for the initramfs "
			       "(run depmod when building the kernel package)", k->version);
		goto out;
	}
	for (line = strtok_r(b.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		moddb_line(db, line);
	qsort(db->mods, db->n, sizeof(*db->mods), mod_cmp);
out:
	free(path);
	azl_buf_release(&b);
	return rc;
}

/* 1 when modules.builtin names the module. */
static int builtin(struct azl_fs *fs, const struct azl_kernel *k, const char *name)
{
	struct azl_buf b = AZL_BUF_INIT;
	struct azl_err e = { 0 };
	char *path = azl_xasprintf("%s/modules.builtin", k->modules_dir), *line, *save = NULL;
	int found = 0;

	if (azl_model_read(fs, path, MODULES_MAX, &b, &e) == 0) {
		for (line = strtok_r(b.data, "\n", &save); line && !found;
		     line = strtok_r(NULL, "\n", &save)) {
			char *n = mod_name(line, strlen(line));
			found = !strcmp(n, name);
			free(n);
		}
	}
	free(path);
	azl_buf_release(&b);
	return found;
}

static void list_add(char ***paths, size_t *n, const char *p)
{
	*paths = azl_xrealloc(*paths, (*n + 1) * sizeof(char *));
	(*paths)[(*n)++] = azl_xstrdup(p);
}

/* Depth first, dependencies first: modules.dep lists the whole closure of
 * each module, so post-order gives a valid load order. */
static int visit(struct moddb *db, struct mod *m, char ***paths, size_t *n,
		 struct azl_err *err)
{
	if (m->state == 2)
		return 0;
	if (m->state == 1)
		return azl_errf(err, -ELOOP, "modules.dep: dependency loop through %s", m->name);
	m->state = 1;
	for (size_t i = m->ndeps; i-- > 0;) {
		char *name = mod_name(m->deps[i], strlen(m->deps[i]));
		struct mod *d = mod_find(db, name);
		int rc = d ? visit(db, d, paths, n, err)
			   : azl_errf(err, -ENOENT, "modules.dep: %s needs %s, which has no entry",
				      m->path, m->deps[i]);
		free(name);
		if (rc < 0)
			return rc;
	}
	m->state = 2;
	list_add(paths, n, m->path);
	return 0;
}

int azl_initramfs_modules(struct azl_fs *fs, const struct azl_kernel *k,
			  const char *const *wanted, int missing_ok,
			  char ***paths, size_t *n, struct azl_err *err)
{
	struct moddb db;
	int rc = moddb_load(fs, k, &db, err);

	*paths = NULL;
	*n = 0;
	for (size_t i = 0; rc == 0 && wanted[i]; i++) {
		char *name = mod_name(wanted[i], strlen(wanted[i]));
		struct mod *m = mod_find(&db, name);
		if (m)
			rc = visit(&db, m, paths, n, err);
		else if (!missing_ok && !builtin(fs, k, name))
			rc = azl_err_input(err, "kernel %s has no module %s (not in modules.dep "
					   "nor modules.builtin)", k->version, wanted[i]);
		free(name);
	}
	if (rc < 0) {
		azl_initramfs_list_free(*paths, *n);
		*paths = NULL;
		*n = 0;
	}
	moddb_free(&db);
	return rc;
}

void azl_initramfs_list_free(char **paths, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

/* ---- the archive ---- */

enum ent_kind { ENT_DIR, ENT_CHR, ENT_MEM, ENT_NODE, ENT_MODULE };

struct ent {
	char *path;          /* in the archive */
	enum ent_kind kind;
	uint32_t mode;
	char *src;           /* ENT_NODE, ENT_MODULE: model path */
	struct azl_buf data; /* ENT_MEM */
};

struct ents {
	struct ent *v;
	size_t n;
};

static struct ent *ent_add(struct ents *e, const char *path, enum ent_kind kind,
			   uint32_t mode)
{
	struct ent *x;

	e->v = azl_xrealloc(e->v, (e->n + 1) * sizeof(*e->v));
	x = &e->v[e->n++];
	memset(x, 0, sizeof(*x));
	x->path = azl_xstrdup(path);
	x->kind = kind;
	x->mode = mode;
	return x;
}

static void ents_free(struct ents *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].path);
		free(e->v[i].src);
		azl_buf_release(&e->v[i].data);
	}
	free(e->v);
}

static int ent_cmp(const void *a, const void *b)
{
	return azl_cpio_path_cmp(((const struct ent *)a)->path, ((const struct ent *)b)->path);
}

/* Every ancestor of every entry as a 0755 directory. */
static void add_parents(struct ents *e)
{
	size_t n = e->n;

	for (size_t i = 0; i < n; i++) {
		char *p = azl_xstrdup(e->v[i].path), *slash;
		while ((slash = strrchr(p, '/')) && slash != p) {
			*slash = 0;
			ent_add(e, p, ENT_DIR, 0755);
		}
		free(p);
	}
}

/* Sort, then drop repeated directories (the first one wins). */
static void ents_finish(struct ents *e)
{
	size_t out = 0;

	add_parents(e);
	qsort(e->v, e->n, sizeof(*e->v), ent_cmp);
	for (size_t i = 0; i < e->n; i++) {
		if (out && !strcmp(e->v[out - 1].path, e->v[i].path)) {
			free(e->v[i].path);
			free(e->v[i].src);
			azl_buf_release(&e->v[i].data);
			continue;
		}
		e->v[out++] = e->v[i];
	}
	e->n = out;
}

/* The module's archive name: compressed suffixes dropped. */
static char *module_plain(const char *path)
{
	char *p = azl_xstrdup(path), *ko = strstr(p, ".ko");
	if (ko)
		ko[3] = 0;
	return p;
}

static int unxz(const struct azl_buf *in, struct azl_buf *out)
{
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_ret r = lzma_stream_decoder(&s, UINT64_MAX, 0);

	s.next_in = (const uint8_t *)in->data;
	s.avail_in = in->len;
	while (r == LZMA_OK) {
		azl_buf_grow(out, 1 << 16);
		s.next_out = (uint8_t *)out->data + out->len;
		s.avail_out = out->cap - out->len - 1;
		r = lzma_code(&s, LZMA_FINISH);
		out->len = out->cap - 1 - s.avail_out;
	}
	lzma_end(&s);
	return r == LZMA_STREAM_END ? 0 : -EIO;
}

static int unzstd(const struct azl_buf *in, struct azl_buf *out)
{
	ZSTD_DStream *d = ZSTD_createDStream();
	ZSTD_inBuffer ib = { in->data, in->len, 0 };
	size_t r = 1;

	while (d && !ZSTD_isError(r) && (r != 0 || ib.pos < ib.size)) {
		ZSTD_outBuffer ob;
		azl_buf_grow(out, 1 << 16);
		ob = (ZSTD_outBuffer){ out->data + out->len, out->cap - out->len - 1, 0 };
		r = ZSTD_decompressStream(d, &ob, &ib);
		out->len += ob.pos;
		if (!ZSTD_isError(r) && r && !ob.pos && ib.pos == ib.size)
			break; /* truncated */
	}
	ZSTD_freeDStream(d);
	return d && r == 0 ? 0 : -EIO;
}

static int ungz(const struct azl_buf *in, struct azl_buf *out)
{
	z_stream z = { 0 };
	int r = inflateInit2(&z, 15 + 32);

	z.next_in = (Bytef *)in->data;
	z.avail_in = (uInt)in->len;
	while (r == Z_OK) {
		azl_buf_grow(out, 1 << 16);
		z.next_out = (Bytef *)out->data + out->len;
		z.avail_out = (uInt)(out->cap - out->len - 1);
		r = inflate(&z, Z_NO_FLUSH);
		out->len = out->cap - 1 - z.avail_out;
	}
	inflateEnd(&z);
	return r == Z_STREAM_END ? 0 : -EIO;
}

/* A module as the kernel loads it: read and, if compressed, decompressed. */
static int module_load(struct azl_fs *fs, const char *src, struct azl_buf *out,
		       struct azl_err *err)
{
	struct azl_buf raw = AZL_BUF_INIT;
	const char *ko = strstr(src, ".ko");
	int rc = azl_model_read(fs, src, MODULES_MAX, &raw, err);

	if (rc < 0 || !ko)
		goto out;
	if (!strcmp(ko, ".ko.xz"))
		rc = unxz(&raw, out);
	else if (!strcmp(ko, ".ko.zst"))
		rc = unzstd(&raw, out);
	else if (!strcmp(ko, ".ko.gz"))
		rc = ungz(&raw, out);
	else if (strcmp(ko, ".ko"))
		rc = azl_errf(err, -ENOTSUP, "%s: unknown module compression", src);
	else {
		azl_buf_release(out);
		*out = raw;
		raw = (struct azl_buf)AZL_BUF_INIT;
	}
	if (rc == -EIO)
		azl_errf(err, rc, "%s: cannot decompress the module", src);
out:
	azl_buf_release(&raw);
	return rc;
}

/* ---- veritysetup and its shared libraries (a verity-protected /usr) ---- */

static const char *const veritysetup_paths[] = {
	"/usr/sbin/veritysetup", "/usr/bin/veritysetup", "/sbin/veritysetup", NULL,
};
static const char *const lib_dirs[] = {
	"/usr/lib64", "/lib64", "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu",
	"/usr/lib/aarch64-linux-gnu", "/usr/lib", "/lib", NULL,
};
#define MAX_LIBS 64u

const char *azl_initramfs_veritysetup(struct azl_fs *fs)
{
	for (size_t i = 0; veritysetup_paths[i]; i++) {
		struct azl_err e = { 0 };
		char *real = NULL;
		int rc = azl_fs_resolve(fs, veritysetup_paths[i], true, &real, &e);
		struct azl_node *n = rc == 0 ? azl_fs_get(fs, real) : NULL;
		free(real);
		if (n && n->type == AZL_FT_REG)
			return veritysetup_paths[i];
	}
	return NULL;
}

static uint64_t le(const unsigned char *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = n; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

/* One program header of a little-endian ELF64 file (the caller checked
 * the identification): false past the last one or outside the file. */
struct phdr {
	uint64_t type, off, vaddr, filesz;
};

static bool elf_is64le(const struct azl_buf *b)
{
	return b->len >= 64 && !memcmp(b->data, "\177ELF\2\1", 6);
}

static bool elf_phdr(const struct azl_buf *b, uint64_t i, struct phdr *ph)
{
	const unsigned char *p = (const unsigned char *)b->data;
	uint64_t phoff = le(p + 32, 8), phent = le(p + 54, 2), phnum = le(p + 56, 2);
	const unsigned char *h;

	if (i >= phnum || phent < 56 || phoff > b->len || (i + 1) * phent > b->len - phoff)
		return false;
	h = p + phoff + i * phent;
	ph->type = le(h, 4);
	ph->off = le(h + 8, 8);
	ph->vaddr = le(h + 16, 8);
	ph->filesz = le(h + 32, 8);
	return true;
}

/* File offset of virtual address va, via the PT_LOAD headers; 0: none. */
static uint64_t elf_va_off(const struct azl_buf *b, uint64_t va)
{
	struct phdr ph;

	for (uint64_t i = 0; elf_phdr(b, i, &ph); i++)
		if (ph.type == 1 && va >= ph.vaddr && va - ph.vaddr < ph.filesz)
			return ph.off + (va - ph.vaddr);
	return 0;
}

/* A NUL-terminated string at off inside the file, or NULL. */
static const char *elf_str(const struct azl_buf *b, uint64_t off)
{
	if (off >= b->len || !memchr(b->data + off, 0, b->len - off))
		return NULL;
	return (const char *)b->data + off;
}

/* The DT_NEEDED names (appended to *names) and PT_INTERP (*interp, when
 * asked and found) of a little-endian ELF64 file; anything else adds
 * nothing.  Every offset is bounds-checked: the file comes from a package. */
static void elf_needs(const struct azl_buf *b, char ***names, size_t *n, char **interp)
{
	const unsigned char *p = (const unsigned char *)b->data;
	uint64_t dyn = 0, dynsz = 0, strtab = 0;
	struct phdr ph;

	if (!elf_is64le(b))
		return;
	for (uint64_t i = 0; elf_phdr(b, i, &ph); i++) {
		if (ph.type == 2) {
			dyn = ph.off;
			dynsz = ph.filesz;
		} else if (ph.type == 3 && interp && !*interp) {
			const char *s = elf_str(b, ph.off);
			if (s && *s == '/')
				*interp = azl_xstrdup(s);
		}
	}
	if (!dyn || dyn > b->len || dynsz > b->len - dyn)
		return;
	for (uint64_t at = dyn; at + 16 <= dyn + dynsz; at += 16)
		if (le(p + at, 8) == 5)
			strtab = elf_va_off(b, le(p + at + 8, 8));
	if (!strtab)
		return;
	for (uint64_t at = dyn; at + 16 <= dyn + dynsz && le(p + at, 8) != 0; at += 16) {
		const char *s;
		if (le(p + at, 8) != 1 || !(s = elf_str(b, strtab + le(p + at + 8, 8))))
			continue;
		if (!*s || strchr(s, '/') || *n >= MAX_LIBS)
			continue;
		*names = azl_xrealloc(*names, (*n + 1) * sizeof(**names));
		(*names)[(*n)++] = azl_xstrdup(s);
	}
}

/* The model path of a library named by DT_NEEDED, or NULL. */
static char *find_lib(struct azl_fs *fs, const char *name)
{
	for (size_t i = 0; lib_dirs[i]; i++) {
		struct azl_err e = { 0 };
		char *path = azl_path_join(lib_dirs[i], name), *real = NULL;
		int rc = azl_fs_resolve(fs, path, true, &real, &e);
		struct azl_node *nd = rc == 0 ? azl_fs_get(fs, real) : NULL;
		free(path);
		if (nd && nd->type == AZL_FT_REG)
			return real;
		free(real);
	}
	return NULL;
}

/* /bin/veritysetup and, under /lib/azl, its loader and the closure of its
 * DT_NEEDED libraries as the image ships them; *ldso is the loader's
 * archive path.  A library the image lacks is a bad-input error naming
 * it. */
static int add_veritysetup(struct azl_fs *fs, const char *tool, struct ents *e,
			   char **ldso, struct azl_err *err)
{
	char **names = NULL, *interp = NULL, *real = NULL;
	size_t n = 0;
	struct azl_buf b = AZL_BUF_INIT;
	struct ent *x;
	int rc = azl_model_read(fs, tool, MODULES_MAX, &b, err);

	if (rc < 0)
		goto out;
	elf_needs(&b, &names, &n, &interp);
	if (!interp) {
		rc = azl_err_input(err, "%s: not a dynamically linked ELF64 program", tool);
		goto out;
	}
	rc = azl_fs_resolve(fs, tool, true, &real, err);
	if (rc < 0)
		goto out;
	x = ent_add(e, "/bin/veritysetup", ENT_NODE, 0755);
	x->src = real;
	real = NULL;
	rc = azl_fs_resolve(fs, interp, true, &real, err);
	if (rc < 0) {
		azl_err_prefix(err, "%s: its loader", tool);
		goto out;
	}
	*ldso = azl_xasprintf("/lib/azl/%s", strrchr(interp, '/') + 1);
	x = ent_add(e, *ldso, ENT_NODE, 0755);
	x->src = real;
	real = NULL;
	for (size_t i = 0; i < n && rc == 0; i++) {
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = !strcmp(names[i], names[j]);
		if (seen || !strcmp(names[i], strrchr(interp, '/') + 1))
			continue;
		char *lib = find_lib(fs, names[i]), *dst;
		if (!lib) {
			rc = azl_err_input(err, "%s needs %s, which the image does not ship", tool, names[i]);
			break;
		}
		rc = azl_model_read(fs, lib, MODULES_MAX, &b, err);
		if (rc == 0)
			elf_needs(&b, &names, &n, NULL);
		dst = azl_xasprintf("/lib/azl/%s", names[i]);
		x = ent_add(e, dst, ENT_NODE, 0755);
		x->src = lib;
		free(dst);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(interp);
	free(real);
	azl_buf_release(&b);
	return rc;
}

/* ---- busybox and /init ---- */

static const char *const busybox_paths[] = {
	"/usr/bin/busybox", "/usr/sbin/busybox", "/bin/busybox", "/sbin/busybox", NULL,
};

/* 1 if the ELF file has a PT_INTERP program header (dynamically linked). */
static int elf_dynamic(const struct azl_buf *b)
{
	struct phdr ph;

	if (!elf_is64le(b))
		return 0; /* not a little-endian ELF64: leave it to the kernel */
	for (uint64_t i = 0; elf_phdr(b, i, &ph); i++)
		if (ph.type == 3)
			return 1;
	return 0;
}

static int find_busybox(struct azl_fs *fs, char **src, struct azl_err *err)
{
	struct azl_buf b = AZL_BUF_INIT;
	int rc = -ENOENT;

	for (size_t i = 0; busybox_paths[i] && rc == -ENOENT; i++) {
		struct azl_err e = { 0 };
		rc = azl_model_read(fs, busybox_paths[i], MODULES_MAX, &b, &e);
		if (rc == 0 && elf_dynamic(&b))
			rc = azl_err_input(err, "%s is dynamically linked: the generated initramfs "
					   "needs a static busybox (or name an initramfs in the manifest)",
					   busybox_paths[i]);
		else if (rc == 0)
			azl_fs_resolve(fs, busybox_paths[i], true, src, &e);
	}
	if (rc == -ENOENT)
		rc = azl_err_input(err, "the image has no busybox (/usr/bin/busybox): the generated "
				   "initramfs runs its /init with the image's static busybox; add a "
				   "busybox package or name an initramfs in the manifest");
	azl_buf_release(&b);
	return rc;
}

static const char init_head[] =
	"#!/bin/busybox sh\n"
	"# azl-compose initramfs: load modules, mount root=, switch_root to init=.\n"
	"bb=/bin/busybox\n"
	"$bb mount -t proc proc /proc\n"
	"$bb mount -t sysfs sysfs /sys\n"
	"$bb mount -t devtmpfs devtmpfs /dev\n";

/* root=PARTUUID= is looked up in the GPT itself: the kernel puts no
 * PARTUUID in uevent and busybox blkid does not report it.  The entry's
 * unique GUID is at byte 16, stored mixed-endian. */
static const char init_tail[] =
	"root= init=/sbin/init opt=ro fstype= shell= usr= usrfstype= vusr= usrhash= unverified= usroff=\n"
	"for a in $($bb cat /proc/cmdline); do\n"
	"\tcase $a in\n"
	"\troot=*) root=${a#root=} ;;\n"
	"\tinit=*) init=${a#init=} ;;\n"
	"\trootfstype=*) fstype=${a#rootfstype=} ;;\n"
	"\trw) opt=rw ;;\n"
	"\tro) opt=ro ;;\n"
	"\trd.shell) shell=1 ;;\n"
	"\tmount.usr=*) usr=${a#mount.usr=} ;;\n"
	"\tmount.usrfstype=*) usrfstype=${a#mount.usrfstype=} ;;\n"
	"\tverity.usr=*) vusr=${a#verity.usr=} ;;\n"
	"\tverity.usrhash=*|usrhash=*) usrhash=${a#*usrhash=} ;;\n"
	"\tazl.usr_unverified) unverified=1 ;;\n"
	"\tsystemd.verity_usr_options=*) usroff=$(echo \"${a#*=}\" | $bb tr , '\\n' | $bb sed -n 's/^hash-offset=//p') ;;\n"
	"\tesac\n"
	"done\n"
	"die() {\n"
	"\techo \"azl-initramfs: $*\"\n"
	"\t[ -n \"$shell\" ] && exec $bb sh\n"
	"\texit 1\n"
	"}\n"
	"guid_at() {\n"
	"\tset -- $($bb od -An -tx1 -j \"$2\" -N 16 \"$1\" 2>/dev/null)\n"
	"\t[ $# -eq 16 ] || return 1\n"
	"\techo \"$4$3$2$1-$6$5-$8$7-$9${10}-${11}${12}${13}${14}${15}${16}\"\n"
	"}\n"
	"num_at() {\n"
	"\tset -- $($bb od -An -tu$3 -j \"$2\" -N $3 \"$1\" 2>/dev/null)\n"
	"\techo \"${1:-0}\"\n"
	"}\n"
	"find_partuuid() {\n"
	"\tfor s in /sys/block/*; do\n"
	"\t\td=/dev/${s##*/}\n"
	"\t\t[ -b \"$d\" ] || continue\n"
	"\t\tss=$($bb cat \"$s/queue/logical_block_size\" 2>/dev/null)\n"
	"\t\t[ -n \"$ss\" ] || continue\n"
	"\t\tlba=$(num_at \"$d\" $((ss + 72)) 8)\n"
	"\t\tesz=$(num_at \"$d\" $((ss + 84)) 4)\n"
	"\t\tfor p in \"$s\"/\"${s##*/}\"*; do\n"
	"\t\t\t[ -f \"$p/partition\" ] || continue\n"
	"\t\t\tn=$($bb cat \"$p/partition\")\n"
	"\t\t\tg=$(guid_at \"$d\" $((lba * ss + (n - 1) * esz + 16)))\n"
	"\t\t\t[ \"$g\" = \"$1\" ] && dev=/dev/${p##*/} && return 0\n"
	"\t\tdone\n"
	"\tdone\n"
	"\treturn 1\n"
	"}\n"
	"find_dev() {\n"
	"\tcase $1 in\n"
	"\tPARTUUID=*) find_partuuid \"$(echo \"${1#PARTUUID=}\" | $bb tr A-F a-f)\" ;;\n"
	"\tUUID=*|LABEL=*) dev=$($bb findfs \"$1\" 2>/dev/null) ;;\n"
	"\t/dev/*) [ -b \"$1\" ] && dev=$1 ;;\n"
	"\t*) false ;;\n"
	"\tesac\n"
	"}\n"
	"wait_dev() {\n"
	"\ti=0\n"
	"\tuntil find_dev \"$1\"; do\n"
	"\t\ti=$((i + 1))\n"
	"\t\t[ $i -gt 300 ] && die \"$2 device '$1' not found\"\n"
	"\t\t$bb sleep 0.1\n"
	"\tdone\n"
	"}\n"
	"wait_dev \"$root\" root\n"
	"$bb mount -o $opt ${fstype:+-t $fstype} \"$dev\" /newroot ||\n"
	"\tdie \"cannot mount $dev ($root) on /newroot\"\n"
	/* /usr on its own partition (mount.usr=, as systemd and Flatcar read
	 * it).  A verity-protected /usr (verity.usrhash=) needs dm-verity set
	 * up, which busybox cannot do: refuse rather than mount it unchecked,
	 * unless the command line says azl.usr_unverified. */
	"if [ -n \"$usr\" ]; then\n"
	"\tif [ -n \"$usrhash\" ] && [ -n \"$ldso\" ]; then\n"
	"\t\twait_dev \"$vusr\" verity.usr\n"
	"\t\t$bb mkdir -p /run/cryptsetup\n"
	"\t\tDM_DISABLE_UDEV=1 LD_LIBRARY_PATH=/lib/azl $ldso /bin/veritysetup open ${usroff:+--hash-offset=$usroff} \"$dev\" usr \"$dev\" \"$usrhash\" ||\n"
	"\t\t\tdie \"veritysetup cannot open /usr ($vusr) with verity.usrhash=$usrhash\"\n"
	"\t\techo \"azl-initramfs: /usr: dm-verity over $dev, root hash $usrhash\"\n"
	"\t\tusr=/dev/mapper/usr\n"
	"\telif [ -n \"$usrhash\" ]; then\n"
	"\t\t[ -n \"$unverified\" ] || die \"/usr is verity-protected (verity.usrhash=) and this initramfs cannot open dm-verity (no veritysetup); refusing to mount it unchecked (azl.usr_unverified overrides)\"\n"
	"\t\techo \"azl-initramfs: WARNING: mounting /usr from $vusr WITHOUT dm-verity (azl.usr_unverified)\"\n"
	"\t\tusr=$vusr\n"
	"\tfi\n"
	"\twait_dev \"$usr\" /usr\n"
	"\t$bb mount -o ro ${usrfstype:+-t $usrfstype} \"$dev\" /newroot/usr ||\n"
	"\t\tdie \"cannot mount $dev ($usr) on /newroot/usr\"\n"
	"fi\n"
	"if [ ! -e \"/newroot$init\" ] && [ ! -L \"/newroot$init\" ]; then\n"
	"\techo \"azl-initramfs: $init not in the image, trying /bin/sh\"\n"
	"\tinit=/bin/sh\n"
	"fi\n"
	"[ -d /newroot/dev ] && $bb mount -o move /dev /newroot/dev\n"
	"$bb umount /proc /sys\n"
	"exec $bb switch_root /newroot \"$init\"\n";

static void init_script(const struct azl_kernel *k, char **mods, size_t n,
			const char *ldso, struct azl_buf *out)
{
	azl_buf_adds(out, init_head);
	azl_buf_addf(out, "ldso=%s\n", ldso ? ldso : "");
	for (size_t i = 0; i < n; i++) {
		char *plain = module_plain(mods[i]);
		azl_buf_addf(out, "$bb insmod %s/%s || echo \"azl-initramfs: insmod %s failed\"\n",
			     k->modules_dir, plain, plain);
		free(plain);
	}
	azl_buf_adds(out, init_tail);
}

static char *module_src(const struct azl_kernel *k, const char *p)
{
	return p[0] == '/' ? azl_xstrdup(p) : azl_xasprintf("%s/%s", k->modules_dir, p);
}

static int collect(struct azl_fs *fs, const struct azl_kernel *k,
		   const struct azl_initramfs_opts *o, struct ents *e,
		   struct azl_err *err)
{
	const char *const *wanted = o->modules ? o->modules : azl_initramfs_default_modules;
	char **mods = NULL, *bb = NULL, *ldso = NULL;
	const char *vs;
	size_t n = 0;
	struct ent *x;
	int rc = find_busybox(fs, &bb, err);

	if (rc == 0)
		rc = azl_initramfs_modules(fs, k, wanted, !o->modules, &mods, &n, err);
	if (rc == 0 && o->verity && (vs = azl_initramfs_veritysetup(fs)))
		rc = add_veritysetup(fs, vs, e, &ldso, err);
	if (rc < 0)
		goto out;
	x = ent_add(e, "/bin/busybox", ENT_NODE, 0755);
	x->src = bb;
	bb = NULL;
	ent_add(e, "/dev/console", ENT_CHR, 0600);
	ent_add(e, "/proc", ENT_DIR, 0555);
	ent_add(e, "/sys", ENT_DIR, 0555);
	ent_add(e, "/newroot", ENT_DIR, 0755);
	for (size_t i = 0; i < n; i++) {
		char *src = module_src(k, mods[i]), *plain = module_plain(src);
		x = ent_add(e, plain, ENT_MODULE, 0644);
		x->src = src;
		free(plain);
	}
	x = ent_add(e, "/init", ENT_MEM, 0755);
	init_script(k, mods, n, ldso, &x->data);
	ents_finish(e);
out:
	free(bb);
	free(ldso);
	azl_initramfs_list_free(mods, n);
	return rc;
}

struct node_ctx {
	struct azl_cpio *c;
	struct azl_err *err;
};

static int node_fn(void *ctx, const void *data, size_t len)
{
	struct node_ctx *nc = ctx;
	return azl_cpio_data(nc->c, data, len, nc->err);
}

static int write_ent(struct azl_fs *fs, struct azl_cpio *c, struct ent *x,
		     struct azl_err *err)
{
	struct azl_node *n;
	struct node_ctx nc = { c, err };
	int rc;

	switch (x->kind) {
	case ENT_DIR:
		return azl_cpio_dir(c, x->path, x->mode, err);
	case ENT_CHR:
		return azl_cpio_chr(c, x->path, x->mode, 5, 1, err);
	case ENT_MEM:
		return azl_cpio_file_mem(c, x->path, x->mode, x->data.data, x->data.len, err);
	case ENT_MODULE:
		rc = module_load(fs, x->src, &x->data, err);
		if (rc == 0)
			rc = azl_cpio_file_mem(c, x->path, x->mode, x->data.data, x->data.len, err);
		azl_buf_release(&x->data); /* one module in memory at a time */
		return rc;
	case ENT_NODE:
		n = azl_fs_get(fs, x->src);
		if (!n)
			return azl_errf(err, -ENOENT, "%s: vanished from the model", x->src);
		rc = azl_cpio_file(c, x->path, x->mode, n->size, err);
		return rc < 0 ? rc : azl_node_read(n, node_fn, &nc, err);
	}
	return -EINVAL;
}

int azl_initramfs_write(struct azl_fs *fs, const struct azl_kernel *k,
			const struct azl_initramfs_opts *o,
			int (*sink)(void *ctx, const void *data, size_t len),
			void *sink_ctx, struct azl_zstream_result *res,
			struct azl_err *err)
{
	struct ents e = { 0 };
	struct azl_cpio *c = NULL;
	int rc = collect(fs, k, o, &e, err);

	if (rc == 0)
		rc = azl_cpio_open(o->comp, o->mtime, sink, sink_ctx, &c, err);
	for (size_t i = 0; rc == 0 && i < e.n; i++)
		rc = write_ent(fs, c, &e.v[i], err);
	if (rc == 0) {
		rc = azl_cpio_close(c, res, err);
		c = NULL;
	}
	azl_cpio_free(c);
	ents_free(&e);
	if (rc < 0)
		azl_err_prefix(err, "initramfs for kernel %s", k->version);
	return rc;
}
