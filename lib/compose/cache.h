/* The content-addressed cache.
 *
 * Layout under DIR ($XDG_CACHE_HOME/azl-compose, else ~/.cache/azl-compose,
 * or --cache-dir):
 *   blobs/sha256/<64 hex>        immutable files, named by their digest
 *                                (older caches kept them in folders named
 *                                by two digits; azl_cache_open moves them up)
 *   tmp/                         downloads in progress (same filesystem)
 *   index.sqlite                 WAL-mode index: digest, size, kind, name,
 *                                verified-with (key fingerprints)
 * A blob enters only through azl_cache_insert, which re-hashes the
 * temporary file, renames it into place and then records it, so a blob in
 * the index exists and matches its name (unless a power cut tore it: blobs
 * are not synced, and users re-hash what lookup returns before trusting
 * it); a blob without an index row (killed between rename and insert) is
 * re-hashed and adopted on lookup.
 * Two processes may share one cache: sqlite serialises writers
 * (busy timeout), and renames are atomic. */
#ifndef AZL_COMPOSE_CACHE_H
#define AZL_COMPOSE_CACHE_H

#include <stdint.h>

#include "base/err.h"

struct azl_cache;

/* dir NULL: the default location.  *out freed with azl_cache_close. */
int azl_cache_open(const char *dir, struct azl_cache **out, struct azl_err *err);
void azl_cache_close(struct azl_cache *c);
const char *azl_cache_dir(const struct azl_cache *c);

/* Path of the blob with this digest if the cache holds it verified, else
 * NULL.  Caller frees the returned path. */
char *azl_cache_lookup(struct azl_cache *c, const char *sha256);

/* Remove a blob found damaged (its row, then its file). */
void azl_cache_forget(struct azl_cache *c, const char *sha256);

/* A fresh temporary path inside DIR/tmp for a download; caller frees and
 * unlinks it if not inserted.  Stable per (label) so a killed download can
 * be resumed: the same sha256 gives the same temporary name.  NULL with
 * errno set when no temporary file can be created. */
char *azl_cache_tmp_path(struct azl_cache *c, const char *sha256);

/* Give up the claim on sha256's temporary name after a failed download
 * (the file itself stays the caller's to keep or unlink). */
void azl_cache_tmp_release(struct azl_cache *c, const char *sha256);

/* Check tmp_path hashes to sha256 (and size if non-zero), move it into the
 * store and record it with kind ("rpm", "primary", ...) and name (a NEVRA
 * or URL, for people reading the index).  On mismatch tmp_path is removed
 * and nothing enters the cache. */
int azl_cache_insert(struct azl_cache *c, const char *tmp_path,
		     const char *sha256, uint64_t size, const char *kind,
		     const char *name, struct azl_err *err);

/* Batches: between begin and commit, inserts keep their index rows in
 * memory; commit writes them all in one transaction.  Until then other
 * processes see the blobs without rows (and adopt them after re-hashing).
 * Inserts may run from several threads.  azl_cache_close commits. */
void azl_cache_batch_begin(struct azl_cache *c);
int azl_cache_batch_commit(struct azl_cache *c, struct azl_err *err);

/* The same for a file whose sha256 the caller computed over exactly these
 * bytes while writing them (a download checked by azl_fetch_many): only
 * the size is checked again, saving a second read of every package. */
int azl_cache_insert_hashed(struct azl_cache *c, const char *tmp_path,
			    const char *sha256, uint64_t size, const char *kind,
			    const char *name, struct azl_err *err);

/* Check every index row against its blob; used by tests and `fetch --verify-cache`.
 * Returns 0 when consistent, else an error naming the first bad blob. */
int azl_cache_check(struct azl_cache *c, struct azl_err *err);

#endif
