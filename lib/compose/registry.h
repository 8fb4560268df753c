/* OCI distribution client: push an OCI image-layout archive (what
 * azl_emit_oci writes) to a registry, with an optional cosign signature.
 *
 * Blobs go straight from the archive to the registry (libarchive entry ->
 * curl read callback): the image is never held in memory or copied to
 * disk.  Each blob is first checked with HEAD /v2/REPO/blobs/DIGEST and
 * only uploaded when missing: POST .../blobs/uploads/ then one PUT
 * ?digest= (monolithic), or PATCH chunks with Content-Range then an empty
 * PUT ?digest= for blobs larger than chunk_size.  The manifest is PUT by
 * tag last, so a failed push never leaves the tag naming a partial image.
 *
 * Auth follows the registry's challenge on GET /v2/: none, Basic (user +
 * password), or Bearer (token from the realm, with Basic credentials when
 * given).  The password is never part of a URL, an error message or a log
 * line.
 *
 * The signature is cosign's: a simple-signing payload naming the pushed
 * reference and the manifest digest, signed by the caller (lib/sign), and
 * pushed as an OCI manifest tagged sha256-<hex>.sig whose one layer per
 * signature (application/vnd.dev.cosign.simplesigning.v1+json) carries the
 * base64 signature in the dev.cosignproject.cosign/signature annotation —
 * what cosign writes and what containers/image (skopeo, podman) reads with
 * use-sigstore-attachments. */
#ifndef AZL_COMPOSE_REGISTRY_H
#define AZL_COMPOSE_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define AZL_COSIGN_PAYLOAD_TYPE "application/vnd.dev.cosign.simplesigning.v1+json"
#define AZL_COSIGN_SIG_ANNOTATION "dev.cosignproject.cosign/signature"

/* HOST[:PORT]/REPO[:TAG]; every field owned (azl_image_ref_free). */
struct azl_image_ref {
	char *host; /* "127.0.0.1:5000" */
	char *repo; /* "team/app": lowercase path components */
	char *tag;  /* "latest" when the reference names none */
};

/* Parse and check a reference (AZL_ERR_INPUT naming it when bad). */
int azl_image_ref_parse(const char *s, struct azl_image_ref *ref,
			struct azl_err *err);
void azl_image_ref_free(struct azl_image_ref *ref);
/* "HOST/REPO:TAG"; caller frees. */
char *azl_image_ref_str(const struct azl_image_ref *ref);

/* The digest ("sha256:<hex>") and bytes of the one image manifest an OCI
 * archive's index.json names.  *manifest (may be NULL) owned by the
 * caller.  An archive that is not an OCI layout is AZL_ERR_INPUT. */
int azl_oci_tar_manifest(const char *path, char digest[72], char **manifest,
			 size_t *len, struct azl_err *err);

/* cosign's simple-signing payload, canonical (sorted, compact) bytes:
 * {"critical":{"identity":{"docker-reference":REF},"image":
 * {"docker-manifest-digest":DIGEST},"type":"cosign container image
 * signature"},"optional":null}.  Caller frees; NULL on invalid UTF-8. */
char *azl_cosign_payload(const char *docker_ref, const char *manifest_digest);

/* "sha256-<hex>.sig" for "sha256:<hex>"; out holds 80 bytes.  -EINVAL if
 * digest is not a sha256 digest. */
int azl_cosign_sig_tag(const char *manifest_digest, char out[80]);

/* The signature artifact for one payload: *config (the small image config
 * listing the layers as diff_ids) and *manifest (OCI image manifest),
 * both canonical JSON, caller frees.  existing (may be NULL) is the
 * signature manifest already in the registry: its other signature layers
 * are kept, one with the same payload digest is replaced, as cosign does
 * when an image gets a second signature. */
int azl_cosign_manifest(const char *payload_digest, uint64_t payload_size,
			const char *sig_b64, const char *existing,
			char **config, char **manifest, struct azl_err *err);

/* A signature to push; borrowed. */
struct azl_cosign_sig {
	const char *payload; /* azl_cosign_payload bytes */
	size_t payload_len;
	const char *sig_b64; /* signature over the payload, base64 */
};

/* Borrowed pointers. */
struct azl_push_opts {
	int insecure;            /* plain http instead of https */
	const char *ca_file;     /* PEM CA bundle for https; NULL: the system's */
	const char *user;        /* NULL: anonymous */
	const char *password;    /* with user; never logged */
	uint64_t chunk_size;     /* blobs above this go in PATCH chunks; 0: 32 MiB */
	const struct azl_cosign_sig *sig; /* NULL: no signature */
	/* Progress lines ("exists sha256:...", "uploaded ..."); may be NULL. */
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
};

struct azl_push_result {
	char manifest_digest[72]; /* the image manifest, as the registry confirmed */
	char sig_tag[80];         /* "" when not signed */
	unsigned uploaded;        /* blobs sent */
	unsigned existing;        /* blobs the registry already had */
	unsigned chunks;          /* PATCH requests made */
	unsigned retries;         /* requests sent again after a 5xx, 408, 429
				   * or a failed connection */
};

/* Push the archive at path as ref.  res may be NULL.  Network, TLS, auth
 * and registry refusals are AZL_ERR_WORK naming the method, URL and the
 * registry's error code/message; a bad archive is AZL_ERR_INPUT. */
int azl_registry_push(const char *path, const struct azl_image_ref *ref,
		      const struct azl_push_opts *o, struct azl_push_result *res,
		      struct azl_err *err);

/* Parse a WWW-Authenticate challenge: *scheme "basic"/"bearer" (lowercase),
 * realm/service/scope values (NULL when absent).  Caller frees all four.
 * -EINVAL when there is no scheme.  Exposed for tests. */
int azl_registry_parse_challenge(const char *h, char **scheme, char **realm,
				 char **service, char **scope);

#endif
