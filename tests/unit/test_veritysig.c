/* verity root hash signatures: checked with `openssl cms -verify`, compared
 * byte for byte with `openssl smime -sign -noattr -binary` and with the
 * usr-verity-sig partition systemd-repart writes; the JSON fields. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "t.h"

#include "base/fs.h"
#include "base/hash.h"
#include "sign/veritysig.h"

static char dir[] = "/tmp/azl-veritysig-XXXXXX";

static char *path(const char *name) { return azl_path_join(dir, name); }

/* Output of a shell command run in dir, stderr included, "rc=N" last. */
static char *sh(const char *fmt, ...) AZL_PRINTF(1, 2);
static char *sh(const char *fmt, ...)
{
	struct azl_buf cmd = AZL_BUF_INIT;
	va_list ap;
	char *out;

	azl_buf_addf(&cmd, "cd %s && { ", dir);
	va_start(ap, fmt);
	azl_buf_vaddf(&cmd, fmt, ap);
	va_end(ap);
	azl_buf_adds(&cmd, "; } 2>&1; echo rc=$?");
	out = t_run(azl_buf_str(&cmd));
	azl_buf_release(&cmd);
	return out;
}

static void write_file(const char *name, const void *data, size_t len)
{
	struct azl_err err = {0};
	char *p = path(name);
	if (azl_write_file_atomic(p, data, len, 0644, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		exit(1);
	}
	free(p);
}

static void make_keys(void)
{
	free(sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 3650 -subj /CN=verity-test"));
	free(sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout key2.pem -out cert2.pem -days 3650 -subj /CN=other"));
	free(sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout eckey.pem -out eccert.pem -days 3650 -subj /CN=ec"));
}

static void load(const char *key, const char *cert, struct azl_pkcs7_signer *s)
{
	struct azl_err err = {0};
	char *k = path(key), *c = path(cert);
	if (azl_pkcs7_signer_load(k, c, NULL, s, &err) < 0) {
		fprintf(stderr, "signer: %s\n", err.msg);
		exit(1);
	}
	free(k);
	free(c);
}

#define CMS_VERIFY "openssl cms -verify -binary -inform der -in sig.p7s -content %s -certfile cert.pem -CAfile cert.pem -purpose any -out /dev/null"

static void test_rsa(const char *hex)
{
	struct azl_pkcs7_signer s;
	struct azl_buf der = AZL_BUF_INIT, der2 = AZL_BUF_INIT, json = AZL_BUF_INIT;
	struct azl_err err = {0};
	char *out, *ref = NULL;
	size_t ref_len = 0;

	load("key.pem", "cert.pem", &s);
	CHECK(azl_verity_sig(hex, &s, &der, &json, &err) == 0);
	CHECK(der.len > 0);
	write_file("sig.p7s", der.data, der.len);
	write_file("roothash.txt", hex, strlen(hex));

	out = sh(CMS_VERIFY, "roothash.txt");
	CHECK_CONTAINS(out, "Verification successful");
	CHECK_CONTAINS(out, "rc=0");
	free(out);

	/* a different root hash (last digit changed) does not verify */
	{
		char other[65];
		memcpy(other, hex, 65);
		other[63] = other[63] == '0' ? '1' : '0';
		write_file("other.txt", other, 64);
	}
	out = sh(CMS_VERIFY, "other.txt");
	CHECK(!strstr(out, "rc=0"));
	free(out);
	/* neither does the same hash with a newline (the kernel signs the bare string) */
	out = sh("cp roothash.txt nl.txt && echo >> nl.txt && " CMS_VERIFY, "nl.txt");
	CHECK(!strstr(out, "rc=0"));
	free(out);
	/* nor against another certificate */
	out = sh("openssl cms -verify -binary -inform der -in sig.p7s -content %s -certfile cert2.pem -CAfile cert2.pem -purpose any -out /dev/null", "roothash.txt");
	CHECK(!strstr(out, "rc=0"));
	free(out);

	/* the same bytes as stock openssl's (RSA is deterministic and there
	 * are no attributes) */
	out = sh("openssl smime -sign -noattr -binary -md sha256 -in %s -inkey key.pem -signer cert.pem -outform der -out ref.p7s", "roothash.txt");
	CHECK_CONTAINS(out, "rc=0");
	free(out);
	{
		char *p = path("ref.p7s");
		CHECK(azl_read_file(p, 0, &ref, &ref_len, &err) == 0);
		free(p);
	}
	CHECK(ref && ref_len == der.len && !memcmp(ref, der.data, der.len));
	free(ref);

	/* the signer's certificate inside, once (as systemd-repart has it) */
	out = sh("openssl pkcs7 -inform der -in sig.p7s -print_certs | grep -c 'BEGIN CERTIFICATE'");
	CHECK_CONTAINS(out, "1\nrc=0");
	free(out);

	/* rebuilds: identical */
	CHECK(azl_verity_sig(hex, &s, &der2, NULL, &err) == 0);
	CHECK(der2.len == der.len && !memcmp(der2.data, der.data, der.len));

	/* the JSON document */
	{
		json_error_t je;
		json_t *j = json_loads(azl_buf_str(&json), 0, &je);
		char *fpr = sh("openssl x509 -in cert.pem -outform der | sha256sum | cut -d' ' -f1");
		char *b64 = sh("base64 -w0 sig.p7s");
		char *nl;
		CHECK(j != NULL);
		CHECK(json_object_size(j) == 3);
		CHECK_STR(json_string_value(json_object_get(j, "rootHash")), hex);
		if ((nl = strchr(fpr, '\n')))
			*nl = 0;
		CHECK(strlen(fpr) == 64);
		CHECK_STR(json_string_value(json_object_get(j, "certificateFingerprint")), fpr);
		if ((nl = strstr(b64, "rc=0")))
			*nl = 0;
		CHECK_STR(json_string_value(json_object_get(j, "signature")), b64);
		CHECK(azl_buf_str(&json)[0] == '{' && json.data[json.len - 1] == '}');
		json_decref(j);
		free(fpr);
		free(b64);
	}
	azl_buf_release(&der);
	azl_buf_release(&der2);
	azl_buf_release(&json);
	azl_pkcs7_signer_release(&s);
}

static void test_ec(const char *hex)
{
	struct azl_pkcs7_signer s;
	struct azl_buf der = AZL_BUF_INIT;
	struct azl_err err = {0};
	char *out;

	load("eckey.pem", "eccert.pem", &s);
	CHECK(azl_verity_sig(hex, &s, &der, NULL, &err) == 0);
	write_file("sig.p7s", der.data, der.len);
	write_file("roothash.txt", hex, strlen(hex));
	out = sh("openssl cms -verify -binary -inform der -in sig.p7s -content %s -certfile eccert.pem -CAfile eccert.pem -purpose any -out /dev/null", "roothash.txt");
	CHECK_CONTAINS(out, "rc=0");
	free(out);
	azl_buf_release(&der);
	azl_pkcs7_signer_release(&s);
}

static void test_bad_input(const char *hex)
{
	struct azl_pkcs7_signer s;
	struct azl_buf der = AZL_BUF_INIT;
	struct azl_err err = {0};
	char upper[65];

	load("key.pem", "cert.pem", &s);
	for (int i = 0; i < 65; i++)
		upper[i] = (char)(hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 32 : hex[i]);
	CHECK(azl_verity_sig(upper, &s, &der, NULL, &err) == -EINVAL);
	CHECK(err.kind == AZL_ERR_INPUT);
	CHECK_CONTAINS(err.msg, "lowercase hex");
	azl_err_clear(&err);
	CHECK(azl_verity_sig("abc", &s, &der, NULL, &err) < 0);
	azl_err_clear(&err);
	CHECK(azl_verity_sig("", &s, &der, NULL, &err) < 0);
	CHECK(der.len == 0);
	azl_buf_release(&der);
	azl_pkcs7_signer_release(&s);
}

/* systemd-repart (the reference writer of Verity=signature partitions)
 * on a /usr image: its usr-verity-sig partition must be our JSON for its
 * root hash, byte for byte, then NULs. */
static void test_repart(void)
{
	struct azl_pkcs7_signer s;
	struct azl_buf json = AZL_BUF_INIT;
	struct azl_err err = {0};
	char *out, *part = NULL, *p;
	size_t part_len = 0;
	json_t *j;

	out = sh("command -v systemd-repart");
	if (!strstr(out, "rc=0")) {
		printf("systemd-repart not installed: comparison with it skipped\n");
		free(out);
		return;
	}
	free(out);
	out = sh("mkdir -p defs && truncate -s 8M usr.img && mkfs.ext4 -q -F usr.img && "
		 "printf '[Partition]\\nType=usr\\nCopyBlocks=%%s/usr.img\\nVerity=data\\nVerityMatchKey=usr\\n' \"$PWD\" > defs/10-usr.conf && "
		 "printf '[Partition]\\nType=usr-verity\\nVerity=hash\\nVerityMatchKey=usr\\nSizeMinBytes=1M\\n' > defs/20-usr-verity.conf && "
		 "printf '[Partition]\\nType=usr-verity-sig\\nVerity=signature\\nVerityMatchKey=usr\\n' > defs/30-usr-verity-sig.conf && "
		 "systemd-repart --definitions=defs --empty=create --size=auto --dry-run=no --no-pager "
		 "--private-key=key.pem --certificate=cert.pem --seed=0f0e0d0c-0b0a-0908-0706-050403020100 disk.img >/dev/null && "
		 "sfdisk --dump disk.img | awk -F'[=,]' 'tolower($0) ~ /type= *%s/ { print $2, $4 }' > sigpart && "
		 "read start size < sigpart && dd if=disk.img of=sig.part bs=512 skip=$start count=$size status=none && "
		 "test $((size * 512 %% %d)) -eq 0 && tr -d '\\000' < sig.part > repart.json && test -s repart.json",
		 AZL_GPT_USR_X86_64_VERITY_SIG, AZL_VERITY_SIG_ALIGN);
	CHECK_CONTAINS(out, "rc=0");
	free(out);
	p = path("repart.json");
	CHECK(azl_read_file(p, 0, &part, &part_len, &err) == 0);
	free(p);
	j = part ? json_loads(part, 0, NULL) : NULL;
	CHECK(j != NULL);
	load("key.pem", "cert.pem", &s);
	CHECK(azl_verity_sig(json_string_value(json_object_get(j, "rootHash")), &s, NULL, &json, &err) == 0);
	CHECK(part && json.len == part_len && !memcmp(json.data, part, part_len));
	json_decref(j);
	free(part);
	azl_buf_release(&json);
	azl_pkcs7_signer_release(&s);
}

int main(void)
{
	char hex[65];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	make_keys();
	azl_sha256_hex("a /usr partition", 16, hex);
	test_rsa(hex);
	test_ec(hex);
	test_bad_input(hex);
	test_repart();
	free(sh("rm -rf %s", dir));
	return t_done();
}
