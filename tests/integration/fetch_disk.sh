# fetch into a full disk: a tiny tmpfs as --cache-dir.  The run fails
# naming the package and the write error, nothing half-written enters the
# cache, and the cache (index and blobs) stays consistent.  Needs root and
# mount; skipped otherwise.
. "$AZL_TOP/tests/lib/common.sh"
. "$AZL_TOP/tests/lib/fixtures.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root to mount a tmpfs"
repo=$(azl_fixture_repo base)
key=$(azl_fixture_key A)
t=$(azl_tmpdir)
mkdir "$t/small"
mount -t tmpfs -o size=256k tmpfs "$t/small" 2>/dev/null || skip "cannot mount a tmpfs here"
azl_on_exit "umount '$t/small'"

cat >"$t/p.yaml" <<YAML
name: p
repos:
  - id: base
    baseurl: file://$repo/
    gpgkey: $key
packages: [azl-app]
YAML
"$AZL" -q lock "$t/p.yaml" || fail "lock failed"

# azl-busybox (about 1 MiB) cannot fit; the small packages can.
assert_exit 1 "$AZL" fetch "$t/p.yaml" --cache-dir "$t/small/c"
assert_contains "$ERR" "azl-busybox-1.0-1.x86_64: file://$repo/Packages/a/azl-busybox-1.0-1.x86_64.rpm"
assert_contains "$ERR" "No space left on device"
for f in "$t"/small/c/blobs/sha256/*; do
	[ -f "$f" ] || continue
	[ "$(sha256sum "$f" | cut -c1-64)" = "$(basename "$f")" ] || fail "blob $f is damaged"
done
bb=$(python3 -c 'import json,sys; print([p["checksum"][7:] for p in json.load(open(sys.argv[1]))["packages"] if p["name"]=="azl-busybox"][0])' "$t/p.lock.json")
assert_no_file "$t/small/c/blobs/sha256/$bb"
assert_eq "$(sqlite3 "$t/small/c/index.sqlite" "SELECT count(*) FROM blobs WHERE sha256='$bb'")" 0 "index row for the failed package"
assert_eq "$(sqlite3 "$t/small/c/index.sqlite" 'PRAGMA integrity_check')" ok
assert_exit 0 "$AZL" fetch --verify-cache --cache-dir "$t/small/c"
echo "fetch on a full disk: ok"
