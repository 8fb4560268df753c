/* Running independent jobs on a few threads. */
#ifndef AZL_BASE_PAR_H
#define AZL_BASE_PAR_H

#include <stddef.h>

/* fn(ctx, i) for every i < n, on up to `jobs` threads (the caller's
 * among them; 0 or less: one per online CPU).  Each i runs once, in no
 * particular order or thread, so fn must write only to what i owns; the
 * results are the caller's to read after the call, in index order. */
void azl_par_for(size_t n, int jobs, void (*fn)(void *ctx, size_t i), void *ctx);

#endif
