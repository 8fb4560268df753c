/* Repository metadata: repomd.xml via libxml2, primary/filelists via
 * libsolv's rpm-md loader. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <solv/pool.h>
#include <solv/repo.h>
#include <solv/repo_rpmmd.h>
#include <solv/repo_solv.h>
#include <solv/repo_write.h>
#include <solv/solv_xfopen.h>
#include <solv/solvversion.h>
#include <zstd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/repo.h"

#define REPOMD_MAX_SIZE (16u << 20)

/* ---- repomd.xml ---- */

static int is_elem(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

static const xmlNode *child(const xmlNode *n, const char *name)
{
	for (const xmlNode *c = n->children; c; c = c->next)
		if (is_elem(c, name))
			return c;
	return NULL;
}

/* <checksum type="sha256">hex</checksum>: only sha256 is pinned. */
static int read_checksum(const xmlNode *data, const char *type, const char *url,
			 char out[65], struct azl_err *err)
{
	const xmlNode *c = child(data, "checksum");
	xmlChar *t = c ? xmlGetProp(c, (const xmlChar *)"type") : NULL;
	xmlChar *v = c ? xmlNodeGetContent(c) : NULL;
	int rc = 0;

	if (!c || !t || !v)
		rc = azl_errf(err, -EBADMSG, "%s: <data type=\"%s\"> has no <checksum>",
			      url, type);
	else if (strcmp((const char *)t, "sha256"))
		rc = azl_errf(err, -ENOTSUP, "%s: <data type=\"%s\"> uses a %s checksum; "
			      "azl-compose pins sha256 (createrepo_c --checksum sha256)",
			      url, type, (const char *)t);
	else if (!azl_is_sha256_hex((const char *)v))
		rc = azl_errf(err, -EBADMSG, "%s: <data type=\"%s\">: checksum '%s' is "
			      "not 64 lowercase hex digits", url, type, (const char *)v);
	else
		memcpy(out, v, 65);
	xmlFree(t);
	xmlFree(v);
	return rc;
}

static int read_data(const xmlNode *data, const char *type, const char *url,
		     struct azl_repo_file *f, struct azl_err *err)
{
	const xmlNode *loc = child(data, "location"), *size = child(data, "size");
	xmlChar *href = loc ? xmlGetProp(loc, (const xmlChar *)"href") : NULL;
	int rc;

	if (!href || !*href) {
		rc = azl_errf(err, -EBADMSG, "%s: <data type=\"%s\"> has no <location href>",
			      url, type);
		goto out;
	}
	if ((rc = read_checksum(data, type, url, f->sha256, err)))
		goto out;
	free(f->href);
	f->href = azl_xstrdup((const char *)href);
	if (size) {
		xmlChar *v = xmlNodeGetContent(size);
		f->size = v ? strtoull((const char *)v, NULL, 10) : 0;
		xmlFree(v);
	}
out:
	xmlFree(href);
	return rc;
}

static int walk_repomd(const xmlNode *root, const char *url, struct azl_repo_md *md,
		       struct azl_err *err)
{
	int rc;

	if (!root || !is_elem(root, "repomd"))
		return azl_errf(err, -EBADMSG, "%s: not a repomd.xml (no <repomd> root)", url);
	for (const xmlNode *c = root->children; c; c = c->next) {
		xmlChar *type;
		struct azl_repo_file *f = NULL;

		if (!is_elem(c, "data"))
			continue;
		type = xmlGetProp(c, (const xmlChar *)"type");
		if (type && !strcmp((const char *)type, "primary"))
			f = &md->primary;
		else if (type && !strcmp((const char *)type, "filelists"))
			f = &md->filelists;
		rc = f ? read_data(c, (const char *)type, url, f, err) : 0;
		xmlFree(type);
		if (rc)
			return rc;
	}
	if (!md->primary.href)
		return azl_errf(err, -EBADMSG, "%s: no <data type=\"primary\"> entry", url);
	return 0;
}

int azl_repo_parse_repomd(const char *xml, size_t len, const char *url,
			  struct azl_repo_md *md, struct azl_err *err)
{
	xmlDoc *doc;
	int rc;

	doc = xmlReadMemory(xml, (int)len, url, NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc) {
		const xmlError *e = xmlGetLastError();
		return azl_errf(err, -EBADMSG, "%s: invalid XML at line %d: %s", url,
				e ? e->line : 0, e && e->message ? e->message : "parse error");
	}
	rc = walk_repomd(xmlDocGetRootElement(doc), url, md, err);
	xmlFreeDoc(doc);
	return rc;
}

int azl_repo_fetch_repomd(const char *id, const char *baseurl,
			  const struct azl_fetch_opts *fo, struct azl_repo_md *md,
			  struct azl_err *err)
{
	char *url = azl_xasprintf("%srepodata/repomd.xml", baseurl);
	char *xml = NULL;
	size_t len = 0;
	int rc;

	md->id = azl_xstrdup(id);
	md->baseurl = azl_xstrdup(baseurl);
	if ((rc = azl_fetch_to_memory(fo, url, REPOMD_MAX_SIZE, &xml, &len, err)))
		goto out;
	azl_sha256_hex(xml, len, md->repomd_sha256);
	rc = azl_repo_parse_repomd(xml, len, url, md, err);
out:
	if (rc)
		azl_err_prefix(err, "repo %s", id);
	free(xml);
	free(url);
	return rc;
}

/* ---- primary / filelists ---- */

static const char *base_name(const char *href)
{
	const char *s = strrchr(href, '/');
	return s ? s + 1 : href;
}

int azl_repo_fetch_file(const struct azl_repo_md *md, const struct azl_repo_file *f,
			const char *what, const struct azl_fetch_opts *fo,
			const char *dir, char **path, struct azl_err *err)
{
	char *url = azl_xasprintf("%s%s", md->baseurl, f->href);
	/* Keep the suffix: solv_xfopen picks the decompressor from it. */
	char *dest = azl_xasprintf("%s/%s-%s", dir, md->id, base_name(f->href));
	char got[65];
	int rc;

	*path = NULL;
	if ((rc = azl_fetch_to_file(fo, url, dest, NULL, 0, what, err)))
		goto out;
	if ((rc = azl_sha256_file(dest, got, NULL, err)))
		goto out;
	if (strcmp(got, f->sha256)) {
		rc = azl_errf(err, -EBADMSG, "%s %s: checksum mismatch: repomd.xml says "
			      "sha256:%s, the file has sha256:%s", what, url, f->sha256, got);
		goto out;
	}
	*path = dest;
	dest = NULL;
out:
	if (rc) {
		unlink(dest);
		azl_err_prefix(err, "repo %s", md->id);
	}
	free(dest);
	free(url);
	return rc;
}

/* libsolv 0.7.23's zstd reader spins forever on a stream cut inside a
 * frame header (a 4-byte file is enough; found by fuzzing), so .zst
 * metadata goes through this reader instead: input that ends inside a
 * frame is a read error. */
struct zst_in {
	FILE *f;
	ZSTD_DStream *d;
	ZSTD_inBuffer in;
	size_t last;   /* ZSTD_decompressStream's last hint: 0 between frames */
	bool eof;
	char buf[65536];
};

static ssize_t zst_read(void *cookie, char *out, size_t len)
{
	struct zst_in *z = cookie;
	ZSTD_outBuffer ob = { out, len, 0 };

	while (len && ob.pos == 0) {
		if (z->in.pos == z->in.size && !z->eof) {
			z->in.size = fread(z->buf, 1, sizeof(z->buf), z->f);
			z->in.pos = 0;
			z->eof = z->in.size == 0;
		}
		if (z->eof && z->in.pos == z->in.size) {
			if (z->last == 0)
				return 0;
			errno = EIO; /* truncated frame */
			return -1;
		}
		z->last = ZSTD_decompressStream(z->d, &ob, &z->in);
		if (ZSTD_isError(z->last)) {
			errno = EIO;
			return -1;
		}
	}
	return (ssize_t)ob.pos;
}

static int zst_close(void *cookie)
{
	struct zst_in *z = cookie;
	int rc = fclose(z->f);

	ZSTD_freeDStream(z->d);
	free(z);
	return rc;
}

/* solv_xfopen, except for zstd (above). */
static FILE *metadata_open(const char *path)
{
	const char *dot = strrchr(path, '.');
	cookie_io_functions_t io = { .read = zst_read, .close = zst_close };
	struct zst_in *z;
	FILE *fp;

	if (!dot || (strcmp(dot, ".zst") && strcmp(dot, ".zstd")))
		return solv_xfopen(path, "r");
	z = azl_xcalloc(1, sizeof(*z));
	z->f = fopen(path, "rb");
	z->d = ZSTD_createDStream();
	z->in.src = z->buf;
	fp = z->f && z->d ? fopencookie(z, "r", io) : NULL;
	if (!fp) {
		int e = errno;
		if (z->f)
			fclose(z->f);
		ZSTD_freeDStream(z->d);
		free(z);
		errno = e;
	}
	return fp;
}

int azl_repo_add_rpmmd(Repo *repo, const char *path, int flags,
		       const char *label, struct azl_err *err)
{
	FILE *fp = metadata_open(path);
	int rc = 0;

	if (!fp)
		return azl_errf(err, -errno ? -errno : -EIO, "%s: cannot open: %s",
				label, strerror(errno));
	if (repo_add_rpmmd(repo, fp, NULL, flags | REPO_NO_INTERNALIZE) != 0)
		rc = azl_errf(err, -EBADMSG, "%s: invalid or truncated rpm-md XML: %s",
			      label, pool_errstr(repo->pool));
	else if (ferror(fp))
		rc = azl_errf(err, -EIO, "%s: read error (truncated or corrupt "
			      "compressed data?)", label);
	fclose(fp);
	return rc;
}

static int load_file(Repo *repo, const struct azl_repo_md *md,
		     const struct azl_repo_file *f, const char *what, int flags,
		     const struct azl_fetch_opts *fo, const char *dir,
		     struct azl_err *err)
{
	char *path = NULL, *label = NULL;
	int rc;

	if ((rc = azl_repo_fetch_file(md, f, what, fo, dir, &path, err)))
		return rc;
	label = azl_xasprintf("repo %s: %s %s%s", md->id, what, md->baseurl, f->href);
	rc = azl_repo_add_rpmmd(repo, path, flags, label, err);
	repo_internalize(repo);
	unlink(path);
	free(path);
	free(label);
	return rc;
}

int azl_repo_load_primary(Repo *repo, const struct azl_repo_md *md,
			  const struct azl_fetch_opts *fo, const char *dir,
			  struct azl_err *err)
{
	return load_file(repo, md, &md->primary, "primary", 0, fo, dir, err);
}

int azl_repo_load_filelists(Repo *repo, const struct azl_repo_md *md,
			    const struct azl_fetch_opts *fo, const char *dir,
			    struct azl_err *err)
{
	if (!md->filelists.href)
		return 0;
	return load_file(repo, md, &md->filelists, "filelists",
			 REPO_EXTEND_SOLVABLES, fo, dir, err);
}

/* ---- parsed-metadata cache ---- */


static char *solv_path(const char *dir, const struct azl_repo_md *md)
{
	return azl_xasprintf("%s/%s-%s.solv", dir, md->primary.sha256,
			     LIBSOLV_VERSION_STRING);
}

int azl_repo_solv_load(Repo *repo, const char *dir, const struct azl_repo_md *md)
{
	char *path = solv_path(dir, md);
	FILE *fp = fopen(path, "r");
	int ok = 0;

	if (fp) {
		ok = repo_add_solv(repo, fp, 0) == 0;
		fclose(fp);
		if (!ok)
			repo_empty(repo, 1); /* damaged entry: parse primary */
	}
	free(path);
	return ok;
}

void azl_repo_solv_save(Repo *repo, const char *dir, const struct azl_repo_md *md)
{
	char *path = solv_path(dir, md);
	char *tmp = azl_xasprintf("%s.XXXXXX", path);
	struct azl_err ignore = { 0 };
	int fd, ok = 0;
	FILE *fp;

	if (azl_mkdir_p(dir, &ignore) || (fd = mkstemp(tmp)) < 0)
		goto out;
	fp = fdopen(fd, "w");
	if (!fp) {
		close(fd);
	} else {
		ok = repo_write(repo, fp) == 0;
		ok = (fflush(fp) == 0 && fsync(fileno(fp)) == 0) && ok;
		ok = (fclose(fp) == 0) && ok;
	}
	/* Renamed only when complete: a reader never sees half a file.
	 * mkstemp made it 0600; the cache is shared like the blob store. */
	if (!ok || chmod(tmp, 0644) || rename(tmp, path))
		unlink(tmp);
out:
	free(tmp);
	free(path);
}

void azl_repo_md_release(struct azl_repo_md *md)
{
	free(md->id);
	free(md->baseurl);
	free(md->primary.href);
	free(md->filelists.href);
	memset(md, 0, sizeof(*md));
}
