/* Customization over a hand-built model: users, groups, files, services,
 * os-release, hostname, machine-id. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "compose/customize.h"
#include "t.h"

#define SDE 1700000000

static void add(struct azl_fs *fs, const char *path, enum azl_ftype t,
		const char *data_or_target)
{
	struct azl_node n = { 0 };
	struct azl_err err = { 0 };
	n.path = azl_xstrdup(path);
	n.type = t;
	n.mode = t == AZL_FT_DIR ? 0755 : t == AZL_FT_SYMLINK ? 0777 : 0644;
	n.mtime = 1234;
	if (t == AZL_FT_SYMLINK) {
		n.link_target = azl_xstrdup(data_or_target);
	} else if (t == AZL_FT_REG) {
		n.size = strlen(data_or_target);
		n.data = (unsigned char *)azl_xstrdup(data_or_target);
	}
	if (azl_fs_add(fs, &n, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		exit(1);
	}
}

static const char *content(struct azl_fs *fs, const char *path)
{
	static struct azl_buf b = AZL_BUF_INIT;
	if (azl_fs_read_small(fs, path, &b, NULL) < 0)
		return "(missing)";
	return azl_buf_str(&b);
}

static struct azl_fs *base_model(void)
{
	struct azl_fs *fs = azl_fs_new();
	add(fs, "/etc", AZL_FT_DIR, NULL);
	add(fs, "/etc/passwd", AZL_FT_REG, "root:x:0:0:root:/root:/bin/sh\nbin:x:1:1:bin:/bin:/sbin/nologin\n");
	add(fs, "/etc/group", AZL_FT_REG, "root:x:0:\nwheel:x:10:\n");
	add(fs, "/etc/skel", AZL_FT_DIR, NULL);
	add(fs, "/etc/skel/.profile", AZL_FT_REG, "# profile\n");
	add(fs, "/etc/os-release", AZL_FT_SYMLINK, "../usr/lib/os-release");
	add(fs, "/usr", AZL_FT_DIR, NULL);
	add(fs, "/usr/lib", AZL_FT_DIR, NULL);
	add(fs, "/usr/lib/os-release", AZL_FT_REG, "NAME=\"Azure Linux\"\nID=azurelinux\nVERSION_ID=\"4.0\"\n");
	add(fs, "/usr/lib/systemd", AZL_FT_DIR, NULL);
	add(fs, "/usr/lib/systemd/system", AZL_FT_DIR, NULL);
	add(fs, "/usr/lib/systemd/system/sshd.service", AZL_FT_REG,
	    "[Unit]\nDescription=ssh\n[Service]\nExecStart=/usr/sbin/sshd\n[Install]\nWantedBy=multi-user.target\nAlias=ssh.service\n");
	add(fs, "/usr/lib/systemd/system/getty@.service", AZL_FT_REG,
	    "[Service]\nExecStart=/sbin/agetty\n[Install]\nWantedBy=getty.target\nDefaultInstance=tty1\n");
	add(fs, "/usr/lib/systemd/system/plain.service", AZL_FT_REG, "[Service]\nExecStart=/bin/true\n");
	add(fs, "/usr/bin", AZL_FT_DIR, NULL);
	add(fs, "/bin", AZL_FT_SYMLINK, "usr/bin");
	return fs;
}

static void test_users_groups(void)
{
	struct azl_fs *fs = base_model();
	struct azl_buf warn = AZL_BUF_INIT;
	struct azl_err err = { 0 };
	char *supp[] = { "wheel" };
	struct azl_cust_group groups[] = { { .name = "ops", .gid = -1 } };
	struct azl_cust_user users[] = {
		{ .name = "alice", .uid = -1, .groups = supp, .ngroups = 1, .password = "$6$x$y" },
		{ .name = "svc", .uid = -1, .system = true, .shell = "/sbin/nologin", .home = "/var/lib/svc" },
	};
	struct azl_customize c = { .groups = groups, .ngroups = 1, .users = users, .nusers = 2 };

	CHECK(azl_customize_apply(fs, &c, SDE, &warn, &err) == 0);
	CHECK_CONTAINS(content(fs, "/etc/group"), "ops:x:1000:\n");
	/* alice gets uid 1000 and a group of her own with the next free gid. */
	CHECK_CONTAINS(content(fs, "/etc/passwd"), "alice:x:1000:1001::/home/alice:/bin/sh\n");
	CHECK_CONTAINS(content(fs, "/etc/group"), "alice:x:1001:\n");
	CHECK_CONTAINS(content(fs, "/etc/group"), "wheel:x:10:alice\n");
	CHECK_CONTAINS(content(fs, "/etc/passwd"), "svc:x:999:999::/var/lib/svc:/sbin/nologin\n");
	CHECK_CONTAINS(content(fs, "/etc/shadow"), "alice:$6$x$y:19675:0:99999:7:::\n");
	CHECK_CONTAINS(content(fs, "/etc/shadow"), "svc:!:19675:");
	CHECK_CONTAINS(content(fs, "/etc/gshadow"), "ops:!::\n");
	struct azl_node *shadow = azl_fs_get(fs, "/etc/shadow");
	CHECK(shadow && shadow->mode == 0 && shadow->mtime == SDE);
	struct azl_node *home = azl_fs_get(fs, "/home/alice");
	CHECK(home && home->type == AZL_FT_DIR && home->mode == 0700 && home->uid == 1000 && home->gid == 1001);
	struct azl_node *prof = azl_fs_get(fs, "/home/alice/.profile");
	CHECK(prof && prof->uid == 1000 && prof->size == 10);
	CHECK(azl_fs_get(fs, "/var/lib/svc") == NULL); /* system users get no home */
	/* Lookups used by install for owner resolution. */
	uint32_t id = 0;
	CHECK(azl_fs_lookup_id(fs, "/etc/passwd", "alice", &id) == 0 && id == 1000);
	CHECK(azl_fs_lookup_id(fs, "/etc/group", "nope", &id) == -ENOENT);

	/* A duplicate user is an input error naming the key. */
	struct azl_cust_user dup[] = { { .name = "root", .uid = -1 } };
	struct azl_customize c2 = { .users = dup, .nusers = 1 };
	CHECK(azl_customize_apply(fs, &c2, SDE, &warn, &err) < 0);
	CHECK(err.kind == AZL_ERR_INPUT);
	CHECK_CONTAINS(err.msg, "users[0].name");
	azl_buf_release(&warn);
	azl_fs_free(fs);
}

static void test_files_services(void)
{
	struct azl_fs *fs = base_model();
	struct azl_buf warn = AZL_BUF_INIT;
	struct azl_err err = { 0 };
	char src[] = "/tmp/azl-cust-XXXXXX";
	int fd = mkstemp(src);
	CHECK(fd >= 0 && write(fd, "from host\n", 10) == 10);
	close(fd);

	struct azl_cust_file files[] = {
		{ .path = "/etc/motd", .content = "hello\n", .content_len = 6, .mode = 0600, .owner = "bin", .group = "wheel" },
		{ .path = "/bin/tool", .source = src, .mode = 0755 },
	};
	struct azl_cust_dir dirs[] = { { .path = "/srv/data/x", .mode = 0750, .owner = "bin" } };
	struct azl_cust_symlink links[] = { { .path = "/usr/bin/vi", .target = "vim" } };
	char *enable[] = { "sshd.service", "getty@.service", "plain.service" };
	struct azl_cust_kv osr[] = { { "VARIANT_ID", "container" }, { "VERSION_ID", "4.0.1" } };
	struct azl_customize c = {
		.files = files, .nfiles = 2, .dirs = dirs, .ndirs = 1,
		.symlinks = links, .nsymlinks = 1, .enable = enable, .nenable = 3,
		.hostname = "azl-host", .os_release = osr, .nos_release = 2,
	};

	CHECK(azl_customize_apply(fs, &c, SDE, &warn, &err) == 0);
	if (err.code)
		fprintf(stderr, "%s\n", err.msg);
	struct azl_node *motd = azl_fs_get(fs, "/etc/motd");
	CHECK(motd && motd->mode == 0600 && motd->uid == 1 && motd->gid == 10 && motd->mtime == SDE);
	CHECK_STR(content(fs, "/etc/motd"), "hello\n");
	/* /bin is a symlink to usr/bin: the file lands at its real path. */
	struct azl_node *tool = azl_fs_get(fs, "/usr/bin/tool");
	CHECK(tool && tool->size == 10 && tool->data_path && !strcmp(tool->data_path, src));
	CHECK_STR(content(fs, "/usr/bin/tool"), "from host\n");
	struct azl_node *d = azl_fs_get(fs, "/srv/data/x");
	CHECK(d && d->mode == 0750 && d->uid == 1);
	CHECK(azl_fs_get(fs, "/srv") && azl_fs_get(fs, "/srv")->mode == 0755);
	struct azl_node *l = azl_fs_get(fs, "/etc/systemd/system/multi-user.target.wants/sshd.service");
	CHECK(l && l->type == AZL_FT_SYMLINK && !strcmp(l->link_target, "/usr/lib/systemd/system/sshd.service"));
	l = azl_fs_get(fs, "/etc/systemd/system/ssh.service");
	CHECK(l && !strcmp(l->link_target, "/usr/lib/systemd/system/sshd.service"));
	l = azl_fs_get(fs, "/etc/systemd/system/getty.target.wants/getty@tty1.service");
	CHECK(l && !strcmp(l->link_target, "/usr/lib/systemd/system/getty@.service"));
	CHECK_CONTAINS(azl_buf_str(&warn), "plain.service has no [Install] section");
	CHECK_STR(content(fs, "/etc/hostname"), "azl-host\n");
	/* os-release edited through its symlink, keys replaced in place. */
	CHECK_STR(content(fs, "/usr/lib/os-release"),
		  "NAME=\"Azure Linux\"\nID=azurelinux\nVERSION_ID=\"4.0.1\"\nVARIANT_ID=\"container\"\n");
	CHECK(azl_fs_get(fs, "/etc/os-release")->type == AZL_FT_SYMLINK);
	struct azl_node *mid = azl_fs_get(fs, "/etc/machine-id");
	CHECK(mid && mid->size == 0 && mid->mode == 0444);

	/* Disable removes what enable made. */
	char *disable[] = { "sshd.service" };
	struct azl_customize c3 = { .disable = disable, .ndisable = 1 };
	CHECK(azl_customize_apply(fs, &c3, SDE, &warn, &err) == 0);
	CHECK(azl_fs_get(fs, "/etc/systemd/system/multi-user.target.wants/sshd.service") == NULL);
	CHECK(azl_fs_get(fs, "/etc/systemd/system/ssh.service") == NULL);

	/* Errors name the key. */
	struct azl_cust_file badf[] = { { .path = "/etc/x", .content = "", .owner = "ghost" } };
	struct azl_customize c4 = { .files = badf, .nfiles = 1 };
	CHECK(azl_customize_apply(fs, &c4, SDE, &warn, &err) < 0);
	CHECK_CONTAINS(err.msg, "files[0].owner: 'ghost'");
	char *missing[] = { "nosuch.service" };
	struct azl_customize c5 = { .enable = missing, .nenable = 1 };
	CHECK(azl_customize_apply(fs, &c5, SDE, &warn, &err) < 0);
	CHECK_CONTAINS(err.msg, "nosuch.service");
	struct azl_cust_file srcmiss[] = { { .path = "/etc/y", .source = "/nonexistent/file" } };
	struct azl_customize c6 = { .files = srcmiss, .nfiles = 1 };
	CHECK(azl_customize_apply(fs, &c6, SDE, &warn, &err) < 0);
	CHECK_CONTAINS(err.msg, "files[0].source: /nonexistent/file");

	unlink(src);
	azl_buf_release(&warn);
	azl_fs_free(fs);
}

/* What the manifest loader fills is taken literally: mode 0000 and
 * create_home: false; zero-initialised fields keep the defaults. */
static void test_exact_settings(void)
{
	struct azl_fs *fs = base_model();
	struct azl_buf warn = AZL_BUF_INIT;
	struct azl_err err = { 0 };
	struct azl_cust_file files[] = {
		{ .path = "/etc/secret", .content = "", .mode = 0, .mode_set = true },
		{ .path = "/etc/plain", .content = "", .mode = 0 },
	};
	struct azl_cust_dir dirs[] = { { .path = "/srv/locked", .mode = 0, .mode_set = true } };
	struct azl_cust_user users[] = {
		{ .name = "nohome", .uid = -1, .create_home = false, .create_home_set = true },
		{ .name = "sys", .uid = -1, .system = true, .home = "/var/lib/sys",
		  .create_home = true, .create_home_set = true },
	};
	struct azl_customize c = { .files = files, .nfiles = 2, .dirs = dirs, .ndirs = 1,
				   .users = users, .nusers = 2 };

	CHECK(azl_customize_apply(fs, &c, SDE, &warn, &err) == 0);
	if (err.code)
		fprintf(stderr, "%s\n", err.msg);
	struct azl_node *n = azl_fs_get(fs, "/etc/secret");
	CHECK(n && n->mode == 0);
	n = azl_fs_get(fs, "/etc/plain");
	CHECK(n && n->mode == 0644);
	n = azl_fs_get(fs, "/srv/locked");
	CHECK(n && n->type == AZL_FT_DIR && n->mode == 0);
	CHECK(azl_fs_get(fs, "/home/nohome") == NULL);
	n = azl_fs_get(fs, "/var/lib/sys");
	CHECK(n && n->type == AZL_FT_DIR && n->mode == 0700);
	azl_buf_release(&warn);
	azl_fs_free(fs);
}

int main(void)
{
	test_users_groups();
	test_files_services();
	test_exact_settings();
	return t_done();
}
