#!/bin/bash
# VHD build speed: a warm `azl-compose build` of outputs.vhd beside the
# OCI build (zstd) of the same package set, and beside the peer route on
# the same tree: mkfs.ext4 -d + mkfs.vfat/mcopy + sfdisk + dd +
# qemu-img convert -O vpc -o subformat=fixed.  The set is the fixture base
# (filesystem, busybox, app) plus the kernel and the bench's bulk packages
# (bench/build.sh makes them).  Prints lines starting with "vhd:".
set -eu
. "$(dirname "$0")/lib.sh"
w=$build/bench/vhd
mkdir -p "$w"
bulk=$build/bench/build/bulk-repo
[ -f "$bulk/repodata/repomd.xml" ] || { echo "vhd: run bench/build.sh first (it makes $bulk)"; exit 1; }

. "$top/tests/lib/fixtures.sh"
base=$(azl_fixture_repo base)
key=$(azl_fixture_key A)
kern=$(azl_fixture_kernel)
pkgs="azl-filesystem, azl-busybox, azl-kernel, azl-app, azl-bulk-python, azl-bulk-locale"
manifest() { # file outputs-yaml
	cat >"$1" <<YAML
name: bench
source_date_epoch: 1700000000
repos:
  - {id: base, baseurl: "file://$base/", gpgkey: "$key"}
  - {id: kernel, baseurl: "file://$kern/", gpgcheck: false}
  - {id: bulk, baseurl: "file://$bulk/", gpgcheck: false}
packages: [$pkgs]
kernel: {cmdline: "console=ttyS0"}
outputs:
$2
YAML
}
mkdir -p "$w/vhd" "$w/oci"
manifest "$w/vhd/bench.yaml" "  vhd: {size: 1GiB}"
manifest "$w/oci/bench.yaml" "  oci: {compression: zstd}"

"$AZL" -q build "$w/vhd/bench.yaml" -o "$w/vhd/out" --cache-dir "$w/cache" >/dev/null
"$AZL" -q build "$w/oci/bench.yaml" -o "$w/oci/out" --cache-dir "$w/cache" >/dev/null
t_vhd=$(best_of "$AZL" -q build "$w/vhd/bench.yaml" -o "$w/vhd/out" --cache-dir "$w/cache" --offline)
t_oci=$(best_of "$AZL" -q build "$w/oci/bench.yaml" -o "$w/oci/out" --cache-dir "$w/cache" --offline)

# The peer route over the same tree (our OCI layer unpacked as root, once,
# not timed) and the same ESP files (our UKI), to a fixed VHD of the same
# size.
# (A script of its own, run with bash -e, so any failing step fails it.)
cat >"$w/peer-tree.sh" <<'PEER'
w=$1
t=$w/tree
rm -rf "$t" "$w/oci-unpacked"
mkdir -p "$t" "$w/oci-unpacked"
tar -xf "$w/oci/out/bench.oci.tar" -C "$w/oci-unpacked"
layer=$(python3 -c '
import json, sys
d = sys.argv[1]
m = json.load(open(d + "/index.json"))["manifests"][0]["digest"].split(":")[1]
print(d + "/blobs/sha256/" + json.load(open(d + "/blobs/sha256/" + m))["layers"][0]["digest"].split(":")[1])' "$w/oci-unpacked")
zstd -dc "$layer" | tar --numeric-owner --xattrs --xattrs-include='*' -xpf - -C "$t"
test "$(ls "$t/opt/bulk" | wc -l)" -ge 2
PEER
cat >"$w/peer.sh" <<'PEER'
w=$1
p=$w/peer
rm -rf "$p"
mkdir -p "$p/esp/EFI/BOOT"
cp "$w/uki.efi" "$p/esp/EFI/BOOT/BOOTX64.EFI"
truncate -s 1G "$p/disk.raw"
printf 'label: gpt\nstart=2048, size=131072, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=133120, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709\n' |
	sfdisk -q "$p/disk.raw"
truncate -s 64M "$p/esp.img"
mkfs.vfat -F 32 -i 12345678 "$p/esp.img" >/dev/null
mcopy -s -i "$p/esp.img" "$p/esp/EFI" ::/
mkfs.ext4 -q -d "$w/tree" "$p/root.img" $(( (1024 - 65 - 1) * 1024 ))k
dd if="$p/esp.img" of="$p/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$p/root.img" of="$p/disk.raw" bs=1M seek=65 conv=notrunc,sparse status=none
qemu-img convert -f raw -O vpc -o subformat=fixed "$p/disk.raw" "$p/disk.vhd"
PEER
peer() { bash -e "$w/peer.sh" "$w"; }
# Our UKI, out of our ESP (partition 1), for the peer's ESP.
mcopy -o -i "$w/vhd/out/bench.vhd@@1M" ::/EFI/BOOT/BOOTX64.EFI "$w/uki.efi"
if [ "$(id -u)" -eq 0 ]; then
	bash -e "$w/peer-tree.sh" "$w" # the same tree, unpacked once (not timed)
	t_peer=$(best_of peer)
else
	t_peer=""
fi
# Two decimals, with the leading zero: the peer goal is "> 1x", and bc's
# scale=1 printed 1.07 as "1.0x" and 0.7 as ".7x".
ratio() { LC_ALL=C printf '%.2f' "$(echo "scale=4; $1 / $2" | bc)"; }
echo "vhd: 1 GiB fixed VHD, $(echo "$pkgs" | tr ',' '\n' | wc -l) packages requested, nproc $(nproc)"
echo "vhd: azl-compose vhd ${t_vhd}s | oci (zstd) ${t_oci}s | peer (mkfs.ext4 -d + mkfs.vfat/mcopy + sfdisk + qemu-img convert) ${t_peer:-n/a}s"
echo "vhd: vhd costs $(ratio "$t_vhd" "$t_oci")x the OCI build (goal <= 2x)${t_peer:+; peer route takes $(ratio "$t_peer" "$t_vhd")x as long as ours (goal > 1x)}"
