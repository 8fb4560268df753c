/* install: path checks on a hand-made model, then the fixture packages
 * (tests/lib/fixtures.sh, built on demand): metadata, owners, hardlinks,
 * caps, ghosts, conflicts, symlink redirection and escape, order, the warm
 * path and parallel extraction. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/hash.h"
#include "compose/install.h"
#include "t.h"

#define SDE 1700000000

static char tmp[] = "/tmp/azl-test-install.XXXXXX";
static char repo[1024];

static void add_node(struct azl_fs *fs, const char *path, enum azl_ftype t,
		     const char *target)
{
	struct azl_node n = { 0 };
	struct azl_err err = { 0 };

	n.path = azl_xstrdup(path);
	n.type = t;
	n.mode = t == AZL_FT_SYMLINK ? 0777 : 0755;
	n.link_target = azl_xstrdup(target);
	if (azl_fs_add(fs, &n, &err) < 0)
		fprintf(stderr, "add %s: %s\n", path, err.msg);
	azl_node_release(&n);
}

static void expect_bad(const struct azl_fs *fs, const char *path,
		       const char *why)
{
	struct azl_err err = { 0 };
	char *out = NULL;

	CHECK(azl_install_check_path(fs, "pkg-1-1.noarch", path, &out, &err) < 0);
	CHECK(out == NULL);
	CHECK_CONTAINS(err.msg, "pkg-1-1.noarch");
	CHECK_CONTAINS(err.msg, path);
	CHECK_CONTAINS(err.msg, why);
	CHECK(err.kind == AZL_ERR_INPUT);
}

static void expect_good(const struct azl_fs *fs, const char *path,
			const char *where)
{
	struct azl_err err = { 0 };
	char *out = NULL;

	CHECK(azl_install_check_path(fs, "pkg-1-1.noarch", path, &out, &err) == 0);
	CHECK_STR(out, where);
	free(out);
}

static void test_paths(void)
{
	struct azl_fs *fs = azl_fs_new();

	add_node(fs, "/usr", AZL_FT_DIR, NULL);
	add_node(fs, "/usr/bin", AZL_FT_DIR, NULL);
	add_node(fs, "/bin", AZL_FT_SYMLINK, "usr/bin");
	add_node(fs, "/abs", AZL_FT_SYMLINK, "/usr");
	add_node(fs, "/evil", AZL_FT_SYMLINK, "../../../etc");
	add_node(fs, "/usr/deep", AZL_FT_SYMLINK, "../../../../x");
	add_node(fs, "/loop", AZL_FT_SYMLINK, "loop");
	add_node(fs, "/usr/file", AZL_FT_REG, NULL);

	expect_bad(fs, "relative/x", "not absolute");
	expect_bad(fs, "/a//b", "component");
	expect_bad(fs, "/a/./b", "component");
	expect_bad(fs, "/a/../b", "component");
	expect_bad(fs, "/..", "component");
	expect_bad(fs, "/a/", "component");
	expect_bad(fs, "/evil/passwd", "outside the image");
	expect_bad(fs, "/usr/deep/y", "outside the image");
	expect_bad(fs, "/abs/deep/y", "outside the image");
	expect_bad(fs, "/loop/x", "symbolic links");
	expect_bad(fs, "/usr/file/x", "not a directory");

	expect_good(fs, "/", "/");
	expect_good(fs, "/bin/sh", "/usr/bin/sh");
	expect_good(fs, "/abs/bin/x", "/usr/bin/x");
	expect_good(fs, "/new/dir/f", "/new/dir/f");
	/* The last component is not followed: a symlink itself is placed. */
	expect_good(fs, "/bin", "/bin");
	expect_good(fs, "/evil", "/evil");
	azl_fs_free(fs);
}

/* ---- fixture packages ---- */

static int get_repo(void)
{
	FILE *p = popen("bash tests/lib/fixtures.sh repo base 2>/dev/null", "r");
	int ok = p && fgets(repo, sizeof(repo), p) != NULL;

	if (p && pclose(p) != 0)
		ok = 0;
	repo[strcspn(repo, "\n")] = '\0';
	return ok && repo[0];
}

static char *pkg(const char *nevra)
{
	return azl_xasprintf("%s/Packages/a/%s.rpm", repo, nevra);
}

struct set {
	char *paths[16];
	struct azl_install_pkg pk[16];
	size_t n;
};

static void set_init(struct set *s, const char *const *nevras)
{
	memset(s, 0, sizeof(*s));
	for (; nevras[s->n]; s->n++) {
		s->paths[s->n] = pkg(nevras[s->n]);
		s->pk[s->n].path = s->paths[s->n];
	}
}

static void set_free(struct set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->paths[i]);
}

static struct azl_objstore *store_at(const char *name)
{
	struct azl_err err = { 0 };
	struct azl_objstore *s = NULL;
	char *d = azl_xasprintf("%s/%s", tmp, name);

	if (azl_objstore_open(d, &s, &err) < 0)
		fprintf(stderr, "%s\n", err.msg);
	free(d);
	return s;
}

static uint32_t pack_max; /* test_app runs once with packs */

static int run(struct azl_fs *fs, struct azl_objstore *st, struct set *s,
	       int jobs, struct azl_install_result *res, struct azl_err *err)
{
	struct azl_install_opts o = { .sde = SDE, .jobs = jobs,
				      .pack_max = pack_max };
	return azl_install(fs, st, s->pk, s->n, &o, res, err);
}

/* One line per node: everything an emitter would write. */
static char *listing(struct azl_fs *fs)
{
	struct azl_buf b = AZL_BUF_INIT;
	struct azl_node *const *all = azl_fs_sorted(fs);

	for (size_t i = 0; i < azl_fs_count(fs); i++) {
		const struct azl_node *n = all[i];
		azl_buf_addf(&b, "%s %d %o %u:%u %s:%s %lld %llu %s %s hl%u x%zu %s\n",
			     n->path, n->type, n->mode, n->uid, n->gid,
			     n->user ? n->user : "-", n->group ? n->group : "-",
			     (long long)n->mtime, (unsigned long long)n->size,
			     n->sha256, n->link_target ? n->link_target : "",
			     n->hardlink_group, n->nxattrs,
			     n->owner_pkg ? n->owner_pkg : "-");
	}
	return azl_buf_detach(&b);
}

static int hash_cb(void *ctx, const void *d, size_t n)
{
	azl_sha256_update(ctx, d, n);
	return 0;
}

static int collect_cb(void *ctx, const void *d, size_t n)
{
	azl_buf_add(ctx, d, n);
	return 0;
}

static const char *const app_set[] = {
	"azl-app-1.0-1.x86_64", "azl-ssl-a-1.0-1.x86_64",
	"azl-busybox-1.0-1.x86_64", "azl-libfoo-1.0-1.x86_64",
	"azl-filesystem-1.0-1.noarch", NULL,
};

static size_t index_of(struct set *s, size_t *order, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strstr(s->paths[order[i]], name))
			return i;
	return (size_t)-1;
}

static void test_order(void)
{
	struct azl_err err = { 0 };
	struct set s;
	size_t o1[16], o2[16];
	const char *rev[16];

	set_init(&s, app_set);
	CHECK(azl_install_order((const char *const *)s.paths, s.n, o1, &err) == 0);
	CHECK(index_of(&s, o1, "azl-filesystem") < index_of(&s, o1, "azl-busybox"));
	CHECK(index_of(&s, o1, "azl-busybox") < index_of(&s, o1, "azl-app"));
	CHECK(index_of(&s, o1, "azl-libfoo") < index_of(&s, o1, "azl-app"));
	CHECK(index_of(&s, o1, "azl-ssl-a") < index_of(&s, o1, "azl-app"));
	/* The caller's order does not matter. */
	for (size_t i = 0; i < s.n; i++)
		rev[i] = s.paths[s.n - 1 - i];
	CHECK(azl_install_order(rev, s.n, o2, &err) == 0);
	for (size_t i = 0; i < s.n; i++)
		CHECK(!strcmp(s.paths[o1[i]], rev[o2[i]]));
	set_free(&s);
}

static void check_app_model(struct azl_fs *fs, struct azl_install_result *res)
{
	struct azl_node *n, *a, *b;
	struct azl_err err = { 0 };
	unsigned char caps[20];
	char hex[65];
	int warned = 0;

	n = azl_fs_get(fs, "/etc/azl-app.secret");
	CHECK(n && n->mode == 0640 && n->uid == 1000 && n->gid == 1000);
	CHECK(n && !strcmp(n->user, "azl"));
	n = azl_fs_get(fs, "/usr/bin/azl-app-suid");
	CHECK(n && n->mode == 04755 && n->uid == 0);
	n = azl_fs_get(fs, "/usr/bin/azl-app-link");
	CHECK(n && n->type == AZL_FT_SYMLINK && !strcmp(n->link_target, "azl-app"));
	a = azl_fs_get(fs, "/usr/share/azl-app/hardlink-a");
	b = azl_fs_get(fs, "/usr/share/azl-app/hardlink-b");
	CHECK(a && b && a->hardlink_group && a->hardlink_group == b->hardlink_group);
	CHECK(a && b && !strcmp(a->sha256, b->sha256) && a->size == b->size);
	n = azl_fs_get(fs, "/usr/bin/azl-app");
	CHECK(n && n->hardlink_group != (a ? a->hardlink_group : 0));
	/* %caps -> security.capability, the bytes setcap writes. */
	n = azl_fs_get(fs, "/usr/sbin/azl-app-bind");
	CHECK(azl_caps_to_xattr("cap_net_bind_service=ep", caps, &err) == 0);
	CHECK(n && n->nxattrs == 1 && !strcmp(n->xattrs[0].name, "security.capability"));
	CHECK(n && n->nxattrs == 1 && n->xattrs[0].len == 20 &&
	      !memcmp(n->xattrs[0].value, caps, 20));
	/* %ghost: not in the model, listed for the rpmdb. */
	CHECK(azl_fs_get(fs, "/var/log/azl-app.log") == NULL);
	/* %config(noreplace). */
	n = azl_fs_get(fs, "/etc/azl-app.conf");
	CHECK(n && (n->flags & AZL_NODE_CONFIG) && (n->flags & AZL_NODE_NOREPLACE));
	/* Missing owner: root, with a warning naming package, path, owner. */
	n = azl_fs_get(fs, "/var/lib/azl-app/orphan");
	CHECK(n && n->type == AZL_FT_DIR && n->uid == 0 && n->gid == 0);
	for (size_t i = 0; i < res->nwarnings; i++)
		if (strstr(res->warnings[i], "azl-app-1.0-1.x86_64") &&
		    strstr(res->warnings[i], "/var/lib/azl-app/orphan") &&
		    strstr(res->warnings[i], "nosuchuser"))
			warned = 1;
	CHECK(warned);
	/* Header mtimes kept; the filesystem package's tree adopted. */
	n = azl_fs_get(fs, "/tmp");
	CHECK(n && n->mode == 01777 && n->owner_pkg &&
	      !strcmp(n->owner_pkg, "azl-filesystem-1.0-1.noarch"));
	/* Every regular file's bytes (own object or a range of the
	 * package's pack) hash to its digest; small ones are packed. */
	struct azl_node *const *all = azl_fs_sorted(fs);
	size_t nreg = 0, npacked = 0, nbad = 0;
	for (size_t i = 0; i < azl_fs_count(fs); i++) {
		if (all[i]->type != AZL_FT_REG)
			continue;
		struct azl_sha256 *h = azl_sha256_new();
		nreg++;
		npacked += all[i]->data_offset > 0;
		if (azl_node_read(all[i], hash_cb, h, &err) < 0)
			nbad++;
		azl_sha256_final(h, hex);
		nbad += strcmp(hex, all[i]->sha256) != 0;
	}
	CHECK(nreg > 10 && nbad == 0);
	CHECK(pack_max ? npacked > 0 : npacked == 0);
	/* Contents: the object behind a node hashes to the node's digest. */
	n = azl_fs_get(fs, "/usr/bin/busybox");
	CHECK(n && n->size > 100000 && n->data_path);
	if (n && n->data_path) {
		struct azl_sha256 *h = azl_sha256_new();
		CHECK(azl_node_read(n, hash_cb, h, &err) == 0);
		azl_sha256_final(h, hex);
		CHECK_STR(hex, n->sha256);
	}
}

static void check_app_result(struct azl_install_result *res)
{
	const struct azl_installed_pkg *app = NULL;

	for (size_t i = 0; i < res->npkgs; i++)
		if (!strcmp(res->pkgs[i].info.name, "azl-app"))
			app = &res->pkgs[i];
	CHECK(app != NULL);
	if (!app)
		return;
	CHECK_STR(app->info.nevra, "azl-app-1.0-1.x86_64");
	CHECK(app->nghosts == 1 && !strcmp(app->ghosts[0], "/var/log/azl-app.log"));
	CHECK(app->nconfigs == 1 && !strcmp(app->configs[0], "/etc/azl-app.conf"));
	CHECK(app->info.postin.argv && app->info.postin.body &&
	      strstr(app->info.postin.body, "/var/lib/azl-app/installed"));
	CHECK(azl_is_sha256_hex(app->sha256));
}

/* The model against what rpm itself installs: `rpm --root` the same
 * packages (as root; skipped otherwise) and compare every package path's
 * type, permission bits, owner ids, size, symlink target, file mtime,
 * capabilities and hardlink sharing with lstat of rpm's tree. */
static void compare_with_rpm(struct azl_fs *fs, struct set *s)
{
	char *root = azl_xasprintf("%s/rpmroot", tmp), *cmd;
	struct azl_buf args = AZL_BUF_INIT;
	struct azl_node *const *all;
	size_t checked = 0, bad = 0;

	if (geteuid() != 0) {
		printf("skip: not root, no rpm --root comparison\n");
		free(root);
		return;
	}
	for (size_t i = 0; i < s->n; i++)
		azl_buf_addf(&args, " %s", s->pk[i].path);
	cmd = azl_xasprintf("mkdir -p %s && rpm --root %s --dbpath %s/.db -i --nodeps "
			    "--noscripts --nosignature --nodigest%s >%s/rpm.log 2>&1",
			    root, root, root, azl_buf_str(&args), tmp);
	if (system(cmd) != 0) {
		printf("skip: rpm --root failed (see %s/rpm.log)\n", tmp);
		goto out;
	}
	all = azl_fs_sorted(fs);
	for (size_t i = 0; i < azl_fs_count(fs); i++) {
		const struct azl_node *n = all[i];
		char *p = azl_xasprintf("%s%s", root, n->path), link[4096];
		unsigned char x[64];
		struct stat st;
		int ok;

		if (!n->owner_pkg || lstat(p, &st) < 0) {
			bad += n->owner_pkg != NULL;
			if (n->owner_pkg)
				fprintf(stderr, "rpm did not create %s\n", n->path);
			free(p);
			continue;
		}
		ok = (st.st_mode & 07777) == n->mode && st.st_uid == n->uid &&
		     st.st_gid == n->gid;
		switch (n->type) {
		case AZL_FT_REG:
			ok = ok && S_ISREG(st.st_mode) &&
			     (uint64_t)st.st_size == n->size && st.st_mtime == n->mtime;
			break;
		case AZL_FT_DIR:
			ok = ok && S_ISDIR(st.st_mode);
			break;
		case AZL_FT_SYMLINK: {
			ssize_t k = readlink(p, link, sizeof(link) - 1);
			ok = S_ISLNK(st.st_mode) && k >= 0 &&
			     (link[k] = '\0', !strcmp(link, n->link_target));
			break;
		}
		default:
			break;
		}
		ssize_t xl = getxattr(p, "security.capability", x, sizeof(x));
		if (n->nxattrs)
			ok = ok && xl == (ssize_t)n->xattrs[0].len &&
			     !memcmp(x, n->xattrs[0].value, (size_t)xl);
		else if (n->type == AZL_FT_REG)
			ok = ok && xl < 0;
		if (n->hardlink_group)
			ok = ok && st.st_nlink > 1;
		if (!ok) {
			fprintf(stderr, "differs from rpm: %s (mode %o/%o uid %u/%u gid %u/%u)\n",
				n->path, (unsigned)(st.st_mode & 07777), n->mode,
				(unsigned)st.st_uid, n->uid, (unsigned)st.st_gid, n->gid);
			bad++;
		}
		checked++;
		free(p);
	}
	CHECK(checked > 40);
	CHECK(bad == 0);
out:
	free(cmd);
	azl_buf_release(&args);
	free(root);
}

static void test_app(const char *s1, const char *s2)
{
	struct azl_err err = { 0 };
	struct azl_install_result res, res2;
	struct azl_objstore *st = store_at(s1), *st2 = store_at(s2);
	struct azl_fs *fs = azl_fs_new(), *fs2 = azl_fs_new(), *fs3 = azl_fs_new();
	struct set s;
	size_t order[16];
	char *l1, *l2, *l3;
	uint64_t opens;

	set_init(&s, app_set);
	CHECK(azl_install_order((const char *const *)s.paths, s.n, order, &err) == 0);
	struct set o = s;
	for (size_t i = 0; i < s.n; i++)
		o.pk[i].path = s.paths[order[i]];
	CHECK(run(fs, st, &o, 0, &res, &err) == 0);
	if (err.code)
		fprintf(stderr, "install: %s\n", err.msg);
	CHECK(res.npkgs == s.n && res.nextracted == s.n);
	check_app_model(fs, &res);
	check_app_result(&res);
	if (!pack_max)
		compare_with_rpm(fs, &o);
	l1 = listing(fs);

	/* Warm: nothing decompressed, the same model. */
	opens = azl_payload_open_count();
	CHECK(run(fs2, st, &o, 0, &res2, &err) == 0);
	CHECK(res2.nextracted == 0);
	CHECK(azl_payload_open_count() == opens);
	for (size_t i = 0; i < res2.npkgs; i++)
		CHECK(!res2.pkgs[i].extracted);
	l2 = listing(fs2);
	CHECK_STR(l2, l1);
	azl_install_result_release(&res2);

	/* One core, another store: the same model (objects do not depend
	 * on the number of workers). */
	CHECK(run(fs3, st2, &o, 1, &res2, &err) == 0);
	l3 = listing(fs3);
	CHECK_STR(l3, l1);
	azl_install_result_release(&res2);

	/* A lost object: only the package holding it is extracted again. */
	struct azl_node *bb = azl_fs_get(fs, "/usr/bin/busybox");
	if (bb && bb->data_path) {
		struct azl_fs *fs4 = azl_fs_new();
		CHECK(unlink(bb->data_path) == 0);
		CHECK(run(fs4, st, &o, 0, &res2, &err) == 0);
		CHECK(res2.nextracted == 1);
		CHECK(azl_fs_get(fs4, "/usr/bin/busybox") &&
		      access(azl_fs_get(fs4, "/usr/bin/busybox")->data_path, R_OK) == 0);
		azl_install_result_release(&res2);
		azl_fs_free(fs4);
	}
	free(l1);
	free(l2);
	free(l3);
	azl_install_result_release(&res);
	azl_fs_free(fs);
	azl_fs_free(fs2);
	azl_fs_free(fs3);
	azl_objstore_close(st);
	azl_objstore_close(st2);
	set_free(&s);
}

static void test_conflicts(void)
{
	static const char *const bad[] = { "azl-conflict-a-1.0-1.noarch",
					   "azl-conflict-b-1.0-1.noarch", NULL };
	static const char *const good[] = { "azl-shared-a-1.0-1.noarch",
					    "azl-shared-b-1.0-1.noarch", NULL };
	struct azl_err err = { 0 };
	struct azl_install_result res;
	struct azl_objstore *st = store_at("s1");
	struct azl_fs *fs = azl_fs_new();
	struct set s;

	set_init(&s, bad);
	CHECK(run(fs, st, &s, 0, &res, &err) < 0);
	CHECK_CONTAINS(err.msg, "/usr/share/azl/conflict.txt");
	CHECK_CONTAINS(err.msg, "azl-conflict-a-1.0-1.noarch");
	CHECK_CONTAINS(err.msg, "azl-conflict-b-1.0-1.noarch");
	azl_install_result_release(&res);
	azl_fs_free(fs);
	set_free(&s);

	fs = azl_fs_new();
	set_init(&s, good);
	CHECK(run(fs, st, &s, 0, &res, &err) == 0);
	CHECK(azl_fs_get(fs, "/usr/share/azl/shared.txt") != NULL);
	azl_install_result_release(&res);
	azl_fs_free(fs);
	set_free(&s);
	azl_objstore_close(st);
}

/* Build a noarch package owning directory /opt/shared with the given
 * %attr and one file in it; NULL when rpmbuild fails. */
static char *build_dir_pkg(const char *name, const char *attr)
{
	char *spec = azl_xasprintf("%s/%s.spec", tmp, name);
	char *out = azl_xasprintf("%s/out/noarch/%s-1-1.noarch.rpm", tmp, name);
	char *cmd;
	FILE *f = fopen(spec, "w");

	fprintf(f, "Name: %s\nVersion: 1\nRelease: 1\nSummary: t\nLicense: MIT\n"
		"BuildArch: noarch\n%%description\nt\n%%install\n"
		"mkdir -p %%{buildroot}/opt/shared\n"
		"echo %s > %%{buildroot}/opt/shared/%s.txt\n"
		"%%files\n%%dir %%attr(%s) /opt/shared\n/opt/shared/%s.txt\n",
		name, name, name, attr, name);
	fclose(f);
	cmd = azl_xasprintf("HOME=%s rpmbuild -bb --quiet --define '_topdir %s/top' "
			    "--define '_rpmdir %s/out' --define '_build_id_links none' "
			    "--define 'debug_package %%{nil}' --define '__os_install_post %%{nil}' "
			    "%s >>%s/build.log 2>&1", tmp, tmp, tmp, spec, tmp);
	if (system(cmd) != 0 || access(out, R_OK) != 0) {
		free(out);
		out = NULL;
	}
	free(cmd);
	free(spec);
	return out;
}

/* rpm 4.18 refuses a directory two packages own with different mode or
 * owner ("file /opt/shared conflicts between attempted installs of ..."),
 * and shares it when they agree. */
static void test_dir_conflicts(void)
{
	char *a = build_dir_pkg("dira", "0755,root,root");
	char *b = build_dir_pkg("dirb", "0700,root,root");
	char *c = build_dir_pkg("dirc", "0755,bin,root");
	char *d = build_dir_pkg("dird", "0755,root,root");
	struct azl_objstore *st = store_at("s1");
	struct azl_err err = { 0 };
	struct azl_install_result res;
	struct azl_install_opts o = { .sde = SDE };

	if (!a || !b || !c || !d) {
		printf("skip: rpmbuild failed (see %s/build.log)\n", tmp);
		goto out;
	}
	const char *pairs[][2] = { { a, b }, { a, c }, { a, d } };
	for (int i = 0; i < 3; i++) {
		struct azl_install_pkg pk[2] = { { .path = pairs[i][0] },
						 { .path = pairs[i][1] } };
		struct azl_fs *fs = azl_fs_new();
		int rc = azl_install(fs, st, pk, 2, &o, &res, &err);
		if (i < 2) {
			CHECK(rc < 0);
			CHECK_CONTAINS(err.msg, "file /opt/shared conflicts");
			CHECK_CONTAINS(err.msg, "dira-1-1.noarch");
			CHECK_CONTAINS(err.msg, i == 0 ? "dirb-1-1.noarch" : "dirc-1-1.noarch");
		} else {
			CHECK(rc == 0);
			CHECK(azl_fs_get(fs, "/opt/shared/dird.txt") != NULL);
		}
		azl_install_result_release(&res);
		azl_fs_free(fs);
	}
out:
	azl_objstore_close(st);
	free(a);
	free(b);
	free(c);
	free(d);
}

/* Payloads in each codec arrive intact. */
static void test_codecs(void)
{
	static const char *const set[] = { "azl-gzip-payload-1.0-1.noarch",
		"azl-xz-payload-1.0-1.noarch", "azl-zstd-payload-1.0-1.noarch", NULL };
	static const char *const codec[] = { "gzip", "xz", "zstd" };
	struct azl_err err = { 0 };
	struct azl_install_result res;
	struct azl_objstore *st = store_at("s1");
	struct azl_fs *fs = azl_fs_new();
	struct set s;

	set_init(&s, set);
	CHECK(run(fs, st, &s, 0, &res, &err) == 0);
	for (size_t i = 0; i < 3; i++) {
		struct azl_buf b = AZL_BUF_INIT;
		char *p = azl_xasprintf("/usr/share/azl-payload/%s.codec", codec[i]);
		char *want = azl_xasprintf("%s\n", codec[i]);
		struct azl_node *n = azl_fs_get(fs, p);
		CHECK(n && azl_node_read(n, collect_cb, &b, &err) == 0);
		CHECK_STR(azl_buf_str(&b), want);
		free(p);
		p = azl_xasprintf("/usr/share/azl-payload/%s.txt", codec[i]);
		n = azl_fs_get(fs, p);
		CHECK(n && n->size > 100000);
		if (n) {
			struct azl_sha256 *h = azl_sha256_new();
			char hex[65];
			CHECK(azl_node_read(n, hash_cb, h, &err) == 0);
			azl_sha256_final(h, hex);
			CHECK_STR(hex, n->sha256);
		}
		free(p);
		free(want);
		azl_buf_release(&b);
	}
	azl_install_result_release(&res);
	azl_fs_free(fs);
	azl_objstore_close(st);
	set_free(&s);
}

/* A symlink already in the model redirects (absolute target) or, when it
 * climbs above the root, refuses the package. */
static void test_symlinks(void)
{
	static const char *const lib[] = { "azl-libfoo-1.0-1.x86_64", NULL };
	static const char *const app[] = { "azl-app-1.0-1.x86_64", NULL };
	struct azl_err err = { 0 };
	struct azl_install_result res;
	struct azl_objstore *st = store_at("s1");
	struct azl_fs *fs = azl_fs_new();
	struct azl_node *n;
	struct set s;

	add_node(fs, "/usr", AZL_FT_SYMLINK, "/opt/u");
	set_init(&s, lib);
	CHECK(run(fs, st, &s, 0, &res, &err) == 0);
	CHECK(azl_fs_get(fs, "/opt/u/lib64/libfoo.so.1") != NULL);
	CHECK(azl_fs_get(fs, "/usr/lib64/libfoo.so.1") == NULL);
	n = azl_fs_get(fs, "/opt/u/lib64");
	CHECK(n && n->type == AZL_FT_DIR && n->mtime == SDE && !n->owner_pkg);
	azl_install_result_release(&res);
	azl_fs_free(fs);
	set_free(&s);

	fs = azl_fs_new();
	add_node(fs, "/var", AZL_FT_SYMLINK, "../../../../tmp");
	set_init(&s, app);
	CHECK(run(fs, st, &s, 0, &res, &err) < 0);
	CHECK_CONTAINS(err.msg, "azl-app-1.0-1.x86_64");
	CHECK_CONTAINS(err.msg, "/var/lib/azl-app");
	CHECK_CONTAINS(err.msg, "outside the image");
	CHECK(azl_fs_get(fs, "/tmp/lib") == NULL);
	azl_install_result_release(&res);
	azl_fs_free(fs);
	set_free(&s);
	azl_objstore_close(st);
}

/* repos[].allow_setuid false: azl-app's set-user-ID file is an input
 * error naming package, path, mode and repository; allowed, it installs. */
static void test_privilege(void)
{
	static const char *const app[] = { "azl-app-1.0-1.x86_64", NULL };
	struct azl_err err = { 0 };
	struct azl_install_result res;
	struct azl_objstore *st = store_at("s1");
	struct azl_fs *fs = azl_fs_new();
	struct azl_node *n;
	struct set s;

	set_init(&s, app);
	s.pk[0].deny_setuid = true;
	s.pk[0].repo = "untrusted";
	CHECK(run(fs, st, &s, 0, &res, &err) < 0);
	CHECK(err.kind == AZL_ERR_INPUT);
	CHECK_CONTAINS(err.msg, "azl-app-1.0-1.x86_64: /usr/bin/azl-app-suid: set-user-ID file (mode 4755)");
	CHECK_CONTAINS(err.msg, "repository 'untrusted'");
	CHECK_CONTAINS(err.msg, "allow_setuid");
	azl_install_result_release(&res);
	azl_fs_free(fs);

	fs = azl_fs_new();
	s.pk[0].deny_setuid = false;
	CHECK(run(fs, st, &s, 0, &res, &err) == 0);
	n = azl_fs_get(fs, "/usr/bin/azl-app-suid");
	CHECK(n && (n->mode & 04000));
	n = azl_fs_get(fs, "/usr/sbin/azl-app-bind");
	CHECK(n && n->nxattrs == 1);
	azl_install_result_release(&res);
	azl_fs_free(fs);
	set_free(&s);
	azl_objstore_close(st);
}

/* tmp/NAME.rpm crafted by tests/lib/rpmcraft.py from json; NULL on failure. */
static char *craft(const char *name, const char *json)
{
	char *out = azl_xasprintf("%s/%s.rpm", tmp, name);
	char *cmd = azl_xasprintf("echo '%s' | python3 tests/lib/rpmcraft.py - %s",
				  json, out);
	int ok = system(cmd) == 0;

	free(cmd);
	if (!ok) {
		free(out);
		return NULL;
	}
	return out;
}

/* Denied: a device node and capabilities are errors naming what they
 * are; a set-group-ID directory is not privilege and installs. */
static void test_privilege_kinds(void)
{
	static const char *const jsons[][2] = {
		{ "h-dev", "{\"name\":\"h-dev\",\"files\":[{\"path\":\"/usr/h-null\",\"mode\":8630,\"rdev\":259}]}" },
		{ "h-caps", "{\"name\":\"h-caps\",\"files\":[{\"path\":\"/usr/h-ping\",\"mode\":33261,"
			    "\"data\":\"x\",\"caps\":\"cap_net_raw=ep\"}]}" },
		{ "h-sgiddir", "{\"name\":\"h-sgiddir\",\"files\":[{\"path\":\"/var/h-mail\",\"mode\":17917}]}" },
	};
	static const char *const want[] = {
		"h-dev-1-1.noarch: /usr/h-null: character device node (1,3) from repository 'r'",
		"h-caps-1-1.noarch: /usr/h-ping: file with capabilities (cap_net_raw=ep) from repository 'r'",
		NULL,
	};
	struct azl_objstore *st = store_at("priv");

	for (size_t i = 0; i < 3; i++) {
		char *path = craft(jsons[i][0], jsons[i][1]);
		struct azl_install_pkg pk = { .path = path, .deny_setuid = true, .repo = "r" };
		struct azl_install_opts o = { .sde = SDE };
		struct azl_install_result res;
		struct azl_err err = { 0 };
		struct azl_fs *fs = azl_fs_new();
		struct azl_node *n;
		int rc;

		CHECK(path != NULL);
		if (!path) {
			azl_fs_free(fs);
			continue;
		}
		rc = azl_install(fs, st, &pk, 1, &o, &res, &err);
		if (want[i]) {
			CHECK(rc < 0 && err.kind == AZL_ERR_INPUT);
			CHECK_CONTAINS(err.msg, want[i]);
		} else {
			CHECK(rc == 0);
			n = azl_fs_get(fs, "/var/h-mail");
			CHECK(n && n->type == AZL_FT_DIR && n->mode == 02775);
		}
		azl_install_result_release(&res);
		azl_fs_free(fs);
		free(path);
	}
	azl_objstore_close(st);
}

int main(void)
{
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	test_paths();
	test_dir_conflicts();
	test_privilege_kinds();
	if (get_repo()) {
		test_order();
		test_app("s1", "s2");
		pack_max = 32 * 1024;
		test_app("p1", "p2");
		pack_max = 0;
		test_conflicts();
		test_codecs();
		test_symlinks();
		test_privilege();
	} else {
		printf("skip: fixture repository unavailable (tests/lib/fixtures.sh repo base failed)\n");
	}
	char *cmd = azl_xasprintf("rm -rf %s", tmp);
	if (!t_fail && system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmp);
	free(cmd);
	return t_done();
}
