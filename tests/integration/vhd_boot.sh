#!/bin/bash
# The VHD azl-compose build writes boots: base fixture + azl-kernel, a
# files: entry gives the image a /usr/sbin/init that prints a marker and
# powers off.  OVMF under qemu TCG reads the fixed VHD (format=vpc,
# virtio), finds \EFI\BOOT\BOOTX64.EFI in our FAT ESP, the UKI's stub runs
# the kernel with our initramfs, which finds root=PARTUUID= in our GPT,
# mounts our ext4 and switch_roots to the image's init: the marker on the
# serial console proves the whole chain.  Then the same disk with
# bootloader: systemd-boot (systemd-boot -> \EFI\Linux\NAME.efi).
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 missing: scripts/install-deps.sh installs it"
[ -f /usr/share/ovmf/OVMF.fd ] || skip "no /usr/share/ovmf/OVMF.fd (ovmf): scripts/install-deps.sh installs it"
[ -f /usr/lib/systemd/boot/efi/linuxx64.efi.stub ] ||
	skip "no systemd EFI stub (systemd-boot-efi): scripts/install-deps.sh installs it"

t=$(azl_tmpdir)

# manifest FILE [extra outputs.vhd lines...]
manifest() {
	local f=$1
	shift
	azl_fixture_manifest "$f" base azl-filesystem azl-busybox azl-kernel
	azl_fixture_kernel_repo "$f" || fail "azl-kernel fixture"
	cat >>"$f" <<'YAML'
files:
  - path: /usr/sbin/init
    mode: "0755"
    content: |
      #!/bin/sh
      busybox mount -t proc proc /proc
      echo "AZL-VHD-BOOT-OK root=$(busybox awk '$2 == "/" {print $1 "," $3}' /proc/mounts)"
      busybox poweroff -f
kernel:
  cmdline: "console=ttyS0 rw panic=-1"
outputs:
  vhd:
    size: 256MiB
YAML
	for l in "$@"; do printf '    %s\n' "$l" >>"$f"; done
}

# boot DISK LOG: OVMF + the disk as the only drive.
boot() { # disk log [root device, default vda2]
	local rc=0 dev=${3:-vda2}
	cp /usr/share/ovmf/OVMF.fd "$t/ovmf.fd"
	# TCG: /dev/kvm exists on the build machines but hangs; a UKI boots in
	# about 20-60 s here, 180 s bounds a hang.
	timeout 180 qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot -net none \
		-bios "$t/ovmf.fd" -drive file="$1",format=vpc,if=virtio \
		</dev/null >"$2" 2>&1 || rc=$?
	if ! grep -aq "AZL-VHD-BOOT-OK" "$2"; then
		tail -n 40 "$2" >&2
		fail "$1: no AZL-VHD-BOOT-OK on the serial console (qemu exit $rc)"
	fi
	# The image's own root filesystem: ext4 on the root partition.
	assert_contains "$2" "AZL-VHD-BOOT-OK root=/dev/$dev,ext4"
	assert_contains "$2" "Run /init as init process"
	assert_contains "$2" "EXT4-fs ($dev): mounted filesystem"
	assert_not_contains "$2" "azl-initramfs: root device"
	[ $rc -eq 0 ] || fail "$1: qemu exit $rc (the image powers off after the marker)"
}

cd "$t"
manifest "$t/boot.yaml"
assert_exit 0 "$AZL" build boot.yaml -o out --cache-dir "$t/cache"
assert_file out/boot.vhd
boot out/boot.vhd "$t/serial.log"
echo "UKI booted: $(grep -a -m1 'Linux version' "$t/serial.log" | cut -c1-80)"

manifest "$t/sdboot.yaml" "bootloader: systemd-boot"
assert_exit 0 "$AZL" build sdboot.yaml -o out --cache-dir "$t/cache"
boot out/sdboot.vhd "$t/serial-sd.log"
echo "systemd-boot -> UKI booted"

# A separate /boot (XBOOTLDR, vfat): systemd-boot on the ESP finds the UKI
# on XBOOTLDR (Boot Loader Specification); root is the third partition.
manifest "$t/xboot.yaml" "bootloader: systemd-boot" "boot_size: 32MiB"
assert_exit 0 "$AZL" build xboot.yaml -o out --cache-dir "$t/cache"
boot out/xboot.vhd "$t/serial-xb.log" vda3
echo "systemd-boot -> UKI on XBOOTLDR booted"
