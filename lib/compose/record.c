#include "compose/record.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"

int azl_output_files_hash(const char *dir, struct azl_output_file *files,
			  size_t n, struct azl_err *err)
{
	for (size_t i = 0; i < n; i++) {
		char *p = azl_path_join(dir, files[i].name);
		int r = azl_sha256_file(p, files[i].sha256, &files[i].size, err);
		free(p);
		if (r < 0)
			return r;
	}
	return 0;
}

static int by_name(const void *a, const void *b)
{
	const struct azl_output_file *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

static const struct azl_output_file **sorted(const struct azl_output_file *f, size_t n)
{
	const struct azl_output_file **v = azl_xcalloc(n, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = &f[i];
	qsort(v, n, sizeof(*v), by_name);
	return v;
}

int azl_sha256sums_write(const char *dir, const struct azl_output_file *files,
			 size_t n, struct azl_err *err)
{
	struct azl_buf b = AZL_BUF_INIT;
	const struct azl_output_file **v = sorted(files, n);
	char *path = azl_path_join(dir, "SHA256SUMS");
	int r;

	for (size_t i = 0; i < n; i++)
		azl_buf_addf(&b, "%s  %s\n", v[i]->sha256, v[i]->name);
	r = azl_write_file_atomic(path, azl_buf_str(&b), b.len, 0644, err);
	free(v);
	free(path);
	azl_buf_release(&b);
	return r;
}

char *azl_build_record_json(const struct azl_build_record *r)
{
	json_t *root = json_object(), *outs = json_object(), *skipped = json_array();
	const struct azl_output_file **v = sorted(r->outputs, r->noutputs);
	char *text, *out;

	for (size_t i = 0; i < r->noutputs; i++)
		json_object_set_new(outs, v[i]->name,
				    json_pack("{s:s, s:I}", "sha256", v[i]->sha256,
					      "size", (json_int_t)v[i]->size));
	for (size_t i = 0; i < r->nskipped; i++)
		json_array_append_new(skipped, json_string(r->skipped_scriptlets[i]));
	json_object_set_new(root, "version", json_integer(1));
	json_object_set_new(root, "name", json_string(r->name));
	json_object_set_new(root, "tool", json_pack("{s:s, s:s}", "name", "azl-compose",
						    "version", r->tool_version));
	json_object_set_new(root, "manifest", json_pack("{s:s, s:s}", "sha256", r->manifest_sha256,
							"text", r->manifest_text));
	json_object_set_new(root, "lockfile", json_pack("{s:s, s:s}", "sha256", r->lock_sha256,
							"text", r->lock_text));
	json_object_set_new(root, "source_date_epoch", json_integer(r->source_date_epoch));
	json_object_set_new(root, "source_date_epoch_from", json_string(r->sde_origin));
	json_object_set_new(root, "seed", json_string(r->seed_hex));
	json_object_set_new(root, "skipped_scriptlets", skipped);
	json_object_set_new(root, "outputs", outs);
	text = json_dumps(root, JSON_SORT_KEYS | JSON_INDENT(2) | JSON_ENSURE_ASCII);
	out = azl_xasprintf("%s\n", text);
	free(text);
	free(v);
	json_decref(root);
	return out;
}

int azl_build_record_write(const char *path, const struct azl_build_record *r,
			   struct azl_err *err)
{
	char *text = azl_build_record_json(r);
	int rc = azl_write_file_atomic(path, text, strlen(text), 0644, err);
	free(text);
	return rc;
}
