/* sqlite failures as errno values, so that a full disk reads as "No space
 * left on device" wherever sqlite meets it (the cache index, the image's
 * rpmdb) instead of sqlite's "database or disk is full". */
#ifndef AZL_BASE_SQLERR_H
#define AZL_BASE_SQLERR_H

#include <sqlite3.h>

/* The system's errno behind failure rc on db (rc 0: db's last error):
 * ENOSPC for SQLITE_FULL (sqlite clears the errno it saw), the saved errno
 * of an I/O or open error; 0 when the failure was not the system's. */
int azl_sqlite_errno(sqlite3 *db, int rc);

#endif
