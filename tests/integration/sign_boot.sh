#!/bin/bash
# build --sign-key KEY --sign-cert CERT on a manifest with both disk
# outputs: the UKI on the VHD's ESP and on the Flatcar-style EFI-SYSTEM
# carries an Authenticode signature `sbverify --cert` accepts (and rejects
# under another certificate); the /usr root hash gets a PKCS#7 detached
# signature `openssl cms -verify` accepts (and rejects for another hash)
# and a usr-verity-sig JSON whose fields match; SHA256SUMS covers both and
# azl-compose verify passes; with an RSA key the signed build is
# byte-identical on rebuild.  Without --sign-cert the build says the UKI is
# not Secure Boot signed.
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

for c in sbverify openssl mcopy sfdisk; do
	command -v $c >/dev/null || skip "$c missing: scripts/install-deps.sh installs it"
done
[ -f /usr/lib/systemd/boot/efi/linuxx64.efi.stub ] ||
	skip "no systemd EFI stub (systemd-boot-efi): scripts/install-deps.sh installs it"

t=$(azl_tmpdir)
cd "$t"
azl_fixture_manifest img.yaml base azl-filesystem azl-busybox azl-kernel azl-veritysetup
azl_fixture_kernel_repo img.yaml || fail "azl-kernel fixture"
printf 'kernel:\n  cmdline: "console=ttyS0"\noutputs:\n  vhd:\n    size: 256MiB\n  flatcar:\n    usr_size: 256MiB\n' >>img.yaml

for k in sb other; do
	openssl req -x509 -newkey rsa:2048 -nodes -keyout $k.key -out $k.crt -days 3650 \
		-subj "/CN=azl-compose test $k" 2>/dev/null || fail "openssl req"
	chmod 600 $k.key
	openssl pkey -in $k.key -pubout -out $k.pub 2>/dev/null
done

assert_exit 0 "$AZL" build img.yaml -o out --cache-dir "$t/cache" --sign-key sb.key --sign-cert sb.crt
for f in img.vhd img.flatcar.img img.usr.roothash.p7s img.usr.verity-sig.json SHA256SUMS.sig; do
	assert_file "out/$f"
done
assert_contains out/SHA256SUMS "  img.usr.roothash.p7s"
assert_contains out/SHA256SUMS "  img.usr.verity-sig.json"
assert_exit 0 "$AZL" verify out --key sb.pub

esp_uki() { # disk format out: \EFI\BOOT\BOOTX64.EFI from partition 1
	local raw=$1
	if [ "$2" = vpc ]; then
		raw=$t/disk.raw
		head -c -512 "$1" >"$raw" # a fixed VHD is the raw disk + a 512-byte footer
	fi
	local s
	s=$(sfdisk --dump "$raw" | sed -n 's/.*1 : start= *\([0-9]*\),.*/\1/p')
	mcopy -o -i "$raw@@$((s * 512))" ::/EFI/BOOT/BOOTX64.EFI "$3" || fail "no UKI on $1's ESP"
}
esp_uki out/img.vhd vpc "$t/vhd.efi"
esp_uki out/img.flatcar.img raw "$t/fc.efi"
for u in vhd fc; do
	sbverify --cert sb.crt "$t/$u.efi" >"$t/sbv" 2>&1 || { cat "$t/sbv" >&2; fail "sbverify rejects the $u UKI"; }
	assert_contains "$t/sbv" "Signature verification OK"
	if sbverify --cert other.crt "$t/$u.efi" >/dev/null 2>&1; then
		fail "sbverify accepts the $u UKI under another certificate"
	fi
done

# The root hash signature and the usr-verity-sig document.
printf '%s' "$(cat out/img.usr.roothash)" >"$t/roothash.txt"
openssl cms -verify -binary -inform der -in out/img.usr.roothash.p7s -content "$t/roothash.txt" \
	-CAfile sb.crt -purpose any -out /dev/null 2>"$t/cms" || { cat "$t/cms" >&2; fail "openssl cms -verify rejects the root hash signature"; }
printf '%s' "0000${hash:-$(cut -c5-64 out/img.usr.roothash)}" >"$t/other.txt"
if openssl cms -verify -binary -inform der -in out/img.usr.roothash.p7s -content "$t/other.txt" \
	-CAfile sb.crt -purpose any -out /dev/null 2>/dev/null; then
	fail "the root hash signature verifies for another hash"
fi
fp=$(openssl x509 -in sb.crt -outform der | sha256sum | cut -c1-64)
python3 - out/img.usr.verity-sig.json "$(cat out/img.usr.roothash)" "$fp" out/img.usr.roothash.p7s <<'PY' || fail "usr-verity-sig JSON"
import base64, json, sys
d = json.loads(open(sys.argv[1], "rb").read().rstrip(b"\0"))
assert d["rootHash"] == sys.argv[2], d["rootHash"]
assert d["certificateFingerprint"] == sys.argv[3], d["certificateFingerprint"]
assert base64.b64decode(d["signature"]) == open(sys.argv[4], "rb").read(), "signature != .p7s"
PY

# verify --lock reads each disk's own rpmdb (libguestfs): a lockfile with
# one version changed fails for the SBOM and for both disks, naming it.
export LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg
sed 's/"version": "1.0"/"version": "1.1"/' img.lock.json >other.lock.json
cmp -s img.lock.json other.lock.json && fail "could not edit the lockfile"
assert_exit 1 "$AZL" verify out --key sb.pub --lock other.lock.json
for d in img.vhd img.flatcar.img; do
	grep -q "^PASS packages $d:/var/lib/rpm\|^FAIL packages $d:/var/lib/rpm == other.lock.json: .*azl-busybox-1.1-1.x86_64" "$OUT" ||
		{ cat "$OUT" >&2; fail "verify did not check $d's rpmdb against the lockfile"; }
done
grep -q "^FAIL packages img.vhd:/var/lib/rpm" "$OUT" || fail "the vhd's rpmdb matched an edited lockfile"
grep -q "^FAIL packages img.flatcar.img:/var/lib/rpm" "$OUT" || fail "the flatcar disk's rpmdb matched an edited lockfile"

# RSA signatures are deterministic: the signed build is reproducible.
mkdir b2 && cp img.yaml img.lock.json b2/
(cd b2 && "$AZL" build img.yaml -o out --cache-dir "$t/cache" --sign-key ../sb.key --sign-cert ../sb.crt) >/dev/null 2>&1 ||
	fail "second signed build"
for f in img.vhd img.flatcar.img img.usr.roothash.p7s img.usr.verity-sig.json SHA256SUMS SHA256SUMS.sig; do
	cmp "out/$f" "b2/out/$f" || fail "$f differs between two signed builds"
done

# A key without a certificate signs SHA256SUMS only, and says so.
assert_exit 0 "$AZL" build img.yaml -o out3 --cache-dir "$t/cache" --sign-key sb.key
assert_contains "$ERR" "outputs.flatcar: the UKI is not Secure Boot signed: that needs --sign-cert"
[ -e out3/img.usr.roothash.p7s ] && fail "a root hash signature without a certificate"
esp_uki out3/img.flatcar.img raw "$t/plain.efi"
if sbverify --cert sb.crt "$t/plain.efi" >/dev/null 2>&1; then
	fail "an unsigned build's UKI verifies"
fi
echo "signed UKIs (vhd, flatcar) and /usr root hash verified"
