/* azl-compose build: lock, fetch, assemble and emit every output. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "compose/build.h"
#include "compose/lock.h"
#include "sign/keys.h"

extern const struct azl_cmd azl_cmd_build;
static const char *sign_pass_file;

static int parse_args(int argc, char **argv, struct azl_build_opts *o,
		      struct azl_global *g)
{
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		const char *val = NULL;
		if (!strcmp(s, "--locked"))
			o->locked = true;
		else if (!strcmp(s, "--offline"))
			o->offline = true;
		else if (!strcmp(s, "-q") || !strcmp(s, "--quiet"))
			g->verbose = -1;
		else if (!strcmp(s, "-v") || !strcmp(s, "--verbose"))
			g->verbose = g->verbose < 0 ? 1 : g->verbose + 1;
		else if (!strcmp(s, "-o") || !strcmp(s, "--output") ||
			 !strcmp(s, "--cache-dir") || !strcmp(s, "-j") || !strcmp(s, "--jobs") ||
			 !strcmp(s, "--sign-key") || !strcmp(s, "--sign-cert") ||
			 !strcmp(s, "--passphrase-file")) {
			if (i + 1 >= argc)
				return azl_cmd_usage_error(&azl_cmd_build, "%s needs a value", s);
			val = argv[++i];
			if (!strcmp(s, "-o") || !strcmp(s, "--output"))
				o->out_dir = val;
			else if (!strcmp(s, "--cache-dir"))
				o->cache_dir = val;
			else if (!strcmp(s, "--sign-key"))
				o->sign_key = val;
			else if (!strcmp(s, "--sign-cert"))
				o->sign_cert = val;
			else if (!strcmp(s, "--passphrase-file"))
				sign_pass_file = val;
			else if (azl_cmd_parse_jobs(val, &o->jobs) < 0)
				return azl_cmd_usage_error(&azl_cmd_build, "%s: '%s' is not a number from 1 to 256", s, val);
		} else if (!strncmp(s, "-j", 2) && s[2]) {
			if (azl_cmd_parse_jobs(s + 2, &o->jobs) < 0)
				return azl_cmd_usage_error(&azl_cmd_build, "-j: '%s' is not a number from 1 to 256", s + 2);
		} else if (!strncmp(s, "-o", 2) && s[2]) {
			o->out_dir = s + 2;
		} else if (s[0] == '-') {
			return azl_cmd_usage_error(&azl_cmd_build, "unknown option '%s'", s);
		} else if (!o->manifest_path) {
			o->manifest_path = s;
		} else {
			return azl_cmd_usage_error(&azl_cmd_build, "unexpected argument '%s'", s);
		}
	}
	if (!o->manifest_path)
		return azl_cmd_usage_error(&azl_cmd_build, "missing MANIFEST");
	if ((o->sign_cert || sign_pass_file) && !o->sign_key)
		return azl_cmd_usage_error(&azl_cmd_build, "--sign-cert and --passphrase-file need --sign-key");
	return 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double started;

/* With -v each stage shows the seconds since the build started. */
static void on_stage(void *ctx, const char *stage, const char *detail)
{
	const struct azl_global *g = ctx;
	if (g->verbose > 0)
		azl_cmd_log(g, 1, "[%6.3f] ", now_s() - started);
	azl_cmd_log(g, 0, "%-10s %s\n", stage, detail ? detail : "");
}

static void on_package(void *ctx, const struct azl_lock_pkg *p,
		       enum azl_pkg_event ev, const char *msg)
{
	const struct azl_global *g = ctx;
	if (ev != AZL_PKG_FETCHED && g->verbose < 1)
		return;
	char *nevra = azl_lock_pkg_nevra(p);
	azl_cmd_log(g, 0, "           %s %s\n", ev == AZL_PKG_FETCHED ? "fetched" : "cached ", nevra);
	free(nevra);
}

static int run(int argc, char **argv, const struct azl_global *g0)
{
	struct azl_global g = *g0;
	struct azl_build_opts o = { 0 };
	struct azl_build_report rep;
	struct azl_err err = { 0 };
	char *pass = NULL;
	int r;

	if (azl_cmd_wants_help(&azl_cmd_build, argc, argv))
		return 0;
	if ((r = parse_args(argc, argv, &o, &g)) != 0)
		return r;
	if (o.sign_key && azl_cmd_sign_prepare(&g, o.sign_key, sign_pass_file,
					       &pass, &err) < 0)
		return azl_cmd_fail(&err);
	o.sign_passphrase = pass;
	o.env_sde = getenv("SOURCE_DATE_EPOCH");
	o.on_stage = on_stage;
	o.ctx = &g;
	o.fetch_cb.on_package = on_package;
	o.fetch_cb.ctx = &g;
	started = now_s();
	r = azl_build(&o, &rep, &err);
	azl_passphrase_free(pass);
	if (g.verbose > 0)
		azl_cmd_log(&g, 1, "[%6.3f] done\n", now_s() - started);
	for (size_t i = 0; i < rep.nwarnings; i++)
		azl_cmd_log(&g, 0, "%s\n", rep.warnings[i]);
	if (rep.nskipped) {
		azl_cmd_log(&g, 0, "scriptlets not run (%zu):\n", rep.nskipped);
		for (size_t i = 0; i < rep.nskipped; i++)
			azl_cmd_log(&g, 0, "  %s\n", rep.skipped[i]);
	}
	if (r < 0) {
		azl_build_report_release(&rep);
		return azl_cmd_fail(&err);
	}
	azl_cmd_log(&g, 0, "built %s: %zu packages (%zu extracted, %zu scriptlets run), SOURCE_DATE_EPOCH=%lld from %s\n",
		    rep.name, rep.npackages, rep.nextracted, rep.nscriptlets,
		    (long long)rep.source_date_epoch, rep.sde_origin);
	for (size_t i = 0; i < rep.noutputs; i++)
		printf("%s\n", rep.outputs[i]);
	azl_build_report_release(&rep);
	return 0;
}

const struct azl_cmd azl_cmd_build = {
	"build",
	"lock, fetch, assemble the root filesystem and emit every output",
	"Usage: azl-compose build MANIFEST [-o DIR] [--cache-dir DIR] [--locked] [--offline] [-j N]\n"
	"                         [--sign-key KEY.pem [--sign-cert CERT.pem]]\n"
	"\n"
	"Resolves MANIFEST (keeping the pins of NAME.lock.json beside it, or\n"
	"writing one), fetches and verifies the packages, assembles the root\n"
	"filesystem without root privileges, runs scriptlets in a sandbox, and\n"
	"writes every output named under `outputs:` into DIR (default ./out),\n"
	"with SHA256SUMS and NAME.build.json.  Outputs appear at their final\n"
	"names only when the whole build succeeded.\n"
	"\n"
	"Options:\n"
	"  -o, --output DIR   where outputs go (default ./out)\n"
	"  --cache-dir DIR    package and object cache (default $XDG_CACHE_HOME/azl-compose)\n"
	"  --locked           fail if the lockfile is missing or resolving would change it\n"
	"  --offline          no network: use the lockfile and the cache as they are\n"
	"  -j, --jobs N       parallel work (never changes an output); default: all cores\n"
	"  --sign-key KEY.pem sign SHA256SUMS at the end (see azl-compose sign)\n"
	"  --sign-cert CERT.pem  certificate for the signing key\n"
	"  --passphrase-file FILE  passphrase of an encrypted signing key\n"
	"  -q, --quiet        only errors\n"
	"  -v, --verbose      more detail\n"
	"\n"
	"Environment: SOURCE_DATE_EPOCH (used when the manifest sets no source_date_epoch),\n"
	"AZL_SIGN_PASSPHRASE (passphrase of an encrypted --sign-key).\n"
	"Exit status: 0 success, 1 the build failed, 2 bad usage or input.\n",
	run,
};
