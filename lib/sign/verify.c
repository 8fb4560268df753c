/* azl-compose verify's checks (sign/verify.h): every file SHA256SUMS
 * lists, its signature, and with a lockfile the image's package set. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <jansson.h>
#include <rpm/header.h>
#include <rpm/rpmtag.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/inspect.h"
#include "compose/lock.h"
#include "sign/blobsig.h"
#include "sign/keys.h"
#include "sign/sbom.h"
#include "sign/verify.h"

static void add_check(struct azl_verify_report *rep, bool ok, char *what, char *detail)
{
	rep->v = azl_xrealloc(rep->v, (rep->n + 1) * sizeof(*rep->v));
	rep->v[rep->n++] = (struct azl_verify_check){ what, ok, detail };
}

int azl_verify_parse_sums(char *text, struct azl_verify_sum **out, size_t *n,
			  struct azl_err *err)
{
	char *save = NULL;
	*out = NULL;
	*n = 0;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strlen(line) < 67 || line[64] != ' ' || (line[65] != ' ' && line[65] != '*'))
			goto bad;
		line[64] = '\0';
		if (!azl_is_sha256_hex(line) || strchr(line + 66, '/'))
			goto bad;
		*out = azl_xrealloc(*out, (*n + 1) * sizeof(**out));
		memcpy((*out)[*n].sha256, line, 65);
		(*out)[(*n)++].name = line + 66;
	}
	return 0;
bad:
	/* strtok_r skips empty lines, so count the entries, not the lines. */
	azl_errf(err, -EBADMSG, "SHA256SUMS: entry %zu is not \"HEX  NAME\" with a NAME "
		 "free of '/'", *n + 1);
	free(*out);
	*out = NULL;
	*n = 0;
	return -EBADMSG;
}

static void check_file(struct azl_verify_report *rep, const char *dir,
		       const struct azl_verify_sum *e)
{
	struct azl_err err = { 0 };
	char *path = azl_path_join(dir, e->name), hex[65];
	char *what = azl_xasprintf("file %s", e->name);

	if (azl_sha256_file(path, hex, NULL, &err) < 0)
		add_check(rep, false, what, azl_xstrdup(err.msg));
	else if (strcmp(hex, e->sha256))
		add_check(rep, false, what, azl_xasprintf("%s: sha256 %s, SHA256SUMS says %s",
							  path, hex, e->sha256));
	else
		add_check(rep, true, what, NULL);
	free(path);
}

static void check_signature(struct azl_verify_report *rep, const char *dir, const char *key_path)
{
	struct azl_err err = { 0 };
	EVP_PKEY *key = NULL;
	enum azl_key_type t;
	char *sums = azl_path_join(dir, "SHA256SUMS");
	int r = azl_key_load_public(key_path, &key, &t, &err);

	if (r == 0)
		r = azl_blob_verify_file(key, sums, &err);
	add_check(rep, r == 0, azl_xstrdup("signature SHA256SUMS.sig"),
		  r == 0 ? NULL : azl_xstrdup(err.msg));
	EVP_PKEY_free(key);
	free(sums);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Compare two sorted string sets; a description of the first differences
 * (caller frees), NULL when equal. */
static char *set_diff(char **a, size_t na, char **b, size_t nb,
		      const char *a_name, const char *b_name)
{
	struct azl_buf d = AZL_BUF_INIT;
	size_t i = 0, j = 0, shown = 0;

	qsort(a, na, sizeof(*a), cmp_str);
	qsort(b, nb, sizeof(*b), cmp_str);
	while ((i < na || j < nb) && shown < 8) {
		int c = i >= na ? 1 : j >= nb ? -1 : strcmp(a[i], b[j]);
		if (c == 0) {
			i++, j++;
			continue;
		}
		azl_buf_addf(&d, "%s%s only in %s", shown ? "; " : "",
			     c < 0 ? a[i] : b[j], c < 0 ? a_name : b_name);
		c < 0 ? i++ : j++;
		shown++;
	}
	return d.len ? azl_buf_detach(&d) : NULL;
}

/* "nevra sha256" strings of the lock's packages; caller frees each. */
static char **lock_strings(const struct azl_lock *lock)
{
	char **v = azl_xcalloc(lock->npkgs + 1, sizeof(*v));
	for (size_t i = 0; i < lock->npkgs; i++) {
		char *nevra = azl_lock_pkg_nevra(&lock->pkgs[i]);
		v[i] = azl_xasprintf("%s sha256:%s", nevra, lock->pkgs[i].sha256);
		free(nevra);
	}
	return v;
}

static void check_sbom_packages(struct azl_verify_report *rep, const char *dir, const char *sbom,
				const struct azl_lock *lock, const char *lock_path)
{
	struct azl_err err = { 0 };
	struct azl_sbom_pkg *pkgs = NULL;
	size_t n = 0;
	char *path = azl_path_join(dir, sbom), **a = NULL, **b = NULL, *diff = NULL;
	char *what = azl_xasprintf("packages %s == %s", sbom, lock_path);

	if (azl_sbom_read_packages(path, &pkgs, &n, &err) < 0) {
		add_check(rep, false, what, azl_xstrdup(err.msg));
		goto out;
	}
	a = azl_xcalloc(n + 1, sizeof(*a));
	for (size_t i = 0; i < n; i++)
		a[i] = azl_xasprintf("%s sha256:%s", pkgs[i].nevra, pkgs[i].sha256);
	b = lock_strings(lock);
	diff = set_diff(a, n, b, lock->npkgs, sbom, lock_path);
	add_check(rep, diff == NULL, what, diff);
out:
	azl_strv_free(a, n);
	azl_strv_free(b, lock->npkgs);
	azl_sbom_pkgs_free(pkgs, n);
	free(path);
}

/* The first listed name ending in suffix, or NULL. */
static const char *find_listed(const struct azl_verify_sum *e, size_t n, const char *suffix)
{
	size_t ls = strlen(suffix);
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(e[i].name);
		if (l > ls && !strcmp(e[i].name + l - ls, suffix))
			return e[i].name;
	}
	return NULL;
}

/* --- the image's own rpmdb ------------------------------------------------
 * The OCI archive holds index.json -> manifest -> layer blobs; the layer is
 * read from inside the outer tar as a stream (never unpacked whole), and
 * only var/lib/rpm/rpmdb.sqlite is copied out, to a private temporary
 * directory, because sqlite reads files. */

/* Small entries of the outer tar (index.json, manifests), by name. */
struct oci_small {
	char **names, **data;
	size_t n;
};

static void oci_small_free(struct oci_small *s)
{
	azl_strv_free(s->names, s->n);
	azl_strv_free(s->data, s->n);
}

static const char *oci_small_get(const struct oci_small *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->names[i], name))
			return s->data[i];
	return NULL;
}

static struct archive *open_outer(const char *path)
{
	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK) {
		archive_read_free(a);
		return NULL;
	}
	return a;
}

static int read_small_entries(const char *path, struct oci_small *s, struct azl_err *err)
{
	struct archive *a = open_outer(path);
	struct archive_entry *e;

	if (!a)
		return azl_errf(err, -EIO, "%s: cannot open the OCI archive", path);
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		la_int64_t size = archive_entry_size(e);
		char *buf;
		if (size > (1 << 20) || archive_entry_filetype(e) != AE_IFREG)
			continue;
		buf = azl_xmalloc((size_t)size + 1);
		if (archive_read_data(a, buf, (size_t)size) != size) {
			free(buf);
			break;
		}
		buf[size] = '\0';
		s->names = azl_xrealloc(s->names, (s->n + 1) * sizeof(char *));
		s->data = azl_xrealloc(s->data, (s->n + 1) * sizeof(char *));
		s->names[s->n] = azl_xstrdup(archive_entry_pathname(e));
		s->data[s->n++] = buf;
	}
	archive_read_free(a);
	return 0;
}

/* "blobs/sha256/<hex>" of the first layer; caller frees. */
static char *first_layer(const struct oci_small *s, const char *path, struct azl_err *err)
{
	const char *idx = oci_small_get(s, "index.json"), *d, *man;
	json_t *ij = idx ? json_loads(idx, 0, NULL) : NULL, *mj = NULL;
	char *blob = NULL, *res = NULL;

	d = json_string_value(json_object_get(json_array_get(json_object_get(ij, "manifests"), 0), "digest"));
	if (d && !strncmp(d, "sha256:", 7)) {
		blob = azl_xasprintf("blobs/sha256/%s", d + 7);
		man = oci_small_get(s, blob);
		mj = man ? json_loads(man, 0, NULL) : NULL;
		d = json_string_value(json_object_get(json_array_get(json_object_get(mj, "layers"), 0), "digest"));
		if (d && !strncmp(d, "sha256:", 7))
			res = azl_xasprintf("blobs/sha256/%s", d + 7);
	}
	if (!res)
		azl_errf(err, -EBADMSG, "%s: no layer found through index.json and its manifest", path);
	json_decref(ij);
	json_decref(mj);
	free(blob);
	return res;
}

static la_ssize_t inner_read(struct archive *inner, void *outer, const void **buf)
{
	static char block[65536];
	(void)inner;
	*buf = block;
	return archive_read_data(outer, block, sizeof(block));
}

/* Copy the current entry of `in` to path. */
static int copy_entry(struct archive *in, const char *path, struct azl_err *err)
{
	FILE *f = fopen(path, "wb");
	char buf[65536];
	la_ssize_t n;
	int r = 0;

	if (!f)
		return azl_errf(err, -errno, "%s: %s", path, strerror(errno));
	while ((n = archive_read_data(in, buf, sizeof(buf))) > 0)
		if (fwrite(buf, 1, (size_t)n, f) != (size_t)n)
			r = azl_errf(err, -EIO, "%s: write failed", path);
	if (n < 0 && r == 0)
		r = azl_errf(err, -EIO, "layer: %s", archive_error_string(in));
	if (fclose(f) != 0 && r == 0)
		r = azl_errf(err, -EIO, "%s: write failed", path);
	return r;
}

/* Within the open layer stream, find var/lib/rpm/rpmdb.sqlite. */
static int extract_from_layer(struct archive *outer, const char *dst, struct azl_err *err)
{
	struct archive *in = archive_read_new();
	struct archive_entry *e;
	int r = -ENOENT;

	archive_read_support_filter_all(in);
	archive_read_support_format_tar(in);
	if (archive_read_open(in, outer, NULL, inner_read, NULL) != ARCHIVE_OK) {
		r = azl_errf(err, -EIO, "layer: %s", archive_error_string(in));
		goto out;
	}
	while (archive_read_next_header(in, &e) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		if (!strncmp(name, "./", 2))
			name += 2;
		if (!strcmp(name, "var/lib/rpm/rpmdb.sqlite")) {
			r = copy_entry(in, dst, err);
			break;
		}
	}
	if (r == -ENOENT)
		azl_errf(err, r, "the layer holds no var/lib/rpm/rpmdb.sqlite");
out:
	archive_read_free(in);
	return r;
}

static int extract_rpmdb(const char *oci, const char *layer, const char *dst,
			 struct azl_err *err)
{
	struct archive *a = open_outer(oci);
	struct archive_entry *e;
	int r = azl_errf(err, -ENOENT, "%s: %s is missing", oci, layer);

	while (a && archive_read_next_header(a, &e) == ARCHIVE_OK)
		if (!strcmp(archive_entry_pathname(e), layer)) {
			azl_err_clear(err);
			r = extract_from_layer(a, dst, err);
			break;
		}
	if (a)
		archive_read_free(a);
	return r < 0 ? azl_err_prefix(err, "%s", oci) : 0;
}

/* name-[epoch:]version-release.arch, as azl_lock_pkg_nevra spells it. */
static char *header_nevra(Header h)
{
	uint64_t epoch = headerGetNumber(h, RPMTAG_EPOCH);
	const char *arch = headerGetString(h, RPMTAG_ARCH);
	char ep[32] = "";

	if (epoch)
		snprintf(ep, sizeof(ep), "%llu:", (unsigned long long)epoch);
	return azl_xasprintf("%s-%s%s-%s.%s", headerGetString(h, RPMTAG_NAME), ep,
			     headerGetString(h, RPMTAG_VERSION),
			     headerGetString(h, RPMTAG_RELEASE), arch ? arch : "noarch");
}

static int query_rpmdb(const char *db_path, char ***nevras, size_t *n, struct azl_err *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL);
	int r = 0;

	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "SELECT blob FROM Packages ORDER BY hnum", -1, &st, NULL);
	while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		const void *blob = sqlite3_column_blob(st, 0);
		int len = sqlite3_column_bytes(st, 0);
		/* headerImport dereferences a NULL (empty or NULL column) blob. */
		Header h = blob && len > 0 ? headerImport((void *)blob, (unsigned)len,
							  HEADERIMPORT_COPY) : NULL;
		if (!h) {
			r = azl_errf(err, -EBADMSG, "rpmdb.sqlite: a header does not parse");
			break;
		}
		/* A damaged or crafted image may hold a header without them;
		 * header_nevra and the strcmp need all three. */
		if (!headerGetString(h, RPMTAG_NAME) || !headerGetString(h, RPMTAG_VERSION) ||
		    !headerGetString(h, RPMTAG_RELEASE)) {
			r = azl_errf(err, -EBADMSG, "rpmdb.sqlite: a header has no name, "
				     "version or release");
			headerFree(h);
			break;
		}
		if (strcmp(headerGetString(h, RPMTAG_NAME), "gpg-pubkey")) {
			*nevras = azl_xrealloc(*nevras, (*n + 1) * sizeof(char *));
			(*nevras)[(*n)++] = header_nevra(h);
		}
		headerFree(h);
	}
	if (rc != SQLITE_OK)
		r = azl_errf(err, -EIO, "rpmdb.sqlite: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return r;
}

int azl_verify_rpmdb_nevras(const char *db_path, char ***nevras, size_t *n,
			    struct azl_err *err)
{
	int r;

	*nevras = NULL;
	*n = 0;
	r = query_rpmdb(db_path, nevras, n, err);
	if (r < 0) {
		azl_strv_free(*nevras, *n);
		*nevras = NULL;
		*n = 0;
	}
	return r;
}

void azl_verify_nevras_free(char **nevras, size_t n)
{
	azl_strv_free(nevras, n);
}

int azl_verify_oci_nevras(const char *oci, char ***nevras, size_t *n,
			  struct azl_err *err)
{
	struct oci_small s = { 0 };
	const char *tmp = getenv("TMPDIR");
	char *dir = azl_xasprintf("%s/azl-verify.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	char *db = NULL, *layer = NULL;
	int r;

	*nevras = NULL;
	*n = 0;
	if (!mkdtemp(dir)) {
		r = azl_errf(err, -errno, "%s: %s", dir, strerror(errno));
		free(dir);
		return r;
	}
	db = azl_path_join(dir, "rpmdb.sqlite");
	r = read_small_entries(oci, &s, err);
	if (r == 0 && !(layer = first_layer(&s, oci, err)))
		r = -EBADMSG;
	if (r == 0)
		r = extract_rpmdb(oci, layer, db, err);
	if (r == 0)
		r = azl_verify_rpmdb_nevras(db, nevras, n, err);
	unlink(db);
	rmdir(dir);
	oci_small_free(&s);
	free(layer);
	free(db);
	free(dir);
	return r;
}

/* One check: the NEVRAs an image's rpmdb lists (label names them) equal
 * the lockfile's.  Takes what. */
static void check_nevras(struct azl_verify_report *rep, char *what, char **a, size_t n,
			 const char *label, const struct azl_lock *lock, const char *lock_path)
{
	char **b = azl_xcalloc(lock->npkgs + 1, sizeof(*b)), *diff;

	for (size_t i = 0; i < lock->npkgs; i++)
		b[i] = azl_lock_pkg_nevra(&lock->pkgs[i]);
	diff = set_diff(a, n, b, lock->npkgs, label, lock_path);
	add_check(rep, diff == NULL, what, diff);
	azl_strv_free(b, lock->npkgs);
}

static void check_rpmdb_packages(struct azl_verify_report *rep, const char *dir, const char *oci,
				 const struct azl_lock *lock, const char *lock_path)
{
	struct azl_err err = { 0 };
	char *path = azl_path_join(dir, oci), **a = NULL;
	char *what = azl_xasprintf("packages %s:/var/lib/rpm == %s", oci, lock_path);
	size_t n = 0;

	if (azl_verify_oci_nevras(path, &a, &n, &err) < 0) {
		add_check(rep, false, what, azl_xstrdup(err.msg));
		free(path);
		return;
	}
	check_nevras(rep, what, a, n, "the image's rpmdb", lock, lock_path);
	azl_strv_free(a, n);
	free(path);
}

/* A disk output's own rpmdb, read through libguestfs (compose/inspect.h):
 * Linux's GPT and ext4 code reads the root filesystem, independently of
 * the writers that made it. */
static void check_disk_rpmdb(struct azl_verify_report *rep, const char *dir, const char *disk,
			     const struct azl_lock *lock, const char *lock_path)
{
	struct azl_err err = { 0 };
	struct azl_inspect in = { 0 };
	char *path = azl_path_join(dir, disk);
	char *what = azl_xasprintf("packages %s:/var/lib/rpm == %s", disk, lock_path);

	if (azl_inspect_disk(path, &in, &err) < 0 || in.root < 0) {
		add_check(rep, false, what, azl_xstrdup(err.msg[0] ? err.msg :
				"no filesystem of the disk holds /var/lib/rpm/rpmdb.sqlite"));
		azl_inspect_release(&in);
		free(path);
		return;
	}
	check_nevras(rep, what, in.pkgs, in.npkgs, "the disk's rpmdb", lock, lock_path);
	azl_inspect_release(&in);
	free(path);
}

static void check_packages(struct azl_verify_report *rep, const char *dir, const char *lock_path,
			   const struct azl_verify_sum *e, size_t n)
{
	struct azl_err err = { 0 };
	struct azl_lock *lock = NULL;
	const char *sbom = find_listed(e, n, ".spdx.json");
	const char *oci = find_listed(e, n, ".oci.tar");

	if (azl_lock_read(lock_path, &lock, &err) < 0) {
		add_check(rep, false, azl_xasprintf("lockfile %s", lock_path), azl_xstrdup(err.msg));
		return;
	}
	if (sbom)
		check_sbom_packages(rep, dir, sbom, lock, lock_path);
	else
		add_check(rep, false, azl_xstrdup("packages (SBOM)"),
			  azl_xstrdup("SHA256SUMS lists no NAME.spdx.json"));
	if (oci)
		check_rpmdb_packages(rep, dir, oci, lock, lock_path);
	for (size_t i = 0; i < n; i++) {
		const char *d = e[i].name;
		size_t l = strlen(d);
		if ((l > 4 && !strcmp(d + l - 4, ".vhd")) || (l > 4 && !strcmp(d + l - 4, ".img")))
			check_disk_rpmdb(rep, dir, d, lock, lock_path);
	}
	azl_lock_free(lock);
}

int azl_verify_dir(const struct azl_verify_opts *a, struct azl_verify_report *rep,
		   struct azl_err *err)
{
	char *sums_path = azl_path_join(a->dir, "SHA256SUMS"), *text = NULL;
	struct azl_verify_sum *e = NULL;
	size_t len = 0, n = 0;
	int r;

	if ((r = azl_read_file(sums_path, 0, &text, &len, err)) < 0) {
		add_check(rep, false, azl_xstrdup("file SHA256SUMS"), azl_xstrdup(err->msg));
		goto out;
	}
	check_signature(rep, a->dir, a->key);
	if (azl_verify_parse_sums(text, &e, &n, err) < 0 || n == 0) {
		r = azl_errf(err, -EBADMSG, "%s: not in sha256sum's format", sums_path);
		add_check(rep, false, azl_xstrdup("file SHA256SUMS"), azl_xstrdup(err->msg));
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		check_file(rep, a->dir, &e[i]);
	if (a->lock)
		check_packages(rep, a->dir, a->lock, e, n);
out:
	free(e);
	free(text);
	free(sums_path);
	return r;
}

bool azl_verify_report_ok(const struct azl_verify_report *rep)
{
	for (size_t i = 0; i < rep->n; i++)
		if (!rep->v[i].ok)
			return false;
	return true;
}

void azl_verify_report_release(struct azl_verify_report *rep)
{
	for (size_t i = 0; i < rep->n; i++) {
		free(rep->v[i].what);
		free(rep->v[i].detail);
	}
	free(rep->v);
	rep->v = NULL;
	rep->n = 0;
}
