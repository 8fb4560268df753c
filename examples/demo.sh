#!/bin/sh
# `make demo`: build the signed fixture repository, write a manifest that
# points at it, lock it, fetch it into a cache, then fetch again offline.
# Uses $AZL_BUILD (or the BUILD make passes on its command line, or build/).
# Everything goes to $AZL_BUILD/demo/; nothing outside the build folder.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${AZL_BUILD:-${BUILD:-build}}
case $build in /*) ;; *) build=$top/$build ;; esac
azl=$build/azl-compose
work=$build/demo

say() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

[ -x "$azl" ] || { echo "demo: $azl not built (run make first)" >&2; exit 1; }

say "building the signed fixture repositories (cached after the first run)"
fx=$(AZL_BUILD=$build bash "$top/tests/lib/fixtures.sh" build)
echo "fixtures: $fx"
echo "repository: $fx/base ($(ls "$fx"/base/Packages/*/*.rpm | wc -l) packages, signed with key A)"

say "writing the manifest $work/minimal.yaml"
rm -rf "$work"
mkdir -p "$work/keys"
cp "$fx/keys/A.asc" "$work/keys/A.asc"
sed "s|^\(    baseurl: \).*|\1file://$fx/base/|" \
	"$top/examples/minimal/minimal.yaml" >"$work/minimal.yaml"
cat "$work/minimal.yaml"

say "lock: resolve the manifest into minimal.lock.json"
run "$azl" -v lock "$work/minimal.yaml"
echo "locked packages:"
sed -n 's/^ *"location": "\(.*\)",*$/  \1/p' "$work/minimal.lock.json"

say "fetch: download, check sha256 and signatures, store in the cache"
run "$azl" fetch "$work/minimal.yaml" --cache-dir "$work/cache"

say "fetch --offline: everything is now served from the cache"
run "$azl" fetch "$work/minimal.yaml" --cache-dir "$work/cache" --offline

say "lock again: same inputs, same bytes"
sum1=$(sha256sum <"$work/minimal.lock.json")
run "$azl" -q lock "$work/minimal.yaml"
sum2=$(sha256sum <"$work/minimal.lock.json")
if [ "$sum1" = "$sum2" ]; then
	echo "minimal.lock.json unchanged: ${sum1%% *}"
else
	echo "demo: the lockfile changed on a second lock" >&2
	exit 1
fi
say "a newer repository (base-v2: azl-app and azl-libfoo 1.1): pins hold"
sed -i "s|file://$fx/base/|file://$fx/base-v2/|" "$work/minimal.yaml"
run "$azl" -v lock "$work/minimal.yaml"
say "lock --update azl-app: only azl-app moves"
run "$azl" -v lock "$work/minimal.yaml" --update azl-app
say "lock --update: everything moves to the newest versions"
run "$azl" -v lock "$work/minimal.yaml" --update
run "$azl" fetch "$work/minimal.yaml" --cache-dir "$work/cache"

say "build: assemble the root filesystem and write the OCI image (outputs: oci)"
run "$azl" build "$work/minimal.yaml" -o "$work/out" --cache-dir "$work/cache"
run sh -c "cd '$work/out' && sha256sum -c SHA256SUMS"
if command -v skopeo >/dev/null; then
	run skopeo inspect "oci-archive:$work/out/minimal.oci.tar"
fi

say "build again: byte-identical image"
run "$azl" -q build "$work/minimal.yaml" -o "$work/out2" --cache-dir "$work/cache" --locked
if cmp "$work/out/minimal.oci.tar" "$work/out2/minimal.oci.tar"; then
	echo "minimal.oci.tar identical: $(sha256sum <"$work/out/minimal.oci.tar" | cut -d' ' -f1)"
else
	echo "demo: the second build differs" >&2
	exit 1
fi

say "done: manifest, lockfile, cache and image are in $work"
