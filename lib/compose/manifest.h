/* The declarative manifest (YAML, via libyaml).
 *
 * Every key is checked: unknown keys, wrong types and missing required keys
 * are AZL_ERR_INPUT errors naming file:line:column and the key.  The
 * build-stage keys (seed, scriptlets, users, files, ..., outputs) are loaded
 * for every command but read only by build; outputs is optional here (lock
 * and fetch need none) and build refuses a manifest without one.  Each key
 * is documented in manifests/README.md. */
#ifndef AZL_COMPOSE_MANIFEST_H
#define AZL_COMPOSE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "compose/customize.h"
#include "reproducible/zstream.h"

struct azl_repo_spec {
	char *id;       /* [A-Za-z0-9._-]+, unique within the manifest */
	char *baseurl;  /* http://, https:// or file://; always ends in '/' */
	char *gpgkey;   /* NULL, an absolute path, or a file:// URL; relative
			   paths are resolved against the manifest's folder */
	bool gpgcheck;  /* default true */
	/* Whether this repository's packages may install set-user-ID and
	 * set-group-ID files, file capabilities and device nodes; default:
	 * gpgcheck (an unverified repository may not).  See install.h. */
	bool allow_setuid;
	bool has_allow_setuid; /* written in the manifest */
	int line;       /* where the entry starts, for messages */
};

/* outputs: {oci: {...}} (the build stage; see manifests/README.md). */
struct azl_manifest_oci {
	enum azl_comp compression;  /* compression: gzip (default) | zstd */
	int level;                  /* compression_level; 0: the default */
	char **entrypoint; size_t nentrypoint;
	char **cmd; size_t ncmd;
	char **env; size_t nenv;    /* "KEY=value" */
	char *workdir;
	char *user;
	struct azl_cust_kv *labels; size_t nlabels; /* sorted by key */
	char **exposed_ports; size_t nexposed_ports; /* "80/tcp" */
};

/* kernel: {...}: how a bootable output boots (manifests/README.md). */
struct azl_manifest_kernel {
	char *cmdline;  /* appended after root=PARTUUID=...; NULL: none */
	char *initrd;   /* a host initramfs used instead of a built one;
			   relative to the manifest's folder */
	char *stub;     /* host EFI stub when the image ships none */
};

/* outputs: {vhd: {...}}: a GPT disk, ESP + ext4 root. */
struct azl_manifest_vhd {
	uint64_t size;      /* required; bytes, a whole number of MiB */
	bool raw;           /* format: raw (.img) instead of vhd (default) */
	bool systemd_boot;  /* bootloader: systemd-boot instead of uki */
	uint64_t esp_size;  /* bytes; default 64 MiB */
	uint64_t boot_size; /* bytes; 0: no separate /boot (XBOOTLDR) partition */
};

/* outputs: {flatcar: {...}}: a Flatcar-style immutable disk (ESP,
 * [BIOS-BOOT], USR-A with dm-verity, USR-B, OEM, ROOT). */
struct azl_manifest_flatcar {
	uint64_t usr_size;  /* bytes; default 1 GiB: USR-A and USR-B each */
	uint64_t root_size; /* bytes; 0: fit the content (grows on first boot) */
	uint64_t esp_size;  /* bytes; default 128 MiB */
	uint64_t oem_size;  /* bytes; default 128 MiB */
	bool raw;           /* format: raw (.img, default) or vhd */
	bool bios_boot;     /* a 2 MiB BIOS-BOOT partition; default false */
	bool systemd_boot;  /* bootloader: systemd-boot instead of uki */
};

struct azl_manifest {
	char *path;     /* as given */
	char *dir;      /* folder of the manifest, absolute (symlinks resolved
			   when it exists) */
	char *name;     /* required; [a-z0-9._-]+ */
	bool has_source_date_epoch;
	int64_t source_date_epoch;
	char *arch;     /* default "x86_64" */
	struct azl_repo_spec *repos;
	size_t nrepos;
	char **packages; /* "NAME" or "NAME OP EVR" (OP one of = < <= > >=),
			    single spaces: split on ' ' (manifests/README.md) */
	size_t npackages;
	char **exclude;  /* fnmatch(3) patterns on package names */
	size_t nexclude;
	bool install_weak_deps; /* default false */
	char sha256[65];        /* of the manifest file's bytes */

	/* Build stage keys (issue 3). */
	char *seed;             /* NULL: derived from manifest + lockfile digests */
	bool scriptlets_skip;   /* scriptlets: skip (default run) */
	unsigned scriptlet_timeout; /* seconds; 0: 300 */
	struct azl_customize customize; /* users, groups, files, ... */
	struct azl_manifest_oci *oci;   /* NULL: no oci output */
	struct azl_manifest_vhd *vhd;   /* NULL: no vhd output */
	struct azl_manifest_flatcar *flatcar; /* NULL: no flatcar output */
	struct azl_manifest_kernel *kernel; /* NULL: no kernel: key */
};

/* Parse and validate path.  On success *out is owned by the caller
 * (azl_manifest_free).  Errors are AZL_ERR_INPUT (exit 2) for anything the
 * file says, AZL_ERR_WORK when it cannot be read. */
int azl_manifest_load(const char *path, struct azl_manifest **out,
		      struct azl_err *err);
/* The same from bytes already in memory (tests, fuzzing): path names the
 * manifest in messages and locates its folder; nothing is read from disk.
 * Same ownership and errors as azl_manifest_load. */
int azl_manifest_parse(const char *path, const char *data, size_t len,
		       struct azl_manifest **out, struct azl_err *err);
void azl_manifest_free(struct azl_manifest *m); /* NULL is fine */

/* The repository with that id, or NULL. */
const struct azl_repo_spec *azl_manifest_repo(const struct azl_manifest *m,
					      const char *id);

/* The lockfile path for a manifest: NAME.yaml -> NAME.lock.json beside it
 * (the manifest's file name with .yaml/.yml replaced).  Caller frees. */
char *azl_manifest_lock_path(const struct azl_manifest *m);

#endif
