/* Running one rpm scriptlet against a staging tree, isolated.
 *
 * The scriptlet runs as rpm runs it: the body is written to a temporary
 * file (/tmp/rpm-tmp.script inside the sandbox) and executed as
 *   INTERPRETER [ARGS...] [TMPFILE] [ARG1 [ARG2]]
 * (no body: INTERPRETER [ARGS...] [ARG1 [ARG2]], rpm's `%post -p`).
 *
 * Isolation: new user, mount, network, PID, IPC and UTS namespaces (also as
 * root); inside uid/gid 0 is the caller (see staging.h for the id map);
 * the staging tree is the root (its overlay, or in copy mode the tree
 * itself; pivot_root, the host tree unmounted);
 * /dev is a tmpfs with null, zero, full, random, urandom and tty bound from
 * the host; /proc is the namespace's own, with sys, irq, bus and fs read-only
 * and sysrq-trigger, kcore and timer_list masked; /tmp is a tmpfs; only a
 * down loopback interface; hostname "localhost"; umask 022; cwd /;
 * stdin /dev/null or the given input; CAP_SYS_ADMIN dropped from the bounding set so the
 * scriptlet cannot undo those mounts.  The environment is exactly
 *   PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TZ=UTC LC_ALL=C LANG=C
 *   SOURCE_DATE_EPOCH=<opts>
 * stdout and stderr are captured together, keeping the last output_max
 * bytes.  On timeout the whole PID namespace is killed. */
#ifndef AZL_COMPOSE_SANDBOX_H
#define AZL_COMPOSE_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "compose/staging.h"

struct azl_scriptlet {
	const char *label;        /* package NEVRA, for messages */
	const char *kind;         /* "%pre", "%post", "%posttrans", "%transfiletriggerin"... */
	const char *interpreter;  /* absolute path inside the image, e.g. /bin/sh */
	const char *const *args;  /* extra interpreter args, NULL-terminated; may be NULL */
	const char *body;         /* script text; NULL: run the interpreter alone */
	int arg1, arg2;           /* instance counts passed after the script; < 0: none */
	/* stdin of the scriptlet (file triggers read the matching paths, one
	 * per line, as rpm feeds them); NULL: /dev/null */
	const char *input;
	size_t input_len;
};

struct azl_sandbox_opts {
	unsigned timeout_s;        /* 0: 300 */
	int64_t source_date_epoch;
	size_t output_max;         /* bytes of output kept; 0: 64 KiB */
};

struct azl_sandbox_result {
	int status;             /* exit code, 128+signal, -1 if it never ran */
	bool timed_out;
	bool output_truncated;  /* earlier output was dropped */
	char *output;           /* owned, NUL-terminated; release with _release */
	size_t output_len;
};

/* Run s inside st.  Returns 0 when the scriptlet exited 0.  A scriptlet that
 * fails, cannot be executed or times out returns -ECANCELED with res filled
 * and err naming the label, the kind, the status ("exit status 1", "timed
 * out after N s") and the end of the output; the caller decides whether rpm
 * would fail there.  A sandbox that cannot be set up returns another
 * negative code (res->status == -1).  res is always filled; release it. */
int azl_sandbox_run(struct azl_staging *st, const struct azl_scriptlet *s,
		    const struct azl_sandbox_opts *o,
		    struct azl_sandbox_result *res, struct azl_err *err);

void azl_sandbox_result_release(struct azl_sandbox_result *res);

/* rpm's rule for what a failure means: true for the scriptlets rpm treats
 * as critical (%pretrans, %pre, %preun, %verifyscript: the package is not
 * installed), false for the rest (%post, %posttrans, triggers: rpm prints
 * "warning: %post(NEVRA) scriptlet failed, exit status N" and goes on). */
bool azl_scriptlet_is_critical(const char *kind);

/* 0 if this host lets the caller create the namespaces and mount an overlay
 * in them (probed with a throwaway tree under tmpdir), else an error saying
 * which step failed.  Lets tests and the build say why scriptlets cannot run. */
int azl_sandbox_probe(const char *tmpdir, struct azl_err *err);

#endif
