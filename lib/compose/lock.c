/* The lockfile: canonical JSON through jansson (see lock.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "compose/lock.h"

#define LOCK_VERSION 1
#define LOCK_MAX_SIZE (256u << 20)

/* ---- reading ---- */

/* Context for field errors: "FILE: packages[3].checksum: ..." */
struct rd {
	const char *path;
	struct azl_err *err;
};

static int bad(struct rd *r, const char *where, size_t i, const char *field,
	       const char *what)
{
	if (i == (size_t)-1)
		return azl_err_input(r->err, "%s: %s: %s", r->path, field, what);
	if (!*field)
		return azl_err_input(r->err, "%s: %s[%zu]: %s", r->path, where, i, what);
	return azl_err_input(r->err, "%s: %s[%zu].%s: %s", r->path, where, i,
			     field, what);
}

static int get_str(struct rd *r, json_t *obj, const char *where, size_t i,
		   const char *field, char **out)
{
	json_t *v = json_object_get(obj, field);
	if (!v)
		return bad(r, where, i, field, "missing");
	if (!json_is_string(v) || !json_string_length(v))
		return bad(r, where, i, field, "expected a non-empty string");
	if (strlen(json_string_value(v)) != json_string_length(v))
		return bad(r, where, i, field, "contains a NUL byte");
	*out = azl_xstrdup(json_string_value(v));
	return 0;
}

static int get_uint(struct rd *r, json_t *obj, const char *where, size_t i,
		    const char *field, uint64_t max, uint64_t *out)
{
	json_t *v = json_object_get(obj, field);
	if (!v)
		return bad(r, where, i, field, "missing");
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		return bad(r, where, i, field, "expected a non-negative integer");
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* Unknown keys are refused so a typo never silently drops a pin. */
static int check_keys(struct rd *r, json_t *obj, const char *where, size_t i,
		      const char *const *known)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		size_t k;
		for (k = 0; known[k] && strcmp(known[k], key); k++)
			;
		if (!known[k])
			return bad(r, where, i, key, "unknown key");
	}
	return 0;
}

static int read_repo(struct rd *r, json_t *obj, size_t i, struct azl_lock_repo *repo)
{
	static const char *const keys[] = { "id", "baseurl", "repomd_sha256", NULL };
	char *hex = NULL;
	int rc;

	if (!json_is_object(obj))
		return bad(r, "repos", i, "", "expected an object");
	if ((rc = check_keys(r, obj, "repos", i, keys)) ||
	    (rc = get_str(r, obj, "repos", i, "id", &repo->id)) ||
	    (rc = get_str(r, obj, "repos", i, "baseurl", &repo->baseurl)) ||
	    (rc = get_str(r, obj, "repos", i, "repomd_sha256", &hex)))
		goto out;
	if (!azl_is_sha256_hex(hex)) {
		rc = bad(r, "repos", i, "repomd_sha256", "expected 64 lowercase hex digits");
		goto out;
	}
	memcpy(repo->repomd_sha256, hex, 65);
out:
	free(hex);
	return rc;
}

static int read_pkg_numbers(struct rd *r, json_t *obj, size_t i,
			    struct azl_lock_pkg *p)
{
	uint64_t epoch = 0;
	int rc;

	if ((rc = get_uint(r, obj, "packages", i, "epoch", UINT32_MAX, &epoch)) ||
	    (rc = get_uint(r, obj, "packages", i, "size", INT64_MAX, &p->size)))
		return rc;
	p->epoch = (uint32_t)epoch;
	return 0;
}

static int read_pkg(struct rd *r, json_t *obj, size_t i, struct azl_lock_pkg *p)
{
	static const char *const keys[] = { "name", "epoch", "version", "release",
		"arch", "repo", "location", "checksum", "size", NULL };
	char *sum = NULL;
	int rc;

	if (!json_is_object(obj))
		return bad(r, "packages", i, "", "expected an object");
	if ((rc = check_keys(r, obj, "packages", i, keys)) ||
	    (rc = get_str(r, obj, "packages", i, "name", &p->name)) ||
	    (rc = get_str(r, obj, "packages", i, "version", &p->version)) ||
	    (rc = get_str(r, obj, "packages", i, "release", &p->release)) ||
	    (rc = get_str(r, obj, "packages", i, "arch", &p->arch)) ||
	    (rc = get_str(r, obj, "packages", i, "repo", &p->repo)) ||
	    (rc = get_str(r, obj, "packages", i, "location", &p->location)) ||
	    (rc = get_str(r, obj, "packages", i, "checksum", &sum)) ||
	    (rc = read_pkg_numbers(r, obj, i, p)))
		goto out;
	if (strncmp(sum, "sha256:", 7) || !azl_is_sha256_hex(sum + 7)) {
		rc = bad(r, "packages", i, "checksum",
			 "expected \"sha256:\" and 64 lowercase hex digits");
		goto out;
	}
	memcpy(p->sha256, sum + 7, 65);
out:
	free(sum);
	return rc;
}

static int read_array(struct rd *r, json_t *root, const char *field, json_t **out)
{
	*out = json_object_get(root, field);
	if (!*out)
		return bad(r, NULL, (size_t)-1, field, "missing");
	if (!json_is_array(*out))
		return bad(r, NULL, (size_t)-1, field, "expected an array");
	return 0;
}

static int read_root(struct rd *r, json_t *root, struct azl_lock *lock)
{
	static const char *const keys[] = { "version", "repos", "packages", NULL };
	json_t *repos, *pkgs, *ver;
	int rc;

	if (!json_is_object(root))
		return azl_err_input(r->err, "%s: expected a JSON object", r->path);
	if ((rc = check_keys(r, root, NULL, (size_t)-1, keys)))
		return rc;
	ver = json_object_get(root, "version");
	if (!ver)
		return bad(r, NULL, (size_t)-1, "version", "missing");
	if (!json_is_integer(ver) || json_integer_value(ver) != LOCK_VERSION)
		return bad(r, NULL, (size_t)-1, "version", "unsupported (expected 1)");
	if ((rc = read_array(r, root, "repos", &repos)) ||
	    (rc = read_array(r, root, "packages", &pkgs)))
		return rc;
	lock->nrepos = json_array_size(repos);
	lock->repos = azl_xcalloc(lock->nrepos + 1, sizeof(*lock->repos));
	for (size_t i = 0; i < lock->nrepos; i++)
		if ((rc = read_repo(r, json_array_get(repos, i), i, &lock->repos[i])))
			return rc;
	lock->npkgs = json_array_size(pkgs);
	lock->pkgs = azl_xcalloc(lock->npkgs + 1, sizeof(*lock->pkgs));
	for (size_t i = 0; i < lock->npkgs; i++)
		if ((rc = read_pkg(r, json_array_get(pkgs, i), i, &lock->pkgs[i])))
			return rc;
	return 0;
}

/* Cross-references: unique repo ids, every package naming a known repo. */
static int check_refs(struct rd *r, const struct azl_lock *lock)
{
	for (size_t i = 0; i < lock->nrepos; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(lock->repos[i].id, lock->repos[j].id))
				return bad(r, "repos", i, "id", "duplicate repo id");
	for (size_t i = 0; i < lock->npkgs; i++)
		if (!azl_lock_find_repo(lock, lock->pkgs[i].repo))
			return bad(r, "packages", i, "repo", "names no entry of \"repos\"");
	return 0;
}

int azl_lock_read(const char *path, struct azl_lock **out, struct azl_err *err)
{
	struct azl_lock *lock = azl_xcalloc(1, sizeof(*lock));
	struct rd r = { path, err };
	json_error_t jerr;
	json_t *root = NULL;
	char *text = NULL;
	size_t len;
	int rc;

	*out = NULL;
	if ((rc = azl_read_file(path, LOCK_MAX_SIZE, &text, &len, err)))
		goto out;
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		rc = azl_err_input(err, "%s:%d:%d: invalid JSON: %s", path,
				   jerr.line, jerr.column, jerr.text);
		goto out;
	}
	if ((rc = read_root(&r, root, lock)) || (rc = check_refs(&r, lock)))
		goto out;
	*out = lock;
	lock = NULL;
out:
	azl_lock_free(lock);
	json_decref(root);
	free(text);
	return rc;
}

/* ---- writing ---- */

static int pkg_cmp(const void *a, const void *b)
{
	const struct azl_lock_pkg *x = a, *y = b;
	int c;

	if ((c = strcmp(x->name, y->name)) || (c = strcmp(x->arch, y->arch)))
		return c;
	/* Same name and arch twice only for parallel installs; any fixed
	 * order keeps the bytes stable. */
	if (x->epoch != y->epoch)
		return x->epoch < y->epoch ? -1 : 1;
	if ((c = strcmp(x->version, y->version)) || (c = strcmp(x->release, y->release)))
		return c;
	return strcmp(x->repo, y->repo);
}

static int repo_cmp(const void *a, const void *b)
{
	return strcmp(((const struct azl_lock_repo *)a)->id,
		      ((const struct azl_lock_repo *)b)->id);
}

void azl_lock_sort(struct azl_lock *lock)
{
	if (lock->npkgs)
		qsort(lock->pkgs, lock->npkgs, sizeof(*lock->pkgs), pkg_cmp);
	if (lock->nrepos)
		qsort(lock->repos, lock->nrepos, sizeof(*lock->repos), repo_cmp);
}

static json_t *repo_json(const struct azl_lock_repo *r)
{
	return json_pack("{s:s, s:s, s:s}", "id", r->id, "baseurl", r->baseurl,
			 "repomd_sha256", r->repomd_sha256);
}

static json_t *pkg_json(const struct azl_lock_pkg *p)
{
	char sum[8 + 65];

	snprintf(sum, sizeof(sum), "sha256:%s", p->sha256);
	return json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:I}",
			 "name", p->name, "epoch", (json_int_t)p->epoch,
			 "version", p->version, "release", p->release,
			 "arch", p->arch, "repo", p->repo,
			 "location", p->location, "checksum", sum,
			 "size", (json_int_t)p->size);
}

char *azl_lock_to_json(struct azl_lock *lock)
{
	json_t *root, *repos = json_array(), *pkgs = json_array();
	struct azl_buf b = AZL_BUF_INIT;
	char *text;

	azl_lock_sort(lock);
	for (size_t i = 0; i < lock->nrepos; i++)
		json_array_append_new(repos, repo_json(&lock->repos[i]));
	for (size_t i = 0; i < lock->npkgs; i++)
		json_array_append_new(pkgs, pkg_json(&lock->pkgs[i]));
	root = json_pack("{s:i, s:o, s:o}", "version", LOCK_VERSION,
			 "repos", repos, "packages", pkgs);
	text = json_dumps(root, JSON_SORT_KEYS | JSON_INDENT(2));
	if (!text)
		abort(); /* only on OOM, as everywhere else (buf.h) */
	azl_buf_adds(&b, text);
	azl_buf_addc(&b, '\n');
	free(text);
	json_decref(root);
	return azl_buf_detach(&b);
}

int azl_lock_write(const char *path, struct azl_lock *lock, struct azl_err *err)
{
	char *text = azl_lock_to_json(lock);
	int rc = azl_write_file_atomic(path, text, strlen(text), 0644, err);

	free(text);
	return rc;
}

/* ---- helpers ---- */

void azl_lock_free(struct azl_lock *lock)
{
	if (!lock)
		return;
	for (size_t i = 0; i < lock->nrepos; i++) {
		free(lock->repos[i].id);
		free(lock->repos[i].baseurl);
	}
	for (size_t i = 0; i < lock->npkgs; i++) {
		struct azl_lock_pkg *p = &lock->pkgs[i];
		free(p->name);
		free(p->version);
		free(p->release);
		free(p->arch);
		free(p->repo);
		free(p->location);
	}
	free(lock->repos);
	free(lock->pkgs);
	free(lock);
}

char *azl_lock_pkg_nevra(const struct azl_lock_pkg *p)
{
	if (p->epoch)
		return azl_xasprintf("%s-%" PRIu32 ":%s-%s.%s", p->name, p->epoch,
				     p->version, p->release, p->arch);
	return azl_xasprintf("%s-%s-%s.%s", p->name, p->version, p->release, p->arch);
}

const struct azl_lock_repo *azl_lock_find_repo(const struct azl_lock *lock,
					       const char *id)
{
	for (size_t i = 0; i < lock->nrepos; i++)
		if (!strcmp(lock->repos[i].id, id))
			return &lock->repos[i];
	return NULL;
}
