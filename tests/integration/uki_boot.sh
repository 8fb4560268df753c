#!/bin/bash
# A Unified Kernel Image boots: packages azl-filesystem, azl-busybox and
# azl-kernel (Debian's cloud kernel, tests/lib/fixtures.sh
# azl_fixture_kernel) are installed into a model by the unit-test binary
# (AZL_UKI_BOOT_OUT mode of test_uki: there is no CLI subcommand until the
# disk writer is wired in), which writes the initramfs (generated from the
# model's modules and busybox), the UKI (the host's systemd stub) and an
# ext4 root (lib/compose/emit_ext4).  The test puts the root filesystem in
# a GPT partition of its own (sfdisk: independent of our disk writer),
# the UKI at \EFI\BOOT\BOOTX64.EFI of a FAT drive, and boots OVMF under
# qemu TCG: the image's /sbin/init must print AZL-BOOT-OK on the serial
# console, which proves firmware -> stub -> kernel -> our initramfs
# (modules, root=PARTUUID= lookup, switch_root) -> the image's userspace.
# Then the same with `bootloader: systemd-boot` (systemd-boot at
# \EFI\BOOT\BOOTX64.EFI, the UKI in \EFI\Linux).
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

gen=$AZL_BUILD/tests/test_uki
[ -x "$gen" ] || fail "$gen not built (make BUILD=... unit)"
for c in qemu-system-x86_64 sfdisk objdump; do
	command -v $c >/dev/null || skip "$c missing: scripts/install-deps.sh installs it"
done
[ -f /usr/share/ovmf/OVMF.fd ] || skip "no /usr/share/ovmf/OVMF.fd (ovmf): scripts/install-deps.sh installs it"
[ -f /usr/lib/systemd/boot/efi/linuxx64.efi.stub ] ||
	skip "no systemd EFI stub (systemd-boot-efi): scripts/install-deps.sh installs it"

t=$(azl_tmpdir)
base=$(azl_fixture_repo base) || fail "fixture repository"
kern=$(azl_fixture_kernel) || fail "azl-kernel fixture"
rpms="$base/Packages/a/azl-filesystem-1.0-1.noarch.rpm $base/Packages/a/azl-busybox-1.0-1.x86_64.rpm"
rpms="$rpms $(ls "$kern"/Packages/a/azl-kernel-*.rpm)"
partuuid=6a3b3c2e-5e4f-4d2a-9c1b-0123456789ab

# make_artifacts DIR [systemd-boot]
make_artifacts() {
	mkdir -p "$1"
	AZL_UKI_BOOT_OUT=$1 AZL_UKI_RPMS=$rpms AZL_UKI_BOOTLOADER=${2:-} \
		AZL_UKI_CMDLINE="console=ttyS0 root=PARTUUID=$partuuid rw panic=-1" \
		"$gen" >"$1/gen.log" 2>&1 || { cat "$1/gen.log" >&2; fail "making the boot artifacts ${2:-}"; }
}

# boot DIR: OVMF from the FAT drive DIR/esp, the GPT disk $t/disk.img.
boot() {
	local rc=0
	cp /usr/share/ovmf/OVMF.fd "$1/ovmf.fd"
	# TCG: /dev/kvm exists on the build machines but hangs.  A UKI boots
	# in about 20 s here; 120 s bounds a hang.
	timeout 120 qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot -net none \
		-bios "$1/ovmf.fd" -drive file=fat:rw:"$1/esp",format=raw \
		-drive file="$t/disk.img",format=raw,if=virtio </dev/null >"$1/serial.log" 2>&1 || rc=$?
	if ! grep -aq "AZL-BOOT-OK" "$1/serial.log"; then
		tail -n 40 "$1/serial.log" >&2
		fail "$1: no AZL-BOOT-OK on the serial console (qemu exit $rc)"
	fi
	assert_contains "$1/serial.log" "Run /init as init process"
	assert_contains "$1/serial.log" "EXT4-fs (vda1): mounted filesystem"
	assert_not_contains "$1/serial.log" "azl-initramfs: root device"
	[ $rc -eq 0 ] || fail "$1: qemu exit $rc (the image powers off after the marker)"
}

make_artifacts "$t/uki"
uki=$t/uki/esp/EFI/BOOT/BOOTX64.EFI
cmp "$uki" "$t/uki/uki2.efi" || fail "two UKIs of the same inputs differ"
objdump -h "$uki" >"$t/sections" || fail "objdump -h cannot read the UKI"
for s in .osrel .cmdline .initrd .linux; do
	assert_contains "$t/sections" " $s "
done
zcat "$t/uki/initrd.img" | cpio -it --quiet >"$t/initrd.list" || fail "initramfs is not a gzip'd cpio"
assert_contains "$t/initrd.list" "usr/lib/modules/6.1.0-"
assert_contains "$t/initrd.list" "/kernel/drivers/block/virtio_blk.ko"

# GPT disk: 1 MiB head, the root filesystem, 1 MiB for the backup table.
root_mib=$(( $(stat -c %s "$t/uki/root.ext4") / 1048576 ))
truncate -s $((root_mib + 2))M "$t/disk.img"
printf 'label: gpt\nlabel-id: 0F2C3D4E-1A2B-4C3D-8E9F-A0B1C2D3E4F5\nstart=2048, size=%d, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=%s\n' \
	$((root_mib * 2048)) "$partuuid" | sfdisk -q "$t/disk.img" >"$t/sfdisk.log" 2>&1 ||
	{ cat "$t/sfdisk.log" >&2; fail "sfdisk"; }
dd if="$t/uki/root.ext4" of="$t/disk.img" bs=1M seek=1 conv=notrunc status=none
rm -f "$t/uki/root.ext4" "$t/uki/uki2.efi"

boot "$t/uki"
echo "UKI booted: $(grep -a -m1 'Linux version' "$t/uki/serial.log" | cut -c1-80)"

# bootloader: systemd-boot: it finds the UKI in EFI/Linux (no menu: timeout 0).
make_artifacts "$t/sdboot" systemd-boot
[ -f "$t/sdboot/esp/EFI/Linux/azl.efi" ] || fail "no EFI/Linux/azl.efi"
assert_eq "$(cat "$t/sdboot/esp/loader/loader.conf")" "timeout 0"
cmp -s "$t/sdboot/esp/EFI/BOOT/BOOTX64.EFI" /usr/lib/systemd/boot/efi/systemd-bootx64.efi ||
	fail "EFI/BOOT/BOOTX64.EFI is not systemd-boot"
# A second process from the same inputs: the same initramfs and UKI bytes.
cmp "$t/uki/initrd.img" "$t/sdboot/initrd.img" || fail "initramfs differs between two builds"
cmp "$uki" "$t/sdboot/esp/EFI/Linux/azl.efi" || fail "UKI differs between two builds"
rm -f "$t/sdboot/root.ext4" "$t/sdboot/uki2.efi"
boot "$t/sdboot"
echo "systemd-boot -> UKI booted"
