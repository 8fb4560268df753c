/* Customization after install: users, groups, files, directories, symlinks,
 * systemd service enablement, hostname, os-release fields and an empty
 * /etc/machine-id — applied to the filesystem model, never to the host.
 *
 * Everything the build creates gets SOURCE_DATE_EPOCH as mtime.  Owners are
 * names resolved through the image's own /etc/passwd and /etc/group. */
#ifndef AZL_COMPOSE_CUSTOMIZE_H
#define AZL_COMPOSE_CUSTOMIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "compose/fsmodel.h"

struct azl_cust_group {
	char *name;
	int64_t gid;       /* -1: allocate */
	char **members;
	size_t nmembers;
	bool system;       /* allocate below 1000 */
};

struct azl_cust_user {
	char *name;
	int64_t uid;       /* -1: allocate */
	char *group;       /* primary group name; NULL: a group named like the user */
	char **groups;     /* supplementary groups (must exist) */
	size_t ngroups;
	char *home;        /* NULL: /home/NAME (/root for uid 0) */
	char *shell;       /* NULL: /bin/bash if in the image, else /bin/sh */
	char *password;    /* crypt(3) hash for /etc/shadow; NULL: locked ("!") */
	char *gecos;
	bool system;
	bool create_home;  /* see create_home_set */
	bool create_home_set; /* true: create_home is the answer (the manifest
				 loader always sets it); false: create a home
				 for non-system users without an explicit home */
};

struct azl_cust_file {
	char *path;
	char *content;     /* inline content, or NULL when source is set */
	size_t content_len;
	char *source;      /* absolute host path (resolved against the manifest) */
	uint32_t mode;     /* exact when mode_set (the manifest loader always
			      sets it, so "0000" stays 0000); else 0: 0644 */
	bool mode_set;
	char *owner, *group; /* default root */
};

struct azl_cust_dir {
	char *path;
	uint32_t mode;     /* exact when mode_set; else 0: 0755 */
	bool mode_set;
	char *owner, *group;
};

struct azl_cust_symlink {
	char *path;
	char *target;
};

struct azl_cust_kv {
	char *key;
	char *value;
};

struct azl_customize {
	struct azl_cust_group *groups; size_t ngroups;
	struct azl_cust_user *users; size_t nusers;
	struct azl_cust_dir *dirs; size_t ndirs;
	struct azl_cust_file *files; size_t nfiles;
	struct azl_cust_symlink *symlinks; size_t nsymlinks;
	char **enable; size_t nenable;     /* systemd units */
	char **disable; size_t ndisable;
	char *hostname;                    /* NULL: leave /etc/hostname alone */
	struct azl_cust_kv *os_release; size_t nos_release;
};

/* Apply c to fs in a fixed order (groups, users, directories, files,
 * symlinks, services, hostname, os-release, machine-id).  Warnings (e.g. a
 * unit without an [Install] section) are appended to *warnings, one per
 * line.  Errors name the key and the value at fault. */
int azl_customize_apply(struct azl_fs *fs, const struct azl_customize *c,
			int64_t sde, struct azl_buf *warnings,
			struct azl_err *err);

/* Free every owned field and the arrays (not c itself). */
void azl_customize_release(struct azl_customize *c);

/* Read a small regular file of the model into *out (NUL-terminated). */
int azl_fs_read_small(const struct azl_fs *fs, const char *path,
		      struct azl_buf *out, struct azl_err *err);

/* Look a name up in the model's /etc/passwd or /etc/group (field 3 is the
 * id).  Returns 0 and sets *id, or -ENOENT. */
int azl_fs_lookup_id(const struct azl_fs *fs, const char *db_path,
		     const char *name, uint32_t *id);

#endif
