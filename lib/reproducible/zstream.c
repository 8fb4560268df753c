#include "reproducible/zstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "reproducible/pgzip.h"

struct azl_zstream {
	enum azl_comp comp;
	int (*sink)(void *ctx, const void *data, size_t len);
	void *sink_ctx;
	struct azl_sha256 *raw_hash, *hash;
	uint64_t raw_size, size;
	struct azl_pgzip *gz;
	ZSTD_CCtx *zc;
	unsigned char *zbuf;
	size_t zbuf_len;
	int failed;
};

/* Every compressed byte passes here: hash, count, forward. */
static int out_sink(void *ctx, const void *data, size_t len)
{
	struct azl_zstream *s = ctx;
	azl_sha256_update(s->hash, data, len);
	s->size += len;
	return s->sink(s->sink_ctx, data, len);
}

int azl_zstream_fd_sink(void *ctx, const void *data, size_t len)
{
	return azl_write_all(*(int *)ctx, data, len);
}

static int zstd_setup(struct azl_zstream *s, int level, int threads,
		      struct azl_err *err)
{
	size_t rc;

	s->zc = ZSTD_createCCtx();
	if (!s->zc)
		return azl_errf(err, -ENOMEM, "zstd: cannot create a context");
	rc = ZSTD_CCtx_setParameter(s->zc, ZSTD_c_compressionLevel, level ? level : 3);
	if (!ZSTD_isError(rc))
		rc = ZSTD_CCtx_setParameter(s->zc, ZSTD_c_nbWorkers, threads);
	if (!ZSTD_isError(rc))
		rc = ZSTD_CCtx_setParameter(s->zc, ZSTD_c_checksumFlag, 1);
	if (!ZSTD_isError(rc))
		rc = ZSTD_CCtx_setParameter(s->zc, ZSTD_c_contentSizeFlag, 0);
	if (!ZSTD_isError(rc))
		rc = ZSTD_CCtx_setParameter(s->zc, ZSTD_c_dictIDFlag, 0);
	if (ZSTD_isError(rc))
		return azl_errf(err, -EINVAL, "zstd: %s (multi-threaded libzstd needed)",
				ZSTD_getErrorName(rc));
	s->zbuf_len = ZSTD_CStreamOutSize();
	s->zbuf = azl_xmalloc(s->zbuf_len);
	return 0;
}

int azl_zstream_open(enum azl_comp comp, int level, int threads, unsigned flags,
		     int (*sink)(void *ctx, const void *data, size_t len),
		     void *sink_ctx, struct azl_zstream **out,
		     struct azl_err *err)
{
	struct azl_zstream *s = azl_xcalloc(1, sizeof(*s));
	int r = 0;

	if (threads < 1)
		threads = 1;
	if (threads > AZL_PGZIP_MAX_THREADS)
		threads = AZL_PGZIP_MAX_THREADS; /* memory only: bytes are the same */
	s->comp = comp;
	s->sink = sink;
	s->sink_ctx = sink_ctx;
	s->raw_hash = azl_sha256_new();
	s->hash = azl_sha256_new();
	if (comp == AZL_COMP_GZIP)
		r = azl_pgzip_new(flags & AZL_ZSTREAM_GZIP_ONE_MEMBER ? AZL_PGZIP_ONE_MEMBER
								  : AZL_PGZIP_MEMBERS,
				  level, threads, out_sink, s, &s->gz, err);
	else if (comp == AZL_COMP_ZSTD)
		r = zstd_setup(s, level, threads, err);
	else if (comp != AZL_COMP_NONE)
		r = azl_errf(err, -EINVAL, "unknown compression %d", (int)comp);
	if (r < 0) {
		azl_zstream_free(s);
		return r;
	}
	*out = s;
	return 0;
}

static int zstd_push(struct azl_zstream *s, const void *data, size_t len,
		     ZSTD_EndDirective mode, struct azl_err *err)
{
	ZSTD_inBuffer in = { data, len, 0 };
	size_t left;

	do {
		ZSTD_outBuffer o = { s->zbuf, s->zbuf_len, 0 };
		left = ZSTD_compressStream2(s->zc, &o, &in, mode);
		if (ZSTD_isError(left))
			return azl_errf(err, -EIO, "zstd: %s", ZSTD_getErrorName(left));
		if (o.pos) {
			int r = out_sink(s, s->zbuf, o.pos);
			if (r < 0)
				return azl_errf(err, r, "zstd: writing compressed data: %s",
						strerror(-r));
		}
	} while (mode == ZSTD_e_end ? left != 0 : in.pos < in.size);
	return 0;
}

int azl_zstream_write(struct azl_zstream *s, const void *data, size_t len,
		      struct azl_err *err)
{
	int r = 0;

	if (s->failed)
		return s->failed;
	azl_sha256_update(s->raw_hash, data, len);
	s->raw_size += len;
	if (s->comp == AZL_COMP_GZIP)
		r = azl_pgzip_write(s->gz, data, len, err);
	else if (s->comp == AZL_COMP_ZSTD)
		r = zstd_push(s, data, len, ZSTD_e_continue, err);
	else if ((r = out_sink(s, data, len)) < 0)
		azl_errf(err, r, "writing layer data: %s", strerror(-r));
	if (r < 0)
		s->failed = r;
	return r;
}

int azl_zstream_close(struct azl_zstream *s, struct azl_zstream_result *res,
		      struct azl_err *err)
{
	int r = s->failed;

	if (r == 0 && s->comp == AZL_COMP_GZIP) {
		r = azl_pgzip_finish(s->gz, err);
		s->gz = NULL;
	} else if (r == 0 && s->comp == AZL_COMP_ZSTD) {
		r = zstd_push(s, NULL, 0, ZSTD_e_end, err);
	}
	if (r == 0 && res) {
		azl_sha256_final(s->raw_hash, res->raw_sha256);
		azl_sha256_final(s->hash, res->sha256);
		s->raw_hash = s->hash = NULL;
		res->raw_size = s->raw_size;
		res->size = s->size;
	}
	azl_zstream_free(s);
	return r;
}

void azl_zstream_free(struct azl_zstream *s)
{
	char scratch[65];

	if (!s)
		return;
	azl_pgzip_free(s->gz);
	ZSTD_freeCCtx(s->zc);
	free(s->zbuf);
	if (s->raw_hash)
		azl_sha256_final(s->raw_hash, scratch);
	if (s->hash)
		azl_sha256_final(s->hash, scratch);
	free(s);
}

const char *azl_comp_name(enum azl_comp c)
{
	switch (c) {
	case AZL_COMP_GZIP: return "gzip";
	case AZL_COMP_ZSTD: return "zstd";
	case AZL_COMP_NONE: return "none";
	}
	return "?";
}

int azl_comp_parse(const char *name, enum azl_comp *out)
{
	static const enum azl_comp all[] = { AZL_COMP_NONE, AZL_COMP_GZIP, AZL_COMP_ZSTD };
	for (size_t i = 0; i < sizeof(all) / sizeof(*all); i++)
		if (name && !strcmp(name, azl_comp_name(all[i]))) {
			*out = all[i];
			return 0;
		}
	return -EINVAL;
}
