/* Parallel downloads with libcurl's multi interface.
 *
 * Each item becomes a struct xfer that lives through several attempts.  An
 * attempt streams bytes into the destination (or a memory buffer); the
 * result is judged by size and sha256 when the transfer ends.  A
 * failed attempt is either final (404, checksum, disk full) or scheduled
 * again after an exponential backoff; a partial file is resumed with Range
 * and restarted cleanly when the server answers 200 instead of 206.
 *
 * A file destination with an expected sha256 is hashed on a small pool of
 * threads rather than on the transfer thread: that thread only receives
 * and writes, as curl does.  Bytes are gathered into 256 KiB buffers; each
 * full buffer is written, then handed to the pool, which hashes it (and
 * shows it to the item's tap) and returns it for reuse.  The buffers of
 * one transfer are hashed in order, one thread at a time, without reading
 * the file back.  When the transfer ends the pool finishes the digest and
 * the verdict (and a restart after a bad resume) comes back to the
 * transfer thread. */
#include "compose/fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"

struct hash_pool;

enum xfer_state { X_WAITING, X_ACTIVE, X_HASHING, X_DONE };

#define HASH_THREADS 2

/* libcurl hands over at most its buffer (100 KiB, see easy_new) a call;
 * file sinks gather this much before each write(2). */
#define WBUF_SIZE (256u << 10)
/* Buffers per parallel transfer at most: one filling, the rest waiting to
 * be hashed.  A transfer that finds none free waits for the pool, so the
 * pool's bursts of lateness (two cores shared with the server and the
 * transfer thread) stall the downloads less with more; 8 (16 MiB for 8
 * transfers) measured 3-7% faster than 4 on 2 cores, 16 slower again. */
#define WBUFS_PER_XFER 8

/* A write buffer, reused for the whole run (see wbuf_new). */
struct wbuf {
	struct wbuf *next;        /* free list, or its transfer's hash queue */
	uint64_t off;             /* offset of data[0] in the destination */
	size_t len;
	char data[];
};

struct xfer {
	struct azl_fetch_item *it;
	const struct azl_fetch_opts *o;
	struct azl_buf *mem;      /* memory sink, or NULL for it->dest */
	size_t max_size;          /* memory sink limit */
	enum xfer_state state;
	int fd;
	CURL *easy;
	struct azl_sha256 *h;     /* digest so far (by the pool when on_pool) */
	int on_pool;              /* written buffers are hashed by the pool */
	/* Pool state, under the pool's lock: */
	struct wbuf *qhead, *qtail; /* written, not yet hashed */
	int queued, busy;         /* in the pool's queue; a thread hashing it */
	int want_final;           /* transfer ended: finish the digest */
	int hashed;               /* pool finished; hex set */
	char hex[65];
	struct xfer *next;        /* pool queue */
	struct hash_pool *pool;
	struct wbuf *wbuf;        /* file sink, while active: bytes not yet written */
	uint64_t got;             /* bytes held, counting resumed ones */
	uint64_t resume_from;     /* offset asked of the server this attempt */
	int resumed;              /* content came partly from an earlier attempt */
	int started;              /* first body bytes of this attempt seen */
	int attempts;
	int restarted;            /* one clean restart after a bad resume */
	int sink_err;             /* errno from the sink; never retried */
	int too_big;              /* more bytes than expected; never retried */
	int reported;             /* opts->done called */
	int64_t next_try_ms;
	char curl_err[CURL_ERROR_SIZE];
	char range[32];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int azl_fetch_global_init(void)
{
	pthread_once(&curl_once, curl_init);
	return (int)curl_init_rc;
}

/* Threads hashing written buffers (see the header comment).  mu guards
 * the queue of transfers with work, the free buffers and each transfer's
 * pool state; the digest itself belongs to the one thread marked busy on
 * that transfer, or to the transfer thread once it is idle (pool_drain). */
struct hash_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;        /* work for the threads */
	pthread_cond_t idle;      /* a buffer came back, or a transfer went idle */
	struct xfer *head, *tail;
	struct wbuf *free;
	size_t nbufs, maxbufs;
	int closing;
	CURLM *m;                 /* woken when a result is ready */
	pthread_t th[HASH_THREADS];
	int nth;
};

/* The bytes of x from off onwards, in order: the digest and the item's tap
 * see them, and a digest the tap asks for is computed with x's own. */
static void feed(struct xfer *x, uint64_t off, const void *p, size_t n)
{
	azl_sha256_update_tapped(x->h, x->it->tap, x->it->tap_ctx, off, p, n);
}

/* Return a buffer to the free list.  p->mu held. */
static void free_buf(struct hash_pool *p, struct wbuf *b)
{
	b->next = p->free;
	p->free = b;
	pthread_cond_broadcast(&p->idle);
}

/* Hash every queued buffer of x, then finish its digest if asked.  Called
 * and returns with p->mu held. */
static void hash_queued(struct hash_pool *p, struct xfer *x)
{
	struct wbuf *b;

	x->busy = 1;
	while ((b = x->qhead)) {
		x->qhead = b->next;
		if (!x->qhead)
			x->qtail = NULL;
		pthread_mutex_unlock(&p->mu);
		feed(x, b->off, b->data, b->len);
		pthread_mutex_lock(&p->mu);
		free_buf(p, b);
	}
	if (x->want_final) {
		x->want_final = 0;
		azl_sha256_final(x->h, x->hex);
		x->h = NULL;
		x->hashed = 1;
		curl_multi_wakeup(p->m);
	}
	x->busy = 0;
	pthread_cond_broadcast(&p->idle);
}

static void *hash_main(void *arg)
{
	struct hash_pool *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct xfer *x;

		while (!p->head && !p->closing)
			pthread_cond_wait(&p->cv, &p->mu);
		if (!p->head)
			break;
		x = p->head;
		p->head = x->next;
		if (!p->head)
			p->tail = NULL;
		x->queued = 0;
		hash_queued(p, x);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void pool_start(struct hash_pool *p, CURLM *m, size_t want, int parallel)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->m = m;
	p->maxbufs = (size_t)parallel * WBUFS_PER_XFER;
	while ((size_t)p->nth < want && p->nth < HASH_THREADS &&
	       pthread_create(&p->th[p->nth], NULL, hash_main, p) == 0)
		p->nth++;
}

static void pool_stop(struct hash_pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->closing = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	while (p->nth > 0)
		pthread_join(p->th[--p->nth], NULL);
	while (p->free) {
		struct wbuf *b = p->free;
		p->free = b->next;
		munmap(b, sizeof(*b) + WBUF_SIZE);
	}
	pthread_cond_destroy(&p->idle);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
}

/* Fresh pages cost a fault each when first touched, which on some
 * virtual machines is as slow as copying the page many times over; the
 * buffers' pages are mapped populated, in one call. */
static struct wbuf *wbuf_new(void)
{
	void *p = mmap(NULL, sizeof(struct wbuf) + WBUF_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		abort();
	return p;
}

/* A free buffer; waits for the pool when all are in use. */
static struct wbuf *pool_take(struct hash_pool *p)
{
	struct wbuf *b;

	pthread_mutex_lock(&p->mu);
	while (!p->free && p->nbufs >= p->maxbufs)
		pthread_cond_wait(&p->idle, &p->mu);
	b = p->free;
	if (b)
		p->free = b->next;
	else
		p->nbufs++;
	pthread_mutex_unlock(&p->mu);
	if (!b)
		b = wbuf_new();
	b->len = 0;
	b->next = NULL;
	return b;
}

static void pool_give(struct hash_pool *p, struct wbuf *b)
{
	pthread_mutex_lock(&p->mu);
	free_buf(p, b);
	pthread_mutex_unlock(&p->mu);
}

/* Queue a written buffer of x for hashing, or (b NULL) ask for the digest
 * once the queued ones are done. */
static void pool_submit(struct hash_pool *p, struct xfer *x, struct wbuf *b)
{
	pthread_mutex_lock(&p->mu);
	if (b) {
		b->next = NULL;
		if (x->qtail)
			x->qtail->next = b;
		else
			x->qhead = b;
		x->qtail = b;
	} else {
		x->want_final = 1;
	}
	if (!x->queued && !x->busy) {
		x->queued = 1;
		x->next = NULL;
		if (p->tail)
			p->tail->next = x;
		else
			p->head = x;
		p->tail = x;
		pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
}

/* Wait until no thread holds or will take work of x: its digest is then
 * the transfer thread's again. */
static void pool_drain(struct xfer *x)
{
	struct hash_pool *p = x->pool;

	if (!x->on_pool)
		return;
	pthread_mutex_lock(&p->mu);
	while (x->queued || x->busy || x->qhead)
		pthread_cond_wait(&p->idle, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

static long env_long(const char *name, long def)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return def;
	v = strtol(s, &end, 10);
	return *end || v < 0 ? def : v;
}

void azl_fetch_opts_init(struct azl_fetch_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->parallel = 8;
	/* Tests shorten the waits through the environment; documented in
	 * fetch.h. */
	o->retries = (int)env_long("AZL_FETCH_RETRIES", 4);
	o->connect_timeout_s = env_long("AZL_FETCH_CONNECT_TIMEOUT_S", 15);
	o->stall_timeout_s = env_long("AZL_FETCH_STALL_S", 20);
	o->backoff_ms = env_long("AZL_FETCH_BACKOFF_MS", 200);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Record the final outcome in the item. */
static int xfail(struct xfer *x, int code, const char *fmt, ...) AZL_PRINTF(3, 4);
static int xfail(struct xfer *x, int code, const char *fmt, ...)
{
	char what[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (x->it->label)
		snprintf(x->it->error, sizeof(x->it->error), "%s: %s: %s",
			 x->it->label, x->it->url, what);
	else
		snprintf(x->it->error, sizeof(x->it->error), "%s: %s",
			 x->it->url, what);
	x->it->result = code > 0 ? -code : code;
	x->state = X_DONE;
	return x->it->result;
}

/* A fresh digest, once no pool thread works on the old one. */
static void hash_reset(struct xfer *x)
{
	char dummy[65];

	pool_drain(x);
	if (x->h)
		azl_sha256_final(x->h, dummy);
	x->h = azl_sha256_new();
	x->hashed = 0;
}

/* Write out what the buffer holds.  On the pool, the written buffer is
 * handed over to be hashed and (more) another taken for what follows. */
static int sink_flush(struct xfer *x, int more)
{
	struct wbuf *b = x->wbuf;
	int r;

	if (!b || !b->len)
		return 0;
	r = azl_write_all(x->fd, b->data, b->len);
	if (r < 0 || !x->on_pool) {
		b->len = 0;
		return r;
	}
	pool_submit(x->pool, x, b);
	x->wbuf = more ? pool_take(x->pool) : NULL;
	return 0;
}

/* Add n bytes at offset off to the buffer, writing it out each time it
 * fills. */
static int sink_append(struct xfer *x, const char *p, size_t n, uint64_t off)
{
	while (n) {
		struct wbuf *b = x->wbuf;
		size_t k = WBUF_SIZE - b->len;
		int r;

		if (!b->len)
			b->off = off;
		if (k > n)
			k = n;
		memcpy(b->data + b->len, p, k);
		b->len += k;
		p += k;
		n -= k;
		off += k;
		if (b->len == WBUF_SIZE && (r = sink_flush(x, 1)) < 0)
			return r;
	}
	return 0;
}

/* Drop everything held so far: the next bytes start the content. */
static int sink_restart(struct xfer *x)
{
	hash_reset(x);
	x->got = 0;
	x->resumed = 0;
	if (x->wbuf)
		x->wbuf->len = 0;
	if (x->mem) {
		azl_buf_reset(x->mem);
		return 0;
	}
	if (ftruncate(x->fd, 0) < 0 || lseek(x->fd, 0, SEEK_SET) < 0)
		return -errno;
	return 0;
}

/* Feed the bytes already in a partial destination to the digest (and the
 * tap) so the transfer can continue where an earlier run stopped. */
static int sink_adopt_partial(struct xfer *x, uint64_t have)
{
	char buf[65536];
	uint64_t left = have;

	if (lseek(x->fd, 0, SEEK_SET) < 0)
		return -errno;
	while (left) {
		ssize_t n = read(x->fd, buf, left < sizeof(buf) ? left : sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return sink_restart(x);
		feed(x, have - left, buf, (size_t)n);
		left -= (uint64_t)n;
	}
	x->got = have;
	x->resumed = have > 0;
	return 0;
}

/* Open the sink for the first attempt.  A partial file is kept only when a
 * digest will judge the joined result. */
static int sink_open(struct xfer *x)
{
	struct stat st;

	x->on_pool = !x->mem && x->it->sha256 && x->pool && x->pool->nth > 0;
	hash_reset(x);
	x->got = 0;
	if (x->mem)
		return 0;
	x->fd = open(x->it->dest, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (x->fd < 0 || fstat(x->fd, &st) < 0)
		return -errno;
	if (x->it->sha256 && st.st_size > 0 &&
	    (!x->it->size || (uint64_t)st.st_size <= x->it->size))
		return sink_adopt_partial(x, (uint64_t)st.st_size);
	/* An empty file needs no truncation, and truncating one would make
	 * ext4 (auto_da_alloc) start its write-back inside close(), on the
	 * downloading thread. */
	if (st.st_size == 0)
		return 0;
	return sink_restart(x);
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;
	int r;

	if (!x->started) {
		long code = 0;
		x->started = 1;
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
		/* A server that ignores Range sends the whole file again. */
		if (x->resume_from && code != 206 && code != 0) {
			r = sink_restart(x);
			if (r < 0) {
				x->sink_err = -r;
				return 0;
			}
		}
	}
	if ((x->it->size && x->got + n > x->it->size) ||
	    (x->mem && x->got + n > x->max_size)) {
		x->too_big = 1;
		return 0;
	}
	if (!x->on_pool)
		feed(x, x->got, p, n);
	if (x->mem)
		azl_buf_add(x->mem, p, n);
	else if ((r = sink_append(x, p, n, x->got)) < 0) {
		x->sink_err = -r;
		return 0;
	}
	x->got += n;
	return n;
}

static CURL *easy_new(struct xfer *x)
{
	const struct azl_fetch_opts *o = x->o;
	CURL *e = curl_easy_init();

	if (!e)
		return NULL;
	curl_easy_setopt(e, CURLOPT_URL, x->it->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->curl_err);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https,file");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "azl-compose/0.1");
	/* curl's own size: below malloc's mmap threshold, so each transfer's
	 * receive buffer reuses the last one's pages instead of faulting in
	 * fresh ones (256 KiB cost ~1,300 page faults per 100 packages). */
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 100L * 1024);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT,
			 o->connect_timeout_s > 0 ? o->connect_timeout_s : 15L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
			 o->stall_timeout_s > 0 ? o->stall_timeout_s : 20L);
	/* A plain Range rather than RESUME_FROM: curl then hands us a 200
	 * from a server ignoring Range instead of failing, and on_data starts
	 * over in the same request. */
	if (x->resume_from) {
		snprintf(x->range, sizeof(x->range), "%llu-",
			 (unsigned long long)x->resume_from);
		curl_easy_setopt(e, CURLOPT_RANGE, x->range);
	}
	return e;
}

/* Compare what arrived with what was promised. */
static int verify(struct xfer *x, char *why, size_t whylen)
{
	char hex[65];

	if (x->on_pool) {
		memcpy(hex, x->hex, sizeof(hex));
	} else {
		azl_sha256_final(x->h, hex);
		x->h = NULL;
	}
	if (x->it->size && x->got != x->it->size) {
		snprintf(why, whylen, "size mismatch: expected %llu bytes, got %llu",
			 (unsigned long long)x->it->size,
			 (unsigned long long)x->got);
		return -EBADMSG;
	}
	if (x->it->sha256 && strcmp(hex, x->it->sha256)) {
		snprintf(why, whylen, "sha256 mismatch: expected %s, got %s",
			 x->it->sha256, hex);
		return -EBADMSG;
	}
	return 0;
}

static void sink_close(struct xfer *x, int discard)
{
	char dummy[65];

	pool_drain(x);
	if (x->h) {
		azl_sha256_final(x->h, dummy);
		x->h = NULL;
	}
	if (x->fd >= 0) {
		close(x->fd);
		x->fd = -1;
		if (discard)
			unlink(x->it->dest);
	}
}

/* Finish successfully or with a verification failure.  A bad result after a
 * resume may come from stale bytes of an earlier run, so that case starts
 * over once before it is blamed on the server. */
static void finish_complete(struct xfer *x)
{
	char why[256];
	int r;

	r = verify(x, why, sizeof(why));
	if (r < 0 && x->resumed && !x->restarted && sink_restart(x) == 0) {
		x->restarted = 1;
		x->state = X_WAITING;
		x->next_try_ms = 0;
		return;
	}
	if (r < 0) {
		xfail(x, r, "%s", why);
		sink_close(x, 1);
		return;
	}
	x->it->result = 0;
	x->it->error[0] = '\0';
	x->state = X_DONE;
	sink_close(x, 0);
}

/* The transfer ended with every byte: the pool finishes the digest, or
 * judge now. */
static void complete(struct xfer *x)
{
	if (x->on_pool) {
		x->state = X_HASHING;
		pool_submit(x->pool, x, NULL);
	} else {
		finish_complete(x);
	}
}

/* Judge the transfers the pool has hashed (a restart makes one wait
 * again).  hashed is read under the pool's lock, which also orders x->hex;
 * the judging itself runs without it (it may drain the pool). */
static void finish_hashed(struct hash_pool *p, struct xfer *xs, size_t n)
{
	if (!p->nth)
		return;
	for (size_t i = 0; i < n; i++) {
		int ready;

		if (xs[i].state != X_HASHING)
			continue;
		pthread_mutex_lock(&p->mu);
		ready = xs[i].hashed;
		pthread_mutex_unlock(&p->mu);
		if (ready)
			finish_complete(&xs[i]);
	}
}

static int count_hashing(const struct xfer *xs, size_t n)
{
	int k = 0;

	for (size_t i = 0; i < n; i++)
		k += xs[i].state == X_HASHING;
	return k;
}

int azl_fetch_curl_transient(int code)
{
	switch ((CURLcode)code) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_BAD_DOWNLOAD_RESUME:
		return 1;
	default:
		return 0;
	}
}

int azl_fetch_http_retryable(long status)
{
	return status >= 500 || status == 408 || status == 429;
}

long azl_fetch_backoff_ms(const struct azl_fetch_opts *o, int attempts)
{
	long d = o->backoff_ms > 0 ? o->backoff_ms : 200;
	for (int i = 1; i < attempts && d < 30000; i++)
		d *= 2;
	return d < 30000 ? d : 30000;
}

/* Retry if the budget allows, else make the failure final. */
static void retry_or_fail(struct xfer *x, int code, const char *what)
{
	int budget = x->o->retries > 0 ? x->o->retries : 0;

	if (x->attempts > budget) {
		xfail(x, code, "%s (after %d attempts)", what, x->attempts);
		sink_close(x, 0);
		return;
	}
	x->state = X_WAITING;
	x->next_try_ms = mono_ms() + azl_fetch_backoff_ms(x->o, x->attempts);
}

static void describe_curl(struct xfer *x, CURLcode rc, long http,
			  char *what, size_t len)
{
	if (rc == CURLE_HTTP_RETURNED_ERROR)
		snprintf(what, len, "HTTP %ld", http);
	else if (rc == CURLE_OPERATION_TIMEDOUT && x->got)
		snprintf(what, len, "stalled: %s", x->curl_err[0] ? x->curl_err
			 : curl_easy_strerror(rc));
	else
		snprintf(what, len, "%s", x->curl_err[0] ? x->curl_err
			 : curl_easy_strerror(rc));
}

/* Decide what one finished attempt means. */
static void attempt_done(struct xfer *x, CURLcode rc)
{
	char what[CURL_ERROR_SIZE + 64];
	long http = 0;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &http);
	curl_easy_cleanup(x->easy);
	x->easy = NULL;
	/* Everything received is on disk (and queued for hashing) before it
	 * is judged or resumed. */
	if (x->wbuf) {
		int r = sink_flush(x, 0);
		if (r < 0 && !x->sink_err)
			x->sink_err = -r;
		if (x->wbuf)
			pool_give(x->pool, x->wbuf);
		x->wbuf = NULL;
	}
	if (x->too_big || x->sink_err) {
		if (x->too_big)
			xfail(x, EFBIG, "larger than expected (%llu bytes)",
			      (unsigned long long)(x->it->size ? x->it->size
						   : x->max_size));
		else
			xfail(x, x->sink_err, "write %s: %s",
			      x->mem ? "memory" : x->it->dest,
			      strerror(x->sink_err));
		sink_close(x, 1);
		return;
	}
	if (rc == CURLE_OK) {
		complete(x);
		return;
	}
	describe_curl(x, rc, http, what, sizeof(what));
	if (rc == CURLE_RANGE_ERROR ||
	    (rc == CURLE_HTTP_RETURNED_ERROR && http == 416)) {
		/* Range refused (our partial file is longer, or curl saw no
		 * range support): start over. */
		if (sink_restart(x) < 0) {
			xfail(x, EIO, "cannot restart %s", x->it->dest);
			sink_close(x, 0);
			return;
		}
		retry_or_fail(x, -EIO, what);
		return;
	}
	if (rc == CURLE_HTTP_RETURNED_ERROR && azl_fetch_http_retryable(http)) {
		retry_or_fail(x, -EIO, what);
		return;
	}
	if (azl_fetch_curl_transient(rc)) {
		if (x->mem)
			sink_restart(x);
		retry_or_fail(x, -EIO, what);
		return;
	}
	xfail(x, rc == CURLE_HTTP_RETURNED_ERROR && http == 404 ? -ENOENT : -EIO,
	      "%s", what);
	sink_close(x, 0);
}

/* Begin an attempt: later attempts continue from the bytes held when a
 * digest will judge the result, else start over. */
static void attempt_start(struct xfer *x, size_t index, CURLM *m)
{
	int r = 0;

	if (x->attempts == 0 && !x->mem && !x->it->dest) {
		r = x->o->prepare ? x->o->prepare(x->o->prepare_ctx, x->it, index) : 0;
		if (r < 0) { /* prepare said why */
			x->it->result = r;
			x->state = X_DONE;
			return;
		}
		if (!x->it->dest) {
			xfail(x, EINVAL, "no destination file");
			return;
		}
	}
	if (x->attempts == 0)
		r = sink_open(x);
	else if (x->mem || !x->it->sha256)
		r = sink_restart(x);
	if (r < 0) {
		xfail(x, r, "open %s: %s", x->it->dest, strerror(-r));
		sink_close(x, 0);
		return;
	}
	x->attempts++;
	x->started = 0;
	x->sink_err = 0;
	x->too_big = 0;
	x->curl_err[0] = '\0';
	x->resume_from = x->got;
	if (x->got)
		x->resumed = 1;
	if (x->it->size && x->got == x->it->size) {
		complete(x);
		return;
	}
	x->easy = easy_new(x);
	if (!x->easy || curl_multi_add_handle(m, x->easy) != CURLM_OK) {
		if (x->easy)
			curl_easy_cleanup(x->easy);
		x->easy = NULL;
		xfail(x, ENOMEM, "cannot start transfer");
		sink_close(x, 0);
		return;
	}
	if (!x->mem)
		x->wbuf = pool_take(x->pool);
	x->state = X_ACTIVE;
}

static void report(const struct azl_fetch_opts *o, struct xfer *xs, size_t n)
{
	uint64_t done = 0, total = 0;
	size_t items = 0;

	if (!o->progress)
		return;
	for (size_t i = 0; i < n; i++) {
		done += xs[i].got;
		total += xs[i].it->size;
		items += xs[i].state == X_DONE;
	}
	o->progress(o->progress_ctx, done, total, items, n);
}

/* Start what may start now; return how long until a waiting retry is due
 * (-1 when nothing waits). */
static long schedule(CURLM *m, struct xfer *xs, size_t n, int parallel,
		     int *active)
{
	int64_t now = mono_ms(), due = -1;

	for (size_t i = 0; i < n; i++) {
		struct xfer *x = &xs[i];
		if (x->state != X_WAITING)
			continue;
		if (x->next_try_ms <= now && *active < parallel) {
			attempt_start(x, i, m);
			*active += x->state == X_ACTIVE;
		} else if (x->next_try_ms > now &&
			   (due < 0 || x->next_try_ms - now < due)) {
			due = x->next_try_ms - now;
		} else if (due < 0) {
			due = 0;
		}
	}
	return (long)due;
}

/* Tell the caller about items that finished since the last call. */
static void report_done(const struct azl_fetch_opts *o, struct xfer *xs, size_t n)
{
	for (size_t i = 0; o->done && i < n; i++) {
		if (xs[i].state != X_DONE || xs[i].reported)
			continue;
		xs[i].reported = 1;
		o->done(o->done_ctx, xs[i].it, i);
	}
}

/* Returns how many transfers ended. */
static int collect(CURLM *m, int *active)
{
	CURLMsg *msg;
	int left, ended = 0;

	while ((msg = curl_multi_info_read(m, &left))) {
		struct xfer *x;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		CURLcode rc = msg->data.result;
		curl_multi_remove_handle(m, msg->easy_handle);
		(*active)--;
		ended++;
		attempt_done(x, rc);
	}
	return ended;
}

static int run_all(const struct azl_fetch_opts *o, struct xfer *xs, size_t n)
{
	int parallel = o->parallel > 0 ? o->parallel : 8, active = 0, running;
	struct hash_pool pool;
	size_t hashed = 0;
	CURLM *m;

	if (azl_fetch_global_init() != CURLE_OK || !(m = curl_multi_init()))
		return -ENOMEM;
	curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)parallel);
	for (size_t i = 0; i < n; i++) {
		hashed += !xs[i].mem && xs[i].it->sha256;
		xs[i].pool = &pool;
	}
	/* Without threads (none wanted, or none could start) transfers hash
	 * as they stream. */
	pool_start(&pool, m, hashed, parallel);
	for (;;) {
		finish_hashed(&pool, xs, n);
		long due = schedule(m, xs, n, parallel, &active);
		int hashing = count_hashing(xs, n); /* schedule may add some */
		report_done(o, xs, n);
		if (!active && due < 0 && !hashing)
			break;
		curl_multi_perform(m, &running);
		int ended = collect(m, &active);
		report(o, xs, n);
		report_done(o, xs, n);
		/* A freed slot is refilled at once rather than after the
		 * next wake-up; a hashed transfer wakes the poll. */
		if (!ended && (active || hashing || due != 0)) {
			long wait = active || hashing ? 1000 : due;
			if (due >= 0 && due < wait)
				wait = due;
			curl_multi_poll(m, NULL, 0, (int)wait, NULL);
		}
	}
	pool_stop(&pool);
	curl_multi_cleanup(m);
	return 0;
}

static void xfer_init(struct xfer *x, struct azl_fetch_item *it,
		      const struct azl_fetch_opts *o)
{
	memset(x, 0, sizeof(*x));
	x->it = it;
	x->o = o;
	x->fd = -1;
	x->state = X_WAITING;
	it->result = 0;
	it->error[0] = '\0';
}

static int first_failure(struct azl_fetch_item *items, size_t n,
			 struct azl_err *err)
{
	for (size_t i = 0; i < n; i++)
		if (items[i].result < 0)
			return azl_errf(err, items[i].result, "%s", items[i].error);
	return 0;
}

int azl_fetch_many(const struct azl_fetch_opts *opts, struct azl_fetch_item *items,
		   size_t n, struct azl_err *err)
{
	struct azl_fetch_opts defaults;
	struct xfer *xs;
	int r;

	if (!opts) {
		azl_fetch_opts_init(&defaults);
		opts = &defaults;
	}
	if (!n)
		return 0;
	xs = azl_xcalloc(n, sizeof(*xs));
	for (size_t i = 0; i < n; i++)
		xfer_init(&xs[i], &items[i], opts);
	r = run_all(opts, xs, n);
	free(xs);
	if (r < 0)
		return azl_errf(err, r, "cannot initialise libcurl");
	return first_failure(items, n, err);
}

int azl_fetch_to_memory(const struct azl_fetch_opts *opts, const char *url,
			size_t max_size, char **data, size_t *len,
			struct azl_err *err)
{
	struct azl_fetch_opts defaults;
	struct azl_fetch_item it = { .url = url };
	struct azl_buf b = AZL_BUF_INIT;
	struct xfer x;
	int r;

	if (!opts) {
		azl_fetch_opts_init(&defaults);
		opts = &defaults;
	}
	xfer_init(&x, &it, opts);
	x.mem = &b;
	x.max_size = max_size ? max_size : (size_t)64 << 20;
	r = run_all(opts, &x, 1);
	if (r < 0)
		r = azl_errf(err, r, "%s: cannot initialise libcurl", url);
	else
		r = first_failure(&it, 1, err);
	if (r < 0) {
		azl_buf_release(&b);
		return r;
	}
	if (len)
		*len = b.len;
	*data = azl_buf_detach(&b);
	return 0;
}

int azl_fetch_to_file(const struct azl_fetch_opts *opts, const char *url,
		      const char *dest, const char *sha256, uint64_t size,
		      const char *label, struct azl_err *err)
{
	struct azl_fetch_item it = {
		.url = url, .dest = dest, .label = label,
		.sha256 = sha256, .size = size,
	};
	return azl_fetch_many(opts, &it, 1, err);
}
