#!/bin/bash
# The reproducibility matrix: one manifest with every output kind (oci,
# vhd, flatcar), built once as the reference, then again under each
# perturbation; every file of every output folder must equal the
# reference's byte for byte:
#   path      another build folder (and output and cache paths)
#   umask     077
#   locale    LANG/LC_ALL de_DE.UTF-8 / C.UTF-8
#   timezone  TZ=Pacific/Kiritimati
#   -j        -j 1 against the reference's -j 2
#   cache     cold (new cache) and warm (the reference's, --offline)
#   time      faketime three years ahead
#   hostname  another hostname (unshare --uts)
#   user      another uid/gid (setpriv to 65534:65534, no root)
#   ordering  the cache and the output folder on disorderfs (shuffled
#             readdir), when FUSE is available
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

[ -f /usr/lib/systemd/boot/efi/linuxx64.efi.stub ] ||
	skip "no systemd EFI stub (systemd-boot-efi): scripts/install-deps.sh installs it"
for c in faketime setpriv unshare; do
	command -v $c >/dev/null || skip "$c missing: scripts/install-deps.sh installs it"
done

t=$(azl_tmpdir)
chmod 755 "$t"
mkdir "$t/ref"
azl_fixture_manifest "$t/ref/img.yaml" base azl-filesystem azl-busybox azl-kernel azl-veritysetup azl-app
azl_fixture_kernel_repo "$t/ref/img.yaml" || fail "azl-kernel fixture"
cat >>"$t/ref/img.yaml" <<'YAML'
kernel:
  cmdline: "console=ttyS0"
outputs:
  oci: {compression: zstd}
  vhd: {size: 256MiB}
  flatcar: {usr_size: 256MiB}
YAML
(cd "$t/ref" && "$AZL" -q build img.yaml -o out --cache-dir "$t/cache" -j 2) || fail "reference build"
ls "$t/ref/out" >"$t/files"
for f in img.oci.tar img.vhd img.flatcar.img img.usr.raw img.usr.verity img.usr.roothash SHA256SUMS; do
	grep -qx "$f" "$t/files" || fail "reference build wrote no $f"
done

same() { # variant-dir label
	local f n=0
	for f in $(cat "$t/files"); do
		cmp "$t/ref/out/$f" "$1/out/$f" || fail "$2: $f differs from the reference build"
		n=$((n + 1))
	done
	[ "$(ls "$1/out" | wc -l)" -eq "$n" ] || fail "$2: other files: $(ls "$1/out")"
	echo "  $2: $n files identical"
}
variant() { # name: a fresh folder with the manifest and lockfile
	mkdir -p "$t/$1"
	cp "$t/ref/img.yaml" "$t/ref/img.lock.json" "$t/$1/"
	chmod -R a+rwX "$t/$1"
	echo "$t/$1"
}

d=$(variant path-umask-locale-tz-j1-cold)
(cd "$d" && umask 077 && TZ=Pacific/Kiritimati LC_ALL=C.UTF-8 LANG=de_DE.UTF-8 \
	"$AZL" -q build img.yaml -o out --cache-dir "$d/cache" -j 1) || fail "build: path/umask/locale/tz/-j1/cold"
same "$d" "path, umask 077, locale, TZ, -j 1, cold cache"

d=$(variant time-hostname-warm)
(cd "$d" && faketime -f "+3y" unshare --uts sh -c 'hostname azl-elsewhere.example && exec "$@"' sh \
	"$AZL" -q build img.yaml -o out --cache-dir "$t/cache" --locked --offline) ||
	fail "build: faketime/hostname/warm cache"
same "$d" "faketime +3y, hostname, warm cache --offline"

d=$(variant user)
(cd "$d" && HOME=$d setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$AZL" -q build img.yaml -o out --cache-dir "$d/cache") || fail "build as uid 65534"
[ "$(stat -c %u "$d/out/img.vhd")" = 65534 ] || fail "the user build did not run as 65534"
same "$d" "uid/gid 65534 (no root)"

if [ -c /dev/fuse ] && command -v disorderfs >/dev/null; then
	d=$(variant ordering)
	mkdir "$d/cache.real" "$d/cache" "$d/out.real" "$d/out"
	cp -a "$t/cache/." "$d/cache.real/"
	disorderfs -q --shuffle-dirents=yes "$d/cache.real" "$d/cache" &&
		disorderfs -q --shuffle-dirents=yes "$d/out.real" "$d/out" || fail "disorderfs mount"
	rc=0
	(cd "$d" && "$AZL" -q build img.yaml -o out --cache-dir "$d/cache" --offline) || rc=$?
	if [ $rc -eq 0 ]; then
		for f in $(cat "$t/files"); do cmp "$t/ref/out/$f" "$d/out/$f" || rc=99; done
	fi
	fusermount -u "$d/out"
	fusermount -u "$d/cache"
	[ $rc -eq 0 ] || fail "build on disorderfs (shuffled directory order): exit/compare $rc"
	echo "  file ordering (disorderfs cache and output folder): identical"
else
	echo "  file ordering: no FUSE here (/dev/fuse or disorderfs missing): not varied in this run"
fi
echo "reproducible: oci, vhd, flatcar under every perturbation above"
