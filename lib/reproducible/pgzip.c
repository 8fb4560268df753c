/* Parallel deterministic gzip: see pgzip.h for the two forms and why.
 * The caller's thread cuts blocks, queues them and writes finished ones in
 * order; workers only deflate.  At most 2 blocks per thread are in flight,
 * so memory stays near threads * 2 * 2 * 256 KiB. */
#include "reproducible/pgzip.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>
#include <zlib.h>

#include "base/buf.h"

#define DICT_SIZE (32u * 1024)

struct job {
	unsigned char *in;
	size_t inlen;
	unsigned char *dict; /* one member only: the 32 KiB before this block */
	size_t dictlen;
	int last;
	unsigned char *out;
	size_t outlen;
	uLong crc;
	int zrc;  /* Z_OK or the zlib error */
	int done; /* under mu */
	struct job *next_todo, *next_order;
};

/* A compressor for one thread: zlib for one member, libdeflate for members. */
struct deflater {
	z_stream zs;
	int zs_ready;
	struct libdeflate_compressor *ld;
};

struct azl_pgzip {
	enum azl_pgzip_form form;
	size_t block; /* AZL_PGZIP_BLOCK or AZL_PGZIP_MEMBER_BLOCK */
	int level, nthreads;
	unsigned char hdr[10];
	int (*sink)(void *ctx, const void *data, size_t len);
	void *sink_ctx;
	int failed; /* first error code, sticky */

	unsigned char *cur; /* block being filled, z->block bytes */
	size_t curlen;
	unsigned char tail[DICT_SIZE]; /* end of the previous block */
	size_t taillen;
	uLong crc;
	uint64_t total;
	int submitted; /* a block has been cut */

	struct deflater inline_d; /* nthreads <= 1 */

	pthread_t *tids;
	int nstarted;
	pthread_mutex_t mu;
	pthread_cond_t todo_cv, done_cv;
	struct job *todo_head, *todo_tail;   /* under mu */
	struct job *order_head, *order_tail; /* caller's thread only */
	size_t inflight;
	int stop; /* under mu */
};

static int deflater_init(struct deflater *d, enum azl_pgzip_form form, int level)
{
	memset(d, 0, sizeof(*d));
	if (form == AZL_PGZIP_MEMBERS)
		return (d->ld = libdeflate_alloc_compressor(level)) ? 0 : -1;
	/* -15: raw deflate, the gzip wrapper is ours. */
	if (deflateInit2(&d->zs, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	d->zs_ready = 1;
	return 0;
}

static void deflater_end(struct deflater *d)
{
	if (d->zs_ready)
		deflateEnd(&d->zs);
	libdeflate_free_compressor(d->ld);
	memset(d, 0, sizeof(*d));
}

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* One whole gzip member: header, raw deflate, CRC-32, size. */
static void member_block(struct libdeflate_compressor *ld, const unsigned char *hdr,
			 struct job *j)
{
	size_t cap = 10 + libdeflate_deflate_compress_bound(ld, j->inlen) + 8, n;

	j->out = azl_xmalloc(cap);
	memcpy(j->out, hdr, 10);
	n = libdeflate_deflate_compress(ld, j->in, j->inlen, j->out + 10, cap - 18);
	if (!n) { /* cannot happen within the bound */
		j->zrc = Z_BUF_ERROR;
		return;
	}
	put_le32(j->out + 10 + n, libdeflate_crc32(0, j->in, j->inlen));
	put_le32(j->out + 14 + n, (uint32_t)j->inlen);
	j->outlen = n + 18;
	j->zrc = Z_OK;
}

/* Deflate one block into job->out; deterministic in (in, dict, level). */
static void zlib_block(z_stream *s, struct job *j)
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

static void compress_block(struct azl_pgzip *z, struct deflater *d, struct job *j)
{
	if (z->form == AZL_PGZIP_MEMBERS)
		member_block(d->ld, z->hdr, j);
	else
		zlib_block(&d->zs, j);
}

static void *worker(void *arg)
{
	struct azl_pgzip *z = arg;
	struct deflater d;
	int ok = deflater_init(&d, z->form, z->level) == 0;

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
			compress_block(z, &d, j);
		else
			j->zrc = Z_MEM_ERROR;
		pthread_mutex_lock(&z->mu);
		j->done = 1;
		pthread_cond_broadcast(&z->done_cv);
	}
	pthread_mutex_unlock(&z->mu);
	deflater_end(&d);
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

static void job_free(struct job *j)
{
	free(j->in);
	free(j->out);
	free(j->dict);
	free(j);
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
		if (z->form == AZL_PGZIP_ONE_MEMBER)
			z->crc = crc32_combine(z->crc, j->crc, (z_off_t)j->inlen);
		z->total += j->inlen;
		r = emit(z, j->out, j->outlen, err);
	}
	job_free(j);
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
	z->submitted = 1;
	z->cur = last ? NULL : azl_xmalloc(z->block);
	if (z->form == AZL_PGZIP_MEMBERS) {
		z->curlen = 0;
		return j;
	}
	j->dict = azl_xmalloc(DICT_SIZE);
	memcpy(j->dict, z->tail, z->taillen);
	j->dictlen = z->taillen;
	/* The next dictionary: the last 32 KiB of (tail + this block). */
	if (j->inlen >= DICT_SIZE) {
		memcpy(z->tail, j->in + j->inlen - DICT_SIZE, DICT_SIZE);
		z->taillen = DICT_SIZE;
	} else {
		size_t keep = DICT_SIZE - j->inlen;
		if (keep > z->taillen)
			keep = z->taillen;
		memmove(z->tail, z->tail + z->taillen - keep, keep);
		memcpy(z->tail + keep, j->in, j->inlen);
		z->taillen = keep + j->inlen;
	}
	z->curlen = 0;
	return j;
}

static int submit(struct azl_pgzip *z, int last, struct azl_err *err)
{
	struct job *j = cut_block(z, last);

	if (z->nthreads <= 1) {
		compress_block(z, &z->inline_d, j);
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

int azl_pgzip_new(enum azl_pgzip_form form, int level, int threads,
		  int (*sink)(void *ctx, const void *data, size_t len),
		  void *sink_ctx, struct azl_pgzip **out, struct azl_err *err)
{
	struct azl_pgzip *z = azl_xcalloc(1, sizeof(*z));
	static const unsigned char hdr[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0,
					       AZL_PGZIP_OS_BYTE };
	int r = 0;

	z->form = form == AZL_PGZIP_ONE_MEMBER ? form : AZL_PGZIP_MEMBERS;
	z->block = z->form == AZL_PGZIP_MEMBERS ? AZL_PGZIP_MEMBER_BLOCK : AZL_PGZIP_BLOCK;
	z->level = level > 0 && level <= 9 ? level : 6;
	/* More threads than this only cost memory; the bytes never change. */
	z->nthreads = threads < 1 ? 1 : threads > AZL_PGZIP_MAX_THREADS ? AZL_PGZIP_MAX_THREADS : threads;
	z->sink = sink;
	z->sink_ctx = sink_ctx;
	z->crc = crc32(0, NULL, 0);
	z->cur = azl_xmalloc(z->block);
	memcpy(z->hdr, hdr, sizeof(hdr));
	z->hdr[8] = z->level == 9 ? 2 : z->level == 1 ? 4 : 0; /* as gzip(1) */
	if (z->nthreads <= 1) {
		if (deflater_init(&z->inline_d, z->form, z->level) < 0) {
			r = azl_errf(err, -ENOMEM, "gzip: cannot initialise the compressor");
			goto out;
		}
	} else if ((r = start_threads(z, err)) < 0) {
		goto out;
	}
	if (z->form == AZL_PGZIP_ONE_MEMBER)
		r = emit(z, z->hdr, sizeof(z->hdr), err);
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
		size_t n = z->block - z->curlen;
		if (n > len)
			n = len;
		memcpy(z->cur + z->curlen, p, n);
		z->curlen += n;
		p += n;
		len -= n;
		if (z->curlen == z->block) {
			int r = submit(z, 0, err);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int azl_pgzip_finish(struct azl_pgzip *z, struct azl_err *err)
{
	unsigned char trailer[8];
	int r = z->failed;

	/* Members: an empty input is one empty member; otherwise a block
	 * boundary at the very end adds none. */
	if (r == 0 && (z->form == AZL_PGZIP_ONE_MEMBER || z->curlen || !z->submitted))
		r = submit(z, 1, err);
	while (r == 0 && z->order_head)
		r = drain_one(z, err);
	if (r == 0 && z->form == AZL_PGZIP_ONE_MEMBER) {
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
		job_free(j);
	}
	deflater_end(&z->inline_d);
	free(z->cur);
	free(z);
}
