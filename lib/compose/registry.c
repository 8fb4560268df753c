/* OCI distribution client (push) and the cosign signature artifact. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <jansson.h>

#include "base/buf.h"
#include "base/hash.h"
#include "compose/fetch.h"
#include "compose/registry.h"

#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define MAX_JSON (4u << 20)       /* index.json, manifests, error bodies */
#define DEFAULT_CHUNK (32u << 20)

/* ---- references ---- */

static int is_alnum_lower(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Path components of lowercase alphanumerics joined by single '.', '_',
 * '__' or '-' runs (distribution's grammar, slightly looser on
 * separators). */
static int repo_ok(const char *s)
{
	char prev = '/';

	if (!*s)
		return 0;
	for (; *s; prev = *s++) {
		int sep = *s == '.' || *s == '_' || *s == '-' || *s == '/';
		if (!sep && !is_alnum_lower(*s))
			return 0;
		if (sep && !is_alnum_lower(prev) && !(*s == '_' && prev == '_') &&
		    !(*s == '-' && prev == '-'))
			return 0;
	}
	return is_alnum_lower(prev);
}

static int tag_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128 || !(isalnum((unsigned char)s[0]) || s[0] == '_'))
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return 0;
	return 1;
}

static int host_ok(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(".-:[]", *s))
			return 0;
	return 1;
}

int azl_image_ref_parse(const char *s, struct azl_image_ref *ref,
			struct azl_err *err)
{
	const char *slash = strchr(s, '/'), *last, *colon;

	memset(ref, 0, sizeof(*ref));
	if (strchr(s, '@'))
		return azl_err_input(err, "reference '%s': push needs a tag, not a digest", s);
	if (!slash || slash == s)
		return azl_err_input(err, "reference '%s': expected HOST[:PORT]/REPO[:TAG]", s);
	last = strrchr(slash, '/');
	colon = strchr(last, ':');
	ref->host = strndup(s, (size_t)(slash - s));
	ref->repo = colon ? strndup(slash + 1, (size_t)(colon - slash - 1))
			  : azl_xstrdup(slash + 1);
	ref->tag = azl_xstrdup(colon ? colon + 1 : "latest");
	if (!ref->host || !ref->repo)
		abort();
	if (!host_ok(ref->host) || !repo_ok(ref->repo) || !tag_ok(ref->tag)) {
		azl_image_ref_free(ref);
		return azl_err_input(err, "reference '%s': expected HOST[:PORT]/REPO[:TAG] "
				     "(REPO lowercase a-z0-9 with . _ - / separators, "
				     "TAG [A-Za-z0-9_.-], at most 128)", s);
	}
	return 0;
}

void azl_image_ref_free(struct azl_image_ref *ref)
{
	free(ref->host);
	free(ref->repo);
	free(ref->tag);
	memset(ref, 0, sizeof(*ref));
}

char *azl_image_ref_str(const struct azl_image_ref *ref)
{
	return azl_xasprintf("%s/%s:%s", ref->host, ref->repo, ref->tag);
}

/* ---- the cosign documents ---- */

static int is_sha256_digest(const char *d)
{
	return d && !strncmp(d, "sha256:", 7) && azl_is_sha256_hex(d + 7);
}

static char *canonical(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
	json_decref(j);
	return s;
}

char *azl_cosign_payload(const char *docker_ref, const char *manifest_digest)
{
	return canonical(json_pack("{s:{s:{s:s}, s:{s:s}, s:s}, s:n}",
		"critical",
		"identity", "docker-reference", docker_ref,
		"image", "docker-manifest-digest", manifest_digest,
		"type", "cosign container image signature",
		"optional"));
}

int azl_cosign_sig_tag(const char *manifest_digest, char out[80])
{
	if (!is_sha256_digest(manifest_digest))
		return -EINVAL;
	snprintf(out, 80, "sha256-%.64s.sig", manifest_digest + 7);
	return 0;
}

/* Layers of an existing signature manifest other than the one for
 * payload_digest; an unreadable or non-OCI manifest contributes none. */
static json_t *kept_layers(const char *existing, const char *payload_digest)
{
	json_t *out = json_array(), *m, *layers, *l;
	const char *mt;
	size_t i;

	m = existing ? json_loads(existing, 0, NULL) : NULL;
	layers = json_object_get(m, "layers");
	mt = json_string_value(json_object_get(m, "mediaType"));
	if (json_is_array(layers) && mt && !strcmp(mt, MT_MANIFEST)) {
		json_array_foreach(layers, i, l) {
			const char *d = json_string_value(json_object_get(l, "digest"));
			if (json_is_object(l) && is_sha256_digest(d) && strcmp(d, payload_digest))
				json_array_append(out, l);
		}
	}
	json_decref(m);
	return out;
}

static json_t *sig_config(json_t *layers)
{
	json_t *diff_ids = json_array(), *history = json_array(), *l;
	size_t i;

	json_array_foreach(layers, i, l) {
		json_array_append(diff_ids, json_object_get(l, "digest"));
		json_array_append_new(history, json_pack("{s:s}", "created",
							 "0001-01-01T00:00:00Z"));
	}
	return json_pack("{s:s, s:{}, s:s, s:o, s:s, s:{s:o, s:s}}",
			 "architecture", "", "config", "created", "0001-01-01T00:00:00Z",
			 "history", history, "os", "",
			 "rootfs", "diff_ids", diff_ids, "type", "layers");
}

int azl_cosign_manifest(const char *payload_digest, uint64_t payload_size,
			const char *sig_b64, const char *existing,
			char **config, char **manifest, struct azl_err *err)
{
	json_t *layers = kept_layers(existing, payload_digest);
	char hex[65], digest[72];
	int r = 0;

	*config = *manifest = NULL;
	json_array_append_new(layers, json_pack("{s:s, s:I, s:s, s:{s:s}}",
		"mediaType", AZL_COSIGN_PAYLOAD_TYPE, "size", (json_int_t)payload_size,
		"digest", payload_digest, "annotations", AZL_COSIGN_SIG_ANNOTATION, sig_b64));
	*config = canonical(sig_config(layers));
	if (!*config) {
		r = azl_err_input(err, "signature config: a value is not valid JSON text");
		goto out;
	}
	azl_sha256_hex(*config, strlen(*config), hex);
	snprintf(digest, sizeof(digest), "sha256:%s", hex);
	*manifest = canonical(json_pack("{s:{s:s, s:s, s:I}, s:O, s:s, s:i}",
		"config", "mediaType", MT_CONFIG, "digest", digest,
		"size", (json_int_t)strlen(*config),
		"layers", layers, "mediaType", MT_MANIFEST, "schemaVersion", 2));
	if (!*manifest)
		r = azl_err_input(err, "signature manifest: a value is not valid JSON text");
out:
	json_decref(layers);
	return r;
}

/* ---- reading the archive ---- */

/* libarchive leaves no message for a short read. */
static const char *tar_error(struct archive *a)
{
	const char *s = archive_error_string(a);

	return s ? s : "unexpected end of the archive";
}

static struct archive *tar_open(const char *path, struct azl_err *err)
{
	struct archive *a = archive_read_new();

	if (!a)
		abort();
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, path, 256 * 1024) != ARCHIVE_OK) {
		azl_err_input(err, "%s: cannot open: %s", path, tar_error(a));
		archive_read_free(a);
		return NULL;
	}
	return a;
}

static const char *entry_name(struct archive_entry *e)
{
	const char *n = archive_entry_pathname(e);

	n = n ? n : "";
	return !strncmp(n, "./", 2) ? n + 2 : n;
}

/* The entry `name` (at most max bytes) into *out, NUL-terminated;
 * -ENOENT (AZL_ERR_INPUT) when the archive has none. */
static int tar_read_entry(const char *path, const char *name, size_t max,
			  char **out, size_t *len, struct azl_err *err)
{
	struct archive *a = tar_open(path, err);
	struct archive_entry *e;
	int64_t size;
	int rc;

	*out = NULL;
	if (!a)
		return -EINVAL;
	while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK)
		if (!strcmp(entry_name(e), name))
			break;
	if (rc != ARCHIVE_OK) {
		rc = rc == ARCHIVE_EOF
			? azl_errf(err, -ENOENT, "%s: no %s: not an OCI image layout archive", path, name)
			: azl_errf(err, -EIO, "%s: %s", path, tar_error(a));
		goto out;
	}
	size = archive_entry_size(e);
	if (size < 0 || (uint64_t)size > max) {
		rc = azl_errf(err, -EFBIG, "%s: %s is larger than %zu bytes", path, name, max);
		goto out;
	}
	*out = azl_xmalloc((size_t)size + 1);
	if (archive_read_data(a, *out, (size_t)size) != (la_ssize_t)size) {
		rc = azl_errf(err, -EIO, "%s: %s: %s", path, name, tar_error(a));
		goto out;
	}
	(*out)[size] = '\0';
	*len = (size_t)size;
	rc = 0;
out:
	if (rc < 0) {
		err->kind = AZL_ERR_INPUT;
		free(*out);
		*out = NULL;
	}
	archive_read_free(a);
	return rc;
}

/* The one image manifest of index.json. */
static int index_manifest_digest(const char *path, const char *index,
				 char digest[72], struct azl_err *err)
{
	json_t *j = json_loads(index, 0, NULL), *ms = json_object_get(j, "manifests");
	json_t *m = json_array_get(ms, 0);
	const char *d = json_string_value(json_object_get(m, "digest"));
	const char *mt = json_string_value(json_object_get(m, "mediaType"));
	int r = 0;

	if (json_array_size(ms) != 1 || !is_sha256_digest(d) || !mt || strcmp(mt, MT_MANIFEST))
		r = azl_err_input(err, "%s: index.json must name exactly one %s by sha256 digest",
				  path, MT_MANIFEST);
	else
		snprintf(digest, 72, "%s", d);
	json_decref(j);
	return r;
}

int azl_oci_tar_manifest(const char *path, char digest[72], char **manifest,
			 size_t *len, struct azl_err *err)
{
	char *index = NULL, *m = NULL, hex[65], name[96];
	size_t ilen, mlen = 0;
	int r;

	if ((r = tar_read_entry(path, "index.json", MAX_JSON, &index, &ilen, err)) < 0)
		goto out;
	if ((r = index_manifest_digest(path, index, digest, err)) < 0)
		goto out;
	snprintf(name, sizeof(name), "blobs/sha256/%s", digest + 7);
	if ((r = tar_read_entry(path, name, MAX_JSON, &m, &mlen, err)) < 0)
		goto out;
	azl_sha256_hex(m, mlen, hex);
	if (strcmp(hex, digest + 7))
		r = azl_err_input(err, "%s: %s does not match its digest (sha256 %s)",
				  path, name, hex);
out:
	free(index);
	if (r == 0 && manifest) {
		*manifest = m;
		*len = mlen;
	} else {
		free(m);
	}
	return r;
}

/* A blob the image manifest names. */
struct need {
	char digest[72];
	uint64_t size;
	int upload; /* missing from the registry */
	int done;
};

static int add_need(struct need *nd, size_t *n, json_t *desc)
{
	const char *d = json_string_value(json_object_get(desc, "digest"));
	json_int_t size = json_integer_value(json_object_get(desc, "size"));

	if (!is_sha256_digest(d) || size < 0)
		return -EINVAL;
	for (size_t i = 0; i < *n; i++)
		if (!strcmp(nd[i].digest, d))
			return 0;
	snprintf(nd[*n].digest, sizeof(nd[*n].digest), "%s", d);
	nd[*n].size = (uint64_t)size;
	(*n)++;
	return 0;
}

/* Config and layers of the manifest; *nd owned by the caller. */
static int manifest_blobs(const char *path, const char *manifest,
			  struct need **nd, size_t *n, struct azl_err *err)
{
	json_t *j = json_loads(manifest, 0, NULL), *layers = json_object_get(j, "layers"), *l;
	size_t i;
	int r;

	*n = 0;
	*nd = azl_xcalloc(json_array_size(layers) + 1, sizeof(**nd));
	r = json_is_array(layers) ? add_need(*nd, n, json_object_get(j, "config")) : -EINVAL;
	json_array_foreach(layers, i, l)
		if (r == 0)
			r = add_need(*nd, n, l);
	json_decref(j);
	if (r < 0)
		return azl_err_input(err, "%s: the image manifest's config and layers must be "
				     "descriptors with a sha256 digest and a size", path);
	return 0;
}

/* ---- HTTP ---- */

struct body {
	const char *mem;  /* memory source, or */
	struct archive *a; /* the current archive entry */
	uint64_t left;    /* bytes this request may still send */
	int failed;       /* the archive could not be read */
};

struct resp {
	long status;
	struct azl_buf body; /* at most MAX_JSON kept */
	char *location, *www_auth, *digest;
	int transient;       /* the transfer failed in a way worth retrying */
};

struct reg {
	CURL *c;
	const struct azl_push_opts *o;
	const struct azl_image_ref *ref;
	struct azl_push_result *res;
	char *base;   /* "https://HOST" */
	char *bearer; /* token after a Bearer challenge */
	char *realm, *service; /* of that challenge, to renew the token */
	int basic;    /* send user/password (after a Basic challenge) */
	struct azl_fetch_opts retry; /* replayable requests: fetch's retry settings */
	char curl_err[CURL_ERROR_SIZE];
};

struct req {
	const char *method; /* GET HEAD POST PUT PATCH */
	const char *url;
	const char *ctype;  /* Content-Type, or NULL */
	const char *accept;
	const char *range;  /* Content-Range, or NULL */
	struct body *body;  /* NULL: no body */
};

static void note(struct reg *g, const char *fmt, ...) AZL_PRINTF(2, 3);
static void note(struct reg *g, const char *fmt, ...)
{
	struct azl_buf b = AZL_BUF_INIT;
	va_list ap;

	if (!g->o->log)
		return;
	va_start(ap, fmt);
	azl_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	g->o->log(g->o->log_ctx, azl_buf_str(&b));
	azl_buf_release(&b);
}

static size_t on_read(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct body *b = ctx;
	size_t want = size * nmemb;
	la_ssize_t got;

	if (want > b->left)
		want = (size_t)b->left;
	if (want == 0)
		return 0;
	if (b->mem) {
		memcpy(p, b->mem, want);
		b->mem += want;
		b->left -= want;
		return want;
	}
	got = archive_read_data(b->a, p, want);
	if (got <= 0) {
		b->failed = 1;
		return CURL_READFUNC_ABORT;
	}
	b->left -= (uint64_t)got;
	return (size_t)got;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct resp *rs = ctx;
	size_t n = size * nmemb;

	if (rs->body.len + n <= MAX_JSON)
		azl_buf_add(&rs->body, p, n);
	return n;
}

/* "Name: value\r\n" -> a copy of value if the name matches. */
static char *header_value(const char *line, size_t n, const char *name)
{
	size_t k = strlen(name), end = n;

	if (n <= k || strncasecmp(line, name, k) || line[k] != ':')
		return NULL;
	line += k + 1;
	end -= k + 1;
	while (end && (*line == ' ' || *line == '\t'))
		line++, end--;
	while (end && (line[end - 1] == '\r' || line[end - 1] == '\n' || line[end - 1] == ' '))
		end--;
	return strndup(line, end);
}

static void set_field(char **dst, char *v)
{
	if (v) {
		free(*dst);
		*dst = v;
	}
}

static void resp_reset(struct resp *rs)
{
	free(rs->location);
	free(rs->www_auth);
	free(rs->digest);
	rs->location = rs->www_auth = rs->digest = NULL;
	rs->status = 0;
	rs->transient = 0;
	azl_buf_reset(&rs->body);
}

static void resp_release(struct resp *rs)
{
	resp_reset(rs);
	azl_buf_release(&rs->body);
}

/* A new status line (after a 100 Continue or a redirect) starts over. */
static size_t on_header(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct resp *rs = ctx;
	size_t n = size * nmemb;

	if (n >= 5 && !strncmp(p, "HTTP/", 5))
		resp_reset(rs);
	set_field(&rs->location, header_value(p, n, "Location"));
	set_field(&rs->www_auth, header_value(p, n, "WWW-Authenticate"));
	set_field(&rs->digest, header_value(p, n, "Docker-Content-Digest"));
	return n;
}

static struct curl_slist *req_headers(struct reg *g, const struct req *q)
{
	struct curl_slist *h = curl_slist_append(NULL, "Expect:");
	char line[512];

	if (q->ctype) {
		snprintf(line, sizeof(line), "Content-Type: %s", q->ctype);
		h = curl_slist_append(h, line);
	}
	if (q->accept) {
		snprintf(line, sizeof(line), "Accept: %s", q->accept);
		h = curl_slist_append(h, line);
	}
	if (q->range) {
		snprintf(line, sizeof(line), "Content-Range: %s", q->range);
		h = curl_slist_append(h, line);
	}
	if (g->bearer) {
		char *a = azl_xasprintf("Authorization: Bearer %s", g->bearer);
		h = curl_slist_append(h, a);
		free(a);
	}
	return h;
}

static void req_opts(struct reg *g, const struct req *q, struct resp *rs,
		     struct curl_slist *h)
{
	CURL *c = g->c;

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, q->url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, g->curl_err);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "azl-compose/0.1");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, rs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, rs);
	if (g->o->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, g->o->ca_file);
	if (g->basic) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, g->o->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, g->o->password ? g->o->password : "");
	}
	if (!strcmp(q->method, "HEAD")) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(q->method, "POST")) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	} else if (strcmp(q->method, "GET")) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, q->body);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)(q->body ? q->body->left : 0));
	}
}

static const char *curl_hint(const struct reg *g, CURLcode cc)
{
	if (cc == CURLE_PEER_FAILED_VERIFICATION)
		return g->o->ca_file ? " (the certificate is not signed by --ca-file)"
				     : " (give the registry's CA certificate with --ca-file)";
	if (cc == CURLE_SSL_CONNECT_ERROR && !g->o->insecure)
		return " (a plain-http registry needs --insecure)";
	return "";
}

/* One request; any HTTP status is a success here (callers judge it). */
static int send_req(struct reg *g, const struct req *q, struct resp *rs,
		    struct azl_err *err)
{
	struct body none = { 0 };
	struct req qq = *q;
	struct curl_slist *h = req_headers(g, q);
	CURLcode cc;
	int r = 0;

	if (!qq.body)
		qq.body = &none;
	resp_reset(rs);
	g->curl_err[0] = '\0';
	req_opts(g, &qq, rs, h);
	cc = curl_easy_perform(g->c);
	if (q->body && q->body->failed)
		r = azl_errf(err, -EIO, "reading the archive for %s %s: %s", q->method,
			     q->url, tar_error(q->body->a));
	else if (cc != CURLE_OK)
		r = azl_errf(err, -EIO, "%s %s: %s%s", q->method, q->url,
			     g->curl_err[0] ? g->curl_err : curl_easy_strerror(cc),
			     curl_hint(g, cc));
	else
		curl_easy_getinfo(g->c, CURLINFO_RESPONSE_CODE, &rs->status);
	rs->transient = cc != CURLE_OK && !(q->body && q->body->failed) &&
			azl_fetch_curl_transient(cc);
	curl_slist_free_all(h);
	return r;
}

/* "HTTP 400 MANIFEST_INVALID: manifest invalid" from the registry's
 * {"errors":[{"code","message","detail"}]} body (the first error). */
static int http_fail(struct reg *g, const struct req *q, const struct resp *rs,
		     struct azl_err *err)
{
	json_t *j = json_loads(azl_buf_str(&rs->body), 0, NULL);
	json_t *e = json_array_get(json_object_get(j, "errors"), 0);
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *hint = "";
	int r;

	if (rs->status == 401)
		hint = g->o->user ? " (authentication failed; check --user and --password-file)"
				  : " (authentication required; give --user and --password-file)";
	else if (rs->status == 403)
		hint = " (access denied)";
	r = azl_errf(err, rs->status == 401 || rs->status == 403 ? -EACCES : -EIO,
		     "%s %s: HTTP %ld%s%s%s%s%s", q->method, q->url, rs->status,
		     code ? " " : "", code ? code : "", msg ? ": " : "", msg ? msg : "", hint);
	json_decref(j);
	return r;
}

/* ---- auth ---- */

static char *challenge_value(const char **p)
{
	struct azl_buf v = AZL_BUF_INIT;
	const char *s = *p;

	if (*s == '"') {
		for (s++; *s && *s != '"'; s++) {
			if (*s == '\\' && s[1])
				s++;
			azl_buf_addc(&v, *s);
		}
		if (*s == '"')
			s++;
	} else {
		for (; *s && *s != ',' && *s != ' '; s++)
			azl_buf_addc(&v, *s);
	}
	*p = s;
	return azl_buf_detach(&v);
}

int azl_registry_parse_challenge(const char *h, char **scheme, char **realm,
				 char **service, char **scope)
{
	size_t n;

	*scheme = *realm = *service = *scope = NULL;
	h += strspn(h, " \t");
	n = strcspn(h, " \t,");
	if (n == 0)
		return -EINVAL;
	*scheme = strndup(h, n);
	for (char *c = *scheme; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	for (h += n; *h;) {
		char **dst = NULL;
		h += strspn(h, " \t,");
		n = strcspn(h, "= \t,");
		if (n == 0 || h[n] != '=')
			break;
		dst = !strncasecmp(h, "realm", n) && n == 5 ? realm :
		      !strncasecmp(h, "service", n) && n == 7 ? service :
		      !strncasecmp(h, "scope", n) && n == 5 ? scope : NULL;
		h += n + 1;
		char *v = challenge_value(&h);
		if (dst && !*dst)
			*dst = v;
		else
			free(v);
	}
	return 0;
}

/* GET realm?scope=repository:REPO:pull,push&service=S, with Basic
 * credentials when given; {"token"} or {"access_token"} -> g->bearer. */
static int fetch_token(struct reg *g, struct azl_err *err)
{
	char *scope = azl_xasprintf("repository:%s:pull,push", g->ref->repo);
	char *esc_scope = curl_easy_escape(g->c, scope, 0);
	char *esc_svc = g->service ? curl_easy_escape(g->c, g->service, 0) : NULL;
	char *url = azl_xasprintf("%s%cscope=%s%s%s", g->realm, strchr(g->realm, '?') ? '&' : '?',
				  esc_scope, esc_svc ? "&service=" : "", esc_svc ? esc_svc : "");
	struct req q = { .method = "GET", .url = url, .accept = "application/json" };
	struct resp rs = { 0 };
	json_t *j = NULL;
	const char *tok;
	int r;

	free(g->bearer);
	g->bearer = NULL;
	g->basic = g->o->user != NULL; /* for the token endpoint only */
	r = send_req(g, &q, &rs, err);
	g->basic = 0;
	if (r == 0 && rs.status != 200)
		r = http_fail(g, &q, &rs, err);
	if (r < 0)
		goto out;
	j = json_loads(azl_buf_str(&rs.body), 0, NULL);
	tok = json_string_value(json_object_get(j, "token"));
	tok = tok ? tok : json_string_value(json_object_get(j, "access_token"));
	if (!tok || !*tok)
		r = azl_errf(err, -EPROTO, "GET %s: the answer holds no token", url);
	else
		g->bearer = azl_xstrdup(tok);
out:
	json_decref(j);
	resp_release(&rs);
	curl_free(esc_scope);
	curl_free(esc_svc);
	free(scope);
	free(url);
	return r;
}

/* React to a 401 challenge: set up Basic or fetch a Bearer token.  A
 * challenge we cannot answer fails with the 401 itself. */
static int answer_challenge(struct reg *g, const struct req *q,
			    const struct resp *rs, struct azl_err *err)
{
	char *scheme = NULL, *realm = NULL, *service = NULL, *scope = NULL;
	int r;

	if (rs->www_auth)
		azl_registry_parse_challenge(rs->www_auth, &scheme, &realm, &service, &scope);
	if (scheme && !strcmp(scheme, "basic") && g->o->user && !g->basic) {
		g->basic = 1;
		r = 0;
	} else if (scheme && !strcmp(scheme, "bearer") && realm) {
		free(g->realm);
		free(g->service);
		g->realm = realm;
		g->service = service;
		realm = service = NULL;
		r = fetch_token(g, err);
	} else {
		r = http_fail(g, q, rs, err);
	}
	free(scheme);
	free(realm);
	free(service);
	free(scope);
	return r;
}

/* Worth sending again: a server error, a timeout or throttling status, or
 * a refused, reset or cut connection. */
static int retryable(int r, const struct resp *rs)
{
	return r < 0 ? rs->transient : azl_fetch_http_retryable(rs->status);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A request that may be replayed (no archive body): on 401 answer the
 * challenge once and send it again; a retryable failure is sent again
 * after fetch's backoff, up to g->retry.retries times. */
static int call(struct reg *g, const struct req *q, struct resp *rs,
		struct azl_err *err)
{
	struct body orig = q->body ? *q->body : (struct body){ 0 }, cur;
	struct req qq = *q;
	int replayable = !q->body || q->body->mem;
	int r, challenged = 0;

	for (int attempt = 0, sent = 0;; attempt++, sent++) {
		if (sent && q->body) {
			cur = orig; /* the body from its start again */
			qq.body = &cur;
		}
		r = send_req(g, &qq, rs, err);
		if (!replayable)
			return r;
		if (r == 0 && rs->status == 401 && !challenged) {
			challenged = 1;
			if ((r = answer_challenge(g, q, rs, err)) < 0)
				return r;
			attempt--; /* an answered challenge is no failed attempt */
			continue;
		}
		if (!retryable(r, rs) || attempt >= g->retry.retries)
			return r;
		g->res->retries++;
		sleep_ms(azl_fetch_backoff_ms(&g->retry, attempt + 1));
	}
}

/* GET /v2/ settles the auth scheme before any upload. */
static int ping(struct reg *g, struct azl_err *err)
{
	char *url = azl_xasprintf("%s/v2/", g->base);
	struct req q = { .method = "GET", .url = url };
	struct resp rs = { 0 };
	int r = call(g, &q, &rs, err);

	if (r == 0 && rs.status != 200)
		r = http_fail(g, &q, &rs, err);
	resp_release(&rs);
	free(url);
	return r;
}

/* ---- blobs and manifests ---- */

static char *repo_url(struct reg *g, const char *kind, const char *what)
{
	return azl_xasprintf("%s/v2/%s/%s/%s", g->base, g->ref->repo, kind, what);
}

static int blob_exists(struct reg *g, const char *digest, int *exists,
		       struct azl_err *err)
{
	char *url = repo_url(g, "blobs", digest);
	struct req q = { .method = "HEAD", .url = url };
	struct resp rs = { 0 };
	int r = call(g, &q, &rs, err);

	/* A redirect means the blob is there, in the registry's storage. */
	*exists = rs.status == 200 || (rs.status >= 301 && rs.status <= 308);
	if (r == 0 && !*exists && rs.status != 404)
		r = http_fail(g, &q, &rs, err);
	resp_release(&rs);
	free(url);
	return r;
}

/* The next upload URL from a Location header (absolute or a path). */
static int next_location(struct reg *g, const struct req *q, struct resp *rs,
			 char **loc, struct azl_err *err)
{
	const char *l = rs->location;

	if (!l || !*l)
		return azl_errf(err, -EPROTO, "%s %s: HTTP %ld without a Location",
				q->method, q->url, rs->status);
	free(*loc);
	*loc = !strncmp(l, "http://", 7) || !strncmp(l, "https://", 8)
		? azl_xstrdup(l) : azl_xasprintf("%s%s%s", g->base, l[0] == '/' ? "" : "/", l);
	return 0;
}

static int upload_start(struct reg *g, char **loc, struct azl_err *err)
{
	char *url = repo_url(g, "blobs", "uploads/");
	struct req q = { .method = "POST", .url = url };
	struct resp rs = { 0 };
	int r = call(g, &q, &rs, err);

	if (r == 0 && rs.status != 202)
		r = http_fail(g, &q, &rs, err);
	if (r == 0)
		r = next_location(g, &q, &rs, loc, err);
	resp_release(&rs);
	free(url);
	return r;
}

/* PATCH chunk_size pieces of body, each with its Content-Range. */
static int upload_chunks(struct reg *g, char **loc, struct body *b,
			 uint64_t size, uint64_t chunk, struct azl_err *err)
{
	struct resp rs = { 0 };
	int r = 0;

	for (uint64_t off = 0; r == 0 && off < size; off += chunk) {
		uint64_t n = size - off < chunk ? size - off : chunk;
		char range[48];
		struct req q = { .method = "PATCH", .url = *loc, .range = range,
				 .ctype = "application/octet-stream", .body = b };
		snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)off,
			 (unsigned long long)(off + n - 1));
		b->left = n;
		r = send_req(g, &q, &rs, err);
		if (r == 0 && rs.status != 202)
			r = http_fail(g, &q, &rs, err);
		if (r == 0)
			r = next_location(g, &q, &rs, loc, err);
		g->res->chunks++;
	}
	resp_release(&rs);
	return r;
}

/* PUT LOCATION?digest=D with the rest of the blob (or nothing). */
static int upload_finish(struct reg *g, const char *loc, const char *digest,
			 struct body *b, struct azl_err *err)
{
	char *url = azl_xasprintf("%s%cdigest=sha256%%3A%s", loc,
				  strchr(loc, '?') ? '&' : '?', digest + 7);
	struct req q = { .method = "PUT", .url = url, .body = b,
			 .ctype = "application/octet-stream" };
	struct resp rs = { 0 };
	int r = send_req(g, &q, &rs, err);

	if (r == 0 && rs.status != 201)
		r = http_fail(g, &q, &rs, err);
	if (r == 0 && rs.digest && strcmp(rs.digest, digest))
		r = azl_errf(err, -EPROTO, "PUT %s: the registry stored %s", url, rs.digest);
	resp_release(&rs);
	free(url);
	return r;
}

/* b->left bytes are the whole blob. */
static int upload_blob(struct reg *g, const char *digest, struct body *b,
		       struct azl_err *err)
{
	uint64_t size = b->left;
	uint64_t chunk = g->o->chunk_size ? g->o->chunk_size : DEFAULT_CHUNK;
	unsigned before = g->res->chunks;
	char *loc = NULL;
	int r = upload_start(g, &loc, err);

	if (r == 0 && size > chunk) {
		r = upload_chunks(g, &loc, b, size, chunk, err);
		if (r == 0)
			r = upload_finish(g, loc, digest, NULL, err);
	} else if (r == 0) {
		r = upload_finish(g, loc, digest, b, err);
	}
	if (r == 0) {
		g->res->uploaded++;
		if (g->res->chunks > before)
			note(g, "uploaded %s (%llu bytes in %u chunks)", digest,
			      (unsigned long long)size, g->res->chunks - before);
		else
			note(g, "uploaded %s (%llu bytes)", digest, (unsigned long long)size);
	}
	free(loc);
	return r;
}

static int upload_mem(struct reg *g, const char *data, size_t len,
		      const char *digest, struct azl_err *err)
{
	struct body b = { .mem = data, .left = len };
	int exists = 0;
	int r = blob_exists(g, digest, &exists, err);

	if (r < 0)
		return r;
	if (exists) {
		g->res->existing++;
		note(g, "exists %s", digest);
		return 0;
	}
	return upload_blob(g, digest, &b, err);
}

/* HEAD every blob first: only the missing ones are read from the archive. */
static int check_blobs(struct reg *g, struct need *nd, size_t n,
		       struct azl_err *err)
{
	for (size_t i = 0; i < n; i++) {
		int exists = 0, r = blob_exists(g, nd[i].digest, &exists, err);
		if (r < 0)
			return r;
		nd[i].upload = !exists;
		if (exists) {
			g->res->existing++;
			note(g, "exists %s", nd[i].digest);
		}
	}
	return 0;
}

static struct need *find_need(struct need *nd, size_t n, const char *name)
{
	if (strncmp(name, "blobs/sha256/", 13))
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (nd[i].upload && !nd[i].done && !strcmp(nd[i].digest + 7, name + 13))
			return &nd[i];
	return NULL;
}

/* One pass over the archive, each missing blob streamed as it comes. */
static int upload_archive(struct reg *g, const char *path, struct need *nd,
			  size_t n, struct azl_err *err)
{
	struct archive *a = tar_open(path, err);
	struct archive_entry *e;
	int rc, r = 0;

	if (!a)
		return -EINVAL;
	while (r == 0 && (rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		struct need *x = find_need(nd, n, entry_name(e));
		struct body b = { .a = a };
		if (!x)
			continue;
		if (archive_entry_size(e) != (int64_t)x->size) {
			r = azl_err_input(err, "%s: %s has %lld bytes, the manifest says %llu",
					  path, entry_name(e), (long long)archive_entry_size(e),
					  (unsigned long long)x->size);
			break;
		}
		b.left = x->size;
		r = upload_blob(g, x->digest, &b, err);
		x->done = 1;
	}
	if (r == 0 && rc != ARCHIVE_EOF)
		r = azl_err_input(err, "%s: %s", path, tar_error(a));
	for (size_t i = 0; r == 0 && i < n; i++)
		if (nd[i].upload && !nd[i].done)
			r = azl_err_input(err, "%s: blob %s named by the manifest is not in the archive",
					  path, nd[i].digest);
	archive_read_free(a);
	return r;
}

static int put_manifest(struct reg *g, const char *tag, const char *m,
			const char *digest, struct azl_err *err)
{
	char *url = repo_url(g, "manifests", tag);
	struct body b = { .mem = m, .left = strlen(m) };
	struct req q = { .method = "PUT", .url = url, .ctype = MT_MANIFEST, .body = &b };
	struct resp rs = { 0 };
	int r = call(g, &q, &rs, err);

	if (r == 0 && (rs.status < 200 || rs.status > 299))
		r = http_fail(g, &q, &rs, err);
	if (r == 0 && rs.digest && strcmp(rs.digest, digest))
		r = azl_errf(err, -EPROTO, "PUT %s: the registry stored %s, expected %s",
			     url, rs.digest, digest);
	resp_release(&rs);
	free(url);
	return r;
}

/* *out: the manifest tagged `tag`, or NULL when the registry has none. */
static int get_manifest(struct reg *g, const char *tag, char **out,
			struct azl_err *err)
{
	char *url = repo_url(g, "manifests", tag);
	struct req q = { .method = "GET", .url = url, .accept = MT_MANIFEST };
	struct resp rs = { 0 };
	int r = call(g, &q, &rs, err);

	*out = NULL;
	if (r == 0 && rs.status == 200)
		*out = azl_buf_detach(&rs.body);
	else if (r == 0 && rs.status != 404)
		r = http_fail(g, &q, &rs, err);
	resp_release(&rs);
	free(url);
	return r;
}

/* ---- push ---- */

static size_t layer_count(const char *manifest)
{
	json_t *j = json_loads(manifest, 0, NULL);
	size_t n = json_array_size(json_object_get(j, "layers"));

	json_decref(j);
	return n;
}

static int push_signature(struct reg *g, const char *digest,
			  const struct azl_cosign_sig *s, struct azl_err *err)
{
	char tag[80], hex[65], pdigest[72], cdigest[72];
	char *existing = NULL, *config = NULL, *manifest = NULL;
	int r = azl_cosign_sig_tag(digest, tag);

	if (r < 0)
		return azl_errf(err, r, "manifest digest '%s' is not sha256", digest);
	azl_sha256_hex(s->payload, s->payload_len, hex);
	snprintf(pdigest, sizeof(pdigest), "sha256:%s", hex);
	if ((r = get_manifest(g, tag, &existing, err)) < 0)
		goto out;
	r = azl_cosign_manifest(pdigest, s->payload_len, s->sig_b64, existing,
				&config, &manifest, err);
	if (r < 0)
		goto out;
	azl_sha256_hex(config, strlen(config), hex);
	snprintf(cdigest, sizeof(cdigest), "sha256:%s", hex);
	if ((r = upload_mem(g, s->payload, s->payload_len, pdigest, err)) < 0 ||
	    (r = upload_mem(g, config, strlen(config), cdigest, err)) < 0)
		goto out;
	azl_sha256_hex(manifest, strlen(manifest), hex);
	snprintf(cdigest, sizeof(cdigest), "sha256:%s", hex);
	if ((r = put_manifest(g, tag, manifest, cdigest, err)) < 0)
		goto out;
	snprintf(g->res->sig_tag, sizeof(g->res->sig_tag), "%s", tag);
	note(g, "signature %s/%s:%s (%zu signature%s)", g->ref->host, g->ref->repo, tag,
	      layer_count(manifest), layer_count(manifest) == 1 ? "" : "s");
out:
	free(existing);
	free(config);
	free(manifest);
	return r;
}

static int reg_open(struct reg *g, const struct azl_image_ref *ref,
		    const struct azl_push_opts *o, struct azl_push_result *res,
		    struct azl_err *err)
{
	memset(g, 0, sizeof(*g));
	g->o = o;
	g->ref = ref;
	g->res = res;
	azl_fetch_opts_init(&g->retry);
	int crc = azl_fetch_global_init();
	if (crc != CURLE_OK)
		return azl_errf(err, -EIO, "curl: %s", curl_easy_strerror((CURLcode)crc));
	if (!(g->c = curl_easy_init()))
		return azl_errf(err, -ENOMEM, "curl: cannot create a handle");
	g->base = azl_xasprintf("%s://%s", o->insecure ? "http" : "https", ref->host);
	return 0;
}

static void reg_close(struct reg *g)
{
	if (g->c)
		curl_easy_cleanup(g->c);
	if (g->bearer)
		memset(g->bearer, 0, strlen(g->bearer));
	free(g->bearer);
	free(g->realm);
	free(g->service);
	free(g->base);
}

int azl_registry_push(const char *path, const struct azl_image_ref *ref,
		      const struct azl_push_opts *o, struct azl_push_result *res,
		      struct azl_err *err)
{
	struct azl_push_result dummy;
	struct reg g = { 0 };
	struct need *nd = NULL;
	char digest[72], *manifest = NULL;
	size_t n = 0, mlen;
	int r;

	res = res ? res : &dummy;
	memset(res, 0, sizeof(*res));
	if ((r = azl_oci_tar_manifest(path, digest, &manifest, &mlen, err)) < 0 ||
	    (r = manifest_blobs(path, manifest, &nd, &n, err)) < 0 ||
	    (r = reg_open(&g, ref, o, res, err)) < 0)
		goto out;
	if ((r = ping(&g, err)) < 0 ||
	    (r = check_blobs(&g, nd, n, err)) < 0 ||
	    (r = upload_archive(&g, path, nd, n, err)) < 0 ||
	    (r = put_manifest(&g, ref->tag, manifest, digest, err)) < 0)
		goto out;
	snprintf(res->manifest_digest, sizeof(res->manifest_digest), "%s", digest);
	note(&g, "manifest %s/%s:%s %s", ref->host, ref->repo, ref->tag, digest);
	if (o->sig)
		r = push_signature(&g, digest, o->sig, err);
out:
	reg_close(&g);
	free(nd);
	free(manifest);
	return r;
}
