/* Fixed VHD footer: the specification's CHS algorithm (values worked by
 * hand from its pseudo-code), time base, checksum, parse/validate. */
#include <fcntl.h>
#include <unistd.h>

#include "reproducible/vhd.h"
#include "t.h"

static void chs_is(uint64_t size, unsigned c, unsigned h, unsigned s)
{
	uint16_t cc;
	uint8_t hh, ss;

	azl_vhd_chs(size, &cc, &hh, &ss);
	CHECK(cc == c && hh == h && ss == s);
	if (cc != c || hh != h || ss != s)
		fprintf(stderr, "  %llu bytes: got %u/%u/%u, want %u/%u/%u\n",
			(unsigned long long)size, cc, hh, ss, c, h, s);
}

static void test_chs(void)
{
	const uint64_t M = 1ull << 20, G = 1ull << 30;

	chs_is(1 * M, 30, 4, 17);        /* heads raised to the minimum 4 */
	chs_is(64 * M, 963, 8, 17);
	chs_is(100 * M, 1003, 12, 17);
	chs_is(4 * G, 8322, 16, 63);     /* 17 and 31 sectors overflow */
	chs_is(30 * G, 62415, 16, 63);
	chs_is(127 * G, 65278, 16, 255);
	chs_is(200 * G, 65535, 16, 255); /* capped at the maximum */
}

static void test_time(void)
{
	CHECK(azl_vhd_time(946684800) == 0);
	CHECK(azl_vhd_time(0) == 0);
	CHECK(azl_vhd_time(1700000000) == 1700000000u - 946684800u);
}

static void test_footer(void)
{
	unsigned char f[512], uuid[16];
	struct azl_vhd_footer v;
	struct azl_err err = { 0 };
	uint32_t sum = 0;

	for (int i = 0; i < 16; i++)
		uuid[i] = (unsigned char)(i * 17);
	azl_vhd_footer_render(4ull << 30, 1700000000, uuid, f);
	CHECK(!memcmp(f, "conectix", 8));
	CHECK(!memcmp(f + 28, "win ", 4));
	CHECK(f[63] == 2);                   /* fixed */
	for (int i = 16; i < 24; i++)
		CHECK(f[i] == 0xff);             /* no data offset */
	/* Checksum: one's complement of the byte sum without its own field. */
	for (int i = 0; i < 512; i++)
		if (i < 64 || i >= 68)
			sum += f[i];
	CHECK(((uint32_t)f[64] << 24 | f[65] << 16 | f[66] << 8 | f[67]) == ~sum);

	CHECK(azl_vhd_footer_parse(f, &v, &err) == 0);
	CHECK(v.current_size == 4ull << 30 && v.original_size == 4ull << 30);
	CHECK(v.cylinders == 8322 && v.heads == 16 && v.sectors == 63);
	CHECK(v.timestamp == 1700000000u - 946684800u);
	CHECK(!memcmp(v.uuid, uuid, 16));
	CHECK_STR(v.creator_app, "win ");

	f[100] ^= 1;
	CHECK(azl_vhd_footer_parse(f, &v, &err) < 0);
	CHECK_CONTAINS(err.msg, "checksum");
	f[100] ^= 1;
	f[58] = 4;                           /* heads: wrong geometry */
	sum = azl_vhd_checksum(f);           /* keep the checksum right */
	f[64] = (unsigned char)(sum >> 24);
	f[65] = (unsigned char)(sum >> 16);
	f[66] = (unsigned char)(sum >> 8);
	f[67] = (unsigned char)sum;
	CHECK(azl_vhd_footer_parse(f, &v, &err) < 0);
	CHECK_CONTAINS(err.msg, "geometry");
	f[0] = 'C';
	CHECK(azl_vhd_footer_parse(f, &v, &err) < 0);
	CHECK_CONTAINS(err.msg, "cookie");
}

static void test_file(void)
{
	char path[] = "/tmp/azl-vhd-XXXXXX";
	unsigned char f[512], uuid[16] = { 1 };
	struct azl_vhd_footer v;
	struct azl_err err = { 0 };
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	azl_vhd_footer_render(1 << 20, 1, uuid, f);
	CHECK(pwrite(fd, f, 512, 1 << 20) == 512);
	CHECK(azl_vhd_check_file(path, &v, &err) == 0);
	CHECK(ftruncate(fd, (1 << 20) + 1024) == 0);
	CHECK(pwrite(fd, f, 512, (1 << 20) + 512) == 512);
	CHECK(azl_vhd_check_file(path, &v, &err) < 0);
	CHECK_CONTAINS(err.msg, "footer says");
	close(fd);
	unlink(path);
}

int main(void)
{
	test_chs();
	test_time();
	test_footer();
	test_file();
	return t_done();
}
