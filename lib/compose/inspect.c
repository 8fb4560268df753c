/* azl-compose inspect (see inspect.h): one libguestfs appliance run. */
#include "compose/inspect.h"

#include <errno.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <guestfs.h>
#include <pthread.h>
#include <stdio.h>
#include <rpm/header.h>
#include <rpm/rpmtag.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "compose/staging.h"

/* libguestfs is loaded on first use, not linked: linking it costs every
 * azl-compose run about 20 ms of start-up (20 more shared libraries,
 * libvirt and glib among them), and only disk inspection needs it. */
#define GFS_FUNCS(X) \
	X(add_drive_opts) \
	X(blockdev_getsize64) \
	X(close) \
	X(create) \
	X(download) \
	X(free_partition_list) \
	X(is_file_opts) \
	X(last_error) \
	X(launch) \
	X(list_devices) \
	X(mount_ro) \
	X(part_get_disk_guid) \
	X(part_get_gpt_guid) \
	X(part_get_gpt_type) \
	X(part_get_name) \
	X(part_get_parttype) \
	X(part_list) \
	X(set_error_handler) \
	X(shutdown) \
	X(umount_all) \
	X(vfs_label) \
	X(vfs_type) \
	X(vfs_uuid)
static struct {
#define X(n) __typeof__(guestfs_##n) *n;
	GFS_FUNCS(X)
#undef X
} gfs;
static pthread_once_t gfs_once = PTHREAD_ONCE_INIT;
static char gfs_error[256];

static void gfs_load_once(void)
{
	void *h = dlopen("libguestfs.so.0", RTLD_NOW | RTLD_LOCAL);
	const char *missing = NULL;

	if (!h) {
		snprintf(gfs_error, sizeof(gfs_error), "%s", dlerror());
		return;
	}
#define X(n) if (!missing && !(*(void **)&gfs.n = dlsym(h, "guestfs_" #n))) missing = "guestfs_" #n;
	GFS_FUNCS(X)
#undef X
	if (missing)
		snprintf(gfs_error, sizeof(gfs_error), "libguestfs.so.0 has no %s", missing);
}

static int gfs_load(const char *path, struct azl_err *err)
{
	pthread_once(&gfs_once, gfs_load_once);
	if (gfs_error[0])
		return azl_errf(err, -ENOSYS, "%s: reading a disk needs libguestfs "
				"(Debian: libguestfs0): %s", path, gfs_error);
	return 0;
}

#define RPMDB_PATH "/var/lib/rpm/rpmdb.sqlite"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int azl_inspect_rpmdb(const char *db_file, char ***pkgs, size_t *n,
		      struct azl_err *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char **v = NULL;
	size_t count = 0;
	int r = 0, rc;

	*pkgs = NULL;
	*n = 0;
	if (sqlite3_open_v2(db_file, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT blob FROM Packages ORDER BY hnum", -1, &st, NULL) != SQLITE_OK) {
		r = azl_err_input(err, "%s: not an rpm sqlite database: %s", db_file,
				  db ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *blob = sqlite3_column_blob(st, 0);
		int len = sqlite3_column_bytes(st, 0);
		/* COPY: the blob is sqlite's until the next step. */
		Header h = blob && len > 0 ? headerImport((void *)blob, (unsigned)len,
							  HEADERIMPORT_COPY) : NULL;
		if (!h) {
			r = azl_err_input(err, "%s: package record %zu is not an rpm header",
					  db_file, count + 1);
			goto out;
		}
		v = azl_xrealloc(v, (count + 1) * sizeof(*v));
		v[count++] = headerGetAsString(h, RPMTAG_NEVRA);
		headerFree(h);
	}
	if (rc != SQLITE_DONE) {
		r = azl_err_input(err, "%s: %s", db_file, sqlite3_errmsg(db));
		goto out;
	}
	qsort(v, count, sizeof(*v), cmp_str);
	*pkgs = v;
	*n = count;
	v = NULL;
out:
	for (size_t i = 0; v && i < count; i++)
		free(v[i]);
	free(v);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return r;
}

/* "vpc" when the file ends in a VHD footer (cookie "conectix"), else "raw". */
static int disk_format(const char *path, const char **fmt, struct azl_err *err)
{
	char cookie[8];
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;
	off_t end;

	if (fd < 0)
		return azl_err_input(err, "%s: %s", path, strerror(errno));
	end = lseek(fd, 0, SEEK_END);
	if (end < 512 * 34)
		r = azl_err_input(err, "%s: too small to be a disk image (%lld bytes)",
				  path, (long long)end);
	else if (pread(fd, cookie, sizeof(cookie), end - 512) != (ssize_t)sizeof(cookie))
		r = azl_errf(err, -EIO, "%s: cannot read: %s", path, strerror(errno));
	else
		*fmt = memcmp(cookie, "conectix", 8) ? "raw" : "vpc";
	close(fd);
	return r;
}

/* libguestfs' last error as ours. */
static int gfs_fail(guestfs_h *g, struct azl_err *err, const char *path,
		    const char *what)
{
	const char *m = gfs.last_error(g);
	return azl_errf(err, -EIO, "%s: %s: %s", path, what, m ? m : "failed");
}

/* A string from libguestfs, or "" when the call fails (no filesystem,
 * no label): those are answers, not errors. */
static char *or_empty(char *s)
{
	return s ? s : azl_xstrdup("");
}

static int read_parts(guestfs_h *g, const char *dev, struct azl_inspect *in,
		      const char *path, struct azl_err *err)
{
	struct guestfs_partition_list *pl = gfs.part_list(g, dev);
	bool gpt = !strcmp(in->table, "gpt");

	if (!pl)
		return gfs_fail(g, err, path, "partition table");
	in->parts = azl_xcalloc(pl->len ? pl->len : 1, sizeof(*in->parts));
	for (uint32_t i = 0; i < pl->len; i++) {
		struct azl_inspect_part *p = &in->parts[in->nparts++];
		int num = pl->val[i].part_num;
		/* The appliance names disks /dev/sdX: partitions append the number. */
		char *pdev = azl_xasprintf("%s%d", dev, num);
		p->num = num;
		p->start = pl->val[i].part_start;
		p->size = pl->val[i].part_size;
		p->type_guid = or_empty(gpt ? gfs.part_get_gpt_type(g, dev, num) : NULL);
		p->guid = or_empty(gpt ? gfs.part_get_gpt_guid(g, dev, num) : NULL);
		p->name = or_empty(gpt ? gfs.part_get_name(g, dev, num) : NULL);
		p->fstype = or_empty(gfs.vfs_type(g, pdev));
		p->fs_uuid = or_empty(*p->fstype ? gfs.vfs_uuid(g, pdev) : NULL);
		p->fs_label = or_empty(*p->fstype ? gfs.vfs_label(g, pdev) : NULL);
		free(pdev);
	}
	gfs.free_partition_list(pl);
	return 0;
}

/* The first Linux filesystem holding the rpm database: mount it read-only
 * and copy the database out to tmpdir. */
static int read_root(guestfs_h *g, const char *dev, struct azl_inspect *in,
		     const char *tmpdir, const char *path, struct azl_err *err)
{
	char *db = azl_path_join(tmpdir, "rpmdb.sqlite");
	int r = 0;

	in->root = -1;
	for (size_t i = 0; i < in->nparts && in->root < 0; i++) {
		const char *t = in->parts[i].fstype;
		if (strncmp(t, "ext", 3) && strcmp(t, "xfs") && strcmp(t, "btrfs"))
			continue;
		char *pdev = azl_xasprintf("%s%d", dev, in->parts[i].num);
		if (gfs.mount_ro(g, pdev, "/") == 0) {
			if (gfs.is_file_opts(g, RPMDB_PATH, GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS,
						 1, -1) > 0) {
				in->root = (int)i;
				if (gfs.download(g, RPMDB_PATH, db) < 0)
					r = gfs_fail(g, err, path, RPMDB_PATH);
			}
			gfs.umount_all(g);
		}
		free(pdev);
	}
	if (r == 0 && in->root >= 0)
		r = azl_inspect_rpmdb(db, &in->pkgs, &in->npkgs, err);
	if (r < 0)
		azl_err_prefix(err, "%s: partition %d", path, in->parts[in->root].num);
	free(db);
	return r;
}

static int inspect_launched(guestfs_h *g, const char *path, struct azl_inspect *in,
			    const char *tmpdir, struct azl_err *err)
{
	char **devs = gfs.list_devices(g), *table;
	int64_t size;
	int r = 0;

	if (!devs || !devs[0]) {
		r = gfs_fail(g, err, path, "no disk in the appliance");
		goto out;
	}
	size = gfs.blockdev_getsize64(g, devs[0]);
	table = gfs.part_get_parttype(g, devs[0]);
	if (size < 0 || !table) {
		r = azl_err_input(err, "%s: no partition table: %s", path,
				  gfs.last_error(g) ? gfs.last_error(g) : "unreadable");
		free(table);
		goto out;
	}
	in->disk_size = (uint64_t)size;
	in->table = table;
	in->disk_guid = or_empty(!strcmp(table, "gpt") ? gfs.part_get_disk_guid(g, devs[0]) : NULL);
	r = read_parts(g, devs[0], in, path, err);
	if (r == 0)
		r = read_root(g, devs[0], in, tmpdir, path, err);
out:
	for (size_t i = 0; devs && devs[i]; i++)
		free(devs[i]);
	free(devs);
	return r;
}

int azl_inspect_disk(const char *path, struct azl_inspect *out,
		     struct azl_err *err)
{
	const char *fmt = NULL, *tmp = getenv("TMPDIR");
	char *tmpdir = azl_xasprintf("%s/azl-inspect.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	guestfs_h *g = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	out->root = -1;
	r = disk_format(path, &fmt, err);
	if (r < 0)
		goto out;
	if (!mkdtemp(tmpdir)) {
		r = azl_errf(err, -errno, "%s: %s", tmpdir, strerror(errno));
		free(tmpdir);
		tmpdir = NULL;
		goto out;
	}
	out->format = azl_xstrdup(fmt);
	if ((r = gfs_load(path, err)) < 0)
		goto out;
	g = gfs.create();
	if (!g) {
		r = azl_errf(err, -ENOMEM, "%s: cannot create a libguestfs handle", path);
		goto out;
	}
	gfs.set_error_handler(g, NULL, NULL); /* we report, libguestfs stays quiet */
	if (gfs.add_drive_opts(g, path, GUESTFS_ADD_DRIVE_OPTS_READONLY, 1,
				   GUESTFS_ADD_DRIVE_OPTS_FORMAT, fmt, -1) < 0) {
		r = azl_err_input(err, "%s: %s", path, gfs.last_error(g));
		goto out;
	}
	if (gfs.launch(g) < 0) {
		r = gfs_fail(g, err, path, "starting the libguestfs appliance");
		goto out;
	}
	r = inspect_launched(g, path, out, tmpdir, err);
	gfs.shutdown(g);
out:
	if (g)
		gfs.close(g);
	if (tmpdir) {
		struct azl_err ignored = { 0 };
		if (access(tmpdir, F_OK) == 0)
			azl_staging_rmtree(tmpdir, &ignored);
	}
	free(tmpdir);
	if (r < 0)
		azl_inspect_release(out);
	return r;
}

void azl_inspect_release(struct azl_inspect *in)
{
	for (size_t i = 0; i < in->nparts; i++) {
		struct azl_inspect_part *p = &in->parts[i];
		free(p->type_guid);
		free(p->guid);
		free(p->name);
		free(p->fstype);
		free(p->fs_uuid);
		free(p->fs_label);
	}
	free(in->parts);
	for (size_t i = 0; i < in->npkgs; i++)
		free(in->pkgs[i]);
	free(in->pkgs);
	free(in->format);
	free(in->table);
	free(in->disk_guid);
	memset(in, 0, sizeof(*in));
	in->root = -1;
}
