/* rpmdb: schema against a database rpm wrote (CBL-Mariner 2.0), installed
 * headers and index rows for real distro packages, determinism, errors.
 *
 * Also a tiny driver for tests/integration/rpmdb.sh (no CLI command writes
 * a database on its own yet):
 *   test_rpmdb write DB INSTALL_TIME RPM[:STATE,STATE...]... */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rpm/header.h>
#include <rpm/rpmtag.h>
#include <rpm/rpmtd.h>
#include <sqlite3.h>

#include "base/buf.h"
#include "base/fs.h"
#include "compose/fsmodel.h"
#include "compose/rpmdb.h"
#include "t.h"

static char tmpdir[] = "/tmp/azl-test-rpmdb.XXXXXX";

static const char *corpus(void)
{
	const char *c = getenv("AZL_CORPUS");
	return c ? c : "/work/shared/corpus/real";
}

static char *corpus_file(const char *rel)
{
	char *p = azl_xasprintf("%s/%s", corpus(), rel);
	if (access(p, R_OK) != 0) {
		printf("note: %s absent, its checks are skipped\n", p);
		free(p);
		return NULL;
	}
	return p;
}

static sqlite3 *open_ro(const char *path)
{
	sqlite3 *db = NULL;
	char *uri = azl_xasprintf("file:%s?immutable=1", path);

	if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
			    NULL) != SQLITE_OK) {
		sqlite3_close(db);
		db = NULL;
	}
	free(uri);
	return db;
}

/* "type name tbl_name sql" of every schema object but statistics, in
 * creation order: what rpm created must be what we create. */
static char *schema_text(const char *path)
{
	struct azl_buf b = AZL_BUF_INIT;
	sqlite3 *db = open_ro(path);
	sqlite3_stmt *s = NULL;

	if (!db)
		return NULL;
	sqlite3_prepare_v2(db, "SELECT type, name, tbl_name, sql FROM "
			   "sqlite_master WHERE name NOT LIKE 'sqlite_stat%' "
			   "ORDER BY rowid", -1, &s, NULL);
	while (s && sqlite3_step(s) == SQLITE_ROW)
		azl_buf_addf(&b, "%s|%s|%s|%s\n", sqlite3_column_text(s, 0),
			     sqlite3_column_text(s, 1), sqlite3_column_text(s, 2),
			     sqlite3_column_text(s, 3));
	sqlite3_finalize(s);
	sqlite3_close(db);
	return azl_buf_detach(&b);
}

static char *query1(const char *path, const char *sql)
{
	sqlite3 *db = open_ro(path);
	sqlite3_stmt *s = NULL;
	char *r = NULL;

	if (!db)
		return NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
		r = azl_xstrdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
	return r;
}

static Header header_at(const char *path, int hnum)
{
	sqlite3 *db = open_ro(path);
	sqlite3_stmt *s = NULL;
	Header h = NULL;

	if (!db)
		return NULL;
	sqlite3_prepare_v2(db, "SELECT blob FROM Packages WHERE hnum = ?", -1,
			   &s, NULL);
	sqlite3_bind_int(s, 1, hnum);
	if (s && sqlite3_step(s) == SQLITE_ROW)
		h = headerImport((void *)sqlite3_column_blob(s, 0),
				 sqlite3_column_bytes(s, 0), HEADERIMPORT_COPY);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return h;
}

static void test_schema_matches_rpm(void)
{
	char *mariner = corpus_file("cbl-mariner-2.0-rpmdb/rpmdb.sqlite");
	char *db = azl_xasprintf("%s/empty.sqlite", tmpdir);
	struct azl_err err = { 0 };
	char *ours, *theirs;
	size_t n;
	const char *const *names = azl_rpmdb_tables(&n);

	CHECK(azl_rpmdb_write(db, NULL, 0, 0, &err) == 0);
	ours = schema_text(db);
	CHECK(ours && strstr(ours, "table|Packages|Packages|CREATE TABLE "
			     "'Packages' (hnum INTEGER PRIMARY KEY "
			     "AUTOINCREMENT,blob BLOB NOT NULL)"));
	CHECK(n == 19);
	CHECK_STR(names[0], "Packages");
	CHECK_STR(names[18], "Enhancename");
	if (mariner) {
		theirs = schema_text(mariner);
		CHECK_STR(ours, theirs);
		free(theirs);
		free(mariner);
	}
	free(ours);
	free(db);
}

/* Fedora 14 packages: signed (RSA header + MD5/SHA1 digests to merge),
 * i686, xz payloads, many files. */
static const char *f14[] = {
	"fedora14/icedax-1.1.10-2.fc14.i686.rpm",
	"fedora14/imsettings-0.108.1-2.fc14.i686.rpm",
	"fedora14/info-4.13a-10.fc14.i686.rpm",
};

static void check_installed_header(const char *db, int hnum, const char *name)
{
	Header h = header_at(db, hnum);
	struct rpmtd_s states, bn;

	CHECK(h != NULL);
	if (!h)
		return;
	CHECK_STR(headerGetString(h, RPMTAG_NAME), name);
	CHECK(headerGetNumber(h, RPMTAG_INSTALLTIME) == 1234567890);
	CHECK(headerGetNumber(h, RPMTAG_INSTALLTID) == 1234567890);
	CHECK(headerGetNumber(h, RPMTAG_INSTALLCOLOR) == 3);
	/* Signature header merged as rpmReadPackageFile() does. */
	CHECK(headerIsEntry(h, RPMTAG_SIGMD5));
	CHECK(headerIsEntry(h, RPMTAG_SHA1HEADER));
	CHECK(headerIsEntry(h, RPMTAG_RSAHEADER));
	CHECK(headerIsEntry(h, RPMTAG_SIGSIZE));
	headerGet(h, RPMTAG_FILESTATES, &states, HEADERGET_MINMEM);
	headerGet(h, RPMTAG_BASENAMES, &bn, HEADERGET_MINMEM);
	CHECK(rpmtdCount(&bn) > 0 && rpmtdCount(&states) == rpmtdCount(&bn));
	if (hnum == 2 && rpmtdCount(&states) > 1) {
		const char *st = states.data;
		CHECK(st[0] == AZL_RPMDB_FILE_NOTINSTALLED && st[1] == 0);
	}
	rpmtdFreeData(&states);
	rpmtdFreeData(&bn);
	headerFree(h);
}

static void test_real_packages(void)
{
	char *paths[3] = { 0 };
	struct azl_rpmdb_pkg pkgs[3] = { { 0 } };
	char *db = azl_xasprintf("%s/f14.sqlite", tmpdir);
	char *v, *sql;
	unsigned char *states = NULL;
	struct azl_err err = { 0 };

	for (int i = 0; i < 3; i++) {
		paths[i] = corpus_file(f14[i]);
		if (!paths[i])
			goto out;
		pkgs[i].rpm_path = paths[i];
	}
	/* imsettings: first file marked not installed (an excluded file). */
	states = calloc(102, 1);
	states[0] = AZL_RPMDB_FILE_NOTINSTALLED;
	pkgs[1].fstates = states;
	pkgs[1].nfstates = 102;
	CHECK(azl_rpmdb_write(db, pkgs, 3, 1234567890, &err) == 0);
	if (err.code)
		fprintf(stderr, "%s\n", err.msg);
	check_installed_header(db, 1, "icedax");
	check_installed_header(db, 2, "imsettings");
	check_installed_header(db, 3, "info");

	v = query1(db, "SELECT group_concat(key || '/' || hnum, ' ') FROM Name");
	CHECK_STR(v, "icedax/1 imsettings/2 info/3");
	free(v);
	/* Installtid keys are the 32-bit time in host order, as rpm binds them. */
	v = query1(db, "SELECT group_concat(DISTINCT hex(key)) FROM Installtid");
	CHECK_STR(v, "D2029649");
	free(v);
	v = query1(db, "SELECT count(*) || ' ' || min(length(key)) || ' ' || "
		   "typeof(key) FROM Sigmd5");
	CHECK_STR(v, "3 16 blob");
	free(v);
	/* rpmlib() and other install-only requirements are not indexed. */
	v = query1(db, "SELECT count(*) FROM Requirename WHERE key LIKE 'rpmlib(%'");
	CHECK_STR(v, "0");
	free(v);
	v = query1(db, "SELECT count(*) > 0 FROM Requirename WHERE hnum = 3");
	CHECK_STR(v, "1");
	free(v);
	/* Basenames: one row per file, idx = file index. */
	sql = azl_xasprintf("SELECT count(*) || ' ' || max(idx) FROM Basenames "
			    "WHERE hnum = 2");
	v = query1(db, sql);
	CHECK_STR(v, "102 101");
	free(v);
	free(sql);
	v = query1(db, "SELECT key FROM 'Group' WHERE hnum = 1");
	CHECK(v && *v);
	free(v);
out:
	free(states);
	for (int i = 0; i < 3; i++)
		free(paths[i]);
	free(db);
}

static int read_all(const char *path, char **data, size_t *len)
{
	struct azl_err err = { 0 };
	return azl_read_file(path, 0, data, len, &err);
}

static void test_deterministic(void)
{
	char *p = corpus_file(f14[2]), *q = corpus_file(f14[0]);
	char *a = azl_xasprintf("%s/a.sqlite", tmpdir);
	char *b = azl_xasprintf("%s/b.sqlite", tmpdir);
	char *c = azl_xasprintf("%s/c.sqlite", tmpdir);
	struct azl_err err = { 0 };
	char *da = NULL, *db = NULL, *dc = NULL;
	size_t la = 0, lb = 0, lc = 0;

	if (!p || !q)
		goto out;
	struct azl_rpmdb_pkg pkgs[2] = { { .rpm_path = p }, { .rpm_path = q } };
	CHECK(azl_rpmdb_write(a, pkgs, 2, 1700000000, &err) == 0);
	CHECK(azl_rpmdb_write(b, pkgs, 2, 1700000000, &err) == 0);
	CHECK(azl_rpmdb_write(c, pkgs, 2, 1700000001, &err) == 0);
	CHECK(read_all(a, &da, &la) == 0 && read_all(b, &db, &lb) == 0 &&
	      read_all(c, &dc, &lc) == 0);
	CHECK(la > 0 && la == lb && da && db && memcmp(da, db, la) == 0);
	/* The time really reaches the file. */
	CHECK(lc == la && dc && da && memcmp(da, dc, la) != 0);
	/* Rollback-journal mode: readers need no -wal/-shm beside it. */
	CHECK(la > 19 && da[18] == 1 && da[19] == 1);
out:
	free(da);
	free(db);
	free(dc);
	free(a);
	free(b);
	free(c);
	free(p);
	free(q);
}

/* Nothing but the final file may remain in the directory. */
static int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	if (d)
		closedir(d);
	return n;
}

static void test_errors(void)
{
	char *dir = azl_xasprintf("%s/err", tmpdir);
	char *db = azl_xasprintf("%s/rpmdb.sqlite", dir);
	char *src = corpus_file("createrepo_c-testdata/empty-0-0.src.rpm");
	char *bin = corpus_file(f14[2]);
	struct azl_err err = { 0 };
	struct azl_rpmdb_pkg missing = { .rpm_path = "/nonexistent/x.rpm" };
	char *bogus = azl_xasprintf("%s/bogus.rpm", tmpdir);
	struct azl_rpmdb_pkg notrpm = { .rpm_path = bogus };
	unsigned char st[2] = { 0, 0 };

	mkdir(dir, 0755);
	CHECK(azl_write_file_atomic(bogus, "not an rpm\n", 11, 0644, &err) == 0);
	CHECK(azl_rpmdb_write(db, &missing, 1, 0, &err) < 0);
	CHECK_CONTAINS(err.msg, "/nonexistent/x.rpm");
	CHECK(access(db, F_OK) != 0 && dir_entries(dir) == 0);

	azl_err_clear(&err);
	CHECK(azl_rpmdb_write(db, &notrpm, 1, 0, &err) < 0);
	CHECK_CONTAINS(err.msg, "bogus.rpm: not a readable rpm package");
	CHECK(dir_entries(dir) == 0);

	azl_err_clear(&err);
	CHECK(azl_rpmdb_write(db, NULL, 0, -1, &err) == -EINVAL);
	CHECK(err.kind == AZL_ERR_INPUT);
	CHECK_CONTAINS(err.msg, "install time -1");

	if (src) {
		struct azl_rpmdb_pkg p = { .rpm_path = src };
		azl_err_clear(&err);
		CHECK(azl_rpmdb_write(db, &p, 1, 0, &err) < 0);
		CHECK_CONTAINS(err.msg, "source package");
	}
	if (bin) {
		struct azl_rpmdb_pkg p = { .rpm_path = bin, .fstates = st,
					   .nfstates = 2 };
		azl_err_clear(&err);
		CHECK(azl_rpmdb_write(db, &p, 1, 0, &err) < 0);
		CHECK_CONTAINS(err.msg, "2 file states given for");
		CHECK_CONTAINS(err.msg, bin);
	}
	if (bin) {
		struct azl_rpmdb_pkg twice[2] = { { .rpm_path = bin },
						  { .rpm_path = bin } };
		azl_err_clear(&err);
		CHECK(azl_rpmdb_write(db, twice, 2, 0, &err) < 0);
		CHECK_CONTAINS(err.msg, "info-4.13a-10.fc14.i686 is already in "
			       "the database (from ");
	}
	CHECK(dir_entries(dir) == 0);

	azl_err_clear(&err);
	char *nodir = azl_xasprintf("%s/nodir/rpmdb.sqlite", tmpdir);
	CHECK(azl_rpmdb_write(nodir, NULL, 0, 0, &err) < 0);
	CHECK_CONTAINS(err.msg, "nodir/rpmdb.sqlite");
	free(nodir);
	free(src);
	free(bin);
	free(bogus);
	free(db);
	free(dir);
}

/* open, add, snapshot, add, commit: the snapshot holds what was added. */
static int staged(const char *final, const char *snap, const char *p1,
		  const char *p2, struct azl_err *err)
{
	struct azl_rpmdb *db = NULL;
	struct azl_rpmdb_pkg a = { .rpm_path = p1 }, b = { .rpm_path = p2 };
	int rc = azl_rpmdb_open(&db, final, 1700000000, err);

	if (rc == 0)
		rc = azl_rpmdb_add(db, &a, err);
	if (rc == 0)
		rc = azl_rpmdb_snapshot(db, snap, err);
	if (rc == 0)
		rc = azl_rpmdb_add(db, &b, err);
	if (rc) {
		azl_rpmdb_abort(db);
		return rc;
	}
	return azl_rpmdb_commit(db, err);
}

static void test_snapshot(void)
{
	char *p1 = corpus_file(f14[2]), *p2 = corpus_file(f14[0]);
	char *f1 = azl_xasprintf("%s/s1.sqlite", tmpdir);
	char *f2 = azl_xasprintf("%s/s2.sqlite", tmpdir);
	char *snap = azl_xasprintf("%s/snap.sqlite", tmpdir);
	char *bad = azl_xasprintf("%s/nodir/snap.sqlite", tmpdir);
	struct azl_err err = { 0 };
	char *v, *d1 = NULL, *d2 = NULL;
	size_t l1 = 0, l2 = 0;

	if (!p1 || !p2)
		goto out;
	CHECK(staged(f1, snap, p1, p2, &err) == 0);
	v = query1(snap, "SELECT group_concat(key) FROM Name");
	CHECK_STR(v, "info");
	free(v);
	v = query1(f1, "SELECT group_concat(key) FROM (SELECT key FROM Name ORDER BY hnum)");
	CHECK_STR(v, "info,icedax");
	free(v);
	CHECK(staged(f2, snap, p1, p2, &err) == 0);
	CHECK(read_all(f1, &d1, &l1) == 0 && read_all(f2, &d2, &l2) == 0);
	CHECK(l1 == l2 && d1 && d2 && memcmp(d1, d2, l1) == 0);
	CHECK(staged(f2, bad, p1, p2, &err) < 0);
	CHECK_CONTAINS(err.msg, "nodir/snap.sqlite");
	CHECK(access(f1, F_OK) == 0);
out:
	free(d1);
	free(d2);
	free(p1);
	free(p2);
	free(f1);
	free(f2);
	free(snap);
	free(bad);
}

static void test_to_model(void)
{
	char *db = azl_xasprintf("%s/model.sqlite", tmpdir);
	struct azl_err err = { 0 };
	struct azl_fs *fs = azl_fs_new();
	struct azl_node var = { .path = azl_xstrdup("/var"), .type = AZL_FT_DIR,
				.mode = 0700, .mtime = 5 };
	struct azl_node *n;

	CHECK(azl_rpmdb_write(db, NULL, 0, 0, &err) == 0);
	CHECK(azl_fs_add(fs, &var, &err) == 0);
	CHECK(azl_rpmdb_to_model(fs, db, "/var/lib/rpm", 1700000000, &err) == 0);
	n = azl_fs_get(fs, "/var/lib/rpm/rpmdb.sqlite");
	CHECK(n && n->type == AZL_FT_REG && n->mode == 0644 && n->uid == 0 &&
	      n->mtime == 1700000000 && n->size > 0 && n->owner_pkg == NULL);
	CHECK(n && n->data_path && !strcmp(n->data_path, db));
	n = azl_fs_get(fs, "/var/lib");
	CHECK(n && n->type == AZL_FT_DIR && n->mode == 0755 &&
	      n->mtime == 1700000000);
	/* Existing directories keep what they had. */
	n = azl_fs_get(fs, "/var");
	CHECK(n && n->mode == 0700 && n->mtime == 5);
	azl_fs_free(fs);

	/* Fedora's layout: /var/lib/rpm is a symlink into /usr/lib/sysimage. */
	fs = azl_fs_new();
	struct azl_node d1 = { .path = azl_xstrdup("/var"), .type = AZL_FT_DIR, .mode = 0755 };
	struct azl_node d2 = { .path = azl_xstrdup("/var/lib"), .type = AZL_FT_DIR, .mode = 0755 };
	struct azl_node l = { .path = azl_xstrdup("/var/lib/rpm"), .type = AZL_FT_SYMLINK,
			      .mode = 0777, .link_target = azl_xstrdup("../../usr/lib/sysimage/rpm") };
	CHECK(azl_fs_add(fs, &d1, &err) == 0 && azl_fs_add(fs, &d2, &err) == 0 &&
	      azl_fs_add(fs, &l, &err) == 0);
	CHECK(azl_rpmdb_to_model(fs, db, "/var/lib/rpm", 7, &err) == 0);
	CHECK(azl_fs_get(fs, "/usr/lib/sysimage/rpm/rpmdb.sqlite") != NULL);
	n = azl_fs_get(fs, "/var/lib/rpm");
	CHECK(n && n->type == AZL_FT_SYMLINK);

	azl_err_clear(&err);
	CHECK(azl_rpmdb_to_model(fs, "/nonexistent.sqlite", "/var/lib/rpm", 7, &err) < 0);
	CHECK_CONTAINS(err.msg, "/nonexistent.sqlite");
	azl_fs_free(fs);
	free(db);
}

/* Driver: RPM[:s,s,...] gives explicit file states. */
static int driver(int argc, char **argv)
{
	size_t n = (size_t)argc - 4;
	struct azl_rpmdb_pkg *pkgs = azl_xcalloc(n ? n : 1, sizeof(*pkgs));
	struct azl_err err = { 0 };
	int rc;

	for (size_t i = 0; i < n; i++) {
		char *arg = argv[i + 4], *colon = strrchr(arg, ':');
		pkgs[i].rpm_path = arg;
		if (colon) {
			unsigned char *st = azl_xcalloc(strlen(colon), 1);
			size_t k = 0;
			*colon = '\0';
			for (char *s = strtok(colon + 1, ","); s; s = strtok(NULL, ","))
				st[k++] = (unsigned char)atoi(s);
			pkgs[i].fstates = st;
			pkgs[i].nfstates = k;
		}
	}
	rc = azl_rpmdb_write(argv[2], pkgs, n, strtoll(argv[3], NULL, 10), &err);
	if (rc)
		fprintf(stderr, "azl rpmdb: %s\n", err.msg);
	for (size_t i = 0; i < n; i++)
		free((void *)pkgs[i].fstates);
	free(pkgs);
	return rc ? azl_err_exit_code(&err) : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "write"))
		return driver(argc, argv);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_schema_matches_rpm();
	test_real_packages();
	test_deterministic();
	test_errors();
	test_snapshot();
	test_to_model();
	{
		char *cmd = azl_xasprintf("rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
		free(cmd);
	}
	return t_done();
}
