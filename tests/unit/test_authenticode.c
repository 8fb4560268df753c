/* authenticode: the host's systemd stub and a UKI built from it, signed
 * with a throwaway RSA-2048 / P-256 certificate, checked with sbverify and
 * osslsigncode; the image hash compared with the one sbsign embeds;
 * rebuilds bit-identical with RSA; tampering detected; bad inputs. */
#include <errno.h>
#include <stdarg.h>
#include <unistd.h>

#include "t.h"

#include "base/fs.h"
#include "base/hash.h"
#include "compose/uki.h"
#include "sign/authenticode.h"

static char dir[] = "/tmp/azl-authenticode-XXXXXX";

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

static char *path(const char *name) { return azl_path_join(dir, name); }

static struct azl_buf slurp(const char *name)
{
	struct azl_buf b = AZL_BUF_INIT;
	struct azl_err err = {0};
	char *p = path(name), *data = NULL;
	size_t len = 0;

	if (azl_read_file(p, 256u << 20, &data, &len, &err) == 0)
		azl_buf_add(&b, data, len);
	free(data);
	free(p);
	return b;
}

static void spill(const char *name, const struct azl_buf *b)
{
	struct azl_err err = {0};
	char *p = path(name);
	if (azl_write_file_atomic(p, b->data, b->len, 0644, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		exit(1);
	}
	free(p);
}

static int same_file(const char *a, const char *b)
{
	struct azl_buf x = slurp(a), y = slurp(b);
	int same = x.len && x.len == y.len && !memcmp(x.data, y.data, x.len);
	azl_buf_release(&x);
	azl_buf_release(&y);
	return same;
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

static int sign(const char *in, const char *out, const struct azl_pkcs7_signer *s,
		struct azl_err *err)
{
	char *i = path(in), *o = path(out);
	int r = azl_authenticode_sign_file(i, o, s, err);
	if (r < 0)
		fprintf(stderr, "sign %s: %s\n", in, err->msg);
	free(i);
	free(o);
	return r;
}

static void digest_hex(const char *name, char hex[65], int upper)
{
	unsigned char d[AZL_AUTHENTICODE_DIGEST_LEN];
	struct azl_err err = {0};
	char *p = path(name);

	hex[0] = 0;
	if (azl_authenticode_digest(p, d, &err) == 0) {
		azl_hex(d, sizeof(d), hex);
		for (int i = 0; upper && hex[i]; i++)
			if (hex[i] >= 'a')
				hex[i] = (char)(hex[i] - 32);
	}
	free(p);
}

static int verifies(const char *cert, const char *efi)
{
	char *out = sh("sbverify --cert %s %s", cert, efi);
	int ok = strstr(out, "Signature verification OK") && strstr(out, "rc=0");
	free(out);
	return ok;
}

/* osslsigncode's independent reading: the digest it computes must be ours
 * and the one stored, and the PE checksum must be right. */
static void check_osslsigncode(const char *efi, const char *cert)
{
	char hex[65], *out = sh("osslsigncode verify -in %s -CAfile %s", efi, cert), *calc, *cur;

	digest_hex(efi, hex, 1);
	calc = azl_xasprintf("Calculated message digest : %s", hex);
	cur = azl_xasprintf("Current message digest    : %s", hex);

	CHECK(strlen(hex) == 64);
	CHECK_CONTAINS(out, calc);
	CHECK_CONTAINS(out, cur);
	CHECK_CONTAINS(out, "Signature verification: ok");
	CHECK(!strstr(out, "invalid PE checksum"));
	free(calc);
	free(cur);
	free(out);
}

static void test_stub(void)
{
	struct azl_pkcs7_signer s;
	struct azl_err err = {0};
	char ours[65], signed_hex[65], *out;

	load("key.pem", "cert.pem", &s);
	free(sh("cp %s stub.efi", AZL_UKI_STUB_HOST));
	CHECK(sign("stub.efi", "stub.signed.efi", &s, &err) == 0);
	CHECK(verifies("cert.pem", "stub.signed.efi"));
	CHECK(!verifies("cert2.pem", "stub.signed.efi"));
	check_osslsigncode("stub.signed.efi", "cert.pem");

	/* the hash sbsign computes and embeds for the same input is ours */
	digest_hex("stub.efi", ours, 1);
	out = sh("sbsign --key key.pem --cert cert.pem --output sb.efi stub.efi >/dev/null 2>&1 && "
		 "sbattach --detach sb.p7 sb.efi >/dev/null 2>&1 && "
		 "openssl asn1parse -inform der -in sb.p7 | awk '/l=  32 prim: OCTET STRING/ { print; exit }'");
	CHECK(strlen(ours) == 64);
	CHECK_CONTAINS(out, ours);
	free(out);
	/* and a signed image hashes as its unsigned self */
	digest_hex("stub.signed.efi", signed_hex, 1);
	CHECK_STR(signed_hex, ours);

	/* rebuilds, in-place signing and re-signing give the same bytes */
	CHECK(sign("stub.efi", "stub.signed2.efi", &s, &err) == 0);
	CHECK(same_file("stub.signed.efi", "stub.signed2.efi"));
	free(sh("cp stub.efi inplace.efi"));
	CHECK(sign("inplace.efi", "inplace.efi", &s, &err) == 0);
	CHECK(same_file("stub.signed.efi", "inplace.efi"));
	CHECK(sign("stub.signed.efi", "resigned.efi", &s, &err) == 0);
	CHECK(same_file("stub.signed.efi", "resigned.efi"));

	/* the attributes: no signingTime, the two Authenticode ones present */
	out = sh("sbattach --detach ours.p7 stub.signed.efi >/dev/null 2>&1 && openssl asn1parse -inform der -in ours.p7");
	CHECK_CONTAINS(out, ":1.3.6.1.4.1.311.2.1.4");
	CHECK_CONTAINS(out, ":1.3.6.1.4.1.311.2.1.12");
	CHECK_CONTAINS(out, "Microsoft Individual Code Signing");
	CHECK(!strstr(out, "signingTime"));
	free(out);
	azl_pkcs7_signer_release(&s);
}

/* A UKI from the stub; .initrd of odd size so the table needs padding. */
static void make_uki(const char *name)
{
	static const char osrel[] = "ID=azl\nVERSION_ID=1\n";
	static const char cmdline[] = "console=ttyS0 azl-authenticode-test";
	struct azl_buf stub = slurp("stub.efi"), linux_ = AZL_BUF_INIT, initrd = AZL_BUF_INIT;
	struct azl_err err = {0};
	char *p = path(name);

	for (int i = 0; i < 5000; i++)
		azl_buf_addc(&linux_, (char)(i * 7));
	for (int i = 0; i < 4097; i++)
		azl_buf_addc(&initrd, (char)(i * 13 + 1));
	struct azl_uki_input in[] = {
		{ .name = ".osrel", .data = osrel, .len = sizeof(osrel) - 1 },
		{ .name = ".cmdline", .data = cmdline, .len = sizeof(cmdline) - 1 },
		{ .name = ".initrd", .data = initrd.data, .len = initrd.len },
		{ .name = ".linux", .data = linux_.data, .len = linux_.len },
	};
	CHECK(azl_uki_write(stub.data, stub.len, in, 4, p, &err) == 0);
	free(p);
	azl_buf_release(&stub);
	azl_buf_release(&linux_);
	azl_buf_release(&initrd);
}

static uint32_t le32(const struct azl_buf *b, size_t off)
{
	const unsigned char *p = (const unsigned char *)b->data + off;
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A signed copy with one byte changed at off. */
static void tamper(const char *from, const char *to, size_t off)
{
	struct azl_buf b = slurp(from);
	if (off < b.len)
		b.data[off] ^= 0x5a;
	spill(to, &b);
	azl_buf_release(&b);
}

static void test_uki(void)
{
	struct azl_pkcs7_signer s;
	struct azl_err err = {0};
	struct azl_buf b;
	char *hit;
	size_t pe, dir_entry;

	load("key.pem", "cert.pem", &s);
	make_uki("uki.efi");
	CHECK(sign("uki.efi", "uki.signed.efi", &s, &err) == 0);
	CHECK(verifies("cert.pem", "uki.signed.efi"));
	CHECK(!verifies("cert2.pem", "uki.signed.efi"));
	check_osslsigncode("uki.signed.efi", "cert.pem");

	b = slurp("uki.signed.efi");
	pe = le32(&b, 0x3c);
	dir_entry = pe + 24 + 112 + 4 * 8;
	CHECK(le32(&b, dir_entry) % 8 == 0);                 /* table 8-aligned */
	CHECK(le32(&b, dir_entry) + le32(&b, dir_entry + 4) == b.len);
	CHECK(le32(&b, le32(&b, dir_entry) + 4) == 0x00020200); /* rev 2.0, PKCS_SIGNED_DATA */

	/* a flipped byte in a section breaks it; in the CheckSum field, not */
	hit = memmem(b.data, b.len, "azl-authenticode-test", 21);
	CHECK(hit != NULL);
	tamper("uki.signed.efi", "uki.cmdline.efi", hit ? (size_t)(hit - b.data) : 0);
	CHECK(!verifies("cert.pem", "uki.cmdline.efi"));
	tamper("uki.signed.efi", "uki.csum.efi", pe + 24 + 64);
	CHECK(verifies("cert.pem", "uki.csum.efi"));
	/* a byte of the data after the last section is covered too */
	tamper("uki.signed.efi", "uki.tail.efi", le32(&b, dir_entry) - 1);
	CHECK(!verifies("cert.pem", "uki.tail.efi"));
	azl_buf_release(&b);

	/* data of odd length after the last section: padded, still valid */
	free(sh("cp uki.efi tail.efi && printf abc >> tail.efi"));
	CHECK(sign("tail.efi", "tail.signed.efi", &s, &err) == 0);
	CHECK(verifies("cert.pem", "tail.signed.efi"));
	check_osslsigncode("tail.signed.efi", "cert.pem");
	azl_pkcs7_signer_release(&s);
}

static void test_ec(void)
{
	struct azl_pkcs7_signer s;
	struct azl_err err = {0};

	load("eckey.pem", "eccert.pem", &s);
	CHECK(s.type == AZL_KEY_ECDSA_P256);
	CHECK(sign("uki.efi", "uki.ec.efi", &s, &err) == 0);
	CHECK(sign("uki.efi", "uki.ec2.efi", &s, &err) == 0);
	CHECK(verifies("eccert.pem", "uki.ec.efi"));
	CHECK(verifies("eccert.pem", "uki.ec2.efi"));
	/* ECDSA is randomized: documented as not bit-identical */
	CHECK(!same_file("uki.ec.efi", "uki.ec2.efi"));
	azl_pkcs7_signer_release(&s);
}

static void test_errors(void)
{
	struct azl_pkcs7_signer s;
	struct azl_err err = {0};
	struct azl_buf b = AZL_BUF_INIT;
	char *k, *c;

	k = path("ed.pem");
	c = path("cert.pem");
	CHECK(azl_pkcs7_signer_load(k, c, NULL, &s, &err) < 0);
	CHECK(err.kind == AZL_ERR_INPUT);
	CHECK_CONTAINS(err.msg, "Ed25519");
	CHECK(s.key == NULL && s.cert == NULL);
	free(k);
	azl_err_clear(&err);
	k = path("key2.pem");
	CHECK(azl_pkcs7_signer_load(k, c, NULL, &s, &err) < 0);
	CHECK_CONTAINS(err.msg, "does not belong to the key");
	free(k);
	free(c);
	azl_err_clear(&err);

	load("key.pem", "cert.pem", &s);
	azl_buf_adds(&b, "MZ this is not a PE image, only text long enough for a DOS header.....");
	spill("text.efi", &b);
	CHECK(azl_authenticode_sign_file("/nonexistent/x.efi", "/tmp/never", &s, &err) < 0);
	CHECK_CONTAINS(err.msg, "/nonexistent/x.efi");
	azl_err_clear(&err);
	k = path("text.efi");
	c = path("text.signed.efi");
	CHECK(azl_authenticode_sign_file(k, c, &s, &err) == -EINVAL);
	CHECK(err.kind == AZL_ERR_INPUT);
	CHECK_CONTAINS(err.msg, "text.efi: not a PE image");
	CHECK(access(c, F_OK) != 0);
	free(k);
	free(c);
	azl_err_clear(&err);

	/* a signature table followed by more data is refused, not guessed at */
	free(sh("cp stub.signed.efi trailing.efi && printf 12345678 >> trailing.efi"));
	k = path("trailing.efi");
	CHECK(azl_authenticode_sign_file(k, k, &s, &err) < 0);
	CHECK_CONTAINS(err.msg, "not at the end of the file");
	free(k);
	azl_buf_release(&b);
	azl_pkcs7_signer_release(&s);
}

/* ---- real firmware: OVMF with Secure Boot on and Debian's "snakeoil"
 * certificate in db (the ovmf package ships its key for testers) ---- */

#define SNAKEOIL_KEY "/usr/share/ovmf/PkKek-1-snakeoil.key"
#define SNAKEOIL_CERT "/usr/share/ovmf/PkKek-1-snakeoil.pem"
#define OVMF_SB_CODE "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
#define OVMF_SB_VARS "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd"

/* Boot efi as \EFI\BOOT\BOOTX64.EFI of a FAT disk; stop qemu once the
 * firmware has decided (or the kernel speaks).  Returns the serial log. */
static char *ovmf_boot(const char *efi)
{
	return sh("rm -f esp.img serial.log && cp " OVMF_SB_VARS " vars.fd && "
		  "mformat -C -i esp.img -T 65536 -h 64 -s 32 :: && mmd -i esp.img ::/EFI ::/EFI/BOOT && "
		  "mcopy -i esp.img %s ::/EFI/BOOT/BOOTX64.EFI && "
		  "{ qemu-system-x86_64 -machine q35,smm=on,accel=tcg -m 512 -display none -net none -no-reboot "
		  "-global driver=cfi.pflash01,property=secure,value=on "
		  "-drive if=pflash,format=raw,unit=0,file=" OVMF_SB_CODE ",readonly=on "
		  "-drive if=pflash,format=raw,unit=1,file=vars.fd "
		  "-drive file=esp.img,format=raw,if=virtio -serial file:serial.log & q=$!; "
		  "i=0; while [ $i -lt 240 ] && kill -0 $q 2>/dev/null; do "
		  "grep -aq -e 'Linux version' -e 'Access Denied' -e 'Security Violation' serial.log 2>/dev/null && break; "
		  "sleep 0.5; i=$((i+1)); done; kill $q 2>/dev/null; wait $q; "
		  "tr -d '\\033' < serial.log; }", efi);
}

static void test_firmware(void)
{
	static const char cmdline[] = "console=ttyS0 panic=-1";
	struct azl_pkcs7_signer s, other;
	struct azl_err err = {0};
	struct azl_buf stub = slurp("stub.efi");
	char *kernel = sh("ls /boot/vmlinuz-* 2>/dev/null | head -n 1"), *nl, *p, *out;
	int have_kernel;

	if ((nl = strchr(kernel, '\n')))
		*nl = 0;
	have_kernel = kernel[0] == '/';
	/* the host's kernel shows the whole chain; without one the firmware's
	 * verdict alone is checked */
	struct azl_uki_input in[] = {
		{ .name = ".cmdline", .data = cmdline, .len = sizeof(cmdline) - 1 },
		{ .name = ".linux", .data = "not a kernel", .len = 12 },
	};
	if (have_kernel)
		in[1].path = kernel;
	p = path("fw.efi");
	CHECK(azl_uki_write(stub.data, stub.len, in, 2, p, &err) == 0);
	free(p);
	/* the key is encrypted: this also goes through the passphrase path */
	CHECK(azl_pkcs7_signer_load(SNAKEOIL_KEY, SNAKEOIL_CERT, "snakeoil", &s, &err) == 0);
	CHECK(sign("fw.efi", "fw.snakeoil.efi", &s, &err) == 0);
	load("key.pem", "cert.pem", &other);
	CHECK(sign("fw.efi", "fw.other.efi", &other, &err) == 0);

	out = ovmf_boot("fw.snakeoil.efi");
	CHECK_CONTAINS(out, "starting Boot");
	CHECK(!strstr(out, "Access Denied"));
	if (have_kernel) {
		CHECK_CONTAINS(out, "EFI stub: UEFI Secure Boot is enabled.");
		CHECK_CONTAINS(out, "Linux version");
	}
	free(out);
	out = ovmf_boot("fw.other.efi");
	CHECK_CONTAINS(out, "Access Denied");
	CHECK(!strstr(out, "Linux version"));
	free(out);
	free(kernel);
	azl_buf_release(&stub);
	azl_pkcs7_signer_release(&s);
	azl_pkcs7_signer_release(&other);
}

int main(void)
{
	char *out;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	out = sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 3650 -subj /CN=azl-sb-test && "
		 "openssl req -x509 -newkey rsa:2048 -nodes -keyout key2.pem -out cert2.pem -days 3650 -subj /CN=other && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout eckey.pem -out eccert.pem -days 3650 -subj /CN=ec && "
		 "openssl genpkey -algorithm ED25519 -out ed.pem");
	CHECK_CONTAINS(out, "rc=0");
	free(out);
	test_stub();
	test_uki();
	test_ec();
	test_errors();
	test_firmware();
	free(sh("rm -rf %s", dir));
	return t_done();
}
