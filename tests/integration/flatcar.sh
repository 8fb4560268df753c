#!/bin/bash
# outputs.flatcar: the Flatcar-style immutable disk and its /usr payload,
# checked with independent tools: veritysetup verify accepts
# NAME.usr.raw + NAME.usr.verity + NAME.usr.roothash and fails after one
# changed byte (in a file's data, in a hole, in the tree); USR-A, cut out
# of the disk with dd, holds exactly usr.raw then usr.verity at the
# documented offset and verifies in place (--hash-offset); `sfdisk --dump`
# matches the documented table (numbers, labels, type GUIDs, update-engine
# attribute bits, sizes); e2fsck passes on /usr, ROOT and OEM; ROOT holds
# /etc and an empty /usr; the UKI's .cmdline names USR-A, the root hash,
# the hash offset and ROOT; two builds are byte-identical; format: vhd;
# rebuild agrees; format: vhd with bios_boot: true (partition 2);
# usr_size or root_size too small fails naming the size needed; a package
# writing to /opt and /srv is a warning naming its files.
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

for c in veritysetup sfdisk e2fsck debugfs mcopy objcopy qemu-img; do
	command -v $c >/dev/null || skip "$c missing: scripts/install-deps.sh installs it"
done
[ -f /usr/lib/systemd/boot/efi/linuxx64.efi.stub ] ||
	skip "no systemd EFI stub (systemd-boot-efi): scripts/install-deps.sh installs it"

t=$(azl_tmpdir)

# manifest FILE [extra outputs.flatcar lines...] (PKGS: extra packages)
manifest() {
	local f=$1
	shift
	azl_fixture_manifest "$f" base azl-filesystem azl-busybox azl-kernel $PKGS
	azl_fixture_kernel_repo "$f" || fail "azl-kernel fixture"
	printf 'kernel:\n  cmdline: "console=ttyS0 panic=-1"\noutputs:\n  flatcar:\n    usr_size: 256MiB\n' >>"$f"
	for l in "$@"; do printf '    %s\n' "$l" >>"$f"; done
}

cd "$t"
PKGS=azl-opt manifest "$t/fc.yaml"
"$AZL" build fc.yaml -o out --cache-dir "$t/cache" >"$t/build.log" 2>&1 ||
	{ cat "$t/build.log" >&2; fail "flatcar build failed"; }
for f in fc.flatcar.img fc.usr.raw fc.usr.verity fc.usr.roothash; do
	assert_file "out/$f"
	assert_contains out/SHA256SUMS "  $f"
done
(cd out && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not match the outputs"
ls -A out | grep -q '^\.azl-work' && fail "work directory left in the output folder"

# A package writing outside /usr, /etc, /var: a warning naming the files.
assert_contains "$t/build.log" "warning: outputs.flatcar: 2 files outside /usr, /etc and /var"
assert_contains "$t/build.log" "/opt/azl-opt/bin/opt-tool"
assert_contains "$t/build.log" "/srv/azl-opt/data.txt"

# --- veritysetup over the payload files ---
hash=$(cat out/fc.usr.roothash)
[[ $hash =~ ^[0-9a-f]{64}$ ]] || fail "roothash is not 64 hex digits: '$hash'"
veritysetup verify out/fc.usr.raw out/fc.usr.verity "$hash" ||
	fail "veritysetup verify rejects the payload"
veritysetup dump out/fc.usr.verity >"$t/dump" || fail "veritysetup dump"
assert_contains "$t/dump" "Hash type:       	1"
assert_contains "$t/dump" "Data block size: 	4096"
assert_contains "$t/dump" "Hash algorithm:  	sha256"
usr_size=$(stat -c %s out/fc.usr.raw)
blocks=$((usr_size / 4096))
assert_contains "$t/dump" "Data blocks:     	$blocks"

# Tamper: one byte in busybox's data, one in a hole, one in the tree.
tamper() { # what file offset
	cp out/fc.usr.raw "$t/usr.raw"
	cp out/fc.usr.verity "$t/usr.verity"
	printf '\x5a' | dd of="$t/$2" bs=1 seek="$3" conv=notrunc status=none
	if veritysetup verify "$t/usr.raw" "$t/usr.verity" "$hash" >/dev/null 2>&1; then
		fail "veritysetup verify accepts /usr with a changed byte ($1)"
	fi
}
ino=$(debugfs -R "stat /bin/busybox" out/fc.usr.raw 2>/dev/null | sed -n 's/^(0):\([0-9]*\).*/\1/p; s/^(0-[0-9]*):\([0-9]*\).*/\1/p' | head -1)
[ -n "$ino" ] || fail "cannot find /usr/bin/busybox's first block in usr.raw"
tamper "file data" usr.raw $((ino * 4096 + 100))
tamper "a hole" usr.raw $((usr_size - 4096 + 7))
tamper "hash tree" usr.verity $((4096 + 33))

# --- the disk: table, USR-A contents, filesystems ---
sfdisk --dump out/fc.flatcar.img | sed -n 's/^[^ ]*\(img[0-9]*\) : start= *\([0-9]*\), size= *\([0-9]*\), type=\([^,]*\), uuid=\([^,]*\), name="\([^"]*\)"\(, attrs="\(.*\)"\)\?$/\1 \3 \4 \6 \8/p' >"$t/table"
cat >"$t/want" <<EOF
img1 262144 C12A7328-F81F-11D2-BA4B-00A0C93EC93B EFI-SYSTEM 
img3 524288 5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6 USR-A GUID:48,56
img4 524288 5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6 USR-B 
img6 262144 0FC63DAF-8483-4772-8E79-3D69D8477DE4 OEM 
EOF
head -4 "$t/table" | diff "$t/want" - || fail "partition table differs from manifests/README.md's"
grep -q '^img9 [0-9]* 3884DD41-8582-4404-B9A8-E9B84F2DF50E ROOT $' "$t/table" ||
	fail "no ROOT (flatcar-resize type) as partition 9: $(cat "$t/table")"
[ "$(wc -l <"$t/table")" -eq 5 ] || fail "expected 5 partitions: $(cat "$t/table")"

part() { # number out: cut partition N out of the disk
	local s n
	read -r s n < <(sfdisk --dump out/fc.flatcar.img | sed -n "s/.*img$1 : start= *\([0-9]*\), size= *\([0-9]*\),.*/\1 \2/p")
	dd if=out/fc.flatcar.img of="$2" bs=512 skip="$s" count="$n" conv=sparse status=none
}
part 3 "$t/usr-a"
part 9 "$t/root"
part 6 "$t/oem"
cmp -n "$usr_size" "$t/usr-a" out/fc.usr.raw || fail "USR-A does not start with usr.raw's bytes"
cmp -n "$(stat -c %s out/fc.usr.verity)" -i "$usr_size:0" "$t/usr-a" out/fc.usr.verity ||
	fail "USR-A does not hold usr.verity at offset $usr_size"
veritysetup verify --hash-offset="$usr_size" "$t/usr-a" "$t/usr-a" "$hash" ||
	fail "USR-A does not verify in place with --hash-offset=$usr_size"
for fs in "$t/usr-a" "$t/root" "$t/oem"; do
	e2fsck -fn "$fs" >"$t/fsck" 2>&1 || { cat "$t/fsck" >&2; fail "e2fsck: $fs"; }
done
dumpe2fs -h out/fc.usr.raw 2>/dev/null | grep -q "features:.*read-only" || fail "/usr is not a read-only ext4"
debugfs -R "stat /bin/busybox" out/fc.usr.raw 2>/dev/null | grep -q "Type: regular" || fail "/usr lacks bin/busybox"
debugfs -R "ls -p /usr" "$t/root" 2>/dev/null | awk -F/ 'NF > 5 && $6 != "." && $6 != ".."' | grep -q . &&
	fail "ROOT's /usr is not an empty mount point"
debugfs -R "stat /etc/os-release" "$t/root" 2>/dev/null | grep -q "Type: regular" ||
	fail "ROOT has no /etc/os-release (/etc is populated from the image)"
debugfs -R "stat /opt/azl-opt/bin/opt-tool" "$t/root" 2>/dev/null | grep -q "Type: regular" ||
	fail "ROOT lacks the package's /opt file"
dumpe2fs -h "$t/oem" 2>/dev/null | grep -q "volume name:.*OEM" || fail "OEM is not an ext4 labelled OEM"

# --- the UKI's command line ---
esp_s=$(sfdisk --dump out/fc.flatcar.img | sed -n 's/.*img1 : start= *\([0-9]*\),.*/\1/p')
mcopy -i "out/fc.flatcar.img@@$((esp_s * 512))" ::/EFI/BOOT/BOOTX64.EFI "$t/uki.efi" || fail "no \\EFI\\BOOT\\BOOTX64.EFI on the ESP"
objcopy -O binary --only-section=.cmdline "$t/uki.efi" "$t/cmdline" || fail "UKI has no .cmdline"
uuid_of() { sfdisk --dump out/fc.flatcar.img | sed -n "s/.*img$1 : .*uuid=\([^,]*\),.*/\1/p" | tr A-F a-f; }
ua=$(uuid_of 3)
rt=$(uuid_of 9)
for w in "mount.usr=/dev/mapper/usr" "verity.usr=PARTUUID=$ua" "verity.usrhash=$hash" \
	"usrhash=$hash" "systemd.verity_usr_data=PARTUUID=$ua" "systemd.verity_usr_hash=PARTUUID=$ua" \
	"systemd.verity_usr_options=hash-offset=$usr_size" "root=PARTUUID=$rt" "console=ttyS0"; do
	grep -qw -- "$w" "$t/cmdline" || fail "UKI cmdline lacks '$w': $(cat "$t/cmdline")"
done

# --- reproducible: a second build, cold cache, other path ---
mkdir "$t/b2"
cp fc.yaml fc.lock.json "$t/b2/"
(cd "$t/b2" && "$AZL" build fc.yaml -o out --cache-dir "$t/cache2" >/dev/null 2>&1) || fail "second build"
for f in fc.flatcar.img fc.usr.raw fc.usr.verity fc.usr.roothash SHA256SUMS; do
	cmp out/$f "$t/b2/out/$f" || fail "$f differs between two builds"
done

# rebuild (a third party's check) agrees.
assert_exit 0 "$AZL" rebuild out --cache-dir "$t/cache"
assert_contains "$OUT" "match    fc.usr.verity"

# --- format: vhd, with BIOS-BOOT ---
PKGS= manifest "$t/fv.yaml" "format: vhd" "bios_boot: true"
assert_exit 0 "$AZL" build fv.yaml -o outv --cache-dir "$t/cache"
assert_file outv/fv.flatcar.vhd
qemu-img info --output=json -f vpc outv/fv.flatcar.vhd >"$t/qi" || fail "qemu-img info"
assert_contains "$t/qi" '"format": "vpc"'
[ -e outv/fv.flatcar.img ] && fail "format: vhd also wrote an .img"
head -c -512 outv/fv.flatcar.vhd >"$t/fv.raw"
sfdisk --dump "$t/fv.raw" | grep -q 'fv.raw2 : start= *[0-9]*, size= *4096, type=21686148-6449-6E6F-744E-656564454649,.*name="BIOS-BOOT"' ||
	fail "bios_boot: true: no 2 MiB BIOS-BOOT partition 2: $(sfdisk --dump "$t/fv.raw")"

# --- bad input: usr_size too small ---
PKGS= manifest "$t/small.yaml"
sed -i 's/usr_size: 256MiB/usr_size: 16MiB/' "$t/small.yaml"
assert_exit 2 "$AZL" build small.yaml -o outs --cache-dir "$t/cache"
assert_contains "$ERR" "outputs.flatcar.usr_size: 16 MiB is too small for /usr: it needs at least"
ls outs 2>/dev/null | grep -q . && fail "a failed build left files in its output folder: $(ls outs)"

# --- bad input: root_size too small ---
PKGS= manifest "$t/smallroot.yaml" "root_size: 1MiB"
assert_exit 2 "$AZL" build smallroot.yaml -o outr --cache-dir "$t/cache"
assert_contains "$ERR" "outputs.flatcar.root_size: 1 MiB is too small: the root filesystem (everything but /usr) needs at least"
ls outr 2>/dev/null | grep -q . && fail "a failed build left files in its output folder: $(ls outr)"
echo "flatcar: $(cut -c1-16 out/fc.usr.roothash)… usr.raw $((usr_size / 1048576)) MiB, tree $(stat -c %s out/fc.usr.verity) bytes"
