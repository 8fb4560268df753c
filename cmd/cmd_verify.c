/* azl-compose verify: every file SHA256SUMS lists, its signature, and with
 * --lock the image's package set (lib/sign/verify.h); one PASS/FAIL line
 * per check. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "sign/verify.h"

extern const struct azl_cmd azl_cmd_verify;

struct verify_args {
	const char *dir, *key, *lock;
	bool json;
};

static void print_report(const struct azl_verify_report *rep, bool json, bool ok)
{
	json_t *arr, *root;
	char *text;

	if (!json) {
		for (size_t i = 0; i < rep->n; i++)
			printf("%s %s%s%s\n", rep->v[i].ok ? "PASS" : "FAIL", rep->v[i].what,
			       rep->v[i].detail ? ": " : "", rep->v[i].detail ? rep->v[i].detail : "");
		printf("%s\n", ok ? "PASS all checks" : "FAIL verification");
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < rep->n; i++) {
		json_t *c = json_pack("{s:s, s:b}", "check", rep->v[i].what, "ok", rep->v[i].ok);
		if (rep->v[i].detail)
			json_object_set_new(c, "detail", json_string(rep->v[i].detail));
		json_array_append_new(arr, c);
	}
	root = json_pack("{s:b, s:o}", "ok", ok, "checks", arr);
	text = json_dumps(root, JSON_SORT_KEYS | JSON_INDENT(2));
	printf("%s\n", text);
	free(text);
	json_decref(root);
}

static int parse_args(int argc, char **argv, struct verify_args *a)
{
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		const char **dst = !strcmp(s, "--key") ? &a->key :
				   !strcmp(s, "--lock") ? &a->lock : NULL;
		if (dst) {
			if (i + 1 >= argc)
				return azl_cmd_usage_error(&azl_cmd_verify, "%s needs a value", s);
			*dst = argv[++i];
		} else if (!strcmp(s, "--json")) {
			a->json = true;
		} else if (s[0] == '-') {
			return azl_cmd_usage_error(&azl_cmd_verify, "unknown option '%s'", s);
		} else if (!a->dir) {
			a->dir = s;
		} else {
			return azl_cmd_usage_error(&azl_cmd_verify, "unexpected argument '%s'", s);
		}
	}
	if (!a->dir)
		return azl_cmd_usage_error(&azl_cmd_verify, "missing DIR");
	if (!a->key)
		return azl_cmd_usage_error(&azl_cmd_verify, "missing --key PUB.pem");
	return 0;
}

static int run(int argc, char **argv, const struct azl_global *g)
{
	struct verify_args a = { 0 };
	struct azl_verify_report rep = { 0 };
	struct azl_err err = { 0 };
	bool ok;
	int r;

	(void)g;
	if (azl_cmd_wants_help(&azl_cmd_verify, argc, argv))
		return 0;
	if ((r = parse_args(argc, argv, &a)) != 0)
		return r;
	/* An unreadable SHA256SUMS is a failing check in rep too: print rep. */
	r = azl_verify_dir(&(struct azl_verify_opts){ a.dir, a.key, a.lock }, &rep, &err);
	ok = r == 0 && azl_verify_report_ok(&rep);
	print_report(&rep, a.json, ok);
	azl_verify_report_release(&rep);
	return ok ? 0 : 1;
}

const struct azl_cmd azl_cmd_verify = {
	"verify",
	"check a build's outputs against SHA256SUMS, its signature and the lockfile",
	"Usage: azl-compose verify DIR --key PUB.pem [--lock NAME.lock.json] [--json]\n"
	"\n"
	"Checks that every file DIR/SHA256SUMS lists exists and matches, that\n"
	"DIR/SHA256SUMS.sig is a signature of SHA256SUMS by PUB.pem (a PEM\n"
	"public key or certificate), and with --lock that the package set of the\n"
	"SBOM (NAME.spdx.json) and of the image's own rpmdb (in the OCI layer, and\n"
	"in each disk's root filesystem, read through libguestfs) equals the\n"
	"lockfile.\n"
	"Prints one PASS/FAIL line per check (--json: one JSON document).\n"
	"\n"
	"Exit status: 0 every check passed, 1 a check failed, 2 bad usage.\n",
	run,
};
