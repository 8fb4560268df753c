/* registry: references, the cosign payload and signature manifest,
 * WWW-Authenticate parsing, the OCI archive's manifest.  The network half
 * is covered by tests/integration/push_registry.sh against docker-registry. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>

#include "base/hash.h"
#include "compose/registry.h"
#include "t.h"

static void test_refs(void)
{
	struct azl_image_ref r;
	struct azl_err err = { 0 };
	char *s;

	CHECK(azl_image_ref_parse("127.0.0.1:5000/azl/img:v1.2_3", &r, &err) == 0);
	CHECK_STR(r.host, "127.0.0.1:5000");
	CHECK_STR(r.repo, "azl/img");
	CHECK_STR(r.tag, "v1.2_3");
	s = azl_image_ref_str(&r);
	CHECK_STR(s, "127.0.0.1:5000/azl/img:v1.2_3");
	free(s);
	azl_image_ref_free(&r);

	CHECK(azl_image_ref_parse("registry.example.com/team/my-app", &r, &err) == 0);
	CHECK_STR(r.repo, "team/my-app");
	CHECK_STR(r.tag, "latest");
	azl_image_ref_free(&r);

	const char *bad[] = { "img:v1", "/azl/img:v1", "h:5000/Azl/img:v1",
			      "h:5000/azl/img:", "h:5000/azl/img:-x", "h:5000/azl//img",
			      "h:5000/azl/img:v 1", "h:5000/azl/", "h:5000/azl-/img" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		azl_err_clear(&err);
		CHECK(azl_image_ref_parse(bad[i], &r, &err) == -EINVAL);
		CHECK(err.kind == AZL_ERR_INPUT);
		CHECK_CONTAINS(err.msg, bad[i]);
	}
	azl_err_clear(&err);
	CHECK(azl_image_ref_parse("h:5000/azl/img@sha256:00", &r, &err) < 0);
	CHECK_CONTAINS(err.msg, "needs a tag");
}

#define D1 "sha256:5844edb4f734a3a1227f3d7a575b0e229386870051d734378567efec3eb2754a"

static void test_payload(void)
{
	char *p = azl_cosign_payload("127.0.0.1:5000/azl/img:v1", D1);
	char tag[80];

	/* cosign's bytes: sorted keys, compact, "optional":null. */
	CHECK_STR(p, "{\"critical\":{\"identity\":{\"docker-reference\":\"127.0.0.1:5000/azl/img:v1\"},"
		     "\"image\":{\"docker-manifest-digest\":\"" D1 "\"},"
		     "\"type\":\"cosign container image signature\"},\"optional\":null}");
	free(p);
	CHECK(azl_cosign_payload("h/\xff", D1) == NULL);
	CHECK(azl_cosign_sig_tag(D1, tag) == 0);
	CHECK_STR(tag, "sha256-5844edb4f734a3a1227f3d7a575b0e229386870051d734378567efec3eb2754a.sig");
	CHECK(azl_cosign_sig_tag("sha256:abc", tag) == -EINVAL);
	CHECK(azl_cosign_sig_tag("sha512:5844edb4f734a3a1227f3d7a575b0e229386870051d734378567efec3eb2754a", tag) == -EINVAL);
}

#define P1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define P2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static const char *layer_str(json_t *m, size_t i, const char *key)
{
	return json_string_value(json_object_get(json_array_get(json_object_get(m, "layers"), i), key));
}

static const char *layer_sig(json_t *m, size_t i)
{
	json_t *l = json_array_get(json_object_get(m, "layers"), i);
	return json_string_value(json_object_get(json_object_get(l, "annotations"),
						 AZL_COSIGN_SIG_ANNOTATION));
}

static void test_sig_manifest(void)
{
	struct azl_err err = { 0 };
	char *config, *manifest, *config2, *manifest2, hex[65], want[72];
	json_t *m, *c;

	CHECK(azl_cosign_manifest(P1, 242, "U0lHMQ==", NULL, &config, &manifest, &err) == 0);
	m = json_loads(manifest, 0, NULL);
	c = json_loads(config, 0, NULL);
	CHECK(json_integer_value(json_object_get(m, "schemaVersion")) == 2);
	CHECK_STR(json_string_value(json_object_get(m, "mediaType")),
		  "application/vnd.oci.image.manifest.v1+json");
	CHECK(json_array_size(json_object_get(m, "layers")) == 1);
	CHECK_STR(layer_str(m, 0, "mediaType"), "application/vnd.dev.cosign.simplesigning.v1+json");
	CHECK_STR(layer_str(m, 0, "digest"), P1);
	CHECK(json_integer_value(json_object_get(json_array_get(json_object_get(m, "layers"), 0), "size")) == 242);
	CHECK_STR(layer_sig(m, 0), "U0lHMQ==");
	/* The config descriptor names the config's own bytes. */
	azl_sha256_hex(config, strlen(config), hex);
	snprintf(want, sizeof(want), "sha256:%s", hex);
	CHECK_STR(json_string_value(json_object_get(json_object_get(m, "config"), "digest")), want);
	CHECK(json_integer_value(json_object_get(json_object_get(m, "config"), "size")) == (json_int_t)strlen(config));
	CHECK_STR(json_string_value(json_object_get(json_object_get(m, "config"), "mediaType")),
		  "application/vnd.oci.image.config.v1+json");
	CHECK_STR(json_string_value(json_array_get(json_object_get(json_object_get(c, "rootfs"), "diff_ids"), 0)), P1);
	json_decref(m);
	json_decref(c);

	/* A second payload joins the existing signature; the same payload
	 * signed again replaces its layer instead of adding one. */
	CHECK(azl_cosign_manifest(P2, 100, "U0lHMg==", manifest, &config2, &manifest2, &err) == 0);
	m = json_loads(manifest2, 0, NULL);
	CHECK(json_array_size(json_object_get(m, "layers")) == 2);
	CHECK_STR(layer_str(m, 0, "digest"), P1);
	CHECK_STR(layer_sig(m, 0), "U0lHMQ==");
	CHECK_STR(layer_str(m, 1, "digest"), P2);
	json_decref(m);
	free(config);
	free(manifest);
	CHECK(azl_cosign_manifest(P1, 242, "U0lHMw==", manifest2, &config, &manifest, &err) == 0);
	m = json_loads(manifest, 0, NULL);
	CHECK(json_array_size(json_object_get(m, "layers")) == 2);
	CHECK_STR(layer_str(m, 0, "digest"), P2);
	CHECK_STR(layer_str(m, 1, "digest"), P1);
	CHECK_STR(layer_sig(m, 1), "U0lHMw==");
	json_decref(m);
	free(config);
	free(manifest);
	free(config2);
	free(manifest2);

	/* Something else under the tag (not an OCI manifest) is replaced. */
	CHECK(azl_cosign_manifest(P1, 1, "eA==", "{\"schemaVersion\":2,\"layers\":[{\"digest\":\"" P2 "\"}]}",
				  &config, &manifest, &err) == 0);
	m = json_loads(manifest, 0, NULL);
	CHECK(json_array_size(json_object_get(m, "layers")) == 1);
	json_decref(m);
	free(config);
	free(manifest);
}

static void test_challenge(void)
{
	char *scheme, *realm, *service, *scope;

	CHECK(azl_registry_parse_challenge("Bearer realm=\"https://auth.example/token?a=b\","
					   "service=\"registry.example\",scope=\"repository:x/y:pull,push\"",
					   &scheme, &realm, &service, &scope) == 0);
	CHECK_STR(scheme, "bearer");
	CHECK_STR(realm, "https://auth.example/token?a=b");
	CHECK_STR(service, "registry.example");
	CHECK_STR(scope, "repository:x/y:pull,push");
	free(scheme), free(realm), free(service), free(scope);

	CHECK(azl_registry_parse_challenge("Basic realm=\"a \\\"quoted\\\" realm\"", &scheme,
					   &realm, &service, &scope) == 0);
	CHECK_STR(scheme, "basic");
	CHECK_STR(realm, "a \"quoted\" realm");
	CHECK(service == NULL && scope == NULL);
	free(scheme), free(realm);

	CHECK(azl_registry_parse_challenge("BEARER realm=http://t/x, service=s", &scheme,
					   &realm, &service, &scope) == 0);
	CHECK_STR(scheme, "bearer");
	CHECK_STR(realm, "http://t/x");
	CHECK_STR(service, "s");
	free(scheme), free(realm), free(service), free(scope);

	CHECK(azl_registry_parse_challenge("  ", &scheme, &realm, &service, &scope) == -EINVAL);
}

/* A hand-made OCI layout archive: tar of DIR with the given manifest. */
static char *make_archive(const char *dir, const char *manifest, int corrupt)
{
	char hex[65], *cmd, *tar = azl_xasprintf("%s/img.oci.tar", dir);
	FILE *f;
	char *path;

	azl_sha256_hex(manifest, strlen(manifest), hex);
	cmd = azl_xasprintf("rm -rf %s/l && mkdir -p %s/l/blobs/sha256", dir, dir);
	CHECK(system(cmd) == 0);
	free(cmd);
	path = azl_xasprintf("%s/l/blobs/sha256/%s", dir, hex);
	f = fopen(path, "w");
	fputs(manifest, f);
	if (corrupt)
		fputc(' ', f);
	fclose(f);
	free(path);
	path = azl_xasprintf("%s/l/index.json", dir);
	f = fopen(path, "w");
	fprintf(f, "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
		"\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:%s\",\"size\":%zu}]}",
		hex, strlen(manifest));
	fclose(f);
	free(path);
	cmd = azl_xasprintf("tar -C %s/l -cf %s blobs index.json", dir, tar);
	CHECK(system(cmd) == 0);
	free(cmd);
	return tar;
}

static void test_archive(void)
{
	char dir[] = "/tmp/azl-test-registry.XXXXXX", digest[72], hex[65], want[72], *m = NULL, *tar, *cmd;
	const char *manifest = "{\"schemaVersion\":2,\"layers\":[]}";
	struct azl_err err = { 0 };
	size_t len = 0;

	CHECK(mkdtemp(dir) != NULL);
	tar = make_archive(dir, manifest, 0);
	CHECK(azl_oci_tar_manifest(tar, digest, &m, &len, &err) == 0);
	azl_sha256_hex(manifest, strlen(manifest), hex);
	snprintf(want, sizeof(want), "sha256:%s", hex);
	CHECK_STR(digest, want);
	CHECK_STR(m, manifest);
	CHECK(len == strlen(manifest));
	free(m);
	free(tar);

	tar = make_archive(dir, manifest, 1);
	CHECK(azl_oci_tar_manifest(tar, digest, NULL, NULL, &err) < 0);
	CHECK(err.kind == AZL_ERR_INPUT);
	CHECK_CONTAINS(err.msg, "does not match its digest");
	free(tar);

	azl_err_clear(&err);
	tar = azl_xasprintf("%s/not-oci.tar", dir);
	cmd = azl_xasprintf("tar -C %s/l -cf %s blobs", dir, tar);
	CHECK(system(cmd) == 0);
	CHECK(azl_oci_tar_manifest(tar, digest, NULL, NULL, &err) < 0);
	CHECK(err.kind == AZL_ERR_INPUT);
	CHECK_CONTAINS(err.msg, "no index.json");
	free(cmd);
	free(tar);

	azl_err_clear(&err);
	CHECK(azl_oci_tar_manifest("/nonexistent/x.oci.tar", digest, NULL, NULL, &err) < 0);
	CHECK_CONTAINS(err.msg, "/nonexistent/x.oci.tar");
	cmd = azl_xasprintf("rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	free(cmd);
}

int main(void)
{
	test_refs();
	test_payload();
	test_sig_manifest();
	test_challenge();
	test_archive();
	return t_done();
}
