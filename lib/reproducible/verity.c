/* dm-verity hash tree writer (see verity.h).  The level geometry follows
 * cryptsetup's hash_levels(): top level first, right after the superblock
 * block. */
#include "reproducible/verity.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"

#define BLK AZL_VERITY_BLOCK
#define HASHES_PER_BLOCK (BLK / 32u)
#define PER_BLOCK_BITS 7u
#define MAX_LEVELS 10
#define CHUNK (1024u * 1024u)

struct level {
	uint64_t first;            /* block index in the tree (superblock = 0) */
	uint64_t written;          /* blocks of this level written */
	unsigned char block[BLK];
	size_t fill;               /* hashes in block */
};

struct tree {
	EVP_MD_CTX *salted, *ctx;
	int levels;
	struct level lv[MAX_LEVELS];
	int out_fd;
	uint64_t out_off;
	unsigned char root[32];
	struct azl_err *err;
};

static int count_levels(uint64_t blocks, uint64_t first[MAX_LEVELS],
			uint64_t *total)
{
	int levels = 0;
	uint64_t pos = 1; /* after the superblock's block */

	while (PER_BLOCK_BITS * levels < 64 && ((blocks - 1) >> (PER_BLOCK_BITS * levels)))
		levels++;
	for (int i = levels - 1; i >= 0; i--) {
		unsigned shift = (i + 1) * PER_BLOCK_BITS;
		uint64_t s = shift >= 64 ? 1 : (blocks + (1ull << shift) - 1) >> shift;
		if (first)
			first[i] = pos;
		pos += s;
	}
	*total = pos;
	return levels;
}

uint64_t azl_verity_tree_size(uint64_t data_size)
{
	uint64_t total = 1, blocks = data_size / BLK;

	if (blocks)
		count_levels(blocks, NULL, &total);
	return total * BLK;
}

static void hash_block(struct tree *t, const void *block, unsigned char out[32])
{
	unsigned int len = 32;
	EVP_MD_CTX_copy_ex(t->ctx, t->salted);
	EVP_DigestUpdate(t->ctx, block, BLK);
	EVP_DigestFinal_ex(t->ctx, out, &len);
}

static int write_at(struct tree *t, uint64_t block, const void *data)
{
	off_t off = (off_t)(t->out_off + block * BLK);
	const unsigned char *p = data;
	size_t done = 0;

	while (done < BLK) {
		ssize_t w = pwrite(t->out_fd, p + done, BLK - done, off + (off_t)done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return azl_errf(t->err, w < 0 ? -errno : -EIO,
					"verity hash tree: write: %s",
					strerror(w < 0 ? errno : EIO));
		done += (size_t)w;
	}
	return 0;
}

/* Add one hash to level i, writing and propagating a block when full (or
 * when flushing). */
static int push(struct tree *t, int i, const unsigned char h[32]);

static int emit_level_block(struct tree *t, int i)
{
	struct level *l = &t->lv[i];
	unsigned char h[32];
	int r;

	memset(l->block + l->fill * 32, 0, BLK - l->fill * 32);
	r = write_at(t, l->first + l->written, l->block);
	if (r < 0)
		return r;
	l->written++;
	l->fill = 0;
	hash_block(t, l->block, h);
	if (i == t->levels - 1) {
		memcpy(t->root, h, 32);
		return 0;
	}
	return push(t, i + 1, h);
}

static int push(struct tree *t, int i, const unsigned char h[32])
{
	struct level *l = &t->lv[i];

	memcpy(l->block + l->fill * 32, h, 32);
	if (++l->fill < HASHES_PER_BLOCK)
		return 0;
	return emit_level_block(t, i);
}

static int data_hash(struct tree *t, const unsigned char h[32])
{
	if (t->levels == 0) {
		memcpy(t->root, h, 32);
		return 0;
	}
	return push(t, 0, h);
}

/* Next [data_begin, data_end) at or after off, block-aligned outward;
 * without SEEK_DATA support everything is data. */
static void next_data(int fd, uint64_t off, uint64_t size, uint64_t *b, uint64_t *e)
{
	uint64_t d, h;

	azl_next_data(fd, off, size, &d, &h);
	if (d >= size) {
		*b = *e = size;
		return;
	}
	*b = d / BLK * BLK;
	if (*b < off)
		*b = off;
	*e = (h + BLK - 1) / BLK * BLK;
	if (*e > size)
		*e = size;
	if (*e <= *b)
		*e = *b + BLK;
}

static int hash_data(struct tree *t, int fd, uint64_t size)
{
	unsigned char *buf = azl_xmalloc(CHUNK), zero_h[32], h[32];
	uint64_t off = 0;
	int r = 0;

	memset(buf, 0, BLK);
	hash_block(t, buf, zero_h);
	while (off < size && r == 0) {
		uint64_t b, e;
		next_data(fd, off, size, &b, &e);
		for (; off < b && r == 0; off += BLK)
			r = data_hash(t, zero_h);
		while (off < e && r == 0) {
			size_t n = e - off > CHUNK ? CHUNK : (size_t)(e - off);
			r = azl_pread_all(fd, buf, n, off);
			if (r < 0) {
				azl_errf(t->err, r, "verity: reading the data at %llu: %s",
					 (unsigned long long)off, strerror(-r));
				break;
			}
			for (size_t i = 0; i < n && r == 0; i += BLK) {
				hash_block(t, buf + i, h);
				r = data_hash(t, h);
			}
			off += n;
		}
	}
	free(buf);
	return r;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* struct verity_sb of cryptsetup's lib/verity/verity.c, little-endian. */
static void superblock(unsigned char sb[BLK], const struct azl_verity_params *p,
		       uint64_t data_blocks)
{
	memset(sb, 0, BLK);
	memcpy(sb, "verity\0\0", 8);
	put_le32(sb + 8, 1);          /* version */
	put_le32(sb + 12, 1);         /* hash type: normal */
	memcpy(sb + 16, p->uuid, 16);
	memcpy(sb + 32, "sha256", 6); /* algorithm[32] */
	put_le32(sb + 64, BLK);       /* data block size */
	put_le32(sb + 68, BLK);       /* hash block size */
	for (int i = 0; i < 8; i++)
		sb[72 + i] = (unsigned char)(data_blocks >> (8 * i));
	sb[80] = (unsigned char)p->salt_len;
	sb[81] = (unsigned char)(p->salt_len >> 8);
	memcpy(sb + 88, p->salt, p->salt_len);
}

int azl_verity_write(int data_fd, uint64_t data_size, int out_fd,
		     uint64_t out_off, const struct azl_verity_params *p,
		     struct azl_verity_result *res, struct azl_err *err)
{
	struct tree t = { .out_fd = out_fd, .out_off = out_off, .err = err };
	uint64_t first[MAX_LEVELS] = { 0 }, total = 0, blocks = data_size / BLK;
	unsigned char *sb = NULL;
	int r = 0;

	memset(res, 0, sizeof(*res));
	if (data_size == 0 || data_size % BLK || p->salt_len > AZL_VERITY_SALT_MAX)
		return azl_errf(err, -EINVAL, "verity: data size %llu is not a positive multiple of %u, or the salt is too long",
				(unsigned long long)data_size, BLK);
	t.levels = count_levels(blocks, first, &total);
	for (int i = 0; i < t.levels; i++)
		t.lv[i].first = first[i];
	t.salted = EVP_MD_CTX_new();
	t.ctx = EVP_MD_CTX_new();
	if (!t.salted || !t.ctx || !EVP_DigestInit_ex(t.salted, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(t.salted, p->salt, p->salt_len)) {
		r = azl_errf(err, -ENOMEM, "verity: sha256 is not available");
		goto out;
	}
	sb = azl_xmalloc(BLK);
	superblock(sb, p, blocks);
	if ((r = write_at(&t, 0, sb)) < 0 || (r = hash_data(&t, data_fd, data_size)) < 0)
		goto out;
	/* Flush the partial blocks, leaves first: each flush feeds the next. */
	for (int i = 0; i < t.levels && r == 0; i++)
		if (t.lv[i].fill || t.lv[i].written == 0)
			r = emit_level_block(&t, i);
	if (r < 0)
		goto out;
	res->data_blocks = blocks;
	res->tree_bytes = total * BLK;
	memcpy(res->root, t.root, 32);
	azl_hex(t.root, 32, res->root_hex);
out:
	free(sb);
	EVP_MD_CTX_free(t.salted);
	EVP_MD_CTX_free(t.ctx);
	return r;
}
