/* Reading one .rpm: its header (file list, scriptlets, triggers) and a
 * stream over its payload.
 *
 * Why librpm's own archive reader (rpmfiNewArchiveReader) rather than
 * libarchive's rpm+cpio reader: it maps every payload entry to its index in
 * the header, so metadata always comes from the header, never from cpio;
 * it reads the "stripped" cpio that packages with files over 4 GiB use
 * (libarchive does not); it hands hardlink sets over the way rpm installs
 * them (content once); and it decompresses with the same gzip/xz/zstd/bzip2
 * code rpm itself uses (Fdopen "r.<PAYLOADCOMPRESSOR>").
 *
 * Signatures and digests are not checked here: fetch already verified the
 * whole file against the lock's sha256. */
#ifndef AZL_COMPOSE_RPMREAD_H
#define AZL_COMPOSE_RPMREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"

struct azl_rpm;

/* The file's layout, as the header check here and fetch's streamed payload
 * digest (sign/rpmsig.h) read it: a lead, the signature header (its end
 * padded to 8 bytes), the main header, then the payload.  A header is a
 * 16-byte intro (magic, 4 reserved bytes, then the big-endian tag count
 * and data size), 16 bytes of index per tag, and the data.  The limits are
 * librpm's own (rpm 4.18, lib/header.c). */
#define AZL_RPM_LEAD_SIZE 96
#define AZL_RPM_SIG_TAGS_MAX 32u
#define AZL_RPM_SIG_DATA_MAX (64u << 20)
#define AZL_RPM_HDR_TAGS_MAX 0xffffu
#define AZL_RPM_HDR_DATA_MAX 0x0fffffffu

static inline uint32_t azl_rpm_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Where a header starting at `at` with tag count il and data size dl
 * ends. */
static inline uint64_t azl_rpm_header_end(uint64_t at, uint32_t il, uint32_t dl)
{
	return at + 16 + 16 * (uint64_t)il + dl;
}

/* One file as the header describes it.  Strings point into the azl_rpm
 * and stay valid until azl_rpm_close. */
struct azl_rpm_file {
	const char *path;   /* absolute, as stored (dirname + basename) */
	uint32_t mode;      /* st_mode including the type bits */
	const char *user, *group;
	int64_t mtime;
	uint64_t size;
	const char *link;   /* symlink target, "" otherwise */
	uint32_t rdev;
	uint32_t flags;     /* RPMFILE_* (config, ghost, doc, noreplace...) */
	const char *caps;   /* %caps text ("cap_net_raw=ep") or NULL */
	int digest_algo;    /* PGPHASHALGO_*; 0 when no digest */
	const unsigned char *digest; /* binary, digest_len bytes, or NULL */
	size_t digest_len;
};

/* A scriptlet: argv[0] is the interpreter ("/bin/sh", "<lua>"), argv is
 * NULL-terminated; body may be NULL ("%post -p /sbin/ldconfig"). */
struct azl_script {
	char **argv;
	char *body;
};

enum azl_trigger_kind {
	AZL_TRIG_PACKAGE = 1,   /* %triggerin -- pkg: conditions are names */
	AZL_TRIG_FILE,          /* %filetriggerin: conditions are path prefixes */
	AZL_TRIG_TRANSFILE,     /* %transfiletriggerin */
};

struct azl_trigger {
	enum azl_trigger_kind kind;
	uint32_t sense;     /* RPMSENSE_TRIGGERIN/UN/POSTUN/PREIN */
	uint32_t priority;  /* file triggers; 0 for package triggers */
	char **conds;       /* NULL-terminated names or prefixes */
	struct azl_script script;
};

/* Everything the later stages need about a package, as plain C.  Owned by
 * whoever holds it; release with azl_rpm_info_release. */
struct azl_rpm_info {
	char *name, *version, *release, *arch;
	uint32_t epoch;
	bool has_epoch;
	char *nevra;        /* name-[epoch:]version-release.arch */
	struct azl_script pretrans, prein, postin, posttrans; /* argv NULL: none */
	struct azl_trigger *triggers;
	size_t ntriggers;
};

/* librpm's process-wide configuration (rpmrc, macros), read once by
 * whichever caller comes first (package reading, signature checks, the
 * rpmdb writer); safe from any thread.  0, or rpmReadConfigFiles' status. */
int azl_rpm_config_init(void);

/* Open a package and read its header.  *out freed with azl_rpm_close.
 * A file that is not an rpm is bad input naming the path. */
int azl_rpm_open(const char *path, struct azl_rpm **out, struct azl_err *err);
void azl_rpm_close(struct azl_rpm *r);

const char *azl_rpm_path(const struct azl_rpm *r);
const char *azl_rpm_nevra(const struct azl_rpm *r);
/* The librpm Header (a `Header`, borrowed: valid until azl_rpm_close), for
 * stages that copy it whole (the rpmdb writer). */
void *azl_rpm_header(const struct azl_rpm *r);

size_t azl_rpm_nfiles(const struct azl_rpm *r);
/* Describe file fx (0 <= fx < nfiles). */
void azl_rpm_file(const struct azl_rpm *r, size_t fx, struct azl_rpm_file *f);
/* The hardlink set of fx: number of members (1 when not hardlinked) and,
 * when > 1, *fxs the member indexes (borrowed). */
size_t azl_rpm_hardlinks(const struct azl_rpm *r, size_t fx, const int **fxs);

/* Fill *info (zeroed first).  Strings are copies, see the struct. */
int azl_rpm_info(const struct azl_rpm *r, struct azl_rpm_info *info,
		 struct azl_err *err);
void azl_rpm_info_release(struct azl_rpm_info *info);
void azl_script_release(struct azl_script *s);

/* Payload streaming.  azl_payload_next moves to the next entry that
 * carries content (regular files; for a hardlink set, the one entry with
 * the data) and returns 1, 0 at the end, or a negative code.  Read the
 * entry with azl_payload_read until it returns 0; unread data is skipped.
 * One payload per package may be open at a time. */
struct azl_payload;
int azl_payload_open(struct azl_rpm *r, struct azl_payload **out,
		     struct azl_err *err);
int azl_payload_next(struct azl_payload *p, size_t *fx, uint64_t *size,
		     struct azl_err *err);
ssize_t azl_payload_read(struct azl_payload *p, void *buf, size_t len,
			 struct azl_err *err);
void azl_payload_close(struct azl_payload *p);

/* Payloads opened by this process so far: tests use it to prove a warm
 * build decompresses nothing. */
uint64_t azl_payload_open_count(void);

/* security.capability bytes (struct vfs_cap_data, revision 2, little
 * endian: 20 bytes) for a %caps text in cap_from_text(3) syntax, as
 * setcap(8) writes them.  Unknown names or syntax are bad input. */
int azl_caps_to_xattr(const char *text, unsigned char out[20],
		      struct azl_err *err);

#endif
