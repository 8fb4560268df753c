/* SHA256SUMS and the build record. */
#include <stdlib.h>
#include <unistd.h>

#include "base/fs.h"
#include "compose/record.h"
#include "t.h"

int main(void)
{
	char dir[] = "/tmp/azl-record-XXXXXX";
	struct azl_err err = { 0 };
	CHECK(mkdtemp(dir) != NULL);
	char *a = azl_path_join(dir, "b.oci.tar"), *b = azl_path_join(dir, "a.vhd");
	CHECK(azl_write_file_atomic(a, "hello", 5, 0644, &err) == 0);
	CHECK(azl_write_file_atomic(b, "", 0, 0644, &err) == 0);

	struct azl_output_file f[] = { { .name = "b.oci.tar" }, { .name = "a.vhd" } };
	CHECK(azl_output_files_hash(dir, f, 2, &err) == 0);
	CHECK_STR(f[0].sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
	CHECK(f[0].size == 5);
	CHECK(azl_sha256sums_write(dir, f, 2, &err) == 0);

	/* sha256sum itself checks what we wrote. */
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "cd %s && sha256sum --quiet -c SHA256SUMS", dir);
	CHECK(system(cmd) == 0);
	char *sums = azl_path_join(dir, "SHA256SUMS"), *text = NULL;
	CHECK(azl_read_file(sums, 0, &text, NULL, &err) == 0);
	CHECK(text && strncmp(text, "e3b0c442", 8) == 0); /* a.vhd sorts first */

	struct azl_build_record r = {
		.name = "demo", .tool_version = "0.1.0", .manifest_text = "name: demo\n",
		.manifest_sha256 = "aa", .lock_text = "{}\n", .lock_sha256 = "bb",
		.source_date_epoch = 1700000000, .sde_origin = "manifest", .seed_hex = "cc",
		.outputs = f, .noutputs = 2,
	};
	char *j1 = azl_build_record_json(&r), *j2 = azl_build_record_json(&r);
	CHECK_STR(j1, j2);
	CHECK_CONTAINS(j1, "\"source_date_epoch\": 1700000000");
	CHECK_CONTAINS(j1, "\"text\": \"name: demo\\n\"");
	CHECK(strstr(j1, "\"a.vhd\"") < strstr(j1, "\"b.oci.tar\""));
	/* jq-free structural check with python's json module. */
	char *rec = azl_path_join(dir, "demo.build.json");
	CHECK(azl_build_record_write(rec, &r, &err) == 0);
	snprintf(cmd, sizeof(cmd),
		 "python3 -c 'import json,sys; d=json.load(open(\"%s\")); sys.exit(0 if d[\"outputs\"][\"b.oci.tar\"][\"size\"]==5 and d[\"seed\"]==\"cc\" else 1)'",
		 rec);
	CHECK(system(cmd) == 0);

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	free(a); free(b); free(sums); free(text); free(j1); free(j2); free(rec);
	return t_done();
}
