/* verity: the hash tree equals the one `veritysetup format` writes for the
 * same salt and UUID, byte for byte, for every tree shape (no level, one,
 * two, three levels; full and partial blocks; sparse data), `veritysetup
 * verify` accepts our root hash, and rejects it after one changed byte. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fs.h"
#include "base/hash.h"
#include "reproducible/verity.h"
#include "t.h"

static char dir[] = "/tmp/azl-test-verity.XXXXXX";

/* Data with a pattern, or holes (sparse) every other MiB. */
static void make_data(const char *path, uint64_t blocks, int sparse)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	unsigned char blk[AZL_VERITY_BLOCK];
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)(blocks * AZL_VERITY_BLOCK)) == 0);
	for (uint64_t i = 0; i < blocks; i++) {
		if (sparse && (i / 256) % 2)
			continue;
		memset(blk, (int)(i * 7 + 1), sizeof(blk));
		memcpy(blk, &i, sizeof(i));
		CHECK(pwrite(fd, blk, sizeof(blk), (off_t)(i * AZL_VERITY_BLOCK)) == (ssize_t)sizeof(blk));
	}
	close(fd);
}

static void one(uint64_t blocks, int sparse)
{
	char data[200], ours[256], theirs[256], cmd[1200];
	struct azl_verity_params p = { .salt_len = 32 };
	struct azl_verity_result res;
	struct azl_err err = { 0 };
	char salt_hex[65];
	int fd;

	for (size_t i = 0; i < 32; i++)
		p.salt[i] = (unsigned char)(0xa0 + i);
	for (size_t i = 0; i < 16; i++)
		p.uuid[i] = (unsigned char)(0x10 + i);
	p.uuid[6] = 0x40 | (p.uuid[6] & 0x0f);
	p.uuid[8] = 0x80 | (p.uuid[8] & 0x3f);
	azl_hex(p.salt, 32, salt_hex);
	snprintf(data, sizeof(data), "%s/data-%llu-%d", dir, (unsigned long long)blocks, sparse);
	snprintf(ours, sizeof(ours), "%s.ours", data);
	snprintf(theirs, sizeof(theirs), "%s.theirs", data);
	make_data(data, blocks, sparse);

	int dfd = open(data, O_RDONLY);
	fd = open(ours, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(dfd >= 0 && fd >= 0);
	CHECK(azl_verity_write(dfd, blocks * AZL_VERITY_BLOCK, fd, 0, &p, &res, &err) == 0);
	close(dfd);
	close(fd);
	CHECK(res.data_blocks == blocks);
	CHECK(res.tree_bytes == azl_verity_tree_size(blocks * AZL_VERITY_BLOCK));
	struct stat st;
	CHECK(stat(ours, &st) == 0 && (uint64_t)st.st_size == res.tree_bytes);

	snprintf(cmd, sizeof(cmd),
		 "veritysetup format --salt=%s --uuid=10111213-1415-4617-9819-1a1b1c1d1e1f %s %s 2>&1 | sed -n 's/^Root hash:[[:space:]]*//p'",
		 salt_hex, data, theirs);
	char *root = t_run(cmd);
	root[strcspn(root, "\n")] = 0;
	CHECK_STR(root, res.root_hex);
	free(root);
	snprintf(cmd, sizeof(cmd), "cmp %s %s && echo same", ours, theirs);
	char *same = t_run(cmd);
	CHECK_CONTAINS(same, "same");
	free(same);

	snprintf(cmd, sizeof(cmd), "veritysetup verify %s %s %s >/dev/null 2>&1 && echo ok",
		 data, ours, res.root_hex);
	char *ok = t_run(cmd);
	CHECK_CONTAINS(ok, "ok");
	free(ok);
	/* One byte changed in the last block: verify must fail. */
	fd = open(data, O_WRONLY);
	CHECK(fd >= 0 && pwrite(fd, "X", 1, (off_t)(blocks * AZL_VERITY_BLOCK - 100)) == 1);
	close(fd);
	snprintf(cmd, sizeof(cmd), "veritysetup verify %s %s %s >/dev/null 2>&1 || echo failed",
		 data, ours, res.root_hex);
	char *bad = t_run(cmd);
	CHECK_CONTAINS(bad, "failed");
	free(bad);
	unlink(data);
	unlink(ours);
	unlink(theirs);
}

int main(void)
{
	struct azl_err err = { 0 };
	CHECK(mkdtemp(dir) != NULL);
	CHECK(azl_verity_tree_size(4096) == 4096);
	CHECK(azl_verity_tree_size(2 * 4096) == 2 * 4096);
	CHECK(azl_verity_tree_size(129 * 4096) == (1 + 1 + 2) * 4096);
	one(1, 0);            /* no hash level: the root is the block's hash */
	one(2, 0);
	one(128, 0);          /* one full leaf block */
	one(129, 0);          /* two levels */
	one(128 * 128 + 1, 0);/* three levels */
	one(3000, 1);         /* holes read as zeros */
	/* Bad sizes. */
	struct azl_verity_params p = { .salt_len = 32 };
	struct azl_verity_result res;
	CHECK(azl_verity_write(0, 1000, 1, 0, &p, &res, &err) < 0);
	CHECK_CONTAINS(err.msg, "1000");
	rmdir(dir);
	return t_done();
}
