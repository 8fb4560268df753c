/* SHA-256 compression on the x86 SHA extensions, for base/hash.c only. */
#ifndef AZL_BASE_SHA256X2_H
#define AZL_BASE_SHA256X2_H

#include <stddef.h>
#include <stdint.h>

/* 1 when this CPU has the SHA extensions (and SSSE3, SSE4.1). */
int azl_sha256x2_available(void);
/* n 64-byte blocks of p into the state st (H0..H7). */
void azl_sha256x2_blocks(uint32_t st[8], const unsigned char *p, size_t n);
/* n blocks of pa into sa and n blocks of pb into sb, interleaved. */
void azl_sha256x2_blocks2(uint32_t sa[8], const unsigned char *pa,
			  uint32_t sb[8], const unsigned char *pb, size_t n);

#endif
