#!/bin/bash
# Disk images from lib/compose/emit_disk.c (GPT + in-process FAT ESP + an
# ext4 root copied in, raw and fixed VHD) read by independent tools:
# sfdisk and sgdisk for the table, qemu-img for the VHD footer and its
# contents, fsck.vfat and mtools for the ESP, e2fsck for the root.  The
# images come from the unit-test binaries (AZL_DISK_OUT, AZL_FAT_OUT):
# there is no CLI subcommand for the emitter yet.
. "$(dirname "$0")/../lib/common.sh"

gen=$AZL_BUILD/tests/test_emit_disk
fatgen=$AZL_BUILD/tests/test_fat
[ -x "$gen" ] && [ -x "$fatgen" ] || fail "test_emit_disk/test_fat not built (make BUILD=... unit)"
for tool in sfdisk sgdisk qemu-img fsck.vfat mdir mcopy mkfs.ext4 e2fsck python3; do
	command -v "$tool" >/dev/null ||
		skip "$tool missing: scripts/install-deps.sh installs it (fdisk gdisk qemu-utils dosfstools mtools e2fsprogs)"
done
export MTOOLS_SKIP_CHECK=1
t=$(azl_tmpdir)

# An ext4 root made by mke2fs until the pipeline's own lands here.
mkdir -p "$t/rootsrc/etc"
echo "ID=azurelinux" >"$t/rootsrc/etc/os-release"
mkfs.ext4 -q -F -d "$t/rootsrc" "$t/root.img" 20M

mkdir -p "$t/a" "$t/b"
for d in a b; do
	AZL_DISK_OUT=$t/$d AZL_DISK_ROOT_IMG=$t/root.img "$gen" >"$t/gen-$d.log" 2>&1 ||
		{ cat "$t/gen-$d.log" >&2; fail "emitting the sample disks"; }
done
cmp "$t/a/disk.vhd" "$t/b/disk.vhd" || fail "two VHD writes differ"
cmp "$t/a/disk.img" "$t/b/disk.img" || fail "two raw writes differ"
ls "$t/a" | grep -q '\.tmp\.' && fail "temporary files left: $(ls "$t/a")"
img=$t/a/disk.img vhd=$t/a/disk.vhd

# Sparse: 64 MiB apparent, little allocated.
apparent=$(du --apparent-size -k "$img" | cut -f1)
used=$(du -k "$img" | cut -f1)
assert_eq "$apparent" 65536 "apparent size of disk.img (KiB)"
[ "$used" -lt 8192 ] || fail "disk.img not sparse: $used KiB allocated"

# --- the partition table ---
sfdisk --json "$img" >"$t/sfdisk.json" || fail "sfdisk --json"
python3 - "$t/sfdisk.json" <<'PY' || fail "sfdisk --json: table not as written"
import json, sys
pt = json.load(open(sys.argv[1]))["partitiontable"]
assert pt["label"] == "gpt", pt
assert pt["firstlba"] == 34 and pt["lastlba"] == 131072 - 34, pt
assert pt["sectorsize"] == 512
p = pt["partitions"]
assert len(p) == 2, p
assert p[0]["type"] == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", p[0]
assert p[1]["type"] == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", p[1]
assert p[0]["name"] == "esp" and p[1]["name"] == "root", p
assert (p[0]["start"], p[0]["size"]) == (2048, 16384), p[0]
assert (p[1]["start"], p[1]["size"]) == (18432, 131072 - 2048 - 18432), p[1]
for q in p:
    assert q["start"] % 2048 == 0 and q["size"] % 2048 == 0, q
    assert len(q["uuid"]) == 36
assert p[0]["uuid"] != p[1]["uuid"] != pt["id"]
PY
sfdisk --verify "$img" >"$t/verify.log" 2>&1 || { cat "$t/verify.log" >&2; fail "sfdisk --verify"; }
sgdisk -v "$img" >"$t/sgdisk.log" 2>&1 || { cat "$t/sgdisk.log" >&2; fail "sgdisk -v"; }
assert_contains "$t/sgdisk.log" "No problems found"
# The identifiers are the seed's (test seed "test-emit-disk"), derived here
# independently: HMAC-SHA256(SHA256(seed), purpose), version 4 bits.
volid=$(python3 - "$t/sfdisk.json" "$vhd" <<'PY' || fail "GUIDs are not the seed's"
import hashlib, hmac, json, sys, uuid
key = hashlib.sha256(b"test-emit-disk").digest()
def seed_uuid(purpose):
    b = bytearray(hmac.new(key, purpose.encode(), hashlib.sha256).digest()[:16])
    b[6] = (b[6] & 0x0f) | 0x40
    b[8] = (b[8] & 0x3f) | 0x80
    return bytes(b)
pt = json.load(open(sys.argv[1]))["partitiontable"]
assert pt["id"] == str(uuid.UUID(bytes=seed_uuid("gpt-disk-guid"))).upper(), pt["id"]
for p, label in zip(pt["partitions"], ("esp", "root")):
    assert p["uuid"] == str(uuid.UUID(bytes=seed_uuid("gpt-part-uuid:" + label))).upper(), p
f = open(sys.argv[2], "rb").read()[-512:]
assert f[68:84] == seed_uuid("vhd-unique-id"), f[68:84].hex()
v = hmac.new(key, b"vfat-volume-id:esp", hashlib.sha256).digest()[:4].hex().upper()
print(v[:4] + "-" + v[4:])
PY
)

# --- the VHD footer, read by qemu and by a few lines of Python ---
qemu-img info -f vpc --output=json "$vhd" >"$t/qinfo.json" || fail "qemu-img info"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["virtual-size"] == 64 << 20, j' \
	"$t/qinfo.json" || fail "qemu-img virtual size is not 64 MiB: $(cat "$t/qinfo.json")"
qemu-img convert -f vpc -O raw "$vhd" "$t/fromvhd.raw" || fail "qemu-img convert"
cmp "$t/fromvhd.raw" "$img" || fail "qemu reads different disk bytes from the VHD"
python3 - "$vhd" <<'PY' || fail "VHD footer fields"
import struct, sys, os
data = open(sys.argv[1], "rb")
size = os.path.getsize(sys.argv[1])
data.seek(size - 512)
f = data.read(512)
assert size == (64 << 20) + 512
assert f[:8] == b"conectix"
(feat, ver, off, ts, app, cver, host, orig, cur, cyl, heads, spt, typ, csum) = \
    struct.unpack(">IIQI4sI4sQQHBBII", f[8:68])
assert (feat, ver, off, typ) == (2, 0x10000, 2**64 - 1, 2)
assert ts == 1700000000 - 946684800, ts
assert app == b"win " and orig == cur == 64 << 20
# VHD spec CHS for 131072 sectors: 17 sectors/track, 8 heads, 963 cylinders
assert (cyl, heads, spt) == (963, 8, 17), (cyl, heads, spt)
assert csum == (~(sum(f) - sum(f[64:68]))) & 0xffffffff, hex(csum)
PY

# A 4 GiB disk (Azure-sized): exact virtual size, sane table.
qemu-img info -f vpc --output=json "$t/a/big.vhd" >"$t/qbig.json" || fail "qemu-img info big.vhd"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["virtual-size"] == 4 << 30, j' \
	"$t/qbig.json" || fail "big.vhd virtual size is not 4 GiB: $(cat "$t/qbig.json")"
# sgdisk reads raw disks: the VHD minus its footer.
cp --sparse=always "$t/a/big.vhd" "$t/big.raw"
truncate -s 4G "$t/big.raw"
sgdisk -v "$t/big.raw" >"$t/sgbig.log" 2>&1 || { cat "$t/sgbig.log" >&2; fail "sgdisk -v big.vhd"; }
assert_contains "$t/sgbig.log" "No problems found"

# --- the ESP, cut out with dd ---
dd if="$img" of="$t/esp.img" bs=512 skip=2048 count=16384 conv=sparse status=none
fsck.vfat -n "$t/esp.img" >"$t/fsck.log" 2>&1 || { cat "$t/fsck.log" >&2; fail "fsck.vfat -n esp"; }
mdir -i "$t/esp.img" ::/EFI/BOOT >"$t/mdir.log" || fail "mdir ::/EFI/BOOT"
assert_contains "$t/mdir.log" "BOOTX64  EFI        11"
assert_contains "$t/mdir.log" "Volume Serial Number is $volid"
assert_eq "$(mcopy -i "$t/esp.img" ::/EFI/BOOT/BOOTX64.EFI -)" "MZ-fake-efi" "BOOTX64.EFI bytes"
assert_eq "$(mcopy -i "$t/esp.img" ::/loader/entries/azl.conf - | head -1)" "title Azure Linux" "loader entry"

# --- the root, cut out with dd: the ext4 image byte for byte ---
dd if="$img" of="$t/root.out" bs=1M skip=9 count=20 conv=sparse status=none
cmp "$t/root.out" "$t/root.img" || fail "root partition differs from the ext4 image"
e2fsck -fn "$t/root.out" >"$t/e2fsck.log" 2>&1 || { cat "$t/e2fsck.log" >&2; fail "e2fsck -fn root"; }

# --- FAT16 and FAT32 volumes of several sizes ---
mkdir -p "$t/fat"
AZL_FAT_OUT=$t/fat "$fatgen" >"$t/fat.log" 2>&1 || { cat "$t/fat.log" >&2; fail "test_fat"; }
python3 -c '
import struct, sys
sys.stdout.buffer.write(b"".join(struct.pack("<I", (i * 2654435761) & 0xffffffff) for i in range(300 * 1024 // 4)))
' >"$t/big.expected"
for v in fat16 fat16b fat32 fat32b; do
	fsck.vfat -n "$t/fat/$v.img" >"$t/fsck-$v.log" 2>&1 || { cat "$t/fsck-$v.log" >&2; fail "fsck.vfat -n $v"; }
	mcopy -i "$t/fat/$v.img" ::/EFI/BOOT/BOOTX64.EFI "$t/big-$v" || fail "mcopy from $v"
	cmp "$t/big-$v" "$t/big.expected" || fail "$v: BOOTX64.EFI bytes differ"
	mdir -i "$t/fat/$v.img" -a ::/ >"$t/mdir-$v.log" || fail "mdir $v"
	assert_contains "$t/mdir-$v.log" "A Long Name With Spaces 2.text"
	assert_contains "$t/mdir-$v.log" "Volume Serial Number is 1234-ABCD"
	assert_eq "$(mcopy -i "$t/fat/$v.img" "::/A Long Name With Spaces.text" -)" "x" "$v long-name file"
	assert_eq "$(mcopy -i "$t/fat/$v.img" ::/loader/entries/azl.conf - | tail -1)" "efi /EFI/Linux/azl.efi" "$v loader entry"
done
file -s "$t/fat/fat16.img" 2>/dev/null | grep -q 'FAT (16 bit)' || ! command -v file >/dev/null || fail "fat16.img is not FAT16"
file -s "$t/fat/fat32.img" 2>/dev/null | grep -q 'FAT (32 bit)' || ! command -v file >/dev/null || fail "fat32.img is not FAT32"

# --- boot: OVMF reads our VHD as format=vpc, finds the UKI in our FAT ESP,
# the kernel sees our GPT and the initramfs mounts our root partition.  Boot artifacts (UKI, ext4 root) come from
# test_uki's AZL_UKI_BOOT_OUT mode, as in uki_boot.sh.
uki_gen=$AZL_BUILD/tests/test_uki
for c in qemu-system-x86_64 /usr/share/ovmf/OVMF.fd /usr/lib/systemd/boot/efi/linuxx64.efi.stub "$uki_gen"; do
	[ -e "$c" ] || command -v "$c" >/dev/null ||
		skip "everything but the boot passed; $c missing (scripts/install-deps.sh)"
done
. "$AZL_TOP/tests/lib/fixtures.sh"
base=$(azl_fixture_repo base) || fail "fixture repository"
kern=$(azl_fixture_kernel) || fail "azl-kernel fixture"
partuuid=1b2c3d4e-5f60-4172-8394-a5b6c7d8e9f0
mkdir -p "$t/boot"
AZL_UKI_BOOT_OUT=$t/boot AZL_UKI_CMDLINE="console=ttyS0 root=PARTUUID=$partuuid rw panic=-1" \
	AZL_UKI_RPMS="$base/Packages/a/azl-filesystem-1.0-1.noarch.rpm $base/Packages/a/azl-busybox-1.0-1.x86_64.rpm $(ls "$kern"/Packages/a/azl-kernel-*.rpm)" \
	"$uki_gen" >"$t/boot/gen.log" 2>&1 || { cat "$t/boot/gen.log" >&2; fail "making the boot artifacts"; }
AZL_DISK_BOOT_OUT=$t/boot/disk.vhd AZL_DISK_ESP_EFI=$t/boot/esp/EFI/BOOT/BOOTX64.EFI \
	AZL_DISK_ROOT_IMG=$t/boot/root.ext4 AZL_DISK_ROOT_UUID=$partuuid \
	"$gen" >"$t/boot/disk.log" 2>&1 || { cat "$t/boot/disk.log" >&2; fail "writing the boot disk"; }
sectors=$(( $(stat -c %s "$t/boot/disk.vhd") / 512 - 1 ))
cp /usr/share/ovmf/OVMF.fd "$t/boot/ovmf.fd"
# TCG (KVM hangs on these machines); stopped as soon as the answer is in.
qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot -net none \
	-bios "$t/boot/ovmf.fd" -drive file="$t/boot/disk.vhd",format=vpc,if=virtio \
	</dev/null >"$t/boot/serial.log" 2>&1 &
qpid=$!
azl_on_exit sh -c "kill $qpid 2>/dev/null || true"
for _ in $(seq 240); do
	grep -aqE "AZL-BOOT-OK|root device .* not found|Kernel panic" "$t/boot/serial.log" && break
	kill -0 "$qpid" 2>/dev/null || break
	sleep 0.5
done
kill "$qpid" 2>/dev/null || true
wait "$qpid" 2>/dev/null || true
grep -aq "Run /init as init process" "$t/boot/serial.log" ||
	{ tail -n 30 "$t/boot/serial.log" >&2; fail "the UKI on our ESP did not boot from the VHD"; }
assert_contains "$t/boot/serial.log" "[vda] $sectors 512-byte logical blocks"
assert_contains "$t/boot/serial.log" " vda: vda1 vda2"
grep -aq "AZL-BOOT-OK" "$t/boot/serial.log" ||
	{ tail -n 30 "$t/boot/serial.log" >&2; fail "no AZL-BOOT-OK: the image's init did not run from our root partition"; }
assert_contains "$t/boot/serial.log" "EXT4-fs (vda2): mounted filesystem"
echo "boot: OVMF -> UKI on our FAT ESP -> kernel -> ext4 root on our partition 2 (format=vpc)"
echo "disk_tools: ok"
