/* The subcommand table's entry type.  Each cmd_<name>.c defines one
 * `const struct azl_cmd azl_cmd_<name>` and main.c lists it: the dispatcher
 * learns nothing else about a command.  Commands parse their own options,
 * call lib/, print, and return the exit status (0, 1 work failed, 2 bad
 * usage or input). */
#ifndef AZL_CMD_H
#define AZL_CMD_H

#include <stdio.h>

#include "base/err.h"

#define AZL_VERSION "0.1.0"

struct azl_global {
	int verbose; /* -1 quiet, 0 normal, 1+ verbose */
};

struct azl_cmd {
	const char *name;
	const char *summary; /* one line for `azl-compose --help` */
	const char *usage;   /* full text for `azl-compose NAME --help` */
	int (*run)(int argc, char **argv, const struct azl_global *g);
};

/* Print "azl-compose: <msg>" to stderr and return the error's exit code. */
int azl_cmd_fail(const struct azl_err *err);
/* Print a usage error naming the command and return 2. */
int azl_cmd_usage_error(const struct azl_cmd *cmd, const char *fmt, ...) AZL_PRINTF(2, 3);
/* If argv holds --help / -h, print cmd->usage to stdout and return 1. */
int azl_cmd_wants_help(const struct azl_cmd *cmd, int argc, char **argv);
/* Log to stderr unless quiet (level 0) / only when verbose (level 1). */
void azl_cmd_log(const struct azl_global *g, int level, const char *fmt, ...) AZL_PRINTF(3, 4);

/* -j N: 1..256; returns -1 on anything else. */
int azl_cmd_parse_jobs(const char *s, int *out);
/* Load and check a signing key before any work starts (cmd_sign.c): the
 * passphrase from AZL_SIGN_PASSPHRASE or pass_file; *pass freed by caller. */
int azl_cmd_sign_prepare(const struct azl_global *g, const char *key_path,
			 const char *pass_file, char **pass, struct azl_err *err);

#endif
