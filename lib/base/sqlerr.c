#include "base/sqlerr.h"

#include <errno.h>

int azl_sqlite_errno(sqlite3 *db, int rc)
{
	int ec = (rc ? rc : (db ? sqlite3_errcode(db) : SQLITE_ERROR)) & 0xff;
	int sys = db ? sqlite3_system_errno(db) : 0;

	if (ec == SQLITE_FULL)
		return ENOSPC;
	if (sys > 0 && (ec == SQLITE_IOERR || ec == SQLITE_CANTOPEN))
		return sys;
	return 0;
}
