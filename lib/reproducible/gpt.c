#include "reproducible/gpt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "base/buf.h"
#include "base/fs.h"

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int azl_guid_parse(const char *s, unsigned char out[16])
{
	size_t n = 0;

	if (!s || strlen(s) != 36)
		return -EINVAL;
	for (size_t i = 0; i < 36;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i++] != '-')
				return -EINVAL;
			continue;
		}
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[n++] = (unsigned char)(hi << 4 | lo);
		i += 2;
	}
	return 0;
}

void azl_guid_to_disk(const unsigned char in[16], unsigned char out[16])
{
	static const int order[16] = { 3, 2, 1, 0, 5, 4, 7, 6,
				       8, 9, 10, 11, 12, 13, 14, 15 };
	unsigned char tmp[16];

	for (int i = 0; i < 16; i++)
		tmp[i] = in[order[i]];
	memcpy(out, tmp, 16);
}

uint64_t azl_gpt_first_usable(void)
{
	return AZL_GPT_HEAD_SECTORS;
}

uint64_t azl_gpt_last_usable(uint64_t total_sectors)
{
	return total_sectors - AZL_GPT_TAIL_SECTORS - 1;
}

static void render_pmbr(uint64_t total, unsigned char *s)
{
	unsigned char *e = s + 446;
	uint64_t n = total - 1;

	memset(s, 0, AZL_SECTOR);
	/* One 0xEE entry over the whole disk (capped), CHS "unknown". */
	e[1] = 0x00; e[2] = 0x02; e[3] = 0x00;
	e[4] = 0xEE;
	e[5] = 0xFF; e[6] = 0xFF; e[7] = 0xFF;
	put32(e + 8, 1);
	put32(e + 12, n > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)n);
	s[510] = 0x55;
	s[511] = 0xAA;
}

static int render_entry(const struct azl_gpt_part *p, unsigned char *e,
			struct azl_err *err)
{
	size_t len = p->name ? strlen(p->name) : 0;

	if (len > AZL_GPT_NAME_MAX)
		return azl_err_input(err, "partition name \"%s\" is longer than "
				     "%u characters", p->name, AZL_GPT_NAME_MAX);
	azl_guid_to_disk(p->type, e);
	azl_guid_to_disk(p->uuid, e + 16);
	put64(e + 32, p->first_lba);
	put64(e + 40, p->last_lba);
	put64(e + 48, p->attrs);
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)p->name[i] < 0x20 || (unsigned char)p->name[i] > 0x7e)
			return azl_err_input(err, "partition name \"%s\": only "
					     "printable ASCII", p->name);
		put16(e + 56 + 2 * i, (unsigned char)p->name[i]);
	}
	return 0;
}

/* Entry index of part i. */
static size_t slot(const struct azl_gpt *g, size_t i)
{
	return g->parts[i].number ? g->parts[i].number - 1u : i;
}

static int check_parts(const struct azl_gpt *g, struct azl_err *err)
{
	uint64_t lo = azl_gpt_first_usable();
	uint64_t hi = azl_gpt_last_usable(g->total_sectors);

	if (g->nparts > AZL_GPT_ENTRIES)
		return azl_err_input(err, "%zu partitions: GPT holds %u",
				     g->nparts, AZL_GPT_ENTRIES);
	for (size_t i = 0; i < g->nparts; i++) {
		const struct azl_gpt_part *p = &g->parts[i];
		if (p->first_lba < lo || p->last_lba > hi || p->first_lba > p->last_lba)
			return azl_err_input(err, "partition %zu (%s): sectors "
					     "%llu-%llu outside the usable %llu-%llu",
					     i + 1, p->name ? p->name : "",
					     (unsigned long long)p->first_lba,
					     (unsigned long long)p->last_lba,
					     (unsigned long long)lo,
					     (unsigned long long)hi);
		if (slot(g, i) >= AZL_GPT_ENTRIES)
			return azl_err_input(err, "partition %zu (%s): number %u is beyond the %u GPT entries",
					     i + 1, p->name ? p->name : "", p->number, AZL_GPT_ENTRIES);
		for (size_t j = 0; j < i; j++)
			if (slot(g, j) == slot(g, i))
				return azl_err_input(err, "partitions %zu and %zu both use GPT entry %zu",
						     j + 1, i + 1, slot(g, i) + 1);
		for (size_t j = 0; j < i; j++)
			if (p->first_lba <= g->parts[j].last_lba &&
			    g->parts[j].first_lba <= p->last_lba)
				return azl_err_input(err, "partitions %zu and "
						     "%zu overlap", j + 1, i + 1);
	}
	return 0;
}

static void render_header(const struct azl_gpt *g, unsigned char *h,
			  uint64_t my, uint64_t alt, uint64_t entries_lba,
			  uint32_t entries_crc)
{
	memset(h, 0, AZL_SECTOR);
	memcpy(h, "EFI PART", 8);
	put32(h + 8, 0x00010000);
	put32(h + 12, 92);
	put64(h + 24, my);
	put64(h + 32, alt);
	put64(h + 40, azl_gpt_first_usable());
	put64(h + 48, azl_gpt_last_usable(g->total_sectors));
	azl_guid_to_disk(g->disk_guid, h + 56);
	put64(h + 72, entries_lba);
	put32(h + 80, AZL_GPT_ENTRIES);
	put32(h + 84, AZL_GPT_ENTRY_SIZE);
	put32(h + 88, entries_crc);
	put32(h + 16, (uint32_t)crc32(0, h, 92));
}

int azl_gpt_render(const struct azl_gpt *g, unsigned char *head,
		   unsigned char *tail, struct azl_err *err)
{
	const size_t esz = AZL_GPT_ENTRIES * AZL_GPT_ENTRY_SIZE;
	unsigned char *entries = head + 2 * AZL_SECTOR;
	uint64_t last = g->total_sectors - 1;
	uint32_t crc;
	int r;

	/* Room for both tables and at least one usable sector. */
	if (g->total_sectors < AZL_GPT_HEAD_SECTORS + AZL_GPT_TAIL_SECTORS + 1)
		return azl_err_input(err, "disk of %llu sectors is too small "
				     "for a GPT", (unsigned long long)g->total_sectors);
	if ((r = check_parts(g, err)) < 0)
		return r;
	render_pmbr(g->total_sectors, head);
	memset(entries, 0, esz);
	for (size_t i = 0; i < g->nparts; i++)
		if ((r = render_entry(&g->parts[i], entries + slot(g, i) * AZL_GPT_ENTRY_SIZE,
				      err)) < 0)
			return r;
	crc = (uint32_t)crc32(0, entries, (uInt)esz);
	render_header(g, head + AZL_SECTOR, 1, last, 2, crc);
	memcpy(tail, entries, esz);
	render_header(g, tail + esz, last, 1, last - 32, crc);
	return 0;
}

int azl_gpt_write(int fd, const char *what, const struct azl_gpt *g,
		  struct azl_err *err)
{
	unsigned char *head = azl_xmalloc(AZL_GPT_HEAD_SECTORS * AZL_SECTOR);
	unsigned char *tail = azl_xmalloc(AZL_GPT_TAIL_SECTORS * AZL_SECTOR);
	off_t tail_off;
	int r;

	if ((r = azl_gpt_render(g, head, tail, err)) < 0)
		goto out;
	tail_off = (off_t)((g->total_sectors - AZL_GPT_TAIL_SECTORS) * AZL_SECTOR);
	if (pwrite(fd, head, AZL_GPT_HEAD_SECTORS * AZL_SECTOR, 0) !=
		    (ssize_t)(AZL_GPT_HEAD_SECTORS * AZL_SECTOR) ||
	    pwrite(fd, tail, AZL_GPT_TAIL_SECTORS * AZL_SECTOR, tail_off) !=
		    (ssize_t)(AZL_GPT_TAIL_SECTORS * AZL_SECTOR)) {
		r = azl_errf(err, errno ? errno : EIO, "%s: writing the partition "
			     "table: %s", what, strerror(errno ? errno : EIO));
		goto out;
	}
	r = 0;
out:
	free(head);
	free(tail);
	return r;
}
