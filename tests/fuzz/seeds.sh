#!/bin/bash
# Seed corpora for the fuzz targets, made at run time from the tests'
# fixtures (no binaries committed): SEEDS/<target>/ for every target.
#   AZL_BUILD=build-x bash tests/fuzz/seeds.sh SEEDS
# Needs $AZL_BUILD/azl-compose (an image build gives the OCI archives, the
# lockfiles, SBOMs and an rpmdb.sqlite), the fixture tools, and mkfs.ext4,
# mkfs.vfat, mtools, sfdisk and qemu-img for the small disk images.  Small
# text seeds committed under tests/fuzz/seeds/<target>/ are copied in too.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: seeds.sh DIR}
export AZL_BUILD=${AZL_BUILD:-$top/build}
case $AZL_BUILD in /*) ;; *) AZL_BUILD=$top/$AZL_BUILD ;; esac
AZL=$AZL_BUILD/azl-compose
export LC_ALL=C TZ=UTC SOURCE_DATE_EPOCH=1700000000
# shellcheck source=tests/lib/fixtures.sh
. "$top/tests/lib/fixtures.sh"

targets="manifest repomd primary lock rpm diff_oci diff_disk verify sbom rpmdb push"
rm -rf "$out"
for t in $targets; do mkdir -p "$out/$t"; done
work=$out/.work
mkdir -p "$work"

fx=$(azl_fixtures_dir)

# Committed text seeds.
for t in $targets; do
	if [ -d "$top/tests/fuzz/seeds/$t" ]; then
		cp "$top/tests/fuzz/seeds/$t"/* "$out/$t/"
	fi
done

# Every manifest the examples and the tests' fixtures carry.
find "$top/examples" "$top/tests" -name '*.yaml' -size -64k | while read -r f; do
	cp "$f" "$out/manifest/$(echo "${f#"$top"/}" | tr / _)"
done

# repomd.xml and primary in every compression the fixtures use.
for r in base base-v2 base-xz base-zstd unsigned; do
	[ -d "$fx/$r/repodata" ] || continue
	cp "$fx/$r/repodata/repomd.xml" "$out/repomd/$r-repomd.xml"
	for p in "$fx/$r"/repodata/*-primary.xml*; do
		cp "$p" "$out/primary/$r-${p##*-}"
	done
done
gzip -dc "$fx/base/repodata/"*-primary.xml.gz >"$out/primary/base-primary.xml"

# Packages (busybox's megabyte only slows every run down).
find "$fx/base" "$fx/base-v2" "$fx/base-zstd" "$fx/base-xz" -name '*.rpm' -size -200k \
	-exec cp {} "$out/rpm/" \;

# Images: a full one (gzip) and a small one (zstd), built like the tests do.
image() { # NAME COMPRESSION PKG...
	local name=$1 comp=$2
	shift 2
	azl_fixture_manifest "$work/$name.yaml" base "$@"
	printf 'outputs:\n  oci:\n    compression: %s\n    env: ["PATH=/usr/bin"]\n' "$comp" >>"$work/$name.yaml"
	(cd "$work" && "$AZL" build "$name.yaml" -o "out-$name" --cache-dir "$work/cache" >/dev/null 2>&1)
	cp "$work/$name.yaml" "$out/manifest/"
	cp "$work/$name.lock.json" "$out/lock/"
	cp "$work/out-$name/$name.spdx.json" "$out/sbom/"
	cp "$work/out-$name/$name.oci.tar" "$out/verify/"
	cp "$work/out-$name/$name.oci.tar" "$out/push/"
	cp "$work/out-$name/SHA256SUMS" "$out/verify/$name.SHA256SUMS"
	for f in "$work/out-$name"/*; do cp "$f" "$out/diff_oci/$(basename "$f")"; done
}
image small zstd azl-filesystem azl-shared-a
image tiny gzip azl-filesystem

# The small image's layer, plain and compressed, and its rpmdb.
mkdir -p "$work/oci" "$work/root"
tar -C "$work/oci" -xf "$work/out-small/small.oci.tar"
layer=$(python3 - "$work/oci" <<'PY'
import json, sys
d = sys.argv[1]
m = json.load(open(d + "/index.json"))["manifests"][0]["digest"].split(":")[1]
l = json.load(open(d + "/blobs/sha256/" + m))["layers"][0]["digest"].split(":")[1]
print(d + "/blobs/sha256/" + l)
PY
)
zstd -dqc "$layer" >"$work/layer.tar"
cp "$work/layer.tar" "$out/diff_oci/layer.tar"
gzip -9nc "$work/layer.tar" >"$out/diff_oci/layer.tar.gz"
tar -C "$work/root" -xf "$work/layer.tar" ./var/lib/rpm/rpmdb.sqlite 2>/dev/null ||
	tar -C "$work/root" -xf "$work/layer.tar" var/lib/rpm/rpmdb.sqlite
cp "$work/root/var/lib/rpm/rpmdb.sqlite" "$out/rpmdb/rpmdb.sqlite"
cp "$work/root/var/lib/rpm/rpmdb.sqlite" "$out/verify/rpmdb.sqlite"

# Disks: a bare ext4 and FAT16, a GPT disk holding both (raw and as a
# fixed VHD).  Fixed UUIDs/serials: the same seeds every run.
mkdir -p "$work/tree/sub" "$work/tree/empty"
printf 'hello\n' >"$work/tree/a.txt"
printf 'x%.0s' $(seq 1 3000) >"$work/tree/sub/long-file-name.bin"
ln -sf a.txt "$work/tree/link"
touch -d @1700000000 "$work/tree" "$work/tree"/* "$work/tree/sub"/*
mkfs.ext4 -q -F -b 1024 -N 32 -m 0 -O ^has_journal,^resize_inode \
	-U 0b7e4d3a-1111-4222-8333-444455556666 -E root_owner=0:0,hash_seed=0b7e4d3a-1111-4222-8333-444455556666 \
	-d "$work/tree" "$out/diff_disk/ext4.img" 256
mkfs.vfat -F 16 -s 1 -i 12345678 -n AZLFUZZ -C "$work/fat.img" 2200 >/dev/null 2>&1
MTOOLS_SKIP_CHECK=1 mcopy -s -m -i "$work/fat.img" "$work/tree/a.txt" "$work/tree/sub" ::/
# FAT16 needs 4085 clusters (2 MiB here) but its files sit in the first
# ones: cut after 128 sectors, so every seed stays under libFuzzer's 1 MiB
# input limit (longer seeds are cut there, losing what follows).
truncate -s 64K "$work/fat.img"
cp "$work/fat.img" "$out/diff_disk/fat16.img"
ext_sectors=512
fat_sectors=$(( $(stat -c %s "$work/fat.img") / 512 ))
total=$(( 40 + fat_sectors + ext_sectors + 40 ))
truncate -s $(( total * 512 )) "$work/disk.img"
sfdisk -q --no-reread --no-tell-kernel "$work/disk.img" >/dev/null <<SF
label: gpt
label-id: 0B7E4D3A-1111-4222-8333-444455556666
first-lba: 34
start=40, size=$fat_sectors, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=0B7E4D3A-1111-4222-8333-000000000001, name="esp"
start=$(( 40 + fat_sectors )), size=$ext_sectors, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=0B7E4D3A-1111-4222-8333-000000000002, name="root"
SF
dd if="$work/fat.img" of="$work/disk.img" bs=512 seek=40 conv=notrunc status=none
dd if="$out/diff_disk/ext4.img" of="$work/disk.img" bs=512 seek=$(( 40 + fat_sectors )) conv=notrunc status=none
cp "$work/disk.img" "$out/diff_disk/disk.img"
qemu-img convert -q -f raw -O vpc -o subformat=fixed,force_size=on "$work/disk.img" "$out/diff_disk/disk.vhd"

rm -rf "$work"
for t in $targets; do
	echo "seeds: $t: $(find "$out/$t" -type f | wc -l) files, $(du -sk "$out/$t" | cut -f1) KiB"
done
