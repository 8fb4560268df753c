/* Inspect a built disk (NAME.vhd or NAME.img) read-only through
 * libguestfs: its partition table, each partition's filesystem (type,
 * UUID, label) and the packages in the root filesystem's rpm database.
 *
 * libguestfs runs a small appliance VM with a real kernel, so the disk is
 * read by Linux's own GPT, vfat and ext4 code, independently of the
 * writers in this project (the point of `azl-compose inspect`).  The drive
 * is added read-only; the format (vpc or raw) is taken from the file's
 * footer, never guessed by qemu.  An appliance start takes 15-60 s under
 * TCG; LIBGUESTFS_BACKEND / LIBGUESTFS_BACKEND_SETTINGS choose how it
 * runs. */
#ifndef AZL_COMPOSE_INSPECT_H
#define AZL_COMPOSE_INSPECT_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct azl_inspect_part {
	int num;            /* 1-based partition number */
	uint64_t start;     /* bytes */
	uint64_t size;      /* bytes */
	char *type_guid;    /* GPT partition type, uppercase as libguestfs gives it */
	char *guid;         /* GPT partition GUID */
	char *name;         /* GPT partition name ("" when none) */
	char *fstype;       /* "vfat", "ext4", ... ("" when unknown) */
	char *fs_uuid;      /* "" when none */
	char *fs_label;     /* "" when none */
};

struct azl_inspect {
	char *format;       /* "vpc" or "raw" */
	uint64_t disk_size; /* virtual size in bytes */
	char *table;        /* "gpt", "msdos", ... */
	char *disk_guid;    /* GPT disk GUID ("" for other tables) */
	struct azl_inspect_part *parts;
	size_t nparts;
	int root;           /* index into parts of the filesystem holding
			       /var/lib/rpm/rpmdb.sqlite; -1: none */
	char **pkgs;        /* NEVRAs from that database, sorted */
	size_t npkgs;
};

/* Read the disk at path.  On success *out is filled and owned by the
 * caller (azl_inspect_release).  A file that is not a disk, or a disk
 * libguestfs cannot read, is AZL_ERR_INPUT naming the file; an appliance
 * that cannot start is a work failure carrying libguestfs' message. */
int azl_inspect_disk(const char *path, struct azl_inspect *out,
		     struct azl_err *err);
void azl_inspect_release(struct azl_inspect *in);

/* The packages of an rpm sqlite database file (rpm >= 4.16 layout) as
 * sorted NEVRAs; *pkgs (and each string) is the caller's: free each and
 * the array.  Used by azl_inspect_disk on the copy it downloads. */
int azl_inspect_rpmdb(const char *db_file, char ***pkgs, size_t *n,
		      struct azl_err *err);

#endif
