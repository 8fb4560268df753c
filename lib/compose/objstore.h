/* The object store: extracted file contents, stored once by sha256.
 *
 * Layout under DIR (normally <cache>/objects):
 *   sha256/<aa>/<64 hex>   one file per distinct content, mode 0444,
 *                          never modified once named
 *   packs/<aa>/<64 hex>    per package, its small files concatenated
 *                          (one file instead of thousands: creating files
 *                          is what a cold extraction spends its time on);
 *                          named by the sha256 of the member list, mode 0444
 *   pkgs/<64 hex>          extraction record of the package with that
 *                          sha256: which file index holds which object
 *                          (or which range of its pack)
 *   tmp/                   objects and records being written
 * An object reaches its name only complete: it is written to an unnamed
 * O_TMPFILE (or a tmp/ name where that is unsupported) and linked into
 * place, and an existing name is never replaced, so concurrent builds and
 * killed builds cannot corrupt or truncate it.  Records are written last:
 * azl_objstore_flush() syncs the filesystem once, then renames every
 * pending record into place, so a record never names an object that a
 * crash could lose.  A record is trusted only if every object it names
 * exists with the recorded size; otherwise the package is extracted again.
 * That record is what lets a warm build skip decompressing a package. */
#ifndef AZL_COMPOSE_OBJSTORE_H
#define AZL_COMPOSE_OBJSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct azl_objstore;

/* Open (creating the directories) the store at dir.  *out freed with
 * azl_objstore_close, which drops records not yet flushed. */
int azl_objstore_open(const char *dir, struct azl_objstore **out,
		      struct azl_err *err);
void azl_objstore_close(struct azl_objstore *s);
const char *azl_objstore_dir(const struct azl_objstore *s);

/* DIR/sha256/aa/<hex>; caller frees. */
char *azl_objstore_path(const struct azl_objstore *s, const char *sha256);
/* true if the object exists with this size. */
bool azl_objstore_has(const struct azl_objstore *s, const char *sha256,
		      uint64_t size);

/* Streaming writer: hashes while writing.  Small contents stay in memory
 * and never touch the disk when the object already exists. */
struct azl_objw;
int azl_objw_open(struct azl_objstore *s, struct azl_objw **out,
		  struct azl_err *err);
int azl_objw_write(struct azl_objw *w, const void *data, size_t len,
		   struct azl_err *err);
/* Name the object (or find it already there); fills sha256 and size.
 * Always frees w. */
int azl_objw_commit(struct azl_objw *w, char sha256[65], uint64_t *size,
		    struct azl_err *err);
void azl_objw_abort(struct azl_objw *w); /* safe with NULL */

/* Store a whole buffer (inline data, tests). */
int azl_objstore_put(struct azl_objstore *s, const void *data, size_t len,
		     char sha256[65], struct azl_err *err);

/* Pack writer: append small contents, then name the pack.  The name is
 * the sha256 of "<sha256> <size>\n" per member, so it depends on the
 * contents and their order only (no second hash over the data).
 * commit always frees p; a pack with no member is not stored (name ""). */
struct azl_objpack;
int azl_objpack_open(struct azl_objstore *s, struct azl_objpack **out,
		     struct azl_err *err);
int azl_objpack_add(struct azl_objpack *p, const void *data, size_t len,
		    const char *sha256, uint64_t *offset, struct azl_err *err);
int azl_objpack_commit(struct azl_objpack *p, char name[65], uint64_t *size,
		       struct azl_err *err);
void azl_objpack_abort(struct azl_objpack *p); /* safe with NULL */
/* DIR/packs/aa/<name>; caller frees. */
char *azl_objstore_pack_path(const struct azl_objstore *s, const char *name);

/* ---- per-package extraction records ---- */

struct azl_objrec_ent {
	uint32_t fx;        /* file index in the package header */
	uint64_t size;
	char sha256[65];    /* the content's digest */
	bool packed;        /* in the record's pack at offset, else an object */
	uint64_t offset;
};

struct azl_objrec {
	struct azl_objrec_ent *ents; /* owned, sorted by fx */
	size_t n;
	char pack[65];      /* the package's pack, "" when none */
	uint64_t pack_size;
};

/* Load the record of package pkg_sha256 into *rec (zeroed first).
 * Returns 0 when it exists and every object it names is present, -ENOENT
 * otherwise (rec left empty); other negative codes for a damaged record. */
int azl_objstore_record_get(struct azl_objstore *s, const char *pkg_sha256,
			    struct azl_objrec *rec, struct azl_err *err);
/* Queue a record; it becomes visible at azl_objstore_flush. */
int azl_objstore_record_put(struct azl_objstore *s, const char *pkg_sha256,
			    const struct azl_objrec *rec, struct azl_err *err);
/* One syncfs for everything written, then publish the queued records. */
int azl_objstore_flush(struct azl_objstore *s, struct azl_err *err);
/* sync false: skip the syncfs (it also waits for every other writer on
 * that filesystem).  Records then rely on being written after their
 * objects and on the size check at azl_objstore_record_get: ext4 and xfs
 * never show a crashed file at its full size without its data. */
void azl_objstore_set_sync(struct azl_objstore *s, bool sync);

void azl_objrec_add(struct azl_objrec *rec, uint32_t fx, uint64_t size,
		    const char *sha256);
void azl_objrec_add_packed(struct azl_objrec *rec, uint32_t fx, uint64_t size,
			   const char *sha256, uint64_t offset);
/* Where e's bytes are: a path (caller frees) and *offset. */
char *azl_objrec_data_path(const struct azl_objstore *s,
			   const struct azl_objrec *rec,
			   const struct azl_objrec_ent *e, uint64_t *offset);
/* The entry for fx or NULL (binary search). */
const struct azl_objrec_ent *azl_objrec_find(const struct azl_objrec *rec,
					     uint32_t fx);
void azl_objrec_release(struct azl_objrec *rec);

#endif
