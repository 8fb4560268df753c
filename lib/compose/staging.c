/* Staging tree: materialise the model into lower/, read upper/ back.
 * See staging.h for the layout and the ownership rules. */
#include "compose/staging.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"

/* Root may hand ids 0..65535 to the sandbox only when its own namespace
 * maps them all (not so inside `unshare -r`, which maps one id). */
static bool maps_full_range(const char *map_file)
{
	unsigned long in, outside, count;
	bool full = false;
	FILE *f = fopen(map_file, "re");

	if (!f)
		return false;
	while (fscanf(f, "%lu %lu %lu", &in, &outside, &count) == 3)
		if (in == 0 && count >= AZL_STAGING_ID_RANGE)
			full = true;
	fclose(f);
	return full;
}

/* ---- removing trees ---- */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Entry names of an open directory, sorted bytewise (model sibling order).
 * Caller frees each name and the array. */
static int list_dir(int dfd, char ***names, size_t *n)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	size_t cap = 0;

	*names = NULL;
	*n = 0;
	if (!d) {
		close(dfd);
		return -errno;
	}
	errno = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*names = azl_xrealloc(*names, cap * sizeof(**names));
		}
		(*names)[(*n)++] = azl_xstrdup(de->d_name);
	}
	closedir(d);
	/* sorted: every caller walks these names in model order. */
	if (*n > 1)
		qsort(*names, *n, sizeof(**names), name_cmp);
	return 0;
}

/* Unlinking first and asking questions only when that fails costs one
 * system call per file instead of two: trees here hold thousands. */
static int rm_at(int parent, const char *name)
{
	struct stat sb;
	char **names;
	size_t n;
	int fd, r;

	if (unlinkat(parent, name, 0) == 0)
		return 0;
	if (errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	if (fstatat(parent, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(sb.st_mode))
		return -EPERM;
	/* overlay work dirs are 0000; image dirs may be 0555 */
	(void)fchmodat(parent, name, 0700, 0);
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int lfd = dup(fd);
	if (lfd < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = list_dir(lfd, &names, &n); /* closes lfd */
	for (size_t i = 0; r == 0 && i < n; i++)
		r = rm_at(fd, names[i]);
	close(fd);
	azl_strv_free(names, n);
	if (r == 0 && unlinkat(parent, name, AT_REMOVEDIR) < 0)
		r = -errno;
	return r;
}

int azl_staging_rmtree(const char *path, struct azl_err *err)
{
	int r = rm_at(AT_FDCWD, path);
	if (r < 0)
		return azl_errf(err, r, "removing %s: %s", path, strerror(-r));
	return 0;
}

/* ---- materialising the model ---- */

struct first_link {
	uint32_t group;
	const char *path; /* model path of the group's first member */
};

struct mat {
	struct azl_staging *st;
	struct first_link *firsts;
	size_t nfirsts;
	struct azl_err *err;
};

static char *lower_path(const struct azl_staging *st, const char *mpath)
{
	return azl_xasprintf("%s%s", st->lower, strcmp(mpath, "/") ? mpath : "");
}

/* Host owner a lower entry gets so it shows the wanted owner inside. */
static void host_owner(const struct azl_staging *st, const struct azl_node *n,
		       uid_t *uid, gid_t *gid)
{
	*uid = st->host_uid;
	*gid = st->host_gid;
	if (st->id_count > 1) {
		*uid = n->uid < st->id_count ? n->uid : 65534;
		*gid = n->gid < st->id_count ? n->gid : 65534;
	}
}

static int first_cmp(const void *a, const void *b)
{
	const struct first_link *x = a, *y = b;
	return x->group < y->group ? -1 : x->group > y->group;
}

/* First member (model order) of every hardlink group. */
static void collect_firsts(struct mat *m, struct azl_node *const *nodes,
			   size_t count)
{
	size_t cap = 0;
	for (size_t i = 0; i < count; i++) {
		const struct azl_node *n = nodes[i];
		struct first_link key = { n->hardlink_group, NULL };
		if (n->type != AZL_FT_REG || !n->hardlink_group ||
		    (n->flags & AZL_NODE_GHOST))
			continue;
		if (m->nfirsts && bsearch(&key, m->firsts, m->nfirsts,
					  sizeof(key), first_cmp))
			continue;
		if (m->nfirsts == cap) {
			cap = cap ? cap * 2 : 16;
			m->firsts = azl_xrealloc(m->firsts, cap * sizeof(key));
		}
		key.path = n->path;
		m->firsts[m->nfirsts++] = key;
		/* keep it sorted for bsearch; groups are few */
		qsort(m->firsts, m->nfirsts, sizeof(key), first_cmp);
	}
}

static const char *first_of(const struct mat *m, uint32_t group)
{
	struct first_link key = { group, NULL }, *f;
	if (!group || !m->nfirsts)
		return NULL;
	f = bsearch(&key, m->firsts, m->nfirsts, sizeof(key), first_cmp);
	return f ? f->path : NULL;
}

/* Hard-link the content object when it can stand for this file. */
static bool try_link_object(struct mat *m, const struct azl_node *n,
			    const char *lp)
{
	struct stat sb;
	uid_t uid;
	gid_t gid;

	if (!m->st->overlay || !n->data_path || n->data_offset || n->data)
		return false;
	host_owner(m->st, n, &uid, &gid);
	if (stat(n->data_path, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    (uint64_t)sb.st_size != n->size || sb.st_uid != uid ||
	    sb.st_gid != gid)
		return false;
	/* Objects are 0444.  Root in the sandbox reads and (through copy-up)
	 * writes such a file whatever its bits, so only bits that change what
	 * the kernel does (exec, set-id, sticky) require a copy; capture
	 * compares with the lower file, so the shown bits are not taken. */
	if ((sb.st_mode & 07777) != n->mode && ((n->mode | sb.st_mode) & 07111))
		return false;
	return link(n->data_path, lp) == 0;
}

static int write_cb(void *ctx, const void *data, size_t len)
{
	return azl_write_all(*(int *)ctx, data, len);
}

/* Copy size bytes at offset; the kernel does it when it can. */
static int copy_content(const struct azl_node *n, int out, struct azl_err *err)
{
	int in, r = 0;
	loff_t off = (loff_t)n->data_offset;
	uint64_t left = n->size;

	if (!n->data_path || !n->size)
		return azl_node_read(n, write_cb, &out, err);
	in = open(n->data_path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return azl_errf(err, -errno, "%s: content %s: %s", n->path,
				n->data_path, strerror(errno));
	while (left) {
		size_t want = left > (1u << 30) ? (1u << 30) : (size_t)left;
		ssize_t got = copy_file_range(in, &off, out, NULL, want, 0);
		if (got <= 0) {
			r = -1;
			break;
		}
		left -= (uint64_t)got;
	}
	close(in);
	if (r == 0)
		return 0;
	/* unsupported here (or failed midway): start over in user space */
	if (ftruncate(out, 0) < 0 || lseek(out, 0, SEEK_SET) < 0)
		return azl_errf(err, -errno, "%s: rewinding copy", n->path);
	return azl_node_read(n, write_cb, &out, err);
}

static int set_times(int dirfd, const char *path, int64_t mtime, int flags)
{
	struct timespec ts[2] = { { (time_t)mtime, 0 }, { (time_t)mtime, 0 } };
	return utimensat(dirfd, path, ts, flags) < 0 ? -errno : 0;
}

static int mat_reg(struct mat *m, const struct azl_node *n, const char *lp)
{
	const char *first = first_of(m, n->hardlink_group);
	uid_t uid;
	gid_t gid;
	int fd, r;

	if (first && strcmp(first, n->path)) {
		char *fp = lower_path(m->st, first);
		r = link(fp, lp) < 0 ? -errno : 0;
		free(fp);
		if (r < 0)
			return azl_errf(m->err, r, "%s: hard link to %s: %s",
					n->path, first, strerror(-r));
		return 0;
	}
	if (try_link_object(m, n, lp)) {
		m->st->nlinked++;
		return 0;
	}
	fd = open(lp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return azl_errf(m->err, -errno, "%s: creating %s: %s", n->path,
				lp, strerror(errno));
	r = copy_content(n, fd, m->err);
	host_owner(m->st, n, &uid, &gid);
	/* chown before chmod: chown clears set-id bits */
	if (r == 0 && m->st->id_count > 1 && fchown(fd, uid, gid) < 0)
		r = azl_errf(m->err, -errno, "%s: chown: %s", lp, strerror(errno));
	if (r == 0 && fchmod(fd, n->mode) < 0)
		r = azl_errf(m->err, -errno, "%s: chmod: %s", lp, strerror(errno));
	close(fd);
	if (r == 0)
		r = set_times(AT_FDCWD, lp, n->mtime, 0);
	m->st->ncopied++;
	return r;
}

/* Devices need root on the host; sockets need a listener.  Neither matters
 * to a scriptlet (the sandbox's /dev is its own), so an empty file stands in. */
static int mat_special(struct mat *m, const struct azl_node *n, const char *lp)
{
	int r = -1;

	if (n->type == AZL_FT_FIFO)
		r = mkfifo(lp, 0600);
	else if ((n->type == AZL_FT_CHR || n->type == AZL_FT_BLK) && geteuid() == 0)
		r = mknod(lp, (n->type == AZL_FT_CHR ? S_IFCHR : S_IFBLK) | 0600,
			  makedev(n->rdev_major, n->rdev_minor));
	if (r < 0) {
		int fd = open(lp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return azl_errf(m->err, -errno, "%s: creating %s: %s",
					n->path, lp, strerror(errno));
		close(fd);
	}
	return 0;
}

static int mat_node(struct mat *m, const struct azl_node *n)
{
	char *lp = lower_path(m->st, n->path);
	uid_t uid;
	gid_t gid;
	int r = 0;

	host_owner(m->st, n, &uid, &gid);
	switch (n->type) {
	case AZL_FT_DIR:
		if (mkdir(lp, 0700) < 0 && !(errno == EEXIST && !strcmp(n->path, "/")))
			r = azl_errf(m->err, -errno, "%s: mkdir %s: %s", n->path,
				     lp, strerror(errno));
		break;
	case AZL_FT_REG:
		r = mat_reg(m, n, lp);
		goto out; /* owner, mode and time already set */
	case AZL_FT_SYMLINK:
		if (symlink(n->link_target ? n->link_target : "", lp) < 0)
			r = azl_errf(m->err, -errno, "%s: symlink: %s", n->path,
				     strerror(errno));
		else
			(void)set_times(AT_FDCWD, lp, n->mtime, AT_SYMLINK_NOFOLLOW);
		break;
	default:
		r = mat_special(m, n, lp);
		/* A real device node on the host stays owner-only: the package
		 * may say 0666, but the host is not the image.  Capture never
		 * reads devices back, so the shown mode changes nothing. */
		if (r == 0 && chmod(lp, n->type == AZL_FT_CHR || n->type == AZL_FT_BLK ?
				     n->mode & 0700 : n->mode) < 0)
			r = azl_errf(m->err, -errno, "%s: chmod: %s", lp,
				     strerror(errno));
		break;
	}
	if (r == 0 && m->st->id_count > 1 && lchown(lp, uid, gid) < 0)
		r = azl_errf(m->err, -errno, "%s: chown: %s", lp, strerror(errno));
out:
	free(lp);
	return r;
}

/* Directory modes and times last, deepest first, so a 0555 directory or a
 * new entry does not get in the way. */
static int finish_dirs(struct mat *m, struct azl_node *const *nodes,
		       size_t count)
{
	int r = 0;
	for (size_t i = count; r == 0 && i-- > 0;) {
		const struct azl_node *n = nodes[i];
		char *lp;
		if (n->type != AZL_FT_DIR)
			continue;
		lp = lower_path(m->st, n->path);
		if (chmod(lp, n->mode) < 0)
			r = azl_errf(m->err, -errno, "%s: chmod: %s", lp,
				     strerror(errno));
		else
			r = set_times(AT_FDCWD, lp, n->mtime, 0);
		free(lp);
	}
	return r;
}

/* Mount points the sandbox needs, in lower/ so they never show as changes. */
static int add_mount_points(struct azl_staging *st, struct azl_err *err)
{
	static const char *const dirs[] = { "dev", "proc", "tmp" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char *p = azl_xasprintf("%s/%s", st->lower, dirs[i]);
		int r = mkdir(p, 0755) < 0 && errno != EEXIST ? -errno : 0;
		free(p);
		if (r < 0)
			return azl_errf(err, r, "%s/%s: %s", st->lower, dirs[i],
					strerror(-r));
	}
	return 0;
}

static int materialise(struct azl_staging *st, struct azl_fs *fs,
		       struct azl_err *err)
{
	struct mat m = { .st = st, .err = err };
	struct azl_node *const *nodes = azl_fs_sorted(fs);
	size_t count = azl_fs_count(fs);
	int r = 0;

	collect_firsts(&m, nodes, count);
	for (size_t i = 0; r == 0 && i < count; i++)
		if (!(nodes[i]->flags & AZL_NODE_GHOST))
			r = mat_node(&m, nodes[i]);
	if (r == 0)
		r = add_mount_points(st, err);
	if (r == 0)
		r = finish_dirs(&m, nodes, count);
	free(m.firsts);
	return r;
}

static void staging_free(struct azl_staging *st);

static char *absolute(const char *path)
{
	char cwd[PATH_MAX];
	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return azl_xstrdup(path);
	return azl_path_join(cwd, path);
}

static int chdir_probe_dirs(const char *probe)
{
	static const char *const sub[] = { "l", "u", "w", "m" };
	for (size_t i = 0; i < 4; i++) {
		char *p = azl_path_join(probe, sub[i]);
		int r = mkdir(p, 0700);
		free(p);
		if (r < 0)
			return -errno;
	}
	return 0;
}

static int write_self(const char *file, const char *text)
{
	int fd = open(file, O_WRONLY | O_CLOEXEC), r;
	if (fd < 0)
		return -1;
	r = azl_write_all(fd, text, strlen(text));
	close(fd);
	return r;
}

/* In a forked child: 0 if the overlay mounts. */
static int probe_child(const char *probe, uid_t uid, gid_t gid)
{
	char map[64];

	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0 || chdir(probe) < 0)
		return 1;
	snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid);
	if (write_self("/proc/self/setgroups", "deny") < 0 ||
	    write_self("/proc/self/uid_map", map) < 0)
		return 1;
	snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid);
	if (write_self("/proc/self/gid_map", map) < 0)
		return 1;
	if (mount("overlay", "m", "overlay", 0,
		  "lowerdir=l,upperdir=u,workdir=w,userxattr") == 0 ||
	    mount("overlay", "m", "overlay", 0, "lowerdir=l,upperdir=u,workdir=w") == 0)
		return 0;
	return 1;
}

/* Can this process mount an overlay in a user namespace of its own?
 * Tried on an empty tree in dir/probe (removed again). */
static bool overlay_works(const char *dir)
{
	char *probe = azl_path_join(dir, "probe");
	bool ok = false;
	int ws = 0;
	pid_t pid;

	if (mkdir(probe, 0700) < 0 || chdir_probe_dirs(probe) < 0)
		goto out;
	pid = fork();
	if (pid == 0)
		_exit(probe_child(probe, geteuid(), getegid()));
	while (pid > 0 && waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	ok = pid > 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
out:
	(void)azl_staging_rmtree(probe, NULL);
	free(probe);
	return ok;
}

/* copy mode: scriptlet changes are what has a ctime at or after this */
static int take_stamp(struct azl_staging *st, struct azl_err *err)
{
	char *p = azl_path_join(st->dir, "stamp");
	struct stat sb;
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), r = 0;

	if (fd < 0 || fstat(fd, &sb) < 0)
		r = azl_errf(err, -errno, "%s: %s", p, strerror(errno));
	else {
		st->stamp_sec = sb.st_ctim.tv_sec;
		st->stamp_nsec = sb.st_ctim.tv_nsec;
	}
	if (fd >= 0)
		close(fd);
	unlink(p);
	free(p);
	return r;
}

static int create(struct azl_fs *fs, const char *workdir, bool force_copy,
		  struct azl_staging **out, struct azl_err *err)
{
	struct azl_staging *st = azl_xcalloc(1, sizeof(*st));
	int r;

	*out = NULL;
	st->dir = absolute(workdir);
	st->lower = azl_path_join(st->dir, "lower");
	st->upper = azl_path_join(st->dir, "upper");
	st->work = azl_path_join(st->dir, "work");
	st->root = azl_path_join(st->dir, "root");
	st->host_uid = geteuid();
	st->host_gid = getegid();
	st->id_count = st->host_uid == 0 && maps_full_range("/proc/self/uid_map") &&
		       maps_full_range("/proc/self/gid_map") ? AZL_STAGING_ID_RANGE : 1;
	if ((r = azl_mkdir_p(st->dir, err)) < 0)
		goto out;
	const char *const dirs[] = { st->lower, st->upper, st->work, st->root };
	for (size_t i = 0; i < 4; i++) {
		if (mkdir(dirs[i], 0755) < 0) {
			r = azl_errf(err, -errno, "%s: %s", dirs[i], strerror(errno));
			/* an existing tree is not ours to remove */
			while (i-- > 0)
				(void)azl_staging_rmtree(dirs[i], NULL);
			staging_free(st);
			return azl_err_prefix(err, "staging tree");
		}
	}
	st->overlay = !force_copy && overlay_works(st->dir);
	r = materialise(st, fs, err);
	if (r == 0 && !st->overlay)
		r = take_stamp(st, err);
out:
	if (r < 0) {
		azl_err_prefix(err, "staging tree %s", st->dir);
		azl_staging_destroy(st);
		return r;
	}
	*out = st;
	return 0;
}


int azl_staging_create(struct azl_fs *fs, const char *workdir,
		       struct azl_staging **out, struct azl_err *err)
{
	return create(fs, workdir, false, out, err);
}

int azl_staging_create_copy(struct azl_fs *fs, const char *workdir,
			    struct azl_staging **out, struct azl_err *err)
{
	return create(fs, workdir, true, out, err);
}

void azl_staging_destroy(struct azl_staging *st)
{
	if (!st)
		return;
	const char *const trees[] = { st->lower, st->upper, st->work, st->root };
	for (size_t i = 0; i < 4; i++)
		(void)azl_staging_rmtree(trees[i], NULL);
	staging_free(st);
}

static void staging_free(struct azl_staging *st)
{
	free(st->dir);
	free(st->lower);
	free(st->upper);
	free(st->work);
	free(st->root);
	free(st);
}

/* ---- capturing the upper dir ---- */

struct idname {
	uint32_t id;
	char *name;
};

struct inolink {
	dev_t dev;
	ino_t ino;
	uint32_t group;
};

struct cap {
	struct azl_staging *st;
	struct azl_fs *fs;
	char *objects;
	int64_t sde;
	struct idname *users, *groups;
	size_t nusers, ngroups;
	bool names_loaded;
	struct inolink *links;
	size_t nlinks;
	char **snap; /* copy mode: see drop_missing */
	size_t nsnap;
	uint32_t next_group;
	struct azl_err *err;
};

/* Image's passwd/group as seen by the scriptlets: upper over lower. */
static void load_ids(struct cap *c, const char *rel, struct idname **out,
		     size_t *n)
{
	char *path = azl_xasprintf("%s/%s", c->st->upper, rel), *data = NULL;
	size_t len;

	if (access(path, F_OK) < 0) {
		free(path);
		path = azl_xasprintf("%s/%s", c->st->lower, rel);
	}
	if (azl_read_file(path, 0, &data, &len, NULL) == 0) {
		for (char *line = data, *next; line && *line; line = next) {
			char *f1, *f3;
			next = strchr(line, '\n');
			if (next)
				*next++ = '\0';
			f1 = strchr(line, ':');
			f3 = f1 ? strchr(f1 + 1, ':') : NULL;
			if (!f3)
				continue;
			*f1 = '\0';
			*out = azl_xrealloc(*out, (*n + 1) * sizeof(**out));
			(*out)[*n].id = (uint32_t)strtoul(f3 + 1, NULL, 10);
			(*out)[(*n)++].name = azl_xstrdup(line);
		}
	}
	free(data);
	free(path);
}

static char *id_name(struct cap *c, bool user, uint32_t id)
{
	struct idname *v;
	size_t n;

	if (!c->names_loaded) {
		load_ids(c, "etc/passwd", &c->users, &c->nusers);
		load_ids(c, "etc/group", &c->groups, &c->ngroups);
		c->names_loaded = true;
	}
	v = user ? c->users : c->groups;
	n = user ? c->nusers : c->ngroups;
	for (size_t i = 0; i < n; i++)
		if (v[i].id == id)
			return azl_xstrdup(v[i].name);
	return NULL;
}

static void set_id(struct cap *c, struct azl_node *n, bool user, uint32_t id)
{
	char **name = user ? &n->user : &n->group;
	uint32_t *cur = user ? &n->uid : &n->gid;

	if (*cur == id)
		return;
	free(*name);
	*name = id ? id_name(c, user, id) : NULL;
	*cur = id;
}

/* Mode and owner of a captured entry (rules in staging.h).  lower: the
 * entry as materialised, when it exists with the same type; only what
 * differs from it was changed by a scriptlet (a hard-linked object may
 * show other bits than the model, and copy-up keeps them). */
static void set_meta(struct cap *c, struct azl_node *n,
		     const struct azl_node *old, const struct stat *sb,
		     const struct stat *lower)
{
	bool range = c->st->id_count > 1;

	if (n != old) {
		n->uid = old ? old->uid : 0;
		n->gid = old ? old->gid : 0;
		n->user = old ? azl_xstrdup(old->user) : NULL;
		n->group = old ? azl_xstrdup(old->group) : NULL;
		n->mode = old ? old->mode : 0;
	}
	if (!old || !lower || (sb->st_mode & 07777) != (lower->st_mode & 07777))
		n->mode = sb->st_mode & 07777;
	if (!range)
		return;
	if (!old || !lower || sb->st_uid != lower->st_uid)
		set_id(c, n, true, sb->st_uid);
	if (!old || !lower || sb->st_gid != lower->st_gid)
		set_id(c, n, false, sb->st_gid);
}

/* lstat of mpath under root without following any symlink on the way.
 * lower/ holds package symlinks that may point anywhere on the host; only
 * paths the model had are looked up (their parents were directories), so
 * this is defence in depth: a host file is none of the image's business. */
static int lstat_beneath(const char *root, const char *mpath, struct stat *buf)
{
	char *rel = azl_xstrdup(mpath + strspn(mpath, "/")), *c = rel, *slash;
	int dir = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC), r = -1;

	while (dir >= 0 && (slash = strchr(c, '/'))) {
		int next;
		*slash = '\0';
		next = openat(dir, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(dir);
		dir = next;
		c = slash + 1;
	}
	if (dir >= 0)
		r = fstatat(dir, *c ? c : ".", buf, AT_SYMLINK_NOFOLLOW);
	if (dir >= 0)
		close(dir);
	free(rel);
	return r;
}

/* The materialised entry at mpath if it has the upper entry's type. */
static const struct stat *lower_stat(struct cap *c, const char *mpath,
				     const struct stat *sb, struct stat *buf)
{
	bool ok;

	if (!c->st->overlay)
		return NULL; /* the entry is the lower one, changed in place */
	ok = lstat_beneath(c->st->lower, mpath, buf) == 0 &&
		  (buf->st_mode & S_IFMT) == (sb->st_mode & S_IFMT);
	return ok ? buf : NULL;
}

/* New hardlink group for an inode a scriptlet linked twice or more. */
static uint32_t link_group(struct cap *c, const struct stat *sb)
{
	if (sb->st_nlink < 2)
		return 0;
	for (size_t i = 0; i < c->nlinks; i++)
		if (c->links[i].dev == sb->st_dev && c->links[i].ino == sb->st_ino)
			return c->links[i].group;
	c->links = azl_xrealloc(c->links, (c->nlinks + 1) * sizeof(*c->links));
	c->links[c->nlinks++] = (struct inolink){ sb->st_dev, sb->st_ino,
						  ++c->next_group };
	return c->next_group;
}

static int hash_cb(void *ctx, const void *data, size_t len)
{
	azl_sha256_update(ctx, data, len);
	return 0;
}

static int old_digest(const struct azl_node *old, char hex[65],
		      struct azl_err *err)
{
	struct azl_sha256 *h;
	int r;

	if (old->sha256[0]) {
		memcpy(hex, old->sha256, 65);
		return 0;
	}
	h = azl_sha256_new();
	r = azl_node_read(old, hash_cb, h, err);
	azl_sha256_final(h, hex);
	return r;
}

/* Copy a captured file into objects/<sha256> unless it is already there. */
static int store_object(struct cap *c, const char *src, const char *hex,
			char **obj, struct azl_err *err)
{
	char *tmp = NULL;
	int in = -1, out = -1, r = 0;

	*obj = azl_xasprintf("%s/%s", c->objects, hex);
	if (access(*obj, F_OK) == 0)
		return 0;
	tmp = azl_xasprintf("%s/.tmp-%s-%ld", c->objects, hex, (long)getpid());
	in = open(src, O_RDONLY | O_CLOEXEC);
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (in < 0 || out < 0) {
		r = azl_errf(err, -errno, "object %s from %s: %s", *obj, src,
			     strerror(errno));
		goto out;
	}
	for (;;) {
		ssize_t got = copy_file_range(in, NULL, out, NULL, 1u << 30, 0);
		if (got == 0)
			break;
		if (got < 0) {
			r = azl_errf(err, -errno, "copying %s to %s: %s", src,
				     tmp, strerror(errno));
			goto out;
		}
	}
	if (fchmod(out, 0644) < 0 || fsync(out) < 0 || rename(tmp, *obj) < 0)
		r = azl_errf(err, -errno, "object %s: %s", *obj, strerror(errno));
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (r < 0)
		unlink(tmp);
	free(tmp);
	return r;
}

static void set_content(struct azl_node *n, char *obj, const char *hex,
			uint64_t size)
{
	free(n->data_path);
	free(n->data);
	n->data = NULL;
	n->data_path = obj;
	n->data_offset = 0;
	n->size = size;
	memcpy(n->sha256, hex, 65);
}

static int put_new(struct cap *c, struct azl_node *n)
{
	int r = azl_fs_put(c->fs, n, c->err);
	azl_node_release(n);
	return r;
}

static int cap_reg(struct cap *c, const char *hp, const char *mpath,
		   const struct stat *sb)
{
	struct azl_node *old = azl_fs_get(c->fs, mpath);
	struct azl_node fresh = { 0 }, *n = &fresh;
	struct stat lbuf;
	const struct stat *lower = lower_stat(c, mpath, sb, &lbuf);
	char hex[65], ohex[65];
	char *obj = NULL;
	bool same = false;
	uint32_t group = link_group(c, sb);
	int r = azl_sha256_file(hp, hex, NULL, c->err);

	if (r < 0)
		return r;
	if (old && old->type == AZL_FT_DIR)
		old = NULL; /* put drops the directory's contents */
	if (old && old->type == AZL_FT_REG && old->size == (uint64_t)sb->st_size) {
		if ((r = old_digest(old, ohex, c->err)) < 0)
			return r;
		same = !strcmp(hex, ohex);
	}
	if (old && old->type == AZL_FT_REG)
		n = old;
	set_meta(c, n, old, sb, lower);
	if (group || !same)
		n->hardlink_group = group;
	if (same)
		return 0;
	if ((r = store_object(c, hp, hex, &obj, c->err)) < 0) {
		free(obj);
		goto out;
	}
	set_content(n, obj, hex, (uint64_t)sb->st_size);
	n->mtime = c->sde;
	if (n == old)
		return 0;
	n->type = AZL_FT_REG;
	n->path = azl_xstrdup(mpath);
	return put_new(c, n);
out:
	azl_node_release(&fresh);
	return r;
}

static int cap_symlink(struct cap *c, const char *hp, const char *mpath,
		       const struct stat *sb)
{
	struct azl_node *old = azl_fs_get(c->fs, mpath);
	struct azl_node n = { 0 };
	struct stat lbuf;
	const struct stat *lower = lower_stat(c, mpath, sb, &lbuf);
	char target[PATH_MAX];
	ssize_t len = readlink(hp, target, sizeof(target) - 1);

	if (len < 0)
		return azl_errf(c->err, -errno, "%s: readlink: %s", hp,
				strerror(errno));
	target[len] = '\0';
	if (old && old->type == AZL_FT_SYMLINK && old->link_target &&
	    !strcmp(old->link_target, target)) {
		set_meta(c, old, old, sb, lower);
		old->mode = 0777;
		return 0;
	}
	if (old && old->type == AZL_FT_DIR)
		old = NULL;
	set_meta(c, &n, old, sb, lower);
	n.path = azl_xstrdup(mpath);
	n.type = AZL_FT_SYMLINK;
	n.mode = 0777;
	n.link_target = azl_xstrdup(target);
	n.mtime = c->sde;
	return put_new(c, &n);
}

/* Directories and fifos: keep the node, take what changed. */
static int cap_plain(struct cap *c, const char *mpath, const struct stat *sb,
		     enum azl_ftype type)
{
	struct azl_node *old = azl_fs_get(c->fs, mpath);
	struct azl_node n = { 0 };
	struct stat lbuf;
	const struct stat *lower = lower_stat(c, mpath, sb, &lbuf);

	if (old && old->type == type) {
		set_meta(c, old, old, sb, lower);
		return 0;
	}
	if (old && old->type == AZL_FT_DIR)
		old = NULL;
	set_meta(c, &n, old, sb, lower);
	n.path = azl_xstrdup(mpath);
	n.type = type;
	n.mtime = c->sde;
	return put_new(c, &n);
}

static bool is_opaque(const char *hp)
{
	char v[2];
	return (lgetxattr(hp, "user.overlay.opaque", v, 1) == 1 && v[0] == 'y') ||
	       (lgetxattr(hp, "trusted.overlay.opaque", v, 1) == 1 && v[0] == 'y');
}

static int sorted_index_cmp(const void *key, const void *elt)
{
	return azl_path_cmp(key, (*(struct azl_node *const *)elt)->path);
}

/* An opaque upper dir hides everything the lower had below it. */
static void drop_below(struct cap *c, const char *mpath)
{
	struct azl_node *const *nodes = azl_fs_sorted(c->fs);
	size_t count = azl_fs_count(c->fs), len = strlen(mpath), n = 0;
	struct azl_node *const *at = bsearch(mpath, nodes, count, sizeof(*nodes),
					     sorted_index_cmp);
	char **doomed = NULL;

	if (!at)
		return;
	for (size_t i = (size_t)(at - nodes) + 1; i < count; i++) {
		const char *p = nodes[i]->path;
		if (strncmp(p, mpath, len) || p[len] != '/')
			break;
		doomed = azl_xrealloc(doomed, (n + 1) * sizeof(*doomed));
		doomed[n++] = azl_xstrdup(p);
	}
	for (size_t i = 0; i < n; i++)
		(void)azl_fs_remove(c->fs, doomed[i]); /* -ENOENT: went with its parent */
	azl_strv_free(doomed, n);
}

static int cap_dir(struct cap *c, const char *hdir, const char *mdir);

static int cap_entry(struct cap *c, const char *hp, const char *mpath)
{
	struct stat sb;

	if (lstat(hp, &sb) < 0)
		return azl_errf(c->err, -errno, "%s: %s", hp, strerror(errno));
	if (S_ISCHR(sb.st_mode) && sb.st_rdev == makedev(0, 0)) {
		(void)azl_fs_remove(c->fs, mpath); /* whiteout */
		return 0;
	}
	if (S_ISDIR(sb.st_mode)) {
		int r;
		if (is_opaque(hp))
			drop_below(c, mpath);
		r = cap_plain(c, mpath, &sb, AZL_FT_DIR);
		return r < 0 ? r : cap_dir(c, hp, mpath);
	}
	if (S_ISREG(sb.st_mode))
		return cap_reg(c, hp, mpath, &sb);
	if (S_ISLNK(sb.st_mode))
		return cap_symlink(c, hp, mpath, &sb);
	if (S_ISFIFO(sb.st_mode))
		return cap_plain(c, mpath, &sb, AZL_FT_FIFO);
	return 0; /* devices and sockets cannot be made in the sandbox */
}

static int cap_dir(struct cap *c, const char *hdir, const char *mdir)
{
	char **names;
	size_t n;
	int fd = open(hdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int r;

	if (fd < 0)
		return azl_errf(c->err, -errno, "%s: %s", hdir, strerror(errno));
	if ((r = list_dir(fd, &names, &n)) < 0)
		return azl_errf(c->err, r, "%s: %s", hdir, strerror(-r));
	for (size_t i = 0; r == 0 && i < n; i++) {
		char *hp = azl_xasprintf("%s/%s", hdir, names[i]);
		char *mp = azl_xasprintf("%s/%s", strcmp(mdir, "/") ? mdir : "",
					 names[i]);
		r = cap_entry(c, hp, mp);
		free(hp);
		free(mp);
	}
	azl_strv_free(names, n);
	return r;
}

/* ---- copy mode: the whole tree against the model ---- */

static bool touched(const struct azl_staging *st, const struct stat *sb)
{
	/* ">=": ctime is coarse, a tie just costs a hash */
	return sb->st_ctim.tv_sec > st->stamp_sec ||
	       (sb->st_ctim.tv_sec == st->stamp_sec &&
		sb->st_ctim.tv_nsec >= st->stamp_nsec);
}

static bool has_name(char **names, size_t n, const char *name)
{
	return n && bsearch(&name, names, n, sizeof(*names), name_cmp);
}

static int snap_cmp(const void *key, const void *elt)
{
	return azl_path_cmp(key, *(char *const *)elt);
}

/* Model children of mdir that are gone from disk were deleted.  Looked up
 * in the model as materialised (c->snap, model order): the model itself
 * changes during the walk and re-sorting it per directory would be slow. */
static void drop_missing(struct cap *c, const char *mdir, char **names,
			 size_t n)
{
	size_t len = strlen(mdir);
	char **at = bsearch(mdir, c->snap, c->nsnap, sizeof(*c->snap), snap_cmp);

	if (!at)
		return;
	if (len == 1)
		len = 0; /* "/": children are "/name" */
	for (size_t i = (size_t)(at - c->snap) + 1; i < c->nsnap; i++) {
		const char *p = c->snap[i], *name = p + len + 1;
		if (strncmp(p, mdir, len) || p[len] != '/')
			break;
		if (!strchr(name, '/') && !has_name(names, n, name))
			(void)azl_fs_remove(c->fs, p); /* -ENOENT: went with its parent */
	}
}

/* Paths of the materialised (non-ghost) nodes, model order. */
static void take_snapshot(struct cap *c)
{
	struct azl_node *const *nodes = azl_fs_sorted(c->fs);
	size_t count = azl_fs_count(c->fs);

	c->snap = azl_xcalloc(count ? count : 1, sizeof(*c->snap));
	for (size_t i = 0; i < count; i++)
		if (!(nodes[i]->flags & AZL_NODE_GHOST))
			c->snap[c->nsnap++] = azl_xstrdup(nodes[i]->path);
}

static int copy_dir(struct cap *c, const char *hdir, const char *mdir);

static int copy_entry(struct cap *c, const char *hp, const char *mpath)
{
	struct stat sb;
	bool changed;

	if (lstat(hp, &sb) < 0)
		return azl_errf(c->err, -errno, "%s: %s", hp, strerror(errno));
	changed = touched(c->st, &sb) || !azl_fs_get(c->fs, mpath);
	if (S_ISDIR(sb.st_mode)) {
		int r = changed ? cap_plain(c, mpath, &sb, AZL_FT_DIR) : 0;
		return r < 0 ? r : copy_dir(c, hp, mpath);
	}
	if (!changed)
		return 0;
	if (S_ISREG(sb.st_mode))
		return cap_reg(c, hp, mpath, &sb);
	if (S_ISLNK(sb.st_mode))
		return cap_symlink(c, hp, mpath, &sb);
	if (S_ISFIFO(sb.st_mode))
		return cap_plain(c, mpath, &sb, AZL_FT_FIFO);
	return 0;
}

/* The sandbox's mount points, made only for it. */
static bool extra_mount_point(struct cap *c, const char *mpath)
{
	return (!strcmp(mpath, "/dev") || !strcmp(mpath, "/proc") ||
		!strcmp(mpath, "/tmp")) && !azl_fs_get(c->fs, mpath);
}

static int copy_dir(struct cap *c, const char *hdir, const char *mdir)
{
	char **names;
	size_t n;
	int fd = open(hdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int r;

	if (fd < 0)
		return azl_errf(c->err, -errno, "%s: %s", hdir, strerror(errno));
	if ((r = list_dir(fd, &names, &n)) < 0)
		return azl_errf(c->err, r, "%s: %s", hdir, strerror(-r));
	drop_missing(c, mdir, names, n);
	for (size_t i = 0; r == 0 && i < n; i++) {
		char *hp = azl_xasprintf("%s/%s", hdir, names[i]);
		char *mp = azl_xasprintf("%s/%s", strcmp(mdir, "/") ? mdir : "",
					 names[i]);
		if (!extra_mount_point(c, mp))
			r = copy_entry(c, hp, mp);
		free(hp);
		free(mp);
	}
	azl_strv_free(names, n);
	return r;
}

static uint32_t max_group(struct azl_fs *fs)
{
	struct azl_node *const *nodes = azl_fs_sorted(fs);
	uint32_t g = 0;
	for (size_t i = 0, n = azl_fs_count(fs); i < n; i++)
		if (nodes[i]->hardlink_group > g)
			g = nodes[i]->hardlink_group;
	return g;
}

int azl_staging_capture(struct azl_staging *st, struct azl_fs *fs,
			const char *objects_dir, int64_t sde,
			struct azl_err *err)
{
	struct cap c = { .st = st, .fs = fs, .sde = sde, .err = err };
	int r;

	if ((r = azl_mkdir_p(objects_dir, err)) < 0)
		return r;
	c.objects = absolute(objects_dir);
	c.next_group = max_group(fs);
	if (!st->overlay)
		take_snapshot(&c);
	r = st->overlay ? cap_dir(&c, st->upper, "/") : copy_dir(&c, st->lower, "/");
	azl_strv_free(c.snap, c.nsnap);
	for (size_t i = 0; i < c.nusers; i++)
		free(c.users[i].name);
	for (size_t i = 0; i < c.ngroups; i++)
		free(c.groups[i].name);
	free(c.users);
	free(c.groups);
	free(c.links);
	free(c.objects);
	if (r < 0)
		azl_err_prefix(err, "capturing scriptlet changes from %s", st->upper);
	return r;
}
