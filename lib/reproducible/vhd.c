#include "reproducible/vhd.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void put_be(unsigned char *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static uint64_t get_be(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

void azl_vhd_chs(uint64_t size_bytes, uint16_t *cylinders, uint8_t *heads,
		 uint8_t *sectors)
{
	uint64_t total = size_bytes / 512, cth;
	uint64_t spt, h;

	if (total > 65535ull * 16 * 255)
		total = 65535ull * 16 * 255;
	if (total >= 65535ull * 16 * 63) {
		spt = 255;
		h = 16;
		cth = total / spt;
	} else {
		spt = 17;
		cth = total / spt;
		h = (cth + 1023) / 1024;
		if (h < 4)
			h = 4;
		if (cth >= h * 1024 || h > 16) {
			spt = 31;
			h = 16;
			cth = total / spt;
		}
		if (cth >= h * 1024) {
			spt = 63;
			h = 16;
			cth = total / spt;
		}
	}
	*cylinders = (uint16_t)(cth / h);
	*heads = (uint8_t)h;
	*sectors = (uint8_t)spt;
}

uint32_t azl_vhd_time(int64_t unix_time)
{
	if (unix_time <= AZL_VHD_EPOCH)
		return 0;
	if (unix_time - AZL_VHD_EPOCH > (int64_t)UINT32_MAX)
		return UINT32_MAX;
	return (uint32_t)(unix_time - AZL_VHD_EPOCH);
}

uint32_t azl_vhd_checksum(const unsigned char footer[AZL_VHD_FOOTER_SIZE])
{
	uint32_t sum = 0;

	for (unsigned i = 0; i < AZL_VHD_FOOTER_SIZE; i++)
		if (i < 64 || i >= 68)
			sum += footer[i];
	return ~sum;
}

void azl_vhd_footer_render(uint64_t size_bytes, int64_t unix_time,
			   const unsigned char uuid[16],
			   unsigned char out[AZL_VHD_FOOTER_SIZE])
{
	uint16_t c;
	uint8_t h, s;

	memset(out, 0, AZL_VHD_FOOTER_SIZE);
	memcpy(out, "conectix", 8);
	put_be(out + 8, 2, 4);              /* features: reserved bit */
	put_be(out + 12, 0x00010000, 4);    /* format version 1.0 */
	put_be(out + 16, UINT64_MAX, 8);    /* data offset: none (fixed) */
	put_be(out + 24, azl_vhd_time(unix_time), 4);
	memcpy(out + 28, "win ", 4);        /* see the header comment */
	put_be(out + 32, 0x000a0000, 4);    /* creator version (Hyper-V's) */
	memcpy(out + 36, "Wi2k", 4);
	put_be(out + 40, size_bytes, 8);
	put_be(out + 48, size_bytes, 8);
	azl_vhd_chs(size_bytes, &c, &h, &s);
	put_be(out + 56, c, 2);
	out[58] = h;
	out[59] = s;
	put_be(out + 60, AZL_VHD_TYPE_FIXED, 4);
	memcpy(out + 68, uuid, 16);
	put_be(out + 64, azl_vhd_checksum(out), 4);
}

static void decode(const unsigned char *in, struct azl_vhd_footer *f)
{
	memset(f, 0, sizeof(*f));
	f->timestamp = (uint32_t)get_be(in + 24, 4);
	memcpy(f->creator_app, in + 28, 4);
	f->creator_version = (uint32_t)get_be(in + 32, 4);
	f->creator_os = (uint32_t)get_be(in + 36, 4);
	f->original_size = get_be(in + 40, 8);
	f->current_size = get_be(in + 48, 8);
	f->cylinders = (uint16_t)get_be(in + 56, 2);
	f->heads = in[58];
	f->sectors = in[59];
	f->disk_type = (uint32_t)get_be(in + 60, 4);
	f->checksum = (uint32_t)get_be(in + 64, 4);
	memcpy(f->uuid, in + 68, 16);
}

int azl_vhd_footer_parse(const unsigned char in[AZL_VHD_FOOTER_SIZE],
			 struct azl_vhd_footer *f, struct azl_err *err)
{
	uint16_t c;
	uint8_t h, s;

	if (memcmp(in, "conectix", 8))
		return azl_err_input(err, "VHD footer: no \"conectix\" cookie");
	decode(in, f);
	if (f->checksum != azl_vhd_checksum(in))
		return azl_err_input(err, "VHD footer: checksum %08x, computed %08x",
				     f->checksum, azl_vhd_checksum(in));
	if (get_be(in + 12, 4) != 0x00010000)
		return azl_err_input(err, "VHD footer: format version %08llx, "
				     "expected 00010000",
				     (unsigned long long)get_be(in + 12, 4));
	if (f->disk_type != AZL_VHD_TYPE_FIXED || get_be(in + 16, 8) != UINT64_MAX)
		return azl_err_input(err, "VHD footer: disk type %u (data offset "
				     "%llx), expected a fixed disk", f->disk_type,
				     (unsigned long long)get_be(in + 16, 8));
	azl_vhd_chs(f->current_size, &c, &h, &s);
	if (c != f->cylinders || h != f->heads || s != f->sectors)
		return azl_err_input(err, "VHD footer: geometry %u/%u/%u, the "
				     "specification gives %u/%u/%u for %llu bytes",
				     f->cylinders, f->heads, f->sectors, c, h, s,
				     (unsigned long long)f->current_size);
	return 0;
}

int azl_vhd_check_file(const char *path, struct azl_vhd_footer *f,
		       struct azl_err *err)
{
	unsigned char buf[AZL_VHD_FOOTER_SIZE];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return azl_errf(err, errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)AZL_VHD_FOOTER_SIZE) {
		r = azl_err_input(err, "%s: too small for a VHD", path);
		goto out;
	}
	if (pread(fd, buf, sizeof(buf), st.st_size - AZL_VHD_FOOTER_SIZE) !=
	    (ssize_t)sizeof(buf)) {
		r = azl_errf(err, EIO, "%s: reading the footer", path);
		goto out;
	}
	if ((r = azl_vhd_footer_parse(buf, f, err)) < 0) {
		azl_err_prefix(err, "%s", path);
		goto out;
	}
	if (f->current_size + AZL_VHD_FOOTER_SIZE != (uint64_t)st.st_size)
		r = azl_err_input(err, "%s: file is %lld bytes, footer says "
				  "%llu + 512", path, (long long)st.st_size,
				  (unsigned long long)f->current_size);
out:
	close(fd);
	return r;
}
