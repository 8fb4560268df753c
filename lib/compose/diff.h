/* azl-compose diff: where two artifacts differ, named from the inside out.
 *
 * Inputs are two files of one kind or two output directories.  The diff
 * descends through the formats it knows: directory -> files; OCI archive ->
 * outer tar members, index.json -> manifest -> config (JSON fields) and each
 * layer pair (tar entries); any tar, compressed or not (libarchive) -> tar
 * entries; JSON -> fields; SHA256SUMS -> one digest per name; disk images
 * (VHD or raw) -> VHD footer fields -> GPT header and entries -> each
 * partition: its digest, then for ext4 (libext2fs) or vfat (FAT16/FAT32,
 * our own reader) its entries, in-process; a bare ext4 or vfat image ->
 * entries.  Anything else is compared by digest and size.
 *
 * Streaming: a layer is read once per side with libarchive, entries are
 * indexed (path -> header fields + content sha256), then the two indexes
 * are compared; no layer is ever held in memory.  Entry order differences
 * are reported as one "entry order" item per container.
 *
 * Each difference is a path ("a.oci.tar:layers[0]:etc/passwd"), what
 * differs ("content digest", "size", "mode", "owner", "mtime", "xattr",
 * "entry order", "added", "removed", "kind", or a header/JSON field name) and
 * the two values.  Results are ordered innermost first (deepest path) and
 * kept to at most opts->max items; total counts every difference found. */
#ifndef AZL_COMPOSE_DIFF_H
#define AZL_COMPOSE_DIFF_H

#include <stddef.h>

#include "base/err.h"

struct azl_diff_item {
	char *path;   /* container path, ':'-separated levels */
	char *what;   /* what differs */
	char *a, *b;  /* the two values, shortened for display; "" when absent */
	int depth;    /* nesting level: 0 the inputs themselves */
};

struct azl_diff_opts {
	size_t max;   /* keep at most this many items; 0: 100 */
};

struct azl_diff_result {
	struct azl_diff_item *items; /* innermost first, at most max */
	size_t nitems;
	size_t total;                /* every difference found */
};

/* Compare a and b (files or directories).  Returns 0 when the comparison
 * ran (res->total == 0 means identical) or a negative code with err set.
 * res is zeroed first and owned by the caller: release it always. */
int azl_diff_paths(const char *a, const char *b, const struct azl_diff_opts *o,
		   struct azl_diff_result *res, struct azl_err *err);
void azl_diff_result_release(struct azl_diff_result *res);

/* Text for people: one line per item, then a count line.  Caller frees. */
char *azl_diff_format_text(const struct azl_diff_result *res);
/* Canonical JSON {"identical":..,"total":..,"differences":[..]}.  Caller frees. */
char *azl_diff_format_json(const struct azl_diff_result *res);

#endif
