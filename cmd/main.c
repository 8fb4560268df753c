/* azl-compose entry point: global options, then the subcommand table. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

extern const struct azl_cmd azl_cmd_lock;
extern const struct azl_cmd azl_cmd_fetch;
extern const struct azl_cmd azl_cmd_build;
extern const struct azl_cmd azl_cmd_diff;
extern const struct azl_cmd azl_cmd_rebuild;
extern const struct azl_cmd azl_cmd_sign;
extern const struct azl_cmd azl_cmd_verify;
extern const struct azl_cmd azl_cmd_inspect;
extern const struct azl_cmd azl_cmd_push;

static const struct azl_cmd *const commands[] = {
	&azl_cmd_lock,
	&azl_cmd_fetch,
	&azl_cmd_build,
	&azl_cmd_diff,
	&azl_cmd_rebuild,
	&azl_cmd_sign,
	&azl_cmd_verify,
	&azl_cmd_inspect,
	&azl_cmd_push,
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

int azl_cmd_fail(const struct azl_err *err)
{
	fprintf(stderr, "azl-compose: error: %s\n", err->msg);
	return azl_err_exit_code(err) ? azl_err_exit_code(err) : 1;
}

int azl_cmd_usage_error(const struct azl_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "azl-compose %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'azl-compose %s --help'.\n", cmd->name);
	return 2;
}

int azl_cmd_wants_help(const struct azl_cmd *cmd, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(cmd->usage, stdout);
			return 1;
		}
	}
	return 0;
}

void azl_cmd_log(const struct azl_global *g, int level, const char *fmt, ...)
{
	va_list ap;
	if (g->verbose < level || (level == 0 && g->verbose < 0))
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

int azl_cmd_parse_jobs(const char *s, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (!*s || *end || v < 1 || v > 256)
		return -1;
	*out = (int)v;
	return 0;
}

static void usage(FILE *f)
{
	fputs("Usage: azl-compose [-q|-v] COMMAND [OPTIONS] [ARGS]\n"
	      "\n"
	      "Reproducible image composition from RPM repositories.\n"
	      "\n"
	      "Commands:\n", f);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
	fputs("\n"
	      "Global options:\n"
	      "  -q, --quiet    only errors\n"
	      "  -v, --verbose  more detail (repeat for more)\n"
	      "  --version      print the version\n"
	      "  -h, --help     this text; 'azl-compose COMMAND --help' for a command\n"
	      "\n"
	      "Exit status: 0 success, 1 the work failed, 2 bad usage or input.\n", f);
}

int main(int argc, char **argv)
{
	struct azl_global g = { 0 };
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-q") || !strcmp(a, "--quiet"))
			g.verbose = -1;
		else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
			g.verbose = g.verbose < 0 ? 1 : g.verbose + 1;
		else if (!strcmp(a, "--version")) {
			printf("azl-compose %s\n", AZL_VERSION);
			return 0;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "azl-compose: unknown option '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	for (size_t c = 0; c < NCOMMANDS; c++)
		if (!strcmp(argv[i], commands[c]->name))
			return commands[c]->run(argc - i, argv + i, &g);
	fprintf(stderr, "azl-compose: unknown command '%s'\n", argv[i]);
	usage(stderr);
	return 2;
}
