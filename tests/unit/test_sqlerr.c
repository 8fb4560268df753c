/* base/sqlerr: a database that cannot grow reads as ENOSPC (sqlite's own
 * text says "database or disk is full" and its errno is cleared), an
 * unopenable file as the open's errno, and sqlite's own errors (a syntax
 * error, a constraint) as no system error at all. */
#include <errno.h>
#include <sqlite3.h>

#include "base/sqlerr.h"
#include "t.h"

static void test_full(void)
{
	sqlite3 *db = NULL;
	int rc;

	CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "PRAGMA max_page_count=2; CREATE TABLE t(x BLOB);",
			   NULL, NULL, NULL) == SQLITE_OK);
	rc = sqlite3_exec(db, "INSERT INTO t VALUES (zeroblob(100000));", NULL, NULL, NULL);
	CHECK(rc == SQLITE_FULL);
	CHECK(azl_sqlite_errno(db, rc) == ENOSPC);
	CHECK(azl_sqlite_errno(db, 0) == ENOSPC); /* db's last error */
	CHECK(azl_sqlite_errno(NULL, SQLITE_FULL) == ENOSPC);
	/* Not the system's doing: no errno. */
	rc = sqlite3_exec(db, "SELEC 1;", NULL, NULL, NULL);
	CHECK(rc == SQLITE_ERROR);
	CHECK(azl_sqlite_errno(db, rc) == 0);
	sqlite3_close(db);
}

static void test_cantopen(void)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2("/nonexistent-dir/azl/x.sqlite", &db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);

	CHECK(rc == SQLITE_CANTOPEN);
	CHECK(azl_sqlite_errno(db, rc) == ENOENT);
	sqlite3_close(db);
}

int main(void)
{
	test_full();
	test_cantopen();
	return t_done();
}
