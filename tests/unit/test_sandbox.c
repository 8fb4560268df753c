/* Scriptlets in the sandbox, over a rootfs made of the host's static
 * busybox.  Exits 77 (skip) when the host cannot create the namespaces;
 * tests/integration/sandbox.sh also runs this as an unprivileged user. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/fsmodel.h"
#include "compose/install.h"
#include "compose/objstore.h"
#include "compose/sandbox.h"
#include "compose/staging.h"
#include "t.h"

#define BUSYBOX "/bin/busybox"
#define SDE 1700000000
#define PKG_MTIME 1600000000

static char tmp[512];
static int seq;
static bool copy_mode; /* stage() forces staging's copy mode */

static void add(struct azl_fs *fs, const char *path, enum azl_ftype type,
		uint32_t mode, const char *target, const char *inline_data)
{
	struct azl_node n = { 0 };
	struct azl_err err = { 0 };

	n.path = azl_xstrdup(path);
	n.type = type;
	n.mode = mode;
	n.mtime = PKG_MTIME;
	n.owner_pkg = azl_xstrdup("azl-test-1-1.x86_64");
	if (type == AZL_FT_SYMLINK)
		n.link_target = azl_xstrdup(target);
	if (type == AZL_FT_REG && target) {
		struct stat sb;
		n.data_path = azl_xstrdup(target);
		n.size = stat(target, &sb) == 0 ? (uint64_t)sb.st_size : 0;
	}
	if (type == AZL_FT_REG && inline_data) {
		n.size = strlen(inline_data);
		n.data = (unsigned char *)azl_xstrdup(inline_data);
	}
	if (azl_fs_add(fs, &n, &err) < 0)
		fprintf(stderr, "model: %s\n", err.msg);
	azl_node_release(&n);
}

/* A minimal image: busybox with the applets the tests use. */
static struct azl_fs *busybox_model(void)
{
	static const char *const applets[] = { "sh", "echo", "cat", "rm",
		"chmod", "mkdir", "sleep", "wget", "ls", "env", "tr", "ln", "id",
		"test", "hostname" };
	struct azl_fs *fs = azl_fs_new();
	char path[64];

	add(fs, "/bin", AZL_FT_DIR, 0755, NULL, NULL);
	add(fs, "/bin/busybox", AZL_FT_REG, 0755, BUSYBOX, NULL);
	for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++) {
		snprintf(path, sizeof(path), "/bin/%s", applets[i]);
		add(fs, path, AZL_FT_SYMLINK, 0777, "busybox", NULL);
	}
	add(fs, "/etc", AZL_FT_DIR, 0755, NULL, NULL);
	add(fs, "/etc/passwd", AZL_FT_REG, 0644, NULL,
	    "root:x:0:0:root:/root:/bin/sh\ndaemon:x:2:2::/:/bin/sh\n");
	add(fs, "/etc/group", AZL_FT_REG, 0644, NULL, "root:x:0:\ndaemon:x:2:\n");
	add(fs, "/etc/old.conf", AZL_FT_REG, 0644, NULL, "old\n");
	add(fs, "/etc/keep.conf", AZL_FT_REG, 0644, NULL, "keep\n");
	add(fs, "/root", AZL_FT_DIR, 0550, NULL, NULL);
	add(fs, "/var", AZL_FT_DIR, 0755, NULL, NULL);
	add(fs, "/var/lib", AZL_FT_DIR, 0755, NULL, NULL);
	return fs;
}

static int run(struct azl_staging *st, const char *body, int arg1,
	       unsigned timeout, struct azl_sandbox_result *res,
	       struct azl_err *err)
{
	struct azl_scriptlet s = { .label = "azl-test-1-1.x86_64",
				   .kind = "%post", .interpreter = "/bin/sh",
				   .body = body, .arg1 = arg1, .arg2 = -1 };
	struct azl_sandbox_opts o = { .timeout_s = timeout,
				      .source_date_epoch = SDE };
	azl_err_clear(err);
	return azl_sandbox_run(st, &s, &o, res, err);
}

static struct azl_staging *stage(struct azl_fs *fs)
{
	struct azl_staging *st = NULL;
	struct azl_err err = { 0 };
	char *dir = azl_xasprintf("%s/st%d", tmp, seq++);

	if ((copy_mode ? azl_staging_create_copy : azl_staging_create)(fs, dir, &st, &err) < 0)
		fprintf(stderr, "staging: %s\n", err.msg);
	CHECK(st && st->overlay == !copy_mode);
	free(dir);
	return st;
}

static char *content(const struct azl_node *n)
{
	char *data = NULL;
	size_t len;
	if (!n || n->type != AZL_FT_REG)
		return azl_xstrdup("(none)");
	if (n->data)
		return azl_xstrdup((const char *)n->data);
	if (!n->data_path || azl_read_file(n->data_path, 0, &data, &len, NULL) < 0)
		return azl_xstrdup("(unreadable)");
	return data;
}

/* Write, delete, chmod, then capture. */
static void test_changes(void)
{
	struct azl_fs *fs = busybox_model();
	struct azl_staging *st = stage(fs);
	struct azl_sandbox_result res;
	struct azl_err err = { 0 };
	char *objects = azl_xasprintf("%s/objects", tmp), *c;
	const struct azl_node *n;
	int r;

	CHECK(st != NULL);
	if (!st)
		return;
	r = run(st, "set -e\necho hello > /etc/motd\nmkdir -p /var/lib/x\n"
		"echo \"$1\" > /var/lib/x/arg\nln /etc/motd /etc/motd.2\n", 1, 30,
		&res, &err);
	CHECK(r == 0);
	CHECK(res.status == 0);
	if (r)
		fprintf(stderr, "%s\n", err.msg);
	azl_sandbox_result_release(&res);
	/* a second scriptlet sees the first one's work (shared upper) */
	r = run(st, "set -e\ntest \"$(cat /etc/motd)\" = hello\nrm /etc/old.conf\n"
		"chmod 0600 /etc/keep.conf\n", 1, 30, &res, &err);
	CHECK(r == 0);
	if (r)
		fprintf(stderr, "%s\n", err.msg);
	azl_sandbox_result_release(&res);

	CHECK(azl_staging_capture(st, fs, objects, SDE, &err) == 0);
	n = azl_fs_get(fs, "/etc/motd");
	CHECK(n && n->type == AZL_FT_REG && n->mode == 0644 && n->mtime == SDE);
	CHECK(n && n->uid == 0 && n->gid == 0 && !n->owner_pkg);
	CHECK_STR(c = content(n), "hello\n");
	free(c);
	CHECK(n && n->hardlink_group != 0);
	CHECK(n && azl_fs_get(fs, "/etc/motd.2") &&
	      azl_fs_get(fs, "/etc/motd.2")->hardlink_group == n->hardlink_group);
	CHECK_STR(c = content(azl_fs_get(fs, "/var/lib/x/arg")), "1\n");
	free(c);
	n = azl_fs_get(fs, "/var/lib/x");
	CHECK(n && n->type == AZL_FT_DIR && n->mtime == SDE);
	CHECK(azl_fs_get(fs, "/etc/old.conf") == NULL);
	n = azl_fs_get(fs, "/etc/keep.conf");
	/* chmod only: mode taken, content and package mtime kept */
	CHECK(n && n->mode == 0600 && n->mtime == PKG_MTIME && n->data);
	CHECK(n && n->owner_pkg && !strcmp(n->owner_pkg, "azl-test-1-1.x86_64"));
	n = azl_fs_get(fs, "/etc");
	CHECK(n && n->mtime == PKG_MTIME && n->mode == 0755);
	/* nothing the sandbox mounts leaks into the model */
	CHECK(azl_fs_get(fs, "/tmp") == NULL && azl_fs_get(fs, "/dev") == NULL);
	azl_staging_destroy(st);
	azl_fs_free(fs);
	free(objects);
}

static void test_failure(void)
{
	struct azl_fs *fs = busybox_model();
	struct azl_staging *st = stage(fs);
	struct azl_sandbox_result res;
	struct azl_err err = { 0 };
	int r;

	if (!st)
		return;
	r = run(st, "echo oops\necho bad >&2\nexit 3\n", 1, 30, &res, &err);
	CHECK(r == -ECANCELED);
	CHECK(res.status == 3 && !res.timed_out);
	CHECK_CONTAINS(err.msg, "azl-test-1-1.x86_64");
	CHECK_CONTAINS(err.msg, "%post");
	CHECK_CONTAINS(err.msg, "exit status 3");
	CHECK_CONTAINS(err.msg, "oops\nbad\n");
	CHECK_STR(res.output, "oops\nbad\n");
	azl_sandbox_result_release(&res);

	struct azl_scriptlet s = { .label = "pkg-2", .kind = "%pre",
				   .interpreter = "/usr/bin/lua", .body = "x",
				   .arg1 = 2, .arg2 = -1 };
	struct azl_sandbox_opts o = { .timeout_s = 10 };
	r = azl_sandbox_run(st, &s, &o, &res, &err);
	CHECK(r == -ECANCELED && res.status == 127);
	CHECK_CONTAINS(err.msg, "pkg-2: %pre scriptlet: cannot run /usr/bin/lua");
	azl_sandbox_result_release(&res);
	s.interpreter = "<lua>";
	r = azl_sandbox_run(st, &s, &o, &res, &err);
	CHECK(r == -ENOTSUP && res.status == -1);
	CHECK_CONTAINS(err.msg, "pkg-2: %pre scriptlet: rpm's built-in lua");
	azl_sandbox_result_release(&res);

	/* a file trigger reads the matching paths on stdin */
	struct azl_scriptlet t = { .label = "pkg-4", .kind = "%transfiletriggerin",
				   .interpreter = "/bin/sh",
				   .body = "cat; ls /tmp; echo \"$1 $2\"",
				   .arg1 = 1, .arg2 = 0,
				   .input = "/usr/lib/a.so\n/usr/lib/b.so\n",
				   .input_len = 28 };
	r = azl_sandbox_run(st, &t, &o, &res, &err);
	CHECK(r == 0);
	CHECK_STR(res.output, "/usr/lib/a.so\n/usr/lib/b.so\nrpm-tmp.script\n1 0\n");
	azl_sandbox_result_release(&res);

	/* -p style (no body) with arguments, and a bounded output */
	const char *const args[] = { "-c", "i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); done; echo \"$0 $#\"", "argzero", NULL };
	struct azl_scriptlet p = { .label = "pkg-3", .kind = "%posttrans",
				   .interpreter = "/bin/sh", .args = args,
				   .arg1 = 0, .arg2 = -1 };
	o.output_max = 64;
	r = azl_sandbox_run(st, &p, &o, &res, &err);
	CHECK(r == 0 && res.output_truncated && res.output_len == 64);
	/* the last bytes are kept */
	CHECK(res.output_len == 64 &&
	      !strcmp(res.output + 64 - 18, "line299\nargzero 1\n"));
	azl_sandbox_result_release(&res);
	azl_staging_destroy(st);
	azl_fs_free(fs);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_timeout(void)
{
	struct azl_fs *fs = busybox_model();
	struct azl_staging *st = stage(fs);
	struct azl_sandbox_result res;
	struct azl_err err = { 0 };
	double t0, took;
	int r;

	if (!st)
		return;
	t0 = now();
	/* a background child holding the output pipe must die too */
	r = run(st, "echo started\nsleep 1000 &\nsleep 1000\n", 1, 2, &res, &err);
	took = now() - t0;
	CHECK(r == -ECANCELED && res.timed_out);
	CHECK(took >= 1.9 && took < 3.0);
	CHECK_CONTAINS(err.msg, "timed out after 2 s");
	CHECK_CONTAINS(err.msg, "started");
	azl_sandbox_result_release(&res);
	azl_staging_destroy(st);
	azl_fs_free(fs);
}

/* Exactly the fixed environment reaches the interpreter. */
static void test_env(void)
{
	struct azl_fs *fs = busybox_model();
	struct azl_staging *st = stage(fs);
	struct azl_sandbox_result res;
	struct azl_err err = { 0 };

	if (!st)
		return;
	setenv("AZL_LEAK", "host", 1);
	CHECK(run(st, "tr '\\0' '\\n' < /proc/$$/environ\necho \"args=$# $0 $1\"\n"
		  "echo pid=$$ umask=$(umask) cwd=$(pwd) host=$(hostname) id=$(id -u):$(id -g)\n",
		  1, 30, &res, &err) == 0);
	CHECK_STR(res.output,
		  "PATH=/usr/sbin:/usr/bin:/sbin:/bin\nHOME=/root\nTZ=UTC\n"
		  "LC_ALL=C\nLANG=C\nSOURCE_DATE_EPOCH=1700000000\n"
		  "args=1 /tmp/rpm-tmp.script 1\n"
		  "pid=2 umask=0022 cwd=/ host=localhost id=0:0\n");
	azl_sandbox_result_release(&res);
	unsetenv("AZL_LEAK");
	azl_staging_destroy(st);
	azl_fs_free(fs);
}

/* No network: a server on the host's loopback is unreachable, and the
 * sandbox's own loopback is down. */
static void test_network(void)
{
	struct azl_fs *fs = busybox_model();
	struct azl_staging *st = stage(fs);
	struct azl_sandbox_result res;
	struct azl_err err = { 0 };
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int srv = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	char *body;

	if (!st)
		return;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(srv, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(listen(srv, 4) == 0);
	CHECK(getsockname(srv, (struct sockaddr *)&a, &alen) == 0);
	/* the same probe from the host must connect, or the check proves nothing */
	int cli = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(connect(cli, (struct sockaddr *)&a, sizeof(a)) == 0);
	close(cli);
	int acc = accept(srv, NULL, NULL);
	CHECK(acc >= 0);
	if (acc >= 0)
		close(acc);
	body = azl_xasprintf("wget -T 3 -q -O- http://127.0.0.1:%d/ && echo CONNECTED\n"
			     "echo wget=$?\ncat /proc/net/dev\n", ntohs(a.sin_port));
	CHECK(run(st, body, 1, 30, &res, &err) == 0);
	CHECK_CONTAINS(res.output, "wget=1");
	CHECK(!strstr(res.output, "CONNECTED"));
	CHECK_CONTAINS(res.output, "lo:");
	CHECK(!strstr(res.output, "eth") && !strstr(res.output, "ens"));
	CHECK(accept(srv, NULL, NULL) < 0 && errno == EAGAIN);
	azl_sandbox_result_release(&res);
	free(body);
	close(srv);
	azl_staging_destroy(st);
	azl_fs_free(fs);
}

/* The host tree is gone after pivot_root; /proc/sys is read-only. */
static void test_isolation(void)
{
	struct azl_fs *fs = busybox_model();
	struct azl_staging *st = stage(fs);
	struct azl_sandbox_result res;
	struct azl_err err = { 0 };
	char *secret = azl_xasprintf("%s/secret", tmp), *body;

	if (!st)
		return;
	CHECK(azl_write_file_atomic(secret, "s3cret\n", 7, 0644, &err) == 0);
	body = azl_xasprintf(
		"cat %s && echo SEEN\ntest -e /work || test -e /usr/lib || echo nohost\n"
		"echo 1 > /proc/sys/kernel/sysrq 2>/dev/null || echo sysro\n"
		"ls /dev\n", secret);
	CHECK(run(st, body, 1, 30, &res, &err) == 0);
	CHECK(!strstr(res.output, "SEEN") && !strstr(res.output, "s3cret"));
	CHECK_CONTAINS(res.output, "nohost");
	CHECK_CONTAINS(res.output, "sysro");
	CHECK_CONTAINS(res.output, "null");
	CHECK_CONTAINS(res.output, "urandom");
	azl_sandbox_result_release(&res);
	free(body);
	free(secret);
	azl_staging_destroy(st);
	azl_fs_free(fs);
}

static void dump(struct azl_fs *fs, struct azl_buf *b)
{
	struct azl_node *const *v = azl_fs_sorted(fs);
	for (size_t i = 0; i < azl_fs_count(fs); i++)
		azl_buf_addf(b, "%s %d %o %u:%u %lld %s %s %u\n", v[i]->path,
			     v[i]->type, v[i]->mode, v[i]->uid, v[i]->gid,
			     (long long)v[i]->mtime, v[i]->sha256,
			     v[i]->link_target ? v[i]->link_target : "-",
			     v[i]->hardlink_group);
}

/* Same scriptlet, fresh stagings (twice per mode, overlay and copy): the
 * same captured model. */
static void test_determinism(void)
{
	const char *body = "mkdir /var/lib/d\necho a > /var/lib/d/a\nln -s a /var/lib/d/b\n"
			   "rm /etc/old.conf\nchmod 700 /root\necho x >> /etc/keep.conf\n"
			   "mkdir /var/lib/e\nln /var/lib/d/a /var/lib/e/a2\n";
	struct azl_buf out[4] = { AZL_BUF_INIT, AZL_BUF_INIT, AZL_BUF_INIT, AZL_BUF_INIT };
	char *objects = azl_xasprintf("%s/objects", tmp);
	bool saved = copy_mode;

	for (int i = 0; i < 4; i++) {
		copy_mode = i >= 2;
		struct azl_fs *fs = busybox_model();
		struct azl_staging *st = stage(fs);
		struct azl_sandbox_result res;
		struct azl_err err = { 0 };
		if (!st)
			return;
		CHECK(run(st, body, 1, 30, &res, &err) == 0);
		azl_sandbox_result_release(&res);
		CHECK(azl_staging_capture(st, fs, objects, SDE, &err) == 0);
		dump(fs, &out[i]);
		azl_staging_destroy(st);
		azl_fs_free(fs);
	}
	copy_mode = saved;
	for (int i = 1; i < 4; i++)
		CHECK_STR(azl_buf_str(&out[0]), azl_buf_str(&out[i]));
	CHECK_CONTAINS(azl_buf_str(&out[0]), "/var/lib/d/b 3 777 0:0 1700000000  a 0\n");
	CHECK_CONTAINS(azl_buf_str(&out[0]), "/root 2 700 0:0 1600000000");
	CHECK(!strstr(azl_buf_str(&out[0]), "/etc/old.conf"));
	CHECK_CONTAINS(azl_buf_str(&out[0]), "/var/lib/e/a2 1 644 0:0 1700000000 87428fc522803d31065e7bce3cf03fe475096631e5e07bbd7a0fde60c4cf25c7 - 1\n");
	for (int i = 0; i < 4; i++)
		azl_buf_release(&out[i]);
	free(objects);
}

/* ---- real packages (AZL_SANDBOX_FIXTURE_REPO=<fixture repo>, set by
 * tests/integration/sandbox.sh) ---- */

static char *find_rpm(const char *repo, const char *pattern)
{
	char *pat = azl_xasprintf("%s/Packages/*/%s", repo, pattern), *r = NULL;
	glob_t g;

	if (glob(pat, 0, NULL, &g) == 0 && g.gl_pathc == 1)
		r = azl_xstrdup(g.gl_pathv[0]);
	else
		fprintf(stderr, "fixture %s not found (or not unique)\n", pat);
	if (r || g.gl_pathc)
		globfree(&g);
	free(pat);
	return r;
}

static int run_post(struct azl_staging *st, const struct azl_rpm_info *info,
		    unsigned timeout, struct azl_sandbox_result *res,
		    struct azl_err *err)
{
	const struct azl_script *p = &info->postin;
	struct azl_scriptlet s = {
		.label = info->nevra, .kind = "%post",
		.interpreter = p->argv ? p->argv[0] : NULL,
		.args = p->argv ? (const char *const *)p->argv + 1 : NULL,
		.body = p->body, .arg1 = 1, .arg2 = -1 };
	struct azl_sandbox_opts o = { .timeout_s = timeout,
				      .source_date_epoch = SDE };
	azl_err_clear(err);
	return azl_sandbox_run(st, &s, &o, res, err);
}

static void test_fixtures(const char *repo)
{
	static const char *const names[] = {
		"azl-filesystem-1.0-*.rpm", "azl-busybox-1.0-*.x86_64.rpm",
		"azl-libfoo-1.0-*.x86_64.rpm", "azl-ssl-a-1.0-*.rpm",
		"azl-app-1.0-*.x86_64.rpm", "azl-fail-post-*.rpm",
		"azl-hang-post-*.rpm" };
	enum { N = sizeof(names) / sizeof(names[0]) };
	struct azl_install_pkg pkgs[N] = { { 0 } };
	char *paths[N] = { 0 };
	struct azl_install_opts opts = { .sde = SDE };
	struct azl_install_result ir = { 0 };
	struct azl_sandbox_result res;
	struct azl_objstore *store = NULL;
	struct azl_staging *st = NULL;
	struct azl_err err = { 0 };
	struct azl_fs *fs = azl_fs_new();
	char *sdir = azl_xasprintf("%s/objstore", tmp), *objects = azl_xasprintf("%s/captured", tmp);
	const struct azl_node *n;
	char *c;
	int r;

	for (size_t i = 0; i < N; i++) {
		paths[i] = find_rpm(repo, names[i]);
		pkgs[i].path = paths[i];
		CHECK(paths[i] != NULL);
		if (!paths[i])
			goto out;
	}
	CHECK(azl_objstore_open(sdir, &store, &err) == 0);
	r = azl_install(fs, store, pkgs, N, &opts, &ir, &err);
	CHECK(r == 0);
	if (r < 0 || ir.npkgs != N) {
		fprintf(stderr, "install: %s\n", err.msg);
		goto out;
	}
	printf("fixture scenario: %zu packages installed\n", ir.npkgs);
	st = stage(fs);
	CHECK(st != NULL);
	if (!st)
		goto out;
	/* /bin is a symlink to usr/bin in azl-filesystem: the interpreter
	 * path resolves inside the image */
	r = run_post(st, &ir.pkgs[4].info, 30, &res, &err);
	CHECK(r == 0 && res.status == 0);
	if (r)
		fprintf(stderr, "%s\n", err.msg);
	azl_sandbox_result_release(&res);
	r = run_post(st, &ir.pkgs[5].info, 30, &res, &err);
	CHECK(r == -ECANCELED && res.status == 1);
	CHECK_CONTAINS(err.msg, "azl-fail-post-1.0-1.noarch: %post scriptlet failed, exit status 1");
	CHECK_CONTAINS(err.msg, "azl-fail-post: failing on purpose");
	azl_sandbox_result_release(&res);
	r = run_post(st, &ir.pkgs[6].info, 2, &res, &err);
	CHECK(r == -ECANCELED && res.timed_out);
	CHECK_CONTAINS(err.msg, "azl-hang-post-1.0-1.noarch: %post scriptlet timed out after 2 s");
	azl_sandbox_result_release(&res);

	CHECK(azl_staging_capture(st, fs, objects, SDE, &err) == 0);
	n = azl_fs_get(fs, "/var/lib/azl-app/installed");
	CHECK(n && n->mtime == SDE && n->mode == 0644 && n->uid == 0);
	CHECK_STR(c = content(n), "azl-app 1.0 installed\n");
	free(c);
	/* the %ghost stays out; package files keep their header metadata */
	CHECK(azl_fs_get(fs, "/var/log/azl-app.log") == NULL);
	n = azl_fs_get(fs, "/usr/bin/azl-app-suid");
	CHECK(n && n->mode == 04755);
	n = azl_fs_get(fs, "/var/lib/azl-app");
	CHECK(n && n->type == AZL_FT_DIR && n->mtime == SDE);
out:
	azl_staging_destroy(st);
	azl_install_result_release(&ir);
	azl_objstore_close(store);
	for (size_t i = 0; i < N; i++)
		free(paths[i]);
	free(sdir);
	free(objects);
	azl_fs_free(fs);
}

int main(void)
{
	struct azl_err err = { 0 };

	CHECK(azl_scriptlet_is_critical("%pre") && azl_scriptlet_is_critical("%pretrans"));
	CHECK(!azl_scriptlet_is_critical("%post") && !azl_scriptlet_is_critical("%posttrans"));
	CHECK(!azl_scriptlet_is_critical("%transfiletriggerin") && !azl_scriptlet_is_critical(NULL));
	if (access(BUSYBOX, X_OK) < 0) {
		printf("no %s (apt-get install busybox-static)\n", BUSYBOX);
		return 77;
	}
	snprintf(tmp, sizeof(tmp), "%s/azl-test-sandbox.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmp))
		return 1;
	if (azl_sandbox_probe(tmp, &err) < 0) {
		printf("sandbox unavailable here: %s\n", err.msg);
		(void)azl_staging_rmtree(tmp, NULL);
		return 77;
	}
	test_changes();
	copy_mode = true;
	test_changes();
	copy_mode = false;
	test_failure();
	test_timeout();
	test_env();
	test_network();
	test_isolation();
	test_determinism();
	if (getenv("AZL_SANDBOX_FIXTURE_REPO"))
		test_fixtures(getenv("AZL_SANDBOX_FIXTURE_REPO"));
	(void)azl_staging_rmtree(tmp, NULL);
	return t_done();
}
