/* Builds a model by hand, emits it, and reads the archive back with
 * libarchive + jansson.  With AZL_OCI_OUT=path (and optionally
 * AZL_OCI_COMPRESSION=gzip|zstd) it also leaves a sample archive there for
 * tests/integration/oci_tools.sh to check with skopeo/umoci/tar. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <jansson.h>
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/emit_oci.h"
#include "t.h"

#define SDE 1700000000 /* 2023-11-14T22:13:20Z */

static char data_file[] = "/tmp/azl-oci-data-XXXXXX";
static const size_t big_size = 3u << 20;


static void add_file(struct azl_fs *fs, const char *path, uint32_t mode,
		     uint64_t off, uint64_t size, uint32_t hl)
{
	struct azl_node n = {0};
	n.data_path = azl_xstrdup(data_file);
	n.data_offset = off;
	n.size = size;
	n.hardlink_group = hl;
	t_add_node(fs, path, AZL_FT_REG, mode, &n);
}

static struct azl_fs *sample_model(void)
{
	struct azl_fs *fs = azl_fs_new();
	struct azl_node n = {0};
	/* VFS_CAP_REVISION_2, cap_net_raw (13) permitted+effective. */
	static const unsigned char cap[20] = { 0x01, 0, 0, 0x02, 0x00, 0x20, 0, 0 };

	t_add_node(fs, "/etc", AZL_FT_DIR, 0755, NULL);
	t_add_node(fs, "/usr", AZL_FT_DIR, 0755, NULL);
	t_add_node(fs, "/usr/bin", AZL_FT_DIR, 0755, NULL);
	t_add_node(fs, "/dev", AZL_FT_DIR, 0755, NULL);
	t_add_node(fs, "/run", AZL_FT_DIR, 0755, NULL);
	t_add_node(fs, "/home", AZL_FT_DIR, 0755, NULL);

	n.data = (unsigned char *)azl_xstrdup("ID=azl\nVERSION_ID=1\n");
	n.size = strlen((char *)n.data);
	n.mtime = SDE;
	t_add_node(fs, "/etc/os-release", AZL_FT_REG, 0644, &n);

	add_file(fs, "/usr/bin/big", 0755, 17, big_size, 0);
	add_file(fs, "/usr/bin/hard1", 0755, 100, 5000, 7);
	add_file(fs, "/usr/bin/hard2", 0755, 100, 5000, 7);

	memset(&n, 0, sizeof(n));
	n.data_path = azl_xstrdup(data_file);
	n.size = 4096;
	n.nxattrs = 1;
	n.xattrs = azl_xcalloc(1, sizeof(*n.xattrs));
	n.xattrs[0].name = azl_xstrdup("security.capability");
	n.xattrs[0].value = azl_xmalloc(sizeof(cap));
	memcpy(n.xattrs[0].value, cap, sizeof(cap));
	n.xattrs[0].len = sizeof(cap);
	t_add_node(fs, "/usr/bin/ping", AZL_FT_REG, 04755, &n);

	memset(&n, 0, sizeof(n));
	n.link_target = azl_xstrdup("usr/bin");
	t_add_node(fs, "/bin", AZL_FT_SYMLINK, 0777, &n);

	memset(&n, 0, sizeof(n));
	n.rdev_major = 1;
	n.rdev_minor = 3;
	t_add_node(fs, "/dev/null", AZL_FT_CHR, 0666, &n);
	t_add_node(fs, "/run/initctl", AZL_FT_FIFO, 0600, NULL);

	memset(&n, 0, sizeof(n));
	n.uid = n.gid = 1000;
	n.user = azl_xstrdup("app");
	n.group = azl_xstrdup("app");
	t_add_node(fs, "/home/app", AZL_FT_DIR, 0700, &n);
	t_add_node(fs, "/run/sock", AZL_FT_SOCK, 0600, NULL);
	return fs;
}

static void make_data_file(void)
{
	int fd = mkstemp(data_file);
	unsigned char *p = azl_xmalloc(big_size + 17);
	uint32_t x = 7;
	for (size_t i = 0; i < big_size + 17; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (x >> 29) ? (unsigned char)"static const\n"[i % 13] : (unsigned char)(x >> 16);
	}
	if (fd < 0 || azl_write_all(fd, p, big_size + 17) < 0)
		exit(1);
	close(fd);
	free(p);
}

static const char *const entrypoint[] = { "/bin/sh", "-c" };
static const char *const cmd[] = { "echo hello" };
static const char *const env[] = { "PATH=/usr/bin:/bin", "LANG=C.UTF-8" };
static const struct azl_kv labels[] = { { "org.example.z", "last" }, { "org.example.a", "first" } };
static const char *const ports[] = { "8080/tcp", "53/udp" };

static struct azl_oci_opts sample_opts(enum azl_comp comp, int threads)
{
	struct azl_oci_opts o = {
		.compression = comp, .threads = threads, .arch = "x86_64",
		.created = SDE, .ref_name = "sample:latest",
		.entrypoint = entrypoint, .nentrypoint = 2,
		.cmd = cmd, .ncmd = 1, .env = env, .nenv = 2,
		.workdir = "/home/app", .user = "1000:1000",
		.labels = labels, .nlabels = 2,
		.exposed_ports = ports, .nexposed_ports = 2,
	};
	return o;
}

static char *slurp(const char *path, size_t *len)
{
	struct azl_err err = {0};
	char *d = NULL;
	if (azl_read_file(path, 0, &d, len, &err) < 0)
		fprintf(stderr, "%s\n", err.msg);
	return d;
}

/* ---- reading the archive back ---- */

struct member {
	char *name;
	char *data;
	size_t len;
};

static size_t read_outer(const char *buf, size_t len, struct member *m, size_t max)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	size_t n = 0;

	archive_read_support_format_tar(a);
	if (archive_read_open_memory(a, buf, len) != ARCHIVE_OK)
		return 0;
	while (n < max && archive_read_next_header(a, &e) == ARCHIVE_OK) {
		size_t sz = (size_t)archive_entry_size(e);
		m[n].name = azl_xstrdup(archive_entry_pathname(e));
		m[n].data = azl_xmalloc(sz + 1);
		m[n].len = (size_t)archive_read_data(a, m[n].data, sz);
		m[n].data[sz] = '\0';
		n++;
	}
	archive_read_free(a);
	return n;
}

static const struct member *find(const struct member *m, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(m[i].name, name))
			return &m[i];
	return NULL;
}

static const struct member *blob(const struct member *m, size_t n, const char *digest)
{
	char path[128];
	if (!digest || strncmp(digest, "sha256:", 7))
		return NULL;
	snprintf(path, sizeof(path), "blobs/sha256/%s", digest + 7);
	const struct member *b = find(m, n, path);
	if (b) { /* every blob must hash to its name */
		char hex[65];
		azl_sha256_hex(b->data, b->len, hex);
		CHECK_STR(hex, digest + 7);
	}
	return b;
}

static void check_layer(const struct member *layer, enum azl_comp comp)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	struct azl_buf names = AZL_BUF_INIT;
	int saw_cap = 0, saw_hard = 0, saw_big = 0, saw_home = 0;

	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	CHECK(archive_read_open_memory(a, layer->data, layer->len) == ARCHIVE_OK);
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const char *p = archive_entry_pathname(e);
		azl_buf_addf(&names, "%s|", p);
		CHECK(!archive_entry_atime_is_set(e) && !archive_entry_ctime_is_set(e));
		if (!strcmp(p, "usr/bin/ping")) {
			const char *name;
			const void *val;
			size_t vlen;
			CHECK((archive_entry_perm(e) & 07777) == 04755);
			CHECK(archive_entry_xattr_reset(e) == 1);
			CHECK(archive_entry_xattr_next(e, &name, &val, &vlen) == ARCHIVE_OK);
			CHECK_STR(name, "security.capability");
			saw_cap = vlen == 20 && ((const unsigned char *)val)[5] == 0x20;
		}
		if (!strcmp(p, "usr/bin/hard2"))
			saw_hard = archive_entry_hardlink(e) &&
				   !strcmp(archive_entry_hardlink(e), "usr/bin/hard1");
		if (!strcmp(p, "usr/bin/hard1"))
			CHECK(archive_entry_hardlink(e) == NULL && archive_entry_size(e) == 5000);
		if (!strcmp(p, "usr/bin/big"))
			saw_big = archive_entry_size(e) == (la_int64_t)big_size &&
				  archive_entry_mtime(e) == 1600000000;
		if (!strcmp(p, "home/app/"))
			saw_home = archive_entry_uid(e) == 1000 &&
				   !strcmp(archive_entry_uname(e), "app") &&
				   (archive_entry_perm(e) & 07777) == 0700;
		if (!strcmp(p, "dev/null"))
			CHECK(archive_entry_filetype(e) == AE_IFCHR &&
			      archive_entry_rdevmajor(e) == 1 && archive_entry_rdevminor(e) == 3);
		if (!strcmp(p, "bin"))
			CHECK_STR(archive_entry_symlink(e), "usr/bin");
		if (!strcmp(p, "etc/os-release")) {
			char buf[64] = {0};
			archive_read_data(a, buf, sizeof(buf) - 1);
			CHECK_STR(buf, "ID=azl\nVERSION_ID=1\n");
			CHECK_STR(archive_entry_uname(e), "root");
		}
	}
	CHECK(archive_filter_code(a, 0) ==
	      (comp == AZL_COMP_GZIP ? ARCHIVE_FILTER_GZIP : ARCHIVE_FILTER_ZSTD));
	archive_read_free(a);
	CHECK_STR(azl_buf_str(&names),
		  "bin|dev/|dev/null|etc/|etc/os-release|home/|home/app/|run/|run/initctl|"
		  "usr/|usr/bin/|usr/bin/big|usr/bin/hard1|usr/bin/hard2|usr/bin/ping|");
	CHECK(saw_cap);
	CHECK(saw_hard);
	CHECK(saw_big);
	CHECK(saw_home);
	azl_buf_release(&names);
}

static void check_archive(const char *path, enum azl_comp comp,
			  const struct azl_oci_result *res)
{
	size_t len = 0, n;
	char *buf = slurp(path, &len);
	struct member m[16] = {{0}};
	json_t *index, *manifest, *config;
	const char *s;

	n = read_outer(buf, len, m, 16);
	CHECK(n == 7);
	CHECK(n >= 2 && !strcmp(m[0].name, "blobs/") && !strcmp(m[1].name, "blobs/sha256/"));
	CHECK(n == 7 && !strcmp(m[5].name, "index.json") && !strcmp(m[6].name, "oci-layout"));
	const struct member *lay = find(m, n, "oci-layout");
	CHECK(lay && !strcmp(lay->data, "{\"imageLayoutVersion\":\"1.0.0\"}"));

	const struct member *ix = find(m, n, "index.json");
	index = ix ? json_loads(ix->data, 0, NULL) : NULL;
	CHECK(index != NULL);
	json_t *desc = json_array_get(json_object_get(index, "manifests"), 0);
	CHECK_STR(json_string_value(json_object_get(desc, "digest")), res->manifest_digest);
	CHECK_STR(json_string_value(json_object_get(json_object_get(desc, "annotations"),
						   "org.opencontainers.image.ref.name")), "sample:latest");

	const struct member *mb = blob(m, n, res->manifest_digest);
	manifest = mb ? json_loads(mb->data, 0, NULL) : NULL;
	CHECK(manifest != NULL);
	CHECK(json_integer_value(json_object_get(desc, "size")) == (json_int_t)(mb ? mb->len : 0));
	CHECK_STR(json_string_value(json_object_get(manifest, "mediaType")),
		  "application/vnd.oci.image.manifest.v1+json");
	json_t *ld = json_array_get(json_object_get(manifest, "layers"), 0);
	CHECK_STR(json_string_value(json_object_get(ld, "mediaType")),
		  comp == AZL_COMP_GZIP ? "application/vnd.oci.image.layer.v1.tar+gzip"
					: "application/vnd.oci.image.layer.v1.tar+zstd");
	s = json_string_value(json_object_get(json_object_get(manifest, "config"), "digest"));
	CHECK_STR(s, res->config_digest);

	const struct member *cb = blob(m, n, s);
	config = cb ? json_loads(cb->data, 0, NULL) : NULL;
	CHECK(config != NULL);
	/* Canonical form: what we read re-serialises to the same bytes. */
	char *again = json_dumps(config, JSON_SORT_KEYS | JSON_COMPACT);
	CHECK(cb && again && !strcmp(again, cb->data));
	free(again);
	CHECK_STR(json_string_value(json_object_get(config, "architecture")), "amd64");
	CHECK_STR(json_string_value(json_object_get(config, "os")), "linux");
	CHECK_STR(json_string_value(json_object_get(config, "created")), "2023-11-14T22:13:20Z");
	json_t *cc = json_object_get(config, "config");
	CHECK_STR(json_string_value(json_array_get(json_object_get(cc, "Entrypoint"), 1)), "-c");
	CHECK_STR(json_string_value(json_object_get(cc, "WorkingDir")), "/home/app");
	CHECK_STR(json_string_value(json_object_get(json_object_get(cc, "Labels"), "org.example.a")), "first");
	CHECK(json_object_get(json_object_get(cc, "ExposedPorts"), "53/udp") != NULL);
	CHECK_STR(json_string_value(json_array_get(json_object_get(json_object_get(config, "rootfs"),
								   "diff_ids"), 0)), res->diff_id);
	CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(config, "history"), 0),
						    "created_by")), "azl-compose");

	const struct member *lb = blob(m, n, res->layer_digest);
	CHECK(lb && lb->len == res->layer_size);
	if (lb)
		check_layer(lb, comp);

	json_decref(index);
	json_decref(manifest);
	json_decref(config);
	for (size_t i = 0; i < n; i++) {
		free(m[i].name);
		free(m[i].data);
	}
	free(buf);
}

static int same_file(const char *a, const char *b)
{
	size_t la = 0, lb = 0;
	char *x = slurp(a, &la), *y = slurp(b, &lb);
	int same = x && y && la == lb && !memcmp(x, y, la);
	free(x);
	free(y);
	return same;
}

static void emit(struct azl_fs *fs, enum azl_comp comp, int threads,
		 const char *path, struct azl_oci_result *res)
{
	struct azl_oci_opts o = sample_opts(comp, threads);
	struct azl_err err = {0};
	int r = azl_emit_oci(fs, &o, path, res, &err);
	CHECK(r == 0);
	if (r < 0)
		fprintf(stderr, "emit %s: %s\n", path, err.msg);
}

static void test_comp(struct azl_fs *fs, const char *dir, enum azl_comp comp)
{
	struct azl_oci_result r1, r2, r3;
	char *p1 = azl_xasprintf("%s/a-%s.oci.tar", dir, azl_comp_name(comp));
	char *p2 = azl_xasprintf("%s/b-%s.oci.tar", dir, azl_comp_name(comp));
	char *p3 = azl_xasprintf("%s/c-%s.oci.tar", dir, azl_comp_name(comp));

	emit(fs, comp, 1, p1, &r1);
	emit(fs, comp, 1, p2, &r2);
	emit(fs, comp, 4, p3, &r3);
	CHECK(same_file(p1, p2));
	CHECK(same_file(p1, p3));
	CHECK_STR(r1.manifest_digest, r3.manifest_digest);
	CHECK(strlen(r1.manifest_digest) == 71);
	check_archive(p1, comp, &r1);
	unlink(p1);
	unlink(p2);
	unlink(p3);
	free(p1);
	free(p2);
	free(p3);
}

static void test_errors(struct azl_fs *fs, const char *dir)
{
	struct azl_oci_opts o = sample_opts(AZL_COMP_GZIP, 1);
	struct azl_err err = {0};
	char *p = azl_xasprintf("%s/bad.oci.tar", dir);
	struct azl_node n = {0};

	o.arch = "vax";
	CHECK(azl_emit_oci(fs, &o, p, NULL, &err) == -EINVAL);
	CHECK(err.kind == AZL_ERR_INPUT);
	CHECK_CONTAINS(err.msg, "vax");
	CHECK(access(p, F_OK) != 0);

	o = sample_opts(AZL_COMP_GZIP, 1);
	o.workdir = "/bad\xff";
	azl_err_clear(&err);
	CHECK(azl_emit_oci(fs, &o, p, NULL, &err) == -EINVAL);
	CHECK_CONTAINS(err.msg, "UTF-8");

	/* Content that vanished: fails naming the node, no output left. */
	n.data_path = azl_xstrdup("/nonexistent/azl-blob");
	n.size = 10;
	t_add_node(fs, "/etc/gone", AZL_FT_REG, 0644, &n);
	o = sample_opts(AZL_COMP_ZSTD, 2);
	azl_err_clear(&err);
	CHECK(azl_emit_oci(fs, &o, p, NULL, &err) == -ENOENT);
	CHECK_CONTAINS(err.msg, "/etc/gone");
	CHECK(access(p, F_OK) != 0);
	azl_fs_remove(fs, "/etc/gone");

	/* A full disk (here a file size limit) while the layer is written:
	 * an error naming the output, nothing left in the folder. */
	struct rlimit old_lim, lim;
	getrlimit(RLIMIT_FSIZE, &old_lim);
	lim = old_lim;
	lim.rlim_cur = 200000;
	signal(SIGXFSZ, SIG_IGN);
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	azl_err_clear(&err);
	o = sample_opts(AZL_COMP_GZIP, 2);
	CHECK(azl_emit_oci(fs, &o, p, NULL, &err) == -EFBIG);
	setrlimit(RLIMIT_FSIZE, &old_lim);
	CHECK_CONTAINS(err.msg, p);
	CHECK_CONTAINS(err.msg, "too large");
	DIR *d = opendir(dir);
	int left = 0;
	for (struct dirent *de; d && (de = readdir(d));)
		left += de->d_name[0] != '.';
	if (d)
		closedir(d);
	CHECK(left == 0);

	azl_err_clear(&err);
	CHECK(azl_emit_oci(fs, &o, "/nonexistent-dir/x.oci.tar", NULL, &err) < 0);
	CHECK_CONTAINS(err.msg, "/nonexistent-dir/x.oci.tar");
	free(p);
}

/* Names reach the layer as UTF-8 (or raw bytes, marked BINARY) whatever
 * the process locale: the same bytes under "C" and "C.UTF-8". */
static void test_locale(const char *dir)
{
	struct azl_fs *fs = azl_fs_new();
	struct azl_oci_result r1, r2;
	char *p1 = azl_xasprintf("%s/l1.oci.tar", dir);
	char *p2 = azl_xasprintf("%s/l2.oci.tar", dir);
	struct azl_node n = {0};

	n.user = azl_xstrdup("j\xc3\xb6rg");
	t_add_node(fs, "/caf\xc3\xa9", AZL_FT_DIR, 0755, &n);
	t_add_node(fs, "/bad\xff", AZL_FT_DIR, 0755, NULL);
	CHECK(setlocale(LC_ALL, "C") != NULL);
	emit(fs, AZL_COMP_NONE, 1, p1, &r1);
	CHECK(setlocale(LC_ALL, "C.UTF-8") != NULL);
	emit(fs, AZL_COMP_NONE, 1, p2, &r2);
	setlocale(LC_ALL, "C");
	CHECK(same_file(p1, p2));

	size_t len = 0;
	char *buf = slurp(p1, &len);
	static const char want1[] = "path=caf\xc3\xa9/\n";
	static const char want2[] = "uname=j\xc3\xb6rg\n";
	static const char want3[] = "hdrcharset=BINARY\n";
	CHECK(buf && memmem(buf, len, want1, sizeof(want1) - 1));
	CHECK(buf && memmem(buf, len, want2, sizeof(want2) - 1));
	CHECK(buf && memmem(buf, len, want3, sizeof(want3) - 1));
	free(buf);
	unlink(p1);
	unlink(p2);
	free(p1);
	free(p2);
	azl_fs_free(fs);
}

int main(void)
{
	char dir[] = "/tmp/azl-oci-XXXXXX";
	const char *out = getenv("AZL_OCI_OUT");
	struct azl_fs *fs;

	make_data_file();
	fs = sample_model();
	CHECK(mkdtemp(dir) != NULL);
	if (!out) { /* AZL_OCI_OUT: only write the sample, the checks ran as a unit test */
		test_comp(fs, dir, AZL_COMP_GZIP);
		test_comp(fs, dir, AZL_COMP_ZSTD);
		test_errors(fs, dir);
		test_locale(dir);
	} else {
		const char *c = getenv("AZL_OCI_COMPRESSION");
		enum azl_comp comp = AZL_COMP_GZIP;
		struct azl_oci_result r;
		if (c)
			CHECK(azl_comp_parse(c, &comp) == 0);
		emit(fs, comp, 2, out, &r);
		printf("manifest %s\nconfig %s\nlayer %s\ndiff_id %s\n",
		       r.manifest_digest, r.config_digest, r.layer_digest, r.diff_id);
	}
	rmdir(dir);
	unlink(data_file);
	azl_fs_free(fs);
	return t_done();
}
