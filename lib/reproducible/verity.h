/* dm-verity hash trees in the format veritysetup(8) writes and reads:
 * a 512-byte superblock (version 1, hash type 1 "normal", sha256, 4096-byte
 * data and hash blocks, the salt) padded to one hash block, then the hash
 * levels from the root-most down to the leaves, each hash
 * sha256(salt || block), 128 to a block, zero-padded.  The root hash is
 * sha256(salt || the single top block) (or of the only data block).
 *
 * Written here rather than by running veritysetup: a build needs no
 * external tool and no root, and every byte is a function of the data, the
 * salt and the UUID, which the caller derives from the build seed.
 *
 * One pass over the data with one pending block per level (memory is a few
 * pages per level), reading holes (SEEK_HOLE) as zeros without reading
 * them: a sparse filesystem image hashes at the speed of its content. */
#ifndef AZL_REPRODUCIBLE_VERITY_H
#define AZL_REPRODUCIBLE_VERITY_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define AZL_VERITY_BLOCK 4096u
#define AZL_VERITY_SALT_MAX 256u

struct azl_verity_params {
	unsigned char salt[AZL_VERITY_SALT_MAX];
	size_t salt_len;             /* veritysetup's default is 32 */
	unsigned char uuid[16];      /* the superblock's UUID */
};

struct azl_verity_result {
	uint64_t data_blocks;
	uint64_t tree_bytes;         /* superblock block + hash blocks */
	unsigned char root[32];
	char root_hex[65];
};

/* Bytes the superblock and hash tree take for data_size bytes of data (a
 * whole number of blocks). */
uint64_t azl_verity_tree_size(uint64_t data_size);

/* Hash data_fd's bytes [0, data_size) (data_size a positive multiple of
 * 4096) and write the superblock and tree to out_fd at out_off (pwrite;
 * the caller commits the file). */
int azl_verity_write(int data_fd, uint64_t data_size, int out_fd,
		     uint64_t out_off, const struct azl_verity_params *p,
		     struct azl_verity_result *res, struct azl_err *err);

#endif
