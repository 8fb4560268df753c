/* OCI image emitter: the filesystem model -> one OCI image-layout archive
 * (what `skopeo copy ... oci-archive:X`, `podman load` and umoci read): an
 * uncompressed tar holding oci-layout, index.json and blobs/sha256/{layer,
 * config, manifest}.
 *
 * The single layer is a pax tar of the model in model order (the root
 * directory itself is left out, as docker and buildah do; sockets are
 * skipped, tar cannot hold them): numeric uid/gid plus user/group names,
 * header mtimes, xattrs as SCHILY.xattr records, hardlinks as tar hardlinks
 * to the first path of their group, device nodes, no atime/ctime.  It
 * streams model -> tar -> gzip/zstd -> a temporary file beside out_path
 * (unlinked at once, so a crash leaves nothing) while both digests are
 * computed; the outer archive then copies it through, also streaming, and
 * is renamed onto out_path only when complete.
 *
 * Every byte is a function of the model and opts: created is the build's
 * SOURCE_DATE_EPOCH, JSON is canonical (sorted keys, compact), gzip is
 * pgzip (same bytes for any thread count). */
#ifndef AZL_COMPOSE_EMIT_OCI_H
#define AZL_COMPOSE_EMIT_OCI_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "compose/fsmodel.h"
#include "reproducible/zstream.h"

struct azl_kv {
	const char *key;
	const char *value;
};

/* Borrowed pointers; NULL/0 means "not set" (the key is left out of the
 * image config). */
struct azl_oci_opts {
	enum azl_comp compression; /* AZL_COMP_GZIP or AZL_COMP_ZSTD (NONE: plain tar layer) */
	int level;                 /* 0: default (gzip 6, zstd 3) */
	int threads;               /* compressor threads; <= 0: 1 */
	const char *arch;          /* rpm arch (x86_64, aarch64, ...) or an OCI one */
	int64_t created;           /* SOURCE_DATE_EPOCH */
	const char *ref_name;      /* index annotation org.opencontainers.image.ref.name, e.g. "NAME:latest" */
	const char *const *entrypoint; size_t nentrypoint;
	const char *const *cmd; size_t ncmd;
	const char *const *env; size_t nenv;        /* "KEY=value" */
	const char *workdir;
	const char *user;
	const struct azl_kv *labels; size_t nlabels;
	const char *const *exposed_ports; size_t nexposed_ports; /* "80/tcp" */
};

struct azl_oci_result {
	char manifest_digest[72]; /* "sha256:<64 hex>" */
	char config_digest[72];
	char layer_digest[72];
	char diff_id[72];         /* digest of the uncompressed layer */
	uint64_t layer_size;      /* compressed bytes */
	uint64_t manifest_size;
};

/* OCI architecture for an rpm one (x86_64 -> amd64, aarch64 -> arm64, ...);
 * NULL if unknown. */
const char *azl_oci_arch(const char *rpm_arch);

/* Write the archive to out_path (mode 0644).  res may be NULL.  Bad opts
 * (unknown arch) are AZL_ERR_INPUT; I/O failures name the path. */
int azl_emit_oci(struct azl_fs *fs, const struct azl_oci_opts *opts,
		 const char *out_path, struct azl_oci_result *res,
		 struct azl_err *err);

#endif
