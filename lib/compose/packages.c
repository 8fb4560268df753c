/* The fetch stage: lockfile packages -> verified cache blobs.
 *
 * Each package is looked up in the cache first; the rest are downloaded
 * together (azl_fetch_many checks size and sha256).  As each download
 * finishes, a worker thread checks its signature against the repository's
 * keys and inserts it, overlapping the other downloads; the inserts form
 * one cache batch (one index transaction).  A package failing any check is
 * reported and never inserted.  A cached copy is re-hashed (and its
 * signature checked again) at every use, so a blob damaged since, by a
 * power cut or by hand, is dropped and downloaded again. */

#define WORKERS 2
#include "compose/packages.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/hash.h"
#include "base/par.h"
#include "compose/rpmread.h"
#include "sign/rpmsig.h"

/* One package on its way through download, check and insert. */
struct pending {
	const struct azl_lock_pkg *p;
	int repo;                      /* index into m->repos */
	char *nevra, *url, *tmp;
	struct azl_rpm_payload pay;    /* streamed payload digest (gpgcheck) */
	/* A cached copy, checked on a thread of its own (check_cached): */
	char *blob;                    /* its path, or NULL */
	int intact;                    /* its bytes hash to its name */
	int sig;                       /* check_sig's result, */
	struct azl_err *sig_err;       /* and its error when < 0 */
};

struct pkgs_ctx {
	pthread_mutex_t mu;            /* st, failures, cb; queue below */
	pthread_cond_t cv;
	size_t *queue;                 /* indexes of downloads to check */
	size_t nqueued, ntaken;
	int closed;
	struct pending *qs;
	const struct azl_manifest *m;
	const struct azl_lock *lock;
	struct azl_cache *c;
	const struct azl_packages_cb *cb;
	struct azl_packages_stats st;
	struct azl_keyring **keyrings; /* per manifest repo, loaded on use */
	struct azl_buf failures;       /* one message a line */
	int commit_failed;             /* the cache index could not be written */
};

/* Callers hold x->mu once worker threads run. */
static void event(struct pkgs_ctx *x, const struct azl_lock_pkg *p,
		  enum azl_pkg_event ev, const char *msg)
{
	if (msg) {
		if (x->failures.len)
			azl_buf_addc(&x->failures, '\n');
		azl_buf_adds(&x->failures, msg);
	}
	if (p && x->cb && x->cb->on_package)
		x->cb->on_package(x->cb->ctx, p, ev, msg);
}

static int find_repo(const struct azl_manifest *m, const char *id)
{
	for (size_t i = 0; i < m->nrepos; i++)
		if (!strcmp(m->repos[i].id, id))
			return (int)i;
	return -1;
}

static const char *key_path(const char *gpgkey)
{
	return strncmp(gpgkey, "file://", 7) ? gpgkey : gpgkey + 7;
}

/* The repository's keyring, or NULL with *k NULL when gpgcheck is off. */
static int keyring_for(struct pkgs_ctx *x, int ri, struct azl_keyring **k,
		       struct azl_err *err)
{
	const struct azl_repo_spec *r = &x->m->repos[ri];
	const char *path;
	int rc;

	*k = NULL;
	if (!r->gpgcheck)
		return 0;
	if (x->keyrings[ri]) {
		*k = x->keyrings[ri];
		return 0;
	}
	if (!r->gpgkey)
		return azl_err_input(err, "repo %s: gpgcheck is on but no gpgkey",
				     r->id);
	path = key_path(r->gpgkey);
	rc = azl_keyring_load(&path, 1, &x->keyrings[ri], err);
	if (rc < 0)
		return azl_err_prefix(err, "repo %s", r->id);
	*k = x->keyrings[ri];
	return 0;
}

/* Signature check of a file standing for package p (fetched from url);
 * pay is the payload digest gathered while it downloaded, or NULL. */
static int check_sig(struct pkgs_ctx *x, const struct pending *q,
		     const char *path, struct azl_rpm_payload *pay,
		     struct azl_err *err)
{
	struct azl_keyring *k;
	char *label;
	int r = keyring_for(x, q->repo, &k, err);

	if (r < 0 || !k)
		return r;
	label = azl_xasprintf("%s: %s", q->nevra, q->url);
	r = azl_rpmsig_verify_streamed(k, path, label, pay, err);
	free(label);
	return r;
}

static char *pkg_url(const struct pkgs_ctx *x, const struct azl_lock_pkg *p,
		     int ri)
{
	const struct azl_lock_repo *lr = azl_lock_find_repo(x->lock, p->repo);
	const char *base = lr && lr->baseurl ? lr->baseurl : x->m->repos[ri].baseurl;
	size_t n = strlen(base);

	return azl_xasprintf("%s%s%s", base, n && base[n - 1] == '/' ? "" : "/",
			     p->location);
}

/* Fill q for p and look for a cached copy; <0 on bad input. */
static int identify(struct pkgs_ctx *x, const struct azl_lock_pkg *p,
		    struct pending *q, struct azl_err *err)
{
	struct azl_keyring *k;

	q->p = p;
	q->repo = find_repo(x->m, p->repo);
	if (q->repo < 0)
		return azl_err_input(err, "lockfile package %s: repo '%s' is not "
				     "in the manifest (run azl-compose lock)",
				     p->name, p->repo);
	q->nevra = azl_lock_pkg_nevra(p);
	q->url = pkg_url(x, p, q->repo);
	/* Load the keys now: bad key files stop us before any download, and
	 * threads later only read the keyrings. */
	if (keyring_for(x, q->repo, &k, err) < 0)
		return err->code;
	q->blob = azl_cache_lookup(x->c, p->sha256);
	return 0;
}

/* Whether the cached copy of package i still hashes to its name, and then
 * its signature check; the same read gathers the payload digest for that
 * check (q->pay) when gpgcheck is on.  Runs on several threads at once
 * (azl_par_for), touching only qs[i]. */
static void check_cached(void *ctx, size_t i)
{
	struct pkgs_ctx *x = ctx;
	struct pending *q = &x->qs[i];
	struct azl_err e = { 0 };
	char hex[65];
	int gpg;

	if (!q->blob)
		return;
	gpg = x->m->repos[q->repo].gpgcheck;
	q->intact = azl_sha256_file_tapped(q->blob, gpg ? azl_rpm_payload_tap : NULL,
					   &q->pay, hex, NULL, NULL) == 0 &&
		    !strcmp(hex, q->p->sha256);
	if (!q->intact)
		return;
	q->sig = check_sig(x, q, q->blob, &q->pay, &e);
	if (q->sig < 0) {
		q->sig_err = azl_xmalloc(sizeof(*q->sig_err));
		*q->sig_err = e;
	}
}

/* After check_cached: 1 when q is settled (cached, failed or missing), 0
 * when it needs a download (q then holds no cached copy), <0 on bad
 * input.  A damaged cached copy is dropped and downloaded again. */
static int settle_cached(struct pkgs_ctx *x, struct pending *q, bool offline,
			 struct azl_err *err)
{
	const struct azl_lock_pkg *p = q->p;

	if (q->blob && q->intact) {
		if (q->sig < 0 && q->sig_err->kind == AZL_ERR_INPUT) {
			*err = *q->sig_err;
			return q->sig;
		}
		x->st.cached += q->sig == 0;
		x->st.failed += q->sig < 0;
		event(x, p, q->sig == 0 ? AZL_PKG_CACHED : AZL_PKG_FAILED,
		      q->sig == 0 ? NULL : q->sig_err->msg);
		return 1;
	}
	if (q->blob) {
		azl_cache_forget(x->c, p->sha256);
		free(q->blob);
		q->blob = NULL;
	}
	if (offline) {
		char *msg = azl_xasprintf("%s: not in the cache (%s)", q->nevra, q->url);
		x->st.missing++;
		event(x, p, AZL_PKG_MISSING, msg);
		free(msg);
		return 1;
	}
	return 0;
}

/* azl_fetch_many's prepare: claim the package's temporary file as its
 * transfer starts (on the downloading thread). */
static int claim_tmp(void *ctx, struct azl_fetch_item *it, size_t i)
{
	struct pkgs_ctx *x = ctx;
	struct pending *q = &x->qs[i];
	int e;

	q->tmp = azl_cache_tmp_path(x->c, q->p->sha256);
	if (q->tmp) {
		it->dest = q->tmp;
		return 0;
	}
	e = errno ? errno : EIO;
	snprintf(it->error, sizeof(it->error), "%s: %s: cannot create a temporary "
		 "file in %s/tmp: %s", q->nevra, q->url, azl_cache_dir(x->c),
		 strerror(e));
	return -e;
}

static void pending_release(struct pending *q)
{
	free(q->nevra);
	free(q->url);
	free(q->tmp);
	free(q->blob);
	free(q->sig_err);
	azl_rpm_payload_release(&q->pay);
	memset(q, 0, sizeof(*q));
}

/* A failed download keeps its stable temporary name for a later resume;
 * a private one (another process held the stable name) is removed. */
static void drop_tmp(const struct pending *q)
{
	const char *base;
	char stable[80];

	if (!q->tmp) /* never claimed */
		return;
	base = strrchr(q->tmp, '/');
	snprintf(stable, sizeof(stable), "/%s.part", q->p->sha256);
	if (!base || strcmp(base, stable))
		unlink(q->tmp);
}

/* A finished download: signature, then into the cache (worker thread). */
static void settle(struct pkgs_ctx *x, struct pending *q)
{
	struct azl_err e = { 0 };
	int r;

	r = check_sig(x, q, q->tmp, &q->pay, &e);
	if (r < 0) {
		unlink(q->tmp);
		azl_cache_tmp_release(x->c, q->p->sha256);
	} else
		r = azl_cache_insert_hashed(x->c, q->tmp, q->p->sha256, q->p->size,
					    "rpm", q->nevra, &e);
	pthread_mutex_lock(&x->mu);
	if (r < 0) {
		x->st.failed++;
		event(x, q->p, AZL_PKG_FAILED, e.msg);
	} else {
		x->st.fetched++;
		x->st.fetched_bytes += q->p->size;
		event(x, q->p, AZL_PKG_FETCHED, NULL);
	}
	pthread_mutex_unlock(&x->mu);
}

static void *worker(void *arg)
{
	struct pkgs_ctx *x = arg;

	pthread_mutex_lock(&x->mu);
	for (;;) {
		while (x->ntaken == x->nqueued && !x->closed)
			pthread_cond_wait(&x->cv, &x->mu);
		if (x->ntaken == x->nqueued)
			break;
		size_t i = x->queue[x->ntaken++];
		pthread_mutex_unlock(&x->mu);
		settle(x, &x->qs[i]);
		pthread_mutex_lock(&x->mu);
	}
	pthread_mutex_unlock(&x->mu);
	return NULL;
}

/* azl_fetch_many's per-item callback, on the downloading thread. */
static void on_downloaded(void *ctx, struct azl_fetch_item *it, size_t i)
{
	struct pkgs_ctx *x = ctx;

	pthread_mutex_lock(&x->mu);
	if (it->result < 0) {
		drop_tmp(&x->qs[i]);
		azl_cache_tmp_release(x->c, x->qs[i].p->sha256);
		x->st.failed++;
		event(x, x->qs[i].p, AZL_PKG_FAILED, it->error);
	} else {
		x->queue[x->nqueued++] = i;
		pthread_cond_signal(&x->cv);
	}
	pthread_mutex_unlock(&x->mu);
}

static void items_init(struct pkgs_ctx *x, struct azl_fetch_item *items,
		       struct pending *qs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		items[i].url = qs[i].url;
		items[i].dest = NULL; /* claim_tmp, as the transfer starts */
		items[i].label = qs[i].nevra;
		items[i].sha256 = qs[i].p->sha256;
		items[i].size = qs[i].p->size;
		/* The signature check will want the payload's digest. */
		if (x->m->repos[qs[i].repo].gpgcheck) {
			items[i].tap = azl_rpm_payload_tap;
			items[i].tap_ctx = &qs[i].pay;
		}
	}
}

static int download(struct pkgs_ctx *x, const struct azl_fetch_opts *fopts,
		    struct pending *qs, size_t n, struct azl_err *err)
{
	struct azl_fetch_item *items = azl_xcalloc(n ? n : 1, sizeof(*items));
	struct azl_err ignore = { 0 }, e = { 0 };
	struct azl_fetch_opts fo;
	pthread_t th[WORKERS];
	int nth = 0, started;

	if (fopts)
		fo = *fopts;
	else
		azl_fetch_opts_init(&fo);
	fo.done = on_downloaded;
	fo.done_ctx = x;
	fo.prepare = claim_tmp;
	fo.prepare_ctx = x;
	x->qs = qs;
	x->queue = azl_xcalloc(n ? n : 1, sizeof(*x->queue));
	items_init(x, items, qs, n);
	azl_cache_batch_begin(x->c);
	while (n && nth < WORKERS && pthread_create(&th[nth], NULL, worker, x) == 0)
		nth++;
	started = nth;
	/* Each item carries its own outcome, reported by on_downloaded. */
	if (n && nth)
		azl_fetch_many(&fo, items, n, &ignore);
	pthread_mutex_lock(&x->mu);
	x->closed = 1;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
	while (nth > 0)
		pthread_join(th[--nth], NULL);
	if (azl_cache_batch_commit(x->c, &e) < 0) {
		/* The blobs are in place; a later run adopts them. */
		x->commit_failed = 1;
		event(x, NULL, AZL_PKG_FAILED, e.msg);
	} else if (n && !started)
		azl_errf(err, -EAGAIN, "cannot start worker threads");
	free(x->queue);
	free(items);
	return err->code;
}

static int summarise(struct pkgs_ctx *x, size_t total, struct azl_err *err)
{
	if (!x->st.failed && !x->st.missing && !x->commit_failed)
		return 0;
	if (x->commit_failed && !x->st.failed && !x->st.missing)
		return azl_errf(err, -EIO, "%s", azl_buf_str(&x->failures));
	if (x->st.missing && !x->st.failed)
		return azl_errf(err, -ENOENT, "%zu of %zu packages are not in the "
				"cache %s (offline):\n%s", x->st.missing, total,
				azl_cache_dir(x->c), azl_buf_str(&x->failures));
	return azl_errf(err, -EIO, "%zu of %zu packages failed:\n%s",
			x->st.failed + x->st.missing, total,
			azl_buf_str(&x->failures));
}

int azl_packages_fetch(const struct azl_manifest *m, const struct azl_lock *lock,
		       struct azl_cache *c, const struct azl_fetch_opts *fopts,
		       bool offline, const struct azl_packages_cb *cb,
		       struct azl_packages_stats *stats, struct azl_err *err)
{
	struct pkgs_ctx x = { .m = m, .lock = lock, .c = c, .cb = cb,
			      .failures = AZL_BUF_INIT };
	struct pending *qs = azl_xcalloc(lock->npkgs + 1, sizeof(*qs));
	size_t n = 0;
	int r = 0;

	pthread_mutex_init(&x.mu, NULL);
	pthread_cond_init(&x.cv, NULL);
	azl_err_clear(err);
	x.keyrings = azl_xcalloc(m->nrepos + 1, sizeof(*x.keyrings));
	x.qs = qs;
	for (size_t i = 0; r == 0 && i < lock->npkgs; i++)
		r = identify(&x, &lock->pkgs[i], &qs[i], err);
	/* Cached copies are read through once each, on every core. */
	if (r == 0)
		azl_par_for(lock->npkgs, 0, check_cached, &x);
	/* In lockfile order: what is settled goes, the downloads move up. */
	for (size_t i = 0; r == 0 && i < lock->npkgs; i++) {
		r = settle_cached(&x, &qs[i], offline, err);
		if (r == 0) {
			struct pending q = qs[i];
			memset(&qs[i], 0, sizeof(qs[i]));
			qs[n++] = q;
		} else if (r > 0) {
			pending_release(&qs[i]);
			r = 0;
		}
	}
	if (r == 0)
		r = download(&x, fopts, qs, n, err);
	if (r == 0)
		r = summarise(&x, lock->npkgs, err);
	if (stats)
		*stats = x.st;
	for (size_t i = 0; i < lock->npkgs + 1; i++)
		pending_release(&qs[i]);
	for (size_t i = 0; i < m->nrepos; i++)
		azl_keyring_free(x.keyrings[i]);
	free(x.keyrings);
	free(qs);
	azl_buf_release(&x.failures);
	pthread_cond_destroy(&x.cv);
	pthread_mutex_destroy(&x.mu);
	return r;
}

struct azl_warm_up {
	pthread_t th;
};

static void *warm_up_main(void *arg)
{
	(void)arg;
	azl_fetch_global_init();
	azl_rpm_config_init();
	return NULL;
}

struct azl_warm_up *azl_packages_warm_up(void)
{
	struct azl_warm_up *w = azl_xmalloc(sizeof(*w));

	if (pthread_create(&w->th, NULL, warm_up_main, NULL) == 0)
		return w;
	free(w);
	return NULL;
}

void azl_packages_warm_up_join(struct azl_warm_up *w)
{
	if (!w)
		return;
	pthread_join(w->th, NULL);
	free(w);
}
