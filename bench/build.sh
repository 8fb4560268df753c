#!/bin/bash
# Build speed: a warm-cache `azl-compose build` of the OCI image (zstd and
# gzip layers) beside
#   (a) the peer route: dnf --installroot, then tar --sort=name | gzip -n;
#   (b) the floor: decompressing every payload once to /dev/null (rpm2cpio).
# The package set is the fixture repository's installable packages plus a
# "bulk" repository made here from host trees (/usr/lib/python3.11 and
# /usr/share/locale, zstd payloads), so the figures are not just start-up.
# Prints lines starting with "build:".  Peak RSS from /usr/bin/time.
set -eu
. "$(dirname "$0")/lib.sh"
w=$build/bench/build
mkdir -p "$w"

# --- the bulk repository (cached) ----------------------------------------
bulk=$w/bulk-repo
if [ ! -f "$bulk/repodata/repomd.xml" ]; then
	rm -rf "$w/rpmbuild" "$bulk"
	mkdir -p "$w/rpmbuild/SPECS" "$bulk"
	for spec in python:/usr/lib/python3.11 locale:/usr/share/locale; do
		n=${spec%%:*} d=${spec#*:}
		cat >"$w/rpmbuild/SPECS/$n.spec" <<SPEC
Name: azl-bulk-$n
Version: 1.0
Release: 1
Summary: bench payload from $d
License: various
BuildArch: noarch
AutoReqProv: no
%define _binary_payload w3.zstdio
%define __os_install_post %{nil}
%define _build_id_links none
%description
Host files for the build benchmark.
%install
mkdir -p %{buildroot}/opt/bulk
cp -a $d %{buildroot}/opt/bulk/$n
find %{buildroot} -type l -delete
%files
/opt/bulk/$n
SPEC
		SOURCE_DATE_EPOCH=1700000000 rpmbuild -bb --quiet \
			--define "_topdir $w/rpmbuild" \
			--define "use_source_date_epoch_as_buildtime 1" \
			--define "clamp_mtime_to_source_date_epoch 1" \
			"$w/rpmbuild/SPECS/$n.spec" >/dev/null 2>&1
	done
	cp "$w"/rpmbuild/RPMS/noarch/*.rpm "$bulk/"
	createrepo_c -q "$bulk"
fi

. "$top/tests/lib/fixtures.sh"
base=$(azl_fixture_repo base)
key=$(azl_fixture_key A)
pkgs="azl-app azl-foo-tools azl-zstd-payload azl-gzip-payload azl-xz-payload azl-shared-a azl-shared-b azl-bulk-python azl-bulk-locale"
write_manifest() { # file compression
	{
		echo "name: bench"
		echo "source_date_epoch: 1700000000"
		echo "repos:"
		echo "  - {id: base, baseurl: \"file://$base/\", gpgkey: \"$key\"}"
		echo "  - {id: bulk, baseurl: \"file://$bulk/\", gpgcheck: false}"
		echo "packages: [$(echo $pkgs | sed 's/ /, /g')]"
		echo "outputs:"
		echo "  oci: {compression: $2}"
	} >"$1"
}
mkdir -p "$w/zstd" "$w/gzip"
write_manifest "$w/zstd/bench.yaml" zstd
write_manifest "$w/gzip/bench.yaml" gzip


load0=$(cut -d' ' -f1-3 /proc/loadavg)
# Fill the cache (cold; not timed) so the timed runs are warm.
"$AZL" -q build "$w/zstd/bench.yaml" -o "$w/zstd/out" --cache-dir "$w/cache" >/dev/null
"$AZL" -q build "$w/gzip/bench.yaml" -o "$w/gzip/out" --cache-dir "$w/cache" >/dev/null
t_zstd=$(best_of "$AZL" -q build "$w/zstd/bench.yaml" -o "$w/zstd/out" --cache-dir "$w/cache" --offline)
t_gzip=$(best_of "$AZL" -q build "$w/gzip/bench.yaml" -o "$w/gzip/out" --cache-dir "$w/cache" --offline)
rss=$(/usr/bin/time -f %M "$AZL" -q build "$w/zstd/bench.yaml" -o "$w/zstd/out" --cache-dir "$w/cache" --offline 2>&1 >/dev/null | tail -n 1)
size=$(du -k "$w/zstd/out/bench.oci.tar" | cut -f1)

# The packages the lock chose, from the cache.
rpms=""
for sha in $(python3 -c 'import json,sys; print(" ".join(p["checksum"].split(":")[1] for p in json.load(open(sys.argv[1]))["packages"]))' "$w/zstd/bench.lock.json"); do
	rpms="$rpms $w/cache/blobs/sha256/$sha"
done
floor() { for p in $rpms; do rpm2cpio "$p" >/dev/null; done; }
t_floor=$(best_of floor)

# What compression alone costs: the standard tools, with every core, over
# our own uncompressed layer (the layer's bytes are fixed by the settings,
# so no build can be faster than this part of it).
layer=$(python3 -c '
import json, sys, tarfile
t = tarfile.open(sys.argv[1])
d = json.load(t.extractfile("index.json"))["manifests"][0]["digest"][7:]
print(json.load(t.extractfile("blobs/sha256/" + d))["layers"][0]["digest"][7:])' "$w/zstd/out/bench.oci.tar")
tar -xOf "$w/zstd/out/bench.oci.tar" "blobs/sha256/$layer" | zstd -qdc >"$w/layer.tar"
t_czstd=$(best_of zstd -q -3 -T"$(nproc)" -c "$w/layer.tar")
t_cgzip=$(best_of pigz -6 -n -p "$(nproc)" -c "$w/layer.tar")
raw_mib=$(($(stat -c %s "$w/layer.tar") / 1048576))
rm -f "$w/layer.tar"

# The peer route, as root (dnf --installroot runs scriptlets in a chroot).
peer() {
	rm -rf "$w/dnf/root"
	mkdir -p "$w/dnf/root" "$w/dnf/repos"
	printf '[main]\ngpgcheck=0\ninstall_weak_deps=False\nreposdir=%s\ncachedir=%s\n' \
		"$w/dnf/repos" "$w/dnf/cache" >"$w/dnf/dnf.conf"
	printf '[base]\nbaseurl=file://%s/\ngpgcheck=0\n[bulk]\nbaseurl=file://%s/\ngpgcheck=0\n' \
		"$base" "$bulk" >"$w/dnf/repos/bench.repo"
	dnf -q -y -c "$w/dnf/dnf.conf" --installroot "$w/dnf/root" --releasever 1 \
		--forcearch x86_64 --setopt=install_weak_deps=False install $pkgs &&
	tar --sort=name --numeric-owner --mtime=@1700000000 -C "$w/dnf/root" -cf - . | gzip -n >"$w/dnf/rootfs.tar.gz"
}
if [ "$(id -u)" -eq 0 ] && command -v dnf >/dev/null; then
	peer >/dev/null 2>&1 # warm dnf's metadata cache
	t_peer=$(best_of peer)
else
	t_peer=""
fi

ratio() { echo "scale=1; $1 / $2" | bc; }
echo "build: image $((size / 1024)) MiB (zstd), $(echo $rpms | wc -w) packages, nproc $(nproc)"
echo "build: azl-compose zstd ${t_zstd}s | gzip ${t_gzip}s | floor (rpm2cpio >/dev/null) ${t_floor}s${t_peer:+ | dnf --installroot + tar|gzip -n ${t_peer}s}"
[ -n "$t_peer" ] && echo "build: vs peer: zstd $(ratio "$t_peer" "$t_zstd")x faster (goal >= 8x), gzip $(ratio "$t_peer" "$t_gzip")x faster (goal >= 3x)"
echo "build: vs floor: zstd takes $(ratio "$t_zstd" "$t_floor")x the floor (goal <= 2x)"
echo "build: compressing the ${raw_mib} MiB layer alone: zstd -3 -T$(nproc) ${t_czstd}s ($(ratio "$t_czstd" "$t_floor")x the floor), pigz -6 -p$(nproc) ${t_cgzip}s"
echo "build: peak RSS $((rss / 1024)) MiB (goal <= 256 MiB)"
echo "build: load average (1/5/15 min) $load0 at start, $(cut -d' ' -f1-3 /proc/loadavg) at end"
