#include "compose/emit_disk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "reproducible/gpt.h"
#include "reproducible/vhd.h"

#define MIB ((uint64_t)AZL_DISK_ALIGN)
#define MAX_BYTES (1ull << 50) /* 1 PiB: far above any image, far below overflow */
#define CHUNK (1u << 20)

void azl_disk_layout_seed(const struct azl_seed *s, struct azl_disk_layout *l)
{
	azl_seed_uuid(s, "gpt-disk-guid", l->disk_guid);
	azl_seed_uuid(s, "vhd-unique-id", l->vhd_uuid);
}

void azl_disk_part_seed(const struct azl_seed *s, struct azl_disk_part *p)
{
	char *purpose = azl_xasprintf("gpt-part-uuid:%s", p->label ? p->label : "");
	unsigned char id[4];

	azl_seed_uuid(s, purpose, p->uuid);
	free(purpose);
	purpose = azl_xasprintf("vfat-volume-id:%s", p->label ? p->label : "");
	azl_seed_derive(s, purpose, id, sizeof(id));
	free(purpose);
	p->fat.volume_id = (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 |
			   (uint32_t)id[2] << 8 | id[3];
}

int azl_disk_root_type(const char *arch, unsigned char type[16],
		       struct azl_err *err)
{
	if (arch && !strcmp(arch, "x86_64"))
		return azl_guid_parse(AZL_GPT_TYPE_ROOT_X86_64, type);
	if (arch && (!strcmp(arch, "aarch64") || !strcmp(arch, "arm64")))
		return azl_guid_parse(AZL_GPT_TYPE_ROOT_ARM64, type);
	return azl_err_input(err, "no root partition type for architecture "
			     "\"%s\" (x86_64, aarch64)", arch ? arch : "");
}

static uint64_t mib_up(uint64_t v)
{
	return (v + MIB - 1) / MIB * MIB;
}

static uint64_t mib_of(uint64_t v)
{
	return mib_up(v) / MIB;
}

/* Partition name for messages. */
static const char *pname(const struct azl_disk_part *p)
{
	return p->label && *p->label ? p->label : "(unnamed)";
}

static int content_size(const struct azl_disk_part *p, uint64_t *need,
			struct azl_err *err)
{
	struct stat st;
	int r;

	*need = 0;
	switch (p->source) {
	case AZL_PART_EMPTY:
		return 0;
	case AZL_PART_IMAGE:
		if (!p->image || stat(p->image, &st) < 0)
			return azl_errf(err, p->image ? errno : EINVAL,
					"partition %s: image %s: %s", pname(p),
					p->image ? p->image : "(none)",
					strerror(p->image ? errno : EINVAL));
		*need = (uint64_t)st.st_size;
		if (!p->tail_image)
			return 0;
		if (stat(p->tail_image, &st) < 0)
			return azl_errf(err, errno, "partition %s: image %s: %s", pname(p),
					p->tail_image, strerror(errno));
		if (p->tail_offset < *need || p->tail_offset > MAX_BYTES)
			return azl_err_input(err, "partition %s: %s would overlap %s",
					     pname(p), p->tail_image, p->image);
		*need = p->tail_offset + (uint64_t)st.st_size;
		return 0;
	case AZL_PART_FAT:
		if ((r = azl_fat_min_size(&p->fat, need, err)) < 0)
			azl_err_prefix(err, "partition %s", pname(p));
		return r;
	case AZL_PART_FILL:
		if (!p->fill)
			return azl_errf(err, EINVAL, "partition %s: no writer", pname(p));
		*need = p->fill_min;
		return 0;
	}
	return azl_err_input(err, "partition %s: unknown content source %d",
			     pname(p), (int)p->source);
}

/* Bytes given to part p: its fixed size, or its content rounded to MiB. */
static int part_bytes(const struct azl_disk_part *p, uint64_t *bytes,
		      struct azl_err *err)
{
	uint64_t need;
	int r;

	if ((r = content_size(p, &need, err)) < 0)
		return r;
	if (p->size != AZL_DISK_REST && p->size > MAX_BYTES)
		return azl_err_input(err, "partition %s: size %llu is too large",
				     pname(p), (unsigned long long)p->size);
	if (p->size == 0 || p->size == AZL_DISK_REST) {
		*bytes = need ? mib_up(need) : MIB;
		return 0;
	}
	*bytes = mib_up(p->size);
	if (need > *bytes)
		return azl_err_input(err, "partition %s: %llu MiB is too small: "
				     "its content needs %llu MiB", pname(p),
				     (unsigned long long)mib_of(*bytes),
				     (unsigned long long)mib_of(need));
	return 0;
}

static int check_layout(const struct azl_disk_layout *l, struct azl_err *err)
{
	size_t rest = 0;

	if (!l->nparts || l->nparts > AZL_DISK_MAX_PARTS)
		return azl_err_input(err, "a disk needs 1 to %u partitions, not %zu",
				     AZL_DISK_MAX_PARTS, l->nparts);
	for (size_t i = 0; i < l->nparts; i++)
		rest += l->parts[i].size == AZL_DISK_REST;
	if (rest > 1)
		return azl_err_input(err, "only one partition can take the rest "
				     "of the disk");
	if (l->size % MIB || l->size > MAX_BYTES)
		return azl_err_input(err, "disk size %llu bytes: it must be a "
				     "whole number of MiB (Azure requires it) "
				     "and at most 1 PiB", (unsigned long long)l->size);
	return 0;
}

int azl_disk_plan(const struct azl_disk_layout *l, struct azl_disk_result *res,
		  struct azl_err *err)
{
	uint64_t bytes[AZL_DISK_MAX_PARTS], used = 2 * MIB, disk, lba;
	int r;

	memset(res, 0, sizeof(*res));
	if ((r = check_layout(l, err)) < 0)
		return r;
	for (size_t i = 0; i < l->nparts; i++) {
		if ((r = part_bytes(&l->parts[i], &bytes[i], err)) < 0)
			return r;
		used += bytes[i];
	}
	res->min_size = used;
	disk = l->size ? l->size : used;
	if (disk < used)
		return azl_err_input(err, "disk size %llu MiB is too small: the "
				     "partitions and the partition table need "
				     "%llu MiB", (unsigned long long)(disk / MIB),
				     (unsigned long long)(used / MIB));
	lba = MIB / AZL_SECTOR;
	for (size_t i = 0; i < l->nparts; i++) {
		if (l->parts[i].size == AZL_DISK_REST)
			bytes[i] += disk - used;
		res->first_lba[i] = lba;
		res->last_lba[i] = lba + bytes[i] / AZL_SECTOR - 1;
		lba = res->last_lba[i] + 1;
	}
	res->disk_size = disk;
	res->file_size = disk + (l->format == AZL_DISK_VHD ? AZL_VHD_FOOTER_SIZE : 0);
	return 0;
}

static bool all_zero(const char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

/* Fallback when copy_file_range cannot work across these files: zero
 * chunks are skipped, so they stay holes. */
static int copy_rw(int in, off_t ioff, int out, off_t ooff, uint64_t n)
{
	char *buf = azl_xmalloc(CHUNK);
	int r = 0;

	while (n && r == 0) {
		size_t want = n < CHUNK ? (size_t)n : CHUNK;
		ssize_t got = pread(in, buf, want, ioff);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			r = got < 0 ? -errno : -EIO;
			break;
		}
		if (!all_zero(buf, (size_t)got) &&
		    pwrite(out, buf, (size_t)got, ooff) != got)
			r = -(errno ? errno : EIO);
		ioff += got;
		ooff += got;
		n -= (uint64_t)got;
	}
	free(buf);
	return r;
}

static int copy_range(int in, off_t ioff, int out, off_t ooff, uint64_t n)
{
	while (n) {
		ssize_t c = copy_file_range(in, &ioff, out, &ooff, n, 0);
		if (c > 0) {
			n -= (uint64_t)c;
			continue;
		}
		if (c == 0)
			return -EIO; /* the image shrank under us */
		if (errno == EINTR)
			continue;
		if (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
		    errno == EOPNOTSUPP)
			return copy_rw(in, ioff, out, ooff, n);
		return -errno;
	}
	return 0;
}

/* Copy the data extents of path to out at base; holes stay holes. */
static int copy_image(int out, uint64_t base, uint64_t room,
		      const struct azl_disk_part *p, const char *path,
		      struct azl_err *err)
{
	int in = open(path, O_RDONLY | O_CLOEXEC), r = 0;
	struct stat st;
	uint64_t pos = 0;

	if (in < 0 || fstat(in, &st) < 0) {
		r = azl_errf(err, errno, "partition %s: image %s: %s", pname(p),
			     path, strerror(errno));
		goto out;
	}
	if ((uint64_t)st.st_size > room) {
		r = azl_err_input(err, "partition %s: image %s grew to %llu bytes",
				  pname(p), path, (unsigned long long)st.st_size);
		goto out;
	}
	while (pos < (uint64_t)st.st_size && r == 0) {
		uint64_t d, h;
		azl_next_data(in, pos, (uint64_t)st.st_size, &d, &h);
		r = copy_range(in, (off_t)d, out, (off_t)(base + d), h - d);
		pos = h;
	}
	if (r < 0)
		r = azl_errf(err, r, "partition %s: copying %s: %s", pname(p),
			     path, strerror(-r));
out:
	if (in >= 0)
		close(in);
	return r;
}

static int write_part(int fd, const char *path, const struct azl_disk_part *p,
		      uint64_t first, uint64_t last, const char *what,
		      struct azl_err *err)
{
	uint64_t off = first * AZL_SECTOR, room = (last - first + 1) * AZL_SECTOR;
	int r;

	switch (p->source) {
	case AZL_PART_IMAGE:
		r = copy_image(fd, off, room, p, p->image, err);
		if (r == 0 && p->tail_image)
			r = copy_image(fd, off + p->tail_offset, room - p->tail_offset,
				       p, p->tail_image, err);
		return r;
	case AZL_PART_FAT:
		return azl_fat_write(fd, off, room, (uint32_t)first, &p->fat,
				     what, err);
	case AZL_PART_FILL:
		r = p->fill(p->fill_ctx, path, off, room, err);
		return r < 0 ? azl_err_prefix(err, "partition %s", pname(p)) : 0;
	default:
		return 0;
	}
}

static int write_disk(int fd, const char *path, const char *what,
		      const struct azl_disk_layout *l,
		      const struct azl_disk_result *res, struct azl_err *err)
{
	struct azl_gpt_part gp[AZL_DISK_MAX_PARTS];
	struct azl_gpt g = { res->disk_size / AZL_SECTOR, { 0 }, gp, l->nparts };
	unsigned char footer[AZL_VHD_FOOTER_SIZE];
	int r;

	memcpy(g.disk_guid, l->disk_guid, 16);
	for (size_t i = 0; i < l->nparts; i++) {
		const struct azl_disk_part *p = &l->parts[i];
		memcpy(gp[i].type, p->type, 16);
		memcpy(gp[i].uuid, p->uuid, 16);
		gp[i].first_lba = res->first_lba[i];
		gp[i].last_lba = res->last_lba[i];
		gp[i].attrs = p->attrs;
		gp[i].name = p->label;
		gp[i].number = p->number;
	}
	if (ftruncate(fd, (off_t)res->file_size) < 0)
		return azl_errf(err, errno, "%s: %s", what, strerror(errno));
	if ((r = azl_gpt_write(fd, what, &g, err)) < 0)
		return r;
	for (size_t i = 0; i < l->nparts; i++)
		if ((r = write_part(fd, path, &l->parts[i], res->first_lba[i],
				    res->last_lba[i], what, err)) < 0)
			return r;
	if (l->format != AZL_DISK_VHD)
		return 0;
	azl_vhd_footer_render(res->disk_size, l->mtime, l->vhd_uuid, footer);
	if (pwrite(fd, footer, sizeof(footer), (off_t)res->disk_size) !=
	    (ssize_t)sizeof(footer))
		return azl_errf(err, errno ? errno : EIO, "%s: writing the VHD "
				"footer: %s", what, strerror(errno ? errno : EIO));
	return 0;
}

int azl_emit_disk(const struct azl_disk_layout *l, const char *out_path,
		  struct azl_disk_result *res, struct azl_err *err)
{
	struct azl_disk_result local;
	struct azl_out out = { .fd = -1 };
	int r;

	if (!res)
		res = &local;
	if ((r = azl_disk_plan(l, res, err)) < 0)
		goto fail;
	if ((r = azl_out_open(&out, out_path, 0644, err)) < 0)
		goto fail;
	if ((r = write_disk(out.fd, out.tmp_path, out_path, l, res, err)) < 0)
		goto fail;
	return azl_out_commit(&out, err);
fail:
	azl_out_abort(&out);
	if (err)
		azl_err_prefix(err, "%s", out_path);
	return r;
}
