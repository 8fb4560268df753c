#!/bin/bash
# Reproducibility: builds of one manifest and lockfile under a cold and a
# warm cache, in different folders, with different TZ, locale, umask and
# -j give byte-identical outputs; a warm build decompresses nothing.
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

t=$(azl_tmpdir)
mkdir "$t/a" "$t/b"
azl_fixture_manifest "$t/a/img.yaml" base azl-app azl-foo-tools azl-zstd-payload azl-xz-payload
printf 'outputs:\n  oci: {compression: zstd}\n' >>"$t/a/img.yaml"

(cd "$t/a" && "$AZL" -q build img.yaml -o out --cache-dir "$t/cache1" -j 2) || fail "first build"
cp "$t/a/img.yaml" "$t/a/img.lock.json" "$t/b/"
# Cold cache, other folder, other TZ/locale/umask/-j.
(cd "$t/b" && umask 077 && TZ=Pacific/Kiritimati LC_ALL=C.UTF-8 LANG=de_DE.UTF-8 \
	"$AZL" -q build img.yaml -o out --cache-dir "$t/cache2" -j 1) || fail "second build"
for f in img.oci.tar img.build.json SHA256SUMS; do
	cmp "$t/a/out/$f" "$t/b/out/$f" || fail "$f differs between builds"
done
# Warm cache: identical again, and no payload is decompressed.
(cd "$t/b" && "$AZL" -v build img.yaml -o out2 --cache-dir "$t/cache2" --locked --offline) >"$t/warm.log" 2>&1 || { cat "$t/warm.log"; fail "warm build"; }
grep -q '(0 extracted' "$t/warm.log" || fail "warm build decompressed payloads: $(grep built "$t/warm.log")"
cmp "$t/a/out/img.oci.tar" "$t/b/out2/img.oci.tar" || fail "warm build differs"

# SOURCE_DATE_EPOCH from the environment when the manifest has none changes
# the image, and two such builds agree.
sed -i '/^source_date_epoch:/d' "$t/b/img.yaml"
(cd "$t/b" && SOURCE_DATE_EPOCH=1600000000 "$AZL" -q build img.yaml -o out3 --cache-dir "$t/cache2") || fail "env SDE build"
(cd "$t/b" && SOURCE_DATE_EPOCH=1600000000 "$AZL" -q build img.yaml -o out4 --cache-dir "$t/cache2" -j 1) || fail "env SDE build 2"
cmp "$t/b/out3/img.oci.tar" "$t/b/out4/img.oci.tar" || fail "env SDE builds differ"
cmp -s "$t/a/out/img.oci.tar" "$t/b/out3/img.oci.tar" && fail "SOURCE_DATE_EPOCH had no effect"
assert_contains "$t/b/out3/img.build.json" '"source_date_epoch": 1600000000'
echo ok
