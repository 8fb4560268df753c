/* SHA-256 helpers (OpenSSL 3 EVP). */
#ifndef AZL_BASE_HASH_H
#define AZL_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define AZL_SHA256_HEX_LEN 64

struct azl_sha256;

/* hex must hold 65 bytes. */
void azl_sha256_hex(const void *data, size_t len, char hex[65]);

/* A tap is shown a stream's bytes in order as they are hashed (off is
 * where data starts; 0 starts the stream over).  A tap keeping a digest of
 * its own returns it and sets *from: data[*from..len) is then added to it
 * in the same pass as the stream's (azl_sha256_update2).  Else NULL. */
typedef struct azl_sha256 *(*azl_sha256_tap_fn)(void *ctx, uint64_t off,
						const void *data, size_t len,
						size_t *from);

/* Stream a file; also returns its size when size != NULL. */
int azl_sha256_file(const char *path, char hex[65], uint64_t *size,
		    struct azl_err *err);
/* The same, showing every byte to tap (NULL: none) with ctx. */
int azl_sha256_file_tapped(const char *path, azl_sha256_tap_fn tap, void *ctx,
			   char hex[65], uint64_t *size, struct azl_err *err);
/* The same from byte off to the end (size is still the whole file's). */
int azl_sha256_file_from(const char *path, uint64_t off, char hex[65],
			 uint64_t *size, struct azl_err *err);
/* Bytes [off, off + len) of fd, which must all exist (holes read as
 * zeros, unread).  0 or a negative errno. */
int azl_sha256_fd_range(int fd, uint64_t off, uint64_t len, char hex[65]);
/* Lowercase hex of n bytes into out (2n+1 bytes). */
void azl_hex(const unsigned char *bin, size_t n, char *out);
/* 1 if s is exactly 64 lowercase hex digits. */
int azl_is_sha256_hex(const char *s);

/* Incremental hashing, for stream writers. */
struct azl_sha256 *azl_sha256_new(void); /* aborts on OOM; free with _final */
void azl_sha256_update(struct azl_sha256 *h, const void *data, size_t len);
/* The same as updating a with pa and b with pb; where the CPU has the SHA
 * extensions the two are computed together, in about 0.8 of the time. */
void azl_sha256_update2(struct azl_sha256 *a, const void *pa, size_t na,
			struct azl_sha256 *b, const void *pb, size_t nb);
/* data (at offset off of the stream) into h (NULL: none) and the tap
 * (NULL: none), one pass for both digests. */
void azl_sha256_update_tapped(struct azl_sha256 *h, azl_sha256_tap_fn tap,
			      void *ctx, uint64_t off, const void *data, size_t len);
/* Writes the hex digest and frees h. */
void azl_sha256_final(struct azl_sha256 *h, char hex[65]);
/* Tests: on, digests made from now on use OpenSSL even where the SHA
 * extensions are present; off, they use the extensions again if present. */
void azl_sha256_force_generic(int on);

#endif
