#include "compose/uki.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fs.h"
#include "base/hash.h"

#define SEC_HDR 40
#define PAGE 4096u
#define SCN_DATA_READ 0x40000040u /* INITIALIZED_DATA | MEM_READ */

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void wr16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void wr32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/* The parts of a PE32+ header the appender needs. */
struct pe {
	unsigned char *img;  /* a copy of the stub, cut after its last section */
	size_t len;
	size_t coff;         /* offset of the COFF header */
	size_t opt;          /* optional header */
	size_t sect;         /* section table */
	uint16_t nsect;
	uint32_t salign, falign, hdr_size;
	uint64_t next_va;    /* end of the last section in memory */
};

static int pe_parse(const void *stub, size_t len, struct pe *pe, struct azl_err *err)
{
	const unsigned char *p = stub;
	uint64_t raw_end = 0;

	memset(pe, 0, sizeof(*pe));
	if (len < 0x40 || p[0] != 'M' || p[1] != 'Z')
		return azl_errf(err, -EINVAL, "EFI stub: not a PE file (no MZ header)");
	pe->coff = rd32(p + 0x3c) + 4;
	if (pe->coff + 20 > len || memcmp(p + pe->coff - 4, "PE\0\0", 4))
		return azl_errf(err, -EINVAL, "EFI stub: no PE signature");
	pe->opt = pe->coff + 20;
	pe->nsect = rd16(p + pe->coff + 2);
	pe->sect = pe->opt + rd16(p + pe->coff + 16);
	if (pe->opt + 112 > len || rd16(p + pe->opt) != 0x20b)
		return azl_errf(err, -EINVAL, "EFI stub: not PE32+ (a 64-bit stub is needed)");
	pe->salign = rd32(p + pe->opt + 32);
	pe->falign = rd32(p + pe->opt + 36);
	pe->hdr_size = rd32(p + pe->opt + 60);
	if (!pe->salign || !pe->falign || pe->sect + (size_t)pe->nsect * SEC_HDR > len)
		return azl_errf(err, -EINVAL, "EFI stub: damaged PE headers");
	for (uint16_t i = 0; i < pe->nsect; i++) {
		const unsigned char *s = p + pe->sect + (size_t)i * SEC_HDR;
		uint64_t va_end = (uint64_t)rd32(s + 12) + rd32(s + 8);
		uint64_t raw = (uint64_t)rd32(s + 20) + rd32(s + 16);
		if (va_end > pe->next_va)
			pe->next_va = va_end;
		if (raw > raw_end)
			raw_end = raw;
	}
	if (raw_end > len)
		return azl_errf(err, -EINVAL, "EFI stub: a section lies beyond the file's end");
	/* Symbols and a signature sit after the sections: cut them off. */
	pe->len = raw_end;
	pe->img = azl_xmalloc(pe->len ? pe->len : 1);
	memcpy(pe->img, p, pe->len);
	return 0;
}

static int input_size(const struct azl_uki_input *in, uint64_t *size,
		      struct azl_err *err)
{
	struct stat st;

	if (in->node)
		*size = in->node->size;
	else if (!in->path)
		*size = in->len;
	else if (stat(in->path, &st) < 0)
		return azl_errf(err, -errno, "%s: %s", in->path, strerror(errno));
	else
		*size = (uint64_t)st.st_size;
	return 0;
}

/* Add the section headers; returns each section's file offset in off[]. */
static int pe_add_sections(struct pe *pe, const struct azl_uki_input *in,
			   size_t n, uint64_t *off, struct azl_err *err)
{
	size_t table_end = pe->sect + (size_t)(pe->nsect + n) * SEC_HDR;
	uint64_t va = align_up(pe->next_va, PAGE), fo = align_up(pe->len, pe->falign);
	int rc = 0;

	if (table_end > pe->hdr_size || table_end > pe->len)
		return azl_errf(err, -ENOSPC, "EFI stub: no room for %zu more section headers", n);
	for (size_t i = 0; i < n && rc == 0; i++) {
		unsigned char *s = pe->img + pe->sect + (size_t)(pe->nsect + i) * SEC_HDR;
		uint64_t size = 0;
		rc = input_size(&in[i], &size, err);
		if (rc == 0 && (strlen(in[i].name) > 8 || align_up(size, pe->falign) > UINT32_MAX ||
				va + size > UINT32_MAX))
			rc = azl_errf(err, -EFBIG, "UKI: section %s too large or badly named", in[i].name);
		if (rc < 0)
			break;
		memset(s, 0, SEC_HDR);
		memcpy(s, in[i].name, strlen(in[i].name));
		wr32(s + 8, (uint32_t)size);
		wr32(s + 12, (uint32_t)va);
		wr32(s + 16, (uint32_t)align_up(size, pe->falign));
		wr32(s + 20, (uint32_t)fo);
		wr32(s + 36, SCN_DATA_READ);
		off[i] = fo;
		va = align_up(va + size, PAGE);
		fo += align_up(size, pe->falign);
	}
	if (rc < 0)
		return rc;
	wr16(pe->img + pe->coff + 2, (uint16_t)(pe->nsect + n));
	wr32(pe->img + pe->coff + 8, 0);   /* PointerToSymbolTable */
	wr32(pe->img + pe->coff + 12, 0);  /* NumberOfSymbols */
	wr32(pe->img + pe->opt + 56, (uint32_t)va);  /* SizeOfImage */
	wr32(pe->img + pe->opt + 64, 0);   /* CheckSum */
	if (rd32(pe->img + pe->opt + 108) > 4)   /* certificate table */
		memset(pe->img + pe->opt + 112 + 4 * 8, 0, 8);
	return 0;
}

struct wctx {
	struct azl_out *o;
	uint64_t pos;
};

static int wfn(void *ctx, const void *data, size_t len)
{
	struct wctx *w = ctx;
	w->pos += len;
	return azl_out_write(w->o, data, len);
}

static int pad_to(struct wctx *w, uint64_t to)
{
	static const unsigned char zero[512];
	int rc = 0;

	while (rc == 0 && w->pos < to) {
		size_t k = to - w->pos < sizeof(zero) ? (size_t)(to - w->pos) : sizeof(zero);
		rc = wfn(w, zero, k);
	}
	return rc;
}

static int copy_host(struct wctx *w, const char *path, struct azl_err *err)
{
	char chunk[1 << 16];
	ssize_t got;
	int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return azl_errf(err, -errno, "%s: %s", path, strerror(errno));
	while (rc == 0 && (got = read(fd, chunk, sizeof(chunk))) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			rc = azl_errf(err, -errno, "%s: %s", path, strerror(errno));
		else
			rc = wfn(w, chunk, (size_t)got);
	}
	close(fd);
	return rc;
}

static int write_input(struct wctx *w, const struct azl_uki_input *in,
		       struct azl_err *err)
{
	if (in->node)
		return azl_node_read(in->node, wfn, w, err);
	if (in->path)
		return copy_host(w, in->path, err);
	return in->len ? wfn(w, in->data, in->len) : 0;
}

int azl_uki_write(const void *stub, size_t stub_len,
		  const struct azl_uki_input *in, size_t n,
		  const char *out_path, struct azl_err *err)
{
	struct azl_out o = { .fd = -1 };
	struct wctx w = { &o, 0 };
	struct pe pe;
	uint64_t *off = azl_xcalloc(n ? n : 1, sizeof(*off));
	int rc = pe_parse(stub, stub_len, &pe, err);

	if (rc == 0)
		rc = pe_add_sections(&pe, in, n, off, err);
	if (rc == 0)
		rc = azl_out_open(&o, out_path, 0644, err);
	if (rc < 0)
		goto out;
	rc = wfn(&w, pe.img, pe.len);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = pad_to(&w, off[i]);
		if (rc == 0)
			rc = write_input(&w, &in[i], err);
	}
	if (rc == 0)
		rc = pad_to(&w, align_up(w.pos, pe.falign));
	if (rc < 0) {
		azl_out_abort(&o);
		if (!err || !err->code)
			azl_errf(err, rc, "%s: write failed", out_path);
		goto out;
	}
	rc = azl_out_commit(&o, err);
out:
	if (rc < 0)
		azl_err_prefix(err, "UKI %s", out_path);
	free(pe.img);
	free(off);
	return rc;
}

int azl_efi_source(struct azl_fs *fs, const char *model_path,
		   const char *host_path, struct azl_buf *b,
		   struct azl_efi_origin *origin, struct azl_err *err)
{
	struct azl_err e = { 0 };
	char *data = NULL;
	size_t len = 0;
	int rc = azl_model_read(fs, model_path, 64u << 20, b, &e);

	memset(origin, 0, sizeof(*origin));
	if (rc == 0) {
		strcpy(origin->where, "image");
		snprintf(origin->path, sizeof(origin->path), "%s", model_path);
	} else if (rc == -ENOENT) {
		rc = azl_read_file(host_path, 0, &data, &len, err);
		if (rc < 0)
			return azl_err_prefix(err, "%s is not in the image and the host's", model_path);
		azl_buf_reset(b);
		azl_buf_add(b, data, len);
		free(data);
		strcpy(origin->where, "host");
		snprintf(origin->path, sizeof(origin->path), "%s", host_path);
	} else {
		if (err)
			*err = e;
		return rc;
	}
	azl_sha256_hex(b->data, b->len, origin->sha256);
	return 0;
}

int azl_uki_build(struct azl_fs *fs, const struct azl_kernel *k,
		  const struct azl_uki_opts *o, const char *out_path,
		  struct azl_efi_origin *stub, struct azl_err *err)
{
	struct azl_buf sb = AZL_BUF_INIT, osrel = AZL_BUF_INIT;
	struct azl_efi_origin origin;
	struct azl_uki_input in[4];
	struct azl_err e = { 0 };
	struct azl_node *linux_node;
	char *real = NULL;
	size_t n = 0;
	int rc = azl_efi_source(fs, AZL_UKI_STUB_MODEL,
				o->stub_path ? o->stub_path : AZL_UKI_STUB_HOST, &sb, &origin, err);

	if (rc < 0)
		goto out;
	rc = azl_fs_resolve(fs, k->vmlinuz, true, &real, err);
	linux_node = rc == 0 ? azl_fs_get(fs, real) : NULL;
	if (!linux_node || linux_node->type != AZL_FT_REG) {
		rc = azl_errf(err, -ENOENT, "kernel %s: %s is not a file in the image",
			      k->version, k->vmlinuz);
		goto out;
	}
	memset(in, 0, sizeof(in));
	if (azl_model_read(fs, "/etc/os-release", 1 << 20, &osrel, &e) == 0)
		in[n++] = (struct azl_uki_input){ .name = ".osrel", .data = osrel.data, .len = osrel.len };
	in[n++] = (struct azl_uki_input){ .name = ".cmdline", .data = o->cmdline,
					  .len = o->cmdline ? strlen(o->cmdline) : 0 };
	if (o->initrd_path)
		in[n++] = (struct azl_uki_input){ .name = ".initrd", .path = o->initrd_path };
	in[n++] = (struct azl_uki_input){ .name = ".linux", .node = linux_node };
	rc = azl_uki_write(sb.data, sb.len, in, n, out_path, err);
	if (rc == 0 && stub)
		*stub = origin;
out:
	free(real);
	azl_buf_release(&sb);
	azl_buf_release(&osrel);
	return rc;
}

int azl_uki_systemd_boot(struct azl_fs *fs, const char *host_path,
			 const char *esp_dir, struct azl_efi_origin *sdboot,
			 struct azl_err *err)
{
	struct azl_buf b = AZL_BUF_INIT;
	struct azl_efi_origin origin;
	char *boot = azl_path_join(esp_dir, "EFI/BOOT"), *linux_dir = azl_path_join(esp_dir, "EFI/Linux");
	char *loader = azl_path_join(esp_dir, "loader"), *efi = azl_path_join(boot, "BOOTX64.EFI");
	char *conf = azl_path_join(loader, "loader.conf");
	int rc = azl_efi_source(fs, AZL_UKI_SDBOOT_MODEL, host_path ? host_path : AZL_UKI_SDBOOT_HOST,
				&b, &origin, err);

	if (rc == 0)
		rc = azl_mkdir_p(boot, err);
	if (rc == 0)
		rc = azl_mkdir_p(linux_dir, err);
	if (rc == 0)
		rc = azl_mkdir_p(loader, err);
	if (rc == 0)
		rc = azl_write_file_atomic(efi, b.data, b.len, 0644, err);
	if (rc == 0)
		rc = azl_write_file_atomic(conf, AZL_UKI_LOADER_CONF, strlen(AZL_UKI_LOADER_CONF),
					   0644, err);
	if (rc == 0 && sdboot)
		*sdboot = origin;
	free(boot);
	free(linux_dir);
	free(loader);
	free(efi);
	free(conf);
	azl_buf_release(&b);
	return rc;
}
