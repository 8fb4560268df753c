/* Customization of the assembled model (see customize.h).  Written by hand
 * rather than by running useradd/systemctl in the sandbox: those tools may
 * not be in the image, and their outputs carry host time and random salts. */
#include "compose/customize.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/hash.h"

#define SMALL_MAX (16u << 20)

static const char *const unit_dirs[] = {
	"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system",
};

static int add_to_buf(void *ctx, const void *data, size_t len)
{
	struct azl_buf *b = ctx;
	if (b->len + len > SMALL_MAX)
		return -EFBIG;
	azl_buf_add(b, data, len);
	return 0;
}

/* The node a path names after following symlinks, or NULL. */
static struct azl_node *get_followed(const struct azl_fs *fs, const char *path)
{
	struct azl_node *n = azl_fs_get(fs, path);
	char *real = NULL;

	if (!n || n->type != AZL_FT_SYMLINK)
		return n;
	if (azl_fs_resolve(fs, path, true, &real, NULL) < 0)
		return NULL;
	n = azl_fs_get(fs, real);
	free(real);
	return n;
}

int azl_fs_read_small(const struct azl_fs *fs, const char *path,
		      struct azl_buf *out, struct azl_err *err)
{
	struct azl_node *n = get_followed(fs, path);

	azl_buf_reset(out);
	azl_buf_add(out, "", 0);
	if (!n)
		return azl_errf(err, -ENOENT, "%s: not in the image", path);
	if (n->type != AZL_FT_REG)
		return azl_errf(err, -EINVAL, "%s: not a regular file in the image", path);
	return azl_node_read(n, add_to_buf, out, err);
}

/* Field `field` (0-based, ':'-separated) of the line in db whose first
 * field is name; NULL if absent.  Caller frees. */
static char *db_field(const char *db, const char *name, int field)
{
	size_t nl = strlen(name);
	for (const char *l = db; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, name, nl) || l[nl] != ':')
			continue;
		const char *f = l;
		for (int i = 0; i < field && f; i++) {
			f = strpbrk(f, ":\n");
			f = (f && *f == ':') ? f + 1 : NULL;
		}
		if (!f)
			return NULL;
		return strndup(f, strcspn(f, ":\n"));
	}
	return NULL;
}

int azl_fs_lookup_id(const struct azl_fs *fs, const char *db_path,
		     const char *name, uint32_t *id)
{
	struct azl_buf db = AZL_BUF_INIT;
	char *v = NULL, *end = NULL;
	int r = -ENOENT;

	if (azl_fs_read_small(fs, db_path, &db, NULL) < 0)
		goto out;
	v = db_field(azl_buf_str(&db), name, 2);
	if (!v)
		goto out;
	unsigned long x = strtoul(v, &end, 10);
	if (*v && !*end && x <= UINT32_MAX) {
		*id = (uint32_t)x;
		r = 0;
	}
out:
	free(v);
	azl_buf_release(&db);
	return r;
}

/* Name or decimal id to an id; errors name the manifest key. */
static int owner_id(const struct azl_fs *fs, const char *db_path,
		    const char *name, const char *key, uint32_t *id,
		    struct azl_err *err)
{
	char *end = NULL;

	if (!name || !*name) {
		*id = 0;
		return 0;
	}
	unsigned long x = strtoul(name, &end, 10);
	if (!*end && x <= UINT32_MAX) {
		*id = (uint32_t)x;
		return 0;
	}
	if (azl_fs_lookup_id(fs, db_path, name, id) == 0)
		return 0;
	return azl_err_input(err, "%s: '%s' is not in the image's %s", key,
			     name, db_path);
}

static void node_init(struct azl_node *n, const char *path, enum azl_ftype type,
		      uint32_t mode, int64_t sde)
{
	memset(n, 0, sizeof(*n));
	n->path = azl_xstrdup(path);
	n->type = type;
	n->mode = mode & 07777;
	n->mtime = sde;
	n->user = azl_xstrdup("root");
	n->group = azl_xstrdup("root");
}

static void node_owner(struct azl_node *n, const char *user, uint32_t uid,
		       const char *group, uint32_t gid)
{
	free(n->user);
	free(n->group);
	n->user = azl_xstrdup(user ? user : "root");
	n->group = azl_xstrdup(group ? group : "root");
	n->uid = uid;
	n->gid = gid;
}

/* azl_fs_put, releasing the node when the model refuses it. */
static int put_node(struct azl_fs *fs, struct azl_node *n, bool add,
		    struct azl_err *err)
{
	int r = add ? azl_fs_add(fs, n, err) : azl_fs_put(fs, n, err);
	if (r < 0)
		azl_node_release(n);
	return r;
}

/* mkdir -p inside the model, following symlinks like the kernel would.
 * *real receives the directory's real path (caller frees). */
static int ensure_dir(struct azl_fs *fs, const char *path, int64_t sde,
		      char **real, struct azl_err *err)
{
	struct azl_buf cur = AZL_BUF_INIT;
	char *copy = azl_xstrdup(path), *save = NULL;
	int r = 0;

	azl_buf_adds(&cur, "");
	for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		size_t mark = cur.len;
		azl_buf_addf(&cur, "/%s", c);
		struct azl_node *n = azl_fs_get(fs, azl_buf_str(&cur));
		if (!n) {
			struct azl_node d;
			node_init(&d, azl_buf_str(&cur), AZL_FT_DIR, 0755, sde);
			r = put_node(fs, &d, true, err);
			if (r < 0)
				goto out;
		} else if (n->type == AZL_FT_SYMLINK) {
			char *res = NULL;
			r = azl_fs_resolve(fs, azl_buf_str(&cur), true, &res, err);
			if (r < 0)
				goto out;
			struct azl_node *t = azl_fs_get(fs, res);
			if (!t || t->type != AZL_FT_DIR) {
				r = azl_errf(err, -ENOTDIR, "%s: %s is a symlink to %s, which is not a directory in the image",
					     path, azl_buf_str(&cur), res);
				free(res);
				goto out;
			}
			cur.len = mark;
			azl_buf_reset(&cur);
			azl_buf_adds(&cur, strcmp(res, "/") ? res : "");
			free(res);
		} else if (n->type != AZL_FT_DIR) {
			r = azl_errf(err, -ENOTDIR, "%s: %s exists and is not a directory",
				     path, azl_buf_str(&cur));
			goto out;
		}
	}
	*real = cur.len ? azl_xstrdup(azl_buf_str(&cur)) : azl_xstrdup("/");
out:
	free(copy);
	azl_buf_release(&cur);
	return r;
}

/* Real path for creating `path`: its parent resolved (and created). */
static int place(struct azl_fs *fs, const char *path, int64_t sde, char **real,
		 struct azl_err *err)
{
	const char *slash = strrchr(path, '/');
	char *parent = NULL, *rparent = NULL;
	int r;

	if (path[0] != '/' || !slash || !slash[1] || strstr(path, "/../") ||
	    !strcmp(slash, "/..") || !strcmp(slash, "/."))
		return azl_err_input(err, "'%s' is not an absolute, normalised path", path);
	parent = slash == path ? azl_xstrdup("/") : strndup(path, (size_t)(slash - path));
	r = ensure_dir(fs, parent, sde, &rparent, err);
	if (r == 0)
		*real = azl_xasprintf("%s%s", strcmp(rparent, "/") ? rparent : "", slash);
	free(parent);
	free(rparent);
	return r;
}

static int put_data(struct azl_fs *fs, const char *path, const void *data,
		    size_t len, uint32_t mode, int64_t sde, struct azl_err *err)
{
	struct azl_node n;
	char *real = NULL;
	int r = place(fs, path, sde, &real, err);

	if (r < 0)
		return r;
	node_init(&n, real, AZL_FT_REG, mode, sde);
	n.size = len;
	n.data = azl_xmalloc(len);
	memcpy(n.data, data, len);
	azl_sha256_hex(data, len, n.sha256);
	r = put_node(fs, &n, false, err);
	free(real);
	return r;
}

/* Replace a small file keeping its owner and mode when it exists. */
static int rewrite(struct azl_fs *fs, const char *path, const struct azl_buf *b,
		   uint32_t mode, int64_t sde, struct azl_err *err)
{
	struct azl_node *old = get_followed(fs, path);
	char *user = NULL, *group = NULL;
	uint32_t uid = 0, gid = 0;
	char *real = NULL;
	int r;

	if (old) {
		mode = old->mode;
		uid = old->uid;
		gid = old->gid;
		user = azl_xstrdup(old->user);
		group = azl_xstrdup(old->group);
		real = azl_xstrdup(old->path);
	}
	r = put_data(fs, real ? real : path, b->data ? b->data : "", b->len, mode, sde, err);
	if (r == 0 && old) {
		struct azl_node *n = azl_fs_get(fs, real);
		node_owner(n, user, uid, group, gid);
	}
	free(user);
	free(group);
	free(real);
	return r;
}

static int read_or_empty(struct azl_fs *fs, const char *path, struct azl_buf *b)
{
	azl_buf_reset(b);
	azl_buf_add(b, "", 0);
	if (!get_followed(fs, path))
		return 0;
	return azl_fs_read_small(fs, path, b, NULL);
}

static void ensure_newline(struct azl_buf *b)
{
	if (b->len && b->data[b->len - 1] != '\n')
		azl_buf_addc(b, '\n');
}

/* Lowest free id in [lo, hi] (ascending) or (descending when down). */
static int64_t free_id(struct azl_fs *fs, const char *db_path, int64_t lo,
		       int64_t hi, bool down)
{
	struct azl_buf db = AZL_BUF_INIT;
	int64_t found = -1;

	read_or_empty(fs, db_path, &db);
	for (int64_t i = down ? hi : lo; down ? i >= lo : i <= hi; i += down ? -1 : 1) {
		char needle[32];
		bool used = false;
		snprintf(needle, sizeof(needle), ":%lld:", (long long)i);
		for (const char *l = azl_buf_str(&db); *l; ) {
			const char *e = strchr(l, '\n');
			size_t ll = e ? (size_t)(e - l) : strlen(l);
			const char *c1 = memchr(l, ':', ll);
			const char *c2 = c1 ? memchr(c1 + 1, ':', ll - (size_t)(c1 + 1 - l)) : NULL;
			if (c2 && !strncmp(c2, needle, strlen(needle)))
				used = true;
			l = e ? e + 1 : l + ll;
		}
		if (!used) {
			found = i;
			break;
		}
	}
	azl_buf_release(&db);
	return found;
}

static bool db_has(struct azl_fs *fs, const char *db_path, const char *name)
{
	struct azl_buf db = AZL_BUF_INIT;
	read_or_empty(fs, db_path, &db);
	char *v = db_field(azl_buf_str(&db), name, 0);
	bool found = v != NULL;
	azl_buf_release(&db);
	free(v);
	return found;
}

static int append_line(struct azl_fs *fs, const char *path, const char *line,
		       uint32_t mode, int64_t sde, struct azl_err *err)
{
	struct azl_buf b = AZL_BUF_INIT;
	int r = read_or_empty(fs, path, &b);
	if (r == 0) {
		ensure_newline(&b);
		azl_buf_addf(&b, "%s\n", line);
		r = rewrite(fs, path, &b, mode, sde, err);
	}
	azl_buf_release(&b);
	return r;
}

/* Add `user` to the member list (4th field) of `group` in db_path. */
static int add_member(struct azl_fs *fs, const char *db_path, const char *group,
		      const char *user, int64_t sde, struct azl_err *err)
{
	struct azl_buf in = AZL_BUF_INIT, out = AZL_BUF_INIT;
	size_t gl = strlen(group);
	int r = read_or_empty(fs, db_path, &in);

	for (const char *l = azl_buf_str(&in); r == 0 && *l; ) {
		const char *e = strchr(l, '\n');
		size_t ll = e ? (size_t)(e - l) : strlen(l);
		azl_buf_add(&out, l, ll);
		if (!strncmp(l, group, gl) && l[gl] == ':') {
			const char *last = l + ll;
			while (last > l && last[-1] != ':')
				last--;
			azl_buf_adds(&out, last == l + ll ? "" : ",");
			azl_buf_adds(&out, user);
		}
		azl_buf_addc(&out, '\n');
		l = e ? e + 1 : l + ll;
	}
	if (r == 0)
		r = rewrite(fs, db_path, &out, 0644, sde, err);
	azl_buf_release(&in);
	azl_buf_release(&out);
	return r;
}

static int apply_group(struct azl_fs *fs, const struct azl_cust_group *g,
		       size_t i, int64_t sde, struct azl_err *err)
{
	char line[1024];
	int64_t gid = g->gid;
	int r;

	if (db_has(fs, "/etc/group", g->name))
		return azl_err_input(err, "groups[%zu].name: group '%s' already exists in the image's /etc/group",
				     i, g->name);
	if (gid < 0)
		gid = g->system ? free_id(fs, "/etc/group", 1, 999, true)
				: free_id(fs, "/etc/group", 1000, 59999, false);
	if (gid < 0)
		return azl_errf(err, -ENOSPC, "groups[%zu]: no free gid for '%s'", i, g->name);
	struct azl_buf members = AZL_BUF_INIT;
	for (size_t m = 0; m < g->nmembers; m++)
		azl_buf_addf(&members, "%s%s", m ? "," : "", g->members[m]);
	snprintf(line, sizeof(line), "%s:x:%lld:%s", g->name, (long long)gid, azl_buf_str(&members));
	r = append_line(fs, "/etc/group", line, 0644, sde, err);
	snprintf(line, sizeof(line), "%s:!::%s", g->name, azl_buf_str(&members));
	if (r == 0)
		r = append_line(fs, "/etc/gshadow", line, 0, sde, err);
	azl_buf_release(&members);
	return r;
}

static int copy_skel(struct azl_fs *fs, const char *home, uint32_t uid,
		     uint32_t gid, const char *user, const char *group,
		     int64_t sde, struct azl_err *err)
{
	size_t count = azl_fs_count(fs);
	struct azl_node *const *all = azl_fs_sorted(fs);
	struct azl_node *copies = azl_xcalloc(count, sizeof(*copies));
	size_t nc = 0;
	int r = 0;

	/* Collect first: adding invalidates the sorted array. */
	for (size_t i = 0; i < count; i++) {
		const struct azl_node *s = all[i];
		if (strncmp(s->path, "/etc/skel/", 10) || s->type == AZL_FT_CHR ||
		    s->type == AZL_FT_BLK)
			continue;
		struct azl_node *c = &copies[nc++];
		*c = *s;
		c->path = azl_xasprintf("%s/%s", home, s->path + 10);
		c->user = c->group = NULL;
		c->link_target = azl_xstrdup(s->link_target);
		c->data_path = azl_xstrdup(s->data_path);
		c->owner_pkg = NULL;
		c->xattrs = NULL;
		c->nxattrs = 0;
		c->hardlink_group = 0;
		c->flags = 0;
		c->mtime = sde;
		if (s->data) {
			c->data = azl_xmalloc(s->size);
			memcpy(c->data, s->data, s->size);
		}
		node_owner(c, user, uid, group, gid);
	}
	for (size_t i = 0; i < nc; i++) {
		if (r == 0)
			r = put_node(fs, &copies[i], false, err);
		else
			azl_node_release(&copies[i]);
	}
	free(copies);
	return r;
}

static int apply_user(struct azl_fs *fs, const struct azl_cust_user *u,
		      size_t i, int64_t sde, struct azl_err *err)
{
	char line[2048], key[64];
	const char *pgroup = u->group ? u->group : u->name;
	uint32_t gid = 0;
	int64_t uid = u->uid;
	char *home = NULL;
	int r;

	if (db_has(fs, "/etc/passwd", u->name))
		return azl_err_input(err, "users[%zu].name: user '%s' already exists in the image's /etc/passwd",
				     i, u->name);
	if (uid < 0)
		uid = u->system ? free_id(fs, "/etc/passwd", 1, 999, true)
				: free_id(fs, "/etc/passwd", 1000, 59999, false);
	if (uid < 0)
		return azl_errf(err, -ENOSPC, "users[%zu]: no free uid for '%s'", i, u->name);
	if (!u->group && !db_has(fs, "/etc/group", u->name)) {
		struct azl_cust_group g = { .name = u->name, .gid = -1, .system = u->system };
		/* Prefer gid == uid, as useradd does. */
		if (free_id(fs, "/etc/group", uid, uid, false) == uid)
			g.gid = uid;
		r = apply_group(fs, &g, i, sde, err);
		if (r < 0)
			return azl_err_prefix(err, "users[%zu]", i);
	}
	snprintf(key, sizeof(key), "users[%zu].group", i);
	r = owner_id(fs, "/etc/group", pgroup, key, &gid, err);
	if (r < 0)
		return r;
	for (size_t g = 0; g < u->ngroups; g++) {
		uint32_t sgid;
		snprintf(key, sizeof(key), "users[%zu].groups[%zu]", i, g);
		r = owner_id(fs, "/etc/group", u->groups[g], key, &sgid, err);
		if (r == 0)
			r = add_member(fs, "/etc/group", u->groups[g], u->name, sde, err);
		if (r == 0 && get_followed(fs, "/etc/gshadow"))
			r = add_member(fs, "/etc/gshadow", u->groups[g], u->name, sde, err);
		if (r < 0)
			return r;
	}
	home = u->home ? azl_xstrdup(u->home)
		       : uid == 0 ? azl_xstrdup("/root") : azl_xasprintf("/home/%s", u->name);
	const char *shell = u->shell ? u->shell
			    : get_followed(fs, "/bin/bash") ? "/bin/bash" : "/bin/sh";
	snprintf(line, sizeof(line), "%s:x:%lld:%u:%s:%s:%s", u->name, (long long)uid,
		 gid, u->gecos ? u->gecos : "", home, shell);
	r = append_line(fs, "/etc/passwd", line, 0644, sde, err);
	snprintf(line, sizeof(line), "%s:%s:%lld:0:99999:7:::", u->name,
		 u->password ? u->password : "!", (long long)(sde / 86400));
	if (r == 0)
		r = append_line(fs, "/etc/shadow", line, 0, sde, err);
	bool want_home = u->create_home_set ? u->create_home
			 : u->create_home || (!u->system && !u->home);
	if (r == 0 && want_home && !azl_fs_get(fs, home)) {
		char *real = NULL;
		r = ensure_dir(fs, home, sde, &real, err);
		if (r == 0) {
			struct azl_node *n = azl_fs_get(fs, real);
			n->mode = 0700;
			node_owner(n, u->name, (uint32_t)uid, pgroup, gid);
			r = copy_skel(fs, real, (uint32_t)uid, gid, u->name, pgroup, sde, err);
		}
		free(real);
	}
	free(home);
	return r;
}

static int resolve_owner(struct azl_fs *fs, const char *user, const char *group,
			 const char *what, size_t i, uint32_t *uid, uint32_t *gid,
			 struct azl_err *err)
{
	char key[64];
	snprintf(key, sizeof(key), "%s[%zu].owner", what, i);
	int r = owner_id(fs, "/etc/passwd", user, key, uid, err);
	snprintf(key, sizeof(key), "%s[%zu].group", what, i);
	if (r == 0)
		r = owner_id(fs, "/etc/group", group, key, gid, err);
	return r;
}

static int apply_dir(struct azl_fs *fs, const struct azl_cust_dir *d, size_t i,
		     int64_t sde, struct azl_err *err)
{
	uint32_t uid, gid;
	char *real = NULL;
	int r = resolve_owner(fs, d->owner, d->group, "directories", i, &uid, &gid, err);

	if (r == 0)
		r = ensure_dir(fs, d->path, sde, &real, err);
	if (r < 0)
		return azl_err_prefix(err, "directories[%zu] '%s'", i, d->path);
	struct azl_node *n = azl_fs_get(fs, real);
	n->mode = d->mode_set || d->mode ? d->mode : 0755;
	n->mtime = sde;
	node_owner(n, d->owner, uid, d->group, gid);
	free(real);
	return 0;
}

static int apply_file(struct azl_fs *fs, const struct azl_cust_file *f, size_t i,
		      int64_t sde, struct azl_err *err)
{
	uint32_t uid, gid, mode = f->mode_set || f->mode ? f->mode : 0644;
	char *real = NULL;
	struct stat st;
	int r = resolve_owner(fs, f->owner, f->group, "files", i, &uid, &gid, err);

	if (r < 0)
		return r;
	if (f->content) {
		r = put_data(fs, f->path, f->content, f->content_len, mode, sde, err);
		if (r < 0)
			return azl_err_prefix(err, "files[%zu] '%s'", i, f->path);
		struct azl_node *n = get_followed(fs, f->path);
		node_owner(n, f->owner, uid, f->group, gid);
		return 0;
	}
	if (stat(f->source, &st) < 0)
		return azl_err_input(err, "files[%zu].source: %s: %s", i, f->source,
				     strerror(errno));
	if (!S_ISREG(st.st_mode))
		return azl_err_input(err, "files[%zu].source: %s: not a regular file",
				     i, f->source);
	r = place(fs, f->path, sde, &real, err);
	if (r < 0)
		return azl_err_prefix(err, "files[%zu] '%s'", i, f->path);
	struct azl_node n;
	node_init(&n, real, AZL_FT_REG, mode, sde);
	node_owner(&n, f->owner, uid, f->group, gid);
	n.size = (uint64_t)st.st_size;
	n.data_path = azl_xstrdup(f->source);
	r = azl_sha256_file(f->source, n.sha256, NULL, err);
	if (r == 0)
		r = put_node(fs, &n, false, err);
	else
		azl_node_release(&n);
	free(real);
	return r;
}

static int put_symlink(struct azl_fs *fs, const char *path, const char *target,
		       int64_t sde, struct azl_err *err)
{
	struct azl_node n;
	char *real = NULL;
	int r = place(fs, path, sde, &real, err);

	if (r < 0)
		return r;
	node_init(&n, real, AZL_FT_SYMLINK, 0777, sde);
	n.link_target = azl_xstrdup(target);
	n.size = strlen(target);
	r = put_node(fs, &n, false, err);
	free(real);
	return r;
}

/* --- systemd units ------------------------------------------------------ */

struct install_sec {
	struct azl_buf wanted_by, required_by, alias, also; /* space-separated */
	char *default_instance;
};

static void parse_install(const char *unit, struct install_sec *s)
{
	bool in = false;
	for (const char *l = unit; *l; ) {
		const char *e = strchr(l, '\n');
		size_t ll = e ? (size_t)(e - l) : strlen(l);
		char *line = strndup(l, ll), *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '[')
			in = !strncmp(p, "[Install]", 9);
		else if (in && *p && *p != '#' && *p != ';' && strchr(p, '=')) {
			char *eq = strchr(p, '='), *v = eq + 1;
			*eq = '\0';
			for (char *t = eq - 1; t >= p && (*t == ' ' || *t == '\t'); t--)
				*t = '\0';
			while (*v == ' ' || *v == '\t')
				v++;
			struct azl_buf *dst = !strcmp(p, "WantedBy") ? &s->wanted_by
					    : !strcmp(p, "RequiredBy") ? &s->required_by
					    : !strcmp(p, "Alias") ? &s->alias
					    : !strcmp(p, "Also") ? &s->also : NULL;
			if (dst) {
				azl_buf_adds(dst, " ");
				azl_buf_adds(dst, v);
			} else if (!strcmp(p, "DefaultInstance")) {
				free(s->default_instance);
				s->default_instance = azl_xstrdup(v);
			}
		}
		free(line);
		l = e ? e + 1 : l + ll;
	}
}

static void install_sec_release(struct install_sec *s)
{
	azl_buf_release(&s->wanted_by);
	azl_buf_release(&s->required_by);
	azl_buf_release(&s->alias);
	azl_buf_release(&s->also);
	free(s->default_instance);
}

/* Unit file path for name (an instance falls back to its template). */
static char *find_unit(struct azl_fs *fs, const char *name)
{
	char *tmpl = NULL;
	const char *at = strchr(name, '@'), *dot = strrchr(name, '.');

	if (at && dot && dot > at + 1)
		tmpl = azl_xasprintf("%.*s%s", (int)(at - name + 1), name, dot);
	for (int pass = 0; pass < 2; pass++) {
		const char *want = pass ? tmpl : name;
		if (!want)
			break;
		for (size_t d = 0; d < sizeof(unit_dirs) / sizeof(unit_dirs[0]); d++) {
			char *p = azl_xasprintf("%s/%s", unit_dirs[d], want);
			char *real = NULL;
			if (get_followed(fs, p) &&
			    azl_fs_resolve(fs, p, false, &real, NULL) == 0) {
				free(p);
				free(tmpl);
				return real;
			}
			free(real);
			free(p);
		}
	}
	free(tmpl);
	return NULL;
}

static int link_into(struct azl_fs *fs, const char *list, const char *suffix,
		     const char *link_name, const char *unit_path, int64_t sde,
		     struct azl_err *err)
{
	char *copy = azl_xstrdup(list), *save = NULL;
	int r = 0;

	for (char *t = strtok_r(copy, " \t", &save); t && r == 0; t = strtok_r(NULL, " \t", &save)) {
		char *p = azl_xasprintf("/etc/systemd/system/%s%s/%s", t, suffix, link_name);
		r = put_symlink(fs, p, unit_path, sde, err);
		free(p);
	}
	free(copy);
	return r;
}

static int enable_unit(struct azl_fs *fs, const char *name, int depth, int64_t sde,
		       struct azl_buf *warnings, struct azl_err *err)
{
	struct install_sec s = { AZL_BUF_INIT, AZL_BUF_INIT, AZL_BUF_INIT, AZL_BUF_INIT, NULL };
	struct azl_buf text = AZL_BUF_INIT;
	char *path = find_unit(fs, name), *link = NULL;
	int r = 0;

	if (depth > 8)
		goto out;
	if (!path) {
		r = azl_err_input(err, "services.enable: unit '%s' is not in the image (looked in /etc/systemd/system, /usr/lib/systemd/system)", name);
		goto out;
	}
	r = azl_fs_read_small(fs, path, &text, err);
	if (r < 0)
		goto out;
	parse_install(azl_buf_str(&text), &s);
	const char *base = strrchr(path, '/') + 1;
	/* A template enabled by its bare name uses DefaultInstance. */
	if (strstr(base, "@.") && !strcmp(name, base)) {
		if (!s.default_instance) {
			azl_buf_addf(warnings, "services.enable: template %s has no DefaultInstance; nothing enabled\n", name);
			goto out;
		}
		const char *dot = strrchr(base, '.');
		link = azl_xasprintf("%.*s%s%s", (int)(dot - base), base, s.default_instance, dot);
	} else {
		link = azl_xstrdup(name);
	}
	if (!s.wanted_by.len && !s.required_by.len && !s.alias.len && !s.also.len)
		azl_buf_addf(warnings, "services.enable: %s has no [Install] section; nothing to enable\n", name);
	r = link_into(fs, azl_buf_str(&s.wanted_by), ".wants", link, path, sde, err);
	if (r == 0)
		r = link_into(fs, azl_buf_str(&s.required_by), ".requires", link, path, sde, err);
	char *alias = azl_xstrdup(azl_buf_str(&s.alias)), *save = NULL;
	for (char *a = strtok_r(alias, " \t", &save); a && r == 0; a = strtok_r(NULL, " \t", &save)) {
		char *p = azl_xasprintf("/etc/systemd/system/%s", a);
		r = put_symlink(fs, p, path, sde, err);
		free(p);
	}
	free(alias);
	char *also = azl_xstrdup(azl_buf_str(&s.also));
	save = NULL;
	for (char *a = strtok_r(also, " \t", &save); a && r == 0; a = strtok_r(NULL, " \t", &save))
		r = enable_unit(fs, a, depth + 1, sde, warnings, err);
	free(also);
out:
	install_sec_release(&s);
	azl_buf_release(&text);
	free(path);
	free(link);
	return r;
}

static int disable_unit(struct azl_fs *fs, const char *name)
{
	size_t count = azl_fs_count(fs), nrm = 0;
	struct azl_node *const *all = azl_fs_sorted(fs);
	char **rm = azl_xcalloc(count, sizeof(*rm));
	const char *prefix = "/etc/systemd/system/";
	size_t nl = strlen(name);

	for (size_t i = 0; i < count; i++) {
		const struct azl_node *n = all[i];
		if (n->type != AZL_FT_SYMLINK || strncmp(n->path, prefix, strlen(prefix)))
			continue;
		const char *base = strrchr(n->path, '/') + 1;
		const char *tbase = strrchr(n->link_target, '/');
		tbase = tbase ? tbase + 1 : n->link_target;
		bool in_deps = strchr(n->path + strlen(prefix), '/') != NULL;
		/* Dependency links carry the unit's name; aliases point at it. */
		if ((in_deps && !strcmp(base, name)) ||
		    (!in_deps && !strcmp(tbase, name) && strcmp(base, name)) ||
		    (in_deps && !strncmp(tbase, name, nl) && !tbase[nl]))
			rm[nrm++] = azl_xstrdup(n->path);
	}
	for (size_t i = 0; i < nrm; i++) {
		azl_fs_remove(fs, rm[i]);
		free(rm[i]);
	}
	free(rm);
	return 0;
}

/* --- os-release --------------------------------------------------------- */

static void quote_value(struct azl_buf *b, const char *v)
{
	azl_buf_addc(b, '"');
	for (; *v; v++) {
		if (strchr("\\\"$`", *v))
			azl_buf_addc(b, '\\');
		azl_buf_addc(b, *v);
	}
	azl_buf_addc(b, '"');
}

static int apply_os_release(struct azl_fs *fs, const struct azl_customize *c,
			    int64_t sde, struct azl_err *err)
{
	const char *path = get_followed(fs, "/etc/os-release") ? "/etc/os-release"
			 : get_followed(fs, "/usr/lib/os-release") ? "/usr/lib/os-release"
			 : "/etc/os-release";
	struct azl_buf in = AZL_BUF_INIT, out = AZL_BUF_INIT;
	bool *done = azl_xcalloc(c->nos_release, sizeof(bool));
	int r = read_or_empty(fs, path, &in);

	for (const char *l = azl_buf_str(&in); r == 0 && *l; ) {
		const char *e = strchr(l, '\n');
		size_t ll = e ? (size_t)(e - l) : strlen(l);
		size_t k;
		for (k = 0; k < c->nos_release; k++) {
			size_t kl = strlen(c->os_release[k].key);
			if (ll > kl && !strncmp(l, c->os_release[k].key, kl) && l[kl] == '=')
				break;
		}
		if (k < c->nos_release) {
			azl_buf_addf(&out, "%s=", c->os_release[k].key);
			quote_value(&out, c->os_release[k].value);
			done[k] = true;
		} else {
			azl_buf_add(&out, l, ll);
		}
		azl_buf_addc(&out, '\n');
		l = e ? e + 1 : l + ll;
	}
	for (size_t k = 0; k < c->nos_release; k++) {
		if (done[k])
			continue;
		azl_buf_addf(&out, "%s=", c->os_release[k].key);
		quote_value(&out, c->os_release[k].value);
		azl_buf_addc(&out, '\n');
	}
	if (r == 0)
		r = rewrite(fs, path, &out, 0644, sde, err);
	free(done);
	azl_buf_release(&in);
	azl_buf_release(&out);
	return r;
}

int azl_customize_apply(struct azl_fs *fs, const struct azl_customize *c,
			int64_t sde, struct azl_buf *warnings,
			struct azl_err *err)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < c->ngroups; i++)
		r = apply_group(fs, &c->groups[i], i, sde, err);
	for (size_t i = 0; r == 0 && i < c->nusers; i++)
		r = apply_user(fs, &c->users[i], i, sde, err);
	for (size_t i = 0; r == 0 && i < c->ndirs; i++)
		r = apply_dir(fs, &c->dirs[i], i, sde, err);
	for (size_t i = 0; r == 0 && i < c->nfiles; i++)
		r = apply_file(fs, &c->files[i], i, sde, err);
	for (size_t i = 0; r == 0 && i < c->nsymlinks; i++) {
		r = put_symlink(fs, c->symlinks[i].path, c->symlinks[i].target, sde, err);
		if (r < 0)
			azl_err_prefix(err, "symlinks[%zu]", i);
	}
	for (size_t i = 0; r == 0 && i < c->nenable; i++)
		r = enable_unit(fs, c->enable[i], 0, sde, warnings, err);
	for (size_t i = 0; r == 0 && i < c->ndisable; i++)
		r = disable_unit(fs, c->disable[i]);
	if (r == 0 && c->hostname) {
		struct azl_buf b = AZL_BUF_INIT;
		azl_buf_addf(&b, "%s\n", c->hostname);
		r = rewrite(fs, "/etc/hostname", &b, 0644, sde, err);
		azl_buf_release(&b);
	}
	if (r == 0 && c->nos_release)
		r = apply_os_release(fs, c, sde, err);
	/* Empty machine-id: systemd fills it on first boot, so every instance
	 * of the image gets its own. */
	if (r == 0)
		r = put_data(fs, "/etc/machine-id", "", 0, 0444, sde, err);
	return r;
}

void azl_customize_release(struct azl_customize *c)
{
	for (size_t i = 0; i < c->ngroups; i++) {
		free(c->groups[i].name);
		azl_strv_free(c->groups[i].members, c->groups[i].nmembers);
	}
	for (size_t i = 0; i < c->nusers; i++) {
		struct azl_cust_user *u = &c->users[i];
		free(u->name); free(u->group); free(u->home); free(u->shell);
		free(u->password); free(u->gecos);
		azl_strv_free(u->groups, u->ngroups);
	}
	for (size_t i = 0; i < c->ndirs; i++) {
		free(c->dirs[i].path); free(c->dirs[i].owner); free(c->dirs[i].group);
	}
	for (size_t i = 0; i < c->nfiles; i++) {
		struct azl_cust_file *f = &c->files[i];
		free(f->path); free(f->content); free(f->source); free(f->owner); free(f->group);
	}
	for (size_t i = 0; i < c->nsymlinks; i++) {
		free(c->symlinks[i].path); free(c->symlinks[i].target);
	}
	for (size_t i = 0; i < c->nos_release; i++) {
		free(c->os_release[i].key); free(c->os_release[i].value);
	}
	free(c->groups); free(c->users); free(c->dirs); free(c->files);
	free(c->symlinks); free(c->os_release);
	azl_strv_free(c->enable, c->nenable);
	azl_strv_free(c->disable, c->ndisable);
	free(c->hostname);
	memset(c, 0, sizeof(*c));
}
