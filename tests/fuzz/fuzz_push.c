/* push's readers of outside bytes: the OCI archive it uploads (index.json
 * -> the one image manifest, streamed out of the tar), the image reference
 * on its command line and the registry's WWW-Authenticate challenge.  The
 * same input is offered to all three; a manifest found must be named by a
 * sha256 digest of its own bytes. */
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "compose/registry.h"
#include "fuzz.h"

static void fuzz_archive(const uint8_t *data, size_t size)
{
	const char *path = azl_fuzz_file("img.oci.tar", data, size);
	struct azl_err err = { 0 };
	char digest[72] = "", *manifest = NULL, hex[65];
	size_t len = 0;
	int rc = azl_oci_tar_manifest(path, digest, &manifest, &len, &err);

	azl_fuzz_check_err(rc, &err, "azl_oci_tar_manifest");
	if (rc == 0) {
		if (!manifest)
			azl_fuzz_fail("azl_oci_tar_manifest", "success without a manifest");
		azl_sha256_hex(manifest, len, hex);
		if (strncmp(digest, "sha256:", 7) || strcmp(digest + 7, hex))
			azl_fuzz_fail("azl_oci_tar_manifest", "digest does not name the manifest's bytes");
	}
	free(manifest);
}

static void fuzz_text(const uint8_t *data, size_t size)
{
	char *text = azl_fuzz_text(data, size);
	struct azl_image_ref ref;
	struct azl_err err = { 0 };
	char *scheme = NULL, *realm = NULL, *service = NULL, *scope = NULL;
	int rc;

	memset(&ref, 0, sizeof(ref));
	rc = azl_image_ref_parse(text, &ref, &err);
	azl_fuzz_check_err(rc, &err, "azl_image_ref_parse");
	if (rc == 0) {
		/* A parsed reference prints back to one that parses the same. */
		char *s = azl_image_ref_str(&ref);
		struct azl_image_ref again;
		memset(&again, 0, sizeof(again));
		if (!s || azl_image_ref_parse(s, &again, &err) < 0)
			azl_fuzz_fail("azl_image_ref_str", s ? s : "(null)");
		char *s2 = azl_image_ref_str(&again);
		if (!s2 || strcmp(s, s2))
			azl_fuzz_fail("azl_image_ref_str", "does not print back the same");
		azl_image_ref_free(&again);
		free(s2);
		free(s);
		azl_image_ref_free(&ref);
	}
	if (azl_registry_parse_challenge(text, &scheme, &realm, &service, &scope) == 0 && !scheme)
		azl_fuzz_fail("azl_registry_parse_challenge", "success without a scheme");
	free(scheme);
	free(realm);
	free(service);
	free(scope);
	free(text);
}

int azl_fuzz_push(const uint8_t *data, size_t size)
{
	fuzz_archive(data, size);
	fuzz_text(data, size);
	return 0;
}

AZL_FUZZ_ENTRY(azl_fuzz_push)
