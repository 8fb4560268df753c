/* The scriptlet sandbox.  Three processes:
 *   helper  forked from the build; unshares the namespaces, waits for the
 *           build to write its id maps, forks init, passes on its status;
 *   init    PID 1 of the new PID namespace: mounts the overlay, /dev,
 *           /proc and /tmp, pivots into the staging root, forks the
 *           scriptlet, reaps, and ends with the scriptlet's status (taking
 *           every leftover process with it: PID 1 exiting kills the rest);
 *   script  execs the interpreter.
 * The build kills the helper on timeout; init has PDEATHSIG=SIGKILL, so the
 * whole namespace goes.  Children report setup failures through a pipe as
 * "S<errno> text" (sandbox setup) or "X<errno> text" (exec failed). */
#include "compose/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"

#define NS_FLAGS (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | \
		  CLONE_NEWIPC | CLONE_NEWUTS)
#define SCRIPT_PATH "/tmp/rpm-tmp.script"
#define INPUT_PATH "/tmp/rpm-tmp.input"
#define DEFAULT_TIMEOUT 300
#define DEFAULT_OUTPUT (64 * 1024)
#define SETUP_FAILED 125

struct child {
	const struct azl_staging *st;
	const struct azl_scriptlet *s;
	char **argv, **envp;
	int out_fd, status_fd, sync_fd;
};

/* ---- inside the sandbox (after fork: no allocation, report and _exit) ---- */

static void report(int fd, char tag, int e, const char *what)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "%c%d %s: %s", tag, e, what,
			 strerror(e));
	if (n > 0)
		(void)!write(fd, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
}

__attribute__((noreturn)) static void fail(const struct child *x, const char *what)
{
	report(x->status_fd, 'S', errno, what);
	_exit(SETUP_FAILED);
}

static bool is_dir(const char *path)
{
	struct stat sb;
	return lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static void bind_dev(const struct child *x, const char *name)
{
	char src[64], dst[64];
	int fd;

	snprintf(src, sizeof(src), "/dev/%s", name);
	snprintf(dst, sizeof(dst), "root/dev/%s", name);
	fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd < 0)
		fail(x, dst);
	close(fd);
	if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
		fail(x, dst);
}

static void setup_dev(const struct child *x)
{
	static const char *const nodes[] = { "null", "zero", "full", "random",
					     "urandom", "tty" };
	static const char *const links[][2] = {
		{ "/proc/self/fd", "root/dev/fd" },
		{ "/proc/self/fd/0", "root/dev/stdin" },
		{ "/proc/self/fd/1", "root/dev/stdout" },
		{ "/proc/self/fd/2", "root/dev/stderr" },
	};

	if (!is_dir("root/dev"))
		return;
	if (mount("tmpfs", "root/dev", "tmpfs", MS_NOSUID | MS_NOEXEC,
		  "mode=0755,size=1m") < 0)
		fail(x, "mounting tmpfs on /dev");
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++)
		bind_dev(x, nodes[i]);
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		if (symlink(links[i][0], links[i][1]) < 0)
			fail(x, links[i][1]);
	if (mkdir("root/dev/shm", 01777) < 0 || chmod("root/dev/shm", 01777) < 0)
		fail(x, "/dev/shm");
}

/* What Docker hides from a container's root, for the same reason: inside
 * uid 0 may be the host's root (a root build). */
static void setup_proc(const struct child *x)
{
	static const char *const ro[] = { "sys", "irq", "bus", "fs" };
	static const char *const masked[] = { "sysrq-trigger", "kcore", "timer_list" };
	const unsigned long pflags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	char p[64];

	if (!is_dir("root/proc"))
		return;
	if (mount("proc", "root/proc", "proc", pflags, NULL) < 0)
		fail(x, "mounting /proc");
	for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++) {
		snprintf(p, sizeof(p), "root/proc/%s", ro[i]);
		if (access(p, F_OK) < 0)
			continue;
		if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0 ||
		    mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | pflags,
			  NULL) < 0)
			fail(x, p);
	}
	for (size_t i = 0; i < sizeof(masked) / sizeof(masked[0]); i++) {
		snprintf(p, sizeof(p), "root/proc/%s", masked[i]);
		if (access(p, F_OK) == 0 &&
		    mount("/dev/null", p, NULL, MS_BIND, NULL) < 0)
			fail(x, p);
	}
}

static void setup_root(const struct child *x)
{
	if (sethostname("localhost", 9) < 0)
		fail(x, "sethostname");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		fail(x, "making mounts private");
	/* relative names: workdir paths may hold ',' or ':' */
	if (chdir(x->st->dir) < 0)
		fail(x, x->st->dir);
	if (!x->st->overlay) {
		if (mount("lower", "root", NULL, MS_BIND | MS_REC, NULL) < 0)
			fail(x, "binding the staging tree");
	} else if (mount("overlay", "root", "overlay", 0,
			 "lowerdir=lower,upperdir=upper,workdir=work,userxattr") < 0 &&
		   (errno != EINVAL ||
		    mount("overlay", "root", "overlay", 0,
			  "lowerdir=lower,upperdir=upper,workdir=work") < 0)) {
		fail(x, "mounting the staging overlay");
	}
	setup_dev(x);
	setup_proc(x);
	/* the script file must not land in the image */
	if (!is_dir("root/tmp")) {
		errno = ENOTDIR;
		fail(x, "the image's /tmp");
	}
	if (mount("tmpfs", "root/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
		  "mode=1777") < 0)
		fail(x, "mounting tmpfs on /tmp");
	if (chdir("root") < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
		fail(x, "pivot_root into the staging tree");
	if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		fail(x, "detaching the host tree");
}

static void write_tmp(const struct child *x, const char *path,
		      const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || azl_write_all(fd, data, len) < 0)
		fail(x, path);
	close(fd);
}

/* Into the sandbox's own /tmp: a file, not a pipe, so a large input can
 * never block the build against a scriptlet that does not read it. */
static void write_script(const struct child *x)
{
	if (x->s->body)
		write_tmp(x, SCRIPT_PATH, x->s->body, strlen(x->s->body));
	if (x->s->input)
		write_tmp(x, INPUT_PATH, x->s->input, x->s->input_len);
}

__attribute__((noreturn)) static void script_main(const struct child *x)
{
	int in = open(x->s->input ? INPUT_PATH : "/dev/null", O_RDONLY);

	if (x->s->input)
		(void)unlink(INPUT_PATH); /* open is enough */
	setsid();
	umask(022);
	if (in < 0 || dup2(in, 0) < 0 || dup2(x->out_fd, 1) < 0 ||
	    dup2(x->out_fd, 2) < 0)
		fail(x, "redirecting stdio");
	if (in > 2)
		close(in);
	(void)syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */);
	/* without it the scriptlet could unmount the /proc masks */
	if (prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) < 0)
		fail(x, "dropping CAP_SYS_ADMIN");
	execve(x->argv[0], x->argv, x->envp);
	report(x->status_fd, 'X', errno, x->argv[0]);
	_exit(127);
}

__attribute__((noreturn)) static void init_main(const struct child *x)
{
	pid_t script, p;
	int ws = 0;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		fail(x, "PR_SET_PDEATHSIG");
	setup_root(x);
	write_script(x);
	script = fork();
	if (script < 0)
		fail(x, "fork");
	if (script == 0)
		script_main(x);
	close(x->out_fd);
	/* reap orphans too until the scriptlet itself is done */
	while ((p = wait(&ws)) != script)
		if (p < 0 && errno != EINTR)
			fail(x, "wait");
	if (WIFSIGNALED(ws))
		_exit(128 + WTERMSIG(ws));
	_exit(WEXITSTATUS(ws));
}

__attribute__((noreturn)) static void helper_main(const struct child *x)
{
	pid_t init;
	char c = 0;
	int ws = 0;

	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (unshare(NS_FLAGS) < 0)
		fail(x, "unshare(user, mount, net, pid, ipc, uts namespaces)");
	if (send(x->sync_fd, "u", 1, MSG_NOSIGNAL) != 1 ||
	    recv(x->sync_fd, &c, 1, 0) != 1 || c != 'g')
		_exit(SETUP_FAILED); /* the build reported why */
	if (x->st->id_count > 1 && setgroups(0, NULL) < 0)
		fail(x, "setgroups");
	if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		fail(x, "becoming root in the user namespace");
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL); /* id changes clear it */
	init = fork();
	if (init < 0)
		fail(x, "fork");
	if (init == 0)
		init_main(x);
	while (waitpid(init, &ws, 0) < 0)
		if (errno != EINTR)
			fail(x, "waitpid");
	_exit(WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws));
}

/* ---- in the build ---- */

static int write_proc(pid_t pid, const char *file, const char *text,
		      struct azl_err *err)
{
	char path[64];
	int fd, r = 0;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || azl_write_all(fd, text, strlen(text)) < 0)
		r = azl_errf(err, -errno, "writing %s \"%s\": %s", path, text,
			     strerror(errno));
	if (fd >= 0)
		close(fd);
	return r;
}

/* Unprivileged: 0 -> caller only.  Root: 0..N-1 -> themselves. */
static int write_id_maps(const struct azl_staging *st, pid_t pid,
			 struct azl_err *err)
{
	char map[64];
	int r = 0;

	if (st->id_count == 1)
		r = write_proc(pid, "setgroups", "deny", err);
	snprintf(map, sizeof(map), "0 %u %u\n",
		 st->id_count > 1 ? 0u : st->host_uid, st->id_count);
	if (r == 0)
		r = write_proc(pid, "uid_map", map, err);
	snprintf(map, sizeof(map), "0 %u %u\n",
		 st->id_count > 1 ? 0u : st->host_gid, st->id_count);
	if (r == 0)
		r = write_proc(pid, "gid_map", map, err);
	return r;
}

struct ring {
	char *buf;
	size_t cap, len;
	bool truncated;
};

/* Keep only the last cap bytes. */
static void ring_add(struct ring *g, const char *data, size_t n)
{
	if (n >= g->cap) {
		g->truncated = g->truncated || g->len || n > g->cap;
		memcpy(g->buf, data + n - g->cap, g->cap);
		g->len = g->cap;
		return;
	}
	if (g->len + n > g->cap) {
		size_t drop = g->len + n - g->cap;
		memmove(g->buf, g->buf + drop, g->len - drop);
		g->len -= drop;
		g->truncated = true;
	}
	memcpy(g->buf + g->len, data, n);
	g->len += n;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read the output until every writer is gone; kill the helper (and with it
 * the namespace) at the deadline.  Returns true if it had to. */
static bool pump(int fd, pid_t helper, unsigned timeout_s, struct ring *g)
{
	int64_t deadline = now_ms() + (int64_t)timeout_s * 1000;
	bool killed = false;
	char buf[16384];

	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int64_t left = deadline - now_ms();
		int n;

		if (left <= 0 && !killed) {
			kill(helper, SIGKILL);
			killed = true;
			deadline = now_ms() + 10000; /* for the namespace to die */
			continue;
		}
		if (left <= 0)
			break;
		n = poll(&p, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			continue;
		ssize_t got = read(fd, buf, sizeof(buf));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		ring_add(g, buf, (size_t)got);
	}
	return killed;
}

static char **build_argv(const struct azl_scriptlet *s)
{
	size_t n = 0, k = 0;
	char **argv;

	while (s->args && s->args[n])
		n++;
	argv = azl_xcalloc(n + 5, sizeof(*argv));
	argv[k++] = azl_xstrdup(s->interpreter);
	for (size_t i = 0; i < n; i++)
		argv[k++] = azl_xstrdup(s->args[i]);
	if (s->body)
		argv[k++] = azl_xstrdup(SCRIPT_PATH);
	if (s->arg1 >= 0)
		argv[k++] = azl_xasprintf("%d", s->arg1);
	if (s->arg1 >= 0 && s->arg2 >= 0)
		argv[k++] = azl_xasprintf("%d", s->arg2);
	return argv;
}

static char **build_envp(int64_t sde)
{
	char **envp = azl_xcalloc(7, sizeof(*envp));
	envp[0] = azl_xstrdup("PATH=/usr/sbin:/usr/bin:/sbin:/bin");
	envp[1] = azl_xstrdup("HOME=/root");
	envp[2] = azl_xstrdup("TZ=UTC");
	envp[3] = azl_xstrdup("LC_ALL=C");
	envp[4] = azl_xstrdup("LANG=C");
	envp[5] = azl_xasprintf("SOURCE_DATE_EPOCH=%lld", (long long)sde);
	return envp;
}

static void read_status(int fd, char *msg, size_t size)
{
	ssize_t n;
	size_t len = 0;

	(void)fcntl(fd, F_SETFL, O_NONBLOCK);
	while (len + 1 < size && (n = read(fd, msg + len, size - 1 - len)) > 0)
		len += (size_t)n;
	msg[len] = '\0';
}

/* Fill err for a scriptlet that did not exit 0. */
static int scriptlet_failed(const struct azl_scriptlet *s,
			    const struct azl_sandbox_opts *o,
			    const struct azl_sandbox_result *res,
			    const char *status_msg, struct azl_err *err)
{
	const char *tail = res->output;
	size_t keep = 2048;
	char *num_end;

	if (res->output_len > keep)
		tail = res->output + res->output_len - keep;
	if (status_msg[0] == 'X') {
		strtol(status_msg + 1, &num_end, 10);
		return azl_errf(err, -ECANCELED, "%s: %s scriptlet: cannot run %s",
				s->label, s->kind, num_end + (*num_end == ' '));
	}
	if (res->timed_out)
		return azl_errf(err, -ECANCELED,
				"%s: %s scriptlet timed out after %u s; output:\n%s",
				s->label, s->kind, o->timeout_s, tail);
	return azl_errf(err, -ECANCELED,
			"%s: %s scriptlet failed, exit status %d; output:\n%s%s",
			s->label, s->kind, res->status,
			res->output_truncated || tail != res->output ? "[...]" : "",
			tail);
}

static int setup_failed(const struct azl_scriptlet *s, const char *status_msg,
			struct azl_err *err)
{
	char *num_end;
	long e = strtol(status_msg + 1, &num_end, 10);
	return azl_errf(err, e > 0 ? (int)-e : -EPERM,
			"%s: %s scriptlet: sandbox setup failed: %s", s->label,
			s->kind, num_end + (*num_end == ' '));
}

struct run {
	int out[2], status[2], sync[2];
	pid_t helper;
};

static int start(struct run *rn, struct child *x, struct azl_err *err)
{
	char c = 0;

	if (pipe2(rn->out, O_CLOEXEC) < 0 || pipe2(rn->status, O_CLOEXEC) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, rn->sync) < 0)
		return azl_errf(err, -errno, "sandbox pipes: %s", strerror(errno));
	x->out_fd = rn->out[1];
	x->status_fd = rn->status[1];
	x->sync_fd = rn->sync[1];
	rn->helper = fork();
	if (rn->helper < 0)
		return azl_errf(err, -errno, "fork: %s", strerror(errno));
	if (rn->helper == 0)
		helper_main(x);
	close(rn->out[1]);
	close(rn->status[1]);
	close(rn->sync[1]);
	rn->out[1] = rn->status[1] = rn->sync[1] = -1;
	if (recv(rn->sync[0], &c, 1, 0) != 1)
		return 0; /* the helper failed and says why on the status pipe */
	if (write_id_maps(x->st, rn->helper, err) < 0)
		return err ? err->code : -EPERM;
	return send(rn->sync[0], "g", 1, MSG_NOSIGNAL) == 1 ? 0 :
		azl_errf(err, -EPIPE, "sandbox helper went away");
}

static void close_run(struct run *rn)
{
	for (int i = 0; i < 2; i++) {
		if (rn->out[i] >= 0)
			close(rn->out[i]);
		if (rn->status[i] >= 0)
			close(rn->status[i]);
		if (rn->sync[i] >= 0)
			close(rn->sync[i]);
	}
}

static int reap(pid_t pid)
{
	int ws = 0;
	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

int azl_sandbox_run(struct azl_staging *st, const struct azl_scriptlet *sc,
		    const struct azl_sandbox_opts *o,
		    struct azl_sandbox_result *res, struct azl_err *err)
{
	struct azl_scriptlet named = *sc, *s = &named;
	struct azl_sandbox_opts opts = *o;
	struct child x = { .st = st, .s = s };
	struct run rn = { { -1, -1 }, { -1, -1 }, { -1, -1 }, -1 };
	struct ring g = { 0 };
	char status_msg[600] = "";
	int r, code;

	memset(res, 0, sizeof(*res));
	res->status = -1;
	res->output = azl_xstrdup("");
	if (!named.label)
		named.label = "(unnamed package)";
	if (!named.kind)
		named.kind = "%scriptlet";
	if (s->interpreter && !strcmp(s->interpreter, "<lua>"))
		return azl_errf(err, -ENOTSUP,
				"%s: %s scriptlet: rpm's built-in lua is not supported",
				s->label, s->kind);
	if (!s->interpreter || s->interpreter[0] != '/')
		return azl_err_input(err, "%s: %s scriptlet: interpreter \"%s\" is not an absolute path",
				     s->label, s->kind, s->interpreter ? s->interpreter : "");
	if (!opts.timeout_s)
		opts.timeout_s = DEFAULT_TIMEOUT;
	g.cap = opts.output_max ? opts.output_max : DEFAULT_OUTPUT;
	g.buf = azl_xmalloc(g.cap + 1);
	x.argv = build_argv(s);
	x.envp = build_envp(opts.source_date_epoch);
	r = start(&rn, &x, err);
	if (r == 0)
		res->timed_out = pump(rn.out[0], rn.helper, opts.timeout_s, &g);
	else if (rn.helper > 0)
		kill(rn.helper, SIGKILL);
	code = rn.helper > 0 ? reap(rn.helper) : -1;
	if (r < 0)
		goto out;
	read_status(rn.status[0], status_msg, sizeof(status_msg));
	free(res->output);
	g.buf[g.len] = '\0';
	res->output = g.buf;
	res->output_len = g.len;
	res->output_truncated = g.truncated;
	g.buf = NULL;
	if (status_msg[0] == 'S') {
		r = setup_failed(s, status_msg, err);
		goto out;
	}
	res->status = res->timed_out ? 128 + SIGKILL : code;
	if (res->status != 0 || status_msg[0] == 'X')
		r = scriptlet_failed(s, &opts, res, status_msg, err);
out:
	if (r < 0 && status_msg[0] != 'S' && err && !strstr(err->msg, s->label))
		azl_err_prefix(err, "%s: %s scriptlet", s->label, s->kind);
	free(g.buf);
	azl_strv_free0(x.argv);
	azl_strv_free0(x.envp);
	close_run(&rn);
	return r;
}

void azl_sandbox_result_release(struct azl_sandbox_result *res)
{
	free(res->output);
	memset(res, 0, sizeof(*res));
	res->status = -1;
}

bool azl_scriptlet_is_critical(const char *kind)
{
	static const char *const critical[] = { "%pretrans", "%pre", "%preun",
						"%verifyscript" };
	for (size_t i = 0; kind && i < sizeof(critical) / sizeof(critical[0]); i++)
		if (!strcmp(kind, critical[i]))
			return true;
	return false;
}

int azl_sandbox_probe(const char *tmpdir, struct azl_err *err)
{
	struct azl_fs *fs = azl_fs_new();
	struct azl_staging *st = NULL;
	struct azl_scriptlet s = { .label = "probe", .kind = "%probe",
				   .interpreter = "/azl-no-such-interpreter",
				   .arg1 = -1, .arg2 = -1 };
	struct azl_sandbox_opts o = { .timeout_s = 30 };
	struct azl_sandbox_result res;
	struct azl_err e = { 0 };
	char *dir = azl_path_join(tmpdir, "azl-sandbox-probe");
	int r;

	(void)azl_staging_rmtree(dir, NULL);
	r = azl_staging_create(fs, dir, &st, err);
	if (r == 0) {
		r = azl_sandbox_run(st, &s, &o, &res, &e);
		/* setup worked if only the exec failed */
		if (r == -ECANCELED && res.status == 127)
			r = 0;
		else if (r == 0)
			r = azl_errf(err, -EPROTO, "sandbox probe: a missing interpreter ran");
		else
			r = azl_errf(err, r, "%s", e.msg);
		azl_sandbox_result_release(&res);
	}
	azl_staging_destroy(st);
	(void)azl_staging_rmtree(dir, NULL);
	free(dir);
	azl_fs_free(fs);
	return r;
}
