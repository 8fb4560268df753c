/* Downloads over libcurl (http, https, file).
 *
 * azl_fetch_many runs transfers in parallel with the multi interface,
 * retries 5xx, resets and stalls with exponential backoff, resumes partial
 * downloads with Range when the server allows, and checks size and sha256
 * of each result before reporting success.  It writes only to the
 * destination paths the caller gives (normally temporary names inside the
 * cache); it never renames and does not fsync.  A destination that already
 * holds a prefix of the expected content is continued, but only when a
 * sha256 will judge the result. */
#ifndef AZL_COMPOSE_FETCH_H
#define AZL_COMPOSE_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/hash.h"

struct azl_fetch_item;

struct azl_fetch_opts {
	int parallel;          /* concurrent transfers; 0 = 8 */
	int retries;           /* attempts after the first; <0 = 0, default 4 */
	long connect_timeout_s;/* 0 = 15 */
	long stall_timeout_s;  /* abort a transfer below 1 byte/s for this long; 0 = 20 */
	long backoff_ms;       /* first retry delay, doubled each time; 0 = 200 */
	/* Progress, called from the calling thread; may be NULL. */
	void (*progress)(void *ctx, uint64_t done_bytes, uint64_t total_bytes,
			 size_t done_items, size_t total_items);
	void *progress_ctx;
	/* Called from the calling thread once per item as soon as it has
	 * finished (result and error set), so checks can overlap the other
	 * downloads; index is the item's position.  May be NULL. */
	void (*done)(void *ctx, struct azl_fetch_item *item, size_t index);
	void *done_ctx;
	/* Optional: called from the calling thread just before the first
	 * attempt of an item whose dest is NULL, to set item->dest (which
	 * must stay valid until the item is done).  Returns 0, or a negative
	 * errno-style code with item->error set: the item then fails without
	 * a request.  A caller creates its files as their transfers start,
	 * as curl does, instead of all of them before the first. */
	int (*prepare)(void *ctx, struct azl_fetch_item *item, size_t index);
	void *prepare_ctx;
};

struct azl_fetch_item {
	const char *url;       /* in */
	const char *dest;      /* in: file to write (created/truncated or resumed);
				* NULL: opts->prepare names it */
	const char *label;     /* in: what to name in messages, e.g. a NEVRA */
	const char *sha256;    /* in: expected hex digest, or NULL */
	uint64_t size;         /* in: expected size, or 0 for unknown */
	/* in, optional: shown the item's bytes in order before it is
	 * reported done (resumed ones too), possibly on another thread but
	 * never two calls at once, as base/hash.h describes. */
	azl_sha256_tap_fn tap;
	void *tap_ctx;
	int result;            /* out: 0 or negative errno-style code */
	char error[512];       /* out: message naming label, URL, what failed */
};

/* Defaults, with overrides from the environment so tests can keep waits
 * short: AZL_FETCH_RETRIES, AZL_FETCH_BACKOFF_MS, AZL_FETCH_STALL_S,
 * AZL_FETCH_CONNECT_TIMEOUT_S (non-negative integers).  A NULL opts in the
 * calls below means these defaults. */
void azl_fetch_opts_init(struct azl_fetch_opts *o);

/* libcurl's global initialisation, once per process (any thread; later
 * callers wait for the first).  Returns 0 or a CURLcode. */
int azl_fetch_global_init(void);

/* 1 when a libcurl result code (CURLcode) is worth trying again: a
 * refused or reset connection, a timeout, a cut transfer. */
int azl_fetch_curl_transient(int code);
/* 1 when an HTTP status is worth trying again: 5xx, 408, 429. */
int azl_fetch_http_retryable(long status);
/* The wait before trying again after `attempts` attempts (1 = after the
 * first): o->backoff_ms doubled each time, at most 30 s. */
long azl_fetch_backoff_ms(const struct azl_fetch_opts *o, int attempts);

/* Fetch every item.  Returns 0 if all succeeded; otherwise a negative code,
 * err describing the first failure, and each item's result/error set. */
int azl_fetch_many(const struct azl_fetch_opts *opts, struct azl_fetch_item *items,
		   size_t n, struct azl_err *err);

/* One download into memory (metadata: repomd.xml, keys).  Refuses more
 * than max_size bytes.  *data NUL-terminated; caller frees. */
int azl_fetch_to_memory(const struct azl_fetch_opts *opts, const char *url,
			size_t max_size, char **data, size_t *len,
			struct azl_err *err);

/* One download to a file with optional checks (sha256/size may be NULL/0). */
int azl_fetch_to_file(const struct azl_fetch_opts *opts, const char *url,
		      const char *dest, const char *sha256, uint64_t size,
		      const char *label, struct azl_err *err);

#endif
