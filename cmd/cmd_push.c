/* azl-compose push: DIR/NAME.oci.tar -> a registry, optionally cosign-signed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fs.h"
#include "cmd.h"
#include "compose/registry.h"
#include "sign/blobsig.h"
#include "sign/keys.h"

extern const struct azl_cmd azl_cmd_push;

struct push_args {
	const char *archive, *ref;
	const char *ca_file, *user, *password_file;
	const char *sign_key, *pass_file, *chunk;
	int insecure;
};

static const char **value_slot(struct push_args *a, const char *s)
{
	return !strcmp(s, "--ca-file") ? &a->ca_file :
	       !strcmp(s, "--user") ? &a->user :
	       !strcmp(s, "--password-file") ? &a->password_file :
	       !strcmp(s, "--sign-key") ? &a->sign_key :
	       !strcmp(s, "--passphrase-file") ? &a->pass_file :
	       !strcmp(s, "--chunk-size") ? &a->chunk : NULL;
}

static int parse_args(int argc, char **argv, struct push_args *a)
{
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		const char **dst = value_slot(a, s);
		if (dst) {
			if (i + 1 >= argc)
				return azl_cmd_usage_error(&azl_cmd_push, "%s needs a value", s);
			*dst = argv[++i];
		} else if (!strcmp(s, "--insecure")) {
			a->insecure = 1;
		} else if (!strcmp(s, "--password")) {
			return azl_cmd_usage_error(&azl_cmd_push, "a password is never taken from "
						   "the command line: use --password-file FILE");
		} else if (s[0] == '-') {
			return azl_cmd_usage_error(&azl_cmd_push, "unknown option '%s'", s);
		} else if (!a->archive) {
			a->archive = s;
		} else if (!a->ref) {
			a->ref = s;
		} else {
			return azl_cmd_usage_error(&azl_cmd_push, "unexpected argument '%s'", s);
		}
	}
	if (!a->archive || !a->ref)
		return azl_cmd_usage_error(&azl_cmd_push, "expected DIR/NAME.oci.tar HOST[:PORT]/REPO[:TAG]");
	if (!a->user != !a->password_file)
		return azl_cmd_usage_error(&azl_cmd_push, "--user and --password-file go together");
	if (a->insecure && a->ca_file)
		return azl_cmd_usage_error(&azl_cmd_push, "--insecure (plain http) and --ca-file exclude each other");
	if (a->pass_file && !a->sign_key)
		return azl_cmd_usage_error(&azl_cmd_push, "--passphrase-file needs --sign-key");
	return 0;
}

static int parse_chunk(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s)
		return 0;
	v = strtoull(s, &end, 10);
	if (!*s || *end || v < 1 || s[0] == '-')
		return azl_cmd_usage_error(&azl_cmd_push, "--chunk-size: '%s' is not a byte count", s);
	*out = v;
	return 0;
}

/* DIR/NAME.oci.tar -> DIR/NAME.oci.payload.json; caller frees. */
static char *payload_path(const char *archive)
{
	size_t n = strlen(archive);

	if (n > 4 && !strcmp(archive + n - 4, ".tar"))
		n -= 4;
	return azl_xasprintf("%.*s.payload.json", (int)n, archive);
}

/* Build and sign the simple-signing payload for ref; keep payload and
 * signature beside the archive (cosign-blob form: stock openssl verifies
 * them) and point sig at them. */
static int sign_payload(const struct azl_global *g, const struct push_args *a,
			const char *ref, struct azl_cosign_sig *sig,
			struct azl_err *err)
{
	char digest[72], *pass = NULL, *path = NULL, *sig_path = NULL, *payload = NULL, *b64 = NULL;
	EVP_PKEY *key = NULL;
	enum azl_key_type type;
	int r;

	if ((r = azl_oci_tar_manifest(a->archive, digest, NULL, NULL, err)) < 0 ||
	    (r = azl_cmd_sign_prepare(g, a->sign_key, a->pass_file, &pass, err)) < 0 ||
	    (r = azl_key_load_private(a->sign_key, pass, &key, &type, err)) < 0)
		goto out;
	if (!(payload = azl_cosign_payload(ref, digest))) {
		r = azl_err_input(err, "reference '%s' is not valid UTF-8", ref);
		goto out;
	}
	if ((r = azl_blob_sign(key, payload, strlen(payload), &b64, err)) < 0)
		goto out;
	path = payload_path(a->archive);
	sig_path = azl_xasprintf("%s.sig", path);
	if ((r = azl_write_file_atomic(path, payload, strlen(payload), 0644, err)) < 0 ||
	    (r = azl_write_file_atomic(sig_path, b64, strlen(b64), 0644, err)) < 0)
		goto out;
	azl_cmd_log(g, 1, "signed %s for %s: %s, %s\n", digest, ref, path, sig_path);
	sig->payload = payload;
	sig->payload_len = strlen(payload);
	sig->sig_b64 = b64;
	payload = b64 = NULL;
out:
	EVP_PKEY_free(key);
	azl_passphrase_free(pass);
	free(payload);
	free(b64);
	free(path);
	free(sig_path);
	return r;
}

static void log_line(void *ctx, const char *line)
{
	azl_cmd_log(ctx, 0, "%s\n", line);
}

static int push(const struct azl_global *g, const struct push_args *a,
		uint64_t chunk, struct azl_err *err)
{
	struct azl_image_ref ref = { 0 };
	struct azl_cosign_sig sig = { 0 };
	struct azl_push_result res;
	struct azl_push_opts o = {
		.insecure = a->insecure, .ca_file = a->ca_file, .user = a->user,
		.chunk_size = chunk, .log = log_line, .log_ctx = (void *)g,
	};
	char *password = NULL, *refstr = NULL;
	int r;

	if ((r = azl_image_ref_parse(a->ref, &ref, err)) < 0)
		goto out;
	refstr = azl_image_ref_str(&ref);
	if (a->password_file && (r = azl_passphrase_read_file(a->password_file, &password, err)) < 0)
		goto out;
	o.password = password;
	if (a->sign_key) {
		if ((r = sign_payload(g, a, refstr, &sig, err)) < 0)
			goto out;
		o.sig = &sig;
	}
	if ((r = azl_registry_push(a->archive, &ref, &o, &res, err)) < 0)
		goto out;
	char retried[48] = "";
	if (res.retries)
		snprintf(retried, sizeof(retried), ", %u requests sent again", res.retries);
	azl_cmd_log(g, 0, "pushed %s: %u blobs uploaded (%u chunks), %u already present%s%s%s\n",
		    refstr, res.uploaded, res.chunks, res.existing, retried,
		    res.sig_tag[0] ? ", signature " : "", res.sig_tag);
	printf("%s/%s@%s\n", ref.host, ref.repo, res.manifest_digest);
out:
	azl_passphrase_free(password);
	free((char *)sig.payload);
	free((char *)sig.sig_b64);
	free(refstr);
	azl_image_ref_free(&ref);
	return r;
}

static int run(int argc, char **argv, const struct azl_global *g)
{
	struct push_args a = { 0 };
	struct azl_err err = { 0 };
	uint64_t chunk = 0;
	int r;

	if (azl_cmd_wants_help(&azl_cmd_push, argc, argv))
		return 0;
	if ((r = parse_args(argc, argv, &a)) != 0 || (r = parse_chunk(a.chunk, &chunk)) != 0)
		return r;
	if (push(g, &a, chunk, &err) < 0)
		return azl_cmd_fail(&err);
	return 0;
}

const struct azl_cmd azl_cmd_push = {
	"push",
	"push DIR/NAME.oci.tar to an OCI registry, with a cosign signature",
	"Usage: azl-compose push DIR/NAME.oci.tar HOST[:PORT]/REPO[:TAG] [OPTIONS]\n"
	"\n"
	"Uploads the image's blobs (streamed from the archive; blobs the registry\n"
	"already has are skipped) and then its manifest as TAG (default latest),\n"
	"with the OCI distribution API.  Prints HOST/REPO@sha256:DIGEST.\n"
	"\n"
	"With --sign-key, also writes DIR/NAME.oci.payload.json (cosign's\n"
	"simple-signing payload naming HOST/REPO:TAG and the manifest digest) and\n"
	"DIR/NAME.oci.payload.json.sig (base64 signature over it), and pushes the\n"
	"signature as the tag sha256-DIGEST.sig, as cosign does; skopeo/podman\n"
	"verify it with a sigstoreSigned policy and use-sigstore-attachments.\n"
	"\n"
	"Options:\n"
	"  --insecure              plain http (no TLS); default https\n"
	"  --ca-file FILE          PEM CA certificate(s) for the registry's TLS\n"
	"  --user USER             registry user (Basic, or for a Bearer token)\n"
	"  --password-file FILE    that user's password (first line)\n"
	"  --sign-key KEY.pem      sign: ECDSA P-256 (cosign's), Ed25519 or RSA\n"
	"  --passphrase-file FILE  passphrase of an encrypted signing key\n"
	"  --chunk-size BYTES      upload blobs larger than this in PATCH chunks of\n"
	"                          this size (default 33554432)\n"
	"\n"
	"Environment: AZL_SIGN_PASSPHRASE, the passphrase of an encrypted key;\n"
	"AZL_FETCH_RETRIES (default 4) and AZL_FETCH_BACKOFF_MS (default 200): how\n"
	"often and after what first wait a request is sent again after a 5xx,\n"
	"408 or 429 or a failed connection (blob uploads are not replayed).\n"
	"Passwords and passphrases are never taken from the command line.\n"
	"Exit status: 0 pushed, 1 the push failed (network, TLS, authentication,\n"
	"the registry refused), 2 bad usage, reference, archive or key.\n",
	run,
};
