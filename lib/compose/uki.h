/* Unified Kernel Images: systemd's EFI stub with the kernel, initramfs,
 * command line and os-release appended as PE sections (.osrel, .cmdline,
 * .initrd, .linux, in that order, as ukify does).  No objcopy: a small
 * PE32+ writer adds the section headers into the stub's header room,
 * places each section at the next page-aligned address (file offsets at
 * the file alignment), updates SizeOfImage and drops the stub's COFF
 * symbol table and any signature (a signature would not cover the new
 * sections).  The PE checksum is left 0, as UEFI ignores it.  Same inputs,
 * same bytes: nothing else changes in the stub.
 *
 * Where the EFI binaries come from (the stub, and systemd-boot for
 * `bootloader: systemd-boot`): the image itself when it ships them
 * (/usr/lib/systemd/boot/efi/linuxx64.efi.stub, systemd-bootx64.efi), else
 * a host path: the manifest's (kernel.stub) or the host's systemd-boot-efi
 * package.  A host file is host state, so its origin and sha256 are
 * returned for the build record. */
#ifndef AZL_COMPOSE_UKI_H
#define AZL_COMPOSE_UKI_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "compose/fsmodel.h"
#include "compose/initramfs.h"

#define AZL_UKI_STUB_MODEL "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
#define AZL_UKI_STUB_HOST "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
#define AZL_UKI_SDBOOT_MODEL "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
#define AZL_UKI_SDBOOT_HOST "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"

/* One section's content: exactly one of data/len, path, node. */
struct azl_uki_input {
	const char *name;             /* ".linux"; at most 8 bytes */
	const void *data;             /* in memory, or */
	size_t len;
	const char *path;             /* a host file, or */
	const struct azl_node *node;  /* a regular file of the model */
};

/* Write stub + sections to out_path (atomically). */
int azl_uki_write(const void *stub, size_t stub_len,
		  const struct azl_uki_input *in, size_t n,
		  const char *out_path, struct azl_err *err);

/* Where an EFI binary came from, for the build record. */
struct azl_efi_origin {
	char where[8];     /* "image" or "host" */
	char path[512];    /* model path or host path */
	char sha256[65];
};

/* Read an EFI binary: model_path from the image when present, else
 * host_path.  b receives the bytes (caller releases). */
int azl_efi_source(struct azl_fs *fs, const char *model_path,
		   const char *host_path, struct azl_buf *b,
		   struct azl_efi_origin *origin, struct azl_err *err);

struct azl_uki_opts {
	const char *cmdline;     /* the whole kernel command line */
	const char *initrd_path; /* host file: a built or a named initramfs */
	const char *stub_path;   /* host fallback; NULL: AZL_UKI_STUB_HOST */
};

/* The UKI for kernel k of the image: its vmlinuz, the image's
 * /etc/os-release (skipped when absent), o->cmdline, o->initrd_path.
 * stub (may be NULL) tells where the stub came from. */
int azl_uki_build(struct azl_fs *fs, const struct azl_kernel *k,
		  const struct azl_uki_opts *o, const char *out_path,
		  struct azl_efi_origin *stub, struct azl_err *err);

/* systemd-boot's loader.conf for an image whose only entry is the UKI in
 * \EFI\Linux: boot it at once. */
#define AZL_UKI_LOADER_CONF "timeout 0\n"

/* `bootloader: systemd-boot` in a host directory that becomes the ESP:
 * esp_dir/EFI/BOOT/BOOTX64.EFI is systemd-boot (from the image, else
 * host_path; NULL: AZL_UKI_SDBOOT_HOST), esp_dir/loader/loader.conf is
 * AZL_UKI_LOADER_CONF, and esp_dir/EFI/Linux/ exists for the UKI
 * (systemd-boot lists every EFI/Linux/<name>.efi with an .osrel section).
 * sdboot (may be NULL) tells where systemd-boot came from. */
int azl_uki_systemd_boot(struct azl_fs *fs, const char *host_path,
			 const char *esp_dir, struct azl_efi_origin *sdboot,
			 struct azl_err *err);

#endif
