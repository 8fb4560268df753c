#!/bin/bash
# azl-compose build -> NAME.vhd (outputs.vhd), checked with independent
# tools: qemu-img reads the fixed VHD's footer (exact virtual size);
# sfdisk dumps the GPT (UAPI types, GUIDs from the seed, 1 MiB alignment);
# the root partition, cut out with dd, passes e2fsck -fn and holds the
# image's files (debugfs); mtools lists the ESP (the UKI at
# \EFI\BOOT\BOOTX64.EFI, its .cmdline naming the root partition); two
# builds are byte-identical; format: raw writes NAME.img; systemd-boot puts
# the UKI under \EFI\Linux.  Errors: a disk too small (says how much is
# needed), no kernel package, a bad size string (exit 2 naming the key).
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

for c in qemu-img sfdisk e2fsck debugfs mdir mcopy objcopy; do
	command -v $c >/dev/null || skip "$c missing: scripts/install-deps.sh installs it"
done
[ -f /usr/lib/systemd/boot/efi/linuxx64.efi.stub ] ||
	skip "no systemd EFI stub (systemd-boot-efi): scripts/install-deps.sh installs it"

t=$(azl_tmpdir)

# manifest FILE SIZE [extra outputs.vhd lines...]: base + kernel repos.
manifest() {
	local f=$1 size=$2
	shift 2
	azl_fixture_manifest "$f" base azl-filesystem azl-busybox azl-kernel
	azl_fixture_kernel_repo "$f" || fail "azl-kernel fixture"
	printf 'kernel:\n  cmdline: "console=ttyS0 panic=-1"\noutputs:\n  vhd:\n    size: %s\n' "$size" >>"$f"
	for l in "$@"; do printf '    %s\n' "$l" >>"$f"; done
}

cd "$t"
manifest "$t/img.yaml" 256MiB
assert_exit 0 "$AZL" build img.yaml -o out --cache-dir "$t/cache"
assert_file out/img.vhd
assert_contains out/SHA256SUMS "img.vhd"
(cd out && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not match the outputs"
ls -A out | grep -q '^\.azl-work' && fail "work directory left in the output folder"

# Fixed VHD: 512-byte footer after exactly 256 MiB of disk.
assert_eq "$(stat -c %s out/img.vhd)" $((256 * 1048576 + 512)) "VHD file size"
qemu-img info -f vpc --output=json out/img.vhd >"$t/qi.json" || fail "qemu-img cannot read the VHD"
python3 - "$t/qi.json" <<'PY' || fail "qemu-img info"
import json, sys
i = json.load(open(sys.argv[1]))
assert i["virtual-size"] == 256 * 1048576, i
assert i["format"] == "vpc", i
PY
# Sparse: far less allocated than the virtual size.
alloc=$(( $(stat -c %b out/img.vhd) * $(stat -c %B out/img.vhd) ))
[ "$alloc" -lt $((128 * 1048576)) ] || fail "VHD not sparse: $alloc bytes allocated"

# The raw disk is the VHD minus its footer.
head -c $((256 * 1048576)) out/img.vhd >"$t/disk.raw"
sfdisk --dump "$t/disk.raw" >"$t/dump" 2>"$t/sfdisk.err" || { cat "$t/sfdisk.err" >&2; fail "sfdisk --dump"; }
cat "$t/dump"
assert_contains "$t/dump" "label: gpt"
assert_contains "$t/dump" "type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
assert_contains "$t/dump" "type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
assert_contains "$t/dump" 'name="esp"'
assert_contains "$t/dump" 'name="root"'
sfdisk --verify "$t/disk.raw" >"$t/verify" 2>&1 || { cat "$t/verify" >&2; fail "sfdisk --verify"; }
# ESP 64 MiB from 1 MiB; root from 65 MiB to the last MiB.
esp_start=$(sed -n 's/.*: start= *\([0-9]*\), size= *\([0-9]*\), type=C12A.*/\1 \2/p' "$t/dump")
root_start=$(sed -n 's/.*: start= *\([0-9]*\), size= *\([0-9]*\), type=4F68.*/\1 \2/p' "$t/dump")
assert_eq "$esp_start" "2048 131072" "ESP start and size"
assert_eq "$root_start" "133120 389120" "root start and size"
root_uuid=$(sed -n 's/.*type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=\([0-9A-F-]*\).*/\1/p' "$t/dump")
[ -n "$root_uuid" ] || fail "no root partition uuid"

# Root filesystem: e2fsck clean, the image's files inside.
dd if="$t/disk.raw" of="$t/root.ext4" bs=1M skip=65 count=190 status=none
e2fsck -fn "$t/root.ext4" >"$t/fsck" 2>&1 || { cat "$t/fsck" >&2; fail "e2fsck -fn on the root partition"; }
debugfs -R "ls -l /usr/bin" "$t/root.ext4" 2>/dev/null >"$t/ls"
assert_contains "$t/ls" "busybox"
debugfs -R "stat /var/lib/rpm/rpmdb.sqlite" "$t/root.ext4" >/dev/null 2>&1 || fail "no rpmdb in the root filesystem"
fs_uuid=$(dumpe2fs -h "$t/root.ext4" 2>/dev/null | sed -n 's/^Filesystem UUID: *//p')
[ -n "$fs_uuid" ] || fail "no ext4 UUID"

# ESP: FAT with the UKI at the removable-media path.
dd if="$t/disk.raw" of="$t/esp.img" bs=1M skip=1 count=64 status=none
mdir -i "$t/esp.img" ::/EFI/BOOT >"$t/mdir" || fail "mdir cannot read the ESP"
assert_contains "$t/mdir" "BOOTX64  EFI"
mdir -i "$t/disk.raw@@1M" ::/EFI/BOOT >/dev/null || fail "mdir cannot read the ESP at its offset"
mcopy -i "$t/esp.img" ::/EFI/BOOT/BOOTX64.EFI "$t/uki.efi" || fail "mcopy the UKI"
objcopy --dump-section .cmdline="$t/cmdline" "$t/uki.efi" "$t/junk.efi" || fail "no .cmdline in the UKI"
root_uuid_lc=$(echo "$root_uuid" | tr A-F a-f)
assert_eq "$(cat "$t/cmdline")" "root=PARTUUID=$root_uuid_lc console=ttyS0 panic=-1" "UKI command line"
objcopy --dump-section .initrd="$t/initrd" "$t/uki.efi" "$t/junk.efi" || fail "no .initrd in the UKI"
zcat "$t/initrd" | cpio -it --quiet >"$t/initrd.list" || fail "the initramfs is not a gzip'd cpio"
assert_contains "$t/initrd.list" "virtio_blk.ko"

# Reproducible: a second build (fresh cache, other output dir) is the same.
assert_exit 0 "$AZL" build img.yaml -o out2 --cache-dir "$t/cache2"
cmp out/img.vhd out2/img.vhd || fail "two builds of the same manifest give different VHDs"
rm -rf out2 "$t/cache2"

# format: raw -> NAME.img, the same disk without the footer; systemd-boot.
manifest "$t/raw.yaml" 256MiB "format: raw" "bootloader: systemd-boot" "esp_size: 32MiB"
assert_exit 0 "$AZL" build raw.yaml -o out --cache-dir "$t/cache"
assert_file out/raw.img
assert_no_file out/raw.vhd
assert_eq "$(stat -c %s out/raw.img)" $((256 * 1048576)) "raw disk size"
sfdisk --dump out/raw.img >"$t/dump2" || fail "sfdisk --dump of the raw image"
assert_contains "$t/dump2" "start=        2048, size=       65536, type=C12A7328"
mdir -i "out/raw.img@@1M" -/ ::/ >"$t/mdir2" || fail "mdir of the systemd-boot ESP"
assert_contains "$t/mdir2" "raw      efi"
assert_contains "$t/mdir2" "loader.conf"
mcopy -i "out/raw.img@@1M" ::/EFI/BOOT/BOOTX64.EFI "$t/sd.efi" || fail "mcopy systemd-boot"
if [ -f /usr/lib/systemd/boot/efi/systemd-bootx64.efi ]; then
	cmp "$t/sd.efi" /usr/lib/systemd/boot/efi/systemd-bootx64.efi || fail "BOOTX64.EFI is not systemd-boot"
fi

# kernel.initrd: the named file (relative to the manifest) is the UKI's .initrd.
printf 'NAMED-INITRD-BYTES' >"$t/named.initrd"
manifest "$t/named.yaml" 256MiB "format: raw"
sed -i '/^  cmdline:/a\  initrd: named.initrd' "$t/named.yaml"
assert_exit 0 "$AZL" build named.yaml -o out --cache-dir "$t/cache"
mcopy -o -i "out/named.img@@1M" ::/EFI/BOOT/BOOTX64.EFI "$t/named.efi" || fail "mcopy the UKI"
objcopy --dump-section .initrd="$t/named.sec" "$t/named.efi" "$t/junk.efi" || fail "no .initrd"
cmp "$t/named.sec" "$t/named.initrd" || fail "kernel.initrd is not the UKI's initramfs"
# kernel.stub that does not exist: an error naming it (the image has no stub).
manifest "$t/stub.yaml" 256MiB
sed -i '/^  cmdline:/a\  stub: /nonexistent/linuxx64.efi.stub' "$t/stub.yaml"
assert_exit 1 "$AZL" build stub.yaml -o out --cache-dir "$t/cache"
assert_contains "$ERR" "/nonexistent/linuxx64.efi.stub"
assert_no_file out/stub.vhd

# A separate /boot: an XBOOTLDR partition (vfat) between the ESP and root,
# holding the image's /boot and, with systemd-boot, the UKI (Boot Loader
# Specification); the root filesystem keeps /boot only as a mount point;
# the UKI's root= names the third partition.
manifest "$t/xboot.yaml" 256MiB "format: raw" "bootloader: systemd-boot" "boot_size: 32MiB"
printf 'directories:\n  - path: /boot/extra\nfiles:\n  - path: /boot/marker.txt\n    content: "on xbootldr\\n"\n' >>"$t/xboot.yaml"
assert_exit 0 "$AZL" build xboot.yaml -o out --cache-dir "$t/cache"
sfdisk --dump out/xboot.img >"$t/xdump" || fail "sfdisk --dump of the XBOOTLDR disk"
assert_contains "$t/xdump" "type=BC13C2FF-59E6-4262-A352-B275FD6F7172"
assert_contains "$t/xdump" 'name="xbootldr"'
xb_start=$(sed -n 's/.*: start= *\([0-9]*\), size= *\([0-9]*\), type=BC13.*/\1 \2/p' "$t/xdump")
assert_eq "$xb_start" "133120 65536" "XBOOTLDR after the 64 MiB ESP, 32 MiB"
xroot=$(sed -n 's/.*: start= *\([0-9]*\), .*type=4F68.*uuid=\([0-9A-F-]*\).*/\1 \2/p' "$t/xdump")
assert_eq "${xroot%% *}" "198656" "root after XBOOTLDR"
mdir -b -i "out/xboot.img@@65M" -/ ::/ >"$t/xmdir" || fail "mdir of XBOOTLDR"
assert_contains "$t/xmdir" "::/EFI/Linux/xboot.efi"
mcopy -i "out/xboot.img@@65M" ::/marker.txt "$t/marker" || fail "mcopy /boot/marker.txt"
assert_eq "$(cat "$t/marker")" "on xbootldr" "/boot content on XBOOTLDR"
mdir -b -i "out/xboot.img@@1M" -/ ::/ >"$t/xesp"
assert_not_contains "$t/xesp" "xboot.efi"
dd if=out/xboot.img of="$t/xroot.ext4" bs=512 skip="${xroot%% *}" status=none
e2fsck -fn "$t/xroot.ext4" >"$t/xfsck" 2>&1 || { cat "$t/xfsck" >&2; fail "e2fsck on the root next to XBOOTLDR"; }
debugfs -R "ls /boot" "$t/xroot.ext4" 2>/dev/null >"$t/xbootls"
assert_not_contains "$t/xbootls" "marker.txt"
mcopy -i "out/xboot.img@@65M" ::/EFI/Linux/xboot.efi "$t/xuki.efi" || fail "UKI on XBOOTLDR"
objcopy -O binary --only-section=.cmdline "$t/xuki.efi" "$t/xcmdline"
xr_uuid=$(echo "${xroot#* }" | tr 'A-F' 'a-f')
assert_contains "$t/xcmdline" "root=PARTUUID=$xr_uuid"

# Errors.  A disk too small for the content says how much it needs.
manifest "$t/small.yaml" 66MiB
assert_exit 2 "$AZL" build small.yaml -o out --cache-dir "$t/cache"
assert_contains "$ERR" "outputs.vhd.size: 66 MiB is too small for this image: it needs at least"
assert_no_file out/small.vhd
# A bad size string: exit 2 naming the key, before any work.
manifest "$t/badsize.yaml" 4GB
assert_exit 2 "$AZL" build badsize.yaml -o out --cache-dir "$t/cache"
assert_contains "$ERR" "outputs.vhd.size"
assert_contains "$ERR" "4GB"
manifest "$t/badsize2.yaml" 1000KiB
assert_exit 2 "$AZL" build badsize2.yaml -o out --cache-dir "$t/cache"
assert_contains "$ERR" "outputs.vhd.size"
assert_contains "$ERR" "whole number of MiB"
# No kernel package: a clear error.
azl_fixture_manifest "$t/nokern.yaml" base azl-filesystem azl-busybox
printf 'outputs:\n  vhd:\n    size: 128MiB\n' >>"$t/nokern.yaml"
assert_exit 2 "$AZL" build nokern.yaml -o out --cache-dir "$t/cache"
assert_contains "$ERR" "outputs.vhd"
assert_contains "$ERR" "kernel"
assert_no_file out/nokern.vhd
ls -A out | grep -q '^\.azl-work' && fail "work directory left after a failed build"
echo "vhd: $(stat -c %s out/img.vhd) bytes, root PARTUUID $root_uuid_lc, ext4 UUID $fs_uuid"
