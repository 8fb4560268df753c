/* Parallel deterministic gzip: see pgzip.h for the format argument.
 * The caller's thread cuts blocks, queues them and writes finished ones in
 * order; workers only deflate.  At most 2 blocks per thread are in flight,
 * so memory stays near threads * 2 * 2 * 128 KiB. */
#include "reproducible/pgzip.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/buf.h"

#define DICT_SIZE (32u * 1024)

struct job {
	unsigned char *in;
	size_t inlen;
	unsigned char dict[DICT_SIZE];
	size_t dictlen;
	int last;
	unsigned char *out;
	size_t outlen;
	uLong crc;
	int zrc;  /* Z_OK or the zlib error */
	int done; /* under mu */
	struct job *next_todo, *next_order;
};

struct azl_pgzip {
	int level, nthreads;
	int (*sink)(void *ctx, const void *data, size_t len);
	void *sink_ctx;
	int failed; /* first error code, sticky */

	unsigned char *cur; /* block being filled, AZL_PGZIP_BLOCK bytes */
	size_t curlen;
	unsigned char tail[DICT_SIZE]; /* end of the previous block */
	size_t taillen;
	uLong crc;
	uint64_t total;

	z_stream inline_strm; /* nthreads <= 1 */
	int inline_ready;

	pthread_t *tids;
	int nstarted;
	pthread_mutex_t mu;
	pthread_cond_t todo_cv, done_cv;
	struct job *todo_head, *todo_tail;   /* under mu */
	struct job *order_head, *order_tail; /* caller's thread only */
	size_t inflight;
	int stop; /* under mu */
};

static int deflate_init(z_stream *s, int level)
{
	memset(s, 0, sizeof(*s));
	/* -15: raw deflate, the gzip wrapper is ours. */
	return deflateInit2(s, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
}

/* Deflate one block into job->out; deterministic in (in, dict, level). */
static void compress_block(z_stream *s, struct job *j)
{
	size_t cap = deflateBound(s, j->inlen) + 64;
	int flush = j->last ? Z_FINISH : Z_SYNC_FLUSH, zrc;

	j->crc = crc32(0, j->in, (uInt)j->inlen);
	j->zrc = deflateReset(s);
	if (j->zrc == Z_OK && j->dictlen)
		j->zrc = deflateSetDictionary(s, j->dict, (uInt)j->dictlen);
	if (j->zrc != Z_OK)
		return;
	j->out = azl_xmalloc(cap);
	s->next_in = j->in;
	s->avail_in = (uInt)j->inlen;
	for (;;) {
		s->next_out = j->out + j->outlen;
		s->avail_out = (uInt)(cap - j->outlen);
		zrc = deflate(s, flush);
		j->outlen = cap - s->avail_out;
		if (zrc == Z_STREAM_END || (flush == Z_SYNC_FLUSH && s->avail_out))
			break;
		if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
			j->zrc = zrc;
			return;
		}
		cap *= 2;
		j->out = azl_xrealloc(j->out, cap);
	}
}

static void *worker(void *arg)
{
	struct azl_pgzip *z = arg;
	z_stream s;
	int ok = deflate_init(&s, z->level) == Z_OK;

	pthread_mutex_lock(&z->mu);
	for (;;) {
		while (!z->todo_head && !z->stop)
			pthread_cond_wait(&z->todo_cv, &z->mu);
		if (z->stop)
			break;
		struct job *j = z->todo_head;
		z->todo_head = j->next_todo;
		if (!z->todo_head)
			z->todo_tail = NULL;
		pthread_mutex_unlock(&z->mu);
		if (ok)
			compress_block(&s, j);
		else
			j->zrc = Z_MEM_ERROR;
		pthread_mutex_lock(&z->mu);
		j->done = 1;
		pthread_cond_broadcast(&z->done_cv);
	}
	pthread_mutex_unlock(&z->mu);
	if (ok)
		deflateEnd(&s);
	return NULL;
}

static int emit(struct azl_pgzip *z, const void *data, size_t len,
		struct azl_err *err)
{
	int r;
	if (z->failed)
		return z->failed;
	r = z->sink(z->sink_ctx, data, len);
	if (r < 0) {
		z->failed = r;
		if (err && !err->code)
			azl_errf(err, r, "gzip: writing compressed data: %s",
				 strerror(-r));
	}
	return r;
}

/* Write a finished block and account for it; frees j. */
static int emit_job(struct azl_pgzip *z, struct job *j, struct azl_err *err)
{
	int r = 0;
	if (j->zrc != Z_OK) {
		r = azl_errf(err, j->zrc == Z_MEM_ERROR ? -ENOMEM : -EIO,
			     "gzip: deflate failed (zlib %d)", j->zrc);
		z->failed = r;
	} else {
		z->crc = crc32_combine(z->crc, j->crc, (z_off_t)j->inlen);
		z->total += j->inlen;
		r = emit(z, j->out, j->outlen, err);
	}
	free(j->in);
	free(j->out);
	free(j);
	return r;
}

/* Wait for the oldest queued block, then write it. */
static int drain_one(struct azl_pgzip *z, struct azl_err *err)
{
	struct job *j = z->order_head;
	pthread_mutex_lock(&z->mu);
	while (!j->done)
		pthread_cond_wait(&z->done_cv, &z->mu);
	pthread_mutex_unlock(&z->mu);
	z->order_head = j->next_order;
	if (!z->order_head)
		z->order_tail = NULL;
	z->inflight--;
	return emit_job(z, j, err);
}

static struct job *cut_block(struct azl_pgzip *z, int last)
{
	struct job *j = azl_xcalloc(1, sizeof(*j));
	j->in = z->cur;
	j->inlen = z->curlen;
	j->last = last;
	memcpy(j->dict, z->tail, z->taillen);
	j->dictlen = z->taillen;
	/* The next dictionary: the last 32 KiB of (tail + this block). */
	if (z->curlen >= DICT_SIZE) {
		memcpy(z->tail, z->cur + z->curlen - DICT_SIZE, DICT_SIZE);
		z->taillen = DICT_SIZE;
	} else {
		size_t keep = DICT_SIZE - z->curlen;
		if (keep > z->taillen)
			keep = z->taillen;
		memmove(z->tail, z->tail + z->taillen - keep, keep);
		memcpy(z->tail + keep, z->cur, z->curlen);
		z->taillen = keep + z->curlen;
	}
	z->cur = last ? NULL : azl_xmalloc(AZL_PGZIP_BLOCK);
	z->curlen = 0;
	return j;
}

static int submit(struct azl_pgzip *z, int last, struct azl_err *err)
{
	struct job *j = cut_block(z, last);

	if (z->nthreads <= 1) {
		compress_block(&z->inline_strm, j);
		return emit_job(z, j, err);
	}
	if (z->order_tail)
		z->order_tail->next_order = j;
	else
		z->order_head = j;
	z->order_tail = j;
	z->inflight++;
	pthread_mutex_lock(&z->mu);
	if (z->todo_tail)
		z->todo_tail->next_todo = j;
	else
		z->todo_head = j;
	z->todo_tail = j;
	pthread_cond_signal(&z->todo_cv);
	pthread_mutex_unlock(&z->mu);
	while (z->inflight > 2 * (size_t)z->nthreads)
		if (drain_one(z, err) < 0)
			return z->failed;
	return 0;
}

static int start_threads(struct azl_pgzip *z, struct azl_err *err)
{
	pthread_mutex_init(&z->mu, NULL);
	pthread_cond_init(&z->todo_cv, NULL);
	pthread_cond_init(&z->done_cv, NULL);
	z->tids = azl_xcalloc((size_t)z->nthreads, sizeof(*z->tids));
	for (; z->nstarted < z->nthreads; z->nstarted++) {
		int e = pthread_create(&z->tids[z->nstarted], NULL, worker, z);
		if (e)
			return azl_errf(err, -e, "gzip: cannot start a thread: %s",
					strerror(e));
	}
	return 0;
}

int azl_pgzip_new(int level, int threads,
		  int (*sink)(void *ctx, const void *data, size_t len),
		  void *sink_ctx, struct azl_pgzip **out, struct azl_err *err)
{
	struct azl_pgzip *z = azl_xcalloc(1, sizeof(*z));
	unsigned char hdr[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0,
				  AZL_PGZIP_OS_BYTE };
	int r = 0;

	z->level = level > 0 && level <= 9 ? level : 6;
	/* More threads than this only cost memory; the bytes never change. */
	z->nthreads = threads < 1 ? 1 : threads > AZL_PGZIP_MAX_THREADS ? AZL_PGZIP_MAX_THREADS : threads;
	z->sink = sink;
	z->sink_ctx = sink_ctx;
	z->crc = crc32(0, NULL, 0);
	z->cur = azl_xmalloc(AZL_PGZIP_BLOCK);
	hdr[8] = z->level == 9 ? 2 : z->level == 1 ? 4 : 0; /* as gzip(1) */
	if (z->nthreads <= 1) {
		if (deflate_init(&z->inline_strm, z->level) != Z_OK) {
			r = azl_errf(err, -ENOMEM, "gzip: cannot initialise zlib");
			goto out;
		}
		z->inline_ready = 1;
	} else if ((r = start_threads(z, err)) < 0) {
		goto out;
	}
	r = emit(z, hdr, sizeof(hdr), err);
out:
	if (r < 0) {
		azl_pgzip_free(z);
		return r;
	}
	*out = z;
	return 0;
}

int azl_pgzip_write(struct azl_pgzip *z, const void *data, size_t len,
		    struct azl_err *err)
{
	const unsigned char *p = data;

	if (z->failed)
		return z->failed;
	while (len) {
		size_t n = AZL_PGZIP_BLOCK - z->curlen;
		if (n > len)
			n = len;
		memcpy(z->cur + z->curlen, p, n);
		z->curlen += n;
		p += n;
		len -= n;
		if (z->curlen == AZL_PGZIP_BLOCK) {
			int r = submit(z, 0, err);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

int azl_pgzip_finish(struct azl_pgzip *z, struct azl_err *err)
{
	unsigned char trailer[8];
	int r = z->failed;

	if (r == 0)
		r = submit(z, 1, err);
	while (r == 0 && z->order_head)
		r = drain_one(z, err);
	if (r == 0) {
		put_le32(trailer, (uint32_t)z->crc);
		put_le32(trailer + 4, (uint32_t)z->total);
		r = emit(z, trailer, sizeof(trailer), err);
	}
	azl_pgzip_free(z);
	return r;
}

void azl_pgzip_free(struct azl_pgzip *z)
{
	if (!z)
		return;
	if (z->tids) {
		pthread_mutex_lock(&z->mu);
		z->stop = 1;
		pthread_cond_broadcast(&z->todo_cv);
		pthread_mutex_unlock(&z->mu);
		for (int i = 0; i < z->nstarted; i++)
			pthread_join(z->tids[i], NULL);
		pthread_mutex_destroy(&z->mu);
		pthread_cond_destroy(&z->todo_cv);
		pthread_cond_destroy(&z->done_cv);
		free(z->tids);
	}
	while (z->order_head) {
		struct job *j = z->order_head;
		z->order_head = j->next_order;
		free(j->in);
		free(j->out);
		free(j);
	}
	if (z->inline_ready)
		deflateEnd(&z->inline_strm);
	free(z->cur);
	free(z);
}
