/* SPDX SBOM and SLSA provenance over two real rpms (read in place from the
 * shared corpus): fields from the rpm header, purls, determinism, the
 * namespace following the build digest, and reading packages back. */
#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "sign/sbom.h"
#include "t.h"

#define REAL "/work/shared/corpus/real/createrepo_c-testdata"

static json_t *pkg_named(json_t *doc, const char *name)
{
	json_t *arr = json_object_get(doc, "packages"), *p;
	size_t i;
	json_array_foreach(arr, i, p)
		if (!strcmp(json_string_value(json_object_get(p, "name")), name))
			return p;
	return NULL;
}

static const char *str_at(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

int main(void)
{
	struct azl_err err = { 0 };
	struct azl_lock_repo repo = { .id = "base", .baseurl = "https://example.org/repo" };
	struct azl_lock_pkg pkgs[2] = {
		{ .name = "Rimmer", .epoch = 0, .version = "1.0.2", .release = "2", .arch = "x86_64",
		  .repo = "base", .location = "Packages/Rimmer-1.0.2-2.x86_64.rpm" },
		{ .name = "super_kernel", .epoch = 3, .version = "6.0.1", .release = "2", .arch = "x86_64",
		  .repo = "base", .location = "Packages/super_kernel-6.0.1-2.x86_64.rpm" },
	};
	const char *paths[2] = { REAL "/Rimmer-1.0.2-2.x86_64.rpm", REAL "/super_kernel-6.0.1-2.x86_64.rpm" };
	struct azl_lock lock = { &repo, 1, pkgs, 2 };
	struct azl_output_file outs[1] = { { .name = "img.oci.tar", .size = 3 } };
	struct azl_sbom_input in = {
		.name = "img", .lock = &lock, .pkg_paths = paths, .source_date_epoch = 1700000000,
		.manifest_path = "/some/where/img.yaml", .manifest_sha256 = "aa", .lock_sha256 = "bb",
		.tool_version = "9.9", .outputs = outs, .noutputs = 1,
	};
	char *a = NULL, *b = NULL, *c = NULL, *prov = NULL;

	for (int i = 0; i < 2; i++)
		CHECK(azl_sha256_file(paths[i], pkgs[i].sha256, NULL, &err) == 0);
	azl_sha256_hex("abc", 3, outs[0].sha256);

	CHECK(azl_sbom_json(&in, &a, &err) == 0);
	CHECK(azl_sbom_json(&in, &b, &err) == 0);
	CHECK_STR(a, b); /* same inputs, same bytes */
	json_t *doc = json_loads(a, 0, NULL);
	CHECK(doc != NULL);
	CHECK_STR(str_at(doc, "spdxVersion"), "SPDX-2.3");
	CHECK_STR(str_at(json_object_get(doc, "creationInfo"), "created"), "2023-11-14T22:13:20Z");
	CHECK_CONTAINS(str_at(doc, "documentNamespace"), "https://azl-compose.dev/spdx/img-");

	json_t *r = pkg_named(doc, "Rimmer"), *k = pkg_named(doc, "super_kernel");
	CHECK(r && k);
	CHECK_STR(str_at(r, "SPDXID"), "SPDXRef-Package-rpm-Rimmer-x86-64");
	CHECK_STR(str_at(r, "versionInfo"), "1.0.2-2");
	CHECK_STR(str_at(k, "versionInfo"), "3:6.0.1-2");
	/* License and supplier come from the header (rpm -qp: GPL, Packager
	 * "Arnold Rimmer", no Vendor; super_kernel has neither). */
	CHECK_STR(str_at(r, "licenseDeclared"), "GPL");
	CHECK_STR(str_at(r, "supplier"), "Organization: Arnold Rimmer");
	CHECK_STR(str_at(k, "supplier"), "NOASSERTION");
	CHECK_STR(str_at(r, "downloadLocation"), "https://example.org/repo/Packages/Rimmer-1.0.2-2.x86_64.rpm");
	CHECK_STR(str_at(json_array_get(json_object_get(r, "checksums"), 0), "checksumValue"), pkgs[0].sha256);
	CHECK_STR(str_at(json_array_get(json_object_get(k, "externalRefs"), 0), "referenceLocator"),
		  "pkg:rpm/base/super_kernel@6.0.1-2?arch=x86_64&epoch=3");
	CHECK(json_array_size(json_object_get(doc, "relationships")) == 3); /* DESCRIBES + 2 CONTAINS */
	json_decref(doc);

	/* purl encoding of characters outside the safe set. */
	struct azl_lock_pkg plus = { .name = "libstdc++", .version = "1", .release = "1", .arch = "x86_64", .repo = "base" };
	char *purl = azl_rpm_purl(&plus);
	CHECK_STR(purl, "pkg:rpm/base/libstdc%2B%2B@1-1?arch=x86_64");
	free(purl);

	/* The namespace follows the build digest: another output digest, another namespace. */
	azl_sha256_hex("abd", 3, outs[0].sha256);
	CHECK(azl_sbom_json(&in, &c, &err) == 0);
	json_t *d1 = json_loads(a, 0, NULL), *d2 = json_loads(c, 0, NULL);
	CHECK(strcmp(str_at(d1, "documentNamespace"), str_at(d2, "documentNamespace")) != 0);
	json_decref(d1);
	json_decref(d2);

	/* Provenance: subject = outputs, deps = lockfile + rpms, manifest by basename. */
	CHECK(azl_provenance_json(&in, &prov, &err) == 0);
	json_t *p = json_loads(prov, 0, NULL);
	CHECK_STR(str_at(p, "_type"), "https://in-toto.io/Statement/v1");
	CHECK_STR(str_at(p, "predicateType"), "https://slsa.dev/provenance/v1");
	json_t *s0 = json_array_get(json_object_get(p, "subject"), 0);
	CHECK_STR(str_at(s0, "name"), "img.oci.tar");
	CHECK_STR(str_at(json_object_get(s0, "digest"), "sha256"), outs[0].sha256);
	json_t *bd = json_object_get(json_object_get(p, "predicate"), "buildDefinition");
	CHECK_STR(str_at(json_object_get(json_object_get(bd, "externalParameters"), "manifest"), "path"), "img.yaml");
	json_t *deps = json_object_get(bd, "resolvedDependencies");
	CHECK(json_array_size(deps) == 3);
	CHECK_STR(str_at(json_object_get(json_array_get(deps, 0), "digest"), "sha256"), "bb");
	CHECK_STR(str_at(json_array_get(deps, 2), "uri"), "https://example.org/repo/Packages/super_kernel-6.0.1-2.x86_64.rpm");
	CHECK(json_integer_value(json_object_get(json_object_get(bd, "internalParameters"), "SOURCE_DATE_EPOCH")) == 1700000000);
	json_decref(p);

	/* Written files, read back as NEVRA + sha256 sets. */
	char dir[] = "/tmp/azl-sbom-XXXXXX", *name = NULL;
	CHECK(mkdtemp(dir) != NULL);
	CHECK(azl_sbom_write(dir, &in, &name, &err) == 0);
	CHECK_STR(name, "img.spdx.json");
	char *path = azl_path_join(dir, name);
	struct azl_sbom_pkg *got = NULL;
	size_t n = 0;
	CHECK(azl_sbom_read_packages(path, &got, &n, &err) == 0);
	CHECK(n == 2);
	if (n == 2) {
		CHECK_STR(got[0].nevra, "Rimmer-1.0.2-2.x86_64");
		CHECK_STR(got[1].nevra, "super_kernel-3:6.0.1-2.x86_64");
		CHECK_STR(got[1].sha256, pkgs[1].sha256);
	}
	azl_sbom_pkgs_free(got, n);
	free(name);
	CHECK(azl_provenance_write(dir, &in, &name, &err) == 0);
	CHECK_STR(name, "img.provenance.json");

	/* A missing rpm is an error naming it, and nothing is written. */
	const char *bad[2] = { "/nonexistent.rpm", paths[1] };
	in.pkg_paths = bad;
	in.name = "bad";
	free(name);
	CHECK(azl_sbom_write(dir, &in, &name, &err) < 0);
	CHECK_CONTAINS(err.msg, "/nonexistent.rpm");
	char *badp = azl_path_join(dir, "bad.spdx.json");
	CHECK(access(badp, F_OK) != 0);

	char *cmd = azl_xasprintf("rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	free(cmd), free(badp), free(path), free(name), free(a), free(b), free(c), free(prov);
	return t_done();
}
