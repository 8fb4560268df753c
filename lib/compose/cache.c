/* The content-addressed cache: blobs named by sha256 plus a sqlite index.
 *
 * Order of an insert: re-hash the temporary file, rename it into blobs/,
 * then add the index row.  A kill between any two steps leaves either a
 * temporary file (resumed or overwritten later) or a correct blob without a
 * row (adopted on lookup), never a row without its correct blob.
 *
 * Blobs are not synced to the disk.  A power cut can leave a blob short or
 * zeroed under its row, and nothing trusts a blob without re-hashing it:
 * each fetch and build checks every cached package it uses against its
 * name and drops and re-downloads one that no longer matches, as dnf and
 * apt check their cached packages.  A sync per run would add nothing to
 * that check and waited for every dirty page of the filesystem (syncfs),
 * another program's too.
 *
 * Temporary names are stable per digest so a killed download resumes, and
 * each is held with flock() while in use: a second process wanting the
 * same digest gets a private name instead of writing into the same file. */
#include "compose/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "base/sqlerr.h"

struct tmp_lock {
	char sha256[65];
	int fd;
};

struct pending_row {
	char sha256[65];
	uint64_t size;
	char *kind, *name;
};

struct azl_cache {
	char *dir;
	sqlite3 *db;
	pthread_mutex_t mu;       /* locks and rows: inserts may run in threads */
	struct tmp_lock *locks;
	size_t nlocks;
	int batch;
	struct pending_row *rows; /* batch: renamed, index row not yet written */
	size_t nrows;
};

/* Left open: db_open checks the layout in the same transaction. */
static const char schema[] =
	"BEGIN IMMEDIATE;"
	"CREATE TABLE IF NOT EXISTS blobs ("
	" sha256 TEXT PRIMARY KEY,"
	" size INTEGER NOT NULL,"
	" kind TEXT NOT NULL,"
	" name TEXT NOT NULL,"
	" verified_with TEXT NOT NULL DEFAULT '');";

static char *default_dir(void)
{
	const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	if (x && x[0] == '/')
		return azl_xasprintf("%s/azl-compose", x);
	if (home && *home)
		return azl_xasprintf("%s/.cache/azl-compose", home);
	return NULL;
}

static int db_fail(struct azl_cache *c, struct azl_err *err, const char *what)
{
	/* "disk I/O error" alone hides the cause (a full disk, say). */
	int sys = azl_sqlite_errno(c->db, 0);

	if (sys)
		return azl_errf(err, -sys, "%s/index.sqlite: %s: %s: %s", c->dir,
				what, sqlite3_errmsg(c->db), strerror(sys));
	return azl_errf(err, -EIO, "%s/index.sqlite: %s: %s", c->dir, what,
			sqlite3_errmsg(c->db));
}

/* Two processes opening a new cache at once both switch it to WAL and
 * create the table.  sqlite refuses some of those lock upgrades at once
 * (SQLITE_BUSY without calling the busy handler, to avoid a deadlock in
 * rollback-journal mode, which a new database is in), so a refused
 * statement is tried again, for up to the busy timeout. */
static int init_exec(struct azl_cache *c, const char *sql)
{
	int rc = SQLITE_BUSY;

	for (int i = 0; i < 6000 && (rc == SQLITE_BUSY || rc == SQLITE_LOCKED); i++) {
		if (i)
			usleep(10000);
		rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
		if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) &&
		    !sqlite3_get_autocommit(c->db))
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	}
	return rc;
}

/* Move the blobs in blobs/sha256/<sub>/ up into blobs/sha256/, then
 * remove the folder. */
static void move_up(const char *top, const char *sub)
{
	char *dir = azl_path_join(top, sub);
	struct dirent **ents = NULL;
	int n = scandir(dir, &ents, NULL, alphasort);

	for (int i = 0; i < n; i++) {
		char *from = azl_path_join(dir, ents[i]->d_name);
		char *to = azl_path_join(top, ents[i]->d_name);
		if (azl_is_sha256_hex(ents[i]->d_name))
			rename(from, to);
		free(from);
		free(to);
		free(ents[i]);
	}
	free(ents);
	if (n >= 0)
		rmdir(dir);
	free(dir);
}

/* Caches made before the flat layout (user_version 0) kept each blob in
 * blobs/sha256/<first two hex digits>/: move them up, once, under the
 * write lock.  A blob that cannot be moved stays behind and is fetched
 * again (its row then names a missing file, which lookup drops). */
static int flatten_old_layout(struct azl_cache *c)
{
	char *top = azl_xasprintf("%s/blobs/sha256", c->dir);
	struct dirent **subs = NULL;
	int n = scandir(top, &subs, NULL, alphasort);

	for (int i = 0; i < n; i++) {
		if (strlen(subs[i]->d_name) == 2 && subs[i]->d_name[0] != '.')
			move_up(top, subs[i]->d_name);
		free(subs[i]);
	}
	free(subs);
	free(top);
	return sqlite3_exec(c->db, "PRAGMA user_version=1", NULL, NULL, NULL);
}

static int user_version(struct azl_cache *c)
{
	sqlite3_stmt *st = NULL;
	int v = -1;

	if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int db_open(struct azl_cache *c, struct azl_err *err)
{
	char *path = azl_xasprintf("%s/index.sqlite", c->dir);
	int rc, r;

	rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE |
			     SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
	free(path);
	if (rc != SQLITE_OK)
		return db_fail(c, err, "open");
	/* Another process may hold the write lock for a moment. */
	sqlite3_busy_timeout(c->db, 60000);
	/* The last connection to close would checkpoint the log into the
	 * database: two fdatasyncs, ~2 ms at the end of every run.  sqlite's
	 * own checkpoint every 1000 pages of log keeps it short instead, and
	 * the next open reads the log as it is. */
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	/* synchronous first: it also governs the switch to WAL, which on a
	 * new cache otherwise syncs a rollback journal and the folder. */
	rc = init_exec(c, "PRAGMA synchronous=NORMAL;PRAGMA journal_mode=WAL;");
	/* IMMEDIATE: the write lock up front, so the busy handler waits for
	 * it (a read lock upgraded later can be refused at once). */
	if (rc == SQLITE_OK)
		rc = init_exec(c, schema);
	/* Still holding the write lock: bring the layout up to version 1. */
	if (rc == SQLITE_OK && user_version(c) == 0)
		rc = flatten_old_layout(c);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		return 0;
	r = db_fail(c, err, "initialise"); /* before ROLLBACK resets the error */
	if (!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

int azl_cache_open(const char *dir, struct azl_cache **out, struct azl_err *err)
{
	struct azl_cache *c = azl_xcalloc(1, sizeof(*c));
	char *sub = NULL;
	int r;

	pthread_mutex_init(&c->mu, NULL);
	c->dir = dir ? azl_xstrdup(dir) : default_dir();
	if (!c->dir) {
		r = azl_err_input(err, "no cache folder: set --cache-dir, "
				  "XDG_CACHE_HOME or HOME");
		goto out;
	}
	sub = azl_xasprintf("%s/blobs/sha256", c->dir);
	r = azl_mkdir_p(sub, err);
	free(sub);
	sub = azl_xasprintf("%s/tmp", c->dir);
	if (r == 0)
		r = azl_mkdir_p(sub, err);
	if (r == 0)
		r = db_open(c, err);
out:
	free(sub);
	if (r < 0) {
		azl_cache_close(c);
		return r;
	}
	*out = c;
	return 0;
}

void azl_cache_close(struct azl_cache *c)
{
	if (!c)
		return;
	if (c->db && c->nrows)
		azl_cache_batch_commit(c, NULL);
	for (size_t i = 0; i < c->nlocks; i++)
		close(c->locks[i].fd);
	free(c->locks);
	sqlite3_close(c->db);
	pthread_mutex_destroy(&c->mu);
	free(c->dir);
	free(c);
}

const char *azl_cache_dir(const struct azl_cache *c)
{
	return c->dir;
}

/* Flat, as in an OCI image layout: no per-prefix folder to create (ext4
 * and xfs index large folders), so a blob costs one inode. */
static char *blob_path(const struct azl_cache *c, const char *sha256)
{
	return azl_xasprintf("%s/blobs/sha256/%s", c->dir, sha256);
}

/* Index row's size for sha256: 1 found, 0 none, <0 error. */
static int row_size(struct azl_cache *c, const char *sha256, uint64_t *size)
{
	sqlite3_stmt *st = NULL;
	int rc, r;

	if (sqlite3_prepare_v2(c->db, "SELECT size FROM blobs WHERE sha256=?",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, sha256, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -EIO;
	if (r == 1)
		*size = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return r;
}

static int row_put(struct azl_cache *c, const char *sha256, uint64_t size,
		   const char *kind, const char *name)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(c->db, "INSERT OR REPLACE INTO blobs"
			       "(sha256, size, kind, name) VALUES(?,?,?,?)",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, sha256, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
	sqlite3_bind_text(st, 3, kind ? kind : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, name ? name : "", -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static void row_delete(struct azl_cache *c, const char *sha256)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(c->db, "DELETE FROM blobs WHERE sha256=?", -1,
			       &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_text(st, 1, sha256, -1, SQLITE_STATIC);
	sqlite3_step(st);
	sqlite3_finalize(st);
}

/* A blob without a row (a kill between rename and insert): keep it if its
 * bytes match its name. */
static int adopt(struct azl_cache *c, const char *path, const char *sha256)
{
	char hex[65];
	uint64_t size;

	if (azl_sha256_file(path, hex, &size, NULL) < 0)
		return 0;
	if (strcmp(hex, sha256)) {
		unlink(path);
		return 0;
	}
	return row_put(c, sha256, size, "adopted", "") == 0;
}

char *azl_cache_lookup(struct azl_cache *c, const char *sha256)
{
	char *path;
	struct stat st;
	uint64_t size = 0;
	int have_file, row;

	if (!azl_is_sha256_hex(sha256))
		return NULL;
	path = blob_path(c, sha256);
	have_file = stat(path, &st) == 0 && S_ISREG(st.st_mode);
	row = row_size(c, sha256, &size);
	if (row == 1 && have_file && (uint64_t)st.st_size == size)
		return path;
	if (row == 1)
		row_delete(c, sha256);
	if (row >= 0 && have_file && adopt(c, path, sha256))
		return path;
	free(path);
	return NULL;
}

void azl_cache_forget(struct azl_cache *c, const char *sha256)
{
	char *path;

	if (!azl_is_sha256_hex(sha256))
		return;
	path = blob_path(c, sha256);
	row_delete(c, sha256);
	unlink(path);
	free(path);
}

static int remember_lock(struct azl_cache *c, const char *sha256, int fd)
{
	pthread_mutex_lock(&c->mu);
	c->locks = azl_xrealloc(c->locks, (c->nlocks + 1) * sizeof(*c->locks));
	snprintf(c->locks[c->nlocks].sha256, 65, "%s", sha256);
	c->locks[c->nlocks].fd = fd;
	c->nlocks++;
	pthread_mutex_unlock(&c->mu);
	return 0;
}

static void release_lock(struct azl_cache *c, const char *sha256)
{
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->nlocks; i++) {
		if (strcmp(c->locks[i].sha256, sha256))
			continue;
		close(c->locks[i].fd);
		c->locks[i] = c->locks[--c->nlocks];
		break;
	}
	pthread_mutex_unlock(&c->mu);
}

void azl_cache_tmp_release(struct azl_cache *c, const char *sha256)
{
	release_lock(c, sha256);
}

char *azl_cache_tmp_path(struct azl_cache *c, const char *sha256)
{
	char *path = azl_xasprintf("%s/tmp/%s.part", c->dir, sha256);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
		remember_lock(c, sha256, fd);
		return path;
	}
	if (fd >= 0)
		close(fd);
	free(path);
	/* Someone else is downloading the same digest: use a name of our own. */
	path = azl_xasprintf("%s/tmp/%s.XXXXXX.part", c->dir, sha256);
	fd = mkostemps(path, 5, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		free(path);
		errno = e; /* the caller says why (a full disk, say) */
		return NULL;
	}
	close(fd);
	return path;
}

/* Make the verified temporary file read-only, then move it.  Not synced:
 * see the header comment. */
static int move_into_place(struct azl_cache *c, const char *tmp,
			   const char *sha256, struct azl_err *err)
{
	char *dst = blob_path(c, sha256);
	int r = 0;

	if (chmod(tmp, 0444) < 0)
		r = azl_errf(err, -errno, "%s: %s", tmp, strerror(errno));
	else if (rename(tmp, dst) < 0)
		r = azl_errf(err, -errno, "rename %s to %s: %s", tmp, dst,
			     strerror(errno));
	free(dst);
	return r;
}

static void defer_row(struct azl_cache *c, const char *sha256, uint64_t size,
		      const char *kind, const char *name)
{
	struct pending_row *row;

	pthread_mutex_lock(&c->mu);
	c->rows = azl_xrealloc(c->rows, (c->nrows + 1) * sizeof(*c->rows));
	row = &c->rows[c->nrows++];
	snprintf(row->sha256, sizeof(row->sha256), "%s", sha256);
	row->size = size;
	row->kind = azl_xstrdup(kind ? kind : "");
	row->name = azl_xstrdup(name ? name : "");
	pthread_mutex_unlock(&c->mu);
}

void azl_cache_batch_begin(struct azl_cache *c)
{
	c->batch = 1;
}

/* Rows of a batch in one transaction. */
int azl_cache_batch_commit(struct azl_cache *c, struct azl_err *err)
{
	int r = 0;

	c->batch = 0;
	if (!c->nrows)
		return 0;
	if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		r = db_fail(c, err, "begin");
	for (size_t i = 0; r == 0 && i < c->nrows; i++)
		if (row_put(c, c->rows[i].sha256, c->rows[i].size, c->rows[i].kind,
			    c->rows[i].name) < 0)
			r = db_fail(c, err, "insert");
	if (r == 0 && sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		r = db_fail(c, err, "commit");
	if (r < 0)
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	for (size_t i = 0; i < c->nrows; i++) {
		free(c->rows[i].kind);
		free(c->rows[i].name);
	}
	free(c->rows);
	c->rows = NULL;
	c->nrows = 0;
	return r;
}

static int insert(struct azl_cache *c, const char *tmp_path,
		  const char *sha256, uint64_t size, const char *kind,
		  const char *name, bool hashed, struct azl_err *err)
{
	char hex[65];
	uint64_t got;
	struct stat st;
	int r = 0;

	if (hashed) {
		/* The caller hashed these very bytes as it wrote them. */
		if (stat(tmp_path, &st) < 0) {
			r = azl_errf(err, -errno, "%s: %s", tmp_path, strerror(errno));
			goto out;
		}
		got = (uint64_t)st.st_size;
		memcpy(hex, sha256, sizeof(hex));
		hex[64] = '\0';
	} else if ((r = azl_sha256_file(tmp_path, hex, &got, err)) < 0) {
		goto out;
	}
	if (strcmp(hex, sha256) || (size && got != size)) {
		r = azl_errf(err, -EBADMSG, "%s: %s: expected sha256 %s (%llu bytes), "
			     "got %s (%llu bytes)", name ? name : "", tmp_path,
			     sha256, (unsigned long long)size, hex,
			     (unsigned long long)got);
		unlink(tmp_path);
		goto out;
	}
	r = move_into_place(c, tmp_path, sha256, err);
	if (r == 0 && c->batch)
		defer_row(c, sha256, got, kind, name);
	else if (r == 0 && row_put(c, sha256, got, kind, name) < 0)
		r = db_fail(c, err, "insert");
out:
	release_lock(c, sha256);
	return r;
}

int azl_cache_insert(struct azl_cache *c, const char *tmp_path,
		     const char *sha256, uint64_t size, const char *kind,
		     const char *name, struct azl_err *err)
{
	return insert(c, tmp_path, sha256, size, kind, name, false, err);
}

int azl_cache_insert_hashed(struct azl_cache *c, const char *tmp_path,
			    const char *sha256, uint64_t size, const char *kind,
			    const char *name, struct azl_err *err)
{
	return insert(c, tmp_path, sha256, size, kind, name, true, err);
}

/* Every row must name a blob of that size and digest. */
static int check_rows(struct azl_cache *c, struct azl_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	if (sqlite3_prepare_v2(c->db, "SELECT sha256, size FROM blobs ORDER BY sha256",
			       -1, &st, NULL) != SQLITE_OK)
		return db_fail(c, err, "query");
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *sha = (const char *)sqlite3_column_text(st, 0);
		uint64_t size = (uint64_t)sqlite3_column_int64(st, 1), got;
		char *path = blob_path(c, sha), hex[65];
		if (azl_sha256_file(path, hex, &got, err) < 0)
			r = azl_err_prefix(err, "index row %s", sha);
		else if (strcmp(hex, sha) || got != size)
			r = azl_errf(err, -EBADMSG, "%s: content is sha256 %s "
				     "(%llu bytes), index says %s (%llu bytes)",
				     path, hex, (unsigned long long)got, sha,
				     (unsigned long long)size);
		free(path);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_fail(c, err, "query");
	sqlite3_finalize(st);
	return r;
}

static int check_integrity(struct azl_cache *c, struct azl_err *err)
{
	sqlite3_stmt *st = NULL;
	int r = 0;

	if (sqlite3_prepare_v2(c->db, "PRAGMA integrity_check", -1, &st,
			       NULL) != SQLITE_OK)
		return db_fail(c, err, "integrity_check");
	if (sqlite3_step(st) != SQLITE_ROW)
		r = db_fail(c, err, "integrity_check");
	else if (strcmp((const char *)sqlite3_column_text(st, 0), "ok"))
		r = azl_errf(err, -EBADMSG, "%s/index.sqlite: integrity_check: %s",
			     c->dir, (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return r;
}

/* Blobs without rows are allowed (adopted later) but must match their
 * names; rows were checked already. */
static int check_blobs(struct azl_cache *c, struct azl_err *err)
{
	char *dir = azl_xasprintf("%s/blobs/sha256", c->dir);
	struct dirent **ents = NULL;
	int n = scandir(dir, &ents, NULL, alphasort), r = 0;

	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		char *path = azl_path_join(dir, name), hex[65];
		uint64_t size;
		if (r == 0 && azl_is_sha256_hex(name) && row_size(c, name, &size) == 0 &&
		    azl_sha256_file(path, hex, NULL, err) == 0 && strcmp(hex, name))
			r = azl_errf(err, -EBADMSG, "%s: content is sha256 %s",
				     path, hex);
		free(path);
		free(ents[i]);
	}
	free(ents);
	free(dir);
	return r;
}

int azl_cache_check(struct azl_cache *c, struct azl_err *err)
{
	int r = check_integrity(c, err);
	if (r == 0)
		r = check_rows(c, err);
	if (r == 0)
		r = check_blobs(c, err);
	return r;
}
