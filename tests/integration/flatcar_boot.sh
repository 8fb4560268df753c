#!/bin/bash
# The Flatcar-style disk boots with /usr from dm-verity: OVMF under qemu
# TCG finds the UKI on EFI-SYSTEM; the generated initramfs finds ROOT
# (root=PARTUUID=, partition 9), opens USR-A with the image's veritysetup
# (verity.usr= + verity.usrhash= + hash-offset=) as /dev/mapper/usr and
# mounts it read-only on /usr; the image's init prints its mounts.  Then
# one byte of busybox changed inside USR-A: the kernel's dm-verity refuses
# the block and the image never reaches its init.
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 missing: scripts/install-deps.sh installs it"
[ -f /usr/share/ovmf/OVMF.fd ] || skip "no /usr/share/ovmf/OVMF.fd (ovmf): scripts/install-deps.sh installs it"
[ -f /usr/lib/systemd/boot/efi/linuxx64.efi.stub ] ||
	skip "no systemd EFI stub (systemd-boot-efi): scripts/install-deps.sh installs it"

t=$(azl_tmpdir)
cd "$t"
azl_fixture_manifest boot.yaml base azl-filesystem azl-busybox azl-kernel azl-veritysetup
azl_fixture_kernel_repo boot.yaml || fail "azl-kernel fixture"
cat >>boot.yaml <<'YAML'
files:
  - path: /usr/sbin/init
    mode: "0755"
    content: |
      #!/bin/sh
      busybox mount -t proc proc /proc
      echo "AZL-FLATCAR-BOOT-OK $(busybox awk '$2 == "/" || $2 == "/usr" {print $2 "=" $1 "," $3 "," substr($4,1,2)}' /proc/mounts | busybox tr '\n' ' ')"
      busybox poweroff -f
kernel:
  cmdline: "console=ttyS0 panic=-1"
outputs:
  flatcar:
    usr_size: 256MiB
YAML
assert_exit 0 "$AZL" build boot.yaml -o out --cache-dir "$t/cache"
assert_not_contains "$ERR" "ships no veritysetup"

boot() { # disk log
	local rc=0
	cp /usr/share/ovmf/OVMF.fd "$t/ovmf.fd"
	timeout 240 qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot -net none \
		-bios "$t/ovmf.fd" -drive file="$1",format=raw,if=virtio \
		</dev/null >"$2" 2>&1 || rc=$?
	return $rc
}

hash=$(cat out/boot.usr.roothash)
cp out/boot.flatcar.img "$t/disk.img"
boot "$t/disk.img" "$t/serial.log" || true
if ! grep -aq "AZL-FLATCAR-BOOT-OK" "$t/serial.log"; then
	tail -n 40 "$t/serial.log" >&2
	fail "no AZL-FLATCAR-BOOT-OK on the serial console"
fi
assert_contains "$t/serial.log" "azl-initramfs: /usr: dm-verity over /dev/vda3, root hash $hash"
assert_contains "$t/serial.log" "AZL-FLATCAR-BOOT-OK /=/dev/vda9,ext4,rw /usr=/dev/mapper/usr,ext4,ro"
assert_contains "$t/serial.log" "EXT4-fs (dm-0): mounted filesystem"
echo "booted: /usr from dm-verity (root hash ${hash:0:16}…), ROOT read-write"

# Tamper: one byte of /usr/bin/busybox inside USR-A (not in usr.raw).
blk=$(debugfs -R "stat /bin/busybox" out/boot.usr.raw 2>/dev/null |
	sed -n 's/^(0):\([0-9]*\).*/\1/p; s/^(0-[0-9]*):\([0-9]*\).*/\1/p' | head -1)
[ -n "$blk" ] || fail "cannot find busybox's first block"
start=$(sfdisk --dump "$t/disk.img" | sed -n 's/.*img3 : start= *\([0-9]*\),.*/\1/p')
printf '\x5a' | dd of="$t/disk.img" bs=1 seek=$((start * 512 + blk * 4096 + 200)) conv=notrunc status=none
boot "$t/disk.img" "$t/serial-bad.log" || true
assert_not_contains "$t/serial-bad.log" "AZL-FLATCAR-BOOT-OK"
grep -aq "verity: .*data block .* is corrupted" "$t/serial-bad.log" ||
	{ tail -n 30 "$t/serial-bad.log" >&2; fail "dm-verity did not report the changed block"; }
echo "tampered USR-A: dm-verity refused the block"
