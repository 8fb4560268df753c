/* GPT writer: GUID byte order, both headers and their CRCs, the protective
 * MBR, range and overlap checks.  sfdisk/sgdisk read the result in
 * tests/integration/disk_tools.sh. */
#include <zlib.h>

#include "base/buf.h"
#include "reproducible/gpt.h"
#include "t.h"

static uint64_t le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void test_guid(void)
{
	unsigned char g[16], d[16];

	CHECK(azl_guid_parse(AZL_GPT_TYPE_ESP, g) == 0);
	CHECK(g[0] == 0xc1 && g[3] == 0x28 && g[15] == 0x3b);
	azl_guid_to_disk(g, d);
	/* On disk: 28 73 2A C1 1F F8 D2 11 BA 4B 00 A0 C9 3E C9 3B */
	CHECK(d[0] == 0x28 && d[1] == 0x73 && d[2] == 0x2a && d[3] == 0xc1);
	CHECK(d[4] == 0x1f && d[5] == 0xf8 && d[6] == 0xd2 && d[7] == 0x11);
	CHECK(d[8] == 0xba && d[15] == 0x3b);
	CHECK(azl_guid_parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", d) == 0);
	CHECK(!memcmp(g, d, 16));
	CHECK(azl_guid_parse("c12a7328f81f-11d2-ba4b-00a0c93ec93b-", d) < 0);
	CHECK(azl_guid_parse("g12a7328-f81f-11d2-ba4b-00a0c93ec93b", d) < 0);
	CHECK(azl_guid_parse("c12a7328-f81f-11d2-ba4b-00a0c93ec93", d) < 0);
}

static void check_header(const unsigned char *h, uint64_t my, uint64_t alt,
			 uint64_t entries, const unsigned char *array,
			 uint64_t total)
{
	unsigned char copy[92];

	CHECK(!memcmp(h, "EFI PART", 8));
	CHECK(le(h + 8, 4) == 0x00010000 && le(h + 12, 4) == 92);
	memcpy(copy, h, 92);
	memset(copy + 16, 0, 4);
	CHECK(le(h + 16, 4) == crc32(0, copy, 92));
	CHECK(le(h + 24, 8) == my && le(h + 32, 8) == alt);
	CHECK(le(h + 40, 8) == 34 && le(h + 48, 8) == total - 34);
	CHECK(le(h + 72, 8) == entries);
	CHECK(le(h + 80, 4) == 128 && le(h + 84, 4) == 128);
	CHECK(le(h + 88, 4) == crc32(0, array, 128 * 128));
	int nonzero = 0;
	for (int i = 92; i < 512; i++)
		nonzero |= h[i];
	CHECK(nonzero == 0);
}

static void test_render(void)
{
	const uint64_t total = 65536; /* 32 MiB */
	struct azl_gpt_part parts[2] = {
		{ .first_lba = 2048, .last_lba = 10239, .name = "esp" },
		{ .first_lba = 10240, .last_lba = 63487, .name = "root",
		  .attrs = 1ull << 59 },
	};
	struct azl_gpt g = { total, { 0 }, parts, 2 };
	unsigned char *head = azl_xmalloc(34 * 512), *tail = azl_xmalloc(33 * 512);
	struct azl_err err = { 0 };
	const unsigned char *e;

	azl_guid_parse(AZL_GPT_TYPE_ESP, parts[0].type);
	azl_guid_parse(AZL_GPT_TYPE_ROOT_X86_64, parts[1].type);
	for (int i = 0; i < 16; i++) {
		parts[0].uuid[i] = (unsigned char)i;
		parts[1].uuid[i] = (unsigned char)(0x80 + i);
		g.disk_guid[i] = (unsigned char)(0x40 + i);
	}
	CHECK(azl_gpt_render(&g, head, tail, &err) == 0);
	/* Protective MBR: one 0xEE entry from LBA 1 over the disk. */
	CHECK(head[446 + 4] == 0xee && le(head + 446 + 8, 4) == 1);
	CHECK(le(head + 446 + 12, 4) == total - 1);
	CHECK(head[510] == 0x55 && head[511] == 0xaa);
	CHECK(head[446 + 16 + 4] == 0);
	check_header(head + 512, 1, total - 1, 2, head + 1024, total);
	check_header(tail + 32 * 512, total - 1, 1, total - 33, tail, total);
	CHECK(!memcmp(head + 1024, tail, 128 * 128));
	e = head + 1024 + 128;
	CHECK(e[0] == 0xe3 && e[1] == 0xbc && e[2] == 0x68 && e[3] == 0x4f);
	CHECK(e[16] == 0x83 && e[19] == 0x80 && e[31] == 0x8f);
	CHECK(le(e + 32, 8) == 10240 && le(e + 40, 8) == 63487);
	CHECK(le(e + 48, 8) == 1ull << 59);
	CHECK(e[56] == 'r' && e[57] == 0 && e[62] == 't' && e[64] == 0);
	CHECK(head[512 + 56] == 0x43 && head[512 + 59] == 0x40); /* disk GUID mixed-endian */

	/* Errors: overlap, out of the usable range, long or non-ASCII name. */
	parts[1].first_lba = 10000;
	CHECK(azl_gpt_render(&g, head, tail, &err) < 0);
	CHECK_CONTAINS(err.msg, "overlap");
	parts[1].first_lba = 10240;
	parts[1].last_lba = total - 33;
	CHECK(azl_gpt_render(&g, head, tail, &err) < 0);
	CHECK_CONTAINS(err.msg, "outside the usable");
	parts[1].last_lba = total - 34;
	CHECK(azl_gpt_render(&g, head, tail, &err) == 0);
	parts[1].name = "a-name-that-is-far-too-long-for-a-gpt-entry";
	CHECK(azl_gpt_render(&g, head, tail, &err) < 0);
	CHECK_CONTAINS(err.msg, "longer than 36");
	parts[1].name = "r\xc3\xa9";
	CHECK(azl_gpt_render(&g, head, tail, &err) < 0);
	CHECK_CONTAINS(err.msg, "ASCII");
	g.total_sectors = 60;
	CHECK(azl_gpt_render(&g, head, tail, &err) < 0);
	CHECK_CONTAINS(err.msg, "too small");
	free(head);
	free(tail);
}

int main(void)
{
	test_guid();
	test_render();
	return t_done();
}
