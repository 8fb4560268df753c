/* azl-compose rebuild: build DIR's record again and compare byte for byte. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "compose/rebuild.h"

extern const struct azl_cmd azl_cmd_rebuild;

static int parse_num(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* Options that take a value; NULL when s is none of them. */
static const char **value_slot(const char *s, struct azl_rebuild_opts *o)
{
	if (!strcmp(s, "--cache-dir"))
		return &o->cache_dir;
	if (!strcmp(s, "--source-dir"))
		return &o->source_dir;
	if (!strcmp(s, "--record"))
		return &o->record;
	return NULL;
}

static int parse_args(int argc, char **argv, struct azl_rebuild_opts *o,
		      struct azl_global *g)
{
	long v;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		const char **slot = value_slot(s, o);
		bool num = !strcmp(s, "--max") || !strcmp(s, "-j") || !strcmp(s, "--jobs");
		if ((slot || num) && i + 1 >= argc)
			return azl_cmd_usage_error(&azl_cmd_rebuild, "%s needs a value", s);
		if (slot)
			*slot = argv[++i];
		else if (!strcmp(s, "--max")) {
			if (parse_num(argv[++i], 1, 1000000, &v) < 0)
				return azl_cmd_usage_error(&azl_cmd_rebuild, "--max: a number from 1 to 1000000");
			o->diff.max = (size_t)v;
		} else if (num) {
			if (parse_num(argv[++i], 1, 256, &v) < 0)
				return azl_cmd_usage_error(&azl_cmd_rebuild, "%s: a number from 1 to 256", s);
			o->jobs = (int)v;
		} else if (!strcmp(s, "--offline"))
			o->offline = true;
		else if (!strcmp(s, "--keep"))
			o->keep = true;
		else if (!strcmp(s, "-q") || !strcmp(s, "--quiet"))
			g->verbose = -1;
		else if (!strcmp(s, "-v") || !strcmp(s, "--verbose"))
			g->verbose = g->verbose < 0 ? 1 : g->verbose + 1;
		else if (s[0] == '-')
			return azl_cmd_usage_error(&azl_cmd_rebuild, "unknown option '%s'", s);
		else if (!o->dir)
			o->dir = s;
		else
			return azl_cmd_usage_error(&azl_cmd_rebuild, "unexpected argument '%s'", s);
	}
	if (!o->dir)
		return azl_cmd_usage_error(&azl_cmd_rebuild, "missing DIR");
	return 0;
}

static void on_stage(void *ctx, const char *stage, const char *detail)
{
	azl_cmd_log(ctx, 1, "  %-10s %s\n", stage, detail ? detail : "");
}

static void print_report(const struct azl_rebuild_report *rep, const struct azl_global *g)
{
	for (size_t i = 0; i < rep->nfiles; i++) {
		const struct azl_rebuild_file *f = &rep->files[i];
		printf("%s %s\n", f->match ? "match   " : "MISMATCH", f->name);
		if (f->match)
			continue;
		char *text = azl_diff_format_text(&f->diff);
		fputs(text, stdout);
		free(text);
	}
	if (rep->nmismatch) {
		printf("rebuild of %s differs in %zu of %zu files\n", rep->name,
		       rep->nmismatch, rep->nfiles);
		if (rep->work_dir)
			printf("rebuilt files kept in %s\n", rep->work_dir);
	} else
		azl_cmd_log(g, 0, "rebuild of %s: all %zu files identical\n", rep->name, rep->nfiles);
}

static int run(int argc, char **argv, const struct azl_global *g0)
{
	struct azl_global g = *g0;
	struct azl_rebuild_opts o = { 0 };
	struct azl_rebuild_report rep;
	struct azl_err err = { 0 };
	int r;

	if (azl_cmd_wants_help(&azl_cmd_rebuild, argc, argv))
		return 0;
	if ((r = parse_args(argc, argv, &o, &g)) != 0)
		return r;
	o.tmp_dir = getenv("TMPDIR");
	o.on_stage = on_stage;
	o.ctx = &g;
	r = azl_rebuild(&o, &rep, &err);
	if (r < 0) {
		azl_rebuild_report_release(&rep);
		azl_cmd_fail(&err);
		return 2; /* 1 means "differs" */
	}
	print_report(&rep, &g);
	r = rep.nmismatch ? 1 : 0;
	azl_rebuild_report_release(&rep);
	return r;
}

const struct azl_cmd azl_cmd_rebuild = {
	"rebuild",
	"rebuild an output folder from its build record and compare byte for byte",
	"Usage: azl-compose rebuild DIR [--cache-dir C] [--source-dir S] [--offline]\n"
	"                           [--record FILE] [--keep] [--max N] [-j N]\n"
	"\n"
	"Reads DIR/NAME.build.json (manifest and lockfile text, SOURCE_DATE_EPOCH,\n"
	"seed), builds again with --locked semantics in a temporary folder (from\n"
	"the cache, fetching what is missing from the manifest's repositories), and\n"
	"compares every recorded output, the record and SHA256SUMS with DIR byte\n"
	"for byte.  On a mismatch it prints where they differ (as `diff`) and\n"
	"keeps the rebuilt files.  See docs/reproducibility.md.\n"
	"\n"
	"Options:\n"
	"  --cache-dir C    package cache (default $XDG_CACHE_HOME/azl-compose)\n"
	"  --source-dir S   folder the manifest's relative paths (gpgkey,\n"
	"                   files.source) resolve against: where it was built\n"
	"  --offline        no network: every package must be in the cache\n"
	"  --record FILE    the build record, when DIR holds more than one\n"
	"  --keep           keep the temporary folder even when all matched\n"
	"  --max N          differences shown per file (default 100)\n"
	"  -j, --jobs N     parallel work (never changes an output)\n"
	"\n"
	"Environment: TMPDIR (where the temporary folder goes; default /tmp).\n"
	"Exit status: 0 identical, 1 an output differs, 2 error.\n",
	run,
};
