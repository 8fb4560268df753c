/* azl-compose diff: where two artifacts or output directories differ. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "compose/diff.h"

extern const struct azl_cmd azl_cmd_diff;

struct diff_args {
	const char *a, *b;
	bool json;
	struct azl_diff_opts o;
};

static int parse_max(const char *s, size_t *out)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || v < 1 || v > 1000000)
		return -1;
	*out = (size_t)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct diff_args *d)
{
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (!strcmp(s, "--json"))
			d->json = true;
		else if (!strcmp(s, "--max") || !strncmp(s, "--max=", 6)) {
			const char *v = s[5] == '=' ? s + 6 : (i + 1 < argc ? argv[++i] : NULL);
			if (!v || parse_max(v, &d->o.max) < 0)
				return azl_cmd_usage_error(&azl_cmd_diff, "--max needs a number from 1 to 1000000");
		} else if (s[0] == '-' && s[1])
			return azl_cmd_usage_error(&azl_cmd_diff, "unknown option '%s'", s);
		else if (!d->a)
			d->a = s;
		else if (!d->b)
			d->b = s;
		else
			return azl_cmd_usage_error(&azl_cmd_diff, "unexpected argument '%s'", s);
	}
	if (!d->b)
		return azl_cmd_usage_error(&azl_cmd_diff, "needs two paths, A and B");
	return 0;
}

static int run(int argc, char **argv, const struct azl_global *g)
{
	struct diff_args d = { 0 };
	struct azl_diff_result res;
	struct azl_err err = { 0 };
	int r;

	(void)g;
	if (azl_cmd_wants_help(&azl_cmd_diff, argc, argv))
		return 0;
	if ((r = parse_args(argc, argv, &d)) != 0)
		return r;
	r = azl_diff_paths(d.a, d.b, &d.o, &res, &err);
	if (r < 0) {
		azl_diff_result_release(&res);
		/* Exit 2 for any error: 1 means "different" here. */
		azl_cmd_fail(&err);
		return 2;
	}
	char *text = d.json ? azl_diff_format_json(&res) : azl_diff_format_text(&res);
	fputs(text, stdout);
	free(text);
	r = res.total ? 1 : 0;
	azl_diff_result_release(&res);
	return r;
}

const struct azl_cmd azl_cmd_diff = {
	"diff",
	"show where two artifacts or output directories differ",
	"Usage: azl-compose diff A B [--max N] [--json]\n"
	"\n"
	"A and B are two artifacts of one kind (OCI archive, tar, JSON, disk\n"
	"image) or two output directories.  diff descends through the formats:\n"
	"directory -> files; OCI archive -> members, index.json -> manifest ->\n"
	"config fields and each layer's tar entries; any tar (gzip, zstd, xz or\n"
	"plain) -> entries; JSON -> fields; disk (VHD or raw) -> VHD footer ->\n"
	"GPT -> partitions -> ext4 or vfat entries (read in-process).\n"
	"Each difference is a path (levels joined by ':') and what differs:\n"
	"content digest, size, mode, owner, mtime, xattr, link target, type,\n"
	"entry order, compression, added, removed, filesystem metadata, or a\n"
	"JSON, VHD footer or GPT field.  The innermost differences come first.\n"
	"\n"
	"Options:\n"
	"  --max N   show at most N differences (default 100); all are counted\n"
	"  --json    machine-readable output for CI\n"
	"\n"
	"Exit status: 0 identical, 1 different, 2 error.\n",
	run,
};
