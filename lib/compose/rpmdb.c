/* The image's rpmdb.sqlite, written the way rpm >= 4.16 writes it.
 *
 * The table layout, index keys and insertion order follow rpm's sqlite
 * backend (lib/backend/sqlite.c) and rpmdbAdd()/tag2index() (lib/rpmdb.c);
 * the installed header is the package header as rpmReadPackageFile()
 * returns it plus the tags rpm's psm.c dbAdd() and relocation add. */
#include "compose/rpmdb.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rpm/header.h>
#include <rpm/rpmds.h>
#include <rpm/rpmio.h>
#include <rpm/rpmkeyring.h>
#include <rpm/rpmlib.h>
#include <rpm/rpmtag.h>
#include <rpm/rpmtd.h>
#include <rpm/rpmts.h>
#include <sqlite3.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/sqlerr.h"
#include "compose/fsmodel.h"
#include "compose/rpmread.h"

/* rpm's secondary indexes, in rpm's order (newRpmdb() dbiTags): tables
 * are created and filled in this order, which fixes the page layout. */
static const struct {
	rpmTagVal tag;
	const char *name;
} idx_tags[] = {
	{ RPMTAG_NAME, "Name" },
	{ RPMTAG_BASENAMES, "Basenames" },
	{ RPMTAG_GROUP, "Group" },
	{ RPMTAG_REQUIRENAME, "Requirename" },
	{ RPMTAG_PROVIDENAME, "Providename" },
	{ RPMTAG_CONFLICTNAME, "Conflictname" },
	{ RPMTAG_OBSOLETENAME, "Obsoletename" },
	{ RPMTAG_TRIGGERNAME, "Triggername" },
	{ RPMTAG_DIRNAMES, "Dirnames" },
	{ RPMTAG_INSTALLTID, "Installtid" },
	{ RPMTAG_SIGMD5, "Sigmd5" },
	{ RPMTAG_SHA1HEADER, "Sha1header" },
	{ RPMTAG_FILETRIGGERNAME, "Filetriggername" },
	{ RPMTAG_TRANSFILETRIGGERNAME, "Transfiletriggername" },
	{ RPMTAG_RECOMMENDNAME, "Recommendname" },
	{ RPMTAG_SUGGESTNAME, "Suggestname" },
	{ RPMTAG_SUPPLEMENTNAME, "Supplementname" },
	{ RPMTAG_ENHANCENAME, "Enhancename" },
};
#define NIDX (sizeof(idx_tags) / sizeof(idx_tags[0]))

struct azl_rpmdb {
	sqlite3 *sql;
	sqlite3_stmt *pkg_stmt;
	sqlite3_stmt *idx_stmt[NIDX];
	rpmts ts;
	char *tmp_path;
	char *final_path;
	char **nevras; /* added so far, and the file each came from */
	char **from;
	size_t n;
	uint32_t install_time;
	uint32_t color;
};

const char *const *azl_rpmdb_tables(size_t *n)
{
	static const char *names[NIDX + 1];

	names[0] = "Packages";
	for (size_t i = 0; i < NIDX; i++)
		names[i + 1] = idx_tags[i].name;
	*n = NIDX + 1;
	return names;
}

static int sql_fail(struct azl_rpmdb *db, int rc, const char *what,
		    struct azl_err *err)
{
	const char *msg = db->sql ? sqlite3_errmsg(db->sql) : sqlite3_errstr(rc);
	int sys = azl_sqlite_errno(db->sql, rc);

	if (sys)
		return azl_errf(err, -sys, "%s: sqlite: %s: %s: %s", db->final_path,
				what, msg, strerror(sys));
	return azl_errf(err, -EIO, "%s: sqlite: %s: %s", db->final_path, what, msg);
}

static int sql_exec(struct azl_rpmdb *db, const char *stmt,
		    struct azl_err *err)
{
	int rc = sqlite3_exec(db->sql, stmt, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sql_fail(db, rc, stmt, err);
}

static int is_string_index(rpmTagVal tag)
{
	return rpmTagGetClass(tag) == RPM_STRING_CLASS;
}

/* Table and indexes for one rpm index, as sqlite.c init_table() and
 * init_index() create them (same text: sqlite keeps it in the schema). */
static int create_index_table(struct azl_rpmdb *db, size_t i,
			      struct azl_err *err)
{
	const char *name = idx_tags[i].name;
	rpmTagVal tag = idx_tags[i].tag;
	char *sql = NULL;
	int rc;

	sql = sqlite3_mprintf("CREATE TABLE IF NOT EXISTS '%q' ("
			      "key '%q' NOT NULL, hnum INTEGER NOT NULL, "
			      "idx INTEGER NOT NULL, "
			      "FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum))",
			      name, is_string_index(tag) ? "TEXT" : "BLOB");
	rc = sql_exec(db, sql, err);
	sqlite3_free(sql);
	if (rc == 0 && is_string_index(tag)) {
		sql = sqlite3_mprintf("CREATE INDEX IF NOT EXISTS '%s_key_idx' "
				      "ON '%q'(key ASC)", name, name);
		rc = sql_exec(db, sql, err);
		sqlite3_free(sql);
	}
	if (rc == 0 && rpmTagGetReturnType(tag) == RPM_ARRAY_RETURN_TYPE) {
		sql = sqlite3_mprintf("CREATE INDEX IF NOT EXISTS '%s_hnum_idx' "
				      "ON '%q'(hnum ASC)", name, name);
		rc = sql_exec(db, sql, err);
		sqlite3_free(sql);
	}
	return rc;
}

static int prepare(struct azl_rpmdb *db, const char *table, int ncols,
		   sqlite3_stmt **stmt, struct azl_err *err)
{
	char *sql = sqlite3_mprintf("INSERT INTO '%q' VALUES(?, ?%s)", table,
				    ncols == 3 ? ", ?" : "");
	int rc = sqlite3_prepare_v2(db->sql, sql, -1, stmt, NULL);

	sqlite3_free(sql);
	return rc == SQLITE_OK ? 0 : sql_fail(db, rc, "prepare insert", err);
}

/* Fixed settings: nothing about the host's sqlite defaults reaches the
 * file.  The journal lives in memory because a failed build discards the
 * temporary file anyway; the file header still says rollback mode. */
static int create_schema(struct azl_rpmdb *db, struct azl_err *err)
{
	static const char *setup[] = {
		"PRAGMA page_size = 4096",
		"PRAGMA auto_vacuum = NONE",
		"PRAGMA encoding = 'UTF-8'",
		"PRAGMA locking_mode = EXCLUSIVE",
		"PRAGMA journal_mode = MEMORY",
		"PRAGMA synchronous = OFF",
		"BEGIN TRANSACTION",
		("CREATE TABLE IF NOT EXISTS 'Packages' ("
		 "hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL)"),
	};
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < sizeof(setup) / sizeof(setup[0]); i++)
		rc = sql_exec(db, setup[i], err);
	for (size_t i = 0; rc == 0 && i < NIDX; i++)
		rc = create_index_table(db, i, err);
	if (rc == 0)
		rc = prepare(db, "Packages", 2, &db->pkg_stmt, err);
	for (size_t i = 0; rc == 0 && i < NIDX; i++)
		rc = prepare(db, idx_tags[i].name, 3, &db->idx_stmt[i], err);
	return rc;
}

/* A transaction set only for reading headers: signatures and digests are
 * not checked here (fetch checked the files against the lock), and an
 * empty keyring keeps librpm from opening the host's rpm database. */
static rpmts header_reader(void)
{
	rpmts ts;
	rpmKeyring kr;

	azl_rpm_config_init();
	ts = rpmtsCreate();
	kr = rpmKeyringNew();
	rpmtsSetKeyring(ts, kr);
	rpmKeyringFree(kr);
	rpmtsSetVSFlags(ts, RPMVSF_MASK_NODIGESTS | RPMVSF_MASK_NOSIGNATURES);
	return ts;
}

static void release(struct azl_rpmdb *db)
{
	if (!db)
		return;
	sqlite3_finalize(db->pkg_stmt);
	for (size_t i = 0; i < NIDX; i++)
		sqlite3_finalize(db->idx_stmt[i]);
	sqlite3_close(db->sql);
	if (db->ts)
		rpmtsFree(db->ts);
	for (size_t i = 0; i < db->n; i++) {
		free(db->nevras[i]);
		free(db->from[i]);
	}
	free(db->nevras);
	free(db->from);
	free(db->tmp_path);
	free(db->final_path);
	free(db);
}

static int make_tmp(struct azl_rpmdb *db, struct azl_err *err)
{
	int fd;

	db->tmp_path = azl_xasprintf("%s.tmp-XXXXXX", db->final_path);
	fd = mkstemp(db->tmp_path);
	if (fd < 0) {
		int rc = azl_errf(err, -errno, "%s: cannot create: %s",
				  db->tmp_path, strerror(errno));
		free(db->tmp_path);
		db->tmp_path = NULL;
		return rc;
	}
	/* rpm creates its database 0644; no umask involved. */
	if (fchmod(fd, 0644) < 0) {
		int rc = azl_errf(err, -errno, "%s: chmod: %s", db->tmp_path,
				  strerror(errno));
		close(fd);
		return rc;
	}
	close(fd);
	return 0;
}

int azl_rpmdb_open(struct azl_rpmdb **out, const char *db_path,
		   int64_t install_time, struct azl_err *err)
{
	struct azl_rpmdb *db = azl_xcalloc(1, sizeof(*db));
	int rc;

	*out = NULL;
	db->final_path = azl_xstrdup(db_path);
	db->color = AZL_RPMDB_COLOR_DEFAULT;
	if (install_time < 0 || install_time > UINT32_MAX) {
		rc = azl_err_input(err, "%s: install time %lld does not fit rpm's "
				   "32-bit INSTALLTIME", db_path,
				   (long long)install_time);
		goto out;
	}
	db->install_time = (uint32_t)install_time;
	rc = make_tmp(db, err);
	if (rc)
		goto out;
	rc = sqlite3_open_v2(db->tmp_path, &db->sql, SQLITE_OPEN_READWRITE, NULL);
	if (rc != SQLITE_OK) {
		rc = sql_fail(db, rc, "open", err);
		goto out;
	}
	rc = create_schema(db, err);
	if (rc)
		goto out;
	db->ts = header_reader();
	*out = db;
	return 0;
out:
	azl_rpmdb_abort(db);
	return rc;
}

void azl_rpmdb_set_color(struct azl_rpmdb *db, uint32_t color)
{
	db->color = color;
}

void azl_rpmdb_abort(struct azl_rpmdb *db)
{
	if (!db)
		return;
	if (db->tmp_path)
		unlink(db->tmp_path);
	release(db);
}

/* ---- the installed header ---- */

static int read_header(struct azl_rpmdb *db, const char *path, Header *h,
		       struct azl_err *err)
{
	FD_t fd = Fopen(path, "r.ufdio");
	rpmRC rrc;

	*h = NULL;
	if (fd == NULL || Ferror(fd)) {
		int rc = azl_errf(err, -ENOENT, "%s: cannot open package: %s",
				  path, fd ? Fstrerror(fd) : strerror(errno));
		if (fd)
			Fclose(fd);
		return rc;
	}
	rrc = rpmReadPackageFile(db->ts, fd, path, h);
	Fclose(fd);
	if (rrc != RPMRC_OK && rrc != RPMRC_NOKEY && rrc != RPMRC_NOTTRUSTED) {
		if (*h)
			*h = headerFree(*h);
		return azl_errf(err, -EINVAL, "%s: not a readable rpm package", path);
	}
	if (headerIsSource(*h)) {
		*h = headerFree(*h);
		return azl_err_input(err, "%s: is a source package; it cannot be "
				     "installed", path);
	}
	return 0;
}

static rpm_count_t tag_count(Header h, rpmTagVal tag)
{
	struct rpmtd_s td;
	rpm_count_t n = 0;

	if (headerGet(h, tag, &td, HEADERGET_MINMEM))
		n = rpmtdCount(&td);
	rpmtdFreeData(&td);
	return n;
}

/* rpmRelocateFileList() without relocations: a relocatable package gets
 * INSTPREFIXES = PREFIXES (scriptlets read RPM_INSTALL_PREFIX from it). */
static void add_instprefixes(Header h, rpm_count_t nfiles)
{
	struct rpmtd_s td;

	if (nfiles == 0 || headerIsEntry(h, RPMTAG_ORIGBASENAMES) ||
	    headerIsEntry(h, RPMTAG_INSTPREFIXES))
		return;
	if (headerGet(h, RPMTAG_PREFIXES, &td, HEADERGET_MINMEM)) {
		rpmtdSetTag(&td, RPMTAG_INSTPREFIXES);
		headerPut(h, &td, HEADERPUT_DEFAULT);
	}
	rpmtdFreeData(&td);
}

static void put_u32(Header h, rpmTagVal tag, uint32_t v)
{
	headerDel(h, tag);
	headerPutUint32(h, tag, &v, 1);
}

/* What psm.c dbAdd() stores: file states, transaction id, install time,
 * install color, in that order. */
static int add_install_tags(struct azl_rpmdb *db, Header h,
			    const struct azl_rpmdb_pkg *pkg, struct azl_err *err)
{
	rpm_count_t nfiles = tag_count(h, RPMTAG_BASENAMES);
	char *states;

	if (pkg->fstates && pkg->nfstates != nfiles)
		return azl_errf(err, -EINVAL, "%s: %zu file states given for %u "
				"files", pkg->rpm_path, pkg->nfstates,
				(unsigned)nfiles);
	add_instprefixes(h, nfiles);
	if (nfiles > 0) {
		states = azl_xcalloc(nfiles, 1);
		if (pkg->fstates)
			memcpy(states, pkg->fstates, nfiles);
		headerDel(h, RPMTAG_FILESTATES);
		headerPutChar(h, RPMTAG_FILESTATES, states, nfiles);
		free(states);
	}
	put_u32(h, RPMTAG_INSTALLTID, db->install_time);
	put_u32(h, RPMTAG_INSTALLTIME, db->install_time);
	put_u32(h, RPMTAG_INSTALLCOLOR, db->color);
	return 0;
}

/* ---- index keys (rpmdb.c tag2index) ---- */

struct idx_put {
	struct azl_rpmdb *db;
	sqlite3_stmt *stmt;
	int text;
	unsigned hnum;
	unsigned tagnum;
	int rc;
};

static void idx_put(struct idx_put *p, const void *key, size_t len)
{
	sqlite3_stmt *s = p->stmt;
	int rc;

	if (p->rc)
		return;
	rc = p->text ? sqlite3_bind_text(s, 1, key, (int)len, SQLITE_STATIC)
		     : sqlite3_bind_blob(s, 1, key, (int)len, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 2, (int)p->hnum);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 3, (int)p->tagnum);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	sqlite3_reset(s);
	p->rc = (rc == SQLITE_DONE || rc == SQLITE_OK) ? 0 : rc;
}

/* Rich dependencies: every simple name inside is indexed too, sorted and
 * deduplicated, names under if/unless negated with a '!' prefix; rpmlib()
 * names are left out (rpmdb.c updateRichDepCB). */
struct rich {
	char **names;
	size_t n, cap;
	int neg;
	int level;
	size_t *level_start; /* names count when each level was entered */
};

static void rich_add(struct rich *r, char *name)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 8;
		r->names = azl_xrealloc(r->names, r->cap * sizeof(*r->names));
	}
	r->names[r->n++] = name;
}

static rpmRC rich_cb(void *cbdata, rpmrichParseType type, const char *n,
		     int nl, const char *e, int el, rpmsenseFlags sense,
		     rpmrichOp op, char **emsg)
{
	struct rich *r = cbdata;

	if (type == RPMRICH_PARSE_ENTER) {
		r->level++;
		r->level_start = azl_xrealloc(r->level_start,
					      r->level * sizeof(size_t));
		r->level_start[r->level - 1] = r->n;
	}
	if (type == RPMRICH_PARSE_LEAVE)
		r->level--;
	if (type == RPMRICH_PARSE_SIMPLE && nl &&
	    !(nl > 7 && !strncmp(n, "rpmlib(", 7)))
		rich_add(r, azl_xasprintf("%c%.*s", r->neg ? '!' : ' ', nl, n));
	if (type == RPMRICH_PARSE_OP &&
	    (op == RPMRICHOP_IF || op == RPMRICHOP_UNLESS)) {
		r->level_start[r->level - 1] = r->n;
		r->neg ^= 1;
	}
	if (type == RPMRICH_PARSE_OP && op == RPMRICHOP_ELSE) {
		size_t end = r->n;
		/* The else branch also applies when the condition fails:
		 * repeat the condition's names with the sign flipped. */
		for (size_t i = r->level_start[r->level - 1]; i < end; i++) {
			char *c = azl_xstrdup(r->names[i]);
			c[0] = c[0] == '!' ? ' ' : '!';
			rich_add(r, c);
		}
		r->neg ^= 1;
	}
	if (type == RPMRICH_PARSE_LEAVE &&
	    (op == RPMRICHOP_IF || op == RPMRICHOP_UNLESS))
		r->neg ^= 1;
	return RPMRC_OK;
}

static int strp_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void put_rich(struct idx_put *p, const char *dep)
{
	struct rich r = { 0 };

	r.level_start = azl_xcalloc(1, sizeof(size_t));
	if (rpmrichParse(&dep, NULL, rich_cb, &r) == RPMRC_OK && r.n) {
		qsort(r.names, r.n, sizeof(*r.names), strp_cmp);
		for (size_t i = 0; i < r.n; i++) {
			const char *name = r.names[i];
			if (i && !strcmp(r.names[i - 1], name))
				continue;
			if (*name == ' ')
				name++;
			idx_put(p, name, strlen(name));
		}
	}
	for (size_t i = 0; i < r.n; i++)
		free(r.names[i]);
	free(r.names);
	free(r.level_start);
}

static int is_rich_tag(rpmTagVal tag)
{
	return tag == RPMTAG_REQUIRENAME || tag == RPMTAG_CONFLICTNAME ||
	       tag == RPMTAG_SUGGESTNAME || tag == RPMTAG_SUPPLEMENTNAME ||
	       tag == RPMTAG_RECOMMENDNAME || tag == RPMTAG_ENHANCENAME;
}

/* td2key(): the key bytes of the current element; NULL to skip. */
static const void *td_key(rpmtd td, size_t *len)
{
	const char *s;

	switch (rpmtdType(td)) {
	case RPM_CHAR_TYPE:
	case RPM_INT8_TYPE:
		*len = 1;
		return rpmtdGetChar(td);
	case RPM_INT16_TYPE:
		*len = 2;
		return rpmtdGetUint16(td);
	case RPM_INT32_TYPE:
		*len = 4;
		return rpmtdGetUint32(td);
	case RPM_INT64_TYPE:
		*len = 8;
		return rpmtdGetUint64(td);
	case RPM_BIN_TYPE:
		*len = td->count; /* rpmtdCount() says 1 for binary data */
		return td->data;
	case RPM_STRING_TYPE:
	case RPM_I18NSTRING_TYPE:
	case RPM_STRING_ARRAY_TYPE:
		s = rpmtdGetString(td);
		if (s)
			*len = strlen(s);
		return s;
	default:
		return NULL;
	}
}

/* Should element i (current in td) be skipped, as rpm skips it? */
static int skip_element(rpmTagVal tag, rpmtd td, rpmtd reqflags, int i)
{
	if (tag == RPMTAG_REQUIRENAME) {
		/* Install-only prerequisites (post, rpmlib...) are transient. */
		uint32_t *f = rpmtdNextUint32(reqflags);
		return f && isTransientReq(*f);
	}
	if (tag == RPMTAG_TRIGGERNAME && i > 0) {
		const char **names = td->data;
		for (int j = 0; j < i; j++)
			if (!strcmp(names[j], names[i]))
				return 1;
	}
	return 0;
}

/* Group is an i18n string: index the untranslated ("C") value whatever
 * the host's locale; a package without one is indexed as "Unknown". */
static int get_tag(Header h, rpmTagVal tag, rpmtd td)
{
	static const char *unknown = "Unknown";

	if (tag != RPMTAG_GROUP)
		return headerGet(h, tag, td, HEADERGET_MINMEM) &&
		       rpmtdCount(td) > 0;
	if (headerGet(h, tag, td, HEADERGET_MINMEM | HEADERGET_RAW) &&
	    rpmtdCount(td) > 0) {
		td->count = 1; /* element 0 is the untranslated one */
		return 1;
	}
	rpmtdFreeData(td);
	td->type = RPM_STRING_TYPE;
	td->data = (void *)unknown;
	td->count = 1;
	return 1;
}

static int index_tag(struct azl_rpmdb *db, size_t ix, Header h, unsigned hnum)
{
	rpmTagVal tag = idx_tags[ix].tag;
	struct rpmtd_s td, reqflags, trig;
	struct idx_put p = { db, db->idx_stmt[ix], is_string_index(tag), hnum,
			     0, 0 };
	int i;

	rpmtdReset(&reqflags);
	rpmtdReset(&trig);
	if (tag == RPMTAG_REQUIRENAME)
		headerGet(h, RPMTAG_REQUIREFLAGS, &reqflags, HEADERGET_MINMEM);
	if (tag == RPMTAG_FILETRIGGERNAME)
		headerGet(h, RPMTAG_FILETRIGGERINDEX, &trig, HEADERGET_MINMEM);
	if (tag == RPMTAG_TRANSFILETRIGGERNAME)
		headerGet(h, RPMTAG_TRANSFILETRIGGERINDEX, &trig, HEADERGET_MINMEM);
	if (!get_tag(h, tag, &td))
		goto out;
	while ((i = rpmtdNext(&td)) >= 0 && p.rc == 0) {
		const void *key;
		size_t len = 0;

		/* File triggers record their trigger index, the rest the
		 * element number (Basenames: the file's index). */
		if (tag == RPMTAG_FILETRIGGERNAME ||
		    tag == RPMTAG_TRANSFILETRIGGERNAME) {
			uint32_t *t = rpmtdNextUint32(&trig);
			p.tagnum = t ? *t : 0;
		} else {
			p.tagnum = (unsigned)i;
		}
		if (skip_element(tag, &td, &reqflags, i))
			continue;
		key = td_key(&td, &len);
		if (!key)
			continue;
		idx_put(&p, key, len);
		if (*(const char *)key == '(' && is_rich_tag(tag) &&
		    rpmtdType(&td) == RPM_STRING_ARRAY_TYPE)
			put_rich(&p, rpmtdGetString(&td));
	}
out:
	rpmtdFreeData(&td);
	rpmtdFreeData(&reqflags);
	rpmtdFreeData(&trig);
	return p.rc;
}

static int store(struct azl_rpmdb *db, Header h, const char *path,
		 struct azl_err *err)
{
	unsigned int len = 0;
	void *blob = headerExport(h, &len);
	sqlite3_stmt *s = db->pkg_stmt;
	unsigned hnum;
	int rc;

	if (!blob || len == 0) {
		free(blob);
		return azl_errf(err, -EINVAL, "%s: cannot export header", path);
	}
	rc = sqlite3_bind_null(s, 1);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_blob(s, 2, blob, (int)len, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	sqlite3_reset(s);
	free(blob);
	if (rc != SQLITE_DONE)
		return sql_fail(db, rc, path, err);
	hnum = (unsigned)sqlite3_last_insert_rowid(db->sql);
	for (size_t i = 0; i < NIDX; i++) {
		rc = index_tag(db, i, h, hnum);
		if (rc)
			return sql_fail(db, rc, idx_tags[i].name, err);
	}
	return 0;
}

/* rpm refuses a second copy of an installed NEVRA ("already installed"). */
static int remember(struct azl_rpmdb *db, Header h, const char *path,
		    struct azl_err *err)
{
	char *nevra = headerGetAsString(h, RPMTAG_NEVRA);

	for (size_t i = 0; i < db->n; i++) {
		if (strcmp(db->nevras[i], nevra) == 0) {
			int rc = azl_err_input(err, "%s: %s is already in the "
					       "database (from %s)", path, nevra,
					       db->from[i]);
			free(nevra);
			return rc;
		}
	}
	db->nevras = azl_xrealloc(db->nevras, (db->n + 1) * sizeof(char *));
	db->from = azl_xrealloc(db->from, (db->n + 1) * sizeof(char *));
	db->nevras[db->n] = nevra;
	db->from[db->n++] = azl_xstrdup(path);
	return 0;
}

int azl_rpmdb_add(struct azl_rpmdb *db, const struct azl_rpmdb_pkg *pkg,
		  struct azl_err *err)
{
	Header h = NULL;
	int rc;

	rc = read_header(db, pkg->rpm_path, &h, err);
	if (rc)
		goto out;
	rc = remember(db, h, pkg->rpm_path, err);
	if (rc)
		goto out;
	rc = add_install_tags(db, h, pkg, err);
	if (rc)
		goto out;
	rc = store(db, h, pkg->rpm_path, err);
out:
	if (h)
		headerFree(h);
	return rc;
}

static int copy_file(const char *from, const char *to, struct azl_err *err)
{
	struct azl_out o = { .fd = -1 };
	char buf[65536];
	ssize_t r;
	int fd, rc;

	fd = open(from, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return azl_errf(err, -errno, "%s: %s", from, strerror(errno));
	rc = azl_out_open(&o, to, 0644, err);
	while (rc == 0 && (r = read(fd, buf, sizeof(buf))) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = azl_errf(err, -errno, "%s: read: %s", from,
				      strerror(errno));
			break;
		}
		azl_out_write(&o, buf, (size_t)r);
	}
	close(fd);
	if (rc) {
		azl_out_abort(&o);
		return rc;
	}
	return azl_out_commit(&o, err);
}

int azl_rpmdb_snapshot(struct azl_rpmdb *db, const char *path,
		       struct azl_err *err)
{
	int rc;

	/* Committed pages are all in the file (the journal is in memory and
	 * the lock is ours), so a byte copy is a consistent database. */
	rc = sql_exec(db, "COMMIT", err);
	if (rc == 0)
		rc = copy_file(db->tmp_path, path, err);
	if (rc == 0)
		rc = sql_exec(db, "BEGIN TRANSACTION", err);
	return rc;
}

static int fsync_path(const char *path, struct azl_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0 || fsync(fd) < 0)
		rc = azl_errf(err, -errno, "%s: fsync: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

int azl_rpmdb_commit(struct azl_rpmdb *db, struct azl_err *err)
{
	int rc;

	rc = sql_exec(db, "COMMIT", err);
	if (rc)
		goto out;
	/* Close first: sqlite may still hold pages until then. */
	sqlite3_finalize(db->pkg_stmt);
	db->pkg_stmt = NULL;
	for (size_t i = 0; i < NIDX; i++) {
		sqlite3_finalize(db->idx_stmt[i]);
		db->idx_stmt[i] = NULL;
	}
	rc = sqlite3_close(db->sql);
	db->sql = NULL;
	if (rc != SQLITE_OK) {
		rc = sql_fail(db, rc, "close", err);
		goto out;
	}
	rc = fsync_path(db->tmp_path, err);
	if (rc)
		goto out;
	if (rename(db->tmp_path, db->final_path) < 0) {
		rc = azl_errf(err, -errno, "%s: rename: %s", db->final_path,
			      strerror(errno));
		goto out;
	}
	free(db->tmp_path);
	db->tmp_path = NULL;
out:
	azl_rpmdb_abort(db);
	return rc;
}

int azl_rpmdb_write(const char *db_path, const struct azl_rpmdb_pkg *pkgs,
		    size_t n, int64_t install_time, struct azl_err *err)
{
	struct azl_rpmdb *db = NULL;
	int rc;

	rc = azl_rpmdb_open(&db, db_path, install_time, err);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = azl_rpmdb_add(db, &pkgs[i], err);
	if (rc) {
		azl_rpmdb_abort(db);
		return rc;
	}
	return azl_rpmdb_commit(db, err);
}

/* ---- the database in the image model ---- */

static int model_dirs(struct azl_fs *fs, const char *dir, int64_t mtime,
		      struct azl_err *err)
{
	char *p = azl_xstrdup(dir);
	int rc = 0;

	/* Each prefix of the (already resolved) path, shortest first. */
	for (char *s = p + 1; rc == 0; s++) {
		char save = *s;
		if (save != '/' && save != '\0')
			continue;
		*s = '\0';
		if (!azl_fs_get(fs, p)) {
			struct azl_node n = { .path = azl_xstrdup(p),
					      .type = AZL_FT_DIR, .mode = 0755,
					      .mtime = mtime };
			rc = azl_fs_add(fs, &n, err);
			azl_node_release(&n);
		}
		*s = save;
		if (save == '\0')
			break;
	}
	free(p);
	return rc;
}

int azl_rpmdb_to_model(struct azl_fs *fs, const char *db_file,
		       const char *dbpath, int64_t mtime, struct azl_err *err)
{
	struct azl_node n = { 0 };
	struct stat st;
	char *dir = NULL;
	int rc;

	if (stat(db_file, &st) < 0)
		return azl_errf(err, -errno, "%s: %s", db_file, strerror(errno));
	rc = azl_fs_resolve(fs, dbpath, true, &dir, err);
	if (rc == 0 && strcmp(dir, "/") != 0)
		rc = model_dirs(fs, dir, mtime, err);
	if (rc)
		goto out;
	n.path = azl_path_join(dir, "rpmdb.sqlite");
	n.type = AZL_FT_REG;
	n.mode = 0644;
	n.mtime = mtime;
	n.size = (uint64_t)st.st_size;
	n.data_path = azl_xstrdup(db_file);
	rc = azl_fs_put(fs, &n, err);
out:
	azl_node_release(&n);
	free(dir);
	if (rc)
		azl_err_prefix(err, "rpm database in the image");
	return rc;
}
