#!/bin/bash
# azl-compose rebuild DIR: a fresh build rebuilds byte for byte (exit 0,
# nothing left in TMPDIR); a tampered output makes it exit 1 with the diff
# naming the changed entry, and keeps the rebuilt files; a copy of DIR
# alone, in another folder, with the cache removed, rebuilds by fetching
# again from the file:// repository; a manifest with a relative
# files.source needs --source-dir (exit 2 naming the option without it).
. "$(dirname "$0")/../lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

t=$(azl_tmpdir)
mkdir -p "$t/src" "$t/tmp"
export TMPDIR=$t/tmp

azl_fixture_manifest "$t/src/img.yaml" base azl-app
cat >>"$t/src/img.yaml" <<'YAML'
files:
  - path: /etc/planted.txt
    content: "one\n"
outputs:
  oci:
    compression: gzip
YAML
cd "$t/src"
"$AZL" -q build img.yaml -o out --cache-dir "$t/cache" >/dev/null || fail "first build"

# A fresh build rebuilds identically; every recorded file is compared.
assert_exit 0 "$AZL" rebuild out --cache-dir "$t/cache"
assert_contains "$OUT" "match    img.oci.tar"
assert_contains "$OUT" "match    img.build.json"
assert_contains "$OUT" "match    SHA256SUMS"
assert_not_contains "$OUT" "MISMATCH"
assert_eq "$(ls -A "$t/tmp" | grep azl-rebuild || true)" "" "work folder removed after a match"

# Tampered: another image's archive under the same name.
sed 's/content: "one\\n"/content: "two\\n"/' img.yaml >"$t/other.yaml"
sed -i 's/^name: img$/name: img/' "$t/other.yaml"
mkdir -p "$t/other" && mv "$t/other.yaml" "$t/other/img.yaml" && cp img.lock.json "$t/other/"
(cd "$t/other" && "$AZL" -q build img.yaml -o out --cache-dir "$t/cache" --locked >/dev/null) || fail "variant build"
cp -r out "$t/tampered"
cp "$t/other/out/img.oci.tar" "$t/tampered/img.oci.tar"
assert_exit 1 "$AZL" rebuild "$t/tampered" --cache-dir "$t/cache"
assert_contains "$OUT" "MISMATCH img.oci.tar"
assert_contains "$OUT" "img.oci.tar:layers[0]:etc/planted.txt: content digest"
assert_contains "$OUT" "match    img.build.json"
assert_contains "$OUT" "differs in 1 of"
kept=$(sed -n 's/^rebuilt files kept in //p' "$OUT")
[ -n "$kept" ] && [ -f "$kept/out/img.oci.tar" ] || fail "rebuilt files not kept: $(cat "$OUT")"
cmp -s "$kept/out/img.oci.tar" out/img.oci.tar || fail "the kept rebuild differs from the original build"
rm -rf "$kept"

# A flipped byte in a JSON output: named as that file, and exit 1.
cp -r out "$t/flipped"
sed -i 's/"version": 1/"version": 2/' "$t/flipped/img.build.json"
grep -q '"version": 2' "$t/flipped/img.build.json" || fail "tamper did not apply"
assert_exit 1 "$AZL" rebuild "$t/flipped" --cache-dir "$t/cache"
assert_contains "$OUT" "MISMATCH img.build.json"
assert_contains "$OUT" "img.build.json: version: 2 -> 1"
rm -rf "$t"/tmp/azl-rebuild.*

# A third party: DIR alone, elsewhere, no cache: fetched again.
mkdir -p "$t/elsewhere"
cp -r out "$t/elsewhere/received"
cd "$t/elsewhere"
rm -rf "$t/cache"
assert_exit 0 "$AZL" rebuild received --cache-dir "$t/cache2"
assert_not_contains "$OUT" "MISMATCH"
ls "$t/cache2" >/dev/null 2>&1 || fail "no cache created: nothing was fetched"
[ -n "$(find "$t/cache2" -type f | head -1)" ] || fail "cache is empty after a rebuild without one"
# Offline with an empty cache cannot rebuild: an error, not a mismatch.
assert_exit 2 "$AZL" rebuild received --cache-dir "$t/cache3" --offline

# Relative files.source: the third party needs the source folder too.
mkdir -p "$t/rel/files"
echo "from a file" >"$t/rel/files/hello.txt"
azl_fixture_manifest "$t/rel/rel.yaml" base azl-app
cat >>"$t/rel/rel.yaml" <<'YAML'
files:
  - path: /etc/hello.txt
    source: files/hello.txt
outputs:
  oci:
    compression: gzip
YAML
(cd "$t/rel" && "$AZL" -q build rel.yaml -o out --cache-dir "$t/cache2" >/dev/null) || fail "build with files.source"
assert_exit 2 "$AZL" rebuild "$t/rel/out" --cache-dir "$t/cache2"
assert_contains "$ERR" "--source-dir"
assert_exit 0 "$AZL" rebuild "$t/rel/out" --cache-dir "$t/cache2" --source-dir "$t/rel"
assert_not_contains "$OUT" "MISMATCH"

# Not a build output folder.
assert_exit 2 "$AZL" rebuild "$t/rel/files"
assert_contains "$ERR" "build.json"
assert_eq "$(ls -A "$t/tmp" | grep azl-rebuild || true)" "" "no work folder left behind"
echo "ok"
