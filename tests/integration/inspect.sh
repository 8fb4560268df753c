#!/bin/bash
# azl-compose inspect DISK: the partitions, filesystem UUIDs/labels and
# packages of a built VHD, read through libguestfs (Linux in an appliance
# VM).  Checked against independent readers of the same disk: sfdisk
# --dump (GPT), dumpe2fs on the root partition cut out with dd (ext4 UUID),
# and the lockfile (exactly the locked packages).  Then a raw .img (format
# told by the missing VHD footer) and a file that is no disk (exit 2).
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

for c in sfdisk dumpe2fs; do
	command -v $c >/dev/null || skip "$c missing: scripts/install-deps.sh installs it"
done
command -v guestfish >/dev/null ||
	skip "libguestfs appliance missing (libguestfs-tools): scripts/install-deps.sh installs it"
[ -f /usr/lib/systemd/boot/efi/linuxx64.efi.stub ] ||
	skip "no systemd EFI stub (systemd-boot-efi): scripts/install-deps.sh installs it"
# No usable KVM here: TCG is slow but works; direct needs no libvirtd.
export LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg

t=$(azl_tmpdir)

# manifest FILE [extra outputs.vhd lines...]
manifest() {
	local f=$1
	shift
	azl_fixture_manifest "$f" base azl-filesystem azl-busybox azl-kernel azl-app
	azl_fixture_kernel_repo "$f" || fail "azl-kernel fixture"
	printf 'outputs:\n  vhd:\n    size: 200MiB\n' >>"$f"
	for l in "$@"; do printf '    %s\n' "$l" >>"$f"; done
}

cd "$t"
manifest "$t/img.yaml"
assert_exit 0 "$AZL" build img.yaml -o out --cache-dir "$t/cache"
assert_exit 0 "$AZL" inspect out/img.vhd
cp "$OUT" "$t/inspect.txt"
cat "$t/inspect.txt"

assert_contains "$t/inspect.txt" "format: vpc"
assert_contains "$t/inspect.txt" "size: 209715200 bytes (200 MiB)"
assert_contains "$t/inspect.txt" "partition table: gpt"
assert_contains "$t/inspect.txt" "partitions: 2"

# The partitions as sfdisk reads them from the raw disk (the VHD minus its footer).
head -c $((200 * 1048576)) out/img.vhd >"$t/disk.raw"
sfdisk --dump "$t/disk.raw" >"$t/dump" || fail "sfdisk --dump"
disk_guid=$(sed -n 's/^label-id: //p' "$t/dump")
assert_contains "$t/inspect.txt" "partition table: gpt, disk guid $disk_guid"
n=0
while read -r start size type guid name; do
	n=$((n + 1))
	assert_contains "$t/inspect.txt" \
		"  $n: start $((start * 512)) size $((size * 512)) ($((size / 2048)) MiB) name \"$name\" type $type guid $guid"
done < <(sed -n 's/.*: start= *\([0-9]*\), size= *\([0-9]*\), type=\([0-9A-F-]*\), uuid=\([0-9A-F-]*\), name="\([a-z]*\)".*/\1 \2 \3 \4 \5/p' "$t/dump")
[ "$n" -eq 2 ] || fail "sfdisk sees $n partitions, expected 2"

# Filesystems: the root fs UUID as dumpe2fs reads it; the ESP is vfat.
root_start=$(sed -n 's/.*: start= *\([0-9]*\), .*name="root".*/\1/p' "$t/dump")
dd if="$t/disk.raw" of="$t/root.ext4" bs=512 skip="$root_start" status=none
fs_uuid=$(dumpe2fs -h "$t/root.ext4" 2>/dev/null | sed -n 's/^Filesystem UUID: *//p')
[ -n "$fs_uuid" ] || fail "dumpe2fs reads no UUID"
assert_contains "$t/inspect.txt" "filesystem ext4 uuid $fs_uuid label \"root\" (root: holds the rpm database)"
assert_contains "$t/inspect.txt" "filesystem vfat uuid "
assert_contains "$t/inspect.txt" "label \"ESP\""

# Packages: exactly the lockfile's, as NEVRAs.
python3 - img.lock.json >"$t/want" <<'PY'
import json, sys
pk = json.load(open(sys.argv[1]))["packages"]
def nevra(p):
    e = "%s:" % p["epoch"] if p.get("epoch") else ""
    return "%s-%s%s-%s.%s" % (p["name"], e, p["version"], p["release"], p["arch"])
for s in sorted(nevra(p) for p in pk):
    print("  " + s)
PY
sed -n '/^packages: /,$p' "$t/inspect.txt" | tail -n +2 >"$t/got"
diff -u "$t/want" "$t/got" || fail "inspect's packages differ from the lockfile's"
assert_contains "$t/inspect.txt" "packages: $(wc -l <"$t/want")"
assert_contains "$t/got" "azl-app-1.0-1.x86_64"

# A raw .img: the same disk without the footer, read as raw.
manifest "$t/raw.yaml" "format: raw"
assert_exit 0 "$AZL" build raw.yaml -o out --cache-dir "$t/cache"
assert_exit 0 "$AZL" inspect out/raw.img
assert_contains "$OUT" "format: raw"
assert_contains "$OUT" "size: 209715200 bytes (200 MiB)"
assert_contains "$OUT" "(root: holds the rpm database)"
assert_contains "$OUT" "azl-kernel-"

# Not a disk: bad input, exit 2, naming the file (no appliance started).
echo "not a disk" >"$t/junk.vhd"
assert_exit 2 "$AZL" inspect "$t/junk.vhd"
assert_contains "$ERR" "junk.vhd: too small to be a disk image"
assert_exit 2 "$AZL" inspect
assert_contains "$ERR" "missing DISK"
