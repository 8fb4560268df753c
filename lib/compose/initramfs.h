/* The initramfs a bootable image needs, built from the image's own model.
 *
 * The kernel is found in the model (/usr/lib/modules/<ver>/vmlinuz, or
 * /boot/vmlinuz-<ver> with /usr/lib/modules/<ver>); the modules to load
 * are the closure of a list (virtio, SCSI/NVMe/Hyper-V storage, dm-verity,
 * overlay) over the image's modules.dep, in load order (every dependency
 * before its users).  Compressed modules (.ko.xz, .ko.zst, .ko.gz) are
 * decompressed at build time, since busybox insmod cannot load them.
 *
 * The archive holds /bin/busybox (the image's own: no host state reaches
 * the initramfs), the modules under /usr/lib/modules/<ver>/, /dev/console
 * and an /init script that mounts /proc /sys /dev, loads the modules,
 * waits for root= (PARTUUID=, UUID=, LABEL= or /dev/...), mounts it ro or
 * rw as the command line says, mounts mount.usr= read-only on /usr when
 * given (a verity-protected /usr, verity.usrhash=, is opened with the
 * image's veritysetup when opts.verity put it in; without one it is
 * refused, as busybox cannot open dm-verity, unless `azl.usr_unverified`
 * says to mount verity.usr= unchecked) and switch_roots to init= (default
 * /sbin/init, else /bin/sh).  PARTUUID= is read from the GPT itself (the
 * kernel's uevent has no PARTUUID, busybox blkid none either).  On failure
 * /init says why and exits, so the kernel panics (panic= decides what
 * follows); `rd.shell` on the command line gives a shell instead.  An image without busybox cannot get a
 * generated initramfs: the manifest must name one instead.
 *
 * Same model and options, same bytes: entries are sorted, mtimes are the
 * given SOURCE_DATE_EPOCH, owners root. */
#ifndef AZL_COMPOSE_INITRAMFS_H
#define AZL_COMPOSE_INITRAMFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "compose/fsmodel.h"
#include "reproducible/zstream.h"

struct azl_kernel {
	char *version;     /* "6.1.0-56-cloud-amd64"; owned */
	char *vmlinuz;     /* model path of the kernel image; owned */
	char *modules_dir; /* "/usr/lib/modules/<ver>" (or the real path of
			    * /lib/modules/<ver> when only that exists); owned */
};

/* Find the image's kernel.  want_ver NULL: the model must hold exactly
 * one (several: a bad-input error listing them); no kernel at all is a
 * bad-input error saying a kernel package is needed.  Release k with
 * azl_kernel_release. */
int azl_kernel_find(struct azl_fs *fs, const char *want_ver,
		    struct azl_kernel *k, struct azl_err *err);
void azl_kernel_release(struct azl_kernel *k);

/* The modules loaded when the caller gives no list (NULL-terminated). */
extern const char *const azl_initramfs_default_modules[];

/* The closure of `wanted` (module names; '-' and '_' alike) over the
 * kernel's modules.dep, in load order, as paths relative to the modules
 * directory exactly as modules.dep writes them.  A name absent from
 * modules.dep is skipped when modules.builtin has it, or when
 * `missing_ok` (the default list names modules some kernels lack);
 * otherwise a bad-input error naming it.  *paths (and each string) is
 * the caller's: free with azl_initramfs_list_free. */
int azl_initramfs_modules(struct azl_fs *fs, const struct azl_kernel *k,
			  const char *const *wanted, int missing_ok,
			  char ***paths, size_t *n, struct azl_err *err);
void azl_initramfs_list_free(char **paths, size_t n);

struct azl_initramfs_opts {
	enum azl_comp comp;          /* gzip, zstd or none */
	int64_t mtime;               /* SOURCE_DATE_EPOCH */
	const char *const *modules;  /* NULL: azl_initramfs_default_modules */
	/* A verity-protected /usr: when the image ships veritysetup
	 * (azl_initramfs_veritysetup), it goes in as /bin/veritysetup with
	 * its loader and libraries under /lib/azl, and /init opens
	 * verity.usr= with verity.usrhash= (hash-offset= from
	 * systemd.verity_usr_options=) as /dev/mapper/usr. */
	bool verity;
};

/* The image's veritysetup (a static string), or NULL when it has none. */
const char *azl_initramfs_veritysetup(struct azl_fs *fs);

/* Write the initramfs (a newc cpio, compressed as asked) to sink.  res
 * (may be NULL) receives sizes and digests. */
int azl_initramfs_write(struct azl_fs *fs, const struct azl_kernel *k,
			const struct azl_initramfs_opts *o,
			int (*sink)(void *ctx, const void *data, size_t len),
			void *sink_ctx, struct azl_zstream_result *res,
			struct azl_err *err);

/* Read a (small) regular file of the model into b, following symlinks
 * in the model; -ENOENT when absent.  Shared with the UKI builder. */
int azl_model_read(struct azl_fs *fs, const char *path, size_t max,
		   struct azl_buf *b, struct azl_err *err);

#endif
