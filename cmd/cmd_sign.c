/* azl-compose sign: DIR/SHA256SUMS -> DIR/SHA256SUMS.sig (cosign-blob form). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "cmd.h"
#include "sign/blobsig.h"
#include "sign/keys.h"

extern const struct azl_cmd azl_cmd_sign;

struct sign_args {
	const char *dir, *key, *cert, *pass_file;
};

static int parse_args(int argc, char **argv, struct sign_args *a)
{
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		const char **dst = !strcmp(s, "--key") ? &a->key :
				   !strcmp(s, "--cert") ? &a->cert :
				   !strcmp(s, "--passphrase-file") ? &a->pass_file : NULL;
		if (dst) {
			if (i + 1 >= argc)
				return azl_cmd_usage_error(&azl_cmd_sign, "%s needs a value", s);
			*dst = argv[++i];
		} else if (s[0] == '-') {
			return azl_cmd_usage_error(&azl_cmd_sign, "unknown option '%s'", s);
		} else if (!a->dir) {
			a->dir = s;
		} else {
			return azl_cmd_usage_error(&azl_cmd_sign, "unexpected argument '%s'", s);
		}
	}
	if (!a->dir)
		return azl_cmd_usage_error(&azl_cmd_sign, "missing DIR");
	if (!a->key)
		return azl_cmd_usage_error(&azl_cmd_sign, "missing --key KEY.pem");
	return 0;
}

/* Shared with build --sign-key: the passphrase from --passphrase-file, else
 * AZL_SIGN_PASSPHRASE, else none; and the warning for a key others can
 * read.  *pass freed with azl_passphrase_free. */
int azl_cmd_sign_prepare(const struct azl_global *g, const char *key_path,
			 const char *pass_file, char **pass, struct azl_err *err)
{
	const char *env = getenv("AZL_SIGN_PASSPHRASE");

	*pass = NULL;
	if (azl_key_mode_too_open(key_path) == 1)
		azl_cmd_log(g, 0, "azl-compose: warning: %s is readable by group or others; chmod 600 it\n",
			    key_path);
	if (pass_file)
		return azl_passphrase_read_file(pass_file, pass, err);
	if (env)
		*pass = azl_xstrdup(env);
	return 0;
}

static int run(int argc, char **argv, const struct azl_global *g)
{
	struct sign_args a = { 0 };
	struct azl_err err = { 0 };
	const char *type = NULL;
	char *pass = NULL;
	int r;

	if (azl_cmd_wants_help(&azl_cmd_sign, argc, argv))
		return 0;
	if ((r = parse_args(argc, argv, &a)) != 0)
		return r;
	r = azl_cmd_sign_prepare(g, a.key, a.pass_file, &pass, &err);
	if (r == 0)
		r = azl_sign_dir(a.dir, a.key, a.cert, pass, &type, &err);
	azl_passphrase_free(pass);
	if (r < 0)
		return azl_cmd_fail(&err);
	azl_cmd_log(g, 0, "signed %s/SHA256SUMS with a %s key\n", a.dir, type);
	printf("%s/SHA256SUMS.sig\n", a.dir);
	return 0;
}

const struct azl_cmd azl_cmd_sign = {
	"sign",
	"sign DIR/SHA256SUMS (which lists every output, the SBOM and the provenance)",
	"Usage: azl-compose sign DIR --key KEY.pem [--cert CERT.pem] [--passphrase-file FILE]\n"
	"\n"
	"Signs DIR/SHA256SUMS and writes DIR/SHA256SUMS.sig: base64 of the\n"
	"signature over the file's bytes, the form `cosign sign-blob` writes\n"
	"(ECDSA P-256 and RSA over SHA-256, Ed25519 pure).  Stock openssl\n"
	"verifies it; see docs/signing.md.\n"
	"\n"
	"Options:\n"
	"  --key KEY.pem            PEM private key: ECDSA P-256, Ed25519 or RSA >= 2048\n"
	"  --cert CERT.pem          certificate for the key, copied to DIR/SHA256SUMS.pem\n"
	"  --passphrase-file FILE   passphrase of an encrypted key (first line)\n"
	"\n"
	"Environment: AZL_SIGN_PASSPHRASE, the passphrase of an encrypted key\n"
	"(a passphrase is never taken from the command line).\n"
	"Exit status: 0 signed, 1 signing failed, 2 bad usage, key or input.\n",
	run,
};
