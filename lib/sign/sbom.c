/* SPDX 2.3 SBOM and SLSA v1 provenance, built as jansson trees and dumped
 * canonically. */
#include "sign/sbom.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <rpm/header.h>
#include <rpm/rpmtag.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/rpmread.h"

void azl_build_digest(const struct azl_sbom_input *in, char hex[65])
{
	struct azl_buf b = AZL_BUF_INIT;

	azl_buf_addf(&b, "azl-build-digest/1\nmanifest %s\nlock %s\nsde %lld\n",
		     in->manifest_sha256, in->lock_sha256,
		     (long long)in->source_date_epoch);
	for (size_t i = 0; i < in->noutputs; i++)
		azl_buf_addf(&b, "output %s %s\n", in->outputs[i].sha256, in->outputs[i].name);
	azl_sha256_hex(b.data, b.len, hex);
	azl_buf_release(&b);
}

/* Canonical text: sorted keys, two-space indent, trailing newline. */
static char *dump(json_t *root)
{
	char *text = json_dumps(root, JSON_SORT_KEYS | JSON_INDENT(2) | JSON_ENSURE_ASCII);
	char *with_nl = azl_xasprintf("%s\n", text);
	free(text);
	return with_nl;
}

/* purl components keep [A-Za-z0-9.-_~]; the rest is percent-encoded. */
static void purl_add(struct azl_buf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr(".-_~", c))
			azl_buf_addc(b, (char)c);
		else
			azl_buf_addf(b, "%%%02X", c);
	}
}

char *azl_rpm_purl(const struct azl_lock_pkg *p)
{
	struct azl_buf b = AZL_BUF_INIT;

	azl_buf_adds(&b, "pkg:rpm/");
	purl_add(&b, p->repo);
	azl_buf_addc(&b, '/');
	purl_add(&b, p->name);
	azl_buf_addc(&b, '@');
	purl_add(&b, p->version);
	azl_buf_addc(&b, '-');
	purl_add(&b, p->release);
	azl_buf_adds(&b, "?arch=");
	purl_add(&b, p->arch);
	if (p->epoch)
		azl_buf_addf(&b, "&epoch=%u", p->epoch);
	return azl_buf_detach(&b);
}

/* SPDXIDs allow [A-Za-z0-9.-]; anything else becomes '-'. */
static char *spdx_id(const char *prefix, const char *a, const char *b2)
{
	char *id = azl_xasprintf("%s%s-%s", prefix, a, b2);
	for (char *p = id + strlen(prefix); *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
			*p = '-';
	return id;
}

/* An rpm License tag that is already SPDX-expression shaped (ids joined by
 * AND/OR/WITH, parentheses) passes through; anything else (Fedora's old
 * "GPLv2+ and LGPL", commas, slashes) becomes a LicenseRef whose text is
 * recorded in hasExtractedLicensingInfos. */
static int license_is_expression(const char *s)
{
	int want_id = 1;

	while (*s) {
		size_t n;
		while (*s == ' ' || *s == '(' || *s == ')')
			s++;
		n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+-:");
		if (!n && *s)
			return 0;
		if (!n)
			break;
		if (want_id == ((n == 3 && !strncmp(s, "AND", 3)) || (n == 2 && !strncmp(s, "OR", 2)) ||
				(n == 4 && !strncmp(s, "WITH", 4))))
			return 0;
		want_id = !want_id;
		s += n;
	}
	return !want_id;
}

static const char *hdr_str(Header h, rpmTagVal tag)
{
	const char *s = headerGetString(h, tag);
	return s ? s : "";
}

/* supplier: Vendor, else Packager, as SPDX's "Organization: x". */
static json_t *supplier_of(Header h)
{
	const char *v = hdr_str(h, RPMTAG_VENDOR);
	char *s, *p;
	json_t *j;

	if (!*v)
		v = hdr_str(h, RPMTAG_PACKAGER);
	if (!*v)
		return json_string("NOASSERTION");
	s = azl_xasprintf("Organization: %s", v);
	for (p = s; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	j = json_string(s);
	free(s);
	return j;
}

static char *evr_of(const struct azl_lock_pkg *p)
{
	if (p->epoch)
		return azl_xasprintf("%u:%s-%s", p->epoch, p->version, p->release);
	return azl_xasprintf("%s-%s", p->version, p->release);
}

static char *download_uri(const struct azl_lock *lock, const struct azl_lock_pkg *p)
{
	const struct azl_lock_repo *r = azl_lock_find_repo(lock, p->repo);
	const char *base = r ? r->baseurl : "";
	size_t n = strlen(base);
	return azl_xasprintf("%s%s%s", base, n && base[n - 1] == '/' ? "" : "/", p->location);
}

/* The license fields of one package; a LicenseRef is added to refs. */
static void add_license(json_t *pkg, const char *lic, json_t *refs)
{
	char hex[65], *ref;

	if (license_is_expression(lic)) {
		json_object_set_new(pkg, "licenseDeclared", json_string(lic));
		return;
	}
	if (!*lic) {
		json_object_set_new(pkg, "licenseDeclared", json_string("NOASSERTION"));
		return;
	}
	azl_sha256_hex(lic, strlen(lic), hex);
	hex[12] = '\0';
	ref = azl_xasprintf("LicenseRef-rpm-%s", hex);
	json_object_set_new(pkg, "licenseDeclared", json_string(ref));
	json_object_set_new(refs, ref, json_pack("{s:s, s:s, s:s}", "licenseId", ref,
						 "extractedText", lic, "name", lic));
	free(ref);
}

static json_t *sbom_package(const struct azl_sbom_input *in, size_t i, Header h,
			    json_t *refs)
{
	const struct azl_lock_pkg *p = &in->lock->pkgs[i];
	char *id = spdx_id("SPDXRef-Package-rpm-", p->name, p->arch);
	char *evr = evr_of(p), *purl = azl_rpm_purl(p), *uri = download_uri(in->lock, p);
	char *repo = azl_xasprintf("repository: %s", p->repo);
	json_t *pkg = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:[{s:s, s:s}], s:[{s:s, s:s, s:s}]}",
				"SPDXID", id, "name", p->name, "versionInfo", evr,
				"downloadLocation", uri, "filesAnalyzed", 0,
				"licenseConcluded", "NOASSERTION", "copyrightText", "NOASSERTION",
				"sourceInfo", repo,
				"checksums", "algorithm", "SHA256", "checksumValue", p->sha256,
				"externalRefs", "referenceCategory", "PACKAGE-MANAGER",
				"referenceType", "purl", "referenceLocator", purl);

	json_object_set_new(pkg, "supplier", supplier_of(h));
	json_object_set_new(pkg, "primaryPackagePurpose", json_string("OPERATING-SYSTEM"));
	add_license(pkg, hdr_str(h, RPMTAG_LICENSE), refs);
	free(id);
	free(evr);
	free(purl);
	free(uri);
	free(repo);
	return pkg;
}

static void iso8601(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The document around the packages: the image as the described package,
 * which CONTAINS every rpm. */
static json_t *sbom_document(const struct azl_sbom_input *in)
{
	char digest[65], created[32];
	char *ns, *tool = azl_xasprintf("Tool: azl-compose-%s", in->tool_version);
	char *image_id = spdx_id("SPDXRef-Image-", in->name, "image");
	json_t *doc;

	azl_build_digest(in, digest);
	iso8601(in->source_date_epoch, created);
	ns = azl_xasprintf("https://azl-compose.dev/spdx/%s-%s", in->name, digest);
	doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:[s]}, s:[s]}",
			"spdxVersion", "SPDX-2.3", "dataLicense", "CC0-1.0",
			"SPDXID", "SPDXRef-DOCUMENT", "name", in->name,
			"documentNamespace", ns,
			"creationInfo", "created", created, "creators", tool,
			"documentDescribes", image_id);
	json_object_set_new(doc, "packages", json_pack(
		"[{s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:s}]",
		"SPDXID", image_id, "name", in->name, "versionInfo", digest,
		"downloadLocation", "NOASSERTION", "filesAnalyzed", 0,
		"licenseConcluded", "NOASSERTION", "licenseDeclared", "NOASSERTION",
		"copyrightText", "NOASSERTION", "supplier", "NOASSERTION",
		"primaryPackagePurpose", "CONTAINER"));
	json_object_set_new(doc, "relationships", json_pack("[{s:s, s:s, s:s}]",
		"spdxElementId", "SPDXRef-DOCUMENT", "relationshipType", "DESCRIBES",
		"relatedSpdxElement", image_id));
	free(ns);
	free(tool);
	free(image_id);
	return doc;
}

static int strcmp_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int sbom_add_packages(const struct azl_sbom_input *in, json_t *doc,
			     struct azl_err *err)
{
	json_t *pkgs = json_object_get(doc, "packages");
	json_t *rels = json_object_get(doc, "relationships");
	const char *image_id = json_string_value(json_object_get(json_array_get(pkgs, 0), "SPDXID"));
	json_t *refs = json_object();
	int r = 0;

	for (size_t i = 0; i < in->lock->npkgs && r == 0; i++) {
		struct azl_rpm *rpm = NULL;
		json_t *pkg;
		if ((r = azl_rpm_open(in->pkg_paths[i], &rpm, err)) < 0)
			break;
		pkg = sbom_package(in, i, azl_rpm_header(rpm), refs);
		json_array_append_new(rels, json_pack("{s:s, s:s, s:O}",
			"spdxElementId", image_id, "relationshipType", "CONTAINS",
			"relatedSpdxElement", json_object_get(pkg, "SPDXID")));
		json_array_append_new(pkgs, pkg);
		azl_rpm_close(rpm);
	}
	if (r == 0 && json_object_size(refs)) {
		/* object iteration order is hash order: sort by id for stable bytes */
		json_t *arr = json_array();
		const char **keys = azl_xcalloc(json_object_size(refs), sizeof(*keys));
		size_t n = 0;
		const char *k;
		json_t *v;
		json_object_foreach(refs, k, v)
			keys[n++] = k;
		qsort(keys, n, sizeof(*keys), strcmp_ptr);
		for (size_t i = 0; i < n; i++)
			json_array_append(arr, json_object_get(refs, keys[i]));
		json_object_set_new(doc, "hasExtractedLicensingInfos", arr);
		free(keys);
	}
	json_decref(refs);
	return r;
}

int azl_sbom_json(const struct azl_sbom_input *in, char **json, struct azl_err *err)
{
	json_t *doc = sbom_document(in);
	int r = sbom_add_packages(in, doc, err);

	*json = r == 0 ? dump(doc) : NULL;
	json_decref(doc);
	return r;
}

/* Write text to dir/NAME<suffix>; *file_name gets the name. */
static int write_named(const char *dir, const char *name, const char *suffix,
		       const char *text, char **file_name, struct azl_err *err)
{
	char *fname = azl_xasprintf("%s%s", name, suffix);
	char *path = azl_path_join(dir, fname);
	int r = azl_write_file_atomic(path, text, strlen(text), 0644, err);

	free(path);
	if (r < 0) {
		free(fname);
		fname = NULL;
	}
	*file_name = fname;
	return r;
}

int azl_sbom_write(const char *dir, const struct azl_sbom_input *in,
		   char **file_name, struct azl_err *err)
{
	char *text = NULL;
	int r = azl_sbom_json(in, &text, err);

	*file_name = NULL;
	if (r == 0)
		r = write_named(dir, in->name, ".spdx.json", text, file_name, err);
	free(text);
	return r < 0 ? azl_err_prefix(err, "SBOM") : 0;
}

static json_t *digest_obj(const char *sha256)
{
	return json_pack("{s:s}", "sha256", sha256);
}

static json_t *resolved_deps(const struct azl_sbom_input *in)
{
	char *lock_name = azl_xasprintf("%s.lock.json", in->name);
	json_t *deps = json_pack("[{s:s, s:o}]", "name", lock_name,
				 "digest", digest_obj(in->lock_sha256));

	free(lock_name);
	for (size_t i = 0; i < in->lock->npkgs; i++) {
		const struct azl_lock_pkg *p = &in->lock->pkgs[i];
		char *uri = download_uri(in->lock, p), *nevra = azl_lock_pkg_nevra(p);
		char *purl = azl_rpm_purl(p);
		json_array_append_new(deps, json_pack("{s:s, s:s, s:o, s:{s:s}}",
			"uri", uri, "name", nevra, "digest", digest_obj(p->sha256),
			"annotations", "purl", purl));
		free(uri);
		free(nevra);
		free(purl);
	}
	return deps;
}

int azl_provenance_json(const struct azl_sbom_input *in, char **json, struct azl_err *err)
{
	const char *base = in->manifest_path ? strrchr(in->manifest_path, '/') : NULL;
	json_t *subject = json_array(), *st;

	base = base ? base + 1 : in->manifest_path ? in->manifest_path : "";
	for (size_t i = 0; i < in->noutputs; i++)
		json_array_append_new(subject, json_pack("{s:s, s:o}", "name", in->outputs[i].name,
							 "digest", digest_obj(in->outputs[i].sha256)));
	st = json_pack("{s:s, s:o, s:s, s:{s:{s:s, s:{s:{s:s, s:o}}, s:{s:I}, s:o}, s:{s:{s:s, s:{s:s}}}}}",
		"_type", "https://in-toto.io/Statement/v1",
		"subject", subject,
		"predicateType", "https://slsa.dev/provenance/v1",
		"predicate",
		"buildDefinition",
		"buildType", AZL_BUILD_TYPE,
		"externalParameters", "manifest", "path", base, "digest", digest_obj(in->manifest_sha256),
		"internalParameters", "SOURCE_DATE_EPOCH", (json_int_t)in->source_date_epoch,
		"resolvedDependencies", resolved_deps(in),
		"runDetails", "builder", "id", AZL_BUILDER_ID, "version", "azl-compose", in->tool_version);
	if (!st)
		return azl_errf(err, -ENOMEM, "provenance: cannot build the statement");
	*json = dump(st);
	json_decref(st);
	return 0;
}

int azl_provenance_write(const char *dir, const struct azl_sbom_input *in,
			 char **file_name, struct azl_err *err)
{
	char *text = NULL;
	int r = azl_provenance_json(in, &text, err);

	*file_name = NULL;
	if (r == 0)
		r = write_named(dir, in->name, ".provenance.json", text, file_name, err);
	free(text);
	return r < 0 ? azl_err_prefix(err, "provenance") : 0;
}

/* arch from a purl's qualifiers, or NULL. Caller frees. */
static char *purl_arch(const char *purl)
{
	const char *q = purl ? strchr(purl, '?') : NULL;
	const char *a = q ? strstr(q, "arch=") : NULL;
	return a ? strndup(a + 5, strcspn(a + 5, "&#")) : NULL;
}

/* One rpm package entry (those with a purl) into out; 0 if not an rpm. */
static int read_one(json_t *pkg, struct azl_sbom_pkg *out)
{
	json_t *ref = json_array_get(json_object_get(pkg, "externalRefs"), 0);
	const char *purl = json_string_value(json_object_get(ref, "referenceLocator"));
	const char *name = json_string_value(json_object_get(pkg, "name"));
	const char *evr = json_string_value(json_object_get(pkg, "versionInfo"));
	json_t *ck = json_array_get(json_object_get(pkg, "checksums"), 0);
	const char *sha = json_string_value(json_object_get(ck, "checksumValue"));
	char *arch;

	if (!purl || strncmp(purl, "pkg:rpm/", 8) || !name || !evr)
		return 0;
	arch = purl_arch(purl);
	out->nevra = azl_xasprintf("%s-%s.%s", name, evr, arch ? arch : "?");
	/* Anything but 64 hex digits reads as "no checksum" (so it never
	 * matches a lockfile): snprintf alone kept the first 64 characters of
	 * a longer value, which could match. */
	snprintf(out->sha256, sizeof(out->sha256), "%s",
		 sha && azl_is_sha256_hex(sha) ? sha : "");
	free(arch);
	return 1;
}

int azl_sbom_read_packages(const char *path, struct azl_sbom_pkg **pkgs,
			   size_t *n, struct azl_err *err)
{
	json_error_t je;
	json_t *doc = json_load_file(path, 0, &je), *arr;
	size_t i;

	*pkgs = NULL;
	*n = 0;
	if (!doc)
		return azl_errf(err, -EBADMSG, "%s:%d:%d: %s", path, je.line, je.column, je.text);
	arr = json_object_get(doc, "packages");
	*pkgs = azl_xcalloc(json_array_size(arr) + 1, sizeof(**pkgs));
	for (i = 0; i < json_array_size(arr); i++)
		*n += (size_t)read_one(json_array_get(arr, i), &(*pkgs)[*n]);
	json_decref(doc);
	return 0;
}

void azl_sbom_pkgs_free(struct azl_sbom_pkg *pkgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(pkgs[i].nevra);
	free(pkgs);
}
